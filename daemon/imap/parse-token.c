/*
 * IMAP response tokens for the grammar in parse-response.c and parse-fetch.c:
 * atoms, numbers, quoted strings, literals (looked up in the table parser.c
 * built while buffering), NIL, flags, sequence sets, and skipping any value.
 * Everything returned is copied NUL-terminated into the response's arena.
 *
 * Errors are sticky in the Cursor: the first one records position and reason,
 * and every primitive after it does nothing and returns an empty value, so the
 * grammar reads straight without checking each call. Loops test c->err.
 * Runs on the parser's caller's thread, inside imap_parser_feed().
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "daemon/imap/parser-internal.h"

/* Records the first error. */
void cur_fail(Cursor *c, int code, const char *reason) {
        if (c->err)
                return;
        c->err = code;
        c->err_pos = c->pos;
        c->reason = reason;
}

/* The next byte, or -1 at the end or after an error. */
int cur_peek(const Cursor *c) {
        if (c->err || c->pos >= c->end)
                return -1;
        return (unsigned char)c->buf[c->pos];
}

/* Consumes ch if it is next. */
bool cur_eat(Cursor *c, char ch) {
        if (cur_peek(c) != (unsigned char)ch)
                return false;
        c->pos++;
        return true;
}

/* Consumes ch or fails. */
void cur_expect(Cursor *c, char ch) {
        if (cur_eat(c, ch))
                return;
        switch (ch) {
        case '(':
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected '('");
                break;
        case ')':
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected ')'");
                break;
        case ']':
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected ']'");
                break;
        case ' ':
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected a space");
                break;
        default:
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "unexpected character");
        }
}

/* Consumes a space or fails. */
void cur_sp(Cursor *c) {
        cur_expect(c, ' ');
}

/* Whether the response is all read (false after an error). */
bool cur_at_end(const Cursor *c) {
        return !c->err && c->pos >= c->end;
}

/* Arena memory; fails the parse when over the cap or out of memory. */
void *cur_alloc(Cursor *c, size_t size) {
        void *m;

        if (c->err)
                return NULL;
        m = arena_alloc(c->arena, size);
        if (!m)
                cur_fail(c, c->arena->over ? IMAP_PARSER_E_TOO_BIG : -ENOMEM,
                         c->arena->over ? "response structures over the limit" : "out of memory");
        return m;
}

/* Appends one zeroed item to an arena vector, doubling it when full; NULL on error. */
void *cur_push(Cursor *c, void *vp, size_t *np, size_t *capp, size_t size) {
        char **v = vp;

        if (c->err)
                return NULL;
        if (*np >= c->lim->max_items) {
                cur_fail(c, IMAP_PARSER_E_TOO_BIG, "list longer than the limit");
                return NULL;
        }
        if (*np == *capp) {
                size_t cap = *capp ? *capp * 2 : 4;
                char *n = cur_alloc(c, cap * size);

                if (!n)
                        return NULL;
                if (*np)
                        memcpy(n, *v, *np * size);
                *v = n;
                *capp = cap;
        }
        return *v + (*np)++ * size;
}

/* A NUL-terminated arena copy. */
ImapStr cur_strdup(Cursor *c, const char *s, size_t len) {
        char *d = len < SIZE_MAX ? cur_alloc(c, len + 1) : NULL;

        if (!d)
                return (ImapStr){0};
        memcpy(d, s, len);
        return (ImapStr){d, len};
}

/* Whether a is b, ignoring ASCII case. */
bool cur_ieq(ImapStr a, const char *b) {
        return a.s && strlen(b) == a.len && strncasecmp(a.s, b, a.len) == 0;
}

/* Opens a nesting level; false (and fails) past max_depth. */
bool cur_depth_push(Cursor *c) {
        if (c->err)
                return false;
        if (++c->depth > c->lim->max_depth) {
                cur_fail(c, IMAP_PARSER_E_TOO_BIG, "nesting deeper than the limit");
                return false;
        }
        return true;
}

/* Closes a nesting level. */
void cur_depth_pop(Cursor *c) {
        if (c->depth > 0)
                c->depth--;
}

static bool is_atom_char(int ch) {
        return ch > 0x20 && ch != 0x7f && !strchr("(){\"\\]%*", ch);
}

