/*
 * SMTP reply parser. Lines are gathered in the parser's fixed line buffer
 * (so a reply may arrive one byte at a time) and capped at
 * SMTP_REPLY_LINE_MAX; a reply is capped at SMTP_REPLY_LINES_MAX lines, and
 * its text is kept, cut at SMTP_REPLY_TEXT_MAX, for the error a user sees.
 * The parser owns nothing but its struct; the SMTP client embeds one per
 * session and runs it on the loop thread.
 *
 * Strictness: every line must end in CRLF, carry a valid code and the same
 * code as the first line (RFC 5321 §4.2.1); a server that does otherwise is
 * not one we can trust to have taken a message, so the session ends.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "daemon/smtp/reply.h"

void smtp_reply_parser_init(SmtpReplyParser *p) {
        memset(p, 0, sizeof *p);
}

bool smtp_reply_parser_busy(const SmtpReplyParser *p) {
        return p->reply.n_lines > 0 || p->len > 0 || p->reply_pending;
}

int smtp_reply_parser_expect_ehlo(SmtpReplyParser *p) {
        if (smtp_reply_parser_busy(p))
                return -EBUSY;
        p->ehlo = true;
        return 0;
}

/* The first digit is all a client may rely on (RFC 5321 §4.2.1); the others refine it. */
SmtpReplyClass smtp_reply_class(unsigned code) {
        if (code < 200 || code > 599)
                return SMTP_REPLY_CLASS_INVALID;
        return (SmtpReplyClass)(code / 100);
}

/* 1-3 digits (RFC 3463 limits subject and detail to three); returns the byte after them or NULL. */
static const char *parse_small(const char *s, unsigned *ret) {
        unsigned v = 0;
        int n = 0;

        for (; *s >= '0' && *s <= '9'; s++, n++) {
                if (n == 3)
                        return NULL;
                v = v * 10 + (unsigned)(*s - '0');
        }
        if (n == 0)
                return NULL;
        *ret = v;
        return s;
}

/*
 * RFC 3463 "class.subject.detail" then SP or the end; returns the message
 * after it, or NULL. Only classes 2, 4 and 5 exist. Whether the class matches
 * the reply code is not checked: the reply code decides, the enhanced code
 * only explains.
 */
static const char *parse_enhanced(const char *s, SmtpEnhancedCode *e) {
        SmtpEnhancedCode c;

        if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
                return NULL;
        c.cls = (unsigned)(s[0] - '0');
        s = parse_small(s + 2, &c.subject);
        if (!s || *s != '.')
                return NULL;
        s = parse_small(s + 1, &c.detail);
        if (!s || (*s != ' ' && *s != '\0'))
                return NULL;
        *e = c;
        return *s == ' ' ? s + 1 : s;
}

/*
 * Adds a line's message to the reply text, '\n' between lines. The text is what
 * a user reads when a message fails ("the server's words"), so it is kept up
 * to a bound and cut, never dropped.
 */
static void text_append(SmtpReplyParser *p, const char *s) {
        size_t n = strlen(s), sep = p->reply.n_lines > 1;
        size_t room = SMTP_REPLY_TEXT_MAX - p->text_len;

        if (sep + n > room) {
                p->reply.text_truncated = true;
                n = room > sep ? room - sep : 0;
                if (room < sep)
                        return;
        }
        if (sep)
                p->text[p->text_len++] = '\n';
        memcpy(p->text + p->text_len, s, n);
        p->text_len += n;
        p->text[p->text_len] = '\0';
}

/* RFC 4422 names only, upper-cased and deduplicated; other words are dropped (we could not ask for them). */
static void caps_add_auth(SmtpCaps *caps, const char *name, size_t n) {
        char up[SMTP_CAPS_AUTH_NAME_MAX + 1];

        if (n < 1 || n > SMTP_CAPS_AUTH_NAME_MAX)
                return;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];

                if (c >= 'a' && c <= 'z')
                        c = (char)(c - 'a' + 'A');
                if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
                        return;
                up[i] = c;
        }
        up[n] = '\0';
        if (smtp_caps_has_auth(caps, up) || caps->n_auth >= SMTP_CAPS_AUTH_MAX)
                return;
        memcpy(caps->auth_mechs[caps->n_auth++], up, n + 1);
}

static const char *skip_spaces(const char *s) {
        while (*s == ' ')
                s++;
        return s;
}

