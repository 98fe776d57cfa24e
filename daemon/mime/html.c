/*
 * HTML reduced to text for search and previews (declared in text.h): a single
 * pass that drops tags and comments, skips what <script> and <style> hold,
 * turns block ends (<br>, </p>, </div>, </tr>, </li>, headings) into line ends,
 * decodes the common named entities and numeric ones, and folds runs of
 * blanks. Not a renderer: good enough to find words in and to read. Pure.
 */
#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/mime/text.h"

/* Whether tag (just after '<', maybe '/') names one of names, followed by a delimiter. */
static bool tag_is(const char *p, const char *end, const char *const *names) {
        if (p < end && *p == '/')
                p++;
        for (; *names; names++) {
                size_t l = strlen(*names);

                if ((size_t)(end - p) >= l && !g_ascii_strncasecmp(p, *names, l) &&
                    (p + l == end || !g_ascii_isalnum(p[l])))
                        return true;
        }
        return false;
}

/* Appends the UTF-8 of the entity at p (after '&'); returns bytes consumed after '&', or 0 if none. */
static size_t entity(const char *p, const char *end, GString *out) {
        static const struct {
                const char *name;
                gunichar c;
        } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '}};
        const char *semi = memchr(p, ';', MIN((size_t)(end - p), 12));
        gunichar c = 0;

        if (!semi)
                return 0;
        if (*p == '#') {
                char *e;

                c = (p[1] == 'x' || p[1] == 'X') ? strtoul(p + 2, &e, 16) : strtoul(p + 1, &e, 10);
                if (e != semi || !g_unichar_validate(c) || c == 0)
                        return 0;
        } else {
                for (size_t i = 0; i < G_N_ELEMENTS(named) && !c; i++)
                        if ((size_t)(semi - p) == strlen(named[i].name) && !strncmp(p, named[i].name, semi - p))
                                c = named[i].c;
                if (!c)
                        return 0;
        }
        g_string_append_unichar(out, c);
        return semi + 1 - p;
}

static void put_space(GString *out) {
        if (out->len > 0 && out->str[out->len - 1] != ' ' && out->str[out->len - 1] != '\n')
                g_string_append_c(out, ' ');
}

static void put_newline(GString *out) {
        while (out->len > 0 && out->str[out->len - 1] == ' ')
                g_string_truncate(out, out->len - 1);
        if (out->len > 0 && !(out->len >= 2 && out->str[out->len - 1] == '\n' && out->str[out->len - 2] == '\n'))
                g_string_append_c(out, '\n');
}

int mime_html_to_text(const char *in, size_t n, char **textp, size_t *lenp) {
        static const char *const blocks[] = {"br", "p",  "div",   "tr", "li", "h1",         "h2",  "h3", "h4",
                                             "h5", "h6", "table", "ul", "ol", "blockquote", "pre", "hr", NULL};
        static const char *const skipped[] = {"script", "style", "head", "title", NULL};
        const char *p = in, *end = in + n, *skip_until = NULL;
        GString *out = g_string_sized_new(n / 2 + 16);

        while (p < end) {
                if (*p == '<') {
                        const char *close;

                        if (end - p >= 4 && !strncmp(p, "<!--", 4)) {
                                const char *e = g_strstr_len(p + 4, end - p - 4, "-->");
                                p = e ? e + 3 : end;
                                continue;
                        }
                        close = memchr(p, '>', end - p);
                        if (!close)
                                break;
                        if (skip_until) {
                                if (p[1] == '/' && tag_is(p + 1, close, (const char *const[]){skip_until, NULL}))
                                        skip_until = NULL;
                        } else if (p[1] != '/' && tag_is(p + 1, close, skipped)) {
                                for (size_t i = 0; skipped[i]; i++)
                                        if (tag_is(p + 1, close, (const char *const[]){skipped[i], NULL}))
                                                skip_until = skipped[i];
                        } else if (tag_is(p + 1, close, blocks)) {
                                put_newline(out);
                        }
                        p = close + 1;
                        continue;
                }
                if (skip_until) {
                        p++;
                        continue;
                }
                if (*p == '&') {
                        size_t used = entity(p + 1, end, out);

                        if (used) {
                                p += used + 1;
                                continue;
                        }
                }
                if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
                        put_space(out);
                else
                        g_string_append_c(out, *p);
                p++;
        }
        while (out->len > 0 && (out->str[out->len - 1] == ' ' || out->str[out->len - 1] == '\n'))
                g_string_truncate(out, out->len - 1);
        g_string_append_c(out, '\n');
        *textp = strndup(out->str, out->len);
        *lenp = out->len;
        g_string_free(out, TRUE);
        return *textp ? 0 : -ENOMEM;
}
