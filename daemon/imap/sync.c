/*
 * The IMAP sync engine for one account (sync.h says what a sync does). An
 * ImapSync owns its ImapClient, the folder list of this run, the current
 * folder's local and server listings, and one Cmd per command in flight (each
 * Item of a body download with its store body writer until finish hands it
 * over). Everything runs on the loop thread; the store calls back through the
 * loop.
 *
 * One state machine: enter_state() runs a state's entry action, which sends
 * commands or starts store writes and counts them (n_cmds, n_store); every
 * completion decrements its count and calls imap_sync_step(), which moves to the
 * next state once nothing is outstanding. A failure (the session broke, a
 * store write failed) records the first error, stops new work, and the sync
 * ends in one place, sync_maybe_free(), after the client has closed and the
 * last store callback ran.
 *
 * Downloads are in sync-fetch.c, local changes and the flag merge in
 * sync-push.c; what they share is in sync-private.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon/imap/client.h"
#include "daemon/imap/flags.h"
#include "daemon/imap/folders.h"
#include "daemon/mime/envelope.h"
#include "daemon/imap/mutf7.h"
#include "daemon/imap/sync-private.h"
#include "store/body.h"
#include "store/imap.h"
#include "store/message.h"
#include "store/pending.h"
#include "util/log.h"

static void enter_state(ImapSync *s, SyncState state);

int imap_sync_uid_vec_push(UidVec *u, uint32_t uid) {
        if (u->n == u->cap) {
                size_t cap = u->cap ? u->cap * 2 : 64;
                uint32_t *nv = reallocarray(u->v, cap, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                u->v = nv;
                u->cap = cap;
        }
        u->v[u->n++] = uid;
        return 0;
}

static void uid_vec_clear(UidVec *u) {
        free(u->v);
        *u = (UidVec){};
}

void imap_sync_sort(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
        if (n > 1)
                qsort(v, n, size, cmp);
}

int imap_sync_uid_cmp(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

bool imap_sync_uid_vec_has(const UidVec *u, uint32_t uid) {
        return u->n > 0 && bsearch(&uid, u->v, u->n, sizeof(uint32_t), imap_sync_uid_cmp) != NULL;
}

static int uid_vec_add_set(UidVec *u, const ImapSeqSet *set) {
        for (size_t i = 0; i < set->n; i++) {
                uint32_t first = set->v[i].first, last = set->v[i].last;

                if (first == IMAP_SEQ_STAR || last == IMAP_SEQ_STAR)
                        continue;
                for (uint64_t x = first; x <= last; x++)
                        if (imap_sync_uid_vec_push(u, (uint32_t)x) < 0)
                                return -ENOMEM;
        }
        return 0;
}

static SrvMsg *srv_vec_push(SrvMsgVec *m) {
        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 64;
                SrvMsg *nv = reallocarray(m->v, cap, sizeof(*nv));
                if (!nv)
                        return NULL;
                m->v = nv;
                m->cap = cap;
        }
        m->v[m->n] = (SrvMsg){};
        return &m->v[m->n++];
}

static void srv_vec_clear(SrvMsgVec *m) {
        for (size_t i = 0; i < m->n; i++) {
                free(m->v[i].keywords);
                free(m->v[i].message_id);
        }
        free(m->v);
        *m = (SrvMsgVec){};
}

int imap_sync_srv_cmp(const void *a, const void *b) {
        return imap_sync_uid_cmp(&((const SrvMsg *)a)->uid, &((const SrvMsg *)b)->uid);
}

char *imap_sync_uid_set_format(const uint32_t *uids, size_t n) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < n;) {
                size_t j = i;

                while (j + 1 < n && uids[j + 1] == uids[j] + 1)
                        j++;
                if (j > i)
                        fprintf(f, "%s%" PRIu32 ":%" PRIu32, i ? "," : "", uids[i], uids[j]);
                else
                        fprintf(f, "%s%" PRIu32, i ? "," : "", uids[i]);
                i = j + 1;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* Errors. */

void imap_sync_fail(ImapSync *s, int r, const char *fmt, ...) {
        va_list ap;
        char *reason = NULL;

        if (!s->error) {
                s->error = r < 0 ? r : -EIO;
                va_start(ap, fmt);
                if (vasprintf(&reason, fmt, ap) < 0)
                        reason = NULL;
                va_end(ap);
                if (asprintf(&s->error_text, "account %s: %s:%u: %s", s->a->name, s->a->imap.host,
                             (unsigned)s->a->imap.port, reason ? reason : strerror(-s->error)) < 0)
                        s->error_text = NULL;
                free(reason);
                if (s->failure == NET_FAILURE_NONE)
                        s->failure = NET_FAILURE_PROTOCOL;
        }
        s->stopping = true;
}

/* The session failed: the client knows why. */
void imap_sync_fail_client(ImapSync *s, int r) {
        if (!s->error) {
                const char *e = imap_client_get_error(s->client);

                s->error = r < 0 ? r : -EIO;
                s->failure = imap_client_get_failure(s->client);
                if (s->failure == NET_FAILURE_NONE)
                        s->failure = NET_FAILURE_NETWORK;
                s->error_text = strdup(e && *e ? e : "the IMAP session failed");
        }
        s->stopping = true;
}

void imap_sync_store_failed(ImapSync *s, int r, const char *what) {
        imap_sync_fail(s, r, "store: %s: %s", what, strerror(-r));
        s->failure = NET_FAILURE_NONE; /* not the server's fault; keep retrying */
}

/* Folder-local state. */

void imap_sync_item_free(Item *it) {
        if (!it)
                return;
        store_body_writer_abort(it->w);
        mime_headers_clear(&it->h);
        mime_envelope_clear(&it->env);
        free(it);
}

static void folder_reset(ImapSync *s) {
        store_pending_list_free(s->pend, s->n_pend);
        s->pend = NULL;
        s->n_pend = 0;
        store_imap_msg_list_free(s->local, s->n_local);
        s->local = NULL;
        s->n_local = 0;
        srv_vec_clear(&s->changes);
        srv_vec_clear(&s->meta);
        uid_vec_clear(&s->all_uids);
        uid_vec_clear(&s->vanished);
        uid_vec_clear(&s->since);
        uid_vec_clear(&s->appended);
        free(s->todo);
        s->todo = NULL;
        s->n_todo = s->i_todo = 0;
        s->have_all_uids = s->have_since = false;
        s->search_into = NULL;
        s->sel_ok = s->sel_qresync = s->sel_nomodseq = s->recovering = s->folder_failed = false;
        s->sel_uidvalidity = s->sel_uidnext = s->sel_exists = 0;
        s->sel_hms = 0;
        s->folder_new = s->progress_at = 0;
}

