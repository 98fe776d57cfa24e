/*
 * Message preparation for SMTP submission (see prepare.h for the rules).
 *
 * Three passes over the caller's bytes, all in memory the caller's message
 * already takes (the output is at most twice the input plus the added
 * headers): normalise line ends while checking NUL bytes, line lengths and
 * 8-bit bytes; split the header section into fields and parse the address
 * fields; write the header section again without Bcc and with the missing
 * Date / Message-ID / From, then the body as it is. Everything returned is
 * owned by the SmtpMessage. Pure apart from time() and randombytes_buf()
 * when the caller does not fix them; any thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon/smtp/prepare.h"

/* A growable list of malloc'd strings. */
typedef struct AddrList {
        char **v;
        size_t n, cap;
} AddrList;

/* A growable byte buffer; len excludes the NUL kept after the bytes. */
typedef struct Buf {
        char *p;
        size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t more) {
        char *p;
        size_t cap;

        if (b->len + more + 1 <= b->cap)
                return 0;
        cap = b->cap ? b->cap : 64;
        while (cap < b->len + more + 1)
                cap *= 2;
        p = realloc(b->p, cap);
        if (!p)
                return -ENOMEM;
        b->p = p;
        b->cap = cap;
        return 0;
}

static int buf_add(Buf *b, const void *data, size_t n) {
        if (buf_reserve(b, n) < 0)
                return -ENOMEM;
        memcpy(b->p + b->len, data, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

static int buf_addc(Buf *b, char c) {
        return buf_add(b, &c, 1);
}

static void set_err(char **errp, const char *fmt, ...) _printf_(2, 3);
static void set_err(char **errp, const char *fmt, ...) {
        va_list ap;

        if (!errp)
                return;
        free(*errp);
        *errp = NULL;
        va_start(ap, fmt);
        if (vasprintf(errp, fmt, ap) < 0)
                *errp = NULL;
        va_end(ap);
}

static int addr_list_add(AddrList *l, const char *addr) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 8;
                char **v = realloc(l->v, cap * sizeof *v);

                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n] = strdup(addr);
        if (!l->v[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

static bool addr_list_has(const AddrList *l, const char *addr) {
        for (size_t i = 0; i < l->n; i++)
                if (strcasecmp(l->v[i], addr) == 0)
                        return true;
        return false;
}

char **smtp_address_list_free(char **addrs, size_t n_addrs) {
        for (size_t i = 0; addrs && i < n_addrs; i++)
                free(addrs[i]);
        free(addrs);
        return NULL;
}

bool smtp_address_is_utf8(const char *addr) {
        for (const unsigned char *c = (const unsigned char *)addr; *c; c++)
                if (*c >= 0x80)
                        return true;
        return false;
}

const char *smtp_address_domain(const char *addr) {
        const char *at = strrchr(addr, '@');

        return at ? at + 1 : NULL;
}

/* An addr-spec we may put in MAIL FROM / RCPT TO: local@domain, no controls, spaces or brackets. */
static bool addr_spec_valid(const char *a) {
        const char *at = strrchr(a, '@');
        bool quoted = false;

        if (!at || at == a || at[1] == '\0')
                return false;
        for (const unsigned char *c = (const unsigned char *)a; *c; c++) {
                if (*c == '"')
                        quoted = !quoted;
                if (*c < 0x20 || *c == 0x7f || (!quoted && (*c == ' ' || *c == '<' || *c == '>')))
                        return false;
        }
        return !quoted;
}

/* One mailbox of the list has ended: its address is the angle part if any, else the bare text. */
static int flush_mailbox(AddrList *out, Buf *cur, Buf *angle, bool have_angle, const char *raw, size_t n_raw,
                         char **errp) {
        const char *addr = have_angle ? (angle->p ? angle->p : "") : (cur->p ? cur->p : "");
        int r = 0;

        /* An obsolete source route "<@a,@b:user@host>" names relays: drop it. */
        if (have_angle && addr[0] == '@' && strchr(addr, ':'))
                addr = strchr(addr, ':') + 1;
        if (!have_angle && addr[0] == '\0')
                goto out; /* empty list element ("a@b, , c@d") or comment only */
        if (!addr_spec_valid(addr)) {
                while (n_raw > 0 && (raw[0] == ' ' || raw[0] == '\t' || raw[0] == '\r' || raw[0] == '\n'))
                        raw++, n_raw--;
                set_err(errp, "bad address \"%.*s\"", (int)(n_raw > 200 ? 200 : n_raw), raw);
                r = SMTP_PREPARE_E_BAD_ADDRESS;
                goto out;
        }
        r = addr_list_add(out, addr);
out:
        cur->len = angle->len = 0;
        if (cur->p)
                cur->p[0] = '\0';
        if (angle->p)
                angle->p[0] = '\0';
        return r;
}

/* Skips a comment starting at v[i] == '(' (nested, with quoted-pairs); returns the index after it. */
static size_t skip_comment(const char *v, size_t i) {
        unsigned depth = 0;

        for (; v[i]; i++) {
                if (v[i] == '\\' && v[i + 1])
                        i++;
                else if (v[i] == '(')
                        depth++;
                else if (v[i] == ')' && --depth == 0)
                        return i + 1;
        }
        return i;
}

static int parse_list(const char *v, AddrList *out, char **errp) {
        Buf cur = {}, angle = {};
        bool in_angle = false, have_angle = false;
        size_t start = 0, i = 0;
        int r = 0;

        while (r == 0 && v[i]) {
                char c = v[i];

                if (c == '(') {
                        i = skip_comment(v, i);
                        continue;
                }
                if (c == '"') {
                        /* A quoted string, kept with its quotes and escapes (a quoted local part needs them). */
                        Buf *dst = in_angle ? &angle : &cur;

                        r = buf_addc(dst, '"');
                        for (i++; r == 0 && v[i] && v[i] != '"'; i++) {
                                if (v[i] == '\\' && v[i + 1])
                                        r = buf_addc(dst, v[i++]);
                                if (r == 0 && v[i] != '\r' && v[i] != '\n')
                                        r = buf_addc(dst, v[i]);
                        }
                        if (r == 0)
                                r = buf_addc(dst, '"');
                        if (v[i])
                                i++;
                        continue;
                }
                i++;
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
                        continue;
                if (in_angle) {
                        if (c == '>')
                                in_angle = false;
                        else
                                r = buf_addc(&angle, c);
                        continue;
                }
                switch (c) {
                case '<':
                        in_angle = have_angle = true;
                        angle.len = 0;
                        r = buf_add(&angle, "", 0);
                        break;
                case ':':
                        /* "Friends: a@b, c@d;" — a group: its name is not an address. */
                        cur.len = 0;
                        r = buf_add(&cur, "", 0);
                        start = i;
                        break;
                case ',':
                case ';':
                        r = flush_mailbox(out, &cur, &angle, have_angle, v + start, i - 1 - start, errp);
                        have_angle = false;
                        start = i;
                        break;
                default:
                        r = buf_addc(&cur, c);
                        break;
                }
        }
        if (r == 0 && in_angle) {
                set_err(errp, "bad address \"%.200s\": no closing '>'", v + start);
                r = SMTP_PREPARE_E_BAD_ADDRESS;
        }
        if (r == 0)
                r = flush_mailbox(out, &cur, &angle, have_angle, v + start, i - start, errp);
        free(cur.p);
        free(angle.p);
        return r;
}

int smtp_address_list_parse(const char *value, char ***addrsp, size_t *n_addrsp, char **errp) {
        AddrList l = {.v = *addrsp, .n = *n_addrsp, .cap = *n_addrsp};
        int r;

        r = parse_list(value, &l, errp);
        *addrsp = l.v;
        *n_addrsp = l.n;
        return r;
}

SmtpMessage *smtp_message_free(SmtpMessage *m) {
        if (!m)
                return NULL;
        free(m->mail_from);
        smtp_address_list_free(m->rcpts, m->n_rcpts);
        free(m->data);
        free(m);
        return NULL;
}

const char *smtp_prepare_strerror(int code) {
        switch (code) {
        case SMTP_PREPARE_E_NO_SENDER:
                return "no sender: no From: header and no -f";
        case SMTP_PREPARE_E_NO_RECIPIENTS:
                return "no recipients";
        case SMTP_PREPARE_E_BAD_ADDRESS:
                return "bad address";
        case SMTP_PREPARE_E_LINE_TOO_LONG:
                return "line longer than 998 octets";
        case SMTP_PREPARE_E_NUL:
                return "NUL byte in the message";
        case SMTP_PREPARE_E_BAD_HEADER:
                return "malformed header";
        default:
                return "unknown";
        }
}

/*
 * Pass 1: every line end becomes CRLF; NUL bytes and long lines refuse the
 * message. A last line without a line end gets one.
 */
static int normalise(const char *raw, size_t n, Buf *out, bool *eightbitp, char **errp) {
        size_t line = 1, col = 0;
        int r;

        r = buf_reserve(out, n + n / 8 + 2);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)raw[i];

                if (c == '\r' || c == '\n') {
                        if (c == '\r' && i + 1 < n && raw[i + 1] == '\n')
                                i++;
                        r = buf_add(out, "\r\n", 2);
                        line++, col = 0;
                } else if (c == '\0') {
                        set_err(errp, "line %zu has a NUL byte", line);
                        return SMTP_PREPARE_E_NUL;
                } else {
                        if (++col > SMTP_PREPARE_LINE_MAX) {
                                size_t len = col;

                                while (i + 1 < n && raw[i + 1] != '\r' && raw[i + 1] != '\n')
                                        i++, len++;
                                set_err(errp, "line %zu is %zu octets long, more than %d", line, len,
                                        SMTP_PREPARE_LINE_MAX);
                                return SMTP_PREPARE_E_LINE_TOO_LONG;
                        }
                        if (c >= 0x80)
                                *eightbitp = true;
                        r = buf_addc(out, (char)c);
                }
                if (r < 0)
                        return r;
        }
        if (col > 0)
                r = buf_add(out, "\r\n", 2);
        return r;
}

/* A header field in the normalised text: [start, end) including its CRLFs; the name is [start, name_end). */
typedef struct Field {
        size_t start, name_end, colon, end;
} Field;

static bool field_is(const char *text, const Field *f, const char *name) {
        size_t n = strlen(name);

        return f->name_end - f->start == n && strncasecmp(text + f->start, name, n) == 0;
}

/* The unfolded value of f (CRLFs removed, the folding white space kept), malloc'd. */
static char *field_value(const char *text, const Field *f) {
        char *v = malloc(f->end - f->colon), *o = v;

        if (!v)
                return NULL;
        for (size_t i = f->colon + 1; i < f->end; i++)
                if (text[i] != '\r' && text[i] != '\n')
                        *o++ = text[i];
        *o = '\0';
        return v;
}

/* RFC 5322 date-time, without locale: "Thu, 26 Nov 2026 16:20:00 +0000". */
static void format_date(int64_t now, bool utc, char *buf, size_t size) {
        static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        time_t t = (time_t)now;
        struct tm tm;
        long off;

        if (utc)
                gmtime_r(&t, &tm);
        else
                localtime_r(&t, &tm);
        off = utc ? 0 : tm.tm_gmtoff / 60;
        snprintf(buf, size, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7], tm.tm_mday,
                 months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
                 labs(off) / 60, labs(off) % 60);
}

