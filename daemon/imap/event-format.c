/*
 * One-line text forms of IMAP parser events, for the parser's test tables, its
 * fuzzer (which compares event streams) and debug logs. The form is stable
 * and unambiguous: strings are always quoted and escaped, NIL is bare.
 * Pure; the returned string belongs to the caller.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/imap/parser.h"

static const char *const event_names[_IMAP_EVENT_MAX] = {
        [IMAP_EVENT_STATUS] = "STATUS",
        [IMAP_EVENT_CONTINUATION] = "CONTINUATION",
        [IMAP_EVENT_CAPABILITY] = "CAPABILITY",
        [IMAP_EVENT_ENABLED] = "ENABLED",
        [IMAP_EVENT_FLAGS] = "FLAGS",
        [IMAP_EVENT_LIST] = "LIST",
        [IMAP_EVENT_MAILBOX_STATUS] = "MAILBOX_STATUS",
        [IMAP_EVENT_SEARCH] = "SEARCH",
        [IMAP_EVENT_ESEARCH] = "ESEARCH",
        [IMAP_EVENT_EXISTS] = "EXISTS",
        [IMAP_EVENT_RECENT] = "RECENT",
        [IMAP_EVENT_EXPUNGE] = "EXPUNGE",
        [IMAP_EVENT_VANISHED] = "VANISHED",
        [IMAP_EVENT_FETCH] = "FETCH",
        [IMAP_EVENT_BODY_START] = "BODY_START",
        [IMAP_EVENT_BODY_DATA] = "BODY_DATA",
        [IMAP_EVENT_BODY_END] = "BODY_END",
        [IMAP_EVENT_QUOTA] = "QUOTA",
        [IMAP_EVENT_QUOTAROOT] = "QUOTAROOT",
        [IMAP_EVENT_ID] = "ID",
        [IMAP_EVENT_NAMESPACE] = "NAMESPACE",
        [IMAP_EVENT_OTHER] = "OTHER",
};

/* See parser.h. */
const char *imap_event_kind_to_string(ImapEventKind kind) {
        return (unsigned)kind < _IMAP_EVENT_MAX ? event_names[kind] : "?";
}

static void put_bytes(FILE *f, const char *s, size_t n) {
        fputc('"', f);
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];

                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch < 0x20 || ch >= 0x7f)
                        fprintf(f, "\\x%02x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

static void put_str(FILE *f, ImapStr s) {
        if (!s.s)
                fputs("NIL", f);
        else
                put_bytes(f, s.s, s.len);
}

/* Atoms (flags, capabilities) go out bare. */
static void put_atoms(FILE *f, ImapStrList l) {
        fputc('(', f);
        for (size_t i = 0; i < l.n; i++)
                fprintf(f, "%s%s", i ? " " : "", l.v[i].s ? l.v[i].s : "NIL");
        fputc(')', f);
}

static void put_strs(FILE *f, ImapStrList l) {
        fputc('(', f);
        for (size_t i = 0; i < l.n; i++) {
                if (i)
                        fputc(' ', f);
                put_str(f, l.v[i]);
        }
        fputc(')', f);
}

static void put_seq(FILE *f, uint32_t v) {
        if (v == IMAP_SEQ_STAR)
                fputc('*', f);
        else
                fprintf(f, "%" PRIu32, v);
}

static void put_set(FILE *f, ImapSeqSet s) {
        for (size_t i = 0; i < s.n; i++) {
                if (i)
                        fputc(',', f);
                put_seq(f, s.v[i].first);
                if (s.v[i].last != s.v[i].first) {
                        fputc(':', f);
                        put_seq(f, s.v[i].last);
                }
        }
}

static void put_params(FILE *f, ImapParams p) {
        fputc('(', f);
        for (size_t i = 0; i < p.n; i++) {
                if (i)
                        fputc(' ', f);
                put_str(f, p.v[i].name);
                fputc(' ', f);
                put_str(f, p.v[i].value);
        }
        fputc(')', f);
}

static void put_code(FILE *f, const ImapRespCode *c) {
        if (c->kind == IMAP_CODE_NONE)
                return;
        fprintf(f, " [%s", c->name.s);
        switch (c->kind) {
        case IMAP_CODE_BADCHARSET:
        case IMAP_CODE_CAPABILITY:
        case IMAP_CODE_PERMANENTFLAGS:
                fputc(' ', f);
                put_atoms(f, c->list);
                break;
        case IMAP_CODE_UIDNEXT:
        case IMAP_CODE_UIDVALIDITY:
        case IMAP_CODE_UNSEEN:
        case IMAP_CODE_HIGHESTMODSEQ:
                fprintf(f, " %" PRIu64, c->number);
                break;
        case IMAP_CODE_MODIFIED:
                fputc(' ', f);
                put_set(f, c->set);
                break;
        case IMAP_CODE_APPENDUID:
                fprintf(f, " %" PRIu32 " ", c->uidvalidity);
                put_set(f, c->set);
                break;
        case IMAP_CODE_COPYUID:
                fprintf(f, " %" PRIu32 " ", c->uidvalidity);
                put_set(f, c->src);
                fputc(' ', f);
                put_set(f, c->set);
                break;
        case IMAP_CODE_OTHER:
                if (c->text.s) {
                        fputc(' ', f);
                        put_str(f, c->text);
                }
                break;
        default:
                break;
        }
        fputc(']', f);
}

static void put_addresses(FILE *f, ImapAddressList l) {
        static const char *const kinds[] = {"", "group:", "end-group:"};

        if (!l.v) {
                fputs("NIL", f);
                return;
        }
        fputc('(', f);
        for (size_t i = 0; i < l.n; i++) {
                fprintf(f, "%s%s(", i ? " " : "", kinds[l.v[i].kind]);
                put_str(f, l.v[i].name);
                fputc(' ', f);
                put_str(f, l.v[i].adl);
                fputc(' ', f);
                put_str(f, l.v[i].mailbox);
                fputc(' ', f);
                put_str(f, l.v[i].host);
                fputc(')', f);
        }
        fputc(')', f);
}

static void put_envelope(FILE *f, const ImapEnvelope *e) {
        const ImapAddressList *lists[] = {&e->from, &e->sender, &e->reply_to, &e->to, &e->cc, &e->bcc};

        fputc('(', f);
        put_str(f, e->date);
        fputc(' ', f);
        put_str(f, e->subject);
        for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
                fputc(' ', f);
                put_addresses(f, *lists[i]);
        }
        fputc(' ', f);
        put_str(f, e->in_reply_to);
        fputc(' ', f);
        put_str(f, e->message_id);
        fputc(')', f);
}

