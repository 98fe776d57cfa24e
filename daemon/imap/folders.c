/*
 * Folder selection and roles for the sync engine. The pattern matcher is a
 * glob over the decoded (UTF-8) name, byte by byte, so
 * patterns and names compare in the same encoding the user typed in the
 * config; it runs in time proportional to pattern length times name length.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/imap/folders.h"
#include "daemon/imap/parser.h"
#include "util/macro.h"

/*
 * Whether pattern p matches all of s. Dynamic programming over suffixes,
 * O(strlen(p) * strlen(s)): backtracking on every "*" and "%" takes
 * exponential time on patterns like "*a*a*a*b" against a long server name.
 * row[i] says whether p[k..] matches s[i..], for k from the end down to 0.
 * False when out of memory (the folder is then not synced).
 */
static bool glob_match(const char *p, const char *s, char delim) {
        size_t lp = strlen(p), ls = strlen(s);
        _cleanup_free_ bool *next = calloc(ls + 2, sizeof *next), *row = calloc(ls + 2, sizeof *row);

        if (!next || !row)
                return false;
        next[ls] = true; /* the empty pattern matches only the empty rest */
        for (size_t k = lp; k-- > 0;) {
                bool *swap;

                for (size_t i = ls + 1; i-- > 0;) {
                        if (p[k] == '*' || p[k] == '%')
                                /* Match nothing here, or swallow s[i] ("%" not the delimiter) and stay. */
                                row[i] = next[i] ||
                                         (i < ls && (p[k] == '*' || !delim || s[i] != delim) && row[i + 1]);
                        else
                                row[i] = i < ls && s[i] == p[k] && next[i + 1];
                }
                swap = next;
                next = row;
                row = swap;
        }
        return next[0];
}

/* INBOX is case-insensitive, and so is the INBOX prefix of its children. */
static bool pattern_match(const char *p, const char *name, char delim) {
        if (strncasecmp(p, "INBOX", 5) == 0 && strncmp(name, "INBOX", 5) == 0 &&
            (p[5] == '\0' || p[5] == delim || p[5] == '*' || p[5] == '%'))
                return glob_match(p + 5, name + 5, delim);
        return glob_match(p, name, delim);
}

bool imap_folder_wanted(char *const *patterns, const char *name, char delim) {
        bool wanted = true;

        if (!patterns || !patterns[0])
                return true;
        /* An inclusion anywhere makes "not wanted" the default. */
        for (size_t i = 0; patterns[i]; i++)
                if (patterns[i][0] != '!')
                        wanted = false;
        for (size_t i = 0; patterns[i]; i++) {
                bool exclude = patterns[i][0] == '!';

                if (pattern_match(patterns[i] + exclude, name, delim))
                        wanted = !exclude;
        }
        return wanted;
}

StoreFolderRole imap_folder_role(const char *name, unsigned list_attrs) {
        static const struct {
                unsigned attr;
                StoreFolderRole role;
        } map[] = {
                {IMAP_LIST_SENT, STORE_ROLE_SENT},       {IMAP_LIST_DRAFTS, STORE_ROLE_DRAFTS},
                {IMAP_LIST_TRASH, STORE_ROLE_TRASH},     {IMAP_LIST_JUNK, STORE_ROLE_JUNK},
                {IMAP_LIST_ARCHIVE, STORE_ROLE_ARCHIVE}, {IMAP_LIST_ALL, STORE_ROLE_ALL},
                {IMAP_LIST_FLAGGED, STORE_ROLE_FLAGGED},
        };

        if (strcasecmp(name, "INBOX") == 0)
                return STORE_ROLE_INBOX;
        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (list_attrs & map[i].attr)
                        return map[i].role;
        return STORE_ROLE_NONE;
}

const char *imap_folder_role_to_string(StoreFolderRole role) {
        static const char *const names[] = {
                [STORE_ROLE_NONE] = "none",       [STORE_ROLE_INBOX] = "inbox", [STORE_ROLE_SENT] = "sent",
                [STORE_ROLE_DRAFTS] = "drafts",   [STORE_ROLE_TRASH] = "trash", [STORE_ROLE_JUNK] = "junk",
                [STORE_ROLE_ARCHIVE] = "archive", [STORE_ROLE_ALL] = "all",     [STORE_ROLE_FLAGGED] = "flagged",
        };

        if ((unsigned)role >= ARRAY_SIZE(names) || !names[role])
                return "unknown";
        return names[role];
}
