/*
 * IMAP push (push.h): one ImapClient per account that only watches, on the
 * daemon's libuv loop thread. The module owns its client and six timers and
 * frees itself in one place, maybe_free(), after the last of them closed.
 *
 * NOTIFY mode: LIST "" "" (the delimiter), NOTIFY SET STATUS (personal
 * (MessageNew MessageExpunge FlagChange MailboxName)), then IDLE with no
 * mailbox selected. Dovecot 2.3.19 then pushes "* STATUS name (...)" for every
 * change of any mailbox at once, and "* LIST" for new ones. Nothing is
 * selected on purpose: with a selected mailbox (and a "selected" filter)
 * Dovecot 2.3.19 held the events back until the next command, seconds late.
 *
 * IDLE mode (no NOTIFY, or use_notify false): LIST "" "*", a STATUS round of
 * every wanted folder, EXAMINE INBOX, IDLE; EXISTS/EXPUNGE/FETCH/VANISHED mean
 * INBOX changed, and every status_interval_ms IDLE is ended for a STATUS round
 * of the other folders.
 *
 * The last STATUS values of each folder are kept across sessions: the first
 * session's first values are the baseline (the daemon syncs at start anyway),
 * and after a reconnect the values the server reports again are compared, so
 * a change made while the connection was down is reported once it is back.
 *
 * Liveness: a repeating watchdog looks at the client's received byte count;
 * when it did not move for noop_after_ms the module ends IDLE (DONE, whose
 * tagged answer is the probe; a command in flight is one already) and when no
 * byte comes within noop_timeout_ms the session is failed as a network
 * failure. Failures go through backoff.h: retry after a delay, or stop.
 */
#include "daemon/imap/push.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/imap/client.h"
#include "daemon/imap/folders.h"
#include "daemon/imap/mutf7.h"
#include "util/log.h"
#include "util/macro.h"

/* The session's steps; the reply handler switches on them. */
typedef enum PushStep {
        STEP_DOWN,       /* no session (new, waiting for a retry, stopped) */
        STEP_CONNECTING, /* ImapClient connecting and logging in */
        STEP_LISTING,    /* LIST: the delimiter (NOTIFY) or the folders (IDLE mode) */
        STEP_NOTIFY_SET, /* NOTIFY SET STATUS ...: the STATUS answers are compared */
        STEP_ROUND,      /* STATUS round of the wanted folders */
        STEP_EXAMINING,  /* EXAMINE INBOX (IDLE mode) */
        STEP_IDLE_SENT,  /* IDLE sent, no "+" yet */
        STEP_IDLING,
        STEP_DONE_SENT, /* DONE written, IDLE's answer pending */
        _STEP_MAX,
} PushStep;

static const char *const step_names[_STEP_MAX] = {
        [STEP_DOWN] = "down",           [STEP_CONNECTING] = "connecting", [STEP_LISTING] = "listing",
        [STEP_NOTIFY_SET] = "notify",   [STEP_ROUND] = "status-round",    [STEP_EXAMINING] = "examining",
        [STEP_IDLE_SENT] = "idle-sent", [STEP_IDLING] = "idling",         [STEP_DONE_SENT] = "done-sent",
};

/* What the server said of one mailbox, kept across sessions, and its coalescing state. */
typedef struct PushFolder {
        char *wire; /* as on the wire (modified UTF-7); "INBOX" for any case of it */
        char *name; /* decoded UTF-8 */
        bool wanted, listed;
        unsigned have; /* IMAP_MS_* known below */
        uint32_t messages, uidnext, uidvalidity, unseen;
        uint64_t modseq;
        uint64_t last_fire; /* uv_now() of the last changed(), 0 = never */
        bool trailing;      /* an event came after last_fire, within coalesce_ms */
} PushFolder;

struct ImapPush {
        uv_loop_t *loop;
        const Account *account;
        ImapPushOptions opts;
        ImapPushOps ops;
        void *userdata;