static void sync_free(ImapSync *s) {
        folder_reset(s);
        for (size_t i = 0; i < s->n_folders; i++) {
                free(s->folders[i].wire);
                free(s->folders[i].name);
                free(s->folders[i].new_ids);
        }
        free(s->folders);
        free(s->new_mail);
        for (size_t i = 0; i < s->n_server_names; i++)
                free(s->server_names[i]);
        free(s->server_names);
        imap_sync_item_free(s->large);
        store_body_cancel_drain(s->store, imap_sync_store_drained_cb, s);
        imap_sync_keep_release(s);
        free(s->error_text);
        free(s);
}

/* Messages between two progress reports inside a folder. */
#define PROGRESS_EVERY 200

void imap_sync_progress(ImapSync *s, bool force) {
        ImapSyncProgress p;

        if (!s->opts.progress_fn || !s->f || (!force && s->folder_new < s->progress_at + PROGRESS_EVERY))
                return;
        s->progress_at = s->folder_new;
        p = (ImapSyncProgress){
                .folder = s->f->name,
                .folders_done = s->res.n_folders,
                .folders_total = s->n_folders,
                .msgs_done = s->folder_new,
                .msgs_total = s->n_todo > s->folder_new ? s->n_todo : s->folder_new,
                .bytes = s->res.body_bytes,
        };
        s->opts.progress_fn(&p, s->opts.progress_userdata);
}

void imap_sync_note_new(ImapSync *s, int64_t id) {
        SyncFolder *f = s->f;

        s->folder_new++;
        imap_sync_progress(s, false);

        if (!f)
                return;
        if (f->n_new_ids == f->cap_new_ids) {
                size_t cap = f->cap_new_ids ? f->cap_new_ids * 2 : 64;
                int64_t *v = realloc(f->new_ids, cap * sizeof *v);

                if (!v)
                        return;
                f->new_ids = v;
                f->cap_new_ids = cap;
        }
        f->new_ids[f->n_new_ids++] = id;
}

/* res.new_mail from the folders' lists (even after a failure: what was stored is new). */
static void report_new_mail(ImapSync *s) {
        size_t n = 0;

        for (size_t i = 0; i < s->n_folders; i++)
                n += s->folders[i].n_new_ids > 0;
        if (n == 0 || !(s->new_mail = calloc(n, sizeof *s->new_mail)))
                return;
        for (size_t i = 0; i < s->n_folders; i++)
                if (s->folders[i].n_new_ids > 0)
                        s->new_mail[s->res.n_new_mail++] = (ImapSyncNewMail){
                                .folder = s->folders[i].name,
                                .ids = s->folders[i].new_ids,
                                .n_ids = s->folders[i].n_new_ids,
                        };
        s->res.new_mail = s->new_mail;
}

/* Reports and frees once the client is closed and no callback is outstanding. */
static void sync_maybe_free(ImapSync *s) {
        if (!s->client_closed || s->n_cmds > 0 || s->n_store > 0 || s->stepping)
                return;
        s->res.r = s->error;
        s->res.failure = s->error ? s->failure : NET_FAILURE_NONE;
        s->res.error = s->error ? (s->error_text ? s->error_text : "sync failed") : "";
        report_new_mail(s);
        if (s->cb) /* NULL when imap_sync_start() failed: nobody is told */
                s->cb(&s->res, s->userdata);
        sync_free(s);
}

/* Commands. */

Cmd *imap_sync_cmd_new(ImapSync *s, CmdKind kind) {
        Cmd *c = calloc(1, sizeof(*c));

        if (c) {
                c->s = s;
                c->kind = kind;
        }
        return c;
}

void imap_sync_cmd_free(Cmd *c) {
        free(c->then);
        free(c->pending_ids);
        mime_headers_clear(&c->mid);
        free(c);
}

static int imap_sync_cmd_event_cb(ImapClient *client, const ImapEvent *ev, void *userdata);
static void imap_sync_cmd_done_cb(ImapClient *client, int r, const ImapStatusResp *st, void *userdata);

/* Sends a command owned by c (freed on failure here). Returns 0 or the client's error. */
int imap_sync_cmd_send(ImapSync *s, Cmd *c, const char *fmt, ...) {
        _cleanup_free_ char *line = NULL;
        va_list ap;
        int r;

        if (!c)
                return -ENOMEM;
        va_start(ap, fmt);
        r = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (r < 0) {
                imap_sync_cmd_free(c);
                return -ENOMEM;
        }
        r = imap_client_send(s->client, 0, imap_sync_cmd_event_cb, imap_sync_cmd_done_cb, c, "%s", line);
        if (r < 0) {
                imap_sync_cmd_free(c);
                return r;
        }
        s->n_cmds++;
        return 0;
}

/* A send that failed ends the sync (the session is gone or memory ran out). */
void imap_sync_cmd_send_failed(ImapSync *s, int r) {
        if (r == -ENOMEM)
                imap_sync_fail(s, r, "out of memory");
        else
                imap_sync_fail_client(s, r);
}

/* The quoted wire name of the current or another folder. */
char *imap_sync_quote_mailbox(ImapSync *s, const char *wire) {
        return imap_quote(wire, s->utf8);
}

/* Responses. */

static int record_fetch(SrvMsgVec *vec, const ImapFetch *f, bool want_flags_only) {
        SrvMsg *m;
        int r;

        if (!(f->have & IMAP_FETCH_UID))
                return 0; /* an unsolicited FETCH without UID: nothing to key it by */
        m = srv_vec_push(vec);
        if (!m)
                return -ENOMEM;
        m->uid = f->uid;
        if (f->have & IMAP_FETCH_FLAGS) {
                r = imap_flags_parse(&f->flags, &m->flags, &m->keywords);
                if (r < 0)
                        return r;
                m->has_flags = true;
        }
        if (f->have & IMAP_FETCH_MODSEQ)
                m->modseq = f->modseq;
        if (want_flags_only)
                return 0;
        if (f->have & IMAP_FETCH_RFC822_SIZE)
                m->size = f->rfc822_size;
        if (f->have & IMAP_FETCH_INTERNALDATE)
                m->internal_date = f->internaldate_unix;
        return 0;
}

static int search_event(UidVec *u, const ImapEvent *ev) {
        if (ev->kind == IMAP_EVENT_SEARCH) {
                for (size_t i = 0; i < ev->search.n; i++)
                        if (imap_sync_uid_vec_push(u, ev->search.v[i]) < 0)
                                return -ENOMEM;
        } else if (ev->kind == IMAP_EVENT_ESEARCH && (ev->esearch.have & IMAP_ES_ALL))
                return uid_vec_add_set(u, &ev->esearch.all);
        return 0;
}

