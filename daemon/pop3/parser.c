/*
 * POP3 response parser. Status and listing lines are gathered in the
 * parser's fixed line buffer (so a line may arrive one byte at a time) and
 * capped at POP3_PARSER_LINE_MAX; message bodies are never buffered: they go
 * out as chunks pointing into the caller's input, cut only where a stuffed dot
 * is dropped, so memory stays bounded whatever the message size. The parser
 * owns nothing but its struct; the POP3 client embeds one per session and
 * runs it on the loop thread.
 *
 * A body line starts after CRLF (RFC 1939 lines end in CRLF; a bare LF inside
 * a message is passed on as data). At a line start a dot is always removed:
 * ".\r\n" ends the message, "..x" gives ".x", and a lone dot before other
 * bytes is dropped as RFC 1939 says.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "daemon/pop3/parser.h"

enum {
        PHASE_STATUS,      /* reading (or awaiting) the status line */
        PHASE_LINES,       /* reading the lines of a multi-line answer */
        PHASE_BODY_START,  /* body: at the start of a line */
        PHASE_BODY_DOT,    /* body: a line started with a dot, dropped */
        PHASE_BODY_DOT_CR, /* body: ".\r" at a line start, the CR held back */
        PHASE_BODY_MID,    /* body: inside a line, last byte not CR */
        PHASE_BODY_CR,     /* body: inside a line, last byte CR */
};

void pop3_parser_init(Pop3Parser *p) {
        memset(p, 0, sizeof *p);
}

int pop3_parser_expect(Pop3Parser *p, Pop3Expect expect) {
        if ((unsigned)expect >= _POP3_EXPECT_MAX)
                return -EINVAL;
        if (pop3_parser_busy(p))
                return -EBUSY;
        p->expect = expect;
        p->phase = PHASE_STATUS;
        p->len = 0;
        return 0;
}

bool pop3_parser_busy(const Pop3Parser *p) {
        return p->expect != POP3_EXPECT_NONE || p->i_queue < p->n_queue;
}

/*
 * One line can give up to three events (STATUS, STAT or LISTING, END). They
 * wait here and feed() hands out one per call, so the caller can act between
 * them, above all set the next expectation after END.
 */
static Pop3Event *queue_push(Pop3Parser *p, Pop3EventKind kind) {
        Pop3Event *ev = &p->queue[p->n_queue++];

        memset(ev, 0, sizeof *ev);
        ev->kind = kind;
        return ev;
}

/*
 * From here on bytes are refused until the caller sets a new expectation: a
 * reply injected after STLS or QUIT, or a server ahead of its commands, is
 * caught rather than taken as the answer to the next command.
 */
static void response_end(Pop3Parser *p) {
        queue_push(p, POP3_EVENT_END);
        p->expect = POP3_EXPECT_NONE;
        p->phase = PHASE_STATUS;
}

/*
 * Parses 1+ decimal digits up to max; returns the first byte after them, or
 * NULL. Overflow is an error, not a wrap: a wrapped size or count would feed
 * the retention rules a wrong number.
 */
static const char *parse_number(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (*s < '0' || *s > '9')
                return NULL;
        for (; *s >= '0' && *s <= '9'; s++) {
                unsigned d = (unsigned)(*s - '0');

                if (v > (max - d) / 10)
                        return NULL;
                v = v * 10 + d;
        }
        *ret = v;
        return s;
}

/* RFC 1939 says one space; some servers pad, which costs nothing to accept. */
static const char *skip_spaces(const char *s) {
        while (*s == ' ')
                s++;
        return s;
}

/* "nn mm" of STAT; RFC 1939 lets the server add text after a space. */
static int parse_stat(const char *s, Pop3Stat *st) {
        uint64_t n, size;

        s = parse_number(s, UINT32_MAX, &n);
        if (!s || *s != ' ')
                return POP3_PARSER_E_BAD_LISTING;
        s = parse_number(skip_spaces(s), UINT64_MAX, &size);
        if (!s || (*s && *s != ' '))
                return POP3_PARSER_E_BAD_LISTING;
        st->n_messages = (uint32_t)n;
        st->size = size;
        return 0;
}