static void put_body(FILE *f, const ImapBodyPart *b) {
        fputc('(', f);
        if (b->multipart) {
                for (size_t i = 0; i < b->n_parts; i++)
                        put_body(f, &b->parts[i]);
                fputc(' ', f);
                put_str(f, b->subtype);
        } else {
                put_str(f, b->type);
                fputc(' ', f);
                put_str(f, b->subtype);
                fputc(' ', f);
                put_params(f, b->params);
                fputc(' ', f);
                put_str(f, b->id);
                fputc(' ', f);
                put_str(f, b->description);
                fputc(' ', f);
                put_str(f, b->encoding);
                fprintf(f, " %" PRIu64, b->octets);
                if (b->envelope) {
                        fputs(" env=", f);
                        put_envelope(f, b->envelope);
                }
                if (b->body) {
                        fputs(" body=", f);
                        put_body(f, b->body);
                }
                if (b->lines)
                        fprintf(f, " lines=%" PRIu64, b->lines);
        }
        if (b->has_ext) {
                fputs(" ext:", f);
                if (b->multipart)
                        put_params(f, b->params);
                else
                        put_str(f, b->md5);
                if (b->disposition.s) {
                        fputs(" dsp=", f);
                        put_str(f, b->disposition);
                        put_params(f, b->disposition_params);
                }
                if (b->language.n) {
                        fputs(" lang=", f);
                        put_strs(f, b->language);
                }
                if (b->location.s) {
                        fputs(" loc=", f);
                        put_str(f, b->location);
                }
        }
        fputc(')', f);
}

static void put_body_name(FILE *f, ImapBodyItem item, ImapStr section, bool has_origin, uint32_t origin) {
        static const char *const names[] = {"BODY", "BINARY", "BINARY.SIZE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"};

        fputs(names[item], f);
        if (item <= IMAP_BODY_BINARY_SIZE)
                fprintf(f, "[%s]", section.s ? section.s : "");
        if (has_origin)
                fprintf(f, "<%" PRIu32 ">", origin);
}

