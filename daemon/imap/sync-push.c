/*
 * Local changes for the sync engine: the per-flag merge of a server flag
 * report with a message's pending local edits (imap_flags_merge()), and the
 * push of the current folder's pending changes: flags as one UID STORE per
 * message with UNCHANGEDSINCE (a MODIFIED answer leaves the change pending for
 * the next sync, which merges and pushes again), deletions as \\Deleted then
 * UID EXPUNGE, moves as UID MOVE (or COPY, \\Deleted, EXPUNGE), appends
 * through imap_client_append() with the APPENDUID recorded here. Commands of a
 * chain go one after the other (Dovecot runs pipelined commands in parallel).
 * A pending row goes once the server took its change. Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/imap/flags.h"
#include "daemon/imap/sync-private.h"
#include "store/message.h"
#include "util/log.h"

/* The UIDs of a set as sent (COPYUID pairs src and dst by position), malloc()ed. */
static int expand_set(const ImapSeqSet *set, uint32_t **vp, size_t *np) {
        uint32_t *v = NULL;
        size_t n = 0;

        for (size_t i = 0; i < set->n; i++) {
                uint32_t first = set->v[i].first, last = set->v[i].last;

                if (first == IMAP_SEQ_STAR || last == IMAP_SEQ_STAR || last - first > 100000) {
                        free(v);
                        return -EINVAL;
                }
                uint32_t *nv = reallocarray(v, n + (last - first) + 1, sizeof(uint32_t));
                if (!nv) {
                        free(v);
                        return -ENOMEM;
                }
                v = nv;
                for (uint64_t x = first; x <= last; x++)
                        v[n++] = (uint32_t)x;
        }
        *vp = v;
        *np = n;
        return 0;
}

static SyncFolder *folder_by_id(ImapSync *s, int64_t id) {
        for (size_t i = 0; i < s->n_folders; i++)
                if (s->folders[i].id == id)
                        return &s->folders[i];
        return NULL;
}

static void pending_removed_cb(int r, int64_t id, void *userdata) {
        ImapSync *s = userdata;

        s->n_store--;
        if (r < 0)
                imap_sync_store_failed(s, r, "removing pushed changes");
        imap_sync_step(s);
}

/* The pending FLAGS changes of (folder, uid) folded together: touched bits and keywords asked for. */
static void pending_flags_of(ImapSync *s, uint32_t uid, uint32_t *touchedp, char **kw_addp, char **kw_removep) {
        uint32_t touched = 0;

        *kw_addp = *kw_removep = NULL;
        for (size_t i = 0; i < s->n_pend; i++) {
                StorePendingChange *p = &s->pend[i];
                char *a = NULL, *r = NULL;

                if (p->kind != STORE_PENDING_FLAGS || p->folder_id != s->f->id || p->uid != uid)
                        continue;
                touched |= p->flags_add | p->flags_remove;
                /* add ∪= p.add − p.remove; remove ∪= p.remove − p.add (later rows win). */
                if (imap_keywords_apply(*kw_addp, p->keywords_add, p->keywords_remove, &a) >= 0 &&
                    imap_keywords_apply(*kw_removep, p->keywords_remove, p->keywords_add, &r) >= 0) {
                        free(*kw_addp);
                        free(*kw_removep);
                        *kw_addp = a;
                        *kw_removep = r;
                } else {
                        free(a);
                        free(r);
                }
        }
        *touchedp = touched;
}

/* A server flag change of a message we hold: merged with local pending edits, written when it differs. */
int imap_sync_apply_change(ImapSync *s, StoreImapMsg *m, const SrvMsg *c) {
        _cleanup_free_ char *kw_add = NULL, *kw_remove = NULL, *base_kw = NULL, *kw = NULL, *norm = NULL;
        uint32_t touched, flags;
        int r;

        pending_flags_of(s, m->uid, &touched, &kw_add, &kw_remove);
        if (touched || kw_add || kw_remove) {
                /* Base: what the local edits started from (see sync.h). */
                uint32_t base = m->flags ^ touched;

                r = imap_keywords_apply(m->keywords, kw_remove, kw_add, &base_kw);
                if (r < 0)
                        return r;
                flags = imap_flags_merge(true, base, m->flags, c->flags);
                r = imap_keywords_merge(true, base_kw, m->keywords, c->keywords, &kw);
        } else {
                flags = c->flags;
                r = imap_keywords_normalize(c->keywords, &kw);
        }
        if (r < 0)
                return r;
        r = imap_keywords_normalize(m->keywords, &norm);
        if (r < 0)
                return r;
        if (flags == m->flags && ((!kw && !norm) || (kw && norm && strcmp(kw, norm) == 0)) &&
            (!c->modseq || c->modseq == m->modseq))
                return 0;
        if (flags != m->flags || !((!kw && !norm) || (kw && norm && strcmp(kw, norm) == 0)))
                s->res.n_flags_updated++;
        r = store_message_set_flags(s->store, s->f->id, m->uid, flags, kw, c->modseq ? c->modseq : m->modseq,
                                    imap_sync_store_done_cb, s);
        if (r < 0)
                return r;
        s->n_store++;
        m->flags = flags;
        free(m->keywords);
        m->keywords = TAKE_PTR(kw);
        if (c->modseq)
                m->modseq = c->modseq;
        return 0;
}

