/*
 * The daemon's lifetime on the libuv loop. The Daemon is embedded in main()'s
 * frame; daemon_stop() closes its signal handles and the store (whose writer
 * thread finishes its queue first), and the loop then runs out of work, which
 * is how tegamid exits cleanly. Unlocking a passphrase store derives the key on
 * libuv's thread pool; everything else runs on the loop thread.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/net/tls.h"
#include "daemon/netmon.h"
#include "daemon/ondemand.h"
#include "daemon/service-search.h"
#include "daemon/sysbus.h"
#include "store/keys.h"
#include "util/log.h"
#include "util/secret.h"

struct DaemonUnlock {
        uv_work_t work;
        Daemon *daemon;
        char *passphrase; /* secret memory */
        uint8_t *key;     /* from keys_open, on success */
        char *message;
        int r;
        DaemonUnlockFn cb;
        void *userdata;
};

static void log_accounts(const Config *c) {
        for (size_t i = 0; i < c->n_accounts; i++) {
                const Account *a = &c->accounts[i];
                const ServerUrl *in = a->imap.proto ? &a->imap : &a->pop3;

                log_acct_info(a->name, "%s://%s:%u%s%s", server_url_scheme(in), in->host, in->port,
                              a->smtp.proto ? ", sending through " : "", a->smtp.proto ? a->smtp.host : "");
        }
}

int daemon_init(Daemon *d, uv_loop_t *loop, Config *config, const char *config_path, const char *data_dir) {
        *d = (Daemon){ .loop = loop, .config = config };
        d->config_path = strdup(config_path);
        d->data_dir = strdup(data_dir);
        if (!d->config_path || !d->data_dir || asprintf(&d->store_path, "%s/mail.db", data_dir) < 0)
                return -ENOMEM;
        return 0;
}

struct DaemonRekey {
        uv_work_t work;
        Daemon *daemon;
        KeysKind kind;
        char *passphrase; /* secret memory, or NULL */
        uint8_t *key;     /* the new data key, from keys_open after the rekey */
        char *message;
        int r;
        bool closing; /* past the passphrase check: the engines stop and the store closes */
        DaemonRekeyFn cb;
        void *userdata;
};

static void rekey_start_work(Daemon *d);

static void store_closed_cb(void *userdata) {
        Daemon *d = userdata;

        log_debug("store %s closed", d->store_path);
        if (d->rekey && d->rekey->closing)
                rekey_start_work(d);
}

/* The store closes only once every outbox engine that used it is gone. */
static void maybe_close_store(Daemon *d) {
        if ((d->stopping || (d->rekey && d->rekey->closing)) && d->store && !d->sending && d->n_sendings_closing == 0 &&
            d->n_store_holds == 0) {
                /* The writer finishes its queue, then store_closed_cb; the loop runs until then. */
                store_close(d->store, store_closed_cb, d);
                d->store = NULL;
        }
}

static void sending_closed_cb(void *userdata) {
        Daemon *d = userdata;

        d->n_sendings_closing--;
        maybe_close_store(d);
}

void daemon_store_hold(Daemon *d) {
        d->n_store_holds++;
}

void daemon_store_release(Daemon *d) {
        d->n_store_holds--;
        maybe_close_store(d);
}

static void sending_event_cb(int64_t id, const char *state, void *userdata) {
        Daemon *d = userdata;

        if (d->listener && d->listener->outbox_changed)
                d->listener->outbox_changed(id, state, d->listener_userdata);
}

/* A copy of a sent message waits for the account's Sent folder: sync it now rather than at the next poll. */
static void sending_copy_cb(const char *account, void *userdata) {
        Daemon *d = userdata;

        if (d->scheduler)
                (void)scheduler_run_now(d->scheduler, account);
}

/* Replaces the outbox engine with one for the current config (after open or reload). */
static void daemon_restart_sending(Daemon *d) {
        int r;

        if (d->sending) {
                d->n_sendings_closing++;
                sending_close(TAKE_PTR(d->sending), sending_closed_cb, d);
        }
        if (!d->store || d->stopping)
                return;
        r = sending_new(d->loop, d->store, d->config, &d->sending);
        if (r < 0) {
                d->sending = NULL;
                log_error("outbox: cannot start: %s", strerror(-r));
        } else {
                sending_set_event_cb(d->sending, sending_event_cb, d);
                sending_set_copy_cb(d->sending, sending_copy_cb, d);
        }
}

