/*
 * Header collection and decoding. The collector keeps bytes until it has seen
 * the empty line (CRLF CRLF, or LF LF for messages stored with bare LFs) that
 * ends the header block, looking only at the seam between chunks and the new
 * bytes, so feeding is linear however the message is split. Decoding picks
 * the eight fields out of the block (a plain scan: building a whole
 * GMimeMessage per message cost more than the rest of the download) and has
 * GMime decode each value.
 */
#include <errno.h>
#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/mime/envelope.h"
#include "util/macro.h"

/* Where the header block ends in buf[0..len): the offset just after the empty line, or 0 if not yet. */
static size_t header_end(const char *buf, size_t from, size_t len) {
        for (size_t i = from; i < len; i++) {
                if (buf[i] != '\n')
                        continue;
                if (i == 0)
                        return 1; /* no headers at all */
                if (buf[i - 1] == '\n')
                        return i + 1;
                if (buf[i - 1] == '\r' && (i == 1 || buf[i - 2] == '\n'))
                        return i + 1;
        }
        return 0;
}

int mime_headers_feed(MimeHeaders *h, const void *data, size_t n) {
        size_t take, from, end;

        if (h->done || n == 0)
                return 0;
        take = n < MIME_HEADERS_MAX - h->len ? n : MIME_HEADERS_MAX - h->len;
        if (h->len + take > h->cap) {
                size_t cap = h->cap ? h->cap : 4096;
                char *p;

                while (cap < h->len + take)
                        cap *= 2;
                cap = cap < MIME_HEADERS_MAX ? cap : MIME_HEADERS_MAX;
                p = realloc(h->buf, cap);
                if (!p)
                        return -ENOMEM;
                h->buf = p;
                h->cap = cap;
        }
        memcpy(h->buf + h->len, data, take);
        from = h->len > 2 ? h->len - 2 : 0; /* the seam: an empty line may straddle two chunks */
        h->len += take;
        end = header_end(h->buf, from, h->len);
        if (end > 0) {
                h->len = end;
                h->done = true;
        } else if (h->len == MIME_HEADERS_MAX)
                h->done = true;
        return 0;
}

void mime_headers_clear(MimeHeaders *h) {
        free(h->buf);
        *h = (MimeHeaders){};
}

void mime_envelope_clear(StoreEnvelope *env) {
        free(env->from);
        free(env->to);
        free(env->cc);
        free(env->subject);
        free(env->message_id);
        free(env->in_reply_to);
        free(env->references);
        *env = (StoreEnvelope){};
}

static void gmime_init_once(void) {
        static bool done;

        if (!done) {
                g_mime_init();
                done = true;
        }
}

/* strdup of s unless NULL or empty; *ok turns false on ENOMEM. */
static char *dup_or_null(const char *s, bool *ok) {
        char *d;

        if (!s || !*s)
                return NULL;
        d = strdup(s);
        if (!d)
                *ok = false;
        return d;
}

/* A g_malloc()ed string as a malloc()ed one (NULL and "" give NULL). */
static char *take_g(char *g, bool *ok) {
        char *d = dup_or_null(g, ok);

        g_free(g);
        return d;
}

/* An address list, display names decoded: "Name <a@b>, c@d". */
static char *addresses(const char *value, bool *ok) {
        InternetAddressList *list = internet_address_list_parse(NULL, value);
        char *d = NULL;

        if (!list)
                return NULL;
        if (internet_address_list_length(list) > 0)
                d = take_g(internet_address_list_to_string(list, NULL, FALSE), ok);
        g_object_unref(list);
        return d;
}

/* Message ids as written, on one line (In-Reply-To, References). */
static char *id_list(const char *value, bool *ok) {
        char *d = dup_or_null(value, ok), *o;

        if (d)
                for (o = d; *o; o++)
                        if (*o == '\t')
                                *o = ' ';
        return d;
}

enum {
        F_FROM,
        F_TO,
        F_CC,
        F_SUBJECT,
        F_DATE,
        F_MESSAGE_ID,
        F_IN_REPLY_TO,
        F_REFERENCES,
        _F_MAX,
};

