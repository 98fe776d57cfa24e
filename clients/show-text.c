/*
 * `tegami show` without --raw (see clients/show-text.h). GMime parses the
 * message from the file descriptor GetMessage handed over; the descriptor is
 * a seekable memfd, so GMime keeps parts as ranges of it instead of copying
 * them into memory, and the chosen part streams through the decoding filters
 * to standard output in chunks.
 */
#include <errno.h>
#include <gmime/gmime.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clients/show-text.h"

typedef struct Pick {
        GMimePart *plain, *text; /* first text/plain, first text/ anything; borrowed */
} Pick;

static void pick_cb(GMimeObject *parent, GMimeObject *part, gpointer userdata) {
        Pick *p = userdata;
        GMimeContentType *ct;

        if (!GMIME_IS_PART(part) || g_mime_part_is_attachment(GMIME_PART(part)))
                return;
        ct = g_mime_object_get_content_type(part);
        if (!g_mime_content_type_is_type(ct, "text", "*"))
                return;
        if (!p->plain && g_mime_content_type_is_type(ct, "text", "plain"))
                p->plain = GMIME_PART(part);
        if (!p->text)
                p->text = GMIME_PART(part);
}

/* Decodes part's content to standard output as UTF-8 with LF line ends. */
static int write_part(GMimePart *part) {
        GMimeDataWrapper *content = g_mime_part_get_content(part);
        const char *charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
        GMimeStream *out, *filtered;
        GMimeFilter *f;
        gint64 r;

        if (!content)
                return 0;
        out = g_mime_stream_pipe_new(STDOUT_FILENO);
        g_mime_stream_pipe_set_owner(GMIME_STREAM_PIPE(out), FALSE);
        filtered = g_mime_stream_filter_new(out);
        if (charset && g_ascii_strcasecmp(charset, "utf-8") != 0 && g_ascii_strcasecmp(charset, "us-ascii") != 0) {
                f = g_mime_filter_charset_new(charset, "UTF-8");
                if (f) { /* NULL for a charset iconv does not know: bytes go out as they are */
                        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
                        g_object_unref(f);
                }
        }
        f = g_mime_filter_dos2unix_new(FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
        g_object_unref(f);
        r = g_mime_data_wrapper_write_to_stream(content, filtered);
        if (r >= 0)
                r = g_mime_stream_flush(filtered);
        g_object_unref(filtered);
        g_object_unref(out);
        return r < 0 ? -EIO : 0;
}

int show_text_body(int fd) {
        GMimeStream *stream;
        GMimeParser *parser;
        GMimeMessage *msg;
        Pick pick = {};
        int copy, r;

        copy = dup(fd); /* the fs stream owns what it gets */
        if (copy < 0)
                return -errno;
        g_mime_init();
        stream = g_mime_stream_fs_new(copy);
        parser = g_mime_parser_new_with_stream(stream);
        g_mime_parser_set_persist_stream(parser, TRUE);
        msg = g_mime_parser_construct_message(parser, NULL);
        g_object_unref(parser);
        if (!msg) {
                g_object_unref(stream);
                g_mime_shutdown();
                return 1;
        }
        g_mime_message_foreach(msg, pick_cb, &pick); /* the top part too */
        r = pick.plain || pick.text ? write_part(pick.plain ? pick.plain : pick.text) : 1;
        g_object_unref(msg);
        g_object_unref(stream);
        g_mime_shutdown();
        return r;
}