static bool uid_is_valid(const char *uid) {
        size_t n = strlen(uid);

        if (n < 1 || n > POP3_UID_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)uid[i] < 0x21 || (unsigned char)uid[i] > 0x7e)
                        return false;
        return true;
}

/*
 * "n size [...]" (LIST) or "n uid" (UIDL). A bad uid is flagged, not an error:
 * the fetch engine falls back to hashing headers for such servers. A bad
 * message number is an error, since no command could refer to that message.
 */
static int parse_listing(const char *s, bool uidl, Pop3Listing *l) {
        uint64_t msg, size = 0;

        s = parse_number(s, UINT32_MAX, &msg);
        if (!s || msg == 0 || (*s && *s != ' '))
                return POP3_PARSER_E_BAD_LISTING;
        s = skip_spaces(s);
        if (uidl) {
                l->uid = s;
                l->uid_valid = uid_is_valid(s);
        } else {
                s = parse_number(s, UINT64_MAX, &size);
                if (!s || (*s && *s != ' '))
                        return POP3_PARSER_E_BAD_LISTING;
        }
        l->msg = (uint32_t)msg;
        l->size = size;
        return 0;
}

/*
 * Finds the first "<...@...>" of printable, space-free characters in a
 * greeting. APOP digests the exact bytes, brackets included (RFC 1939 §7), so
 * the event points at them rather than a copy.
 */
static void find_timestamp(const char *text, Pop3Status *st) {
        for (const char *lt = strchr(text, '<'); lt; lt = strchr(lt + 1, '<')) {
                bool at = false;
                const char *c;

                for (c = lt + 1; *c > 0x20 && *c < 0x7f && *c != '<' && *c != '>'; c++)
                        at = at || *c == '@';
                if (*c == '>' && at) {
                        st->timestamp = lt;
                        st->timestamp_len = (size_t)(c - lt) + 1;
                        return;
                }
        }
}

/* RFC 2449 §8 and RFC 3206 codes; the client acts on these (retry later, wait, give up). */
static const struct {
        const char *name;
        Pop3RespCode code;
} resp_codes[] = {
        {"IN-USE", POP3_RESP_IN_USE},     {"LOGIN-DELAY", POP3_RESP_LOGIN_DELAY},
        {"SYS/TEMP", POP3_RESP_SYS_TEMP}, {"SYS/PERM", POP3_RESP_SYS_PERM},
        {"AUTH", POP3_RESP_AUTH},
};

/* Splits "[CODE] text" (RFC 2449); a bracket that does not close a code is plain text. */
static void parse_resp_code(char *s, Pop3Status *st) {
        char *end;

        st->code_text = "";
        st->text = s;
        if (*s != '[')
                return;
        end = strchr(s, ']');
        if (!end || end == s + 1 || memchr(s, ' ', (size_t)(end - s)))
                return;
        *end = '\0';
        st->code_text = s + 1;
        st->text = end[1] == ' ' ? end + 2 : end + 1;
        st->code = POP3_RESP_OTHER;
        for (size_t i = 0; i < sizeof resp_codes / sizeof resp_codes[0]; i++)
                if (strcasecmp(st->code_text, resp_codes[i].name) == 0)
                        st->code = resp_codes[i].code;
}