static int list_event(ImapSync *s, const ImapList *l) {
        _cleanup_free_ char *name = NULL, *wire = NULL;
        char **nv;
        SyncFolder *fv;
        int r;

        if (!l->mailbox.s || l->lsub)
                return 0;
        if (s->utf8) {
                name = strdup(l->mailbox.s);
                r = name ? 0 : -ENOMEM;
        } else
                r = imap_mutf7_decode(l->mailbox.s, l->mailbox.len, &name);
        if (r == -EINVAL) {
                log_acct_warning(s->a->name, "imap: mailbox \"%s\" is not valid modified UTF-7; skipped", l->mailbox.s);
                return 0;
        }
        if (r < 0)
                return r;
        nv = reallocarray(s->server_names, s->n_server_names + 1, sizeof(*nv));
        if (!nv)
                return -ENOMEM;
        s->server_names = nv;
        s->server_names[s->n_server_names] = strdup(name);
        if (!s->server_names[s->n_server_names])
                return -ENOMEM;
        s->n_server_names++;
        if (l->attr_mask & (IMAP_LIST_NOSELECT | IMAP_LIST_NONEXISTENT))
                return 0;
        if (!imap_folder_wanted(s->a->folders, name, l->delim))
                return 0;
        wire = strdup(l->mailbox.s);
        fv = reallocarray(s->folders, s->n_folders + 1, sizeof(*fv));
        if (!wire || !fv) {
                if (fv)
                        s->folders = fv;
                return -ENOMEM;
        }
        s->folders = fv;
        s->folders[s->n_folders++] = (SyncFolder){.wire = TAKE_PTR(wire),
                                                  .name = TAKE_PTR(name),
                                                  .delim = l->delim,
                                                  .role = imap_folder_role(l->mailbox.s, l->attr_mask)};
        return 0;
}

/* LIST-STATUS: the state of a listed folder, to skip it when nothing changed since the last sync. */
static int list_status_event(ImapSync *s, const ImapMailboxStatus *ms) {
        const unsigned want = IMAP_MS_UIDVALIDITY | IMAP_MS_UIDNEXT | IMAP_MS_HIGHESTMODSEQ;

        if (!ms->mailbox.s || (ms->have & want) != want)
                return 0;
        for (size_t i = 0; i < s->n_folders; i++) {
                SyncFolder *f = &s->folders[i];

                if (strcmp(f->wire, ms->mailbox.s) == 0) {
                        f->st_have = true;
                        f->st_uidvalidity = ms->uidvalidity;
                        f->st_uidnext = ms->uidnext;
                        f->st_hms = ms->highestmodseq;
                }
        }
        return 0;
}

/*
 * Whether the current folder can be skipped: the server's UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ
 * (CONDSTORE: any flag change or expunge raises it) are those saved after the last complete sync of
 * it, and no local change waits for it. A no-change resync then costs one LIST, whatever the size
 * of the folders.
 */
/*
 * fetch_missing_bodies: whether a stored message of the current folder waits
 * for its body (a metered network left it). Reads the folder's list into
 * s->local, which enter_select() then keeps; a failed read says yes, and
 * enter_select() reports it.
 */
static bool folder_lacks_bodies(ImapSync *s) {
        if (!s->opts.fetch_missing_bodies || s->opts.headers_only)
                return false;
        if (!s->local && store_imap_msg_list(s->store, s->f->id, 0, &s->local, &s->n_local) < 0)
                return true;
        for (size_t i = 0; i < s->n_local; i++)
                if (!s->local[i].has_body && !(s->a->max_message_size && s->local[i].size > s->a->max_message_size))
                        return true;
        return false;
}

static bool folder_unchanged(ImapSync *s) {
        const SyncFolder *f = s->f;

        if (!s->condstore || !f->st_have || !f->existed || !f->uidvalidity || !f->highestmodseq)
                return false;
        if (f->st_uidvalidity != f->uidvalidity || f->st_uidnext != f->uidnext || f->st_hms != f->highestmodseq)
                return false;
        for (size_t i = 0; i < s->n_pend; i++)
                if (s->pend[i].folder_id == f->id || s->pend[i].target_folder_id == f->id)
                        return false;
        return !folder_lacks_bodies(s);
}

/*
 * A QUOTA response (to GETQUOTAROOT INBOX, or unasked): its STORAGE resource,
 * in KiB on the wire (RFC 9208), kept in bytes. With several roots over INBOX
 * the fullest one is the one that matters for a warning.
 */
static int quota_event(ImapSync *s, const ImapQuota *q) {
        for (size_t i = 0; i < q->n; i++) {
                const ImapQuotaResource *res = &q->v[i];
                uint64_t used, limit;

                if (!res->name.s || strcasecmp(res->name.s, "STORAGE") != 0 || res->limit == 0 ||
                    res->limit > UINT64_MAX / 1024 || res->usage > UINT64_MAX / 1024)
                        continue;
                used = res->usage * 1024;
                limit = res->limit * 1024;
                if (s->res.have_quota &&
                    (double)used / (double)limit <= (double)s->res.quota_used / (double)s->res.quota_limit)
                        continue;
                s->res.have_quota = true;
                s->res.quota_used = used;
                s->res.quota_limit = limit;
                log_acct_debug(s->a->name, "imap: quota root \"%s\": %" PRIu64 " of %" PRIu64 " KiB",
                               q->root.s ? q->root.s : "", res->usage, res->limit);
        }
        return 0;
}

static int select_event(ImapSync *s, const ImapEvent *ev) {
        switch (ev->kind) {
        case IMAP_EVENT_STATUS:
                switch (ev->status.code.kind) {
                case IMAP_CODE_UIDVALIDITY:
                        s->sel_uidvalidity = (uint32_t)ev->status.code.number;
                        break;
                case IMAP_CODE_UIDNEXT:
                        s->sel_uidnext = (uint32_t)ev->status.code.number;
                        break;
                case IMAP_CODE_HIGHESTMODSEQ:
                        s->sel_hms = ev->status.code.number;
                        break;
                case IMAP_CODE_NOMODSEQ:
                        s->sel_nomodseq = true;
                        break;
                default:
                        break;
                }
                return 0;
        case IMAP_EVENT_EXISTS:
                s->sel_exists = ev->number;
                return 0;
        case IMAP_EVENT_VANISHED:
                return uid_vec_add_set(&s->vanished, &ev->vanished.uids);
        case IMAP_EVENT_FETCH:
                return record_fetch(&s->changes, &ev->fetch, true);
        default:
                return 0;
        }
}

