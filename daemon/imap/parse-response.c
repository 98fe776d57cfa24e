/*
 * IMAP response grammar (RFC 3501, RFC 9051 and the extensions a sync client
 * meets): a recursive descent over one complete response that parser.c has
 * buffered, over the tokens of parse-token.c. Everything it builds goes into
 * the response's arena. FETCH items, ENVELOPE and BODYSTRUCTURE are in
 * parse-fetch.c.
 *
 * Where servers are known to stretch the grammar (a missing text after a
 * status, trailing spaces after SEARCH or CAPABILITY, empty lists) it accepts
 * them; where the grammar is unambiguous it is strict.
 */
#include <string.h>

#include "daemon/imap/parser-internal.h"

/* The rest of the response as text (maybe empty). */
static ImapStr cur_rest(Cursor *c) {
        size_t s = c->pos;

        if (c->err)
                return (ImapStr){0};
        c->pos = c->end;
        return cur_strdup(c, c->buf + s, c->end - s);
}

/* SP-separated atoms up to the end or "]"; trailing spaces tolerated. */
static ImapStrList cur_atom_list(Cursor *c) {
        ImapStr *v = NULL, *a;
        size_t n = 0, cap = 0;

        while (!c->err && cur_eat(c, ' ')) {
                if (cur_at_end(c) || cur_peek(c) == ']' || cur_peek(c) == ' ')
                        continue;
                a = cur_push(c, &v, &n, &cap, sizeof *v);
                if (a)
                        *a = cur_atom(c);
        }
        return (ImapStrList){v, n};
}

static const struct {
        const char *name;
        ImapCodeKind kind;
} code_names[] = {
        {"ALERT", IMAP_CODE_ALERT},
        {"BADCHARSET", IMAP_CODE_BADCHARSET},
        {"CAPABILITY", IMAP_CODE_CAPABILITY},
        {"PARSE", IMAP_CODE_PARSE},
        {"PERMANENTFLAGS", IMAP_CODE_PERMANENTFLAGS},
        {"READ-ONLY", IMAP_CODE_READ_ONLY},
        {"READ-WRITE", IMAP_CODE_READ_WRITE},
        {"TRYCREATE", IMAP_CODE_TRYCREATE},
        {"UIDNEXT", IMAP_CODE_UIDNEXT},
        {"UIDVALIDITY", IMAP_CODE_UIDVALIDITY},
        {"UNSEEN", IMAP_CODE_UNSEEN},
        {"HIGHESTMODSEQ", IMAP_CODE_HIGHESTMODSEQ},
        {"NOMODSEQ", IMAP_CODE_NOMODSEQ},
        {"MODIFIED", IMAP_CODE_MODIFIED},
        {"APPENDUID", IMAP_CODE_APPENDUID},
        {"COPYUID", IMAP_CODE_COPYUID},
        {"CLOSED", IMAP_CODE_CLOSED},
        {"UIDNOTSTICKY", IMAP_CODE_UIDNOTSTICKY},
        {"OVERQUOTA", IMAP_CODE_OVERQUOTA},
};