static void put_fetch(FILE *f, const ImapFetch *x) {
        fprintf(f, " %" PRIu32, x->seq);
        if (x->have & IMAP_FETCH_UID)
                fprintf(f, " uid=%" PRIu32, x->uid);
        if (x->have & IMAP_FETCH_MODSEQ)
                fprintf(f, " modseq=%" PRIu64, x->modseq);
        if (x->have & IMAP_FETCH_FLAGS) {
                fputs(" flags=", f);
                put_atoms(f, x->flags);
        }
        if (x->have & IMAP_FETCH_RFC822_SIZE)
                fprintf(f, " size=%" PRIu64, x->rfc822_size);
        if (x->have & IMAP_FETCH_INTERNALDATE) {
                fputs(" date=", f);
                put_str(f, x->internaldate);
                fprintf(f, "/%" PRId64, x->internaldate_unix);
        }
        if (x->envelope) {
                fputs(" envelope=", f);
                put_envelope(f, x->envelope);
        }
        if (x->body) {
                fputs(" body=", f);
                put_body(f, x->body);
        }
        for (size_t i = 0; i < x->n_bodies; i++) {
                const ImapFetchBody *b = &x->bodies[i];

                fputc(' ', f);
                put_body_name(f, b->item, b->section, b->has_origin, b->origin);
                if (b->nil)
                        fputs("=NIL", f);
                else if (b->item == IMAP_BODY_BINARY_SIZE)
                        fprintf(f, "=%" PRIu64, b->size);
                else
                        fprintf(f, "=%" PRIu64 "%s", b->size, b->streamed ? "/streamed" : "/inline");
        }
        if (x->unknown.n) {
                fputs(" unknown=", f);
                put_atoms(f, x->unknown);
        }
}

static void put_ns(FILE *f, ImapNamespaceList l) {
        if (!l.n) {
                fputs(" NIL", f);
                return;
        }
        fputs(" (", f);
        for (size_t i = 0; i < l.n; i++) {
                fputc('(', f);
                put_str(f, l.v[i].prefix);
                fputc(' ', f);
                if (l.v[i].delim)
                        put_bytes(f, &l.v[i].delim, 1);
                else
                        fputs("NIL", f);
                fputc(')', f);
        }
        fputc(')', f);
}