static int meta_event(Cmd *c, const ImapEvent *ev) {
        ImapSync *s = c->s;
        int r;

        switch (ev->kind) {
        case IMAP_EVENT_BODY_START:
                mime_headers_clear(&c->mid);
                return 0;
        case IMAP_EVENT_BODY_DATA:
                return mime_headers_feed(&c->mid, ev->body.data, ev->body.len);
        case IMAP_EVENT_FETCH:
                for (size_t i = 0; i < ev->fetch.n_bodies; i++)
                        if (ev->fetch.bodies[i].data.s) {
                                r = mime_headers_feed(&c->mid, ev->fetch.bodies[i].data.s,
                                                      ev->fetch.bodies[i].data.len);
                                if (r < 0)
                                        return r;
                        }
                r = record_fetch(&s->meta, &ev->fetch, false);
                if (r >= 0 && s->recovering && s->meta.n > 0 && s->meta.v[s->meta.n - 1].uid == ev->fetch.uid) {
                        /* Decoded as the stored envelopes were, so the two compare equal. */
                        StoreEnvelope env;

                        r = mime_headers_envelope(&c->mid, &env);
                        if (r >= 0) {
                                s->meta.v[s->meta.n - 1].message_id = TAKE_PTR(env.message_id);
                                mime_envelope_clear(&env);
                        }
                }
                mime_headers_clear(&c->mid);
                return r;
        default:
                return 0;
        }
}

static int imap_sync_cmd_event_cb(ImapClient *client, const ImapEvent *ev, void *userdata) {
        Cmd *c = userdata;
        ImapSync *s = c->s;

        /* Dovecot runs pipelined FETCH and SEARCH in parallel: a SEARCH result may come while
         * the FETCH before it is still the oldest command. A phase sends one search at most. */
        if ((ev->kind == IMAP_EVENT_SEARCH || ev->kind == IMAP_EVENT_ESEARCH) && s->search_into)
                return search_event(s->search_into, ev);
        /* Likewise a MOVE's "* OK [COPYUID ...]" may come while another push command is the oldest. */
        if (ev->kind == IMAP_EVENT_STATUS && !ev->tag.s && ev->status.code.kind == IMAP_CODE_COPYUID) {
                imap_sync_record_moved(s, &ev->status.code);
                return 0;
        }
        /* GETQUOTAROOT goes beside the LIST: its answer may come while the LIST is the oldest. */
        if (ev->kind == IMAP_EVENT_QUOTA)
                return quota_event(s, &ev->quota);
        switch (c->kind) {
        case CMD_LIST:
                if (ev->kind == IMAP_EVENT_MAILBOX_STATUS)
                        return list_status_event(s, &ev->mailbox_status);
                return ev->kind == IMAP_EVENT_LIST ? list_event(s, &ev->list) : 0;
        case CMD_SELECT:
                return select_event(s, ev);
        case CMD_CHANGES:
                if (ev->kind == IMAP_EVENT_FETCH) {
                        if (!s->condstore && (ev->fetch.have & IMAP_FETCH_UID) &&
                            imap_sync_uid_vec_push(&s->all_uids, ev->fetch.uid) < 0)
                                return -ENOMEM;
                        return record_fetch(&s->changes, &ev->fetch, true);
                }
                return 0;
        case CMD_SEARCH:
                return search_event(&s->all_uids, ev);
        case CMD_SINCE:
                return search_event(&s->since, ev);
        case CMD_META:
                return meta_event(c, ev);
        case CMD_BODIES:
                return imap_sync_fetch_event(c, ev);
        case CMD_PIECE:
                return imap_sync_piece_event(c, ev);
        case CMD_PUSH:
        case CMD_QUOTA:
        case CMD_UNSELECT:
                return 0;
        }
        return 0;
}

static void imap_sync_cmd_done_cb(ImapClient *client, int r, const ImapStatusResp *st, void *userdata) {
        Cmd *c = userdata;
        ImapSync *s = c->s;

        s->n_cmds--;
        if (r < 0 && c->kind != CMD_UNSELECT) /* a session ending after its work is no failure */
                imap_sync_fail_client(s, r);
        switch (c->kind) {
        case CMD_LIST:
                if (r > 0)
                        imap_sync_fail(s, -EPROTO, "LIST failed: %s", st->text.s ? st->text.s : "");
                break;
        case CMD_SELECT:
                s->sel_ok = r == 0;
                if (r > 0)
                        log_acct_warning(s->a->name, "imap: cannot select %s: %s", s->f->name,
                                         st->text.s ? st->text.s : "");
                break;
        case CMD_CHANGES:
        case CMD_SEARCH:
        case CMD_META:
        case CMD_SINCE:
                if (r > 0) {
                        log_acct_warning(s->a->name, "imap: %s: %s", s->f->name, st->text.s ? st->text.s : "");
                        s->folder_failed = true;
                }
                if (r == 0 && c->kind == CMD_SEARCH)
                        s->have_all_uids = true;
                if (r == 0 && c->kind == CMD_SINCE)
                        s->have_since = true;
                break;
        case CMD_PUSH:
                imap_sync_push_done(s, c, r, st);
                break;
        case CMD_BODIES:
                imap_sync_fetch_done(s, c, r, st);
                break;
        case CMD_PIECE:
                imap_sync_piece_done(s, c, r);
                break;
        case CMD_UNSELECT:
                /* r > 0 (nothing was selected) is as good; r < 0: the session broke, nothing to keep. */
                if (r >= 0 && imap_sync_keep_can_park(s))
                        imap_sync_keep_park(s);
                else if (s->client && !s->closing) {
                        s->closing = true;
                        if (r >= 0)
                                imap_client_logout(s->client);
                        else
                                imap_client_close(s->client);
                }
                break;
        case CMD_QUOTA:
                /* No quota root for INBOX, or none the user may read: nothing to warn about. */
                if (r > 0)
                        log_acct_debug(s->a->name, "imap: GETQUOTAROOT refused: %s", st->text.s ? st->text.s : "");
                break;
        }
        imap_sync_cmd_free(c);
        imap_sync_step(s);
}

/* Store callbacks of the phases. */

void imap_sync_store_done_cb(int r, void *userdata) {
        ImapSync *s = userdata;

        s->n_store--;
        if (r < 0 && r != -ENOENT)
                imap_sync_store_failed(s, r, "writing sync state");
        imap_sync_step(s);
}