/* "[" resp-text-code "]", the "[" already consumed. */
static void cur_resp_code(Cursor *c, ImapRespCode *rc) {
        size_t s;

        rc->name = cur_atom(c);
        rc->kind = IMAP_CODE_OTHER;
        for (size_t i = 0; i < ARRAY_SIZE(code_names); i++)
                if (cur_ieq(rc->name, code_names[i].name))
                        rc->kind = code_names[i].kind;
        /* Codes with arguments parse them; the bare ones (ALERT, PARSE, READ-ONLY...) go straight to "]". */
        switch (rc->kind) {
        case IMAP_CODE_BADCHARSET:
                /* RFC 3501 makes the charset list optional. */
                if (cur_eat(c, ' ')) {
                        ImapStr *v = NULL, *a;
                        size_t n = 0, cap = 0;

                        cur_expect(c, '(');
                        do {
                                a = cur_push(c, &v, &n, &cap, sizeof *v);
                                if (a)
                                        *a = cur_astring(c);
                        } while (!c->err && cur_eat(c, ' '));
                        cur_expect(c, ')');
                        rc->list = (ImapStrList){v, n};
                }
                break;
        case IMAP_CODE_CAPABILITY:
                rc->list = cur_atom_list(c);
                break;
        case IMAP_CODE_PERMANENTFLAGS:
                cur_sp(c);
                rc->list = cur_flag_list(c);
                break;
        case IMAP_CODE_UIDNEXT:
        case IMAP_CODE_UIDVALIDITY:
        case IMAP_CODE_UNSEEN:
                cur_sp(c);
                rc->number = cur_nz_number(c);
                break;
        case IMAP_CODE_HIGHESTMODSEQ:
                cur_sp(c);
                rc->number = cur_number64(c);
                break;
        case IMAP_CODE_MODIFIED:
                cur_sp(c);
                rc->set = cur_seqset(c);
                break;
        case IMAP_CODE_APPENDUID:
        case IMAP_CODE_COPYUID:
                /* UIDPLUS: APPENDUID takes a set too (MULTIAPPEND); COPYUID's two sets pair up in order. */
                cur_sp(c);
                rc->uidvalidity = cur_nz_number(c);
                cur_sp(c);
                rc->set = cur_seqset(c);
                if (rc->kind == IMAP_CODE_COPYUID) {
                        rc->src = rc->set;
                        cur_sp(c);
                        rc->set = cur_seqset(c);
                }
                break;
        case IMAP_CODE_OTHER:
                /* Unknown codes keep their arguments as text: resp-text-code's catch-all is atom [SP 1*<any TEXT-CHAR
                 * except "]">], so nothing inside needs parsing to find the end. */
                if (cur_eat(c, ' ')) {
                        s = c->pos;
                        while (cur_peek(c) >= 0 && cur_peek(c) != ']')
                                c->pos++;
                        rc->text = cur_strdup(c, c->buf + s, c->pos - s);
                }
                break;
        default:
                break;
        }
        cur_expect(c, ']');
}

/* resp-text: ["[" resp-text-code "]" [SP]] text; the text may be empty. */
static void cur_resp_text(Cursor *c, ImapStatusResp *st) {
        if (cur_eat(c, '[')) {
                cur_resp_code(c, &st->code);
                cur_eat(c, ' ');
        }
        st->text = cur_rest(c);
}

/* "OK" / "NO" / ... to a status kind; false when it is none. */
static bool status_kind(ImapStr a, ImapStatusKind *kp) {
        static const char *const names[] = {"OK", "NO", "BAD", "PREAUTH", "BYE"};

        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                if (cur_ieq(a, names[i])) {
                        *kp = (ImapStatusKind)i;
                        return true;
                }
        return false;
}

static const struct {
        const char *name;
        unsigned bit;
} list_attrs[] = {
        {"\\Noinferiors", IMAP_LIST_NOINFERIORS},
        {"\\Noselect", IMAP_LIST_NOSELECT},
        {"\\Marked", IMAP_LIST_MARKED},
        {"\\Unmarked", IMAP_LIST_UNMARKED},
        {"\\NonExistent", IMAP_LIST_NONEXISTENT},
        {"\\Subscribed", IMAP_LIST_SUBSCRIBED},
        {"\\Remote", IMAP_LIST_REMOTE},
        {"\\HasChildren", IMAP_LIST_HASCHILDREN},
        {"\\HasNoChildren", IMAP_LIST_HASNOCHILDREN},
        {"\\All", IMAP_LIST_ALL},
        {"\\Archive", IMAP_LIST_ARCHIVE},
        {"\\Drafts", IMAP_LIST_DRAFTS},
        {"\\Flagged", IMAP_LIST_FLAGGED},
        {"\\Junk", IMAP_LIST_JUNK},
        {"\\Sent", IMAP_LIST_SENT},
        {"\\Trash", IMAP_LIST_TRASH},
        {"\\Important", IMAP_LIST_IMPORTANT},
};

/* A single-character delimiter string or NIL. */
static char cur_delim(Cursor *c) {
        size_t s = c->pos;
        ImapStr d = cur_string(c, true);

        if (d.s && d.len != 1) {
                c->pos = s;
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "hierarchy delimiter is not one character");
        }
        return d.s ? d.s[0] : 0;
}

