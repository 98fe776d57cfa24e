/*
 * Which server mailboxes an account syncs (the `folders` patterns) and what
 * each is for (SPECIAL-USE attributes → store folder roles). Pure functions.
 */
#pragma once

#include <stdbool.h>

#include "store/store.h"

/*
 * Whether the mailbox name (decoded UTF-8; delim its hierarchy delimiter, 0
 * for none) is wanted by patterns, a NULL-terminated list as in the config
 * ("*" matches anything, "%" anything but delim; a leading "!" excludes).
 * The last pattern that matches decides. When none matches, a name is wanted
 * only if every pattern is an exclusion ("!Junk" alone means "all but Junk").
 * NULL patterns (the key is unset) want everything. "INBOX" matches in any
 * case, as RFC 3501 says the name does.
 */
bool imap_folder_wanted(char *const *patterns, const char *name, char delim);

/*
 * The role of a mailbox from its name and LIST attributes (IMAP_LIST_*):
 * INBOX is STORE_ROLE_INBOX; \Sent, \Drafts, \Trash, \Junk, \Archive, \All
 * and \Flagged give theirs (the first in that order when several are set);
 * anything else STORE_ROLE_NONE.
 */
StoreFolderRole imap_folder_role(const char *name, unsigned list_attrs);

/* "inbox", "sent", ... for logs and tools. */
const char *imap_folder_role_to_string(StoreFolderRole role);
