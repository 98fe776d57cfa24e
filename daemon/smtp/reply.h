/*
 * SMTP reply parser (RFC 5321 §4.2, RFC 3463 enhanced status codes, RFC 2034,
 * EHLO keywords): bytes in, typed events out. Pure: no I/O, no logging, no
 * allocation.
 *
 * A pull parser, used like the POP3 one:
 *
 *         for (;;) {
 *                 r = smtp_reply_parser_feed(p, data, size, &used, &ev);
 *                 if (r > 0)
 *                         → end the session: smtp_reply_strerror(r)
 *                 data += used, size -= used;
 *                 if (ev.kind == SMTP_EVENT_NONE)
 *                         break;
 *                 handle(&ev);
 *         }
 *
 * Each reply line gives SMTP_EVENT_LINE, and the last line of a reply is
 * followed by SMTP_EVENT_REPLY summing it up. The parser never consumes a byte
 * past the end of a reply (STARTTLS needs that). Before sending EHLO, call
 * smtp_reply_parser_expect_ehlo() so the next 250 reply is read as
 * capabilities. Event strings point into the parser and stay valid until the
 * next smtp_reply_parser_feed() call.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest reply line kept, CRLF excluded (RFC 5321 allows 512 octets with CRLF). */
#define SMTP_REPLY_LINE_MAX 2048
/* Most lines in one reply (an EHLO answer has about 15). */
#define SMTP_REPLY_LINES_MAX 128
/* The reply text kept for messages and logs; longer text is cut and flagged. */
#define SMTP_REPLY_TEXT_MAX     1024
#define SMTP_CAPS_AUTH_MAX      16
#define SMTP_CAPS_AUTH_NAME_MAX 20
#define SMTP_CAPS_DOMAIN_MAX    255

/* Positive results of smtp_reply_parser_feed()/_finish(): the server broke the protocol. */
enum {
        SMTP_REPLY_E_LINE_TOO_LONG = 1, /* a line longer than SMTP_REPLY_LINE_MAX */
        SMTP_REPLY_E_TOO_MANY_LINES,    /* a reply of more than SMTP_REPLY_LINES_MAX lines */
        SMTP_REPLY_E_NUL,               /* a NUL byte in a line */
        SMTP_REPLY_E_BARE_LF,           /* a line ended by LF without CR */
        SMTP_REPLY_E_BAD_CODE,          /* not "[2-5][0-5][0-9]" followed by SP, "-" or the end */
        SMTP_REPLY_E_CODE_MISMATCH,     /* the lines of one reply carry different codes */
        SMTP_REPLY_E_TRUNCATED,         /* the stream ended inside a reply (smtp_reply_parser_finish) */
};

/* RFC 5321 §4.2.1: what the first digit says. */
typedef enum SmtpReplyClass {
        SMTP_REPLY_CLASS_INVALID = 0,
        SMTP_REPLY_POSITIVE = 2,     /* 2yz: done */
        SMTP_REPLY_INTERMEDIATE = 3, /* 3yz: go on (DATA, AUTH) */
        SMTP_REPLY_TRANSIENT = 4,    /* 4yz: try again later */
        SMTP_REPLY_PERMANENT = 5,    /* 5yz: do not repeat as is */
} SmtpReplyClass;

/* RFC 3463 class.subject.detail; cls == 0 when the line has none. */
typedef struct SmtpEnhancedCode {
        unsigned cls;
        unsigned subject;
        unsigned detail;
} SmtpEnhancedCode;

/* Parsed EHLO answer. Unknown keywords are skipped; SIZE without a number gives size_max 0. */
typedef struct SmtpCaps {
        char domain[SMTP_CAPS_DOMAIN_MAX + 1]; /* first word of the first line; truncated */
        bool pipelining;
        bool size;
        uint64_t size_max; /* SIZE n: the largest message accepted, 0 when not stated */
        bool eightbitmime;
        bool smtputf8;
        bool chunking;
        bool binarymime;
        bool dsn;
        bool starttls;
        bool enhancedstatuscodes;
        bool auth;     /* AUTH or AUTH= seen */
        size_t n_auth; /* SASL mechanisms from both forms, upper-cased, deduplicated */
        char auth_mechs[SMTP_CAPS_AUTH_MAX][SMTP_CAPS_AUTH_NAME_MAX + 1];
} SmtpCaps;

