/*
 * IMAP flags ↔ the store's form (STORE_FLAG_* bits plus a keywords string),
 * and the per-flag three-way merge the sync engine uses when both sides
 * changed a message's flags since the last sync. Pure functions.
 *
 * Keyword strings are canonical: space-separated, each keyword once (IMAP
 * keywords compare case-insensitively; the first spelling is kept), sorted
 * case-insensitively, NULL for none. Two canonical strings are equal exactly
 * when the keyword sets are.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon/imap/parser.h"

/*
 * The flags of a FETCH FLAGS list: system flags (\Seen \Answered \Flagged
 * \Deleted \Draft, any case) and $Forwarded as bits, \Recent and other
 * backslash flags dropped, every other atom a keyword. *keywordsp is
 * malloc()ed canonical or NULL. Returns 0 or -ENOMEM.
 */
int imap_flags_parse(const ImapStrList *flags, uint32_t *maskp, char **keywordsp);

/*
 * The IMAP flag list for mask and keywords (canonical or not), without the
 * parentheses: "\Seen \Flagged $Forwarded work"; "" for none. Returns 0,
 * -EINVAL when a keyword is not an IMAP atom (or starts with "\"), or -ENOMEM.
 */
int imap_flags_format(uint32_t mask, const char *keywords, char **retp);

/* The canonical form of a space-separated keyword string (NULL in, or none, gives NULL). 0 or -ENOMEM. */
int imap_keywords_normalize(const char *keywords, char **retp);

/* keywords + add - remove, canonical (remove wins over add). 0 or -ENOMEM. */
int imap_keywords_apply(const char *keywords, const char *add, const char *remove, char **retp);

/* What turns from into to: *addp = to - from, *removep = from - to, canonical or NULL. 0 or -ENOMEM. */
int imap_keywords_diff(const char *from, const char *to, char **addp, char **removep);

/*
 * Per-flag three-way merge of system flags. For each flag: changed on one
 * side only → that side's value; changed on both → both hold the same value
 * (a flag is a boolean) and it is taken. So with a known base there is no
 * real conflict per flag. Without a base (has_base false: the message was
 * never synced with flags) local and server may disagree with nothing to
 * tell who changed what: the server wins, since other devices already see
 * its value and a user's local edit is still recorded as a pending change
 * that the next sync pushes again.
 */
uint32_t imap_flags_merge(bool has_base, uint32_t base, uint32_t local, uint32_t server);

/* The same merge, keyword by keyword, on keyword strings; *retp canonical or NULL. 0 or -ENOMEM. */
int imap_keywords_merge(bool has_base, const char *base, const char *local, const char *server, char **retp);