        ImapClient *client;
        PushStep step;
        ImapPushMode mode;
        unsigned n_outstanding; /* commands of the current step */
        char delim;
        bool baseline;     /* values seen now are not changes (first session's setup) */
        bool ever_watched; /* some session reached IDLE */
        bool done_asap;    /* end IDLE as soon as the "+" comes */
        bool want_round;   /* a STATUS round after IDLE ends */
        bool examined;     /* IDLE mode: INBOX selected in this session */
        bool probing;
        bool quiet_close;       /* the client closes for imap_push_stop() or a failed start: no state report */
        bool start_after_close; /* imap_push_start() came while that close was under way */
        uint64_t watch_bytes, probe_bytes;

        PushFolder *folders;
        size_t n_folders;
        PushFolder list_change; /* folder NULL: the folder list changed */

        Backoff backoff;
        NetFailure failure;
        uint64_t retry_ms;
        char error[768];

        uv_timer_t reconnect_timer, renew_timer, round_timer, watch_timer, probe_timer, coalesce_timer;
        unsigned n_handles; /* timers not closed yet */
        bool closing;
        ImapPushClosedFn closed_cb;
};

static const ImapClientOps client_ops;
static int push_connect(ImapPush *p, bool quiet);
static void start_idle(ImapPush *p);
static void cmd_done_cb(ImapClient *c, int r, const ImapStatusResp *st, void *userdata);
static void coalesce_timer_cb(uv_timer_t *t);

const char *imap_push_mode_to_string(ImapPushMode mode) {
        return mode == IMAP_PUSH_MODE_NOTIFY ? "notify" : mode == IMAP_PUSH_MODE_IDLE ? "idle" : "none";
}

const char *imap_push_state_to_string(ImapPushState state) {
        return state == IMAP_PUSH_CONNECTED      ? "connected"
               : state == IMAP_PUSH_RECONNECTING ? "reconnecting"
                                                 : "stopped";
}

static void enter_step(ImapPush *p, PushStep step) {
        log_full(LOG_DEBUG, p->account->name, "imap push: %s -> %s", step_names[p->step], step_names[step]);
        p->step = step;
}

static void report_state(ImapPush *p, ImapPushState state, const char *reason) {
        if (!p->closing && p->ops.state)
                p->ops.state(p, state, reason, p->userdata);
}

/* ---- folders and coalescing ---- */

static PushFolder *folder_get(ImapPush *p, const char *wire) {
        _cleanup_free_ char *name = NULL;
        PushFolder *f;
        bool inbox = strcasecmp(wire, "INBOX") == 0;

        for (size_t i = 0; i < p->n_folders; i++)
                if (inbox ? strcmp(p->folders[i].wire, "INBOX") == 0 : strcmp(p->folders[i].wire, wire) == 0)
                        return &p->folders[i];
        f = reallocarray(p->folders, p->n_folders + 1, sizeof *f);
        if (!f)
                return NULL;
        p->folders = f;
        if (inbox)
                wire = "INBOX";
        if (imap_mutf7_decode(wire, strlen(wire), &name) < 0)
                name = strdup(wire); /* shown as sent; still watched */
        f = &p->folders[p->n_folders];
        *f = (PushFolder){.wire = strdup(wire), .name = TAKE_PTR(name)};
        if (!f->wire || !f->name) {
                free(f->wire);
                free(f->name);
                return NULL;
        }
        f->wanted = imap_folder_wanted(p->account->folders, f->name, p->delim);
        p->n_folders++;
        return f;
}

static void fire(ImapPush *p, PushFolder *f) {
        f->last_fire = uv_now(p->loop) ?: 1;
        f->trailing = false;
        if (!p->closing && p->ops.changed)
                p->ops.changed(p, p->account->name, f == &p->list_change ? NULL : f->name, p->userdata);
}

/* Arms the coalescing timer for the earliest trailing call due. */
static void coalesce_arm(ImapPush *p) {
        uint64_t now = uv_now(p->loop), due = UINT64_MAX;

        for (size_t i = 0; i <= p->n_folders; i++) {
                PushFolder *f = i < p->n_folders ? &p->folders[i] : &p->list_change;

                if (f->trailing && f->last_fire + p->opts.coalesce_ms < due)
                        due = f->last_fire + p->opts.coalesce_ms;
        }
        if (due != UINT64_MAX && !p->closing)
                uv_timer_start(&p->coalesce_timer, coalesce_timer_cb, due > now ? due - now : 0, 0);
}

