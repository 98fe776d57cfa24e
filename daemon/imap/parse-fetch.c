/*
 * IMAP FETCH response grammar: the msg-att items (UID, FLAGS, INTERNALDATE,
 * RFC822.SIZE, MODSEQ, ENVELOPE, BODY and BODYSTRUCTURE, body sections and
 * BINARY), the ENVELOPE address lists with RFC 2822 group syntax, and the
 * recursive BODYSTRUCTURE with its extension data.
 *
 * Body section values normally arrive as literals that parser.c has already
 * streamed to the callback; here they only leave a record (size, section,
 * origin). Quoted values stay inline and parser.c replays them as BODY_* events.
 * Same Cursor conventions as parse-response.c; same arena; same thread.
 */
#include <string.h>
#include <strings.h>

#include "daemon/imap/parser-internal.h"

static bool prefix_ieq(const char *s, size_t n, const char *p) {
        size_t pn = strlen(p);

        return n >= pn && strncasecmp(s, p, pn) == 0;
}

/* See parser-internal.h. */
bool imap_body_item_name_parse(const char *s, size_t n, BodyItemName *b) {
        static const struct {
                const char *name;
                ImapBodyItem item;
        } names[] = {
                /* "RFC822.HEADER" and "RFC822.TEXT" must come before "RFC822". */
                {"BODY[", IMAP_BODY_SECTION},
                {"BINARY[", IMAP_BODY_BINARY},
                {"BINARY.SIZE[", IMAP_BODY_BINARY_SIZE},
                {"RFC822.HEADER", IMAP_BODY_RFC822_HEADER},
                {"RFC822.TEXT", IMAP_BODY_RFC822_TEXT},
                {"RFC822", IMAP_BODY_RFC822},
        };
        size_t i = 0, k;
        bool quote = false;
        uint64_t origin = 0;

        *b = (BodyItemName){0};
        for (k = 0; k < ARRAY_SIZE(names); k++)
                if (prefix_ieq(s, n, names[k].name))
                        break;
        if (k == ARRAY_SIZE(names))
                return false;
        b->item = names[k].item;
        i = strlen(names[k].name);
        if (s[i - 1] != '[') {
                /* RFC822 forms: the name must end here ("RFC822.SIZE" is not a body). */
                if (i < n && s[i] != ' ' && s[i] != '(' && s[i] != ')')
                        return false;
                b->len = i;
                return true;
        }
        b->sec_off = i;
        /* The section may hold quoted header names; a literal or nested bracket in it is not supported. */
        for (; i < n; i++) {
                if (quote) {
                        if (s[i] == '\\')
                                i++;
                        else if (s[i] == '"')
                                quote = false;
                } else if (s[i] == '"') {
                        quote = true;
                } else if (s[i] == ']' || s[i] == '[' || s[i] == '{') {
                        break;
                }
        }
        if (i >= n || s[i] != ']')
                return false;
        b->sec_len = i - b->sec_off;
        i++;
        if (i < n && s[i] == '<') {
                size_t d = ++i;

                while (i < n && s[i] >= '0' && s[i] <= '9' && origin <= UINT32_MAX)
                        origin = origin * 10 + (uint64_t)(s[i++] - '0');
                if (i == d || i >= n || s[i] != '>' || origin > UINT32_MAX)
                        return false;
                b->has_origin = true;
                b->origin = (uint32_t)origin;
                i++;
        }
        b->len = i;
        return true;
}