/* A complete status line, read against the expectation: queues STATUS and what follows it. */
static int status_line(Pop3Parser *p, char *line) {
        Pop3Event *ev;
        char *rest;
        bool ok;
        int r;

        if (p->expect == POP3_EXPECT_AUTH && line[0] == '+' && (line[1] == ' ' || line[1] == '\0')) {
                /* RFC 5034 challenge; the exchange goes on, so no END. */
                queue_push(p, POP3_EVENT_CONTINUE)->line = line[1] ? line + 2 : line + 1;
                return 0;
        }
        if (strncasecmp(line, "+OK", 3) == 0 && (line[3] == ' ' || line[3] == '\0'))
                ok = true, rest = line + 3;
        else if (strncasecmp(line, "-ERR", 4) == 0 && (line[4] == ' ' || line[4] == '\0'))
                ok = false, rest = line + 4;
        else
                return POP3_PARSER_E_BAD_STATUS;
        if (*rest == ' ')
                rest++;

        ev = queue_push(p, POP3_EVENT_STATUS);
        ev->status.ok = ok;
        parse_resp_code(rest, &ev->status);
        if (!ok) {
                /* -ERR is always a single line, even to a multi-line command. */
                response_end(p);
                return 0;
        }

        switch (p->expect) {
        case POP3_EXPECT_GREETING:
                find_timestamp(ev->status.text, &ev->status);
                response_end(p);
                break;
        case POP3_EXPECT_STAT:
                r = parse_stat(ev->status.text, &queue_push(p, POP3_EVENT_STAT)->stat);
                if (r)
                        return r;
                response_end(p);
                break;
        case POP3_EXPECT_LIST_ONE:
        case POP3_EXPECT_UIDL_ONE:
                r = parse_listing(ev->status.text, p->expect == POP3_EXPECT_UIDL_ONE,
                                  &queue_push(p, POP3_EVENT_LISTING)->listing);
                if (r)
                        return r;
                response_end(p);
                break;
        case POP3_EXPECT_CAPA:
                memset(&p->caps, 0, sizeof p->caps);
                p->phase = PHASE_LINES;
                break;
        case POP3_EXPECT_LIST:
        case POP3_EXPECT_UIDL:
        case POP3_EXPECT_LINES:
                p->phase = PHASE_LINES;
                break;
        case POP3_EXPECT_BODY:
                p->phase = PHASE_BODY_START;
                break;
        default:
                response_end(p);
                break;
        }
        return 0;
}

/*
 * RFC 4422 mechanism names: 1-20 of A-Z 0-9 - _ (taken case-insensitively).
 * Other words are dropped: a name we could not send back in AUTH is of no use.
 */
static void caps_add_sasl(Pop3Caps *caps, const char *name, size_t n) {
        char up[POP3_CAPS_SASL_NAME_MAX + 1];

        if (n < 1 || n > POP3_CAPS_SASL_NAME_MAX)
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
        if (pop3_caps_has_sasl(caps, up) || caps->n_sasl >= POP3_CAPS_SASL_MAX)
                return;
        memcpy(caps->sasl[caps->n_sasl++], up, n + 1);
}

/* "n [USER]" (or "NEVER [USER]") of EXPIRE and LOGIN-DELAY; false when malformed (the line is then ignored). */
static bool parse_policy(const char *s, bool allow_never, bool *neverp, uint32_t *valuep, bool *userp) {
        uint64_t v = 0;
        const char *e;

        if (allow_never && strncasecmp(s, "NEVER", 5) == 0 && (s[5] == ' ' || s[5] == '\0')) {
                *neverp = true;
                e = s + 5;
        } else {
                e = parse_number(s, UINT32_MAX, &v);
                if (!e || (*e && *e != ' '))
                        return false;
        }
        *valuep = (uint32_t)v;
        *userp = strcasecmp(skip_spaces(e), "USER") == 0;
        return true;
}

/*
 * One CAPA line. Keywords are case-insensitive (RFC 2449 §6); unknown ones are
 * skipped, as servers add X- capabilities freely.
 */
