/*
 * IMAP4rev1/rev2 server response parser: bytes in, typed events out.
 *
 * imap_parser_feed() takes the server's bytes split anywhere. Every complete
 * response becomes one ImapEvent; message literals in FETCH (BODY[...],
 * BINARY[...], RFC822*) are not buffered but delivered as BODY_START, BODY_DATA
 * (pointing into the caller's bytes) and BODY_END events before the FETCH event
 * that carries the response's other items. Everything an event points to lives
 * until the callback returns.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

/* Results of imap_parser_feed() and friends besides 0 and negative errno. */
enum {
        IMAP_PARSER_PAUSED = 1,  /* the callback asked to stop; feed the unconsumed rest later */
        IMAP_PARSER_E_SYNTAX,    /* the server broke the grammar */
        IMAP_PARSER_E_TOO_BIG,   /* a line, literal, number, list or nesting exceeded a limit */
        IMAP_PARSER_E_TRUNCATED, /* imap_parser_finish() inside a response */
};

/* "*" in a sequence set; never a valid message number or UID. */
#define IMAP_SEQ_STAR UINT32_C(0)

/* A string from the server: s is NUL-terminated (it may hold NULs too); s == NULL for NIL. */
typedef struct ImapStr {
        const char *s;
        size_t len;
} ImapStr;

typedef struct ImapStrList {
        const ImapStr *v;
        size_t n;
} ImapStrList;

/* first <= last unless one of them is IMAP_SEQ_STAR. */
typedef struct ImapRange {
        uint32_t first, last;
} ImapRange;

typedef struct ImapSeqSet {
        const ImapRange *v;
        size_t n;
} ImapSeqSet;

typedef struct ImapParam {
        ImapStr name, value;
} ImapParam;

typedef struct ImapParams {
        const ImapParam *v;
        size_t n;
} ImapParams;

typedef enum ImapEventKind {
        IMAP_EVENT_STATUS,       /* tagged or untagged OK/NO/BAD, PREAUTH, BYE */
        IMAP_EVENT_CONTINUATION, /* "+ text" */
        IMAP_EVENT_CAPABILITY,
        IMAP_EVENT_ENABLED,
        IMAP_EVENT_FLAGS,
        IMAP_EVENT_LIST,           /* LIST or LSUB */
        IMAP_EVENT_MAILBOX_STATUS, /* untagged STATUS */
        IMAP_EVENT_SEARCH,
        IMAP_EVENT_ESEARCH,
        IMAP_EVENT_EXISTS,
        IMAP_EVENT_RECENT,
        IMAP_EVENT_EXPUNGE,
        IMAP_EVENT_VANISHED,
        IMAP_EVENT_FETCH,
        IMAP_EVENT_BODY_START, /* a FETCH body literal begins; .body */
        IMAP_EVENT_BODY_DATA,  /* .body.data/.body.len: the next bytes of it */
        IMAP_EVENT_BODY_END,
        IMAP_EVENT_QUOTA,
        IMAP_EVENT_QUOTAROOT,
        IMAP_EVENT_ID,
        IMAP_EVENT_NAMESPACE,
        IMAP_EVENT_OTHER, /* an untagged response this parser does not know */
        _IMAP_EVENT_MAX,
} ImapEventKind;

typedef enum ImapStatusKind {
        IMAP_STATUS_OK,
        IMAP_STATUS_NO,
        IMAP_STATUS_BAD,
        IMAP_STATUS_PREAUTH,
        IMAP_STATUS_BYE,
} ImapStatusKind;

typedef enum ImapCodeKind {
        IMAP_CODE_NONE,  /* no [code] */
        IMAP_CODE_OTHER, /* .name and .text hold it */
        IMAP_CODE_ALERT,
        IMAP_CODE_BADCHARSET, /* .list: the charsets, maybe empty */
        IMAP_CODE_CAPABILITY, /* .list */
        IMAP_CODE_PARSE,
        IMAP_CODE_PERMANENTFLAGS, /* .list */
        IMAP_CODE_READ_ONLY,
        IMAP_CODE_READ_WRITE,
        IMAP_CODE_TRYCREATE,
        IMAP_CODE_UIDNEXT,       /* .number */
        IMAP_CODE_UIDVALIDITY,   /* .number */
        IMAP_CODE_UNSEEN,        /* .number */
        IMAP_CODE_HIGHESTMODSEQ, /* .number */
        IMAP_CODE_NOMODSEQ,
        IMAP_CODE_MODIFIED,  /* .set */
        IMAP_CODE_APPENDUID, /* .uidvalidity, .set: the new UIDs */
        IMAP_CODE_COPYUID,   /* .uidvalidity, .src, .set: dst, in the order of src */
        IMAP_CODE_CLOSED,
        IMAP_CODE_UIDNOTSTICKY,
        IMAP_CODE_OVERQUOTA,
} ImapCodeKind;

