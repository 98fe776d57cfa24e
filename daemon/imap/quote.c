/*
 * IMAP quoted strings, for the client's own commands (LOGIN, APPEND) and for
 * owners building theirs (imap_quote). Literals are not made here: a string
 * that needs one (CR, LF) is refused instead. Pure.
 */
#include <errno.h>
#include <stdlib.h>

#include "daemon/imap/client-internal.h"

/* quoted = DQUOTE *QUOTED-CHAR DQUOTE (RFC 3501; RFC 6855 allows UTF-8 once enabled). */
ssize_t imap_quote_to(const char *s, bool utf8, char *out) {
        size_t n = 0;

        if (out)
                out[n] = '"';
        n++;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p == '\r' || *p == '\n' || (*p >= 0x80 && !utf8))
                        return -EINVAL;
                if (*p == '"' || *p == '\\') {
                        if (out)
                                out[n] = '\\';
                        n++;
                }
                if (out)
                        out[n] = (char)*p;
                n++;
        }
        if (out) {
                out[n] = '"';
                out[n + 1] = '\0';
        }
        return (ssize_t)n + 1;
}

char *imap_quote(const char *s, bool utf8) {
        ssize_t n = imap_quote_to(s, utf8, NULL);
        char *out;

        if (n < 0) {
                errno = EINVAL;
                return NULL;
        }
        out = malloc((size_t)n + 1);
        if (!out) {
                errno = ENOMEM;
                return NULL;
        }
        imap_quote_to(s, utf8, out);
        return out;
}