/* Reads 1*ATOM-CHAR (plus "]" when astring); fails when there is none. */
ImapStr cur_atom_full(Cursor *c, bool astring) {
        size_t s = c->pos;
        int ch;

        while ((ch = cur_peek(c)) >= 0 && (is_atom_char(ch) || (astring && ch == ']')))
                c->pos++;
        if (c->pos == s) {
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected an atom");
                return (ImapStr){0};
        }
        return cur_strdup(c, c->buf + s, c->pos - s);
}

/* An atom. */
ImapStr cur_atom(Cursor *c) {
        return cur_atom_full(c, false);
}

/* Consumes "NIL" when it is the next token. */
bool cur_is_nil(Cursor *c) {
        if (c->err || c->end - c->pos < 3 || strncasecmp(c->buf + c->pos, "NIL", 3) != 0)
                return false;
        if (c->end - c->pos > 3 && is_atom_char((unsigned char)c->buf[c->pos + 3]))
                return false;
        c->pos += 3;
        return true;
}

/* A number that fits 64 bits. */
uint64_t cur_number64(Cursor *c) {
        uint64_t v = 0;
        size_t s = c->pos;
        int ch;

        while ((ch = cur_peek(c)) >= '0' && ch <= '9') {
                if (v > (UINT64_MAX - (unsigned)(ch - '0')) / 10) {
                        cur_fail(c, IMAP_PARSER_E_TOO_BIG, "number too large");
                        return 0;
                }
                v = v * 10 + (unsigned)(ch - '0');
                c->pos++;
        }
        if (c->pos == s)
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected a number");
        return v;
}

/* A number that fits 32 bits. */
uint32_t cur_number(Cursor *c) {
        size_t s = c->pos;
        uint64_t v = cur_number64(c);

        if (v > UINT32_MAX) {
                c->pos = s;
                cur_fail(c, IMAP_PARSER_E_TOO_BIG, "number too large");
                return 0;
        }
        return (uint32_t)v;
}

/* A 32-bit number other than 0. */
uint32_t cur_nz_number(Cursor *c) {
        size_t s = c->pos;
        uint32_t v = cur_number(c);

        if (v == 0 && !c->err) {
                c->pos = s;
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected a number other than 0");
        }
        return v;
}

/* The literal whose marker is at the cursor, consumed from the table; NULL (and fails) if none is. */
static const ImapLiteral *cur_literal(Cursor *c) {
        const ImapLiteral *l;

        if (c->err)
                return NULL;
        if (c->next_lit >= c->n_lits || c->lits[c->next_lit].marker != c->pos) {
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "literal that does not end its line");
                return NULL;
        }
        l = &c->lits[c->next_lit++];
        c->pos = l->data + (l->streamed ? 0 : (size_t)l->size);
        return l;
}

/* A quoted string, unescaped. */
static ImapStr cur_quoted(Cursor *c) {
        size_t s = ++c->pos, n = 0;
        char *d;
        int ch;

        /* First pass finds the end and the unescaped length. */
        for (;;) {
                ch = cur_peek(c);
                if (ch < 0) {
                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "unterminated quoted string");
                        return (ImapStr){0};
                }
                c->pos++;
                if (ch == '"')
                        break;
                if (ch == '\\') {
                        if (cur_peek(c) < 0) {
                                cur_fail(c, IMAP_PARSER_E_SYNTAX, "unterminated quoted string");
                                return (ImapStr){0};
                        }
                        c->pos++;
                }
                n++;
        }
        d = cur_alloc(c, n + 1);
        if (!d)
                return (ImapStr){0};
        for (size_t i = s, j = 0; j < n; i++, j++) {
                if (c->buf[i] == '\\')
                        i++;
                d[j] = c->buf[i];
        }
        return (ImapStr){d, n};
}

/* A quoted string or literal (not literal8, not a streamed body); NIL too when nil_ok. */
ImapStr cur_string(Cursor *c, bool nil_ok) {
        const ImapLiteral *l;
        int ch = cur_peek(c);

        if (ch == '"')
                return cur_quoted(c);
        if (ch == '{' || ch == '~') {
                l = cur_literal(c);
                if (!l)
                        return (ImapStr){0};
                if (l->literal8 || l->streamed) {
                        c->pos = l->marker;
                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "literal8 or body literal where a string belongs");
                        return (ImapStr){0};
                }
                return cur_strdup(c, c->buf + l->data, (size_t)l->size);
        }
        if (nil_ok && cur_is_nil(c))
                return (ImapStr){0};
        cur_fail(c, IMAP_PARSER_E_SYNTAX, nil_ok ? "expected a string or NIL" : "expected a string");
        return (ImapStr){0};
}