static void account_cb(int r, int64_t id, void *userdata) {
        ImapSync *s = userdata;

        s->n_store--;
        if (r < 0)
                imap_sync_store_failed(s, r, "the account");
        s->account_id = id;
        imap_sync_step(s);
}

static void folder_upserted_cb(int r, int64_t id, void *userdata) {
        SyncFolder *f = userdata;
        ImapSync *s = f->s;

        s->n_store--;
        if (r < 0)
                imap_sync_store_failed(s, r, "recording a folder");
        else
                f->id = id;
        imap_sync_step(s);
}

static void expunged_cb(int r, int64_t id, void *userdata) {
        ImapSync *s = userdata;

        s->n_store--;
        if (r < 0)
                imap_sync_store_failed(s, r, "removing expunged messages");
        else
                s->res.n_expunged += (size_t)id;
        imap_sync_step(s);
}

static void renumbered_cb(int r, int64_t id, void *userdata) {
        ImapSync *s = userdata;

        s->n_store--;
        if (r < 0)
                imap_sync_store_failed(s, r, "renumbering after a UIDVALIDITY change");
        imap_sync_step(s);
}

/* Phases. */

static void enter_apply(ImapSync *s) {
        _cleanup_free_ uint32_t *gone = NULL;
        size_t n_gone = 0;
        int r;

        imap_sync_sort(s->changes.v, s->changes.n, sizeof(SrvMsg), imap_sync_srv_cmp);
        imap_sync_sort(s->all_uids.v, s->all_uids.n, sizeof(uint32_t), imap_sync_uid_cmp);
        imap_sync_sort(s->vanished.v, s->vanished.n, sizeof(uint32_t), imap_sync_uid_cmp);
        log_acct_debug(s->a->name, "imap: %s: %zu local, %zu listed on the server (%s), %zu vanished, %zu changed",
                       s->f->name, s->n_local, s->all_uids.n, s->have_all_uids ? "complete" : "not used", s->vanished.n,
                       s->changes.n);
        gone = calloc(s->n_local + 1, sizeof(uint32_t));
        if (!gone)
                return imap_sync_fail(s, -ENOMEM, "out of memory");
        for (size_t i = 0; i < s->n_local; i++) {
                uint32_t uid = s->local[i].uid;

                if ((s->have_all_uids && !imap_sync_uid_vec_has(&s->all_uids, uid)) ||
                    imap_sync_uid_vec_has(&s->vanished, uid))
                        gone[n_gone++] = uid;
        }
        if (n_gone > 0) {
                r = store_message_expunge(s->store, s->f->id, gone, n_gone, expunged_cb, s);
                if (r < 0)
                        return imap_sync_store_failed(s, r, "removing expunged messages");
                s->n_store++;
        }
        for (size_t i = 0; i < s->changes.n; i++) {
                SrvMsg *c = &s->changes.v[i];
                StoreImapMsg *m;

                if (!c->has_flags || (i + 1 < s->changes.n && s->changes.v[i + 1].uid == c->uid))
                        continue; /* the last report of a UID wins */
                m = store_imap_msg_find(s->local, s->n_local, c->uid);
                if (!m || imap_sync_uid_vec_has(&s->vanished, c->uid))
                        continue;
                r = imap_sync_apply_change(s, m, c);
                if (r < 0)
                        return imap_sync_store_failed(s, r, "updating flags");
        }
}

static void enter_changes(ImapSync *s) {
        int r;

        if (s->sel_qresync)
                return; /* VANISHED (EARLIER) and the changed FETCHes came with SELECT */
        if (s->condstore && !s->sel_nomodseq && s->f->highestmodseq) {
                if (s->sel_hms == s->f->highestmodseq)
                        return; /* nothing changed since the last sync */
                s->search_into = &s->all_uids;
                r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_CHANGES),
                                       "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %" PRIu64 ")", s->f->highestmodseq);
                if (r >= 0)
                        r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_SEARCH), "UID SEARCH %sALL",
                                               imap_client_has_cap(s->client, "ESEARCH") ? "RETURN (ALL) " : "");
                if (r < 0)
                        imap_sync_cmd_send_failed(s, r);
                return;
        }
        if (s->sel_exists == 0) {
                s->have_all_uids = true; /* empty: every local message is gone */
                return;
        }
        r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_CHANGES), "UID FETCH 1:* (UID FLAGS)");
        if (r < 0)
                return imap_sync_cmd_send_failed(s, r);
        /* Every UID comes back: the full list tells expunges (have_all_uids set when it completes). */
}

/*
 * fetch_missing_bodies: the metadata of stored messages below from that have
 * no body yet (a metered network left them), so the download phase fetches
 * their bodies like new ones. 0 when none (or sent), else a negative errno.
 */
static int meta_missing_bodies(ImapSync *s, uint32_t from) {
        _cleanup_free_ uint32_t *uids = NULL;
        _cleanup_free_ char *set = NULL;
        size_t n = 0;

        if (!s->opts.fetch_missing_bodies || s->opts.headers_only || s->recovering || s->n_local == 0)
                return 0;
        uids = calloc(s->n_local, sizeof(uint32_t));
        if (!uids)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_local; i++) {
                const StoreImapMsg *m = &s->local[i];

                if (!m->has_body && m->uid < from && !(s->a->max_message_size && m->size > s->a->max_message_size))
                        uids[n++] = m->uid;
        }
        if (n == 0)
                return 0;
        imap_sync_sort(uids, n, sizeof(uint32_t), imap_sync_uid_cmp);
        set = imap_sync_uid_set_format(uids, n);
        if (!set)
                return -ENOMEM;
        log_acct_debug(s->a->name, "imap: %s: %zu message(s) without a body here: fetching them", s->f->name, n);
        return imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_META),
                                  "UID FETCH %s (UID FLAGS INTERNALDATE RFC822.SIZE%s)", set,
                                  s->condstore && !s->sel_nomodseq ? " MODSEQ" : "");
}

