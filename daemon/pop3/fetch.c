/*
 * The POP3 fetch engine: one Pop3Fetch per run, owning its Pop3Client, the
 * maildrop (maildrop.c: the server's listing merged with the local POP3
 * entries) and, while it runs, a download (download.c). Loop thread only; the
 * store writes on its own thread and calls back here. The Pop3Fetch is freed
 * in one place, fetch_maybe_done(), once the client has closed, the download
 * has reported and every store write it started has called back.
 *
 * States, in order: ACCOUNT (store rows for the account and its folder, the
 * local POP3 entries), LOGIN, LISTING (STAT, UIDL, LIST pipelined, and TOP n 0
 * for messages without a usable UIDL), DOWNLOAD (pipelined RETRs streamed into
 * the store, each recorded with its message row), COMMIT (the rules again, now
 * that the downloads are stored; the DELE candidates marked delete-pending in
 * ONE barrier commit, which also makes every download before it durable),
 * DELETE (DELE), QUIT, and CLOSING. No DELE is ever sent before the barrier
 * commit has called back; a session that breaks before QUIT's +OK leaves the
 * candidates delete-pending, to be re-checked by the next fetch.
 */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pop3/client.h"
#include "daemon/pop3/download.h"
#include "daemon/pop3/fetch.h"
#include "daemon/pop3/maildrop.h"
#include "store/pop3.h"
#include "util/log.h"

typedef enum FetchState {
        FETCH_ACCOUNT,
        FETCH_LOGIN,
        FETCH_LISTING,
        FETCH_DOWNLOAD,
        FETCH_COMMIT,
        FETCH_DELETE,
        FETCH_QUIT,
        FETCH_CLOSING,
        _FETCH_STATE_MAX,
} FetchState;

static const char *const fetch_state_names[_FETCH_STATE_MAX] = {
        [FETCH_ACCOUNT] = "account",   [FETCH_LOGIN] = "login",     [FETCH_LISTING] = "listing",
        [FETCH_DOWNLOAD] = "download", [FETCH_COMMIT] = "commit",   [FETCH_DELETE] = "delete",
        [FETCH_QUIT] = "quit",         [FETCH_CLOSING] = "closing",
};

struct Pop3Fetch {
        uv_loop_t *loop;
        Store *store;
        const Account *acct;
        Pop3FetchOptions opts;
        Pop3FetchFn cb;
        void *userdata;
        FetchState state;
        int64_t account_id, folder_id;
        Pop3Client *client;
        bool client_open;
        Pop3Maildrop md; /* the server's listing and the local state */
        uint32_t *dl;    /* message numbers to download */
        size_t n_dl;
        bool downloading; /* download.c is at work; its callback is still to come */
        size_t n_store;   /* store writes not yet called back */
        size_t n_top_flight;
        int64_t *new_ids; /* store ids of the messages downloaded */
        uint32_t *del; /* message numbers marked delete-pending by the barrier commit */
        size_t n_del;
        bool failed;
        Pop3FetchResult res;
        char error[1200];
};

static void fetch_commit(Pop3Fetch *f);
static void fetch_quit(Pop3Fetch *f);
static void plan(Pop3Fetch *f);
static void download_start(Pop3Fetch *f);

/* Logs the transition; each state's work is started by the function that enters it. */
static void enter_state(Pop3Fetch *f, FetchState state) {
        log_acct_debug(f->acct->name, "pop3 fetch: %s -> %s", fetch_state_names[f->state], fetch_state_names[state]);
        f->state = state;
}

/* Frees everything the fetch owns; only from fetch_maybe_done(). */
static void fetch_free(Pop3Fetch *f) {
        pop3_maildrop_deinit(&f->md);
        free(f->dl);
        free(f->del);
        free(f->new_ids);
        free(f);
}