typedef enum SmtpEventKind {
        SMTP_EVENT_NONE,  /* all input consumed, nothing to report */
        SMTP_EVENT_LINE,  /* one reply line: .line */
        SMTP_EVENT_REPLY, /* the reply is complete: .reply */
} SmtpEventKind;

typedef struct SmtpReplyLine {
        unsigned code;
        bool last;                 /* "250 " rather than "250-" */
        SmtpEnhancedCode enhanced; /* this line's enhanced code, if it starts with one */
        const char *text;          /* everything after the code and separator */
        const char *message;       /* text after the enhanced code (== text when none) */
} SmtpReplyLine;

typedef struct SmtpReply {
        unsigned code;
        SmtpReplyClass cls;
        SmtpEnhancedCode enhanced; /* the first line's */
        unsigned n_lines;
        const char *text; /* the lines' messages joined by '\n', at most SMTP_REPLY_TEXT_MAX bytes */
        bool text_truncated;
        const SmtpCaps *caps; /* EHLO answered 250: the capabilities (owned by the parser); else NULL */
} SmtpReply;

typedef struct SmtpEvent {
        SmtpEventKind kind;
        union {
                SmtpReplyLine line;
                SmtpReply reply;
        };
} SmtpEvent;

/* The parser state; embed it and call smtp_reply_parser_init(). It holds no resources. */
typedef struct SmtpReplyParser {
        int error;          /* sticky protocol error, 0 when none */
        bool ehlo;          /* the next reply answers EHLO */
        bool reply_pending; /* the REPLY event follows the LINE just returned */
        size_t len;         /* bytes held in line[] (a trailing CR included) */
        size_t text_len;
        SmtpReply reply; /* the reply being read; n_lines == 0 between replies */
        SmtpCaps caps;
        char line[SMTP_REPLY_LINE_MAX + 2];
        char text[SMTP_REPLY_TEXT_MAX + 1];
} SmtpReplyParser;

/* Sets p up between replies, not expecting EHLO. */
void smtp_reply_parser_init(SmtpReplyParser *p);

/* Reads the next reply as an EHLO answer (once); -EBUSY inside a reply. */
int smtp_reply_parser_expect_ehlo(SmtpReplyParser *p);

/* True while a reply has started but not ended. */
bool smtp_reply_parser_busy(const SmtpReplyParser *p);

/*
 * Consumes a prefix of data[0..size), reporting the next event in *evp and the
 * bytes consumed in *usedp. SMTP_EVENT_NONE means every byte was consumed with
 * nothing to report; call again (with the rest, possibly empty) until then.
 * Returns 0, or an SMTP_REPLY_E_* code when the server broke the protocol: the
 * parser then refuses all further input.
 */
int smtp_reply_parser_feed(SmtpReplyParser *p, const void *data, size_t size, size_t *usedp, SmtpEvent *evp);

/* Called when the stream ends: the sticky error, SMTP_REPLY_E_TRUNCATED inside a reply, else 0. */
int smtp_reply_parser_finish(const SmtpReplyParser *p);

/* The class of a reply code; SMTP_REPLY_CLASS_INVALID outside 200-599. */
SmtpReplyClass smtp_reply_class(unsigned code);

/* Shorthands: 2xx done, 3xx go on, 4xx retry later, 5xx give up. */
static inline bool smtp_reply_is_positive(unsigned code) {
        return smtp_reply_class(code) == SMTP_REPLY_POSITIVE;
}
static inline bool smtp_reply_is_intermediate(unsigned code) {
        return smtp_reply_class(code) == SMTP_REPLY_INTERMEDIATE;
}
static inline bool smtp_reply_is_transient(unsigned code) {
        return smtp_reply_class(code) == SMTP_REPLY_TRANSIENT;
}
static inline bool smtp_reply_is_permanent(unsigned code) {
        return smtp_reply_class(code) == SMTP_REPLY_PERMANENT;
}

/* True when caps lists the SASL mechanism name (case-insensitive). */
bool smtp_caps_has_auth(const SmtpCaps *caps, const char *name);

/* Static names for logs and tests; "unknown" for values out of range. */
const char *smtp_reply_strerror(int code);
const char *smtp_reply_class_to_string(SmtpReplyClass cls);