static void put_event(FILE *f, const ImapEvent *ev) {
        fputs(imap_event_kind_to_string(ev->kind), f);
        switch (ev->kind) {
        case IMAP_EVENT_STATUS:
        case IMAP_EVENT_CONTINUATION: {
                static const char *const st[] = {"OK", "NO", "BAD", "PREAUTH", "BYE"};

                if (ev->kind == IMAP_EVENT_STATUS)
                        fprintf(f, " %s %s", ev->tag.s ? ev->tag.s : "*", st[ev->status.status]);
                put_code(f, &ev->status.code);
                fputc(' ', f);
                put_str(f, ev->status.text);
                break;
        }
        case IMAP_EVENT_CAPABILITY:
        case IMAP_EVENT_ENABLED:
                fputc(' ', f);
                put_atoms(f, ev->capabilities);
                break;
        case IMAP_EVENT_FLAGS:
                fputc(' ', f);
                put_atoms(f, ev->flags);
                break;
        case IMAP_EVENT_LIST:
                fprintf(f, "%s ", ev->list.lsub ? " LSUB" : "");
                put_atoms(f, ev->list.attrs);
                fprintf(f, " mask=%#x ", ev->list.attr_mask);
                if (ev->list.delim) {
                        put_bytes(f, &ev->list.delim, 1);
                        fputc(' ', f);
                } else {
                        fputs("NIL ", f);
                }
                put_str(f, ev->list.mailbox);
                if (ev->list.childinfo.n) {
                        fputs(" childinfo=", f);
                        put_strs(f, ev->list.childinfo);
                }
                if (ev->list.oldname.s) {
                        fputs(" oldname=", f);
                        put_str(f, ev->list.oldname);
                }
                break;
        case IMAP_EVENT_MAILBOX_STATUS: {
                const ImapMailboxStatus *m = &ev->mailbox_status;

                fputc(' ', f);
                put_str(f, m->mailbox);
                if (m->have & IMAP_MS_MESSAGES)
                        fprintf(f, " messages=%" PRIu32, m->messages);
                if (m->have & IMAP_MS_RECENT)
                        fprintf(f, " recent=%" PRIu32, m->recent);
                if (m->have & IMAP_MS_UIDNEXT)
                        fprintf(f, " uidnext=%" PRIu32, m->uidnext);
                if (m->have & IMAP_MS_UIDVALIDITY)
                        fprintf(f, " uidvalidity=%" PRIu32, m->uidvalidity);
                if (m->have & IMAP_MS_UNSEEN)
                        fprintf(f, " unseen=%" PRIu32, m->unseen);
                if (m->have & IMAP_MS_DELETED)
                        fprintf(f, " deleted=%" PRIu32, m->deleted);
                if (m->have & IMAP_MS_HIGHESTMODSEQ)
                        fprintf(f, " highestmodseq=%" PRIu64, m->highestmodseq);
                if (m->have & IMAP_MS_SIZE)
                        fprintf(f, " size=%" PRIu64, m->size);
                break;
        }
        case IMAP_EVENT_SEARCH:
                fputs(" (", f);
                for (size_t i = 0; i < ev->search.n; i++)
                        fprintf(f, "%s%" PRIu32, i ? " " : "", ev->search.v[i]);
                fputc(')', f);
                if (ev->search.has_modseq)
                        fprintf(f, " modseq=%" PRIu64, ev->search.modseq);
                break;
        case IMAP_EVENT_ESEARCH: {
                const ImapEsearch *e = &ev->esearch;

                fputs(" tag=", f);
                put_str(f, e->tag);
                if (e->uid)
                        fputs(" uid", f);
                if (e->have & IMAP_ES_MIN)
                        fprintf(f, " min=%" PRIu32, e->min);
                if (e->have & IMAP_ES_MAX)
                        fprintf(f, " max=%" PRIu32, e->max);
                if (e->have & IMAP_ES_COUNT)
                        fprintf(f, " count=%" PRIu32, e->count);
                if (e->have & IMAP_ES_ALL) {
                        fputs(" all=", f);
                        put_set(f, e->all);
                }
                if (e->have & IMAP_ES_MODSEQ)
                        fprintf(f, " modseq=%" PRIu64, e->modseq);
                break;
        }
        case IMAP_EVENT_EXISTS:
        case IMAP_EVENT_RECENT:
        case IMAP_EVENT_EXPUNGE:
                fprintf(f, " %" PRIu32, ev->number);
                break;
        case IMAP_EVENT_VANISHED:
                fputs(ev->vanished.earlier ? " earlier " : " ", f);
                put_set(f, ev->vanished.uids);
                break;
        case IMAP_EVENT_FETCH:
                put_fetch(f, &ev->fetch);
                break;
        case IMAP_EVENT_BODY_START:
        case IMAP_EVENT_BODY_DATA:
        case IMAP_EVENT_BODY_END:
                fprintf(f, " %" PRIu32 " uid=%" PRIu32 " ", ev->body.seq, ev->body.uid);
                put_body_name(f, ev->body.item, ev->body.section, ev->body.has_origin, ev->body.origin);
                fprintf(f, " size=%" PRIu64, ev->body.size);
                if (ev->kind == IMAP_EVENT_BODY_DATA) {
                        fputc(' ', f);
                        put_bytes(f, (const char *)ev->body.data, ev->body.len);
                }
                break;
        case IMAP_EVENT_QUOTA:
                fputc(' ', f);
                put_str(f, ev->quota.root);
                fputs(" (", f);
                for (size_t i = 0; i < ev->quota.n; i++)
                        fprintf(f, "%s%s %" PRIu64 " %" PRIu64, i ? " " : "", ev->quota.v[i].name.s,
                                ev->quota.v[i].usage, ev->quota.v[i].limit);
                fputc(')', f);
                break;
        case IMAP_EVENT_QUOTAROOT:
                fputc(' ', f);
                put_str(f, ev->quotaroot.mailbox);
                fputc(' ', f);
                put_strs(f, ev->quotaroot.roots);
                break;
        case IMAP_EVENT_ID:
                if (ev->id.nil)
                        fputs(" NIL", f);
                else {
                        fputc(' ', f);
                        put_params(f, ev->id.params);
                }
                break;
        case IMAP_EVENT_NAMESPACE:
                put_ns(f, ev->namespace_.personal);
                put_ns(f, ev->namespace_.other);
                put_ns(f, ev->namespace_.shared);
                break;
        case IMAP_EVENT_OTHER:
                if (ev->other.has_number)
                        fprintf(f, " %" PRIu32, ev->other.number);
                fprintf(f, " %s ", ev->other.name.s);
                put_str(f, ev->other.rest);
                break;
        default:
                break;
        }
}

/* See parser.h. */
char *imap_event_to_string(const ImapEvent *ev) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        if (!f)
                return NULL;
        put_event(f, ev);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}