static void enter_meta(ImapSync *s) {
        bool full = s->recovering || s->f->uidvalidity == 0;
        uint32_t from = full ? 1 : (s->f->uidnext ? s->f->uidnext : 1);
        int r;

        if (s->sel_exists == 0)
                return;
        r = meta_missing_bodies(s, from);
        if (r < 0)
                return imap_sync_cmd_send_failed(s, r);
        if (!full && s->sel_uidnext && s->sel_uidnext <= from)
                return; /* no UID was given out since the last sync */
        r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_META),
                               "UID FETCH %" PRIu32 ":* (UID FLAGS INTERNALDATE RFC822.SIZE%s%s)", from,
                               s->condstore && !s->sel_nomodseq ? " MODSEQ" : "",
                               s->recovering ? " BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]" : "");
        if (r >= 0 && s->a->max_age_days) {
                static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
                time_t since = time(NULL) - (time_t)s->a->max_age_days * 86400;
                struct tm tm;

                gmtime_r(&since, &tm);
                s->search_into = &s->since;
                r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_SINCE),
                                       "UID SEARCH %sUID %" PRIu32 ":* SINCE %d-%s-%d",
                                       imap_client_has_cap(s->client, "ESEARCH") ? "RETURN (ALL) " : "", from,
                                       tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900);
        }
        if (r < 0)
                imap_sync_cmd_send_failed(s, r);
}

/* Sort helper for recovery: meta entries by (Message-ID, size). */
static int meta_key_cmp(const void *a, const void *b) {
        const SrvMsg *x = *(const SrvMsg *const *)a, *y = *(const SrvMsg *const *)b;
        int c = strcmp(x->message_id, y->message_id);

        if (c)
                return c;
        return x->size < y->size ? -1 : x->size > y->size;
}

static void enter_recover(ImapSync *s) {
        _cleanup_free_ SrvMsg **keyed = calloc(s->meta.n + 1, sizeof(SrvMsg *));
        _cleanup_free_ uint32_t *old_uids = calloc(s->n_local + 1, sizeof(uint32_t));
        _cleanup_free_ uint32_t *new_uids = calloc(s->n_local + 1, sizeof(uint32_t));
        _cleanup_free_ bool *used = calloc(s->meta.n + 1, sizeof(bool));
        size_t n_keyed = 0, n = 0;
        int r;

        if (!keyed || !old_uids || !new_uids || !used)
                return imap_sync_fail(s, -ENOMEM, "out of memory");
        for (size_t i = 0; i < s->meta.n; i++)
                if (s->meta.v[i].message_id)
                        keyed[n_keyed++] = &s->meta.v[i];
        imap_sync_sort(keyed, n_keyed, sizeof(*keyed), meta_key_cmp);
        for (size_t i = 0; i < s->n_local; i++) {
                StoreImapMsg *m = &s->local[i];
                SrvMsg key = {.message_id = m->message_id, .size = m->size}, *kp = &key, **hit;

                if (!m->message_id || !m->has_body)
                        continue;
                hit = n_keyed ? bsearch(&kp, keyed, n_keyed, sizeof(*keyed), meta_key_cmp) : NULL;
                if (!hit)
                        continue;
                /* Several server copies of one message: take the first unused. */
                while (hit > keyed && meta_key_cmp(hit - 1, &kp) == 0)
                        hit--;
                for (; hit < keyed + n_keyed && meta_key_cmp(hit, &kp) == 0; hit++) {
                        size_t mi = (size_t)(*hit - s->meta.v);
                        if (!used[mi]) {
                                used[mi] = true;
                                old_uids[n] = m->uid;
                                new_uids[n++] = (*hit)->uid;
                                break;
                        }
                }
        }
        log_acct_notice(s->a->name,
                        "imap: %s: UIDVALIDITY changed (%" PRIu32 " → %" PRIu32 "): %zu of %zu messages "
                        "kept without download",
                        s->f->name, s->f->uidvalidity, s->sel_uidvalidity, n, s->n_local);
        r = store_imap_renumber(s->store, s->f->id, old_uids, new_uids, n, s->sel_uidvalidity, renumbered_cb, s);
        if (r < 0)
                return imap_sync_store_failed(s, r, "renumbering after a UIDVALIDITY change");
        s->n_store++;
        s->res.n_uidvalidity++;
        s->res.n_recovered += n;
        s->f->uidvalidity = s->sel_uidvalidity;
        s->f->uidnext = 0;
        s->f->highestmodseq = 0;
}

/* After a renumbering committed: the new local list, and the server's flags on it. */
static void after_recover(ImapSync *s) {
        int r;

        store_imap_msg_list_free(s->local, s->n_local);
        s->local = NULL;
        s->n_local = 0;
        r = store_imap_msg_list(s->store, s->f->id, 0, &s->local, &s->n_local);
        if (r < 0)
                return imap_sync_store_failed(s, r, "listing a folder");
        for (size_t i = 0; i < s->meta.n; i++) {
                StoreImapMsg *m = store_imap_msg_find(s->local, s->n_local, s->meta.v[i].uid);

                if (m && s->meta.v[i].has_flags) {
                        r = imap_sync_apply_change(s, m, &s->meta.v[i]);
                        if (r < 0)
                                return imap_sync_store_failed(s, r, "updating flags");
                }
        }
}

static void enter_save(ImapSync *s) {
        bool ok = !s->folder_failed;
        /* Only what is committed moves the folder's state on; after a failure the next sync compares again. */
        uint32_t uidnext = ok ? s->sel_uidnext : s->f->uidnext;
        uint64_t hms = ok && !s->sel_nomodseq ? s->sel_hms : s->f->highestmodseq;
        int r;

        s->res.n_folders++;
        imap_sync_progress(s, true);
        if (s->sel_uidvalidity == s->f->uidvalidity && uidnext == s->f->uidnext && hms == s->f->highestmodseq)
                return; /* unchanged: no write (a no-change resync commits nothing) */
        r = store_imap_folder_set_state(s->store, s->f->id, s->sel_uidvalidity, uidnext, hms, imap_sync_store_done_cb,
                                        s);
        if (r < 0)
                return imap_sync_store_failed(s, r, "saving a folder's state");
        s->n_store++;
}

static void enter_select(ImapSync *s) {
        _cleanup_free_ char *q = NULL;
        int r;

        for (;;) {
                folder_reset(s);
                while (s->i_folder < s->n_folders && s->folders[s->i_folder].id <= 0)
                        s->i_folder++;
                if (s->i_folder >= s->n_folders) {
                        s->f = NULL;
                        return; /* imap_sync_step moves to LOGOUT */
                }
                s->f = &s->folders[s->i_folder];
                r = store_pending_list(s->store, s->account_id, &s->pend, &s->n_pend);
                if (r < 0)
                        return imap_sync_store_failed(s, r, "listing local changes");
                if (!folder_unchanged(s))
                        break;
                log_acct_debug(s->a->name, "imap: %s unchanged since the last sync", s->f->name);
                s->res.n_folders++;
                imap_sync_progress(s, true);
                s->i_folder++;
        }
        r = s->local ? 0 : store_imap_msg_list(s->store, s->f->id, 0, &s->local, &s->n_local);
        if (r < 0)
                return imap_sync_store_failed(s, r, "listing a folder");
        q = imap_sync_quote_mailbox(s, s->f->wire);
        if (!q)
                return imap_sync_fail(s, -ENOMEM, "out of memory");
        if (s->qresync && s->f->uidvalidity && s->f->highestmodseq) {
                s->sel_qresync = true;
                r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_SELECT),
                                       "SELECT %s (QRESYNC (%" PRIu32 " %" PRIu64 "))", q, s->f->uidvalidity,
                                       s->f->highestmodseq);
        } else if (s->condstore && !s->qresync)
                r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_SELECT), "SELECT %s (CONDSTORE)", q);
        else
                r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_SELECT), "SELECT %s", q);
        if (r < 0)
                imap_sync_cmd_send_failed(s, r);
}