/* One command per message for flags (UNCHANGEDSINCE is per message). */
static int push_flags(ImapSync *s, uint32_t uid, int64_t *ids, size_t n_ids) {
        StoreImapMsg *m = store_imap_msg_find(s->local, s->n_local, uid);
        _cleanup_free_ char *list = NULL;
        Cmd *c;
        int r;

        if (!m)
                return 0; /* gone here (expunged on the server): nothing to push; the rows are dropped below */
        r = imap_flags_format(m->flags, m->keywords, &list);
        if (r == -EINVAL) {
                log_acct_warning(s->a->name, "imap: %s: UID %" PRIu32 ": a keyword is not an IMAP atom; not pushed",
                                 s->f->name, uid);
                return 0;
        }
        if (r < 0)
                return r;
        c = imap_sync_cmd_new(s, CMD_PUSH);
        if (!c)
                return -ENOMEM;
        c->pending_ids = malloc(n_ids * sizeof(int64_t));
        if (!c->pending_ids) {
                imap_sync_cmd_free(c);
                return -ENOMEM;
        }
        memcpy(c->pending_ids, ids, n_ids * sizeof(int64_t));
        c->n_pending_ids = n_ids;
        if (s->condstore && m->modseq)
                return imap_sync_cmd_send(s, c, "UID STORE %" PRIu32 " (UNCHANGEDSINCE %" PRIu64 ") FLAGS.SILENT (%s)",
                                          uid, m->modseq, list);
        return imap_sync_cmd_send(s, c, "UID STORE %" PRIu32 " FLAGS.SILENT (%s)", uid, list);
}

/* Sends cmd with the pending ids to remove when the server says OK; then (may be NULL) follows that OK. */
/*
 * Sends a push command; the pending rows ids go when the server says OK, after
 * then (NULL, or a "\n"-separated chain of commands sent one after the other)
 * when given.
 */
_printf_(5, 6) static int push_cmd_full(ImapSync *s, const int64_t *ids, size_t n_ids, const char *then,
                                        const char *fmt, ...) {
        _cleanup_free_ char *line = NULL;
        Cmd *c = imap_sync_cmd_new(s, CMD_PUSH);
        va_list ap;
        int r;

        if (!c)
                return -ENOMEM;
        if (then && !(c->then = strdup(then))) {
                imap_sync_cmd_free(c);
                return -ENOMEM;
        }
        if (n_ids) {
                c->pending_ids = malloc(n_ids * sizeof(int64_t));
                if (!c->pending_ids) {
                        imap_sync_cmd_free(c);
                        return -ENOMEM;
                }
                memcpy(c->pending_ids, ids, n_ids * sizeof(int64_t));
                c->n_pending_ids = n_ids;
        }
        va_start(ap, fmt);
        r = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (r < 0) {
                imap_sync_cmd_free(c);
                return -ENOMEM;
        }
        return imap_sync_cmd_send(s, c, "%s", line);
}

#define push_cmd(s, ids, n_ids, ...) push_cmd_full(s, ids, n_ids, NULL, __VA_ARGS__)

/*
 * Removes the given UIDs from the current folder on the server: \Deleted,
 * then UID EXPUNGE (or EXPUNGE) only once the STORE is answered, because
 * Dovecot runs pipelined commands in parallel and an EXPUNGE sent right
 * behind the STORE may run first.
 */
static int push_expunge(ImapSync *s, const char *set, const int64_t *ids, size_t n_ids) {
        _cleanup_free_ char *then = NULL;

        /* Without UIDPLUS, EXPUNGE also removes what others marked \Deleted: the IMAP way of deleting. */
        if (imap_client_has_cap(s->client, "UIDPLUS") ? asprintf(&then, "UID EXPUNGE %s", set) < 0
                                                      : !(then = strdup("EXPUNGE")))
                return -ENOMEM;
        return push_cmd_full(s, ids, n_ids, then, "UID STORE %s +FLAGS.SILENT (\\Deleted)", set);
}

