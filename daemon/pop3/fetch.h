/*
 * One POP3 fetch for one account: STAT + UIDL + LIST, the retention rules
 * (rules.h), pipelined RETR of the new messages streamed into the store, ONE
 * barrier commit, only then DELE for what the rules say, and QUIT. A session
 * that breaks before QUIT leaves the deletions "delete-pending": they are
 * re-checked on the next fetch, and nothing stored is ever downloaded again.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/net/backoff.h"
#include "daemon/pop3/rules.h"
#include "store/store.h"

/* The folder POP3 messages are filed in, one per account. */
#define POP3_FETCH_FOLDER "INBOX"

typedef struct Pop3FetchResult {
        int r;                 /* 0, or a negative errno: error says why */
        NetFailure failure;    /* retry or stop (backoff.h); NONE on success */
        const char *error;     /* "account NAME: HOST:PORT: reason", "" on success */
        uint32_t n_server;     /* messages on the server (STAT) */
        uint64_t server_bytes; /* their size (STAT) */
        size_t n_downloaded;   /* stored by this fetch */
        const int64_t *new_ids; /* their store ids (in POP3_FETCH_FOLDER); NULL if memory ran out */
        uint64_t downloaded_bytes;
        size_t n_skipped;             /* left on the server by pop3_skip_bigger_than_mb */
        size_t n_deleted;             /* deleted on the server by this fetch (QUIT acknowledged) */
        size_t n_deleted_elsewhere;   /* gone from the server without our DELE: another client */
        size_t n_unmanaged;           /* no usable UIDL (missing, too long, duplicate): left alone */
        unsigned warnings;            /* POP3_RULES_W_* and POP3_FETCH_W_* */
        uint32_t login_delay_seconds; /* the server's LOGIN-DELAY: poll no more often (0 = none) */
        bool uidl_fallback;           /* some messages are known by a hash of TOP n 0 headers + size */
} Pop3FetchResult;

/* Warnings beyond the rules' (which use the low bits). */
enum {
        POP3_FETCH_W_QUOTA = 1u << 8,         /* server usage (STAT) is above pop3_server_warn_mb */
        POP3_FETCH_W_UIDL_FALLBACK = 1u << 9, /* no usable UIDL for some messages: TOP headers + size used */
};

/* Called once with the outcome; res is valid during the call only. */
typedef void (*Pop3FetchFn)(const Pop3FetchResult *res, void *userdata);

/* Dry runs: called once with the plan (the server's listing and the decisions), before anything is
 * downloaded or deleted. */
typedef void (*Pop3FetchPlanFn)(const Pop3RuleMsg *msgs, const Pop3Decision *decisions, size_t n, void *userdata);

typedef struct Pop3FetchOptions {
        int64_t now;              /* Unix time the rules use (tests inject it) */
        bool dry_run;             /* plan, report through plan_fn, QUIT: no download, no DELE */
        Pop3FetchPlanFn plan_fn;  /* may be NULL */
        uint64_t read_timeout_ms; /* 0 = the client's default */
} Pop3FetchOptions;

/*
 * Starts one fetch of account a (which must outlive it) into store; cb runs
 * once when it is over and everything it wrote has been committed. Returns 0,
 * or a negative errno (cb will not run).
 */
int pop3_fetch_start(uv_loop_t *loop, Store *store, const Account *a, int64_t now, Pop3FetchFn cb, void *userdata);

/* The same with options (dry run, timeouts). */
int pop3_fetch_start_full(uv_loop_t *loop, Store *store, const Account *a, const Pop3FetchOptions *opts, Pop3FetchFn cb,
                          void *userdata);

typedef struct Pop3Fetch Pop3Fetch;

/*
 * The same, handing out the running fetch in *fp (may be NULL) for
 * pop3_fetch_cancel(); it is valid until cb runs.
 */
int pop3_fetch_begin(uv_loop_t *loop, Store *store, const Account *a, const Pop3FetchOptions *opts, Pop3FetchFn cb,
                     void *userdata, Pop3Fetch **fp);

/*
 * Stops a running fetch as if the session broke: nothing more is downloaded,
 * deletions not yet acknowledged by QUIT stay delete-pending. cb still runs
 * once, with -ECANCELED, after what was in flight has been committed.
 */
void pop3_fetch_cancel(Pop3Fetch *f);

/* Called once when pop3_fetch_all_start() is over: how many accounts were fetched and how many failed. */
typedef void (*Pop3FetchAllFn)(size_t n_fetched, size_t n_failed, void *userdata);

/*
 * Fetches every POP3 account of config (or only the one called only), one
 * after the other, into store; each outcome is logged under its account. c
 * and store must outlive it. Returns 0 (cb follows, never from inside this
 * call), -ENOENT when no POP3 account matches (cb will not run), or a
 * negative errno.
 */
int pop3_fetch_all_start(uv_loop_t *loop, Store *store, const Config *c, const char *only, int64_t now,
                         Pop3FetchAllFn cb, void *userdata);