/* The end: once the client is closed and the store has called back, report and free. */
static void fetch_maybe_done(Pop3Fetch *f) {
        if (f->state != FETCH_CLOSING || f->client_open || f->n_store > 0 || f->downloading)
                return;
        f->res.error = f->error;
        f->res.new_ids = f->new_ids;
        if (f->res.r == -ECANCELED)
                log_info("%s", f->error);
        else if (f->res.r < 0)
                log_error("%s", f->error); /* the text names the account already */
        f->cb(&f->res, f->userdata);
        fetch_free(f);
}

/* Closes the session (if any) and finishes once the client and the store have called back. */
static void fetch_end(Pop3Fetch *f) {
        if (f->state == FETCH_CLOSING)
                return;
        enter_state(f, FETCH_CLOSING);
        if (f->client_open)
                pop3_client_close(f->client); /* closed_cb follows */
        fetch_maybe_done(f);
}

/* Fails the fetch with a reason; nothing more is downloaded and no DELE is sent. */
_printf_(4, 5) static void fetch_fail(Pop3Fetch *f, int r, NetFailure failure, const char *fmt, ...) {
        va_list ap;

        if (!f->failed) {
                f->failed = true;
                f->res.r = r < 0 ? r : -EPROTO;
                f->res.failure = failure;
                va_start(ap, fmt);
                vsnprintf(f->error, sizeof f->error, fmt, ap);
                va_end(ap);
        }
        fetch_end(f);
}

/* The session failed: the client's message names the account, the server and the reason. */
static void fetch_fail_client(Pop3Fetch *f, int r) {
        fetch_fail(f, r, pop3_client_get_failure(f->client), "%s", pop3_client_get_error(f->client));
}

/* A store write failed: the fetch stops, and with no barrier commit no DELE is ever sent. */
static void store_fail(Pop3Fetch *f, int r, const char *what) {
        fetch_fail(f, r, NET_FAILURE_NETWORK, "account %s: store: %s: %s", f->acct->name, what, strerror(-r));
}

/* ---- login and listing ---------------------------------------------------------------------- */

static void stat_event_cb(const Pop3Event *ev, void *userdata) {
        Pop3Fetch *f = userdata;

        if (ev->kind != POP3_EVENT_STAT || f->md.have_stat)
                return;
        f->res.n_server = ev->stat.n_messages;
        f->res.server_bytes = ev->stat.size;
        if (pop3_maildrop_set_stat(&f->md, ev->stat.n_messages, ev->stat.size) < 0)
                pop3_client_fail(f->client, NET_FAILURE_NETWORK, "out of memory for %u messages", ev->stat.n_messages);
}

/* One UIDL or LIST line: numbers outside STAT's count are a protocol error. */
static void listing_event_cb(const Pop3Event *ev, void *userdata) {
        Pop3Fetch *f = userdata;
        int r;

        if (ev->kind != POP3_EVENT_LISTING || f->failed)
                return;
        r = pop3_maildrop_add_listing(&f->md, &ev->listing);
        if (r == -ERANGE)
                pop3_client_fail(f->client, NET_FAILURE_PROTOCOL, "listing names message %u, but STAT said %u",
                                 ev->listing.msg, f->md.n_msgs);
        else if (r < 0)
                pop3_client_fail(f->client, NET_FAILURE_NETWORK, "out of memory");
}

/* STAT must work: without it the listing cannot be checked. */
static void stat_done_cb(int r, const Pop3Status *st, void *userdata) {
        Pop3Fetch *f = userdata;

        if (r == POP3_CMDQ_E_ERR)
                pop3_client_fail(f->client, NET_FAILURE_PROTOCOL, "STAT refused: %s", st->text);
}

/* No UIDL (-ERR): every message then goes through the TOP fallback in identify(). */
static void uidl_done_cb(int r, const Pop3Status *st, void *userdata) {
        Pop3Fetch *f = userdata;

        if (r == POP3_CMDQ_E_ERR)
                log_acct_warning(f->acct->name, "pop3: the server has no UIDL (%s): messages are left alone", st->text);
}

