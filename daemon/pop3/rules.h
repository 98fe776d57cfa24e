/*
 * POP3 retention rules, as one pure function: the server's listing, what this
 * machine knows of each UIDL, the account's rules, the server's EXPIRE and the
 * time in; per message "download or not" and "delete on the server or not",
 * each with its reason (what a dry run shows), out. No I/O, no clock, no
 * logging: the fetch engine and the dry run call the same code.
 *
 * The invariant lives here and nowhere else: a message is deleted only when
 * this machine holds it durably (downloaded, committed with a barrier). No rule
 * and no server policy can override that.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"

#define POP3_RULES_MB  (1024 * 1024)
#define POP3_RULES_DAY 86400

/* What this machine knows of a UIDL the server lists. */
typedef enum Pop3Local {
        POP3_LOCAL_NEW,             /* never seen here */
        POP3_LOCAL_DOWNLOADED,      /* stored here */
        POP3_LOCAL_DELETE_PENDING,  /* stored; DELE sent, QUIT never acknowledged */
        POP3_LOCAL_DELETED_LOCALLY, /* stored, then deleted here by the user */
        POP3_LOCAL_SKIPPED,         /* left on the server on purpose (size rule) */
        _POP3_LOCAL_MAX,
} Pop3Local;

/* Why a message is (not) downloaded or (not) deleted; pop3_why_to_string() words it. */
typedef enum Pop3Why {
        POP3_WHY_NONE,
        /* download */
        POP3_WHY_NEW,          /* not here yet */
        POP3_WHY_HAVE_IT,      /* stored here already */
        POP3_WHY_SKIP_TOO_BIG, /* bigger than pop3_skip_bigger_than_mb */
        /* keep on the server */
        POP3_WHY_KEEP,            /* pop3_leave_on_server and no rule applies */
        POP3_WHY_KEEP_NOT_STORED, /* a rule would delete it, but it is not durably stored here */
        /* delete on the server */
        POP3_WHY_NOT_LEFT,        /* pop3_leave_on_server = no */
        POP3_WHY_SERVER_EXPIRE_0, /* the server says EXPIRE 0: it goes once retrieved */
        POP3_WHY_AGE,             /* first downloaded pop3_delete_after_days ago or more */
        POP3_WHY_DELETED_LOCALLY, /* pop3_delete_when_deleted_locally */
        POP3_WHY_TOO_BIG,         /* bigger than pop3_delete_bigger_than_mb */
        POP3_WHY_OVER_COUNT,      /* oldest beyond pop3_keep_server_under_messages */
        POP3_WHY_OVER_SIZE,       /* oldest beyond pop3_keep_server_under_mb */
        _POP3_WHY_MAX,
} Pop3Why;

/* The account's rules and the server's policy. */
typedef struct Pop3Rules {
        bool leave_on_server;
        unsigned delete_after_days; /* 0 = never */
        bool delete_when_deleted_locally;
        unsigned keep_under_messages;   /* 0 = no limit; otherwise at most this many stay */
        unsigned keep_under_mb;         /* 0 = no limit; otherwise at most this many MiB stay */
        unsigned delete_bigger_than_mb; /* 0 = no rule */
        unsigned skip_bigger_than_mb;   /* 0 = no rule */
        int64_t server_expire_days;     /* EXPIRE from CAPA; -1 = none or NEVER */
} Pop3Rules;

/* One message of the server's listing, with what this machine knows of it. */
typedef struct Pop3RuleMsg {
        uint32_t msg;     /* message number in this session */
        const char *uidl; /* borrowed */
        uint64_t size;    /* LIST size in octets */
        Pop3Local local;
        int64_t first_seen; /* Unix time of the first download here; ignored for NEW */
        bool durable;       /* its download record is committed with a barrier */
} Pop3RuleMsg;

typedef struct Pop3Decision {
        bool download;
        bool delete;
        Pop3Why download_why;
        Pop3Why delete_why; /* the reason to delete, or to keep */
} Pop3Decision;

/* Warnings for the status and the log. */
enum {
        POP3_RULES_W_EXPIRE_EARLIER = 1u << 0,  /* the server's EXPIRE deletes earlier than the rules */
        POP3_RULES_W_EXPIRE_0 = 1u << 1,        /* EXPIRE 0 while pop3_leave_on_server = yes */
        POP3_RULES_W_LIMIT_UNREACHED = 1u << 2, /* a keep-under limit cannot be met with what is stored */
};

typedef struct Pop3RulesReport {
        size_t n_download, n_skip, n_delete;
        uint64_t download_bytes, delete_bytes;
        uint64_t server_bytes_after; /* what stays on the server */
        unsigned warnings;           /* POP3_RULES_W_* */
} Pop3RulesReport;

/* Fills r from a's pop3_* keys; server_expire_days -1. */
void pop3_rules_from_account(Pop3Rules *r, const Account *a);

/*
 * Decides for each of msgs[0..n) (the server's listing) into out[0..n), and
 * sums up into *reportp (may be NULL). now is the current Unix time (tests
 * inject it). Age counts from first_seen: a message first downloaded
 * delete_after_days * 86400 seconds ago or earlier goes. The keep-under limits
 * delete the oldest stored messages first (by first_seen, then number).
 * Never marks for deletion a message that is not durably stored.
 * Returns 0, or -ENOMEM.
 */
int pop3_rules_apply(const Pop3Rules *r, const Pop3RuleMsg *msgs, size_t n, int64_t now, Pop3Decision *out,
                     Pop3RulesReport *reportp);

/* True when the local state and durability allow deleting the message on the server. */
bool pop3_rules_may_delete(const Pop3RuleMsg *m);

/* Static text for logs and the dry run: "first downloaded 4 days ago or more", ... */
const char *pop3_why_to_string(Pop3Why why);
const char *pop3_local_to_string(Pop3Local local);
