/*
 * The service API over the Daemon: answers from the running configuration
 * today, and will answer from the store and the sync engines as they land.
 * Main (loop) thread only; nothing here blocks except service_reload(), which
 * reads one small file.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "daemon/service.h"
#include "store/keys.h"

void service_get_status(Daemon *d, ServiceStatus *retp) {
        *retp = (ServiceStatus){
                .version = TEGAMI_VERSION,
                .state = d->locked ? SERVICE_LOCKED : SERVICE_RUNNING,
                .config_path = d->config_path,
                .n_reloads = d->n_reloads,
                .n_accounts = d->config ? d->config->n_accounts : 0,
        };
}

static void format_url(char *buf, size_t size, const ServerUrl *u) {
        bool v6 = strchr(u->host, ':') != NULL;

        snprintf(buf, size, "%s://%s%s%s:%u", server_url_scheme(u), v6 ? "[" : "", u->host, v6 ? "]" : "",
                 u->port);
}

ServiceError service_error_from_failure(NetFailure failure) {
        switch (failure) {
        case NET_FAILURE_NONE:
                return SERVICE_ERROR_NONE;
        case NET_FAILURE_AUTH:
        case NET_FAILURE_CREDENTIALS:
                return SERVICE_ERROR_AUTH_FAILED;
        case NET_FAILURE_CERTIFICATE:
        case NET_FAILURE_DOWNGRADE:
                return SERVICE_ERROR_TLS;
        case NET_FAILURE_NETWORK:
        case NET_FAILURE_PROTOCOL:
                return SERVICE_ERROR_NETWORK;
        default:
                return SERVICE_ERROR_FAILED;
        }
}

/* The scheduler's view of the account: state, last sync, last error, quota. */
static void fill_sync_state(Daemon *d, const Account *a, ServiceAccount *retp) {
        SchedAccountInfo info;

        if (!d->scheduler || scheduler_get_info(d->scheduler, a->name, &info) < 0)
                return;
        retp->state = info.state == SCHED_STATE_RUNNING ? SERVICE_ACCOUNT_SYNCING
                      : info.state == SCHED_STATE_ERROR  ? SERVICE_ACCOUNT_ERROR
                      : info.state == SCHED_STATE_PAUSED ? SERVICE_ACCOUNT_PAUSED
                                                         : SERVICE_ACCOUNT_IDLE;
        retp->last_sync = info.last_success;
        if (*info.last_error) {
                retp->last_error = service_error_from_failure(info.last_failure);
                if (retp->last_error == SERVICE_ERROR_NONE)
                        retp->last_error = SERVICE_ERROR_FAILED;
                retp->last_error_message = info.last_error;
        }
        retp->quota_used = info.quota_used;
        retp->quota_limit = info.quota_limit;
}

static void fill_account(Daemon *d, const Account *a, ServiceAccount *retp) {
        const ServerUrl *in = a->imap.proto ? &a->imap : &a->pop3;

        *retp = (ServiceAccount){
                .name = a->name,
                .address = a->address,
                .protocol = a->imap.proto ? "imap" : "pop3",
                .state = d->locked ? SERVICE_ACCOUNT_LOCKED : SERVICE_ACCOUNT_IDLE,
                .last_error = SERVICE_ERROR_NONE,
                .last_error_message = "",
        };
        format_url(retp->server, sizeof retp->server, in);
        if (a->smtp.proto)
                format_url(retp->send_server, sizeof retp->send_server, &a->smtp);
        if (!d->locked) {
                fill_sync_state(d, a, retp);
                service_counts_fill(d, (size_t)(a - d->config->accounts), retp);
        }
}

int service_get_account(Daemon *d, size_t i, ServiceAccount *retp) {
        if (!d->config || i >= d->config->n_accounts)
                return -ENOENT;
        fill_account(d, &d->config->accounts[i], retp);
        return 0;
}

int service_find_account(Daemon *d, const char *name, ServiceAccount *retp) {
        const Account *a = d->config ? config_find_account(d->config, name) : NULL;

        if (!a)
                return -ENOENT;
        fill_account(d, a, retp);
        return 0;
}

int service_sync(Daemon *d, const char *account) {
        int r;

        if (d->locked)
                return SERVICE_ERROR_LOCKED;
        if (account && (!d->config || !config_find_account(d->config, account)))
                return SERVICE_ERROR_NOT_FOUND;
        r = daemon_sync_now(d, account);
        if (r == -EAGAIN)
                return SERVICE_ERROR_LOCKED;
        return r < 0 ? SERVICE_ERROR_NOT_FOUND : 0;
}

int service_reload(Daemon *d, char **errp) {
        return daemon_reload(d, errp);
}