/* LIST/LSUB after the name: attributes, delimiter, mailbox, LIST-EXTENDED data. */
static void cur_list(Cursor *c, ImapList *l) {
        cur_sp(c);
        l->attrs = cur_flag_list(c);
        /* The sync engine asks for roles and selectability; a mask saves it comparing strings. */
        for (size_t i = 0; i < l->attrs.n; i++)
                for (size_t j = 0; j < ARRAY_SIZE(list_attrs); j++)
                        if (cur_ieq(l->attrs.v[i], list_attrs[j].name))
                                l->attr_mask |= list_attrs[j].bit;
        cur_sp(c);
        l->delim = cur_delim(c);
        cur_sp(c);
        l->mailbox = cur_mailbox(c);
        /* mbox-list-extended: tagged items whose values we skip unless we know them. */
        if (!cur_eat(c, ' '))
                return;
        cur_expect(c, '(');
        if (cur_eat(c, ')'))
                return;
        do {
                ImapStr tag = cur_astring(c);

                cur_sp(c);
                if (cur_ieq(tag, "CHILDINFO")) {
                        ImapStr *v = NULL, *a;
                        size_t n = 0, cap = 0;

                        cur_expect(c, '(');
                        do {
                                a = cur_push(c, &v, &n, &cap, sizeof *v);
                                if (a)
                                        *a = cur_astring(c);
                        } while (!c->err && cur_eat(c, ' '));
                        cur_expect(c, ')');
                        l->childinfo = (ImapStrList){v, n};
                } else if (cur_ieq(tag, "OLDNAME")) {
                        cur_expect(c, '(');
                        l->oldname = cur_mailbox(c);
                        cur_expect(c, ')');
                } else {
                        cur_skip_value(c);
                }
        } while (!c->err && cur_eat(c, ' '));
        cur_expect(c, ')');
}

/* STATUS mailbox (name value ...). */
static void cur_mailbox_status(Cursor *c, ImapMailboxStatus *ms) {
        static const struct {
                const char *name;
                unsigned bit;
        } items[] = {
                {"MESSAGES", IMAP_MS_MESSAGES}, {"RECENT", IMAP_MS_RECENT},
                {"UIDNEXT", IMAP_MS_UIDNEXT},   {"UIDVALIDITY", IMAP_MS_UIDVALIDITY},
                {"UNSEEN", IMAP_MS_UNSEEN},     {"HIGHESTMODSEQ", IMAP_MS_HIGHESTMODSEQ},
                {"SIZE", IMAP_MS_SIZE},         {"DELETED", IMAP_MS_DELETED},
        };

        cur_sp(c);
        ms->mailbox = cur_mailbox(c);
        cur_sp(c);
        cur_expect(c, '(');
        while (!c->err && !cur_eat(c, ')')) {
                ImapStr name = cur_atom(c);
                unsigned bit = 0;
                uint64_t v;

                cur_sp(c);
                for (size_t i = 0; i < ARRAY_SIZE(items); i++)
                        if (cur_ieq(name, items[i].name))
                                bit = items[i].bit;
                /* Unknown items (APPENDLIMIT, MAILBOXID...) carry one value each; skip it. */
                if (!bit) {
                        cur_skip_value(c);
                } else if (bit == IMAP_MS_HIGHESTMODSEQ || bit == IMAP_MS_SIZE) {
                        v = cur_number64(c);
                        *(bit == IMAP_MS_SIZE ? &ms->size : &ms->highestmodseq) = v;
                } else {
                        uint32_t n = cur_number(c);

                        switch (bit) {
                        case IMAP_MS_MESSAGES:
                                ms->messages = n;
                                break;
                        case IMAP_MS_RECENT:
                                ms->recent = n;
                                break;
                        case IMAP_MS_UIDNEXT:
                                ms->uidnext = n;
                                break;
                        case IMAP_MS_UIDVALIDITY:
                                ms->uidvalidity = n;
                                break;
                        case IMAP_MS_UNSEEN:
                                ms->unseen = n;
                                break;
                        default:
                                ms->deleted = n;
                                break;
                        }
                }
                ms->have |= bit;
                if (cur_peek(c) != ')')
                        cur_sp(c);
        }
}