/* Runs the rules over the usable messages of the maildrop as it stands. */
static int run_rules(Pop3Fetch *f, Pop3RuleMsg **rmp, Pop3Decision **decp, size_t *np) {
        const Pop3Caps *caps = pop3_client_get_caps(f->client);
        _cleanup_free_ Pop3RuleMsg *rm = NULL;
        _cleanup_free_ Pop3Decision *dec = NULL;
        Pop3RulesReport rep;
        Pop3Rules rules;
        size_t n = 0;
        int r;

        r = pop3_maildrop_rule_input(&f->md, &rm, &n);
        if (r < 0)
                return r;
        dec = calloc(n ? n : 1, sizeof *dec);
        if (!dec)
                return -ENOMEM;
        pop3_rules_from_account(&rules, f->acct);
        if (caps->expire && !caps->expire_never)
                rules.server_expire_days = caps->expire_days;
        r = pop3_rules_apply(&rules, rm, n, f->opts.now, dec, &rep);
        if (r < 0)
                return r;
        if ((rep.warnings & ~f->res.warnings) & POP3_RULES_W_EXPIRE_0)
                log_acct_warning(f->acct->name, "pop3: the server deletes messages once retrieved (EXPIRE 0): "
                                                "pop3_leave_on_server cannot be honoured");
        if ((rep.warnings & ~f->res.warnings) & POP3_RULES_W_EXPIRE_EARLIER)
                log_acct_warning(f->acct->name,
                                 "pop3: the server deletes messages after %u day(s) (EXPIRE), "
                                 "earlier than pop3_delete_after_days",
                                 caps->expire_days);
        if ((rep.warnings & ~f->res.warnings) & POP3_RULES_W_LIMIT_UNREACHED)
                log_acct_warning(f->acct->name, "pop3: the keep-under limits cannot be met: messages not "
                                                "stored here are never deleted");
        f->res.warnings |= rep.warnings;
        *rmp = TAKE_PTR(rm);
        *decp = TAKE_PTR(dec);
        *np = n;
        return 0;
}

/* A bookkeeping write (skipped, vanished, kept) is committed; the fetch waits for them all before it ends. */
static void store_done_cb(int r, int64_t id, void *userdata) {
        Pop3Fetch *f = userdata;

        f->n_store--;
        if (r < 0 && !f->failed)
                log_acct_warning(f->acct->name, "pop3: store: %s", strerror(-r));
        fetch_maybe_done(f);
}

/* Submits a state change; counts it so the fetch waits for it. */
static int set_state(Pop3Fetch *f, char **uidls, size_t n, StorePop3State state, StoreDurability d, StoreIdFn cb) {
        int r = store_pop3_set_state(f->store, f->account_id, (const char *const *)uidls, n, state, f->opts.now, d, cb,
                                     f);

        if (r == 0)
                f->n_store++;
        return r;
}