typedef struct ImapRespCode {
        ImapCodeKind kind;
        ImapStr name; /* the code's atom as sent */
        ImapStr text; /* IMAP_CODE_OTHER: what follows the atom up to "]" */
        uint64_t number;
        uint32_t uidvalidity;
        ImapStrList list;
        ImapSeqSet src, set;
} ImapRespCode;

typedef struct ImapStatusResp {
        ImapStatusKind status;
        ImapRespCode code;
        ImapStr text;
} ImapStatusResp;

/* LIST attributes; unknown ones are only in .attrs. */
enum {
        IMAP_LIST_NOINFERIORS = 1u << 0,
        IMAP_LIST_NOSELECT = 1u << 1,
        IMAP_LIST_MARKED = 1u << 2,
        IMAP_LIST_UNMARKED = 1u << 3,
        IMAP_LIST_NONEXISTENT = 1u << 4,
        IMAP_LIST_SUBSCRIBED = 1u << 5,
        IMAP_LIST_REMOTE = 1u << 6,
        IMAP_LIST_HASCHILDREN = 1u << 7,
        IMAP_LIST_HASNOCHILDREN = 1u << 8,
        IMAP_LIST_ALL = 1u << 9,
        IMAP_LIST_ARCHIVE = 1u << 10,
        IMAP_LIST_DRAFTS = 1u << 11,
        IMAP_LIST_FLAGGED = 1u << 12,
        IMAP_LIST_JUNK = 1u << 13,
        IMAP_LIST_SENT = 1u << 14,
        IMAP_LIST_TRASH = 1u << 15,
        IMAP_LIST_IMPORTANT = 1u << 16,
};

typedef struct ImapList {
        bool lsub;
        ImapStrList attrs;
        unsigned attr_mask;    /* IMAP_LIST_* */
        char delim;            /* 0 for NIL */
        ImapStr mailbox;       /* "INBOX" in any case is given as "INBOX" */
        ImapStrList childinfo; /* LIST-EXTENDED CHILDINFO */
        ImapStr oldname;       /* LIST-EXTENDED OLDNAME, or NIL */
} ImapList;

/* Which ImapMailboxStatus fields the server sent. */
enum {
        IMAP_MS_MESSAGES = 1u << 0,
        IMAP_MS_RECENT = 1u << 1,
        IMAP_MS_UIDNEXT = 1u << 2,
        IMAP_MS_UIDVALIDITY = 1u << 3,
        IMAP_MS_UNSEEN = 1u << 4,
        IMAP_MS_HIGHESTMODSEQ = 1u << 5,
        IMAP_MS_SIZE = 1u << 6,
        IMAP_MS_DELETED = 1u << 7,
};

typedef struct ImapMailboxStatus {
        ImapStr mailbox;
        unsigned have; /* IMAP_MS_* */
        uint32_t messages, recent, uidnext, uidvalidity, unseen, deleted;
        uint64_t highestmodseq, size;
} ImapMailboxStatus;

typedef struct ImapSearch {
        const uint32_t *v;
        size_t n;
        bool has_modseq;
        uint64_t modseq;
} ImapSearch;

enum {
        IMAP_ES_MIN = 1u << 0,
        IMAP_ES_MAX = 1u << 1,
        IMAP_ES_COUNT = 1u << 2,
        IMAP_ES_ALL = 1u << 3,
        IMAP_ES_MODSEQ = 1u << 4,
};

typedef struct ImapEsearch {
        ImapStr tag; /* the command's tag, or NIL */
        bool uid;
        unsigned have; /* IMAP_ES_* */
        uint32_t min, max, count;
        uint64_t modseq;
        ImapSeqSet all;
} ImapEsearch;

typedef struct ImapVanished {
        bool earlier;
        ImapSeqSet uids;
} ImapVanished;

typedef enum ImapAddressKind {
        IMAP_ADDRESS_MAILBOX,
        IMAP_ADDRESS_GROUP_START, /* .mailbox is the group's name */
        IMAP_ADDRESS_GROUP_END,
} ImapAddressKind;

typedef struct ImapAddress {
        ImapAddressKind kind;
        ImapStr name, adl, mailbox, host;
} ImapAddress;

typedef struct ImapAddressList {
        const ImapAddress *v;
        size_t n;
} ImapAddressList;

typedef struct ImapEnvelope {
        ImapStr date, subject;
        ImapAddressList from, sender, reply_to, to, cc, bcc;
        ImapStr in_reply_to, message_id;
} ImapEnvelope;