/* SEARCH [numbers] [(MODSEQ n)]; trailing spaces tolerated. */
static void cur_search(Cursor *c, ImapSearch *s) {
        uint32_t *v = NULL, *x;
        size_t n = 0, cap = 0;

        /* Some servers end SEARCH with a space; CONDSTORE adds "(MODSEQ n)" last. */
        while (!c->err && cur_eat(c, ' ')) {
                if (cur_at_end(c) || cur_peek(c) == ' ')
                        continue;
                if (cur_eat(c, '(')) {
                        ImapStr m = cur_atom(c);

                        if (!c->err && !cur_ieq(m, "MODSEQ"))
                                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected MODSEQ");
                        cur_sp(c);
                        s->modseq = cur_number64(c);
                        s->has_modseq = true;
                        cur_expect(c, ')');
                        continue;
                }
                x = cur_push(c, &v, &n, &cap, sizeof *v);
                if (x)
                        *x = cur_nz_number(c);
        }
        s->v = v;
        s->n = n;
}

/* ESEARCH [(TAG "t")] [UID] *(SP name SP value). */
static void cur_esearch(Cursor *c, ImapEsearch *e) {
        if (!cur_eat(c, ' '))
                return;
        if (cur_eat(c, '(')) {
                if (!cur_ieq(cur_atom(c), "TAG"))
                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected TAG");
                cur_sp(c);
                e->tag = cur_astring(c);
                cur_expect(c, ')');
                if (!cur_eat(c, ' '))
                        return;
        }
        do {
                ImapStr name = cur_atom(c);

                if (cur_ieq(name, "UID")) {
                        e->uid = true;
                        continue;
                }
                cur_sp(c);
                if (cur_ieq(name, "MIN")) {
                        e->min = cur_nz_number(c);
                        e->have |= IMAP_ES_MIN;
                } else if (cur_ieq(name, "MAX")) {
                        e->max = cur_nz_number(c);
                        e->have |= IMAP_ES_MAX;
                } else if (cur_ieq(name, "COUNT")) {
                        e->count = cur_number(c);
                        e->have |= IMAP_ES_COUNT;
                } else if (cur_ieq(name, "ALL")) {
                        e->all = cur_seqset(c);
                        e->have |= IMAP_ES_ALL;
                } else if (cur_ieq(name, "MODSEQ")) {
                        e->modseq = cur_number64(c);
                        e->have |= IMAP_ES_MODSEQ;
                } else {
                        /* search-return-data's extension form is a name and one tagged-ext-val (PARTIAL...). */
                        cur_skip_value(c);
                }
        } while (!c->err && cur_eat(c, ' '));
}

/* QUOTA root (resource usage limit ...). */
static void cur_quota(Cursor *c, ImapQuota *q) {
        ImapQuotaResource *v = NULL, *r;
        size_t n = 0, cap = 0;

        cur_sp(c);
        q->root = cur_astring(c);
        cur_sp(c);
        cur_expect(c, '(');
        if (!cur_eat(c, ')')) {
                do {
                        r = cur_push(c, &v, &n, &cap, sizeof *v);
                        if (!r)
                                break;
                        r->name = cur_atom(c);
                        cur_sp(c);
                        r->usage = cur_number64(c);
                        cur_sp(c);
                        r->limit = cur_number64(c);
                } while (!c->err && cur_eat(c, ' '));
                cur_expect(c, ')');
        }
        q->v = v;
        q->n = n;
}

/* "(" string SP nstring *(SP string SP nstring) ")", or NIL when nil_ok; empty "()" tolerated. */
ImapParams cur_params(Cursor *c, bool nil_ok, bool *nilp) {
        ImapParam *v = NULL, *p;
        size_t n = 0, cap = 0;

        if (nil_ok && cur_is_nil(c)) {
                if (nilp)
                        *nilp = true;
                return (ImapParams){0};
        }
        cur_expect(c, '(');
        if (!cur_eat(c, ')')) {
                do {
                        p = cur_push(c, &v, &n, &cap, sizeof *v);
                        if (!p)
                                break;
                        p->name = cur_string(c, false);
                        cur_sp(c);
                        p->value = cur_string(c, true);
                } while (!c->err && cur_eat(c, ' '));
                cur_expect(c, ')');
        }
        return (ImapParams){v, n};
}

