/*
 * POP3 response parser (RFC 1939, RFC 2449, RFC 3206, RFC 5034): bytes in,
 * typed events out. Pure: no I/O, no logging, no allocation.
 *
 * POP3 responses do not say whether they are one line or many, so the caller
 * tells the parser, before each response, what the command it sent will get
 * back (pop3_parser_expect()). The parser is a pull parser:
 *
 *         for (;;) {
 *                 r = pop3_parser_feed(p, data, size, &used, &ev);
 *                 if (r > 0)
 *                         → end the session: pop3_parser_strerror(r)
 *                 data += used, size -= used;
 *                 if (ev.kind == POP3_EVENT_NONE)
 *                         break;                  (all input consumed)
 *                 handle(&ev);                    (may call pop3_parser_expect() after END)
 *         }
 *
 * Every response ends with POP3_EVENT_END, after which nothing is expected
 * until the caller says so again; bytes arriving then are an error (after STLS
 * that is what stops a command injection before the handshake). The parser
 * never consumes a byte past the end of a response.
 *
 * Event strings are NUL-terminated and point into the parser; they stay valid
 * until the next pop3_parser_feed() call. Body chunks point into the caller's
 * input (or, for a lone CR after a dropped dot, to static storage) and are
 * not NUL-terminated.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest protocol line kept, CRLF excluded (RFC 2449 allows 512 octets; SASL challenges are longer). */
#define POP3_PARSER_LINE_MAX 4096
/* Longest unique-id RFC 1939 allows; longer ones are passed on but flagged. */
#define POP3_UID_MAX                 70
#define POP3_CAPS_SASL_MAX           16
#define POP3_CAPS_SASL_NAME_MAX      20
#define POP3_CAPS_IMPLEMENTATION_MAX 255

/* Positive results of pop3_parser_feed()/pop3_parser_finish(): the server broke the protocol. */
enum {
        POP3_PARSER_E_LINE_TOO_LONG = 1, /* a status or listing line longer than POP3_PARSER_LINE_MAX */
        POP3_PARSER_E_NUL,               /* a NUL byte in a status or listing line */
        POP3_PARSER_E_BARE_LF,           /* a status or listing line ended by LF without CR */
        POP3_PARSER_E_BAD_STATUS,        /* neither +OK nor -ERR (nor "+" during AUTH) */
        POP3_PARSER_E_BAD_LISTING,       /* a STAT, LIST or UIDL answer without its numbers */
        POP3_PARSER_E_UNEXPECTED,        /* bytes while no response is expected */
        POP3_PARSER_E_TRUNCATED,         /* the stream ended inside a response (pop3_parser_finish) */
};

/* What the next response answers; set with pop3_parser_expect(). */
typedef enum Pop3Expect {
        POP3_EXPECT_NONE,     /* nothing outstanding: any byte is an error */
        POP3_EXPECT_GREETING, /* one status line; +OK may carry an APOP timestamp */
        POP3_EXPECT_SINGLE,   /* one status line (USER, PASS, DELE, NOOP, RSET, QUIT, STLS, APOP) */
        POP3_EXPECT_AUTH,     /* "+ challenge" lines (CONTINUE) until +OK or -ERR */
        POP3_EXPECT_STAT,     /* "+OK nn mm" → STAT */
        POP3_EXPECT_LIST_ONE, /* LIST n: "+OK n size" → LISTING */
        POP3_EXPECT_UIDL_ONE, /* UIDL n: "+OK n uid" → LISTING */
        POP3_EXPECT_CAPA,     /* multi-line capabilities → CAPA */
        POP3_EXPECT_LIST,     /* multi-line scan listing → LISTING per line */
        POP3_EXPECT_UIDL,     /* multi-line unique-id listing → LISTING per line */
        POP3_EXPECT_LINES,    /* any other multi-line answer → LINE per line */
        POP3_EXPECT_BODY,     /* RETR, TOP: multi-line message → BODY chunks */
        _POP3_EXPECT_MAX,
} Pop3Expect;

typedef enum Pop3EventKind {
        POP3_EVENT_NONE,     /* all input consumed, nothing to report */
        POP3_EVENT_STATUS,   /* the status line: .status */
        POP3_EVENT_CONTINUE, /* AUTH only: a "+ " line; .line is the challenge, the response goes on */
        POP3_EVENT_STAT,     /* after STATUS +OK to STAT: .stat */
        POP3_EVENT_LISTING,  /* one LIST or UIDL entry: .listing */
        POP3_EVENT_LINE,     /* one line of a LINES answer, dot-unstuffed, CRLF removed: .line */
        POP3_EVENT_BODY,     /* message bytes, dot-unstuffed, CRLF kept: .chunk (any size, may be split anywhere) */
        POP3_EVENT_CAPA,     /* the whole CAPA answer: .capa (owned by the parser) */
        POP3_EVENT_END,      /* the response is complete */
} Pop3EventKind;