/* APPEND of a locally added message (drafts, sent copies). */
typedef struct Append {
        ImapSync *s;
        StoreBodyReader *reader;
        MimeHeaders h;
        int64_t pending_id;
        uint32_t flags;
        char *keywords;
        StoreCid cid;
        uint64_t size;
} Append;

static void append_free(Append *ap) {
        store_body_reader_free(ap->reader);
        mime_headers_clear(&ap->h);
        free(ap->keywords);
        free(ap);
}

static int append_read_cb(void *userdata, const void **datap, size_t *np) {
        Append *ap = userdata;
        int r = store_body_reader_read(ap->reader, datap, np);

        if (r >= 0 && *np)
                (void)mime_headers_feed(&ap->h, *datap, *np);
        return r;
}

static void appended_cb(int r, int64_t id, void *userdata) {
        imap_sync_store_done_cb(r, userdata);
}

static void append_done_cb(ImapClient *client, int r, const ImapStatusResp *st, void *userdata) {
        Append *ap = userdata;
        ImapSync *s = ap->s;

        s->n_cmds--;
        if (r < 0)
                imap_sync_fail_client(s, r);
        else if (r > 0)
                log_acct_warning(s->a->name, "imap: %s: APPEND refused: %s", s->f->name, st->text.s ? st->text.s : "");
        else {
                int rr = store_pending_remove(s->store, &ap->pending_id, 1, pending_removed_cb, s);

                if (rr < 0)
                        imap_sync_store_failed(s, rr, "removing pushed changes");
                else {
                        s->n_store++;
                        s->res.n_pushed++;
                }
                /* APPENDUID: record it here now, so the new-message fetch does not download it again. */
                if (st->code.kind == IMAP_CODE_APPENDUID && st->code.uidvalidity == s->sel_uidvalidity &&
                    st->code.set.n == 1 && st->code.set.v[0].first != IMAP_SEQ_STAR) {
                        StoreMessage m = {.folder_id = s->f->id,
                                          .uid = st->code.set.v[0].first,
                                          .flags = ap->flags,
                                          .keywords = ap->keywords,
                                          .internal_date = (int64_t)time(NULL),
                                          .size = ap->size,
                                          .has_body = true,
                                          .cid = ap->cid};

                        rr = mime_headers_envelope(&ap->h, &m.env);
                        if (rr >= 0)
                                rr = store_message_insert(s->store, &m, STORE_BULK, appended_cb, s);
                        m.keywords = NULL;
                        store_message_clear(&m);
                        if (rr < 0)
                                imap_sync_store_failed(s, rr, "recording an appended message");
                        else {
                                s->n_store++;
                                if (imap_sync_uid_vec_push(&s->appended, st->code.set.v[0].first) < 0)
                                        imap_sync_fail(s, -ENOMEM, "out of memory");
                        }
                }
        }
        append_free(ap);
        imap_sync_step(s);
}

static int push_append(ImapSync *s, const StorePendingChange *p) {
        _cleanup_free_ char *flags = NULL, *list = NULL;
        Append *ap;
        int r;

        if (!p->has_cid)
                return 0;
        ap = calloc(1, sizeof(*ap));
        if (!ap)
                return -ENOMEM;
        *ap = (Append){.s = s, .pending_id = p->id, .flags = p->flags_add, .cid = p->cid};
        r = store_body_reader_new(s->store, &p->cid, &ap->reader);
        if (r < 0) {
                append_free(ap);
                log_acct_warning(s->a->name, "imap: %s: the body of a message to append is gone; dropped", s->f->name);
                return 0;
        }
        ap->size = store_body_reader_get_size(ap->reader);
        if (p->keywords_add && imap_keywords_normalize(p->keywords_add, &ap->keywords) < 0) {
                append_free(ap);
                return -ENOMEM;
        }
        r = imap_flags_format(p->flags_add, ap->keywords, &list);
        if (r < 0) {
                append_free(ap);
                return r == -EINVAL ? 0 : r;
        }
        if (asprintf(&flags, "(%s)", list) < 0) {
                append_free(ap);
                return -ENOMEM;
        }
        r = imap_client_append(s->client, s->f->wire, flags, 0, ap->size, append_read_cb, append_done_cb, ap);
        if (r < 0) {
                append_free(ap);
                return r;
        }
        s->n_cmds++;
        return 0;
}