static void coalesce_timer_cb(uv_timer_t *t) {
        ImapPush *p = container_of(t, ImapPush, coalesce_timer);
        uint64_t now = uv_now(p->loop);

        /* changed() may close the module: the timer is then closing and nothing else fires. */
        for (size_t i = 0; i <= p->n_folders && !p->closing; i++) {
                PushFolder *f = i < p->n_folders ? &p->folders[i] : &p->list_change;

                if (f->trailing && f->last_fire + p->opts.coalesce_ms <= now)
                        fire(p, f);
        }
        coalesce_arm(p);
}

/* An event for f: changed() now, or once at the end of the coalescing window. */
static void folder_changed(ImapPush *p, PushFolder *f) {
        if (!f || (f != &p->list_change && !f->wanted) || p->baseline)
                return;
        if (f->last_fire == 0 || uv_now(p->loop) >= f->last_fire + p->opts.coalesce_ms)
                return fire(p, f);
        if (!f->trailing) {
                f->trailing = true;
                coalesce_arm(p);
        }
}

/* Merges a STATUS answer into f; true when a value known before moved, or f had none (a new folder). */
static bool status_merge(PushFolder *f, const ImapMailboxStatus *ms) {
        bool moved = f->have == 0;

#define MERGE(bit, field, value)                              \
        if (ms->have & (bit)) {                               \
                if ((f->have & (bit)) && f->field != (value)) \
                        moved = true;                         \
                f->field = (value);                           \
                f->have |= (bit);                             \
        }
        MERGE(IMAP_MS_MESSAGES, messages, ms->messages);
        MERGE(IMAP_MS_UIDNEXT, uidnext, ms->uidnext);
        MERGE(IMAP_MS_UIDVALIDITY, uidvalidity, ms->uidvalidity);
        MERGE(IMAP_MS_UNSEEN, unseen, ms->unseen);
        MERGE(IMAP_MS_HIGHESTMODSEQ, modseq, ms->highestmodseq);
#undef MERGE
        return moved && ms->have != 0;
}

/* ---- events ---- */

/* Every untagged response, whichever command (or none) it came with. */
static void push_event(ImapPush *p, const ImapEvent *ev) {
        PushFolder *f;

        switch (ev->kind) {
        case IMAP_EVENT_MAILBOX_STATUS:
                if (!ev->mailbox_status.mailbox.s)
                        return;
                f = folder_get(p, ev->mailbox_status.mailbox.s);
                if (f && status_merge(f, &ev->mailbox_status))
                        folder_changed(p, f);
                return;
        case IMAP_EVENT_LIST:
                if (ev->list.lsub || !ev->list.mailbox.s)
                        return;
                if (p->step == STEP_LISTING) {
                        if (ev->list.mailbox.len == 0) { /* LIST "" "": only the delimiter */
                                p->delim = ev->list.delim;
                                return;
                        }
                        p->delim = ev->list.delim;
                        f = folder_get(p, ev->list.mailbox.s);
                        if (f) {
                                f->wanted = imap_folder_wanted(p->account->folders, f->name, p->delim);
                                f->listed = !(ev->list.attr_mask & (IMAP_LIST_NOSELECT | IMAP_LIST_NONEXISTENT));
                        }
                        return;
                }
                /* NOTIFY MailboxName: created, deleted or renamed. */
                return folder_changed(p, &p->list_change);
        case IMAP_EVENT_EXISTS:
        case IMAP_EVENT_EXPUNGE:
        case IMAP_EVENT_VANISHED:
        case IMAP_EVENT_FETCH:
                /* Only INBOX is ever selected; EXAMINE's own answer is not a change. */
                if (p->mode == IMAP_PUSH_MODE_IDLE && p->step != STEP_EXAMINING)
                        folder_changed(p, folder_get(p, "INBOX"));
                return;
        default:
                return;
        }
}

static int cmd_event_cb(ImapClient *c, const ImapEvent *ev, void *userdata) {
        if (ev->kind == IMAP_EVENT_CONTINUATION)
                return IMAP_CMD_EVENT_PASS;
        push_event(userdata, ev);
        return 0;
}

static void untagged_cb(ImapClient *c, const ImapEvent *ev, void *userdata) {
        push_event(userdata, ev);
}

