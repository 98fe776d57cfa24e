/*
 * Text, attachments and one attachment out of a message (see text.h). The
 * message is parsed once with a persistent stream, so every part is a range
 * of the caller's descriptor; reading a part runs its bytes through a
 * transfer-decoding filter stream, chunk by chunk, so only the text kept (at
 * most the caller's cap) is ever in memory. Charset conversion for the capped
 * text happens in memory, which lets it be lenient: the labelled charset
 * first, strictly; then UTF-8 as it is; then the Japanese encodings and
 * Windows-1252 strictly; then ISO-8859-1, which never fails. The streamed
 * variants (`tegami show`) use GMime's charset filter with the label only.
 * Whoever holds a MimeMessage owns its GMime objects; one thread at a time.
 */
#include <errno.h>
#include <gmime/gmime.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon/mime/text.h"

struct MimeMessage {
        GMimeStream *stream; /* the message's bytes; parts are ranges of it */
        GMimeMessage *message;
};

static void gmime_init_once(void) {
        static bool done;

        if (!done) {
                g_mime_init(); /* reference-counted by GMime: envelope.c may have done it too */
                done = true;
        }
}

static int message_new(GMimeStream *stream, MimeMessage **msgp) {
        GMimeParser *parser;
        MimeMessage *msg;

        parser = g_mime_parser_new_with_stream(stream);
        g_mime_parser_set_persist_stream(parser, TRUE);
        msg = calloc(1, sizeof(*msg));
        if (!msg) {
                g_object_unref(parser);
                g_object_unref(stream);
                return -ENOMEM;
        }
        msg->stream = stream;
        msg->message = g_mime_parser_construct_message(parser, NULL);
        g_object_unref(parser);
        if (!msg->message) {
                mime_message_free(msg);
                return MIME_TEXT_E_PARSE;
        }
        *msgp = msg;
        return 0;
}

int mime_message_new_fd(int fd, MimeMessage **msgp) {
        GMimeStream *stream;
        int copy;

        gmime_init_once();
        copy = dup(fd); /* the fs stream owns and closes what it gets */
        if (copy < 0)
                return -errno;
        stream = g_mime_stream_fs_new(copy);
        return message_new(stream, msgp);
}

int mime_message_new_data(const void *data, size_t n, MimeMessage **msgp) {
        GByteArray *bytes;

        gmime_init_once();
        bytes = g_byte_array_sized_new(n);
        g_byte_array_append(bytes, data, n);
        return message_new(g_mime_stream_mem_new_with_byte_array(bytes), msgp);
}

MimeMessage *mime_message_free(MimeMessage *msg) {
        if (!msg)
                return NULL;
        if (msg->message)
                g_object_unref(msg->message);
        g_object_unref(msg->stream);
        free(msg);
        return NULL;
}

/* ---- Picking the text part ---- */

typedef struct Pick {
        GMimePart *plain, *html, *text; /* first of each; borrowed */
} Pick;

static void pick_cb(GMimeObject *parent, GMimeObject *part, gpointer userdata) {
        GMimeContentType *ct;
        Pick *p = userdata;

        (void)parent;
        if (!GMIME_IS_PART(part) || g_mime_part_is_attachment(GMIME_PART(part)))
                return;
        ct = g_mime_object_get_content_type(part);
        if (!g_mime_content_type_is_type(ct, "text", "*"))
                return;
        if (!p->plain && g_mime_content_type_is_type(ct, "text", "plain"))
                p->plain = GMIME_PART(part);
        if (!p->html && g_mime_content_type_is_type(ct, "text", "html"))
                p->html = GMIME_PART(part);
        if (!p->text)
                p->text = GMIME_PART(part);
}

/* The part mime_message_text() reads, or NULL; *htmlp says whether to reduce it. */
static GMimePart *pick_text(MimeMessage *msg, bool *htmlp) {
        Pick p = {};

        g_mime_message_foreach(msg->message, pick_cb, &p); /* the top part too */
        *htmlp = !p.plain && p.html;
        return p.plain ? p.plain : p.html ? p.html : p.text;
}

/* A stream that reads part's content with its transfer encoding undone and CRLF made LF (a new reference). */
static GMimeStream *decoded_stream_new(GMimePart *part, bool dos2unix) {
        GMimeDataWrapper *content = g_mime_part_get_content(part);
        GMimeContentEncoding enc;
        GMimeStream *src, *f;
        GMimeFilter *filter;

        if (!content)
                return NULL;
        src = g_mime_data_wrapper_get_stream(content);
        g_mime_stream_reset(src);
        f = g_mime_stream_filter_new(src);
        enc = g_mime_data_wrapper_get_encoding(content);
        if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
            enc == GMIME_CONTENT_ENCODING_UUENCODE) {
                filter = g_mime_filter_basic_new(enc, FALSE);
                g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), filter);
                g_object_unref(filter);
        }
        if (dos2unix) {
                filter = g_mime_filter_dos2unix_new(FALSE);
                g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), filter);
                g_object_unref(filter);
        }
        return f;
}