/*
 * One "keyword [params]" line of an EHLO answer (RFC 5321 §4.1.1.1), keywords
 * case-insensitive. "=" ends a keyword too, for the legacy "AUTH=" form; a
 * flag keyword written with "=" (e.g. "STARTTLS=x") is not that keyword.
 */
static void caps_line(SmtpCaps *caps, const char *line) {
        static const struct {
                const char *name;
                size_t offset;
        } flags[] = {
                {"PIPELINING", offsetof(SmtpCaps, pipelining)},
                {"8BITMIME", offsetof(SmtpCaps, eightbitmime)},
                {"SMTPUTF8", offsetof(SmtpCaps, smtputf8)},
                {"CHUNKING", offsetof(SmtpCaps, chunking)},
                {"BINARYMIME", offsetof(SmtpCaps, binarymime)},
                {"DSN", offsetof(SmtpCaps, dsn)},
                {"STARTTLS", offsetof(SmtpCaps, starttls)},
                {"ENHANCEDSTATUSCODES", offsetof(SmtpCaps, enhancedstatuscodes)},
        };
        size_t kw = strcspn(line, " =");
        const char *args = line + kw;

        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
                if (kw == strlen(flags[i].name) && strncasecmp(line, flags[i].name, kw) == 0 && *args != '=') {
                        *(bool *)((char *)caps + flags[i].offset) = true;
                        return;
                }

        if (kw == 4 && strncasecmp(line, "AUTH", 4) == 0) {
                /* "AUTH PLAIN LOGIN", or the pre-RFC 2554 "AUTH=PLAIN LOGIN" some servers still add. */
                caps->auth = true;
                args = skip_spaces(args + (*args == '='));
                while (*args) {
                        size_t n = strcspn(args, " ");

                        caps_add_auth(caps, args, n);
                        args = skip_spaces(args + n);
                }
        } else if (kw == 4 && strncasecmp(line, "SIZE", 4) == 0 && *args != '=') {
                uint64_t v = 0;
                const char *s = skip_spaces(args);

                /* RFC 1870: no number, or one we cannot read, means no stated limit. */
                caps->size = true;
                for (; *s >= '0' && *s <= '9'; s++) {
                        if (v > (UINT64_MAX - 9) / 10) {
                                v = 0;
                                break;
                        }
                        v = v * 10 + (unsigned)(*s - '0');
                }
                caps->size_max = (*s == '\0' || *s == ' ') ? v : 0;
        }
}

/* The first line of an EHLO answer names the server ("250-mx.example.org greets you"). */
static void caps_domain(SmtpCaps *caps, const char *text) {
        size_t n = strcspn(text, " ");

        if (n > SMTP_CAPS_DOMAIN_MAX)
                n = SMTP_CAPS_DOMAIN_MAX;
        memcpy(caps->domain, text, n);
        caps->domain[n] = '\0';
}

/*
 * A complete line: checks the code (and that it matches the reply's first
 * line), fills the LINE event, adds to the text and the capabilities, and on
 * the last line makes the REPLY event pending.
 */