/* IDLE's responses: "+" means the server idles; end it at once if that was asked for meanwhile. */
static int idle_event_cb(ImapClient *c, const ImapEvent *ev, void *userdata) {
        ImapPush *p = userdata;

        if (ev->kind != IMAP_EVENT_CONTINUATION) {
                push_event(p, ev);
                return 0;
        }
        if (p->step != STEP_IDLE_SENT)
                return IMAP_CMD_EVENT_PASS;
        enter_step(p, STEP_IDLING);
        backoff_reset(&p->backoff);
        if (p->done_asap) {
                enter_step(p, STEP_DONE_SENT);
                return imap_client_write_line(c, "DONE");
        }
        return 0;
}

/* ---- commands ---- */

/* Sends line (a command without its tag) as one of the current step's commands. */
static int send_cmd(ImapPush *p, const char *line) {
        int r = imap_client_send(p->client, 0, cmd_event_cb, cmd_done_cb, p, "%s", line);

        if (r < 0)
                imap_client_fail(p->client, NET_FAILURE_NETWORK, "imap push: cannot send a command: %s", strerror(-r));
        else
                p->n_outstanding++;
        return r;
}

/* STATUS of every wanted, selectable folder (INBOX too when with_inbox); moves on at once when none. */
static void start_round(ImapPush *p, bool with_inbox) {
        const char *items = imap_client_is_enabled(p->client, "CONDSTORE")
                                    ? "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"
                                    : "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)";
        char line[1024];

        p->want_round = false;
        enter_step(p, STEP_ROUND);
        for (size_t i = 0; i < p->n_folders; i++) {
                PushFolder *f = &p->folders[i];
                _cleanup_free_ char *q = NULL;

                if (!f->wanted || !f->listed || (!with_inbox && strcmp(f->wire, "INBOX") == 0))
                        continue;
                q = imap_quote(f->wire, false);
                if (!q || (size_t)snprintf(line, sizeof line, "STATUS %s %s", q, items) >= sizeof line)
                        continue; /* a name no STATUS line can carry: left to the sync */
                if (send_cmd(p, line) < 0)
                        return;
        }
        if (p->n_outstanding == 0)
                cmd_done_cb(p->client, 0, NULL, p);
}

static void idle_done_cb(ImapClient *c, int r, const ImapStatusResp *st, void *userdata) {
        ImapPush *p = userdata;

        if (r < 0)
                return; /* the session failed: failed_cb follows */
        p->n_outstanding = 0;
        uv_timer_stop(&p->renew_timer);
        if (r > 0)
                return imap_client_fail(c, NET_FAILURE_PROTOCOL, "imap push: IDLE refused: %s",
                                        st->text.s ? st->text.s : "");
        if (p->want_round)
                return start_round(p, false);
        start_idle(p);
}

static void renew_timer_cb(uv_timer_t *t);

static void start_idle(ImapPush *p) {
        int r;

        p->done_asap = false;
        r = imap_client_send(p->client, IMAP_CMD_ALONE, idle_event_cb, idle_done_cb, p, "IDLE");
        if (r < 0)
                return imap_client_fail(p->client, NET_FAILURE_NETWORK, "imap push: cannot send IDLE: %s",
                                        strerror(-r));
        p->n_outstanding = 1;
        enter_step(p, STEP_IDLE_SENT);
        uv_timer_start(&p->renew_timer, renew_timer_cb, p->opts.idle_renew_ms, 0);
}

/* Ends IDLE (when idling) so that what is wanted (a round, a probe, a renewal) can run. */
static void end_idle(ImapPush *p) {
        if (p->step == STEP_IDLING) {
                enter_step(p, STEP_DONE_SENT);
                if (imap_client_write_line(p->client, "DONE") < 0)
                        imap_client_fail(p->client, NET_FAILURE_NETWORK, "imap push: cannot end IDLE");
        } else if (p->step == STEP_IDLE_SENT)
                p->done_asap = true;
        /* otherwise commands are in flight: their answers come first */
}

/* The setup is done: what the server said so far is the baseline; from now on values that move are changes. */
static void session_watching(ImapPush *p) {
        p->ever_watched = true;
        p->baseline = false;
        report_state(p, IMAP_PUSH_CONNECTED, NULL);
        if (!p->closing) /* state() may have closed the module */
                start_idle(p);
}