static void scheduler_closed_cb(void *userdata) {
        daemon_store_release(userdata);
}

static void sched_started_cb(const char *account, void *userdata) {
        Daemon *d = userdata;

        if (d->listener && d->listener->sync_started)
                d->listener->sync_started(account, d->listener_userdata);
}

/* Asleep and every session has ended: logind may suspend now. */
static void daemon_maybe_sleep_ready(Daemon *d) {
        if (d->asleep && d->sysbus && (!d->scheduler || scheduler_is_quiet(d->scheduler)))
                sysbus_sleep_ready(d->sysbus);
}

static void sched_finished_cb(const char *account, const SchedRun *run, void *userdata) {
        Daemon *d = userdata;

        daemon_maybe_sleep_ready(d);

        if (d->sending && run->r >= 0)
                sending_account_synced(d->sending, account);
        service_search_kick(d); /* index what the sync brought, off its path */
        if (d->listener && d->listener->sync_finished)
                d->listener->sync_finished(account, run, d->listener_userdata);
}

static void sched_progress_cb(const char *account, const char *folder, unsigned done, unsigned total,
                              void *userdata) {
        Daemon *d = userdata;

        if (d->listener && d->listener->sync_progress)
                d->listener->sync_progress(account, folder, done, total, d->listener_userdata);
}

static const SchedulerListener sched_listener = {
        .started = sched_started_cb,
        .finished = sched_finished_cb,
        .progress = sched_progress_cb,
};

/* Replaces the scheduler with one for the current config (after open or reload); the old one's
 * sessions are cancelled and hold the store until they have settled. */
static void daemon_restart_scheduler(Daemon *d) {
        int r;

        if (d->scheduler) {
                daemon_store_hold(d);
                scheduler_close(TAKE_PTR(d->scheduler), scheduler_closed_cb, d);
        }
        service_search_kick(d); /* after open, unlock, reload: catch up (a crash left some unindexed) */
        if (!d->store || d->stopping || d->once)
                return;
        r = scheduler_new(d->loop, d->store, d->config, &sched_default_engines, &sched_listener, d, &d->scheduler);
        if (r < 0) {
                d->scheduler = NULL;
                log_error("accounts: cannot schedule syncs: %s", strerror(-r));
                return;
        }
        scheduler_set_headers_only(d->scheduler, d->metered);
        scheduler_set_paused(d->scheduler, d->asleep || d->offline);
}

int daemon_sync_now(Daemon *d, const char *account) {
        if (!d->scheduler)
                return d->locked ? -EAGAIN : -ENOENT;
        return scheduler_run_now(d->scheduler, account);
}

/* Opens the store with key; logs and returns what store_open says. */
static int daemon_open_store(Daemon *d, const uint8_t *key, char **errp) {
        int r = store_open(d->loop, d->store_path, key, &d->store);

        if (r < 0) {
                d->store = NULL;
                if (errp && asprintf(errp, "store %s: %s", d->store_path,
                                     r == -EBADMSG ? "store is damaged or the key is wrong" : strerror(-r)) < 0)
                        *errp = NULL;
                return r;
        }
        log_info("store %s open (encrypted)", d->store_path);
        daemon_restart_sending(d);
        daemon_restart_scheduler(d);
        return 0;
}

/* The store's key: opens it now, or leaves the daemon locked for a passphrase. */
static int daemon_start_store(Daemon *d, char **errp) {
        KeysKind kind = (KeysKind)d->config->store_key, stored;
        _cleanup_key_ uint8_t *key = NULL;
        int r;

        if (keys_stored_kind(d->store_path, &stored) == 0)
                kind = kind == KEYS_KIND_AUTO ? stored : kind;
        if (kind == KEYS_KIND_PASSPHRASE) {
                d->locked = true;
                log_notice("store %s is locked: unlock it with `tegami unlock`", d->store_path);
                return 0;
        }
        r = keys_open(d->store_path, kind, NULL, &key, errp);
        if (r != 0)
                return r;
        return daemon_open_store(d, key, errp);
}

/* The network may be back: what waits for it goes now rather than after its backoff. */
static void network_changed_cb(void *userdata) {
        Daemon *d = userdata;

        if (d->stopping)
                return;
        if (d->sending)
                sending_kick(d->sending);
        if (d->scheduler)
                scheduler_retry_now(d->scheduler);
}