static void caps_line(Pop3Caps *caps, const char *line) {
        static const struct {
                const char *name;
                size_t offset;
        } flags[] = {
                {"TOP", offsetof(Pop3Caps, top)},
                {"USER", offsetof(Pop3Caps, user)},
                {"UIDL", offsetof(Pop3Caps, uidl)},
                {"PIPELINING", offsetof(Pop3Caps, pipelining)},
                {"STLS", offsetof(Pop3Caps, stls)},
                {"RESP-CODES", offsetof(Pop3Caps, resp_codes)},
                {"AUTH-RESP-CODE", offsetof(Pop3Caps, auth_resp_code)},
        };
        size_t kw = strcspn(line, " ");
        const char *args = skip_spaces(line + kw);

        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
                if (kw == strlen(flags[i].name) && strncasecmp(line, flags[i].name, kw) == 0) {
                        *(bool *)((char *)caps + flags[i].offset) = true;
                        return;
                }

        if (kw == 4 && strncasecmp(line, "SASL", 4) == 0) {
                while (*args) {
                        size_t n = strcspn(args, " ");

                        caps_add_sasl(caps, args, n);
                        args = skip_spaces(args + n);
                }
        } else if (kw == 6 && strncasecmp(line, "EXPIRE", 6) == 0) {
                bool never = false, user = false;
                uint32_t days;

                if (parse_policy(args, true, &never, &days, &user)) {
                        caps->expire = true;
                        caps->expire_never = never;
                        caps->expire_days = days;
                        caps->expire_user = user;
                }
        } else if (kw == 11 && strncasecmp(line, "LOGIN-DELAY", 11) == 0) {
                bool never = false, user = false;
                uint32_t secs;

                if (parse_policy(args, false, &never, &secs, &user)) {
                        caps->login_delay = true;
                        caps->login_delay_seconds = secs;
                        caps->login_delay_user = user;
                }
        } else if (kw == 14 && strncasecmp(line, "IMPLEMENTATION", 14) == 0) {
                size_t n = strlen(args);

                if (n > POP3_CAPS_IMPLEMENTATION_MAX)
                        n = POP3_CAPS_IMPLEMENTATION_MAX;
                memcpy(caps->implementation, args, n);
                caps->implementation[n] = '\0';
        }
}

/* One line of a multi-line answer: "." alone ends it, a leading dot is stuffing (RFC 1939 §3). */
static int multi_line(Pop3Parser *p, char *line) {
        Pop3Event *ev;

        if (line[0] == '.') {
                if (line[1] == '\0') {
                        if (p->expect == POP3_EXPECT_CAPA)
                                queue_push(p, POP3_EVENT_CAPA)->capa = &p->caps;
                        response_end(p);
                        return 0;
                }
                line++;
        }

        switch (p->expect) {
        case POP3_EXPECT_CAPA:
                caps_line(&p->caps, line);
                return 0;
        case POP3_EXPECT_LIST:
        case POP3_EXPECT_UIDL:
                ev = queue_push(p, POP3_EVENT_LISTING);
                return parse_listing(line, p->expect == POP3_EXPECT_UIDL, &ev->listing);
        default:
                queue_push(p, POP3_EVENT_LINE)->line = line;
                return 0;
        }
}

/*
 * Appends the line bytes of s[0..n) to the line buffer, up to and including a
 * LF. Errors come in byte order (the first NUL or the first byte that does not
 * fit), so any split of the input gives the same result.
 */
static int line_take(Pop3Parser *p, const char *s, size_t n, size_t *usedp, bool *completep) {
        const char *lf = memchr(s, '\n', n);
        size_t seg = lf ? (size_t)(lf - s) : n;
        size_t room = sizeof p->line - 1 - p->len; /* CRLF-less text plus its CR */
        size_t scan = seg < room + 1 ? seg : room + 1;

        *completep = false;
        if (memchr(s, '\0', scan))
                return POP3_PARSER_E_NUL;
        if (seg > room)
                return POP3_PARSER_E_LINE_TOO_LONG;
        memcpy(p->line + p->len, s, seg);
        p->len += seg;
        *usedp = seg;
        if (!lf)
                return 0;
        if (p->len == 0 || p->line[p->len - 1] != '\r')
                return POP3_PARSER_E_BARE_LF;
        p->line[p->len - 1] = '\0';
        p->len = 0;
        *usedp = seg + 1;
        *completep = true;
        return 0;
}