static bool is_leap(int64_t y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* See parser-internal.h. Also takes a space-padded day (" 6-Nov-..."). */
bool imap_date_time_parse(const char *s, size_t len, int64_t *tp) {
        static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int day, mon = -1, hh, mm, ss, zh, zm, sign;
        int64_t year, days;

        static const unsigned char digits[] = {1, 7, 8, 9, 10, 12, 13, 15, 16, 18, 19, 22, 23, 24, 25};

        if (len != 26 || s[2] != '-' || s[6] != '-' || s[11] != ' ' || s[14] != ':' || s[17] != ':' || s[20] != ' ')
                return false;
        if (s[0] != ' ' && (s[0] < '0' || s[0] > '9'))
                return false;
        for (size_t i = 0; i < sizeof digits; i++)
                if (s[digits[i]] < '0' || s[digits[i]] > '9')
                        return false;
#define D(i) (s[i] - '0')
        day = (s[0] == ' ' ? 0 : D(0) * 10) + D(1);
        for (int m = 0; m < 12; m++)
                if (strncasecmp(s + 3, months + 3 * m, 3) == 0)
                        mon = m;
        year = D(7) * 1000 + D(8) * 100 + D(9) * 10 + D(10);
        hh = D(12) * 10 + D(13);
        mm = D(15) * 10 + D(16);
        ss = D(18) * 10 + D(19);
        sign = s[21] == '+' ? 1 : s[21] == '-' ? -1 : 0;
        zh = D(22) * 10 + D(23);
        zm = D(24) * 10 + D(25);
#undef D
        if (mon < 0 || day < 1 || day > mdays[mon] + (mon == 1 && is_leap(year)) || hh < 0 || hh > 23 || mm < 0 ||
            mm > 59 || ss < 0 || ss > 60 || !sign || zh < 0 || zh > 23 || zm < 0 || zm > 59)
                return false;
        /* Days from civil (Howard Hinnant's algorithm), March-based years. */
        {
                int64_t y = year - (mon < 2), era = y / 400, yoe = y - era * 400;
                int64_t mp = (mon + 10) % 12, doy = (153 * mp + 2) / 5 + day - 1;
                int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

                days = era * 146097 + doe - 719468;
        }
        *tp = days * 86400 + hh * 3600 + mm * 60 + ss - sign * (zh * 3600 + zm * 60);
        return true;
}

/* "(" 1*address ")" / nil; spaces between addresses tolerated. */
static ImapAddressList cur_address_list(Cursor *c) {
        ImapAddress *v = NULL, *a;
        size_t n = 0, cap = 0;

        if (cur_is_nil(c))
                return (ImapAddressList){0};
        if (!cur_depth_push(c))
                return (ImapAddressList){0};
        cur_expect(c, '(');
        do {
                a = cur_push(c, &v, &n, &cap, sizeof *v);
                if (!a)
                        break;
                cur_expect(c, '(');
                a->name = cur_string(c, true);
                cur_sp(c);
                a->adl = cur_string(c, true);
                cur_sp(c);
                a->mailbox = cur_string(c, true);
                cur_sp(c);
                a->host = cur_string(c, true);
                cur_expect(c, ')');
                /* RFC 3501 7.4.2: NIL host marks group syntax; a mailbox names the group, NIL ends it. */
                if (!a->host.s)
                        a->kind = a->mailbox.s ? IMAP_ADDRESS_GROUP_START : IMAP_ADDRESS_GROUP_END;
                cur_eat(c, ' ');
        } while (!c->err && cur_peek(c) == '(');
        cur_expect(c, ')');
        cur_depth_pop(c);
        return (ImapAddressList){v, n};
}

/* ENVELOPE's parenthesised list. */
static const ImapEnvelope *cur_envelope(Cursor *c) {
        ImapEnvelope *e = cur_alloc(c, sizeof *e);

        if (!e || !cur_depth_push(c))
                return NULL;
        cur_expect(c, '(');
        e->date = cur_string(c, true);
        cur_sp(c);
        e->subject = cur_string(c, true);
        cur_sp(c);
        e->from = cur_address_list(c);
        cur_sp(c);
        e->sender = cur_address_list(c);
        cur_sp(c);
        e->reply_to = cur_address_list(c);
        cur_sp(c);
        e->to = cur_address_list(c);
        cur_sp(c);
        e->cc = cur_address_list(c);
        cur_sp(c);
        e->bcc = cur_address_list(c);
        cur_sp(c);
        e->in_reply_to = cur_string(c, true);
        cur_sp(c);
        e->message_id = cur_string(c, true);
        cur_expect(c, ')');
        cur_depth_pop(c);
        return e;
}

/* body-fld-dsp: "(" string SP body-fld-param ")" / nil. */
static void cur_disposition(Cursor *c, ImapBodyPart *b) {
        if (cur_is_nil(c))
                return;
        if (!cur_depth_push(c))
                return;
        cur_expect(c, '(');
        b->disposition = cur_string(c, false);
        cur_sp(c);
        b->disposition_params = cur_params(c, true, NULL);
        cur_expect(c, ')');
        cur_depth_pop(c);
}

/* body-fld-lang: nstring / "(" string *(SP string) ")". */
static void cur_language(Cursor *c, ImapBodyPart *b) {
        ImapStr *v = NULL, *s;
        size_t n = 0, cap = 0;

        if (cur_peek(c) != '(') {
                ImapStr one = cur_string(c, true);

                if (one.s && (s = cur_push(c, &v, &n, &cap, sizeof *v)))
                        *s = one;
        } else {
                c->pos++;
                do {
                        s = cur_push(c, &v, &n, &cap, sizeof *v);
                        if (s)
                                *s = cur_string(c, false);
                } while (!c->err && cur_eat(c, ' '));
                cur_expect(c, ')');
        }
        b->language = (ImapStrList){v, n};
}

/* The optional tail shared by both body kinds: [SP dsp [SP lang [SP loc *(SP extension)]]]. */
static void cur_body_ext_tail(Cursor *c, ImapBodyPart *b) {
        if (!cur_eat(c, ' '))
                return;
        cur_disposition(c, b);
        if (!cur_eat(c, ' '))
                return;
        cur_language(c, b);
        if (!cur_eat(c, ' '))
                return;
        b->location = cur_string(c, true);
        while (!c->err && cur_eat(c, ' '))
                cur_skip_value(c);
}

static const ImapBodyPart *cur_body(Cursor *c);

/* body-type-mpart after "(": 1*body SP subtype [SP body-ext-mpart]. */
static void cur_body_multipart(Cursor *c, ImapBodyPart *b) {
        ImapBodyPart *v = NULL, *p;
        const ImapBodyPart *child;
        size_t n = 0, cap = 0;

        b->multipart = true;
        b->type = cur_strdup(c, "MULTIPART", 9);
        do {
                child = cur_body(c);
                p = cur_push(c, &v, &n, &cap, sizeof *v);
                if (p && child)
                        *p = *child;
                /* Some servers put a space between parts. */
                if (cur_peek(c) == ' ' && c->pos + 1 < c->end && c->buf[c->pos + 1] == '(')
                        c->pos++;
        } while (!c->err && cur_peek(c) == '(');
        b->parts = v;
        b->n_parts = n;
        cur_sp(c);
        b->subtype = cur_string(c, false);
        if (!cur_eat(c, ' '))
                return;
        b->has_ext = true;
        b->params = cur_params(c, true, NULL);
        cur_body_ext_tail(c, b);
}

/* body-type-1part after "(": type SP subtype SP fields [SP lines / envelope body lines] [SP body-ext-1part]. */
static void cur_body_single(Cursor *c, ImapBodyPart *b) {
        b->type = cur_string(c, false);
        cur_sp(c);
        b->subtype = cur_string(c, false);
        cur_sp(c);
        b->params = cur_params(c, true, NULL);
        cur_sp(c);
        b->id = cur_string(c, true);
        cur_sp(c);
        b->description = cur_string(c, true);
        cur_sp(c);
        b->encoding = cur_string(c, true);
        cur_sp(c);
        b->octets = cur_number64(c);
        /* body-type-msg (RFC 9051 adds message/global) and body-type-text have fields the others lack. */
        if (cur_ieq(b->type, "MESSAGE") && (cur_ieq(b->subtype, "RFC822") || cur_ieq(b->subtype, "GLOBAL"))) {
                cur_sp(c);
                b->envelope = cur_envelope(c);
                cur_sp(c);
                b->body = cur_body(c);
                cur_sp(c);
                b->lines = cur_number64(c);
        } else if (cur_ieq(b->type, "TEXT")) {
                cur_sp(c);
                b->lines = cur_number64(c);
        }
        if (!cur_eat(c, ' '))
                return;
        b->has_ext = true;
        b->md5 = cur_string(c, true);
        cur_body_ext_tail(c, b);
}

/* body: "(" (multipart / single part) ")". */
static const ImapBodyPart *cur_body(Cursor *c) {
        ImapBodyPart *b = cur_alloc(c, sizeof *b);

        if (!b || !cur_depth_push(c))
                return NULL;
        cur_expect(c, '(');
        if (cur_peek(c) == '(')
                cur_body_multipart(c, b);
        else
                cur_body_single(c, b);
        cur_expect(c, ')');
        cur_depth_pop(c);
        return b;
}

/* A body item's value: a literal (streamed or not), a quoted string, or NIL. */
static void cur_body_value(Cursor *c, ImapFetchBody *fb) {
        int ch = cur_peek(c);

        if (ch == '{' || ch == '~') {
                size_t s = c->pos;
                const ImapLiteral *l;

                if (c->next_lit >= c->n_lits || c->lits[c->next_lit].marker != s) {
                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "literal that does not end its line");
                        return;
                }
                l = &c->lits[c->next_lit++];
                if (l->literal8 && fb->item != IMAP_BODY_BINARY) {
                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "literal8 outside BINARY");
                        return;
                }
                /* Usually already streamed by parser.c; a literal it did not recognise as a body is kept inline. */
                fb->size = l->size;
                fb->streamed = l->streamed;
                if (!l->streamed)
                        fb->data = cur_strdup(c, c->buf + l->data, (size_t)l->size);
                c->pos = l->data + (l->streamed ? 0 : (size_t)l->size);
        } else if (cur_is_nil(c)) {
                fb->nil = true;
        } else {
                /* Small sections may come quoted; parser.c replays them as BODY_* events so callers see one path. */
                fb->data = cur_string(c, false);
                fb->size = fb->data.len;
        }
}