/* logind: sleeping closes every connection (then releases the delay lock), waking catches up. */
static void sysbus_sleep_cb(bool sleeping, void *userdata) {
        Daemon *d = userdata;

        if (d->stopping)
                return;
        d->asleep = sleeping;
        if (d->scheduler)
                scheduler_set_paused(d->scheduler, d->asleep || d->offline);
        if (sleeping)
                daemon_maybe_sleep_ready(d);
        else if (d->sending && !d->offline)
                sending_kick(d->sending);
}

/* NetworkManager: offline pauses the syncs, metered keeps bodies for later; back online catches up. */
static void sysbus_network_cb(bool online, bool metered, void *userdata) {
        Daemon *d = userdata;
        bool was_offline = d->offline;

        if (d->stopping)
                return;
        d->offline = !online;
        d->metered = metered;
        if (d->scheduler) {
                scheduler_set_headers_only(d->scheduler, metered);
                scheduler_set_paused(d->scheduler, d->asleep || d->offline);
        }
        if (was_offline && online && d->sending && !d->asleep)
                sending_kick(d->sending);
}

static const SysbusOps sysbus_ops = {.sleep = sysbus_sleep_cb, .network = sysbus_network_cb};

static void on_signal_cb(uv_signal_t *h, int signum) {
        Daemon *d = h->data;

        switch (signum) {
        case SIGHUP:
                log_info("SIGHUP: reloading %s", d->config_path);
                daemon_reload(d, NULL);
                break;
        default:
                log_info("%s: shutting down", strsignal(signum));
                daemon_stop(d, 0);
                break;
        }
}

int daemon_start(Daemon *d, char **errp) {
        struct {
                uv_signal_t *h;
                int sig;
        } sigs[] = { { &d->sig_term, SIGTERM }, { &d->sig_int, SIGINT }, { &d->sig_hup, SIGHUP } };
        int r;

        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
                r = uv_signal_init(d->loop, sigs[i].h);
                if (r < 0)
                        return r;
                sigs[i].h->data = d;
                r = uv_signal_start(sigs[i].h, on_signal_cb, sigs[i].sig);
                if (r < 0)
                        return r;
        }
        r = daemon_start_store(d, errp);
        if (r != 0)
                return r;
        if (!d->once) {
                r = netmon_new(d->loop, network_changed_cb, d, &d->netmon);
                if (r < 0) {
                        d->netmon = NULL;
                        log_warning("network: cannot watch connectivity (%s): retries follow their timers only",
                                    strerror(-r));
                }
                if (sysbus_new(d->loop, &sysbus_ops, d, &d->sysbus) < 0)
                        d->sysbus = NULL; /* logged there: timers alone */
        }
        log_info("tegamid %s running: %zu account(s) from %s, data in %s", TEGAMI_VERSION, d->config->n_accounts,
                 d->config_path, d->data_dir);
        log_accounts(d->config);
        return 0;
}

int daemon_reload(Daemon *d, char **errp) {
        _cleanup_free_ char *err = NULL;
        Config *c = NULL;
        int r;

        r = config_load(d->config_path, &c, &err);
        if (r < 0) {
                if (!err && asprintf(&err, "%s: %s", d->config_path, strerror(-r)) < 0)
                        err = NULL;
                log_error("reload rejected, keeping the running configuration: %s", err ? err : strerror(-r));
                if (errp)
                        *errp = TAKE_PTR(err);
                return r;
        }
        config_free(d->config);
        d->config = c;
        d->n_reloads++;
        net_tls_flush_contexts(); /* a ca_file may have changed */
        log_info("configuration reloaded: %zu account(s)", c->n_accounts);
        log_accounts(c);
        daemon_restart_sending(d);
        daemon_restart_scheduler(d);
        if (d->listener && d->listener->config_changed)
                d->listener->config_changed(d->listener_userdata);
        return 0;
}

/* Safe twice and on a handle never initialised (its loop is still NULL). */
static void close_handle(uv_signal_t *h) {
        if (h->loop && !uv_is_closing((uv_handle_t *)h))
                uv_close((uv_handle_t *)h, NULL);
}

static void unlock_work_cb(uv_work_t *w) {
        DaemonUnlock *u = container_of(w, DaemonUnlock, work);

        u->r = keys_open(u->daemon->store_path, KEYS_KIND_PASSPHRASE, u->passphrase, &u->key, &u->message);
}