static const char *const field_names[_F_MAX] = {
        [F_FROM] = "from",       [F_TO] = "to",
        [F_CC] = "cc",           [F_SUBJECT] = "subject",
        [F_DATE] = "date",       [F_MESSAGE_ID] = "message-id",
        [F_IN_REPLY_TO] = "in-reply-to", [F_REFERENCES] = "references",
};

/*
 * The unfolded values of the wanted fields (the first of each), as NUL-terminated copies in one
 * malloc()ed buffer; RFC 5322 unfolding drops the line breaks and keeps the white space after
 * them. The header block ends at the first empty line or at n.
 */
static char *scan_fields(const char *data, size_t n, const char *vals[_F_MAX]) {
        char *buf = malloc(n + _F_MAX + 1), *o = buf;
        size_t i = 0;

        if (!buf)
                return NULL;
        while (i < n) {
                size_t line_end = i, name_end;
                int which = -1;

                if (data[i] == '\n' || (data[i] == '\r' && i + 1 < n && data[i + 1] == '\n'))
                        break; /* the empty line: the body follows */
                for (name_end = i; name_end < n && data[name_end] != ':' && data[name_end] != '\n'; name_end++)
                        ;
                if (name_end < n && data[name_end] == ':') {
                        size_t len = name_end - i;

                        while (len > 0 && (data[i + len - 1] == ' ' || data[i + len - 1] == '\t'))
                                len--;
                        for (int k = 0; k < _F_MAX; k++)
                                if (!vals[k] && strlen(field_names[k]) == len &&
                                    strncasecmp(data + i, field_names[k], len) == 0)
                                        which = k;
                }
                /* The field runs to the end of the last line not followed by white space. */
                for (line_end = i; line_end < n; line_end++)
                        if (data[line_end] == '\n' && !(line_end + 1 < n && (data[line_end + 1] == ' ' ||
                                                                             data[line_end + 1] == '\t')))
                                break;
                if (which >= 0) {
                        const char *p = data + name_end + 1, *end = data + line_end;

                        while (p < end && (*p == ' ' || *p == '\t'))
                                p++;
                        vals[which] = o;
                        for (; p < end; p++)
                                if (*p != '\r' && *p != '\n' && *p != '\0')
                                        *o++ = *p;
                        while (o > vals[which] && (o[-1] == ' ' || o[-1] == '\t'))
                                o--;
                        *o++ = '\0';
                }
                i = line_end + 1;
        }
        return buf;
}

int mime_envelope_parse(const char *data, size_t n, StoreEnvelope *env) {
        const char *v[_F_MAX] = {};
        _cleanup_free_ char *buf = NULL;
        bool ok = true;

        *env = (StoreEnvelope){};
        if (n == 0)
                return 0;
        gmime_init_once();
        buf = scan_fields(data, n, v);
        if (!buf)
                return -ENOMEM;
        /* GMime decodes: encoded words in any charset, raw 8-bit text through its fallback charsets,
         * address lists with display names, dates, message ids. */
        if (v[F_FROM])
                env->from = addresses(v[F_FROM], &ok);
        if (v[F_TO])
                env->to = addresses(v[F_TO], &ok);
        if (v[F_CC])
                env->cc = addresses(v[F_CC], &ok);
        if (v[F_SUBJECT])
                env->subject = take_g(g_mime_utils_header_decode_text(NULL, v[F_SUBJECT]), &ok);
        if (v[F_MESSAGE_ID])
                env->message_id = take_g(g_mime_utils_decode_message_id(v[F_MESSAGE_ID]), &ok);
        if (v[F_IN_REPLY_TO])
                env->in_reply_to = id_list(v[F_IN_REPLY_TO], &ok);
        if (v[F_REFERENCES])
                env->references = id_list(v[F_REFERENCES], &ok);
        if (v[F_DATE]) {
                GDateTime *date = g_mime_utils_header_decode_date(v[F_DATE]);

                if (date) {
                        env->date = (int64_t)g_date_time_to_unix(date);
                        g_date_time_unref(date);
                }
        }
        if (!ok) {
                mime_envelope_clear(env);
                return -ENOMEM;
        }
        return 0;
}

int mime_headers_envelope(const MimeHeaders *h, StoreEnvelope *env) {
        return mime_envelope_parse(h->buf, h->len, env);
}