/* ---- Charsets ---- */

/* Converts in[0..n) from charset to UTF-8, failing on any invalid byte. Returns a g_malloc()ed string or NULL. */
static char *convert_strict(const char *in, size_t n, const char *charset) {
        iconv_t cd = g_mime_iconv_open("UTF-8", charset);
        size_t inleft = n, outleft = n * 4 + 16, cap = outleft;
        char *out, *inp = (char *)in, *outp;

        if (cd == (iconv_t)-1)
                return NULL;
        out = g_malloc(cap + 1);
        outp = out;
        if (iconv(cd, &inp, &inleft, &outp, &outleft) == (size_t)-1 ||
            iconv(cd, NULL, NULL, &outp, &outleft) == (size_t)-1) {
                g_mime_iconv_close(cd);
                g_free(out);
                return NULL;
        }
        g_mime_iconv_close(cd);
        *outp = '\0';
        return out;
}

static bool is_utf8_label(const char *charset) {
        return !charset || !g_ascii_strcasecmp(charset, "utf-8") || !g_ascii_strcasecmp(charset, "utf8") ||
               !g_ascii_strcasecmp(charset, "us-ascii");
}

/* The UTF-8 reading of in[0..n) labelled charset (may be NULL), leniently (see the top). g_malloc()ed. */
static char *to_utf8(const char *in, size_t n, const char *charset) {
        static const char *const fallbacks[] = {"ISO-2022-JP", "EUC-JP", "CP932", "WINDOWS-1252"};
        char *out;

        if (!is_utf8_label(charset) && (out = convert_strict(in, n, charset)))
                return out;
        if (g_utf8_validate(in, n, NULL))
                return g_strndup(in, n);
        for (size_t i = 0; i < G_N_ELEMENTS(fallbacks); i++) {
                if (i == 0 && !memchr(in, 0x1b, n))
                        continue; /* 7-bit ISO-2022-JP needs its escapes; without one it would take any ASCII */
                if ((out = convert_strict(in, n, fallbacks[i])))
                        return out;
        }
        return convert_strict(in, n, "ISO-8859-1");
}

/* Reads at most max decoded bytes of part into a g_malloc()ed buffer. */
static int read_part(GMimePart *part, size_t max, char **bufp, size_t *lenp) {
        GMimeStream *s = decoded_stream_new(part, true);
        size_t len = 0, cap = 8192;
        char *buf;

        *bufp = NULL;
        *lenp = 0;
        if (!s)
                return 0;
        buf = g_malloc(cap + 1);
        while (len < max) {
                ssize_t r;

                if (len == cap) {
                        cap = cap * 2 < max ? cap * 2 : max;
                        buf = g_realloc(buf, cap + 1);
                }
                r = g_mime_stream_read(s, buf + len, cap - len);
                if (r < 0) {
                        g_object_unref(s);
                        g_free(buf);
                        return -EIO;
                }
                if (r == 0)
                        break;
                len += r;
        }
        g_object_unref(s);
        buf[len] = '\0';
        *bufp = buf;
        *lenp = len;
        return 0;
}

int mime_message_text(MimeMessage *msg, size_t max, char **textp, size_t *lenp) {
        GMimePart *part;
        char *raw, *utf8, *text;
        size_t n, len;
        bool html;
        int r;

        *textp = NULL;
        *lenp = 0;
        part = pick_text(msg, &html);
        if (!part)
                return 0;
        /* Conversion can grow UTF-8 by half (two-byte Shift_JIS → three-byte UTF-8) and HTML shrinks: read a margin. */
        r = read_part(part, html ? max * 4 : max, &raw, &n);
        if (r < 0 || !raw)
                return r;
        utf8 = to_utf8(raw, n, g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset"));
        g_free(raw);
        if (!utf8)
                return -ENOMEM;
        len = strlen(utf8);
        if (html) {
                r = mime_html_to_text(utf8, len, &text, &len);
                g_free(utf8);
                if (r < 0)
                        return r;
        } else {
                text = strndup(utf8, len);
                g_free(utf8);
                if (!text)
                        return -ENOMEM;
        }
        if (len > max) { /* cut on a character boundary */
                len = max;
                while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
                        len--;
                text[len] = '\0';
        }
        *textp = text;
        *lenp = len;
        return 0;
}

/* Streams decoded content of part to fd, converted from its labelled charset when text. */
static int write_part(GMimePart *part, int fd, bool text) {
        GMimeDataWrapper *content = g_mime_part_get_content(part);
        const char *charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
        GMimeStream *out, *filtered;
        GMimeFilter *f;
        gint64 r;

        if (!content)
                return 0;
        out = g_mime_stream_pipe_new(fd);
        g_mime_stream_pipe_set_owner(GMIME_STREAM_PIPE(out), FALSE);
        filtered = g_mime_stream_filter_new(out);
        if (text && !is_utf8_label(charset)) {
                f = g_mime_filter_charset_new(charset, "UTF-8");
                if (f) { /* NULL for a charset iconv does not know: bytes go out as they are */
                        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
                        g_object_unref(f);
                }
        }
        if (text) {
                f = g_mime_filter_dos2unix_new(FALSE);
                g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
                g_object_unref(f);
        }
        r = g_mime_data_wrapper_write_to_stream(content, filtered);
        if (r >= 0)
                r = g_mime_stream_flush(filtered);
        g_object_unref(filtered);
        g_object_unref(out);
        return r < 0 ? -EIO : 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t w = write(fd, p, n);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                p += w;
                n -= w;
        }
        return 0;
}

