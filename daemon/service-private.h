/*
 * What the service API's files share (daemon/service*.c) and nothing else
 * includes: error reporting and the store lookups every call starts with.
 */
#pragma once

#include "daemon/service.h"
#include "store/store.h"
#include "util/macro.h"

/* Sets *errp (malloc'd) from fmt and returns e, or -ENOMEM. */
int service_fail(char **errp, ServiceError e, const char *fmt, ...) _printf_(3, 4);

/* The open store in *storep, or LOCKED / BUSY (stopping) with *errp. */
int service_store(Daemon *d, Store **storep, char **errp);

/* The store name of account id (malloc'd, "" when unknown), or NULL on OOM. */
char *service_account_name(Store *store, int64_t account_id);

/* Returns the store's negative errno r (-EIO if r is not one) with *errp
 * saying "store: WHAT: reason"; ipc/ reports it as a plain failure. */
int service_store_error(int r, const char *what, char **errp);