static int reply_line(SmtpReplyParser *p, char *line, SmtpEvent *ev) {
        SmtpReplyLine *l = &ev->line;
        SmtpEnhancedCode e = {0};
        const char *msg;
        unsigned code;
        bool first = p->reply.n_lines == 0;

        if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' || line[2] < '0' || line[2] > '9' ||
            (line[3] != ' ' && line[3] != '-' && line[3] != '\0'))
                return SMTP_REPLY_E_BAD_CODE;
        code = (unsigned)((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
        if (!first && code != p->reply.code)
                return SMTP_REPLY_E_CODE_MISMATCH;
        if (p->reply.n_lines >= SMTP_REPLY_LINES_MAX)
                return SMTP_REPLY_E_TOO_MANY_LINES;

        /* The first line starts the reply; EHLO caps are reset only for a 250, the one answer that carries them. */
        if (first) {
                memset(&p->reply, 0, sizeof p->reply);
                p->reply.code = code;
                p->reply.cls = smtp_reply_class(code);
                p->text_len = 0;
                p->text[0] = '\0';
                if (p->ehlo && code == 250)
                        memset(&p->caps, 0, sizeof p->caps);
        }
        p->reply.n_lines++;

        ev->kind = SMTP_EVENT_LINE;
        l->code = code;
        l->last = line[3] != '-';
        l->text = line[3] ? line + 4 : line + 3;
        msg = parse_enhanced(l->text, &e);
        l->enhanced = e;
        l->message = msg ? msg : l->text;
        if (first)
                p->reply.enhanced = e;
        text_append(p, l->message);

        if (p->ehlo && code == 250) {
                if (first)
                        caps_domain(&p->caps, l->text);
                else
                        caps_line(&p->caps, l->text);
        }

        if (l->last) {
                p->reply.text = p->text;
                p->reply.caps = p->ehlo && code == 250 ? &p->caps : NULL;
                p->reply_pending = true;
        }
        return 0;
}

/* As in the POP3 parser: errors in byte order, so any split gives the same result. */
static int line_take(SmtpReplyParser *p, const char *s, size_t n, size_t *usedp, bool *completep) {
        const char *lf = memchr(s, '\n', n);
        size_t seg = lf ? (size_t)(lf - s) : n;
        size_t room = sizeof p->line - 1 - p->len;
        size_t scan = seg < room + 1 ? seg : room + 1;

        *completep = false;
        if (memchr(s, '\0', scan))
                return SMTP_REPLY_E_NUL;
        if (seg > room)
                return SMTP_REPLY_E_LINE_TOO_LONG;
        memcpy(p->line + p->len, s, seg);
        p->len += seg;
        *usedp = seg;
        if (!lf)
                return 0;
        if (p->len == 0 || p->line[p->len - 1] != '\r')
                return SMTP_REPLY_E_BARE_LF;
        p->line[p->len - 1] = '\0';
        p->len = 0;
        *usedp = seg + 1;
        *completep = true;
        return 0;
}

/* Errors are sticky: the session ends, and nothing after a protocol error can be trusted. */
static int fail(SmtpReplyParser *p, int error) {
        p->error = error;
        return error;
}

int smtp_reply_parser_feed(SmtpReplyParser *p, const void *data, size_t size, size_t *usedp, SmtpEvent *evp) {
        const char *s = data;
        size_t i = 0;

        *usedp = 0;
        memset(evp, 0, sizeof *evp);
        if (p->error)
                return p->error;
        /* The REPLY after a last line comes without consuming input: the next bytes may be TLS (STARTTLS). */
        if (p->reply_pending) {
                evp->kind = SMTP_EVENT_REPLY;
                evp->reply = p->reply;
                p->reply_pending = false;
                p->reply.n_lines = 0;
                p->ehlo = false;
                return 0;
        }

        while (i < size) {
                size_t n;
                bool complete;
                int r;

                r = line_take(p, s + i, size - i, &n, &complete);
                if (r)
                        return fail(p, r);
                i += n;
                if (!complete)
                        continue;
                r = reply_line(p, p->line, evp);
                if (r)
                        return fail(p, r);
                break; /* one line per call: no byte past a reply is consumed */
        }
        *usedp = i;
        return 0;
}

int smtp_reply_parser_finish(const SmtpReplyParser *p) {
        if (p->error)
                return p->error;
        return p->reply.n_lines > 0 || p->len > 0 ? SMTP_REPLY_E_TRUNCATED : 0;
}

bool smtp_caps_has_auth(const SmtpCaps *caps, const char *name) {
        for (size_t i = 0; i < caps->n_auth; i++)
                if (strcasecmp(caps->auth_mechs[i], name) == 0)
                        return true;
        return false;
}

const char *smtp_reply_strerror(int code) {
        static const char *const names[] = {
                [0] = "no error",
                [SMTP_REPLY_E_LINE_TOO_LONG] = "reply line too long",
                [SMTP_REPLY_E_TOO_MANY_LINES] = "reply has too many lines",
                [SMTP_REPLY_E_NUL] = "NUL byte in a reply",
                [SMTP_REPLY_E_BARE_LF] = "reply line not ended by CRLF",
                [SMTP_REPLY_E_BAD_CODE] = "malformed reply code",
                [SMTP_REPLY_E_CODE_MISMATCH] = "reply lines with different codes",
                [SMTP_REPLY_E_TRUNCATED] = "connection ended inside a reply",
        };

        if (code < 0 || (size_t)code >= sizeof names / sizeof names[0])
                return "unknown";
        return names[code];
}

const char *smtp_reply_class_to_string(SmtpReplyClass cls) {
        switch (cls) {
        case SMTP_REPLY_POSITIVE:
                return "positive";
        case SMTP_REPLY_INTERMEDIATE:
                return "intermediate";
        case SMTP_REPLY_TRANSIENT:
                return "transient";
        case SMTP_REPLY_PERMANENT:
                return "permanent";
        default:
                return "invalid";
        }
}