static void enter_folders(ImapSync *s) {
        StoreFolder *local = NULL;
        size_t n_local = 0;
        int r;

        r = store_folder_list(s->store, s->account_id, &local, &n_local);
        if (r < 0)
                return imap_sync_store_failed(s, r, "listing folders");
        for (size_t i = 0; i < s->n_folders; i++) {
                SyncFolder *f = &s->folders[i];
                StoreFolder sf = {.account_id = s->account_id, .name = f->name, .delimiter = f->delim, .role = f->role};

                bool same = false;

                f->s = s;
                f->id = 0;
                for (size_t j = 0; j < n_local; j++)
                        if (strcmp(local[j].name, f->name) == 0) {
                                f->existed = true;
                                f->uidvalidity = sf.uidvalidity = local[j].uidvalidity;
                                f->uidnext = sf.uidnext = local[j].uidnext;
                                f->highestmodseq = sf.highestmodseq = local[j].highestmodseq;
                                sf.subscribed = local[j].subscribed;
                                same = local[j].role == f->role && local[j].delimiter == f->delim;
                                if (same)
                                        f->id = local[j].id;
                        }
                if (!f->existed)
                        s->res.n_folders_created++;
                if (same)
                        continue; /* known as it is: no write */
                r = store_folder_upsert(s->store, &sf, folder_upserted_cb, f);
                if (r < 0) {
                        imap_sync_store_failed(s, r, "recording a folder");
                        break;
                }
                s->n_store++;
        }
        /* Folders this engine synced before (a UIDVALIDITY is recorded) that the server no longer lists. */
        for (size_t j = 0; j < n_local && r >= 0; j++) {
                bool listed = false;

                for (size_t i = 0; i < s->n_server_names && !listed; i++)
                        listed = strcmp(s->server_names[i], local[j].name) == 0;
                if (listed || local[j].uidvalidity == 0)
                        continue;
                log_acct_info(s->a->name, "imap: folder %s is gone from the server; removed here", local[j].name);
                r = store_folder_delete(s->store, local[j].id, imap_sync_store_done_cb, s);
                if (r < 0) {
                        imap_sync_store_failed(s, r, "removing a folder");
                        break;
                }
                s->n_store++;
                s->res.n_folders_deleted++;
        }
        store_folder_list_free(local, n_local);
}

/* The state machine. */

static SyncState next_state(ImapSync *s) {
        switch (s->state) {
        case SYNC_CONNECT:
                return SYNC_ACCOUNT;
        case SYNC_ACCOUNT:
                return SYNC_LIST;
        case SYNC_LIST:
                return SYNC_FOLDERS;
        case SYNC_FOLDERS:
                return SYNC_SELECT;
        case SYNC_SELECT:
                if (!s->f)
                        return SYNC_LOGOUT;
                if (!s->sel_ok) {
                        s->i_folder++;
                        return SYNC_SELECT;
                }
                if (s->f->uidvalidity && s->sel_uidvalidity != s->f->uidvalidity) {
                        /* Recovery matches by Message-ID and size: list them too. */
                        store_imap_msg_list_free(s->local, s->n_local);
                        s->local = NULL;
                        s->n_local = 0;
                        int r = store_imap_msg_list(s->store, s->f->id, STORE_IMAP_LIST_IDS, &s->local, &s->n_local);
                        if (r < 0) {
                                imap_sync_store_failed(s, r, "listing a folder");
                                return SYNC_SELECT;
                        }
                        s->recovering = true;
                        return SYNC_META;
                }
                return s->f->uidvalidity ? SYNC_CHANGES : SYNC_PUSH;
        case SYNC_CHANGES:
                if (!s->condstore && !s->sel_qresync && !s->folder_failed)
                        s->have_all_uids = true; /* the FLAGS of 1:* listed every UID */
                if (s->folder_failed)
                        s->have_all_uids = false; /* an incomplete list must not expunge anything */
                return SYNC_APPLY;
        case SYNC_APPLY:
                return SYNC_PUSH;
        case SYNC_PUSH:
                return SYNC_META;
        case SYNC_META:
                imap_sync_sort(s->meta.v, s->meta.n, sizeof(SrvMsg), imap_sync_srv_cmp);
                return s->recovering ? SYNC_RECOVER : SYNC_BODIES;
        case SYNC_RECOVER:
                after_recover(s);
                return SYNC_BODIES;
        case SYNC_BODIES:
                return SYNC_SAVE;
        case SYNC_SAVE:
                s->i_folder++;
                return SYNC_SELECT;
        case SYNC_LOGOUT:
        case SYNC_DONE:
                return SYNC_DONE;
        default:
                return SYNC_DONE;
        }
}