static void unlock_after_cb(uv_work_t *w, int status) {
        DaemonUnlock *u = container_of(w, DaemonUnlock, work);
        Daemon *d = u->daemon;

        d->unlock = NULL;
        if (status == UV_ECANCELED)
                u->r = -ECANCELED;
        else if (u->r == 0 && d->stopping)
                u->r = -ECANCELED; /* the daemon is going away: do not open what it would close */
        else if (u->r == 0) {
                u->r = daemon_open_store(d, u->key, &u->message);
                if (u->r == 0) {
                        d->locked = false;
                        log_notice("store %s unlocked", d->store_path);
                        if (d->listener && d->listener->config_changed)
                                d->listener->config_changed(d->listener_userdata);
                }
        }
        if (u->r != 0)
                log_warning("unlock failed: %s", u->message ? u->message : strerror(u->r < 0 ? -u->r : EINVAL));
        u->cb(u->r, u->message ? u->message : (u->r == 0 ? "unlocked" : strerror(u->r < 0 ? -u->r : EINVAL)),
              u->userdata);
        keys_free(u->key);
        secret_free(u->passphrase);
        free(u->message);
        free(u);
}

int daemon_unlock(Daemon *d, const char *passphrase, DaemonUnlockFn cb, void *userdata) {
        DaemonUnlock *u;
        int r;

        if (!d->locked || d->stopping)
                return -EALREADY;
        if (d->unlock)
                return -EBUSY;
        u = calloc(1, sizeof *u);
        if (!u)
                return -ENOMEM;
        *u = (DaemonUnlock){ .daemon = d, .cb = cb, .userdata = userdata };
        u->passphrase = secret_strdup(passphrase);
        if (!u->passphrase) {
                free(u);
                return -ENOMEM;
        }
        r = uv_queue_work(d->loop, &u->work, unlock_work_cb, unlock_after_cb);
        if (r < 0) {
                secret_free(u->passphrase);
                free(u);
                return r;
        }
        d->unlock = u;
        return 0;
}

static void rekey_close_store(Daemon *d);

/* Passphrase stores: the passphrase unwraps the current key (Argon2id: on the thread pool). */
static void rekey_check_work_cb(uv_work_t *w) {
        DaemonRekey *rk = container_of(w, DaemonRekey, work);
        uint8_t *key = NULL;

        rk->r = keys_open(rk->daemon->store_path, rk->kind, rk->passphrase, &key, &rk->message);
        keys_free(key);
}

static void rekey_check_after_cb(uv_work_t *w, int status) {
        DaemonRekey *rk = container_of(w, DaemonRekey, work);
        Daemon *d = rk->daemon;

        if (rk->r == 0 && status == 0 && !d->stopping && d->store) {
                rekey_close_store(d);
                return;
        }
        d->rekey = NULL;
        if (rk->r == 0)
                rk->r = -ECANCELED;
        rk->cb(rk->r, rk->message ? rk->message : strerror(rk->r < 0 ? -rk->r : EINVAL), rk->userdata);
        secret_free(rk->passphrase);
        free(rk->message);
        free(rk);
}

static void rekey_work_cb(uv_work_t *w) {
        DaemonRekey *rk = container_of(w, DaemonRekey, work);
        const char *path = rk->daemon->store_path;

        rk->r = keys_rekey(path, rk->kind, rk->passphrase, &rk->message);
        /* Reopen under whichever key now stands: the new one, or the old one when the rekey was rolled back. */
        if (keys_open(path, rk->kind, rk->passphrase, &rk->key, rk->r == 0 ? &rk->message : NULL) != 0)
                rk->key = NULL;
}

static void rekey_after_cb(uv_work_t *w, int status) {
        DaemonRekey *rk = container_of(w, DaemonRekey, work);
        Daemon *d = rk->daemon;
        char *open_err = NULL;

        d->rekey = NULL;
        if (status == UV_ECANCELED && rk->r == 0)
                rk->r = -ECANCELED;
        if (!d->stopping) {
                if (!rk->key || daemon_open_store(d, rk->key, &open_err) != 0) {
                        log_error("store %s: cannot reopen after the rekey: %s", d->store_path,
                                  open_err ? open_err : "the key could not be unwrapped");
                        if (rk->r == 0)
                                rk->r = -EIO;
                } else if (d->listener && d->listener->config_changed)
                        d->listener->config_changed(d->listener_userdata);
        }
        if (rk->r == 0)
                log_notice("store %s re-encrypted under a new data key", d->store_path);
        else
                log_warning("rekey failed: %s", rk->message ? rk->message : strerror(rk->r < 0 ? -rk->r : EINVAL));
        rk->cb(rk->r, rk->message ? rk->message : rk->r == 0 ? "rekeyed" : strerror(rk->r < 0 ? -rk->r : EINVAL),
               rk->userdata);
        free(open_err);
        keys_free(rk->key);
        secret_free(rk->passphrase);
        free(rk->message);
        free(rk);
}

