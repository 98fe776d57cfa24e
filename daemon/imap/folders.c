/*
 * Folder selection and roles for the sync engine. The pattern matcher is a
 * plain backtracking glob over the decoded (UTF-8) name, byte by byte, so
 * patterns and names compare in the same encoding the user typed in the
 * config; it recurses only on "*" and "%" and patterns are short.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/imap/folders.h"
#include "daemon/imap/parser.h"
#include "util/macro.h"

static bool glob_match(const char *p, const char *s, char delim) {
        for (; *p; p++, s++) {
                if (*p == '*' || *p == '%') {
                        /* Try every split; "%" may not swallow the delimiter. */
                        for (const char *t = s;; t++) {
                                if (glob_match(p + 1, t, delim))
                                        return true;
                                if (!*t || (*p == '%' && delim && *t == delim))
                                        return false;
                        }
                }
                if (*s != *p)
                        return false;
        }
        return *s == '\0';
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