/* The listing is complete (UIDL fallback included): decide what to download, and start. */
static void plan(Pop3Fetch *f) {
        _cleanup_free_ Pop3RuleMsg *rm = NULL;
        _cleanup_free_ Pop3Decision *dec = NULL;
        _cleanup_free_ char **skipped = NULL;
        size_t n = 0, n_skipped = 0;
        int r;

        r = pop3_maildrop_resolve(&f->md, f->opts.now);
        if (r < 0)
                return fetch_fail(f, r, NET_FAILURE_NETWORK, "account %s: out of memory", f->acct->name);
        f->res.n_unmanaged = f->md.n_unusable;
        r = run_rules(f, &rm, &dec, &n);
        if (r < 0)
                return fetch_fail(f, r, NET_FAILURE_NETWORK, "account %s: out of memory", f->acct->name);
        if (f->opts.plan_fn)
                f->opts.plan_fn(rm, dec, n, f->userdata);
        if (f->opts.dry_run)
                return fetch_quit(f);

        f->dl = calloc(n ? n : 1, sizeof *f->dl);
        skipped = calloc(n ? n : 1, sizeof *skipped);
        if (!f->dl || !skipped)
                return fetch_fail(f, -ENOMEM, NET_FAILURE_NETWORK, "account %s: out of memory", f->acct->name);
        for (size_t k = 0; k < n; k++) {
                if (dec[k].download)
                        f->dl[f->n_dl++] = rm[k].msg;
                else if (dec[k].download_why == POP3_WHY_SKIP_TOO_BIG) {
                        f->res.n_skipped++;
                        if (rm[k].local == POP3_LOCAL_NEW)
                                skipped[n_skipped++] = (char *)rm[k].uidl;
                }
        }
        if (n_skipped > 0 && set_state(f, skipped, n_skipped, STORE_POP3_SKIPPED, STORE_BULK, store_done_cb) < 0)
                return store_fail(f, -ENOMEM, "recording skipped messages");
        log_acct_info(f->acct->name, "pop3: %u message(s) on the server (%llu bytes), %zu to download, %zu skipped",
                      f->md.n_msgs, (unsigned long long)f->res.server_bytes, f->n_dl, f->res.n_skipped);
        if (f->acct->pop3_server_warn_mb > 0 &&
            f->res.server_bytes > (uint64_t)f->acct->pop3_server_warn_mb * POP3_RULES_MB) {
                f->res.warnings |= POP3_FETCH_W_QUOTA;
                log_acct_warning(f->acct->name, "pop3: %llu MiB on the server, above pop3_server_warn_mb = %u",
                                 (unsigned long long)(f->res.server_bytes / POP3_RULES_MB),
                                 f->acct->pop3_server_warn_mb);
        }
        download_start(f);
}

/* ---- UIDL fallback: a hash of the headers (TOP n 0) and the size --------------------------------- */

typedef struct Top {
        Pop3Fetch *f;
        uint32_t msg;
        crypto_generichash_state hash;
} Top;

/* Hashes the headers TOP n 0 returns, streamed. */
static void top_event_cb(const Pop3Event *ev, void *userdata) {
        Top *t = userdata;

        if (ev->kind == POP3_EVENT_BODY)
                crypto_generichash_update(&t->hash, (const unsigned char *)ev->chunk.data, ev->chunk.size);
}

/* A header hash is complete: name the message by it; the last one starts the plan. */
static void top_done_cb(int r, const Pop3Status *st, void *userdata) {
        Top *t = userdata;
        Pop3Fetch *f = t->f;
        unsigned char h[20];

        if (r == 0) {
                crypto_generichash_final(&t->hash, h, sizeof h);
                if (pop3_maildrop_set_header_uid(&f->md, t->msg, h, sizeof h) < 0)
                        log_acct_warning(f->acct->name, "pop3: out of memory naming message %u", t->msg);
        } else if (r == POP3_CMDQ_E_ERR)
                log_acct_warning(f->acct->name, "pop3: TOP %u refused (%s): message left alone", t->msg, st->text);
        free(t);
        if (r < 0 || f->failed)
                return;
        if (--f->n_top_flight == 0)
                plan(f);
}

/* Messages without a usable UIDL (none, malformed, or duplicate) are named by their headers. */
static void identify(Pop3Fetch *f) {
        int r;

        r = pop3_maildrop_mark_unusable(&f->md);
        if (r < 0)
                return fetch_fail(f, r, NET_FAILURE_NETWORK, "account %s: out of memory", f->acct->name);
        /* TOP is tried even when CAPA did not list it; -ERR leaves the message alone. */
        for (uint32_t i = 0; i < f->md.n_msgs; i++) {
                Top *t;

                if (!f->md.msgs[i].unusable)
                        continue;
                t = calloc(1, sizeof *t);
                if (!t)
                        return fetch_fail(f, -ENOMEM, NET_FAILURE_NETWORK, "account %s: out of memory", f->acct->name);
                *t = (Top){.f = f, .msg = i + 1};
                crypto_generichash_init(&t->hash, NULL, 0, 20);
                r = pop3_client_send(f->client, POP3_EXPECT_BODY, top_event_cb, top_done_cb, t, "TOP %u 0", i + 1);
                if (r < 0) {
                        free(t);
                        return fetch_fail_client(f, r);
                }
                f->n_top_flight++;
        }
        if (f->n_top_flight == 0)
                return plan(f);
        f->res.uidl_fallback = true;
        f->res.warnings |= POP3_FETCH_W_UIDL_FALLBACK;
        log_acct_warning(f->acct->name,
                         "pop3: %zu message(s) without a usable UIDL: naming them by a hash of "
                         "their headers (TOP n 0) and size",
                         (size_t)f->n_top_flight);
}

