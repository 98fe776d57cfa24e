/*
 * A logged-in session kept between the syncs of one account (sync.h,
 * ImapSyncKeep). A push report starts a sync at once; connecting, TLS and
 * SCRAM then cost more than the sync itself (tens of ms against a few), so a
 * sync that ends well leaves its session here with no mailbox selected
 * (UNSELECT) instead of logging out, and the next sync within KEEP_IDLE_MS
 * takes it. Taking it costs one NOOP, answered within KEEP_PROBE_MS or the
 * session is dropped and the sync connects afresh: a session that died
 * quietly (suspend, NAT) never fails a sync, it only costs the probe.
 *
 * Every ImapClient of a sync talks to a SyncConn (its ops userdata), which
 * says which sync owns it now: none while parked. The keep owns the parked
 * session and one timer (idle logout, or the probe's deadline); it is freed
 * once freed by its owner, its timer and parked session closed and no sync
 * uses it. Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/sync-private.h"
#include "util/log.h"

#define KEEP_IDLE_MS  (5 * 60 * 1000) /* a parked session is logged out after this */
#define KEEP_PROBE_MS 5000            /* the NOOP of a taken session must be answered within this */

struct ImapSyncKeep {
        uv_loop_t *loop;
        uv_timer_t timer;
        SyncConn *parked;  /* the session waiting for the next sync, or NULL */
        SyncConn *probing; /* the session a sync took, until its NOOP is answered */
        unsigned n_users;  /* syncs started with this keep and not freed yet */
        unsigned n_open;   /* the timer, and the sessions not closed yet */
        bool freeing;
        ImapSyncKeepClosedFn closed_cb;
        void *closed_userdata;
};

static void keep_maybe_free(ImapSyncKeep *k) {
        ImapSyncKeepClosedFn cb;
        void *ud;

        if (!k->freeing || k->n_open > 0 || k->n_users > 0)
                return;
        cb = k->closed_cb;
        ud = k->closed_userdata;
        free(k);
        if (cb)
                cb(ud);
}

/* ---- client callbacks: to the owning sync, or the keep's own handling while parked ---- */

static void conn_ready(ImapClient *client, int r, void *userdata) {
        SyncConn *conn = userdata;

        if (conn->s)
                imap_sync_client_ready(conn->s, r);
}

static void conn_failed(ImapClient *client, int r, void *userdata) {
        SyncConn *conn = userdata;

        if (conn->s)
                return imap_sync_client_failed(conn->s, r);
        /* Parked and the server hung up (autologout, restart): nothing to keep. */
        if (conn->keep && conn->keep->parked == conn) {
                conn->keep->parked = NULL;
                uv_timer_stop(&conn->keep->timer);
        }
        imap_client_close(client);
}

static void conn_closed(ImapClient *client, void *userdata) {
        SyncConn *conn = userdata;
        ImapSyncKeep *k = conn->keep;

        if (conn->s)
                imap_sync_client_closed(conn->s);
        if (k) {
                if (k->parked == conn)
                        k->parked = NULL;
                if (k->probing == conn)
                        k->probing = NULL;
                k->n_open--;
        }
        free(conn);
        if (k)
                keep_maybe_free(k);
}

static void conn_untagged(ImapClient *client, const ImapEvent *ev, void *userdata) {
        SyncConn *conn = userdata;

        if (conn->s)
                imap_sync_client_untagged(conn->s, ev);
}

static const ImapClientOps conn_ops = {
        .ready = conn_ready,
        .failed = conn_failed,
        .closed = conn_closed,
        .untagged = conn_untagged,
};

/* ---- the keep ---- */

int imap_sync_keep_new(uv_loop_t *loop, ImapSyncKeep **kp) {
        ImapSyncKeep *k = calloc(1, sizeof *k);

        if (!k)
                return -ENOMEM;
        k->loop = loop;
        uv_timer_init(loop, &k->timer); /* cannot fail on Linux */
        k->timer.data = k;
        k->n_open = 1;
        *kp = k;
        return 0;
}

void imap_sync_keep_drop(ImapSyncKeep *k) {
        SyncConn *conn;

        if (!k || !k->parked)
                return;
        conn = k->parked;
        k->parked = NULL;
        uv_timer_stop(&k->timer);
        imap_client_logout(conn->client);
}

static void keep_timer_closed_cb(uv_handle_t *h) {
        ImapSyncKeep *k = h->data;

        k->n_open--;
        keep_maybe_free(k);
}

void imap_sync_keep_free(ImapSyncKeep *k, ImapSyncKeepClosedFn cb, void *userdata) {
        if (!k || k->freeing)
                return;
        k->freeing = true;
        k->closed_cb = cb;
        k->closed_userdata = userdata;
        imap_sync_keep_drop(k);
        uv_close((uv_handle_t *)&k->timer, keep_timer_closed_cb);
}