int mime_message_write_text(MimeMessage *msg, int fd) {
        GMimePart *part;
        char *text;
        size_t len;
        bool html;
        int r;

        part = pick_text(msg, &html);
        if (!part)
                return MIME_TEXT_E_NONE;
        if (!html)
                return write_part(part, fd, true);
        /* HTML is reduced in memory, so it is capped: a reader's view, not an archive. */
        r = mime_message_text(msg, 16 * MIME_TEXT_MAX, &text, &len);
        if (r < 0)
                return r;
        r = write_all(fd, text, len);
        free(text);
        return r;
}

/* ---- Attachments ---- */

typedef struct Collect {
        GPtrArray *parts; /* GMimePart, borrowed */
} Collect;

static void collect_cb(GMimeObject *parent, GMimeObject *part, gpointer userdata) {
        Collect *c = userdata;

        (void)parent;
        if (!GMIME_IS_PART(part))
                return;
        if (g_mime_part_is_attachment(GMIME_PART(part)) || g_mime_part_get_filename(GMIME_PART(part)))
                g_ptr_array_add(c->parts, part);
}

static GPtrArray *attachment_parts(MimeMessage *msg) {
        Collect c = {.parts = g_ptr_array_new()};

        g_mime_message_foreach(msg->message, collect_cb, &c);
        return c.parts;
}

bool mime_message_has_attachment(MimeMessage *msg) {
        GPtrArray *parts = attachment_parts(msg);
        bool any = parts->len > 0;

        g_ptr_array_free(parts, TRUE);
        return any;
}

int mime_message_attachments(MimeMessage *msg, MimeAttachment **attp, size_t *n_attp) {
        GPtrArray *parts = attachment_parts(msg);
        MimeAttachment *att;

        *attp = NULL;
        *n_attp = 0;
        att = calloc(parts->len ? parts->len : 1, sizeof(*att));
        if (!att) {
                g_ptr_array_free(parts, TRUE);
                return -ENOMEM;
        }
        for (guint i = 0; i < parts->len; i++) {
                GMimePart *part = parts->pdata[i];
                GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
                const char *name = g_mime_part_get_filename(part); /* RFC 2231 and RFC 2047 decoded by GMime */
                GMimeStream *s = decoded_stream_new(part, false), *null = g_mime_stream_null_new();
                char *type = g_mime_content_type_get_mime_type(ct);

                if (s) { /* the decoded size, counted through a null stream: nothing kept */
                        g_mime_stream_write_to_stream(s, null);
                        att[i].size = GMIME_STREAM_NULL(null)->written;
                        g_object_unref(s);
                }
                g_object_unref(null);
                att[i].name = name ? strdup(name) : NULL;
                att[i].type = g_ascii_strdown(type, -1);
                g_free(type);
                if ((name && !att[i].name) || !att[i].type) {
                        mime_attachments_free(att, i + 1);
                        g_ptr_array_free(parts, TRUE);
                        return -ENOMEM;
                }
                /* g_ascii_strdown() allocates with g_malloc: hand malloc() memory to the caller */
                char *t = strdup(att[i].type);
                g_free(att[i].type);
                att[i].type = t;
                if (!t) {
                        mime_attachments_free(att, i + 1);
                        g_ptr_array_free(parts, TRUE);
                        return -ENOMEM;
                }
        }
        *n_attp = parts->len;
        *attp = att;
        g_ptr_array_free(parts, TRUE);
        return 0;
}

void mime_attachments_free(MimeAttachment *att, size_t n_att) {
        for (size_t i = 0; att && i < n_att; i++) {
                free(att[i].name);
                free(att[i].type);
        }
        free(att);
}

int mime_message_write_attachment(MimeMessage *msg, size_t index, int fd) {
        GPtrArray *parts = attachment_parts(msg);
        int r = MIME_TEXT_E_NONE;

        if (index < parts->len)
                r = write_part(parts->pdata[index], fd, false);
        g_ptr_array_free(parts, TRUE);
        return r;
}