/* STAT, UIDL and LIST are in (they are answered in order): name what needs naming, then plan. */
static void list_done_cb(int r, const Pop3Status *st, void *userdata) {
        Pop3Fetch *f = userdata;

        if (r < 0 || f->failed)
                return;
        if (r == POP3_CMDQ_E_ERR)
                return pop3_client_fail(f->client, NET_FAILURE_PROTOCOL, "LIST refused: %s", st->text);
        if (!f->md.have_stat)
                return pop3_client_fail(f->client, NET_FAILURE_PROTOCOL, "no STAT answer");
        identify(f);
}

/* ---- download (download.c) ---------------------------------------------------------------- */

/* Every RETR is answered (or cancelled) and every body stored is recorded. */
static void download_done_cb(int r, const char *what, size_t n_stored, const int64_t *ids, uint64_t bytes,
                             void *userdata) {
        Pop3Fetch *f = userdata;

        f->downloading = false;
        free(f->new_ids);
        f->new_ids = n_stored > 0 ? malloc(n_stored * sizeof *ids) : NULL;
        if (f->new_ids)
                memcpy(f->new_ids, ids, n_stored * sizeof *ids); /* else only counted: no NewMail ids */
        f->res.n_downloaded = n_stored;
        f->res.downloaded_bytes = bytes;
        if (r < 0)
                store_fail(f, r, what);
        else if (!f->failed)
                fetch_commit(f);
        fetch_maybe_done(f);
}

static void download_start(Pop3Fetch *f) {
        Pop3DownloadParams p = {.store = f->store,
                                .client = f->client,
                                .client_open = &f->client_open,
                                .md = &f->md,
                                .account = f->acct->name,
                                .account_id = f->account_id,
                                .folder_id = f->folder_id,
                                .now = f->opts.now};
        int r;

        enter_state(f, FETCH_DOWNLOAD);
        if (f->n_dl == 0)
                return fetch_commit(f);
        r = pop3_download_start(&p, f->dl, f->n_dl, download_done_cb, f);
        if (r == -ENOMEM)
                return fetch_fail(f, r, NET_FAILURE_NETWORK, "account %s: out of memory", f->acct->name);
        if (r < 0)
                return fetch_fail_client(f, r);
        f->downloading = true;
}

/* ---- commit, delete, quit --------------------------------------------------------------------- */

static void deleted_cb(int r, int64_t id, void *userdata) {
        Pop3Fetch *f = userdata;

        f->n_store--;
        if (r < 0)
                log_acct_warning(f->acct->name, "pop3: store: recording deletions: %s", strerror(-r));
        fetch_maybe_done(f);
}