static void enter_state(ImapSync *s, SyncState state) {
        /* SELECT picks the next folder: name that one. */
        const SyncFolder *f =
                state == SYNC_SELECT ? (s->i_folder < s->n_folders ? &s->folders[s->i_folder] : NULL) : s->f;
        bool named = f && state > SYNC_FOLDERS && state < SYNC_LOGOUT;

        log_acct_debug(s->a->name, "imap: sync %s → %s%s%s", state_names[s->state], state_names[state],
                       named ? " " : "", named ? f->name : "");
        s->state = state;
        switch (state) {
        case SYNC_CONNECT:
                break;
        case SYNC_ACCOUNT: {
                int r = store_account_upsert(s->store, s->a->name, account_cb, s);
                if (r < 0)
                        return imap_sync_store_failed(s, r, "the account");
                s->n_store++;
                break;
        }
        case SYNC_LIST: {
                bool special = imap_client_has_cap(s->client, "SPECIAL-USE") &&
                               imap_client_has_cap(s->client, "LIST-EXTENDED");
                /* With LIST-STATUS the same round trip says which folders changed at all. */
                bool status = s->condstore && imap_client_has_cap(s->client, "LIST-STATUS");
                int r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_LIST), "LIST \"\" \"*\"%s%s%s%s",
                                           special || status ? " RETURN (" : "", special ? "SPECIAL-USE" : "",
                                           special && status ? " " : "",
                                           status ? "STATUS (UIDVALIDITY UIDNEXT HIGHESTMODSEQ))" : special ? ")" : "");
                if (r >= 0 && imap_client_has_cap(s->client, "QUOTA"))
                        r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_QUOTA), "GETQUOTAROOT INBOX");
                if (r < 0)
                        imap_sync_cmd_send_failed(s, r);
                break;
        }
        case SYNC_FOLDERS:
                enter_folders(s);
                break;
        case SYNC_SELECT:
                enter_select(s);
                break;
        case SYNC_CHANGES:
                enter_changes(s);
                break;
        case SYNC_APPLY:
                enter_apply(s);
                break;
        case SYNC_PUSH:
                imap_sync_push_start(s);
                break;
        case SYNC_META:
                enter_meta(s);
                break;
        case SYNC_RECOVER:
                enter_recover(s);
                break;
        case SYNC_BODIES:
                imap_sync_fetch_start(s);
                break;
        case SYNC_SAVE:
                enter_save(s);
                break;
        case SYNC_LOGOUT:
                if (imap_sync_keep_can_park(s)) {
                        /* Kept for the next sync: with no mailbox selected, nothing is said meanwhile. */
                        int r = imap_sync_cmd_send(s, imap_sync_cmd_new(s, CMD_UNSELECT), "UNSELECT");
                        if (r >= 0)
                                break;
                }
                s->closing = true;
                imap_client_logout(s->client);
                break;
        case SYNC_DONE:
        case _SYNC_STATE_MAX:
                break;
        }
}

/* Moves on while nothing is outstanding; ends the sync on failure. */
void imap_sync_step(ImapSync *s) {
        if (s->stepping)
                return;
        s->stepping = true; /* holds s: no callback frees it until we return */
        for (;;) {
                if (s->stopping) {
                        if (!s->closing && s->client) {
                                s->closing = true;
                                imap_client_close(s->client);
                        }
                        break;
                }
                if (s->state == SYNC_BODIES && (s->i_todo < s->n_todo || s->large))
                        imap_sync_fetch_pump(s);
                if (s->n_cmds > 0 || s->n_store > 0 || s->large || (s->state == SYNC_BODIES && s->i_todo < s->n_todo))
                        break;
                if (s->state == SYNC_LOGOUT || s->state == SYNC_DONE || s->state == SYNC_CONNECT)
                        break;
                enter_state(s, next_state(s));
        }
        s->stepping = false;
        sync_maybe_free(s);
}

/* Client callbacks (through the session's SyncConn, sync-keep.c). */

void imap_sync_client_ready(ImapSync *s, int r) {
        if (r < 0) {
                imap_sync_fail_client(s, r);
                return imap_sync_step(s);
        }
        s->utf8 = imap_client_is_enabled(s->client, "UTF8=ACCEPT");
        s->qresync = imap_client_is_enabled(s->client, "QRESYNC");
        s->condstore = s->qresync || imap_client_is_enabled(s->client, "CONDSTORE");
        enter_state(s, SYNC_ACCOUNT);
        imap_sync_step(s);
}

void imap_sync_client_failed(ImapSync *s, int r) {
        if (s->state != SYNC_LOGOUT)
                imap_sync_fail_client(s, r);
        imap_sync_step(s);
}

void imap_sync_client_closed(ImapSync *s) {
        s->client_closed = true;
        s->client = NULL;
        s->conn = NULL;
        s->closing = true;
        sync_maybe_free(s);
}

/* Untagged responses no command took (an APPEND in flight passes them on). */
void imap_sync_client_untagged(ImapSync *s, const ImapEvent *ev) {
        if (ev->kind == IMAP_EVENT_STATUS && ev->status.code.kind == IMAP_CODE_COPYUID)
                imap_sync_record_moved(s, &ev->status.code);
        else if (ev->kind == IMAP_EVENT_QUOTA)
                (void)quota_event(s, &ev->quota);
}

int imap_sync_begin(uv_loop_t *loop, Store *store, const Account *a, const ImapSyncOptions *opts, ImapSyncFn cb,
                    void *userdata, ImapSync **sp) {
        ImapSync *s;
        int r;

        if (!cb || a->imap.proto != SERVER_IMAP)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (ImapSync){.loop = loop, .store = store, .a = a, .cb = cb, .userdata = userdata};
        if (opts)
                s->opts = *opts;
        if (!s->opts.large_threshold)
                s->opts.large_threshold = LARGE_DEFAULT;
        if (!s->opts.chunk_uids)
                s->opts.chunk_uids = CHUNK_DEFAULT;
        s->copts = (ImapClientOptions){.send_id = true};
        s->copts.enable_condstore = !s->opts.no_condstore;
        s->copts.enable_qresync = !s->opts.no_condstore && !s->opts.no_qresync;
        s->copts.read_timeout_ms = s->opts.read_timeout_ms;
        r = imap_sync_conn_open(s, &s->copts);
        if (r < 0) {
                /* No callback of ours may run: detach and close (the close frees s), or free s here. */
                s->cb = NULL;
                if (s->client)
                        imap_client_close(s->client);
                else {
                        imap_sync_keep_release(s);
                        free(s);
                }
                return r;
        }
        if (sp)
                *sp = s;
        return 0;
}

int imap_sync_start(uv_loop_t *loop, Store *store, const Account *a, const ImapSyncOptions *opts, ImapSyncFn cb,
                    void *userdata) {
        return imap_sync_begin(loop, store, a, opts, cb, userdata, NULL);
}

void imap_sync_cancel(ImapSync *s) {
        imap_sync_fail(s, -ECANCELED, "sync cancelled");
        imap_sync_step(s);
}

const char *imap_sync_result_summary(const ImapSyncResult *res, char *buf, size_t size) {
        snprintf(buf, size,
                 "%zu folder(s) (%zu new, %zu removed), %zu new message(s) (%" PRIu64 " bytes), %zu flag update(s), "
                 "%zu deleted by another device, %zu local change(s) pushed, %zu UIDVALIDITY recovery(ies) "
                 "(%zu kept)",
                 res->n_folders, res->n_folders_created, res->n_folders_deleted, res->n_new, res->body_bytes,
                 res->n_flags_updated, res->n_expunged, res->n_pushed, res->n_uidvalidity, res->n_recovered);
        return buf;
}