static void idle_timer_cb(uv_timer_t *t) {
        ImapSyncKeep *k = t->data;

        if (k->parked)
                log_acct_debug(k->parked->a->name, "imap: kept session unused: logging out");
        imap_sync_keep_drop(k);
}

/* ---- a sync's session ---- */

/* A fresh session for s: a new client, connecting. */
static int conn_connect(ImapSync *s, ImapSyncKeep *k, const ImapClientOptions *copts) {
        SyncConn *conn = calloc(1, sizeof *conn);
        int r;

        if (!conn)
                return -ENOMEM;
        *conn = (SyncConn){.s = s, .keep = k, .a = s->a};
        r = imap_client_new(s->loop, s->a, copts, &conn_ops, conn, &conn->client);
        if (r < 0) {
                free(conn);
                return r;
        }
        if (k)
                k->n_open++;
        s->client = conn->client;
        s->conn = conn;
        return imap_client_connect(conn->client); /* on failure the caller closes s->client */
}

/* The taken session's NOOP is answered (or not): the sync goes on with it, or with a fresh one. */
static void probe_over(SyncConn *conn, bool alive) {
        ImapSyncKeep *k = conn->keep;
        ImapSync *s = conn->s;
        int r;

        k->probing = NULL;
        uv_timer_stop(&k->timer);
        if (!s || s->stopping)
                return; /* cancelled meanwhile: the close under way reports */
        if (alive) {
                log_acct_debug(s->a->name, "imap: reusing the kept session");
                return imap_sync_client_ready(s, 0);
        }
        log_acct_debug(s->a->name, "imap: the kept session did not answer; connecting afresh");
        conn->s = NULL; /* its close is the keep's business now */
        imap_client_close(conn->client);
        s->client = NULL;
        s->conn = NULL;
        r = conn_connect(s, k, &s->copts);
        if (r < 0) {
                if (!s->client)
                        s->client_closed = true; /* no session to wait for */
                imap_sync_fail(s, r, "cannot connect: %s", strerror(-r));
                imap_sync_step(s);
        }
}

static void probe_done_cb(ImapClient *client, int r, const ImapStatusResp *st, void *userdata) {
        SyncConn *conn = userdata;

        if (conn->keep && conn->keep->probing == conn)
                probe_over(conn, r == 0);
}

static int probe_event_cb(ImapClient *client, const ImapEvent *ev, void *userdata) {
        return IMAP_CMD_EVENT_PASS; /* untagged news of no mailbox: the sync's handler sees them */
}

static void probe_timer_cb(uv_timer_t *t) {
        ImapSyncKeep *k = t->data;

        if (k->probing)
                probe_over(k->probing, false);
}

int imap_sync_conn_open(ImapSync *s, const ImapClientOptions *copts) {
        ImapSyncKeep *k = s->opts.keep;
        SyncConn *conn;

        if (!k || k->freeing)
                return conn_connect(s, NULL, copts);
        k->n_users++;
        s->keep_used = true;
        conn = TAKE_PTR(k->parked);
        uv_timer_stop(&k->timer);
        if (conn) {
                int r = imap_client_send(conn->client, 0, probe_event_cb, probe_done_cb, conn, "NOOP");

                if (r == 0) {
                        conn->s = s;
                        s->client = conn->client;
                        s->conn = conn;
                        k->probing = conn;
                        uv_timer_start(&k->timer, probe_timer_cb, KEEP_PROBE_MS, 0);
                        return 0;
                }
                imap_client_close(conn->client);
        }
        return conn_connect(s, k, copts);
}

bool imap_sync_keep_can_park(const ImapSync *s) {
        const ImapSyncKeep *k = s->opts.keep;

        return k && !k->freeing && !k->parked && s->conn && s->conn->keep == k && !s->error &&
               imap_client_has_cap(s->client, "UNSELECT");
}

void imap_sync_keep_park(ImapSync *s) {
        ImapSyncKeep *k = s->opts.keep;
        SyncConn *conn = s->conn;

        conn->s = NULL;
        k->parked = conn;
        uv_timer_start(&k->timer, idle_timer_cb, KEEP_IDLE_MS, 0);
        s->conn = NULL;
        s->client = NULL;
        s->client_closed = true; /* for this sync, the session is over */
        s->closing = true;
}

void imap_sync_keep_release(ImapSync *s) {
        ImapSyncKeep *k = s->opts.keep;

        if (s->conn)
                s->conn->s = NULL;
        if (!s->keep_used)
                return;
        s->keep_used = false;
        k->n_users--;
        keep_maybe_free(k);
}