/* Body bytes: returns how many of s[0..n) were consumed; a chunk, if any, is in *ev. */
static size_t body_take(Pop3Parser *p, const char *s, size_t n, Pop3Event *ev) {
        size_t i = 0, start = 0; /* the chunk is s[start..i) */

        while (i < n) {
                switch (p->phase) {
                case PHASE_BODY_START:
                        if (s[i] != '.') {
                                p->phase = PHASE_BODY_MID;
                                break;
                        }
                        if (i > start)
                                goto out; /* hand out what precedes the dot first */
                        p->phase = PHASE_BODY_DOT;
                        start = ++i;
                        break;
                case PHASE_BODY_DOT:
                        if (s[i] == '\r') {
                                p->phase = PHASE_BODY_DOT_CR;
                                start = ++i;
                        } else
                                p->phase = PHASE_BODY_MID;
                        break;
                case PHASE_BODY_DOT_CR:
                        /* Entered with an empty chunk: start == i here. */
                        if (s[i] == '\n') {
                                response_end(p);
                                return i + 1;
                        }
                        /* ".\r" then data: the dot goes, the held CR is message data. */
                        p->phase = PHASE_BODY_CR;
                        ev->kind = POP3_EVENT_BODY;
                        ev->chunk.data = "\r";
                        ev->chunk.size = 1;
                        return i;
                default: {
                        /* Inside a line only "CRLF" matters: let memchr find each LF, then look one byte back. */
                        const char *lf = memchr(s + i, '\n', n - i);
                        size_t j;
                        bool cr;

                        if (!lf) {
                                p->phase = s[n - 1] == '\r' ? PHASE_BODY_CR : PHASE_BODY_MID;
                                i = n;
                                goto out;
                        }
                        j = (size_t)(lf - s);
                        cr = j > i ? s[j - 1] == '\r' : p->phase == PHASE_BODY_CR;
                        p->phase = cr ? PHASE_BODY_START : PHASE_BODY_MID;
                        i = j + 1;
                        break;
                }
                }
        }
out:
        if (i > start) {
                ev->kind = POP3_EVENT_BODY;
                ev->chunk.data = s + start;
                ev->chunk.size = i - start;
        }
        return i;
}

/* Errors are sticky: the session ends, and nothing after a protocol error can be trusted. */
static int fail(Pop3Parser *p, int error) {
        p->error = error;
        return error;
}

int pop3_parser_feed(Pop3Parser *p, const void *data, size_t size, size_t *usedp, Pop3Event *evp) {
        const char *s = data;
        size_t i = 0;

        *usedp = 0;
        memset(evp, 0, sizeof *evp);
        if (p->error)
                return p->error;
        /* Events already queued come first, without consuming input. */
        if (p->i_queue < p->n_queue) {
                *evp = p->queue[p->i_queue++];
                return 0;
        }
        p->n_queue = p->i_queue = 0;

        while (i < size) {
                size_t n;
                bool complete;
                int r;

                if (p->phase >= PHASE_BODY_START) {
                        /* Bodies bypass the line buffer: chunks point into the input. */
                        i += body_take(p, s + i, size - i, evp);
                        if (evp->kind != POP3_EVENT_NONE)
                                break;
                } else {
                        if (p->expect == POP3_EXPECT_NONE)
                                return fail(p, POP3_PARSER_E_UNEXPECTED);
                        r = line_take(p, s + i, size - i, &n, &complete);
                        if (r)
                                return fail(p, r);
                        i += n;
                        if (!complete)
                                continue;
                        r = p->phase == PHASE_STATUS ? status_line(p, p->line) : multi_line(p, p->line);
                        if (r)
                                return fail(p, r);
                }
                /* Stop at the first event, so no byte past a response is consumed. */
                if (p->n_queue > 0) {
                        *evp = p->queue[p->i_queue++];
                        break;
                }
        }
        *usedp = i;
        return 0;
}