static void idle_mode_setup(ImapPush *p) {
        p->mode = IMAP_PUSH_MODE_IDLE;
        enter_step(p, STEP_LISTING);
        p->examined = false;
        send_cmd(p, "LIST \"\" \"*\"");
}

static void round_timer_cb(uv_timer_t *t) {
        ImapPush *p = container_of(t, ImapPush, round_timer);

        p->want_round = true;
        end_idle(p);
}

/* The answer that ends the current step's last command: go on to the next step. */
static void cmd_done_cb(ImapClient *c, int r, const ImapStatusResp *st, void *userdata) {
        ImapPush *p = userdata;
        const char *text = st && st->text.s ? st->text.s : "";

        if (r < 0)
                return; /* the session failed or closed: failed_cb / closed_cb follow */
        if (p->n_outstanding > 0 && --p->n_outstanding > 0)
                return;
        switch (p->step) {
        case STEP_LISTING:
                if (r > 0)
                        return imap_client_fail(c, NET_FAILURE_PROTOCOL, "imap push: LIST failed: %s", text);
                if (p->mode == IMAP_PUSH_MODE_NOTIFY) {
                        enter_step(p, STEP_NOTIFY_SET);
                        send_cmd(p, "NOTIFY SET STATUS (personal (MessageNew MessageExpunge FlagChange MailboxName))");
                        return;
                }
                return start_round(p, true);
        case STEP_NOTIFY_SET:
                if (r > 0) {
                        log_full(LOG_INFO, p->account->name, "imap push: NOTIFY refused (%s); IDLE on INBOX", text);
                        return idle_mode_setup(p);
                }
                return session_watching(p);
        case STEP_ROUND:
                /* A NO (a folder gone meanwhile) is not a failure: the next session's LIST drops it. */
                if (!p->examined) {
                        /* the session's first round: select INBOX, start the round timer */
                        p->examined = true;
                        enter_step(p, STEP_EXAMINING);
                        uv_timer_start(&p->round_timer, round_timer_cb, p->opts.status_interval_ms,
                                       p->opts.status_interval_ms);
                        send_cmd(p, "EXAMINE INBOX");
                        return;
                }
                return start_idle(p);
        case STEP_EXAMINING:
                if (r > 0)
                        return imap_client_fail(c, NET_FAILURE_PROTOCOL, "imap push: EXAMINE INBOX failed: %s", text);
                return session_watching(p);
        default:
                return;
        }
}

/* ---- liveness ---- */

static void probe_timer_cb(uv_timer_t *t) {
        ImapPush *p = container_of(t, ImapPush, probe_timer);
        uint64_t bytes = p->client ? imap_client_get_bytes_in(p->client) : 0;

        p->probing = false;
        if (!p->client)
                return;
        if (bytes != p->probe_bytes) {
                p->watch_bytes = bytes;
                return;
        }
        imap_client_fail(p->client, NET_FAILURE_NETWORK, "no answer from the server within %" PRIu64 " ms",
                         p->opts.noop_timeout_ms);
}

static void watch_timer_cb(uv_timer_t *t) {
        ImapPush *p = container_of(t, ImapPush, watch_timer);
        uint64_t bytes;

        if (!p->client || p->probing)
                return;
        bytes = imap_client_get_bytes_in(p->client);
        if (bytes != p->watch_bytes) {
                p->watch_bytes = bytes;
                return;
        }
        /* Silence: ask the server something (DONE gets IDLE's tagged answer) and wait for a byte. */
        p->probing = true;
        p->probe_bytes = bytes;
        uv_timer_start(&p->probe_timer, probe_timer_cb, p->opts.noop_timeout_ms, 0);
        end_idle(p);
}

static void renew_timer_cb(uv_timer_t *t) {
        end_idle(container_of(t, ImapPush, renew_timer));
}

/* ---- sessions ---- */

static void stop_session_timers(ImapPush *p) {
        uv_timer_stop(&p->renew_timer);
        uv_timer_stop(&p->round_timer);
        uv_timer_stop(&p->watch_timer);
        uv_timer_stop(&p->probe_timer);
        p->probing = false;
}