/* +OK to QUIT: the server has applied the DELEs (RFC 1939 UPDATE state); record them as deleted. */
static void quit_done_cb(int r, const Pop3Status *st, void *userdata) {
        Pop3Fetch *f = userdata;
        _cleanup_free_ char **gone = NULL;
        size_t n_gone = 0;

        if (r < 0)
                return; /* the client's failed callback reports it */
        if (r == POP3_CMDQ_E_ERR) {
                /* RFC 1939: some deletions may not have been applied; they stay delete-pending. */
                log_acct_warning(f->acct->name, "pop3: QUIT failed (%s): deletions are re-checked next time", st->text);
                return fetch_end(f);
        }
        gone = calloc(f->md.n_msgs ? f->md.n_msgs : 1, sizeof *gone);
        if (!gone)
                return fetch_end(f);
        for (uint32_t i = 0; i < f->md.n_msgs; i++)
                if (f->md.msgs[i].dele_ok)
                        gone[n_gone++] = f->md.msgs[i].uidl;
        f->res.n_deleted = n_gone;
        if (n_gone > 0 && set_state(f, gone, n_gone, STORE_POP3_DELETED, STORE_BULK, deleted_cb) < 0)
                log_acct_warning(f->acct->name, "pop3: could not record deletions; re-checked next time");
        log_acct_info(f->acct->name, "pop3: %zu downloaded, %zu deleted on the server, %zu deleted by another client",
                      f->res.n_downloaded, f->res.n_deleted, f->res.n_deleted_elsewhere);
        fetch_end(f);
}

/* QUIT ends the session; it goes after every command queued before it. */
static void fetch_quit(Pop3Fetch *f) {
        int r;

        enter_state(f, FETCH_QUIT);
        r = pop3_client_quit(f->client, quit_done_cb, f);
        if (r < 0)
                fetch_fail_client(f, r);
}

/* A DELE in flight: its reply says whether the server will delete the message at QUIT. */
typedef struct Dele {
        Pop3Fetch *f;
        uint32_t msg;
} Dele;

/* Only DELEs answered +OK are recorded as deleted after QUIT; the rest stay delete-pending. */
static void dele_done_cb(int r, const Pop3Status *st, void *userdata) {
        Dele *d = userdata;
        Pop3Fetch *f = d->f;

        if (r == 0)
                f->md.msgs[d->msg - 1].dele_ok = true;
        else if (r == POP3_CMDQ_E_ERR)
                log_acct_warning(f->acct->name, "pop3: DELE %u refused: %s", d->msg, st->text);
        free(d);
}

/* The barrier commit is done: everything stored is durable, the candidates are delete-pending. */
static void barrier_cb(int r, int64_t id, void *userdata) {
        Pop3Fetch *f = userdata;

        f->n_store--;
        if (r < 0)
                return store_fail(f, r, "barrier commit (nothing deleted on the server)");
        if (f->failed)
                return fetch_maybe_done(f);
        enter_state(f, FETCH_DELETE);
        for (size_t k = 0; k < f->n_del; k++) {
                Dele *d = malloc(sizeof *d);

                if (!d)
                        return fetch_fail(f, -ENOMEM, NET_FAILURE_NETWORK, "account %s: out of memory", f->acct->name);
                *d = (Dele){.f = f, .msg = f->del[k]};
                r = pop3_client_send(f->client, POP3_EXPECT_SINGLE, NULL, dele_done_cb, d, "DELE %u", d->msg);
                if (r < 0) {
                        free(d);
                        return fetch_fail_client(f, r);
                }
        }
        fetch_quit(f); /* QUIT goes after the DELEs, in order */
}

/*
 * The downloads are in: decide the deletions with the stored state, record
 * what vanished, and mark the DELE candidates delete-pending in the barrier
 * commit. Only barrier_cb sends DELE.
 */
