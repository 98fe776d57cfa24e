/*
 * Header collection and decoding. The collector keeps bytes until it has seen
 * the empty line (CRLF CRLF, or LF LF for messages stored with bare LFs) that
 * ends the header block, looking only at the seam between chunks and the new
 * bytes, so feeding is linear however the message is split. Decoding hands
 * the block to GMime's parser as a message without a body and reads the
 * fields back decoded.
 */
#include <errno.h>
#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/mime/envelope.h"

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

/* An address list as text, display names decoded: "Name <a@b>, c@d". */
static char *addresses(GMimeMessage *m, GMimeAddressType type, bool *ok) {
        InternetAddressList *list = g_mime_message_get_addresses(m, type);
        char *s, *d;

        if (!list || internet_address_list_length(list) == 0)
                return NULL;
        s = internet_address_list_to_string(list, NULL, FALSE);
        d = dup_or_null(s, ok);
        g_free(s);
        return d;
}

/* A header's decoded value (In-Reply-To, References: message ids, kept as written, unfolded). */
static char *header(GMimeMessage *m, const char *name, bool *ok) {
        const char *v = g_mime_object_get_header(GMIME_OBJECT(m), name);
        char *d, *o;

        d = dup_or_null(v, ok);
        if (!d)
                return NULL;
        /* Unfold: CR and LF into spaces. */
        for (o = d; *o; o++)
                if (*o == '\r' || *o == '\n' || *o == '\t')
                        *o = ' ';
        return d;
}

int mime_envelope_parse(const char *data, size_t n, StoreEnvelope *env) {
        GMimeStream *stream;
        GMimeParser *parser;
        GMimeMessage *m;
        GDateTime *date;
        bool ok = true;

        *env = (StoreEnvelope){};
        if (n == 0)
                return 0;
        gmime_init_once();
        stream = g_mime_stream_mem_new_with_buffer(data, n);
        parser = g_mime_parser_new_with_stream(stream);
        g_object_unref(stream);
        g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
        m = g_mime_parser_construct_message(parser, NULL);
        g_object_unref(parser);
        if (!m)
                return 0; /* nothing readable: no envelope, not an error */

        env->from = addresses(m, GMIME_ADDRESS_TYPE_FROM, &ok);
        env->to = addresses(m, GMIME_ADDRESS_TYPE_TO, &ok);
        env->cc = addresses(m, GMIME_ADDRESS_TYPE_CC, &ok);
        env->subject = dup_or_null(g_mime_message_get_subject(m), &ok);
        env->message_id = dup_or_null(g_mime_message_get_message_id(m), &ok);
        env->in_reply_to = header(m, "In-Reply-To", &ok);
        env->references = header(m, "References", &ok);
        date = g_mime_message_get_date(m);
        if (date)
                env->date = (int64_t)g_date_time_to_unix(date);
        g_object_unref(m);
        if (!ok) {
                mime_envelope_clear(env);
                return -ENOMEM;
        }
        return 0;
}

int mime_headers_envelope(const MimeHeaders *h, StoreEnvelope *env) {
        return mime_envelope_parse(h->buf, h->len, env);
}
