/*
 * The service API's on-demand bodies (service_fetch_body()): a message stored
 * from its headers only (a metered network, or over max_message_size) is
 * fetched from its IMAP server when a front end asks for it. The lookup and
 * the wording of errors live here; the fetch itself is daemon/ondemand.c
 * (the registry that shares one fetch among callers and cancels them when
 * tegamid stops) over daemon/imap/fetch-body.c (the session). Loop thread
 * only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/fetch-body.h"
#include "daemon/ondemand.h"
#include "daemon/service-private.h"
#include "store/message.h"
#include "store/query.h"

typedef struct FetchOp {
        ServiceDoneFn cb;
        void *userdata;
} FetchOp;

static void fetched_cb(int r, NetFailure failure, const char *error, void *userdata) {
        FetchOp *op = userdata;
        ServiceError e;

        if (r == 0)
                e = SERVICE_ERROR_NONE;
        else if (r == IMAP_BODY_FETCH_E_GONE || r == IMAP_BODY_FETCH_E_NO_FOLDER || r == IMAP_BODY_FETCH_E_MOVED)
                e = SERVICE_ERROR_NOT_FOUND;
        else if (r == -ECANCELED)
                e = SERVICE_ERROR_BUSY; /* tegamid stops or rekeys */
        else if (failure != NET_FAILURE_NONE)
                e = service_error_from_failure(failure);
        else
                e = SERVICE_ERROR_FAILED; /* the store */
        op->cb(e, r == -ECANCELED ? "tegamid is stopping: the message body was not fetched" : error, op->userdata);
        free(op);
}

/* Host of account name's IMAP server for messages ("" when not configured). */
static const char *imap_host(Daemon *d, const char *account) {
        const Account *a = d->config ? config_find_account(d->config, account) : NULL;

        return a && a->imap.proto == SERVER_IMAP ? a->imap.host : "";
}

int service_fetch_body(Daemon *d, int64_t id, ServiceDoneFn cb, void *userdata, char **errp) {
        _cleanup_free_ char *account = NULL;
        StoreMessage m = {};
        StoreFolder f = {};
        OnDemandRequest req;
        FetchOp *op;
        Store *store;
        int r;

        r = service_store(d, &store, errp);
        if (r != 0)
                return r;
        r = store_message_get(store, id, &m);
        if (r == -ENOENT)
                return service_fail(errp, SERVICE_ERROR_NOT_FOUND, "no message with id %" PRId64, id);
        if (r < 0)
                return service_store_error(r, "reading a message", errp);
        r = store_query_folder_get(store, m.folder_id, &f);
        if (r < 0) {
                store_message_clear(&m);
                return service_store_error(r, "reading a folder", errp);
        }
        account = service_account_name(store, f.account_id);
        if (!account)
                r = -ENOMEM;
        else if (m.has_body)
                r = service_fail(errp, SERVICE_ERROR_INVALID_ARGS, "message %" PRId64 " has its body here", id);
        else if (!*imap_host(d, account))
                r = service_fail(errp, SERVICE_ERROR_NOT_FOUND,
                                 "message %" PRId64 " has no body here, and account %.64s has no IMAP server to "
                                 "fetch it from",
                                 id, account);
        else if (d->asleep || d->offline)
                r = service_fail(errp, SERVICE_ERROR_NETWORK,
                                 "account %.64s: %s: message %" PRId64 " has no body here yet and the network is "
                                 "paused (%s): it is fetched once the network is back",
                                 account, imap_host(d, account), id, d->asleep ? "the system sleeps" : "offline");
        else if (!(op = calloc(1, sizeof *op)))
                r = -ENOMEM;
        else {
                *op = (FetchOp){.cb = cb, .userdata = userdata};
                req = (OnDemandRequest){
                        .account = account,
                        .message_id = id,
                        .folder_id = m.folder_id,
                        .folder = f.name,
                        .uidvalidity = f.uidvalidity,
                        .uid = m.uid,
                };
                r = ondemand_fetch(d, &req, fetched_cb, op);
                if (r < 0) {
                        free(op);
                        if (r == -EBUSY)
                                r = service_fail(errp, SERVICE_ERROR_BUSY,
                                                 "account %.64s: %d message bodies are being fetched already: ask "
                                                 "again in a moment",
                                                 account, ONDEMAND_MAX_PER_ACCOUNT);
                        else if (r == -ESHUTDOWN)
                                r = service_fail(errp, SERVICE_ERROR_BUSY, "the store is closing: tegamid is stopping");
                        else if (r == -ENOENT)
                                r = service_fail(errp, SERVICE_ERROR_NOT_FOUND, "account %.64s is not configured",
                                                 account);
                        else if (r != -ENOMEM)
                                r = service_fail(errp, SERVICE_ERROR_FAILED, "account %.64s: %s: %s", account,
                                                 imap_host(d, account), strerror(-r));
                }
        }
        store_query_folder_clear(&f);
        store_message_clear(&m);
        return r;
}