void imap_sync_push_start(ImapSync *s) {
        _cleanup_free_ int64_t *ids = calloc(s->n_pend + 1, sizeof(int64_t));
        _cleanup_free_ uint32_t *uids = calloc(s->n_pend + 1, sizeof(uint32_t));
        _cleanup_free_ bool *done = calloc(s->n_pend + 1, sizeof(bool));
        _cleanup_free_ int64_t *drop = calloc(s->n_pend + 1, sizeof(int64_t));
        size_t n_drop = 0;
        int r = 0;

        if (!ids || !uids || !done || !drop)
                return imap_sync_fail(s, -ENOMEM, "out of memory");
        for (size_t i = 0; i < s->n_pend && r >= 0; i++) {
                StorePendingChange *p = &s->pend[i];
                size_t n = 0;

                if (done[i] || p->folder_id != s->f->id)
                        continue;
                switch (p->kind) {
                case STORE_PENDING_FLAGS:
                        /* Every row of this UID goes with one STORE of the merged set. */
                        for (size_t j = i; j < s->n_pend; j++)
                                if (!done[j] && s->pend[j].kind == STORE_PENDING_FLAGS &&
                                    s->pend[j].folder_id == s->f->id && s->pend[j].uid == p->uid) {
                                        ids[n++] = s->pend[j].id;
                                        done[j] = true;
                                }
                        if (!store_imap_msg_find(s->local, s->n_local, p->uid)) {
                                memcpy(drop + n_drop, ids, n * sizeof(int64_t));
                                n_drop += n;
                        } else
                                r = push_flags(s, p->uid, ids, n);
                        break;
                case STORE_PENDING_DELETE:
                case STORE_PENDING_MOVE: {
                        SyncFolder *target = NULL;
                        _cleanup_free_ char *set = NULL, *q = NULL;

                        if (p->kind == STORE_PENDING_MOVE) {
                                target = folder_by_id(s, p->target_folder_id);
                                if (!target) {
                                        log_acct_warning(s->a->name,
                                                         "imap: %s: move target is not on the server; "
                                                         "dropped",
                                                         s->f->name);
                                        drop[n_drop++] = p->id;
                                        done[i] = true;
                                        break;
                                }
                        }
                        for (size_t j = i; j < s->n_pend; j++)
                                if (!done[j] && s->pend[j].kind == p->kind && s->pend[j].folder_id == s->f->id &&
                                    (p->kind == STORE_PENDING_DELETE ||
                                     s->pend[j].target_folder_id == p->target_folder_id)) {
                                        ids[n] = s->pend[j].id;
                                        uids[n++] = s->pend[j].uid;
                                        done[j] = true;
                                }
                        imap_sync_sort(uids, n, sizeof(uint32_t), imap_sync_uid_cmp);
                        set = imap_sync_uid_set_format(uids, n);
                        if (!set) {
                                r = -ENOMEM;
                                break;
                        }
                        if (!target) {
                                r = push_expunge(s, set, ids, n);
                                break;
                        }
                        q = imap_sync_quote_mailbox(s, target->wire);
                        if (!q) {
                                r = -ENOMEM;
                                break;
                        }
                        if (imap_client_has_cap(s->client, "MOVE"))
                                r = push_cmd_full(s, ids, n, NULL, "UID MOVE %s %s", set, q);
                        else {
                                /* COPY, then \Deleted, then EXPUNGE, each once the one before is answered. */
                                _cleanup_free_ char *then = NULL;
                                bool uidplus = imap_client_has_cap(s->client, "UIDPLUS");

                                if (asprintf(&then, "UID STORE %s +FLAGS.SILENT (\\Deleted)\n%s%s", set,
                                             uidplus ? "UID EXPUNGE " : "EXPUNGE", uidplus ? set : "") < 0)
                                        r = -ENOMEM;
                                else
                                        r = push_cmd_full(s, ids, n, then, "UID COPY %s %s", set, q);
                        }
                        break;
                }
                case STORE_PENDING_APPEND:
                        done[i] = true;
                        if (s->f->role == STORE_ROLE_SENT && imap_client_has_cap(s->client, "X-GM-EXT-1")) {
                                /* Gmail files what went through its SMTP in Sent itself: a copy would be a
                                 * duplicate. */
                                log_acct_info(s->a->name, "imap: %s: the server files sent mail itself (Gmail); "
                                                          "no copy appended",
                                              s->f->name);
                                drop[n_drop++] = p->id;
                                break;
                        }
                        r = push_append(s, p);
                        break;
                }
        }
        if (r < 0)
                return imap_sync_cmd_send_failed(s, r);
        if (n_drop > 0) {
                r = store_pending_remove(s->store, drop, n_drop, pending_removed_cb, s);
                if (r < 0)
                        return imap_sync_store_failed(s, r, "removing stale changes");
                s->n_store++;
        }
}