/* Extended response codes (RFC 2449 "[...]" after the status indicator, RFC 3206). */
typedef enum Pop3RespCode {
        POP3_RESP_NONE,
        POP3_RESP_IN_USE,      /* maildrop locked by another session: retry later */
        POP3_RESP_LOGIN_DELAY, /* logged in too soon after the last login */
        POP3_RESP_SYS_TEMP,    /* temporary server problem */
        POP3_RESP_SYS_PERM,    /* permanent server problem */
        POP3_RESP_AUTH,        /* the credentials were refused */
        POP3_RESP_OTHER,       /* any other code: see code_text */
} Pop3RespCode;

typedef struct Pop3Status {
        bool ok;               /* +OK or -ERR */
        Pop3RespCode code;     /* POP3_RESP_NONE when the line has no "[...]" */
        const char *code_text; /* text inside the brackets, "" when none */
        const char *text;      /* the human text after the indicator and the code */
        const char *timestamp; /* GREETING only: the APOP "<...@...>" timestamp, or NULL */
        size_t timestamp_len;  /* brackets included */
} Pop3Status;

typedef struct Pop3Stat {
        uint32_t n_messages;
        uint64_t size;
} Pop3Stat;

typedef struct Pop3Listing {
        uint32_t msg;    /* message number */
        uint64_t size;   /* LIST: the size in octets; 0 for UIDL */
        const char *uid; /* UIDL: the unique-id (rest of the line); NULL for LIST */
        bool uid_valid;  /* UIDL: 1-70 characters of 0x21-0x7E (RFC 1939); false: do not trust it */
} Pop3Listing;

typedef struct Pop3Chunk {
        const char *data;
        size_t size;
} Pop3Chunk;

/* Parsed CAPA answer. Malformed capability lines are ignored, unknown ones skipped. */
typedef struct Pop3Caps {
        bool top;
        bool user;
        bool uidl;
        bool pipelining;
        bool stls;
        bool resp_codes;
        bool auth_resp_code;
        bool expire;           /* EXPIRE advertised */
        bool expire_never;     /* EXPIRE NEVER */
        bool expire_user;      /* "USER": the value may change after login */
        uint32_t expire_days;  /* EXPIRE n; 0 means messages go at the end of the session */
        bool login_delay;      /* LOGIN-DELAY advertised */
        bool login_delay_user; /* "USER": the value may change after login */
        uint32_t login_delay_seconds;
        size_t n_sasl; /* SASL mechanisms, upper-cased, deduplicated */
        char sasl[POP3_CAPS_SASL_MAX][POP3_CAPS_SASL_NAME_MAX + 1];
        char implementation[POP3_CAPS_IMPLEMENTATION_MAX + 1]; /* "" when not given; truncated */
} Pop3Caps;

typedef struct Pop3Event {
        Pop3EventKind kind;
        union {
                Pop3Status status;
                Pop3Stat stat;
                Pop3Listing listing;
                Pop3Chunk chunk;
                const char *line;
                const Pop3Caps *capa;
        };
} Pop3Event;

/* The parser state; embed it and call pop3_parser_init(). It holds no resources. */
typedef struct Pop3Parser {
        Pop3Expect expect; /* the response being read or awaited */
        int phase;         /* internal: where inside the response */
        int error;         /* sticky protocol error, 0 when none */
        size_t len;        /* bytes held in line[] (a trailing CR included) */
        unsigned n_queue;  /* events waiting to be returned, oldest at queue[i_queue] */
        unsigned i_queue;
        Pop3Event queue[3];
        Pop3Caps caps;
        char line[POP3_PARSER_LINE_MAX + 2];
} Pop3Parser;

/* Sets p up with nothing expected. */
void pop3_parser_init(Pop3Parser *p);

/*
 * Says what the next response answers. Only between responses (after END, or
 * before the first); -EBUSY while a response is being read, -EINVAL for a bad kind.
 */
int pop3_parser_expect(Pop3Parser *p, Pop3Expect expect);

/* True while a response is being read or awaited. */
bool pop3_parser_busy(const Pop3Parser *p);

/*
 * Consumes a prefix of data[0..size) and reports the next event in *evp,
 * setting *usedp to the bytes consumed. POP3_EVENT_NONE means every byte was
 * consumed with nothing to report; call again (with the rest of the input,
 * possibly empty) until then. Returns 0, or a POP3_PARSER_E_* code when the
 * server broke the protocol: the parser then refuses all further input.
 */
int pop3_parser_feed(Pop3Parser *p, const void *data, size_t size, size_t *usedp, Pop3Event *evp);

/*
 * Called when the stream ends: 0 when nothing was awaited, the sticky error if
 * any, otherwise POP3_PARSER_E_TRUNCATED.
 */
int pop3_parser_finish(const Pop3Parser *p);

/* True when caps lists the SASL mechanism name (case-insensitive). */
bool pop3_caps_has_sasl(const Pop3Caps *caps, const char *name);

/* Static names for logs and tests; "unknown" for values out of range. */
const char *pop3_parser_strerror(int code);
const char *pop3_event_kind_to_string(Pop3EventKind kind);
const char *pop3_expect_to_string(Pop3Expect expect);
const char *pop3_resp_code_to_string(Pop3RespCode code);