typedef struct ImapBodyPart ImapBodyPart;

/* One BODYSTRUCTURE node. Extension fields are NIL/empty when not sent. */
struct ImapBodyPart {
        bool multipart;
        ImapStr type, subtype; /* type is "MULTIPART" for multiparts */
        const ImapBodyPart *parts;
        size_t n_parts;
        ImapParams params;
        ImapStr id, description, encoding;
        uint64_t octets, lines;       /* lines: text/ and message/rfc822 parts */
        const ImapEnvelope *envelope; /* message/rfc822 and message/global */
        const ImapBodyPart *body;     /* ditto */
        bool has_ext;
        ImapStr md5;
        ImapStr disposition;
        ImapParams disposition_params;
        ImapStrList language;
        ImapStr location;
};

typedef enum ImapBodyItem {
        IMAP_BODY_SECTION,     /* BODY[section]<origin> */
        IMAP_BODY_BINARY,      /* BINARY[section]<origin> */
        IMAP_BODY_BINARY_SIZE, /* BINARY.SIZE[section]: .size only */
        IMAP_BODY_RFC822,
        IMAP_BODY_RFC822_HEADER,
        IMAP_BODY_RFC822_TEXT,
} ImapBodyItem;

/* A body item of a FETCH response. */
typedef struct ImapFetchBody {
        ImapBodyItem item;
        ImapStr section; /* between "[" and "]" as sent, e.g. "", "1.2", "HEADER.FIELDS (SUBJECT)" */
        bool has_origin;
        uint32_t origin;
        uint64_t size;
        bool nil;      /* the server sent NIL */
        bool streamed; /* came as a literal, only through BODY_* events */
        ImapStr data;  /* a quoted value (also sent as BODY_* events); NIL when streamed or nil */
} ImapFetchBody;

/* Which ImapFetch fields the server sent. */
enum {
        IMAP_FETCH_UID = 1u << 0,
        IMAP_FETCH_FLAGS = 1u << 1,
        IMAP_FETCH_INTERNALDATE = 1u << 2,
        IMAP_FETCH_RFC822_SIZE = 1u << 3,
        IMAP_FETCH_MODSEQ = 1u << 4,
        IMAP_FETCH_ENVELOPE = 1u << 5,
        IMAP_FETCH_BODYSTRUCTURE = 1u << 6, /* BODYSTRUCTURE, or BODY without extension data */
};

typedef struct ImapFetch {
        uint32_t seq;
        unsigned have; /* IMAP_FETCH_* */
        uint32_t uid;
        ImapStrList flags;
        ImapStr internaldate;      /* as sent */
        int64_t internaldate_unix; /* seconds since the epoch, UTC */
        uint64_t rfc822_size;
        uint64_t modseq;
        const ImapEnvelope *envelope;
        const ImapBodyPart *body;
        const ImapFetchBody *bodies;
        size_t n_bodies;
        ImapStrList unknown; /* names of items not understood, values skipped */
} ImapFetch;

/* BODY_START, BODY_DATA, BODY_END. */
typedef struct ImapBodyChunk {
        uint32_t seq;
        uint32_t uid; /* 0 when the server sends UID after the body; the FETCH event has it */
        ImapBodyItem item;
        ImapStr section;
        bool has_origin;
        uint32_t origin;
        uint64_t size;       /* the whole literal */
        const uint8_t *data; /* BODY_DATA only */
        size_t len;
} ImapBodyChunk;

typedef struct ImapQuotaResource {
        ImapStr name;
        uint64_t usage, limit;
} ImapQuotaResource;

typedef struct ImapQuota {
        ImapStr root;
        const ImapQuotaResource *v;
        size_t n;
} ImapQuota;

typedef struct ImapQuotaRoot {
        ImapStr mailbox;
        ImapStrList roots;
} ImapQuotaRoot;

typedef struct ImapId {
        bool nil;
        ImapParams params;
} ImapId;

typedef struct ImapNamespaceDesc {
        ImapStr prefix;
        char delim; /* 0 for NIL */
} ImapNamespaceDesc;

typedef struct ImapNamespaceList {
        const ImapNamespaceDesc *v;
        size_t n; /* 0 for NIL */
} ImapNamespaceList;

typedef struct ImapNamespace {
        ImapNamespaceList personal, other, shared;
} ImapNamespace;

typedef struct ImapOther {
        ImapStr name; /* the response's atom */
        bool has_number;
        uint32_t number; /* "* 3 XFOO" */
        ImapStr rest;    /* the rest of the response; a literal shows as "{n}" and its bytes */
} ImapOther;