/* The moved message's headers, read back from its stored body (first chunks only). */
static int read_headers(Store *store, const StoreCid *cid, MimeHeaders *h, uint64_t *sizep) {
        _cleanup_(store_body_reader_freep) StoreBodyReader *rd = NULL;
        int r = store_body_reader_new(store, cid, &rd);

        if (r < 0)
                return r;
        *sizep = store_body_reader_get_size(rd);
        while (!h->done) {
                const void *data;
                size_t n;

                r = store_body_reader_read(rd, &data, &n);
                if (r < 0 || n == 0)
                        return r;
                r = mime_headers_feed(h, data, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void moved_cb(int r, int64_t id, void *userdata) {
        imap_sync_store_done_cb(r, userdata);
}

/*
 * COPYUID of a MOVE or COPY: each moved message is recorded in its target
 * at its new UID with the body it had here (pending MOVE rows keep the body's
 * cid), so the target's sync finds it and downloads nothing. Its flags come
 * with the target's next flag changes (the server gave it a new MODSEQ).
 */
void imap_sync_record_moved(ImapSync *s, const ImapRespCode *code) {
        _cleanup_free_ uint32_t *src = NULL, *dst = NULL;
        size_t n_src = 0, n_dst = 0;

        if (code->kind != IMAP_CODE_COPYUID || !s->f)
                return;
        if (expand_set(&code->src, &src, &n_src) < 0 || expand_set(&code->set, &dst, &n_dst) < 0 || n_src != n_dst)
                return;
        for (size_t i = 0; i < n_src; i++)
                for (size_t j = 0; j < s->n_pend; j++) {
                        StorePendingChange *p = &s->pend[j];
                        SyncFolder *target;
                        MimeHeaders h = {};
                        StoreMessage m = {};
                        int r;

                        if (p->kind != STORE_PENDING_MOVE || p->folder_id != s->f->id || p->uid != src[i] ||
                            !p->has_cid)
                                continue;
                        target = folder_by_id(s, p->target_folder_id);
                        if (!target || (target->uidvalidity && code->uidvalidity != target->uidvalidity))
                                break;
                        m = (StoreMessage){.folder_id = target->id,
                                           .uid = dst[i],
                                           .internal_date = (int64_t)time(NULL),
                                           .has_body = true,
                                           .cid = p->cid};
                        r = read_headers(s->store, &p->cid, &h, &m.size);
                        if (r >= 0)
                                r = mime_headers_envelope(&h, &m.env);
                        mime_headers_clear(&h);
                        if (r >= 0)
                                r = store_message_insert(s->store, &m, STORE_BULK, moved_cb, s);
                        store_message_clear(&m);
                        if (r >= 0)
                                s->n_store++;
                        else
                                log_acct_debug(s->a->name, "imap: %s: moved UID %" PRIu32 " not recorded: %s",
                                               s->f->name, src[i], strerror(-r));
                        break;
                }
}

/* A push command is answered. */
void imap_sync_push_done(ImapSync *s, Cmd *c, int r, const ImapStatusResp *st) {
        if (r == 0 && st->code.kind == IMAP_CODE_COPYUID) /* COPY's COPYUID is in its tagged OK */
                imap_sync_record_moved(s, &st->code);
        if (r == 0 && c->then) {
                /* The next of a chain ("a\nb"): it takes the pending ids and the rest. */
                char *nl = strchr(c->then, '\n');
                int rr;

                if (nl)
                        *nl = '\0';
                rr = push_cmd_full(s, c->pending_ids, c->n_pending_ids, nl ? nl + 1 : NULL, "%s", c->then);
                if (rr < 0)
                        imap_sync_cmd_send_failed(s, rr);
        } else if (r == 0 && st->code.kind == IMAP_CODE_MODIFIED) {
                /* Changed on the server meanwhile: the next sync sees it, merges and pushes again. */
                log_acct_info(s->a->name, "imap: %s: flags changed on the server meanwhile; merged next sync",
                              s->f->name);
        } else if (r == 0 && c->n_pending_ids > 0) {
                int rr = store_pending_remove(s->store, c->pending_ids, c->n_pending_ids, pending_removed_cb, s);
                if (rr < 0)
                        imap_sync_store_failed(s, rr, "removing pushed changes");
                else {
                        s->n_store++;
                        s->res.n_pushed += c->n_pending_ids;
                }
        } else if (r > 0)
                log_acct_warning(s->a->name, "imap: %s: a local change was refused: %s", s->f->name,
                                 st->text.s ? st->text.s : "");
}
