/*
 * The search part of the service API (daemon/service.h): full-text search
 * over the store (the query language is store/search.h's), and the indexer
 * that keeps the index up to date, started after the store opens and after
 * each sync. Loop thread only.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/daemon.h"
#include "daemon/service.h"

/*
 * Messages matching query, newest first, after skipping offset, at most limit;
 * account and folder (NULL for any) narrow it like account: and folder:.
 * Returns 0, a ServiceError with *errp (INVALID_ARGS for a query that does not
 * parse, LOCKED, BUSY), or a negative errno.
 */
int service_search(Daemon *d, const char *query, const char *account, const char *folder, uint64_t offset, size_t limit,
                   ServiceMessage **msgsp, size_t *n_msgsp, char **errp);

/* Starts indexing what is not indexed yet, unless it is going; the run holds the store
 * (daemon_store_hold()) and ends early when the daemon stops. */
void service_search_kick(Daemon *d);

/* Messages waiting for the indexer (0 when the store is closed). */
uint64_t service_search_pending(Daemon *d);