int pop3_parser_finish(const Pop3Parser *p) {
        if (p->error)
                return p->error;
        return p->expect != POP3_EXPECT_NONE ? POP3_PARSER_E_TRUNCATED : 0;
}

bool pop3_caps_has_sasl(const Pop3Caps *caps, const char *name) {
        for (size_t i = 0; i < caps->n_sasl; i++)
                if (strcasecmp(caps->sasl[i], name) == 0)
                        return true;
        return false;
}

const char *pop3_parser_strerror(int code) {
        static const char *const names[] = {
                [0] = "no error",
                [POP3_PARSER_E_LINE_TOO_LONG] = "line too long",
                [POP3_PARSER_E_NUL] = "NUL byte in a response line",
                [POP3_PARSER_E_BARE_LF] = "response line not ended by CRLF",
                [POP3_PARSER_E_BAD_STATUS] = "response is neither +OK nor -ERR",
                [POP3_PARSER_E_BAD_LISTING] = "malformed STAT, LIST or UIDL answer",
                [POP3_PARSER_E_UNEXPECTED] = "data from the server while no response was expected",
                [POP3_PARSER_E_TRUNCATED] = "connection ended inside a response",
        };

        if (code < 0 || (size_t)code >= sizeof names / sizeof names[0])
                return "unknown";
        return names[code];
}

const char *pop3_event_kind_to_string(Pop3EventKind kind) {
        static const char *const names[] = {
                [POP3_EVENT_NONE] = "none", [POP3_EVENT_STATUS] = "status",   [POP3_EVENT_CONTINUE] = "continue",
                [POP3_EVENT_STAT] = "stat", [POP3_EVENT_LISTING] = "listing", [POP3_EVENT_LINE] = "line",
                [POP3_EVENT_BODY] = "body", [POP3_EVENT_CAPA] = "capa",       [POP3_EVENT_END] = "end",
        };

        if ((unsigned)kind >= sizeof names / sizeof names[0])
                return "unknown";
        return names[kind];
}

const char *pop3_expect_to_string(Pop3Expect expect) {
        static const char *const names[_POP3_EXPECT_MAX] = {
                [POP3_EXPECT_NONE] = "none",         [POP3_EXPECT_GREETING] = "greeting",
                [POP3_EXPECT_SINGLE] = "single",     [POP3_EXPECT_AUTH] = "auth",
                [POP3_EXPECT_STAT] = "stat",         [POP3_EXPECT_LIST_ONE] = "list-one",
                [POP3_EXPECT_UIDL_ONE] = "uidl-one", [POP3_EXPECT_CAPA] = "capa",
                [POP3_EXPECT_LIST] = "list",         [POP3_EXPECT_UIDL] = "uidl",
                [POP3_EXPECT_LINES] = "lines",       [POP3_EXPECT_BODY] = "body",
        };

        if ((unsigned)expect >= _POP3_EXPECT_MAX)
                return "unknown";
        return names[expect];
}

const char *pop3_resp_code_to_string(Pop3RespCode code) {
        static const char *const names[] = {
                [POP3_RESP_NONE] = "none",
                [POP3_RESP_IN_USE] = "IN-USE",
                [POP3_RESP_LOGIN_DELAY] = "LOGIN-DELAY",
                [POP3_RESP_SYS_TEMP] = "SYS/TEMP",
                [POP3_RESP_SYS_PERM] = "SYS/PERM",
                [POP3_RESP_AUTH] = "AUTH",
                [POP3_RESP_OTHER] = "other",
        };

        if ((unsigned)code >= sizeof names / sizeof names[0])
                return "unknown";
        return names[code];
}
