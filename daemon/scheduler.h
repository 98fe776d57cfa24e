/*
 * When each account is synced: one timer per account, at most one session
 * per account at a time, every poll_interval seconds with a jitter so many
 * accounts (and many machines) do not poll in step, never sooner than the
 * server's LOGIN-DELAY, with the shared backoff after failures, and no more
 * automatic attempts after a failure only the user can fix (credentials,
 * certificate, downgrade) until a reload or an explicit "sync now".
 *
 * The protocol engines plug in through SchedEngine: POP3 fetch today, the
 * IMAP sync engine when built. Loop thread only.
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

typedef struct Scheduler Scheduler;
typedef struct SchedJob SchedJob;

typedef enum SchedState {
        SCHED_STATE_IDLE,    /* waiting for the next poll */
        SCHED_STATE_RUNNING, /* a session is at work */
        SCHED_STATE_RETRY,   /* the last run failed; the next comes after a backoff */
        SCHED_STATE_ERROR,   /* the last run failed for good: waits for the user */
        SCHED_STATE_DISABLED, /* no engine for this account's protocol */
        SCHED_STATE_PAUSED,   /* asleep or offline (scheduler_set_paused) */
        _SCHED_STATE_MAX,
} SchedState;

/* Messages a run stored in one folder (store ids). */
typedef struct SchedNewMail {
        const char *folder;
        const int64_t *ids;
        size_t n_ids;
} SchedNewMail;

/* The outcome of one run, as an engine reports it. */
typedef struct SchedRun {
        int r;                        /* 0, or a negative errno: error says why */
        NetFailure failure;           /* retry or stop; NONE on success */
        const char *error;            /* names the account, the server and the reason; "" on success */
        size_t n_new;                 /* messages stored by this run */
        uint64_t new_bytes;
        size_t n_deleted_elsewhere;   /* removed on the server by another device */
        uint32_t login_delay_seconds; /* the server asks for no more than one login per this; 0 = none */
        const SchedNewMail *new_mail; /* by folder; may be fewer ids than n_new (memory ran out) */
        size_t n_new_mail;
        bool quota_warning;           /* usage crossed the account's warning level */
        uint64_t quota_used, quota_limit; /* bytes, with quota_warning */
} SchedRun;

/* What status and the D-Bus properties show of an account. Strings live until the next scheduler call. */
typedef struct SchedAccountInfo {
        const char *name;
        SchedState state;
        int64_t last_attempt, last_success, next_run; /* Unix time; 0 = never / none planned */
        const char *last_error;                       /* "" when the last run worked */
        NetFailure last_failure;
        size_t last_new;    /* messages the last successful run stored */
        unsigned n_runs;    /* runs finished since the scheduler started */
        uint64_t quota_used, quota_limit; /* bytes, as the last run saw them; 0 = unknown */
} SchedAccountInfo;

/* An engine runs one session for one account and calls sched_job_done() exactly once. */
typedef struct SchedEngine {
        const char *name; /* "pop3", "imap" */
        /* Starts a run; on 0 the engine calls sched_job_done(job, ...) later, never from inside start. */
        int (*start)(SchedJob *job, uv_loop_t *loop, Store *store, const Account *a, void **handlep);
        /* Stops a run early; sched_job_done still follows once. */
        void (*cancel)(void *handle);
} SchedEngine;

/* Engines report progress here (see SchedulerListener.progress). */
void sched_job_progress(SchedJob *job, const char *folder, unsigned done, unsigned total);

/* Engines report here; run is valid during the call only. */
void sched_job_done(SchedJob *job, const SchedRun *run);

/* Hears about runs (the service API forwards them as D-Bus signals). Either callback may be NULL. */
typedef struct SchedulerListener {
        void (*started)(const char *account, void *userdata);
        void (*finished)(const char *account, const SchedRun *run, void *userdata);
        /* done of total new messages of folder stored (0 of 0: the folder had none) */
        void (*progress)(const char *account, const char *folder, unsigned done, unsigned total, void *userdata);
} SchedulerListener;

/* Engines by protocol; NULL leaves accounts of that protocol disabled. */
typedef struct SchedEngines {
        const SchedEngine *imap, *pop3;
} SchedEngines;

/* The engines built into this tegamid. */
extern const SchedEngines sched_default_engines;

/*
 * Starts scheduling every account of config (referenced while it runs) on
 * store; the first runs start at once, a little apart. listener may be NULL.
 * Returns 0 or a negative errno.
 */
int scheduler_new(uv_loop_t *loop, Store *store, Config *config, const SchedEngines *engines,
                  const SchedulerListener *listener, void *userdata, Scheduler **retp);

/*
 * Runs account (NULL: every account) now: a running account runs again as
 * soon as it is done. Clears a stopped account's error. Returns 0, or -ENOENT
 * when no such account (with an engine) exists.
 */
int scheduler_run_now(Scheduler *s, const char *account);

/*
 * A POP3 dry run ends: r 0 and the plan (the server's listing with the retention rules' decisions,
 * valid during the call), or a negative errno with failure and error naming the account, server and reason.
 */
typedef void (*SchedulerPlanFn)(int r, NetFailure failure, const char *error, const Pop3RuleMsg *msgs,
                                const Pop3Decision *decisions, size_t n, void *userdata);

/*
 * Runs a dry run of POP3 account (list, decide, QUIT: nothing downloaded or deleted) as the
 * account's next session: at once when it is idle, else right after the running one, so the
 * account never has two sessions. It does not count as a sync (no listener calls, no state
 * change); a poll that falls due meanwhile runs right after it. cb runs once, also with
 * -ECANCELED when the scheduler closes first. Returns 0, -ENOENT (no such account with an
 * engine), -EPROTOTYPE (not a POP3 account) or -EBUSY (another dry run of it is already
 * waiting for its turn); cb does not run then.
 */
int scheduler_dry_run(Scheduler *s, const char *account, SchedulerPlanFn cb, void *userdata);

/* The network may be back: accounts waiting out a backoff after a network failure run now. */
void scheduler_retry_now(Scheduler *s);

/*
 * Suspend, or no network: paused cancels the running sessions (what they
 * committed stays), stops the push connections and holds every timer; no run
 * starts meanwhile. Unpausing restarts push and runs every account now (a
 * little apart), except those waiting for the user after a permanent failure.
 */
void scheduler_set_paused(Scheduler *s, bool paused);

/* No session is at work (after pausing: every connection is closed or closing). */
bool scheduler_is_quiet(const Scheduler *s);

/*
 * Metered network: IMAP runs store new messages from their headers only. Turning
 * it off runs the IMAP accounts now, and those runs fetch the missing bodies.
 */
void scheduler_set_headers_only(Scheduler *s, bool headers_only);

/* The account's state; -ENOENT when unknown. */
int scheduler_get_info(Scheduler *s, const char *account, SchedAccountInfo *info);

/* Runs in progress (tests, status). */
unsigned scheduler_get_n_running(const Scheduler *s);

typedef void (*SchedulerClosedFn)(void *userdata);

/* Cancels running sessions, waits for them and the timers, frees s, then cb (may be NULL). */
void scheduler_close(Scheduler *s, SchedulerClosedFn cb, void *userdata);

/*
 * The delay before the next poll: interval_s with a jitter of +-10% drawn
 * from rnd (uniform over uint32_t), and at least login_delay_s. In ms.
 */
uint64_t sched_poll_delay_ms(unsigned interval_s, uint32_t login_delay_s, uint32_t rnd);

const char *sched_state_to_string(SchedState state);