/* One namespace list: NIL or "(" 1*("(" prefix SP delim *(extension) ")") ")". */
static ImapNamespaceList cur_namespace_list(Cursor *c) {
        ImapNamespaceDesc *v = NULL, *d;
        size_t n = 0, cap = 0;

        if (cur_is_nil(c))
                return (ImapNamespaceList){0};
        cur_expect(c, '(');
        do {
                d = cur_push(c, &v, &n, &cap, sizeof *v);
                if (!d)
                        break;
                cur_expect(c, '(');
                d->prefix = cur_string(c, false);
                cur_sp(c);
                d->delim = cur_delim(c);
                while (!c->err && cur_eat(c, ' '))
                        cur_skip_value(c);
                cur_expect(c, ')');
                cur_eat(c, ' ');
        } while (!c->err && cur_peek(c) == '(');
        cur_expect(c, ')');
        return (ImapNamespaceList){v, n};
}

/* An untagged response after "* " whose first token is a number. */
static void cur_numbered(Cursor *c, ImapEvent *ev) {
        uint32_t n = cur_number(c);
        ImapStr name;

        cur_sp(c);
        name = cur_atom(c);
        if (c->err)
                return;
        if (cur_ieq(name, "EXISTS") || cur_ieq(name, "RECENT") || cur_ieq(name, "EXPUNGE")) {
                ev->kind = cur_ieq(name, "EXISTS")   ? IMAP_EVENT_EXISTS
                           : cur_ieq(name, "RECENT") ? IMAP_EVENT_RECENT
                                                     : IMAP_EVENT_EXPUNGE;
                /* "* 0 EXISTS" is an empty mailbox; 0 is no message number for EXPUNGE or FETCH. */
                if (n == 0 && ev->kind == IMAP_EVENT_EXPUNGE)
                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "message number 0");
                ev->number = n;
        } else if (cur_ieq(name, "FETCH")) {
                if (n == 0)
                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "message number 0");
                ev->kind = IMAP_EVENT_FETCH;
                ev->fetch.seq = n;
                cur_sp(c);
                imap_fetch_parse(c, &ev->fetch);
        } else {
                ev->kind = IMAP_EVENT_OTHER;
                ev->other = (ImapOther){.name = name, .has_number = true, .number = n};
                /* RFC 3501 7: a client ignores responses it does not know; hand them up raw, literals and all. */
                if (cur_eat(c, ' '))
                        ev->other.rest = cur_rest(c);
                c->next_lit = c->n_lits;
        }
}