/* msg-att: "(" item SP value *(SP item SP value) ")". */
void imap_fetch_parse(Cursor *c, ImapFetch *f) {
        ImapFetchBody *bodies = NULL, *fb;
        ImapStr *unknown = NULL, *u;
        size_t n_bodies = 0, cap_bodies = 0, n_unknown = 0, cap_unknown = 0;
        BodyItemName bn;

        cur_expect(c, '(');
        while (!c->err && !cur_eat(c, ')')) {
                size_t s = c->pos;

                /* Body items are names with a section and origin glued on, so they are matched before atoms. */
                if (imap_body_item_name_parse(c->buf + s, c->end - s, &bn)) {
                        c->pos += bn.len;
                        cur_sp(c);
                        fb = cur_push(c, &bodies, &n_bodies, &cap_bodies, sizeof *fb);
                        if (!fb)
                                break;
                        fb->item = bn.item;
                        fb->section = cur_strdup(c, c->buf + s + bn.sec_off, bn.sec_len);
                        fb->has_origin = bn.has_origin;
                        fb->origin = bn.origin;
                        if (bn.item == IMAP_BODY_BINARY_SIZE)
                                fb->size = cur_number64(c);
                        else
                                cur_body_value(c, fb);
                } else {
                        ImapStr name = cur_atom(c);

                        cur_sp(c);
                        if (c->err)
                                break;
                        if (cur_ieq(name, "UID")) {
                                f->uid = cur_nz_number(c);
                                f->have |= IMAP_FETCH_UID;
                        } else if (cur_ieq(name, "FLAGS")) {
                                f->flags = cur_flag_list(c);
                                f->have |= IMAP_FETCH_FLAGS;
                        } else if (cur_ieq(name, "INTERNALDATE")) {
                                size_t d = c->pos;

                                f->internaldate = cur_string(c, false);
                                if (!c->err && !imap_date_time_parse(f->internaldate.s, f->internaldate.len,
                                                                     &f->internaldate_unix)) {
                                        c->pos = d;
                                        cur_fail(c, IMAP_PARSER_E_SYNTAX, "malformed INTERNALDATE");
                                }
                                f->have |= IMAP_FETCH_INTERNALDATE;
                        } else if (cur_ieq(name, "RFC822.SIZE")) {
                                f->rfc822_size = cur_number64(c);
                                f->have |= IMAP_FETCH_RFC822_SIZE;
                        } else if (cur_ieq(name, "MODSEQ")) {
                                cur_expect(c, '(');
                                f->modseq = cur_number64(c);
                                cur_expect(c, ')');
                                f->have |= IMAP_FETCH_MODSEQ;
                        } else if (cur_ieq(name, "ENVELOPE")) {
                                f->envelope = cur_envelope(c);
                                f->have |= IMAP_FETCH_ENVELOPE;
                        } else if (cur_ieq(name, "BODYSTRUCTURE") || cur_ieq(name, "BODY")) {
                                f->body = cur_body(c);
                                f->have |= IMAP_FETCH_BODYSTRUCTURE;
                        } else {
                                /* X-GM-*, EMAILID, PREVIEW, SAVEDATE...: one value each, named for the caller. */
                                u = cur_push(c, &unknown, &n_unknown, &cap_unknown, sizeof *u);
                                if (u)
                                        *u = name;
                                cur_skip_value(c);
                        }
                }
                if (cur_peek(c) != ')')
                        cur_sp(c);
        }
        f->bodies = bodies;
        f->n_bodies = n_bodies;
        f->unknown = (ImapStrList){unknown, n_unknown};
}