void service_quit(Daemon *d, int exit_code) {
        daemon_stop(d, exit_code);
}

void service_set_listener(Daemon *d, const ServiceListener *l, void *userdata) {
        d->listener = l;
        d->listener_userdata = userdata;
}

typedef struct ServiceUnlock {
        ServiceUnlockFn cb;
        void *userdata;
} ServiceUnlock;

static void unlock_done_cb(int r, const char *message, void *userdata) {
        ServiceUnlock *u = userdata;
        ServiceError e = r == 0                       ? SERVICE_ERROR_NONE
                       : r == KEYS_E_BAD_PASSPHRASE ? SERVICE_ERROR_AUTH_FAILED
                       : r == -ECANCELED             ? SERVICE_ERROR_BUSY
                                                     : SERVICE_ERROR_LOCKED;

        u->cb(e, message, u->userdata);
        free(u);
}

int service_unlock(Daemon *d, const char *passphrase, ServiceUnlockFn cb, void *userdata, const char **messagep) {
        ServiceUnlock *u = malloc(sizeof *u);
        int r;

        *messagep = NULL;
        if (!u)
                return -ENOMEM;
        *u = (ServiceUnlock){ .cb = cb, .userdata = userdata };
        r = daemon_unlock(d, passphrase, unlock_done_cb, u);
        if (r == 0)
                return 0;
        free(u);
        if (r == -EALREADY) {
                *messagep = "the store is not locked";
                return SERVICE_ERROR_INVALID_ARGS;
        }
        if (r == -EBUSY) {
                *messagep = "an unlock is already running";
                return SERVICE_ERROR_BUSY;
        }
        return r;
}

int service_rekey(Daemon *d, const char *passphrase, ServiceUnlockFn cb, void *userdata, const char **messagep) {
        ServiceUnlock *u = malloc(sizeof *u);
        int r;

        *messagep = NULL;
        if (!u)
                return -ENOMEM;
        *u = (ServiceUnlock){ .cb = cb, .userdata = userdata };
        r = daemon_rekey(d, passphrase, unlock_done_cb, u);
        if (r == 0)
                return 0;
        free(u);
        switch (r) {
        case -EAGAIN:
                *messagep = d->locked ? "the store is locked: run `tegami unlock` first" : "the store is not open";
                return SERVICE_ERROR_LOCKED;
        case -EBUSY:
                *messagep = "an unlock or a rekey is already running";
                return SERVICE_ERROR_BUSY;
        case -EINVAL:
                *messagep = "the store is protected by a passphrase: give it";
                return SERVICE_ERROR_INVALID_ARGS;
        default:
                return r;
        }
}

typedef struct ServiceSend {
        Daemon *d;
        ServiceSendFn cb;
        void *userdata;
} ServiceSend;

static void send_queued_cb(int status, int64_t id, void *userdata) {
        ServiceSend *op = userdata;

        if (status < 0)
                op->cb(status == -ECANCELED ? SERVICE_ERROR_BUSY : SERVICE_ERROR_NOT_SUPPORTED,
                       status == -ECANCELED ? "tegamid is stopping" : strerror(-status), 0, op->userdata);
        else {
                /* The engine announces its verdicts; a new entry is announced here. */
                if (op->d->listener && op->d->listener->outbox_changed)
                        op->d->listener->outbox_changed(id, "queued", op->d->listener_userdata);
                op->cb(SERVICE_ERROR_NONE, "queued", id, op->userdata);
        }
        free(op);
}

int service_send(Daemon *d, const char *raw, size_t n, const SendingRequest *req, ServiceSendFn cb, void *userdata,
                 char **errp) {
        ServiceSend *op;
        int r;

        *errp = NULL;
        if (d->locked)
                return asprintf(errp, "the store is locked: run `tegami unlock` first") < 0 ? -ENOMEM
                                                                                             : SERVICE_ERROR_LOCKED;
        if (!d->sending)
                return asprintf(errp, "the outbox is not running") < 0 ? -ENOMEM : SERVICE_ERROR_BUSY;
        op = malloc(sizeof *op);
        if (!op)
                return -ENOMEM;
        *op = (ServiceSend){ .d = d, .cb = cb, .userdata = userdata };
        r = sending_queue(d->sending, raw, n, req, send_queued_cb, op, errp);
        if (r == 0)
                return 0;
        free(op);
        switch (r) {
        case SENDING_E_NO_ACCOUNT:
                return SERVICE_ERROR_NOT_FOUND;
        case SENDING_E_REFUSED:
                return SERVICE_ERROR_INVALID_ARGS;
        case SENDING_E_NOT_READY:
                return SERVICE_ERROR_BUSY;
        default:
                return r;
        }
}
