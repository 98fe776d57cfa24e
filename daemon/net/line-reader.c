/*
 * The line splitter under every text protocol. It never assumes a whole
 * response is in memory: a line is buffered only while it is incomplete and at
 * most max_line bytes long, and a raw run (literal, message body) streams out in
 * the chunks it arrived in. Callbacks may switch to raw mode or stop the feed;
 * the reader holds no pointer to the caller's data after returning.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/net/line-reader.h"

void line_reader_init(LineReader *r, size_t max_line, LineReaderLineFn line_fn, LineReaderRawFn raw_fn,
                      void *userdata) {
        *r = (LineReader){
                .max_line = max_line,
                .line_fn = line_fn,
                .raw_fn = raw_fn,
                .userdata = userdata,
        };
}

void line_reader_deinit(LineReader *r) {
        free(r->buf);
        r->buf = NULL;
        r->n_buf = r->cap = 0;
}

bool line_reader_is_idle(const LineReader *r) {
        return r->n_buf == 0 && r->raw_left == 0;
}

int line_reader_expect_raw(LineReader *r, uint64_t n) {
        if (!r->raw_fn)
                return -EINVAL;
        if (r->n_buf > 0)
                return -EBUSY;
        r->raw_left = n;
        return 0;
}

/* Appends to the carried partial line; the caller checked the length limit. */
static int buf_append(LineReader *r, const char *data, size_t n) {
        if (r->n_buf + n + 1 > r->cap) {
                size_t cap = r->cap ? r->cap : 256;
                char *b;

                while (cap < r->n_buf + n + 1)
                        cap *= 2;
                b = realloc(r->buf, cap);
                if (!b)
                        return -ENOMEM;
                r->buf = b;
                r->cap = cap;
        }
        memcpy(r->buf + r->n_buf, data, n);
        r->n_buf += n;
        r->buf[r->n_buf] = '\0';
        return 0;
}

/* Emits line (length n, LF excluded), dropping a CR before the LF. */
static int emit_line(LineReader *r, char *line, size_t n) {
        if (n > 0 && line[n - 1] == '\r')
                n--;
        if (n > r->max_line)
                return LINE_READER_E_TOO_LONG;
        line[n] = '\0';
        return r->line_fn(r->userdata, line, n);
}

int line_reader_feed(LineReader *r, const char *data, size_t n, size_t *consumedp) {
        size_t pos = 0;
        int ret = 0;

        while (pos < n) {
                if (r->raw_left > 0) {
                        size_t chunk = n - pos;

                        if (chunk > r->raw_left)
                                chunk = (size_t)r->raw_left;
                        r->raw_left -= chunk;
                        pos += chunk;
                        ret = r->raw_fn(r->userdata, data + pos - chunk, chunk, r->raw_left == 0);
                        if (ret != 0)
                                break;
                        continue;
                }

                const char *lf = memchr(data + pos, '\n', n - pos);
                size_t len = lf ? (size_t)(lf - (data + pos)) : n - pos;

                /* +1: a CR that the LF will strip may sit at the limit. */
                if (r->n_buf + len > r->max_line + 1) {
                        ret = LINE_READER_E_TOO_LONG;
                        break;
                }
                if (!lf) {
                        ret = buf_append(r, data + pos, len);
                        if (ret == 0)
                                pos = n;
                        break;
                }
                /* The line callback gets a writable, NUL-terminated copy in our buffer
                 * (the caller's data is const); r->n_buf is reset before calling it so
                 * that it may switch to raw mode. */
                ret = buf_append(r, data + pos, len);
                if (ret < 0)
                        break;
                pos += len + 1;
                size_t line_len = r->n_buf;
                r->n_buf = 0;
                ret = emit_line(r, r->buf, line_len);
                if (ret != 0)
                        break;
        }
        if (consumedp)
                *consumedp = pos;
        return ret;
}