/* The session ended (login failed, or it broke): remember why and close the client. */
static void session_down(ImapPush *p, ImapClient *c) {
        p->failure = imap_client_get_failure(c);
        if (p->failure == NET_FAILURE_NONE)
                p->failure = NET_FAILURE_NETWORK;
        snprintf(p->error, sizeof p->error, "%s", imap_client_get_error(c));
        stop_session_timers(p);
        enter_step(p, STEP_DOWN);
        imap_client_close(c);
}

static void ready_cb(ImapClient *c, int r, void *userdata) {
        ImapPush *p = userdata;

        if (r < 0)
                return session_down(p, c);
        p->n_outstanding = 0;
        p->delim = 0;
        p->watch_bytes = imap_client_get_bytes_in(c);
        uv_timer_start(&p->watch_timer, watch_timer_cb, p->opts.noop_after_ms, p->opts.noop_after_ms);
        if (p->opts.use_notify && imap_client_has_cap(c, "NOTIFY")) {
                p->mode = IMAP_PUSH_MODE_NOTIFY;
                enter_step(p, STEP_LISTING);
                send_cmd(p, "LIST \"\" \"\"");
        } else
                idle_mode_setup(p);
}

static void failed_cb(ImapClient *c, int r, void *userdata) {
        session_down(userdata, c);
}

static void reconnect_timer_cb(uv_timer_t *t) {
        ImapPush *p = container_of(t, ImapPush, reconnect_timer);

        /* A client that cannot start is closed and its closed_cb schedules the next attempt. */
        if (push_connect(p, false) < 0 && !p->client &&
            backoff_next(&p->backoff, NET_FAILURE_NETWORK, &p->retry_ms) == 0)
                uv_timer_start(&p->reconnect_timer, reconnect_timer_cb, p->retry_ms, 0);
}

static void maybe_free(ImapPush *p) {
        if (p->n_handles > 0 || p->client)
                return;
        if (p->closed_cb)
                p->closed_cb(p, p->userdata);
        for (size_t i = 0; i < p->n_folders; i++) {
                free(p->folders[i].wire);
                free(p->folders[i].name);
        }
        free(p->folders);
        free(p);
}

static void closed_cb(ImapClient *c, void *userdata) {
        ImapPush *p = userdata;
        int r;

        p->client = NULL;
        p->mode = IMAP_PUSH_MODE_NONE;
        enter_step(p, STEP_DOWN);
        if (p->closing)
                return maybe_free(p);
        if (p->quiet_close) {
                p->quiet_close = false;
                if (p->start_after_close) {
                        p->start_after_close = false;
                        if (push_connect(p, false) < 0 && !p->client &&
                            backoff_next(&p->backoff, NET_FAILURE_NETWORK, &p->retry_ms) == 0)
                                uv_timer_start(&p->reconnect_timer, reconnect_timer_cb, p->retry_ms, 0);
                }
                return;
        }
        r = backoff_next(&p->backoff, p->failure, &p->retry_ms);
        if (r != 0) {
                log_full(LOG_ERR, p->account->name, "imap push stopped: %s", p->error);
                return report_state(p, IMAP_PUSH_STOPPED, p->error);
        }
        log_full(LOG_WARNING, p->account->name, "imap push: %s; reconnecting in %" PRIu64 " ms", p->error, p->retry_ms);
        uv_timer_start(&p->reconnect_timer, reconnect_timer_cb, p->retry_ms, 0);
        report_state(p, IMAP_PUSH_RECONNECTING, p->error);
}

static const ImapClientOps client_ops = {
        .ready = ready_cb,
        .failed = failed_cb,
        .closed = closed_cb,
        .untagged = untagged_cb,
};

/* A new client and its connect; quiet: a failure is only returned (imap_push_start), not reported. */
static int push_connect(ImapPush *p, bool quiet) {
        ImapClientOptions co = {.enable_condstore = true};
        int r;

        p->baseline = !p->ever_watched;
        p->failure = NET_FAILURE_NONE;
        p->error[0] = 0;
        r = imap_client_new(p->loop, p->account, &co, &client_ops, p, &p->client);
        if (r < 0) {
                p->client = NULL;
                return r;
        }
        enter_step(p, STEP_CONNECTING);
        r = imap_client_connect(p->client);
        if (r < 0) {
                p->failure = NET_FAILURE_NETWORK;
                snprintf(p->error, sizeof p->error, "account %s: cannot connect: %s", p->account->name, strerror(-r));
                p->quiet_close = quiet;
                imap_client_close(p->client);
        }
        return r;
}