int smtp_message_prepare(const char *raw, size_t n, const SmtpPrepareOptions *opts, SmtpMessage **retp, char **errp) {
        static const SmtpPrepareOptions no_opts = {};
        _cleanup_(smtp_message_freep) SmtpMessage *m = NULL;
        Buf text = {}, out = {};
        AddrList rcpts = {}, from = {}, hdr = {}; /* envelope, From:, To/Cc/Bcc */
        Field *fields = NULL;
        size_t n_fields = 0, body = 0, n_before, i;
        bool eightbit = false, have_date = false, have_msgid = false, have_from = false, hdr_utf8 = false;
        char *value = NULL;
        int r;

        if (!opts)
                opts = &no_opts;
        if (errp)
                *errp = NULL;
        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        r = normalise(raw, n, &text, &eightbit, errp);
        if (r != 0)
                goto out;
        if (text.len == 0 || (text.len >= 2 && text.p[0] == '\r')) {
                set_err(errp, "the message has no header");
                r = SMTP_PREPARE_E_BAD_HEADER;
                goto out;
        }

        /* Pass 2: the header fields, up to the empty line (or the end). */
        fields = calloc(text.len / 3 + 1, sizeof *fields); /* a field takes 3 bytes at least ("a:\r\n" is 4) */
        if (!fields) {
                r = -ENOMEM;
                goto out;
        }
        for (i = 0; i < text.len;) {
                size_t eol = (size_t)((char *)memchr(text.p + i, '\n', text.len - i) - text.p) + 1;
                const char *colon;

                if (eol - i == 2) { /* the empty line: sent as is, starting the body */
                        body = i;
                        break;
                }
                if ((text.p[i] == ' ' || text.p[i] == '\t') && n_fields > 0) {
                        fields[n_fields - 1].end = eol; /* a folded continuation */
                } else {
                        size_t name_end;

                        /* field-name ":" — obsolete syntax allows blanks before the colon, not inside the name. */
                        colon = memchr(text.p + i, ':', eol - i);
                        name_end = colon ? (size_t)(colon - text.p) : i;
                        while (name_end > i && (text.p[name_end - 1] == ' ' || text.p[name_end - 1] == '\t'))
                                name_end--;
                        if (!colon || name_end == i || memchr(text.p + i, ' ', name_end - i) ||
                            memchr(text.p + i, '\t', name_end - i)) {
                                size_t len = eol - i - 2;

                                set_err(errp, "header line \"%.*s\" has no field name", (int)(len > 80 ? 80 : len),
                                        text.p + i);
                                r = SMTP_PREPARE_E_BAD_HEADER;
                                goto out;
                        }
                        fields[n_fields++] = (Field){i, name_end, (size_t)(colon - text.p), eol};
                }
                i = body = eol;
        }

        for (i = 0; i < n_fields; i++) {
                const Field *f = &fields[i];
                bool is_from = field_is(text.p, f, "From");
                bool is_rcpt = field_is(text.p, f, "To") || field_is(text.p, f, "Cc") || field_is(text.p, f, "Bcc");

                have_date |= field_is(text.p, f, "Date");
                have_msgid |= field_is(text.p, f, "Message-ID");
                have_from |= is_from;
                if (!is_from && !is_rcpt)
                        continue;
                value = field_value(text.p, f);
                if (!value) {
                        r = -ENOMEM;
                        goto out;
                }
                n_before = is_from ? from.n : hdr.n;
                r = parse_list(value, is_from ? &from : &hdr, errp);
                value = (free(value), NULL);
                /* A non-ASCII address in a field that is sent makes an internationalized message (RFC 6532);
                 * Bcc: is not sent, and its addresses count only as envelope recipients. */
                for (size_t j = n_before; !field_is(text.p, f, "Bcc") && j < (is_from ? from.n : hdr.n); j++)
                        hdr_utf8 |= smtp_address_is_utf8(is_from ? from.v[j] : hdr.v[j]);
                if (r > 0 && (is_from ? opts->from && opts->from[0] : opts->n_rcpts > 0)) {
                        /* The envelope is given: a header we do not need may be as bad as it likes. */
                        r = 0;
                        if (errp)
                                *errp = (free(*errp), NULL);
                }
                if (r != 0) {
                        if (r > 0 && errp && *errp) {
                                char *e = NULL;

                                if (asprintf(&e, "%.*s: %s", (int)(f->name_end - f->start), text.p + f->start, *errp) >=
                                    0)
                                        free(*errp), *errp = e;
                        }
                        goto out;
                }
        }

        /* The envelope. */
        if (opts->from && opts->from[0]) {
                if (!addr_spec_valid(opts->from)) {
                        set_err(errp, "bad sender address \"%.200s\"", opts->from);
                        r = SMTP_PREPARE_E_BAD_ADDRESS;
                        goto out;
                }
                m->mail_from = strdup(opts->from);
        } else if (from.n > 0) {
                m->mail_from = strdup(from.v[0]);
        } else {
                set_err(errp, "%s", smtp_prepare_strerror(SMTP_PREPARE_E_NO_SENDER));
                r = SMTP_PREPARE_E_NO_SENDER;
                goto out;
        }
        if (!m->mail_from) {
                r = -ENOMEM;
                goto out;
        }
        if (opts->n_rcpts > 0) {
                for (i = 0; i < opts->n_rcpts; i++) {
                        if (!addr_spec_valid(opts->rcpts[i])) {
                                set_err(errp, "bad recipient address \"%.200s\"", opts->rcpts[i]);
                                r = SMTP_PREPARE_E_BAD_ADDRESS;
                                goto out;
                        }
                        if (!addr_list_has(&rcpts, opts->rcpts[i]) && (r = addr_list_add(&rcpts, opts->rcpts[i])) < 0)
                                goto out;
                }
        } else {
                /* Drop repeats, keeping the first spelling. */
                size_t kept = 0;

                rcpts = hdr;
                hdr = (AddrList){};
                for (i = 0; i < rcpts.n; i++) {
                        bool dup = false;

                        for (size_t j = 0; j < kept && !dup; j++)
                                dup = strcasecmp(rcpts.v[j], rcpts.v[i]) == 0;
                        if (dup)
                                free(rcpts.v[i]);
                        else
                                rcpts.v[kept++] = rcpts.v[i];
                }
                rcpts.n = kept;
        }
        if (rcpts.n == 0) {
                set_err(errp, "no recipients: none given and no To:, Cc: or Bcc: address");
                r = SMTP_PREPARE_E_NO_RECIPIENTS;
                goto out;
        }

        /* Pass 3: the message as sent: added fields first, then the others without Bcc, then the body. */
        r = buf_reserve(&out, text.len + 512);
        if (r == 0 && !have_from) {
                r = buf_add(&out, "From: ", 6);
                if (r == 0)
                        r = buf_add(&out, m->mail_from, strlen(m->mail_from));
                if (r == 0)
                        r = buf_add(&out, "\r\n", 2);
        }
        if (r == 0 && !have_date) {
                char date[64];

                format_date(opts->now ? opts->now : (int64_t)time(NULL), opts->utc, date, sizeof date);
                r = buf_add(&out, "Date: ", 6);
                if (r == 0)
                        r = buf_add(&out, date, strlen(date));
                if (r == 0)
                        r = buf_add(&out, "\r\n", 2);
                m->added_date = true;
        }
        if (r == 0 && !have_msgid) {
                char unique[64], *id = NULL;
                const char *domain = smtp_address_domain(m->mail_from);

                /* A domain longer than DNS allows (253) would push the line past
                 * SMTP_PREPARE_LINE_MAX: the id only needs to be unique. */
                if (domain && strlen(domain) > 253)
                        domain = NULL;
                if (!opts->unique) {
                        uint8_t rnd[12];

                        randombytes_buf(rnd, sizeof rnd);
                        sodium_bin2hex(unique, sizeof unique, rnd, sizeof rnd);
                }
                if (asprintf(&id, "Message-ID: <%s.%" PRId64 "@%s>\r\n", opts->unique ? opts->unique : unique,
                             opts->now ? opts->now : (int64_t)time(NULL), domain ? domain : "localhost") < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                r = buf_add(&out, id, strlen(id));
                free(id);
                m->added_message_id = true;
        }
        for (i = 0; r == 0 && i < n_fields; i++) {
                if (field_is(text.p, &fields[i], "Bcc")) {
                        m->removed_bcc = true;
                        continue;
                }
                r = buf_add(&out, text.p + fields[i].start, fields[i].end - fields[i].start);
        }
        if (r == 0 && body < text.len)
                r = buf_add(&out, text.p + body, text.len - body);
        else if (r == 0)
                r = buf_add(&out, "\r\n", 2); /* a message of headers only still ends its header section */
        if (r < 0)
                goto out;

        m->rcpts = rcpts.v;
        m->n_rcpts = rcpts.n;
        rcpts = (AddrList){};
        m->data = TAKE_PTR(out.p);
        m->size = out.len;
        /* Counted on what is sent: 8-bit bytes only in a dropped Bcc: line need nothing. */
        for (i = 0; eightbit && i < m->size && !m->needs_8bitmime; i++)
                m->needs_8bitmime = (unsigned char)m->data[i] >= 0x80;
        m->needs_smtputf8 = hdr_utf8 || smtp_address_is_utf8(m->mail_from);
        for (i = 0; i < m->n_rcpts; i++)
                m->needs_smtputf8 |= smtp_address_is_utf8(m->rcpts[i]);
        *retp = TAKE_PTR(m);
        r = 0;
out:
        if (r < 0 && errp)
                *errp = (free(*errp), NULL);
        free(text.p);
        free(out.p);
        free(fields);
        free(value);
        smtp_address_list_free(rcpts.v, rcpts.n);
        smtp_address_list_free(from.v, from.n);
        smtp_address_list_free(hdr.v, hdr.n);
        return r;
}