static void fetch_commit(Pop3Fetch *f) {
        _cleanup_free_ Pop3RuleMsg *rm = NULL;
        _cleanup_free_ Pop3Decision *dec = NULL;
        _cleanup_free_ char **del = NULL, **keep = NULL;
        size_t n = 0, n_del = 0, n_keep = 0;
        int r;

        enter_state(f, FETCH_COMMIT);
        r = run_rules(f, &rm, &dec, &n);
        del = calloc(n ? n : 1, sizeof *del);
        keep = calloc(n ? n : 1, sizeof *keep);
        if (r < 0 || !del || !keep)
                return fetch_fail(f, -ENOMEM, NET_FAILURE_NETWORK, "account %s: out of memory", f->acct->name);
        f->del = calloc(n ? n : 1, sizeof *f->del);
        if (!f->del)
                return fetch_fail(f, -ENOMEM, NET_FAILURE_NETWORK, "account %s: out of memory", f->acct->name);
        for (size_t k = 0; k < n; k++) {
                if (dec[k].delete) {
                        log_acct_debug(f->acct->name, "pop3: will delete %u (%s): %s", rm[k].msg, rm[k].uidl,
                                       pop3_why_to_string(dec[k].delete_why));
                        del[n_del++] = (char *)rm[k].uidl;
                        f->del[f->n_del++] = rm[k].msg; /* exactly these get DELE, after the barrier */
                } else if (rm[k].local == POP3_LOCAL_DELETE_PENDING)
                        keep[n_keep++] = (char *)rm[k].uidl; /* the rules no longer want it gone */
        }
        f->res.n_deleted_elsewhere = f->md.n_vanished_elsewhere;
        if (f->md.n_vanished > 0 &&
            set_state(f, f->md.vanished, f->md.n_vanished, STORE_POP3_DELETED, STORE_BULK, store_done_cb) < 0)
                return store_fail(f, -ENOMEM, "recording vanished messages");
        if (n_keep > 0 && set_state(f, keep, n_keep, STORE_POP3_DOWNLOADED, STORE_BULK, store_done_cb) < 0)
                return store_fail(f, -ENOMEM, "recording kept messages");
        if (f->md.n_forgettable > 0) {
                /* Deleted earlier and no longer listed: the record has done its job. */
                if (store_pop3_forget_deleted(f->store, f->account_id, (const char *const *)f->md.forgettable,
                                              f->md.n_forgettable, store_done_cb, f) < 0)
                        return store_fail(f, -ENOMEM, "forgetting deleted messages");
                f->n_store++;
        }
        /* The one barrier: every download and record before it is durable when it calls back. */
        r = set_state(f, del, n_del, STORE_POP3_DELETE_PENDING, STORE_BARRIER, barrier_cb);
        if (r < 0)
                return store_fail(f, r, "barrier commit");
}

/* ---- start ------------------------------------------------------------------------------------- */

static void client_ready_cb(Pop3Client *c, int r, void *userdata) {
        Pop3Fetch *f = userdata;

        if (r < 0)
                return fetch_fail_client(f, r);
        enter_state(f, FETCH_LISTING);
        if (pop3_client_get_caps(c)->login_delay)
                f->res.login_delay_seconds = pop3_client_get_caps(c)->login_delay_seconds;
        /* Pipelined when the server allows; the queue keeps them in lockstep otherwise. */
        r = pop3_client_send(c, POP3_EXPECT_STAT, stat_event_cb, stat_done_cb, f, "STAT");
        if (r >= 0)
                r = pop3_client_send(c, POP3_EXPECT_UIDL, listing_event_cb, uidl_done_cb, f, "UIDL");
        if (r >= 0)
                r = pop3_client_send(c, POP3_EXPECT_LIST, listing_event_cb, list_done_cb, f, "LIST");
        if (r < 0)
                fetch_fail_client(f, r);
}

/* The session broke after login: whatever is delete-pending stays so, to be re-checked next time. */
static void client_failed_cb(Pop3Client *c, int r, void *userdata) {
        fetch_fail_client(userdata, r);
}

/* The client is gone (it frees itself after this): the fetch may finish. */
static void client_closed_cb(Pop3Client *c, void *userdata) {
        Pop3Fetch *f = userdata;

        f->client_open = false;
        fetch_maybe_done(f);
}

static const Pop3ClientOps client_ops = {
        .ready = client_ready_cb,
        .failed = client_failed_cb,
        .closed = client_closed_cb,
};

