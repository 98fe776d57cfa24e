/*
 * Header capture and envelope extraction. The caller owns the ImapHeaders
 * (embedded in its per-message state); the buffer grows to at most
 * IMAP_HEADERS_MAX. Lookups scan the kept block line by line: a message has
 * a few dozen fields and each is looked up once.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon/imap/headers.h"

void imap_headers_clear(ImapHeaders *h) {
        free(h->buf);
        *h = (ImapHeaders){};
}

int imap_headers_feed(ImapHeaders *h, const void *data, size_t n) {
        size_t take, start;

        if (h->done || n == 0)
                return 0;
        take = n;
        if (take > IMAP_HEADERS_MAX - h->len)
                take = IMAP_HEADERS_MAX - h->len;
        if (!h->buf) {
                h->buf = malloc(IMAP_HEADERS_MAX + 1);
                if (!h->buf)
                        return -ENOMEM;
        }
        /* Look for the empty line from 3 bytes back, so one split across chunks is found. */
        start = h->len > 3 ? h->len - 3 : 0;
        memcpy(h->buf + h->len, data, take);
        h->len += take;
        h->buf[h->len] = '\0';
        for (size_t i = start; i < h->len; i++) {
                if (h->buf[i] != '\n')
                        continue;
                if (i == 0 || (i + 1 < h->len && h->buf[i + 1] == '\n') ||
                    (i + 2 < h->len && h->buf[i + 1] == '\r' && h->buf[i + 2] == '\n')) {
                        h->len = i + 1;
                        h->buf[h->len] = '\0';
                        h->done = true;
                        return 0;
                }
        }
        if (h->len == IMAP_HEADERS_MAX)
                h->done = true;
        return 0;
}

char *imap_headers_get(const ImapHeaders *h, const char *name) {
        size_t nl = strlen(name);
        const char *p = h->buf, *end = h->buf + h->len;

        errno = 0;
        if (!p)
                return NULL;
        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                const char *line_end = eol ? eol : end;

                if ((size_t)(line_end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
                        /* The value: this line and its continuation lines, CR/LF folded into one space. */
                        const char *v = p + nl + 1, *q;
                        size_t o = 0;
                        char *out;

                        for (q = line_end; q < end && q + 1 < end && (q[1] == ' ' || q[1] == '\t');) {
                                const char *e2 = memchr(q + 1, '\n', (size_t)(end - q - 1));
                                q = e2 ? e2 : end;
                        }
                        out = malloc((size_t)(q - v) + 1);
                        if (!out)
                                return NULL;
                        for (const char *c = v; c < q; c++) {
                                if (*c == '\r' || *c == '\n')
                                        continue;
                                if ((*c == ' ' || *c == '\t') && (o == 0 || out[o - 1] == ' '))
                                        continue;
                                out[o++] = *c == '\t' ? ' ' : *c;
                        }
                        while (o > 0 && out[o - 1] == ' ')
                                o--;
                        out[o] = '\0';
                        return out;
                }
                p = line_end + 1;
        }
        return NULL;
}

int64_t imap_headers_parse_date(const char *s) {
        static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                             "jul", "aug", "sep", "oct", "nov", "dec"};
        struct tm tm = {};
        char mon[4] = {};
        int day, year, hh, mm, ss = 0, n = 0;
        const char *p;
        char sign;
        int tz = 0;
        int64_t t;

        if (!s)
                return 0;
        p = strchr(s, ',');
        p = p ? p + 1 : s;
        if (sscanf(p, " %d %3s %d %d:%d%n", &day, mon, &year, &hh, &mm, &n) < 5)
                return 0;
        p += n;
        if (*p == ':') {
                n = 0;
                if (sscanf(p, ":%d%n", &ss, &n) < 1)
                        return 0;
                p += n;
        }
        while (*p == ' ')
                p++;
        sign = *p;
        if ((sign == '+' || sign == '-') && strlen(p) >= 5) {
                tz = ((p[1] - '0') * 10 + (p[2] - '0')) * 60 + (p[3] - '0') * 10 + (p[4] - '0');
                if (sign == '-')
                        tz = -tz;
        }
        tm.tm_mon = -1;
        for (int i = 0; i < 12; i++)
                if (strcasecmp(mon, months[i]) == 0)
                        tm.tm_mon = i;
        if (tm.tm_mon < 0)
                return 0;
        if (year < 50)
                year += 2000;
        else if (year < 1000)
                year += 1900;
        tm.tm_year = year - 1900;
        tm.tm_mday = day;
        tm.tm_hour = hh;
        tm.tm_min = mm;
        tm.tm_sec = ss;
        t = (int64_t)timegm(&tm);
        return t == -1 ? 0 : t - (int64_t)tz * 60;
}

int imap_headers_envelope(const ImapHeaders *h, StoreEnvelope *env) {
        static const struct {
                const char *name;
                size_t off;
        } fields[] = {
                {"From", offsetof(StoreEnvelope, from)},
                {"To", offsetof(StoreEnvelope, to)},
                {"Cc", offsetof(StoreEnvelope, cc)},
                {"Subject", offsetof(StoreEnvelope, subject)},
                {"Message-ID", offsetof(StoreEnvelope, message_id)},
                {"In-Reply-To", offsetof(StoreEnvelope, in_reply_to)},
                {"References", offsetof(StoreEnvelope, references)},
        };
        char *date;

        *env = (StoreEnvelope){};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                char *v = imap_headers_get(h, fields[i].name);

                if (!v && errno == ENOMEM)
                        return -ENOMEM;
                *(char **)((char *)env + fields[i].off) = v;
        }
        date = imap_headers_get(h, "Date");
        env->date = imap_headers_parse_date(date);
        free(date);
        return 0;
}