/* The store is closed: re-encrypt it off the loop. */
static void rekey_start_work(Daemon *d) {
        DaemonRekey *rk = d->rekey;
        int r = uv_queue_work(d->loop, &rk->work, rekey_work_cb, rekey_after_cb);

        if (r < 0) {
                rk->r = r;
                rekey_after_cb(&rk->work, r);
        }
}

int daemon_rekey(Daemon *d, const char *passphrase, DaemonRekeyFn cb, void *userdata) {
        KeysKind kind = (KeysKind)d->config->store_key;
        DaemonRekey *rk;

        if (d->locked || d->stopping || !d->store)
                return -EAGAIN;
        if (d->unlock || d->rekey)
                return -EBUSY;
        if (keys_stored_kind(d->store_path, &kind) < 0)
                return -ENOENT;
        if (kind == KEYS_KIND_PASSPHRASE && (!passphrase || !*passphrase))
                return -EINVAL;
        rk = calloc(1, sizeof *rk);
        if (!rk)
                return -ENOMEM;
        *rk = (DaemonRekey){.daemon = d, .kind = kind, .cb = cb, .userdata = userdata};
        if (kind == KEYS_KIND_PASSPHRASE && !(rk->passphrase = secret_strdup(passphrase))) {
                free(rk);
                return -ENOMEM;
        }
        d->rekey = rk;
        if (kind == KEYS_KIND_PASSPHRASE) {
                /* A wrong passphrase must not leave the store closed: check it first, the store still open. */
                int r = uv_queue_work(d->loop, &rk->work, rekey_check_work_cb, rekey_check_after_cb);

                if (r < 0) {
                        d->rekey = NULL;
                        secret_free(rk->passphrase);
                        free(rk);
                }
                return r;
        }
        rekey_close_store(d);
        return 0;
}

/* Past the checks: the engines go (their sessions are cancelled safely), the store closes after them,
 * and store_closed_cb starts the work. */
static void rekey_close_store(Daemon *d) {
        d->rekey->closing = true;
        log_info("store %s: rekey: stopping the engines and closing the store", d->store_path);
        ondemand_cancel_all(d);
        if (d->sending) {
                d->n_sendings_closing++;
                sending_close(TAKE_PTR(d->sending), sending_closed_cb, d);
        }
        if (d->scheduler) {
                daemon_store_hold(d);
                scheduler_close(TAKE_PTR(d->scheduler), scheduler_closed_cb, d);
        }
        maybe_close_store(d);
}

void daemon_stop(Daemon *d, int exit_code) {
        if (d->stopping)
                return;
        d->stopping = true;
        d->exit_code = exit_code;
        if (d->listener && d->listener->stopping)
                d->listener->stopping(d->listener_userdata);
        close_handle(&d->sig_term);
        close_handle(&d->sig_int);
        close_handle(&d->sig_hup);
        if (d->unlock)
                uv_cancel((uv_req_t *)&d->unlock->work);
        if (d->netmon)
                netmon_close(TAKE_PTR(d->netmon), NULL, NULL);
        sysbus_close(TAKE_PTR(d->sysbus));
        ondemand_cancel_all(d);
        if (d->sending) {
                d->n_sendings_closing++;
                sending_close(TAKE_PTR(d->sending), sending_closed_cb, d);
        }
        if (d->scheduler) {
                daemon_store_hold(d);
                scheduler_close(TAKE_PTR(d->scheduler), scheduler_closed_cb, d);
        }
        maybe_close_store(d);
}

void daemon_deinit(Daemon *d) {
        config_free(d->config);
        free(d->config_path);
        free(d->data_dir);
        free(d->store_path);
        free(d->counts); /* one block (daemon/service-sync.c) */
        *d = (Daemon){ 0 };
}