/* An atom (with "]") or a string. */
ImapStr cur_astring(Cursor *c) {
        int ch = cur_peek(c);

        if (ch == '"' || ch == '{' || ch == '~')
                return cur_string(c, false);
        return cur_atom_full(c, true);
}

/* A mailbox name: INBOX in any case becomes "INBOX". */
ImapStr cur_mailbox(Cursor *c) {
        ImapStr m = cur_astring(c);

        if (cur_ieq(m, "INBOX"))
                memcpy((char *)m.s, "INBOX", 5);
        return m;
}

/* A flag: "\Seen", "\*", "$Label1", "keyword". */
static ImapStr cur_flag(Cursor *c) {
        size_t s = c->pos;
        int ch;

        if (cur_eat(c, '\\') && cur_eat(c, '*'))
                return cur_strdup(c, c->buf + s, 2);
        while ((ch = cur_peek(c)) >= 0 && is_atom_char(ch))
                c->pos++;
        if (c->pos == s || (c->pos == s + 1 && c->buf[s] == '\\')) {
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected a flag");
                return (ImapStr){0};
        }
        return cur_strdup(c, c->buf + s, c->pos - s);
}

/* "(" [flag *(SP flag)] ")" */
ImapStrList cur_flag_list(Cursor *c) {
        ImapStr *v = NULL, *f;
        size_t n = 0, cap = 0;

        cur_expect(c, '(');
        if (!cur_eat(c, ')')) {
                do {
                        f = cur_push(c, &v, &n, &cap, sizeof *v);
                        if (f)
                                *f = cur_flag(c);
                } while (!c->err && cur_eat(c, ' '));
                cur_expect(c, ')');
        }
        return (ImapStrList){v, n};
}

/* nz-number or "*" */
static uint32_t cur_seq_number(Cursor *c) {
        if (cur_eat(c, '*'))
                return IMAP_SEQ_STAR;
        return cur_nz_number(c);
}

/* sequence-set: ranges in the order sent, each with first <= last unless one end is "*". */
ImapSeqSet cur_seqset(Cursor *c) {
        ImapRange *v = NULL, *r;
        size_t n = 0, cap = 0;

        do {
                r = cur_push(c, &v, &n, &cap, sizeof *v);
                if (!r)
                        break;
                r->first = r->last = cur_seq_number(c);
                if (cur_eat(c, ':'))
                        r->last = cur_seq_number(c);
                if (r->first != IMAP_SEQ_STAR && r->last != IMAP_SEQ_STAR && r->first > r->last) {
                        uint32_t t = r->first;

                        r->first = r->last;
                        r->last = t;
                }
        } while (!c->err && cur_eat(c, ','));
        return (ImapSeqSet){v, n};
}

/* Skips a bare token, brackets (and spaces and quotes in them) included: "BODY[HEADER.FIELDS (A)]<0>". */
static void cur_skip_bare(Cursor *c) {
        size_t s = c->pos;
        unsigned bracket = 0;
        bool quote = false;
        int ch;

        while ((ch = cur_peek(c)) >= 0) {
                if (quote) {
                        if (ch == '\\')
                                c->pos++;
                        else if (ch == '"')
                                quote = false;
                } else if (ch == '[') {
                        bracket++;
                } else if (ch == ']' && bracket > 0) {
                        bracket--;
                } else if (ch == '"' && bracket > 0) {
                        quote = true;
                } else if (bracket == 0 && (ch <= 0x20 || ch == '(' || ch == ')' || ch == '"' || ch == '{')) {
                        break;
                }
                c->pos++;
        }
        if (c->pos > c->end || quote || bracket) {
                c->pos = s;
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "unterminated bracket or quote");
        } else if (c->pos == s) {
                cur_fail(c, IMAP_PARSER_E_SYNTAX, "expected a value");
        }
}

/* Skips any value: atom, number, string, literal, or a parenthesised list of them. */
void cur_skip_value(Cursor *c) {
        int ch = cur_peek(c);

        if (ch == '(') {
                if (!cur_depth_push(c))
                        return;
                c->pos++;
                if (!cur_eat(c, ')')) {
                        do
                                cur_skip_value(c);
                        while (!c->err && cur_eat(c, ' '));
                        cur_expect(c, ')');
                }
                cur_depth_pop(c);
        } else if (ch == '"') {
                cur_quoted(c);
        } else if (ch == '{' || ch == '~') {
                cur_literal(c);
        } else {
                cur_skip_bare(c);
        }
}