typedef struct ImapEvent {
        ImapEventKind kind;
        ImapStr tag; /* STATUS: the tag; NIL when untagged */
        union {
                ImapStatusResp status;    /* STATUS, CONTINUATION (.text only) */
                ImapStrList capabilities; /* CAPABILITY, ENABLED */
                ImapStrList flags;        /* FLAGS */
                ImapList list;
                ImapMailboxStatus mailbox_status;
                ImapSearch search;
                ImapEsearch esearch;
                uint32_t number; /* EXISTS, RECENT, EXPUNGE */
                ImapVanished vanished;
                ImapFetch fetch;
                ImapBodyChunk body; /* BODY_* */
                ImapQuota quota;
                ImapQuotaRoot quotaroot;
                ImapId id;
                ImapNamespace namespace_;
                ImapOther other;
        };
} ImapEvent;

/*
 * Called once per event. Return 0 to go on, IMAP_PARSER_PAUSED to make
 * imap_parser_feed() return right after this event, or a negative errno to
 * abort: feed() returns it and the parser is unusable from then on.
 */
typedef int (*ImapEventFn)(const ImapEvent *ev, void *userdata);

/*
 * What the parser accepts. Memory stays under about max_response + max_arena
 * + 32 * max_literals bytes whatever the server sends.
 */
typedef struct ImapParserLimits {
        size_t max_response; /* bytes of one response, small literals included, body literals not */
        size_t max_literal;  /* one literal that is not a FETCH body */
        uint64_t max_body;   /* one FETCH body literal (streamed) */
        size_t max_arena;    /* parsed structures of one response */
        unsigned max_depth;  /* nested parentheses */
        size_t max_items;    /* elements of one list */
        size_t max_literals; /* literals in one response */
} ImapParserLimits;

/* The defaults: 2 MiB, 1 MiB, 4 GiB - 1, 8 MiB, 32, 500000, 10000. Zero fields take these. */
extern const ImapParserLimits imap_parser_default_limits;

typedef struct ImapParser ImapParser;

/* Creates a parser that reports to cb. limits may be NULL for the defaults. Returns NULL on ENOMEM. */
ImapParser *imap_parser_new(const ImapParserLimits *limits, ImapEventFn cb, void *userdata);

/* Frees p; accepts NULL; returns NULL. */
ImapParser *imap_parser_free(ImapParser *p);
DEFINE_CLEANUP_FUNC(ImapParser *, imap_parser_free);

/*
 * Parses len bytes, calling the callback for each event. Returns 0 when all
 * were consumed; IMAP_PARSER_PAUSED when the callback paused (*n_consumedp
 * says how many were; feed the rest, or len 0, to go on); IMAP_PARSER_E_*
 * when the server's bytes are wrong (imap_parser_get_error() says where and
 * why; every later call returns the same code); or the callback's negative
 * errno, or -ENOMEM. n_consumedp may be NULL.
 */
int imap_parser_feed(ImapParser *p, const void *data, size_t len, size_t *n_consumedp);

/* At end of stream: 0 when p stands between responses, IMAP_PARSER_E_TRUNCATED (or the earlier error) otherwise. */
int imap_parser_finish(ImapParser *p);

/*
 * The error p stopped at: returns its code (0 if none) and sets the stream
 * offset of the offending byte and a static reason. Pointers may be NULL.
 */
int imap_parser_get_error(const ImapParser *p, uint64_t *offsetp, const char **reasonp);

/* "paused", "syntax error", ... for a code; strerror-like for negative errno. */
const char *imap_parser_code_to_string(int code);

/* "STATUS", "FETCH", ... */
const char *imap_event_kind_to_string(ImapEventKind kind);

/* One line describing ev, for tests and debug logs; malloc()ed, NULL on ENOMEM. */
char *imap_event_to_string(const ImapEvent *ev);

/*
 * Parses an IMAP sequence set ("1:3,5,7:*") into ranges in the order sent,
 * each with first <= last unless one end is IMAP_SEQ_STAR. *rangesp is
 * malloc()ed. Returns 0, IMAP_PARSER_E_SYNTAX, or -ENOMEM.
 */
int imap_seqset_parse(const char *s, size_t len, ImapRange **rangesp, size_t *n_rangesp);

/*
 * Replaces IMAP_SEQ_STAR with star, sorts and merges overlapping and adjacent
 * ranges in place; returns the new count.
 */
size_t imap_seqset_compact(ImapRange *r, size_t n, uint32_t star);

/* Whether v is in the n ranges r, "*" standing for star. */
bool imap_seqset_contains(const ImapRange *r, size_t n, uint32_t v, uint32_t star);