/* The local state is read before connecting, so the session is short. */
static void login(Pop3Fetch *f) {
        int r;

        r = pop3_maildrop_load_local(&f->md, f->store, f->account_id, f->folder_id);
        if (r < 0)
                return store_fail(f, r, "reading the POP3 state");
        enter_state(f, FETCH_LOGIN);
        r = pop3_client_new(f->loop, f->acct, &client_ops, f, &f->client);
        if (r < 0)
                return fetch_fail(f, r, NET_FAILURE_NETWORK, "account %s: %s", f->acct->name, strerror(-r));
        if (f->opts.read_timeout_ms)
                pop3_client_set_timeouts(f->client, f->opts.read_timeout_ms, f->opts.read_timeout_ms);
        r = pop3_client_connect(f->client);
        if (r < 0) {
                pop3_client_close(f->client); /* closed_cb is not waited for: client_open is still false */
                return fetch_fail(f, r, NET_FAILURE_NETWORK, "account %s: %s", f->acct->name, strerror(-r));
        }
        f->client_open = true;
}

/* The account's POP3 folder was created: log in. */
static void folder_cb(int r, int64_t id, void *userdata) {
        Pop3Fetch *f = userdata;

        f->n_store--;
        if (f->failed)
                return fetch_maybe_done(f); /* cancelled meanwhile */
        if (r < 0)
                return store_fail(f, r, "creating the folder");
        f->folder_id = id;
        login(f);
}

/* The account's row exists: find (or create) the folder POP3 messages are filed in. */
static void account_cb(int r, int64_t id, void *userdata) {
        Pop3Fetch *f = userdata;
        StoreFolder *folders = NULL, inbox = {.name = (char *)POP3_FETCH_FOLDER, .role = STORE_ROLE_INBOX};
        size_t n = 0;

        f->n_store--;
        if (f->failed)
                return fetch_maybe_done(f); /* cancelled meanwhile */
        if (r < 0)
                return store_fail(f, r, "adding the account");
        f->account_id = id;
        r = store_folder_list(f->store, id, &folders, &n);
        if (r < 0)
                return store_fail(f, r, "listing folders");
        for (size_t i = 0; i < n; i++)
                if (strcmp(folders[i].name, POP3_FETCH_FOLDER) == 0)
                        f->folder_id = folders[i].id;
        store_folder_list_free(folders, n);
        if (f->folder_id)
                return login(f);
        inbox.account_id = id;
        r = store_folder_upsert(f->store, &inbox, folder_cb, f);
        if (r < 0)
                return store_fail(f, r, "creating the folder");
        f->n_store++;
}

int pop3_fetch_begin(uv_loop_t *loop, Store *store, const Account *a, const Pop3FetchOptions *opts, Pop3FetchFn cb,
                     void *userdata, Pop3Fetch **fp) {
        Pop3Fetch *f;
        int r;

        if (a->pop3.proto != SERVER_POP3 || !cb)
                return -EINVAL;
        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        *f = (Pop3Fetch){.loop = loop, .store = store, .acct = a, .opts = *opts, .cb = cb, .userdata = userdata};
        pop3_maildrop_init(&f->md);
        f->res.error = "";
        r = store_account_upsert(store, a->name, account_cb, f);
        if (r < 0) {
                free(f);
                return r;
        }
        f->n_store++;
        if (fp)
                *fp = f;
        return 0;
}

int pop3_fetch_start_full(uv_loop_t *loop, Store *store, const Account *a, const Pop3FetchOptions *opts, Pop3FetchFn cb,
                          void *userdata) {
        return pop3_fetch_begin(loop, store, a, opts, cb, userdata, NULL);
}

void pop3_fetch_cancel(Pop3Fetch *f) {
        fetch_fail(f, -ECANCELED, NET_FAILURE_NETWORK, "account %s: fetch cancelled", f->acct->name);
}

int pop3_fetch_start(uv_loop_t *loop, Store *store, const Account *a, int64_t now, Pop3FetchFn cb, void *userdata) {
        Pop3FetchOptions opts = {.now = now};

        return pop3_fetch_start_full(loop, store, a, &opts, cb, userdata);
}