/* An untagged response after "* ". */
static void cur_untagged(Cursor *c, ImapEvent *ev) {
        ImapStr name;
        int ch = cur_peek(c);

        if (ch >= '0' && ch <= '9') {
                cur_numbered(c, ev);
                return;
        }
        name = cur_atom(c);
        if (c->err)
                return;
        if (status_kind(name, &ev->status.status)) {
                ev->kind = IMAP_EVENT_STATUS;
                if (cur_eat(c, ' '))
                        cur_resp_text(c, &ev->status);
                else
                        ev->status.text = cur_rest(c);
        } else if (cur_ieq(name, "CAPABILITY") || cur_ieq(name, "ENABLED")) {
                ev->kind = cur_ieq(name, "ENABLED") ? IMAP_EVENT_ENABLED : IMAP_EVENT_CAPABILITY;
                ev->capabilities = cur_atom_list(c);
        } else if (cur_ieq(name, "FLAGS")) {
                ev->kind = IMAP_EVENT_FLAGS;
                cur_sp(c);
                ev->flags = cur_flag_list(c);
        } else if (cur_ieq(name, "LIST") || cur_ieq(name, "LSUB")) {
                ev->kind = IMAP_EVENT_LIST;
                ev->list.lsub = cur_ieq(name, "LSUB");
                cur_list(c, &ev->list);
        } else if (cur_ieq(name, "STATUS")) {
                ev->kind = IMAP_EVENT_MAILBOX_STATUS;
                cur_mailbox_status(c, &ev->mailbox_status);
        } else if (cur_ieq(name, "SEARCH")) {
                ev->kind = IMAP_EVENT_SEARCH;
                cur_search(c, &ev->search);
        } else if (cur_ieq(name, "ESEARCH")) {
                ev->kind = IMAP_EVENT_ESEARCH;
                cur_esearch(c, &ev->esearch);
        } else if (cur_ieq(name, "VANISHED")) {
                ev->kind = IMAP_EVENT_VANISHED;
                cur_sp(c);
                if (cur_eat(c, '(')) {
                        if (!cur_ieq(cur_atom(c), "EARLIER"))
                                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected EARLIER");
                        cur_expect(c, ')');
                        cur_sp(c);
                        ev->vanished.earlier = true;
                }
                ev->vanished.uids = cur_seqset(c);
        } else if (cur_ieq(name, "QUOTA")) {
                ev->kind = IMAP_EVENT_QUOTA;
                cur_quota(c, &ev->quota);
        } else if (cur_ieq(name, "QUOTAROOT")) {
                ImapStr *v = NULL, *r;
                size_t n = 0, cap = 0;

                ev->kind = IMAP_EVENT_QUOTAROOT;
                cur_sp(c);
                ev->quotaroot.mailbox = cur_mailbox(c);
                while (!c->err && cur_eat(c, ' ')) {
                        r = cur_push(c, &v, &n, &cap, sizeof *v);
                        if (r)
                                *r = cur_astring(c);
                }
                ev->quotaroot.roots = (ImapStrList){v, n};
        } else if (cur_ieq(name, "ID")) {
                ev->kind = IMAP_EVENT_ID;
                cur_sp(c);
                ev->id.params = cur_params(c, true, &ev->id.nil);
        } else if (cur_ieq(name, "NAMESPACE")) {
                ev->kind = IMAP_EVENT_NAMESPACE;
                cur_sp(c);
                ev->namespace_.personal = cur_namespace_list(c);
                cur_sp(c);
                ev->namespace_.other = cur_namespace_list(c);
                cur_sp(c);
                ev->namespace_.shared = cur_namespace_list(c);
        } else {
                ev->kind = IMAP_EVENT_OTHER;
                ev->other.name = name;
                if (cur_eat(c, ' '))
                        ev->other.rest = cur_rest(c);
                c->next_lit = c->n_lits;
        }
}

/* See parser-internal.h. */
int imap_response_parse(Cursor *c, ImapEvent *ev) {
        if (cur_eat(c, '+')) {
                ev->kind = IMAP_EVENT_CONTINUATION;
                if (cur_eat(c, ' '))
                        cur_resp_text(c, &ev->status);
                else
                        ev->status.text = cur_rest(c);
        } else if (cur_eat(c, '*')) {
                cur_sp(c);
                cur_untagged(c, ev);
        } else {
                /* tag = 1*<any ASTRING-CHAR except "+">: a "+" would read as a continuation. */
                ev->tag = cur_atom_full(c, true);
                if (!c->err && strchr(ev->tag.s, '+'))
                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "'+' in a tag");
                cur_sp(c);
                ev->kind = IMAP_EVENT_STATUS;
                if (!status_kind(cur_atom(c), &ev->status.status) || ev->status.status > IMAP_STATUS_BAD)
                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "tagged response is not OK, NO or BAD");
                if (cur_eat(c, ' '))
                        cur_resp_text(c, &ev->status);
                else
                        ev->status.text = cur_rest(c);
        }
        /* Both checks make sure the grammar and the scanner agree on where the response and its literals are. */
        if (!c->err && !cur_at_end(c))
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "unexpected bytes at the end of the response");
        if (!c->err && c->next_lit != c->n_lits) {
                c->pos = c->lits[c->next_lit].marker;
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "literal in an unexpected place");
        }
        return c->err;
}
