/*
 * The maildrop as one fetch sees it: the server's listing (STAT, UIDL, LIST)
 * merged with what this machine knows of each UIDL (store/pop3.h) and with
 * what the POP3 folder still holds, which tells "deleted here" apart. It also
 * finds the UIDLs that vanished from the server, and builds the input of the
 * retention rules. No I/O but two synchronous store reads in
 * pop3_maildrop_load_local(); loop thread only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/pop3/parser.h"
#include "daemon/pop3/rules.h"
#include "store/pop3.h"

/* One message of the server's listing (index = message number - 1). */
typedef struct Pop3ServerMsg {
        char *uidl;      /* NULL: none given */
        bool uid_valid;  /* RFC 1939 syntax (parser.h) */
        bool unusable;   /* no UIDL, a malformed or a duplicate one: never downloaded nor deleted */
        uint64_t size;   /* LIST */
        Pop3Local local; /* after pop3_maildrop_resolve() */
        int64_t first_seen;
        bool dele_ok; /* DELE answered +OK in this session */
} Pop3ServerMsg;

typedef struct Pop3Maildrop {
        Pop3ServerMsg *msgs;
        uint32_t n_msgs;
        bool have_stat;
        uint64_t size;           /* STAT */
        StorePop3Entry *entries; /* the account's POP3 entries, sorted by UIDL */
        size_t n_entries;
        StoreCid *cids; /* bodies of the folder's messages, sorted */
        size_t n_cids;
        uint32_t next_uid; /* first free message UID in the folder */
        char **vanished;   /* UIDLs gone from the server (borrowed from entries) */
        size_t n_vanished;
        size_t n_vanished_elsewhere; /* of those, the ones we never sent DELE for */
        char **forgettable; /* entries recorded DELETED that the server no longer lists (borrowed) */
        size_t n_forgettable;
        size_t n_unusable;
} Pop3Maildrop;

/* Sets m up empty; never fails. */
void pop3_maildrop_init(Pop3Maildrop *m);

/* Frees what m holds; safe twice. */
void pop3_maildrop_deinit(Pop3Maildrop *m);

/* Reads the account's POP3 entries and the folder's message bodies and next UID. Returns 0 or a negative errno. */
int pop3_maildrop_load_local(Pop3Maildrop *m, Store *s, int64_t account_id, int64_t folder_id);

/* The STAT answer: n messages, size octets. -EALREADY after the first, -ENOMEM. */
int pop3_maildrop_set_stat(Pop3Maildrop *m, uint32_t n, uint64_t size);

/* One UIDL or LIST entry. -ERANGE for a number STAT did not announce (a protocol error), -ENOMEM. */
int pop3_maildrop_add_listing(Pop3Maildrop *m, const Pop3Listing *l);

/* Marks the messages without a usable UIDL (none, malformed, duplicate); returns how many, or -ENOMEM. */
int pop3_maildrop_mark_unusable(Pop3Maildrop *m);

/* Names message msg (1-based) by a hash of its headers and its size, when it has no usable UIDL. */
int pop3_maildrop_set_header_uid(Pop3Maildrop *m, uint32_t msg, const uint8_t *hash, size_t n_hash);

/*
 * After the listing (and any header names): marks the unusable messages,
 * gives every usable one its local state and first_seen (now for new ones),
 * and lists the vanished UIDLs. Returns 0 or -ENOMEM.
 */
int pop3_maildrop_resolve(Pop3Maildrop *m, int64_t now);

/*
 * The rules' input for the usable messages, in a new array (free()). Every
 * stored message counts as durable: the fetch sends no DELE before its barrier
 * commit, which makes everything committed before it durable too.
 */
int pop3_maildrop_rule_input(const Pop3Maildrop *m, Pop3RuleMsg **msgsp, size_t *np);