int imap_push_new(uv_loop_t *loop, const Account *a, const ImapPushOptions *opts, const ImapPushOps *ops,
                  void *userdata, ImapPush **pp) {
        ImapPush *p;

        if (!loop || !a || !ops || !pp || a->imap.proto != SERVER_IMAP)
                return -EINVAL;
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->loop = loop;
        p->account = a;
        p->opts = opts ? *opts : IMAP_PUSH_OPTIONS_DEFAULT;
        p->opts.status_interval_ms = p->opts.status_interval_ms ?: 60 * 1000;
        p->opts.idle_renew_ms = p->opts.idle_renew_ms ?: 25 * 60 * 1000;
        p->opts.noop_after_ms = p->opts.noop_after_ms ?: 5 * 60 * 1000;
        p->opts.noop_timeout_ms = p->opts.noop_timeout_ms ?: 20 * 1000;
        p->opts.coalesce_ms = p->opts.coalesce_ms ?: 50;
        p->opts.backoff_base_ms = p->opts.backoff_base_ms ?: 1000;
        p->opts.backoff_cap_ms = p->opts.backoff_cap_ms ?: 5 * 60 * 1000;
        if (p->opts.backoff_cap_ms < p->opts.backoff_base_ms)
                p->opts.backoff_cap_ms = p->opts.backoff_base_ms;
        p->ops = *ops;
        p->userdata = userdata;
        backoff_init(&p->backoff, p->opts.backoff_base_ms, p->opts.backoff_cap_ms);
        uv_timer_t *timers[] = {&p->reconnect_timer, &p->renew_timer, &p->round_timer,
                                &p->watch_timer,     &p->probe_timer, &p->coalesce_timer};
        for (size_t i = 0; i < ARRAY_SIZE(timers); i++) {
                uv_timer_init(loop, timers[i]);
                p->n_handles++;
        }
        *pp = p;
        return 0;
}

int imap_push_start(ImapPush *p) {
        if (p->closing)
                return -ECANCELED;
        if (p->client && p->quiet_close && !p->start_after_close) {
                p->start_after_close = true; /* imap_push_stop()'s close is under way: connect after it */
                backoff_reset(&p->backoff);
                return 0;
        }
        if (p->client || uv_is_active((uv_handle_t *)&p->reconnect_timer))
                return -EBUSY;
        backoff_reset(&p->backoff);
        return push_connect(p, true);
}

void imap_push_retry_now(ImapPush *p) {
        if (!p || p->closing || !uv_is_active((uv_handle_t *)&p->reconnect_timer))
                return;
        backoff_reset(&p->backoff);
        uv_timer_start(&p->reconnect_timer, reconnect_timer_cb, 0, 0);
}

void imap_push_stop(ImapPush *p) {
        if (!p || p->closing)
                return;
        uv_timer_stop(&p->reconnect_timer);
        p->start_after_close = false;
        if (!p->client || p->quiet_close)
                return;
        stop_session_timers(p);
        enter_step(p, STEP_DOWN);
        p->quiet_close = true;
        imap_client_close(p->client);
}

static void timer_closed_cb(uv_handle_t *h) {
        ImapPush *p = h->data;

        p->n_handles--;
        maybe_free(p);
}

void imap_push_close(ImapPush *p, ImapPushClosedFn cb) {
        uv_timer_t *timers[] = {&p->reconnect_timer, &p->renew_timer, &p->round_timer,
                                &p->watch_timer,     &p->probe_timer, &p->coalesce_timer};

        if (!p || p->closing)
                return;
        p->closing = true;
        p->closed_cb = cb;
        if (p->client)
                imap_client_close(p->client); /* closed_cb clears p->client */
        for (size_t i = 0; i < ARRAY_SIZE(timers); i++) {
                timers[i]->data = p;
                uv_close((uv_handle_t *)timers[i], timer_closed_cb);
        }
}

ImapPushMode imap_push_get_mode(const ImapPush *p) {
        return p->mode;
}

NetFailure imap_push_get_failure(const ImapPush *p) {
        return p->failure;
}

uint64_t imap_push_get_retry_ms(const ImapPush *p) {
        return p->retry_ms;
}
