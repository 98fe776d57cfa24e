/*
 * Flag mapping and merging. Keyword sets are handled as small sorted arrays
 * of words pointing into one private copy of the string; a message carries a
 * handful of keywords, so linear scans are the simplest and fastest here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/imap/flags.h"
#include "store/message.h"
#include "util/macro.h"

static const struct {
        const char *name;
        uint32_t bit;
} flag_names[] = {
        {"\\Seen", STORE_FLAG_SEEN},       {"\\Answered", STORE_FLAG_ANSWERED}, {"\\Flagged", STORE_FLAG_FLAGGED},
        {"\\Deleted", STORE_FLAG_DELETED}, {"\\Draft", STORE_FLAG_DRAFT},       {"$Forwarded", STORE_FLAG_FORWARDED},
};

/* A set of keywords: words[] point into buf. */
typedef struct WordSet {
        char *buf;
        const char **words;
        size_t n;
} WordSet;

static void word_set_clear(WordSet *w) {
        free(w->buf);
        free(w->words);
        *w = (WordSet){};
}

static bool word_set_has(const WordSet *w, const char *word, size_t len) {
        for (size_t i = 0; i < w->n; i++)
                if (strncasecmp(w->words[i], word, len) == 0 && w->words[i][len] == '\0')
                        return true;
        return false;
}

static int word_cmp(const void *a, const void *b) {
        return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* Splits s (NULL is empty) on spaces into a deduplicated, sorted set. */
static int word_set_parse(const char *s, WordSet *w) {
        size_t len = s ? strlen(s) : 0;

        *w = (WordSet){};
        w->buf = malloc(len + 1);
        w->words = calloc(len / 2 + 1, sizeof(*w->words));
        if (!w->buf || !w->words) {
                word_set_clear(w);
                return -ENOMEM;
        }
        if (s)
                memcpy(w->buf, s, len + 1);
        else
                w->buf[0] = '\0';
        for (char *p = w->buf; *p;) {
                char *e;

                while (*p == ' ')
                        *p++ = '\0';
                if (!*p)
                        break;
                for (e = p; *e && *e != ' '; e++)
                        ;
                if (!word_set_has(w, p, (size_t)(e - p))) {
                        if (*e)
                                *e++ = '\0';
                        w->words[w->n++] = p;
                } else if (*e)
                        *e++ = '\0';
                p = e;
        }
        if (w->n > 1)
                qsort(w->words, w->n, sizeof(*w->words), word_cmp);
        return 0;
}

/* Joins words (already canonical order) into a malloc()ed string, NULL when n == 0. */
static int words_join(const char *const *words, size_t n, char **retp) {
        size_t len = 0, o = 0;
        char *s;

        if (n == 0) {
                *retp = NULL;
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                len += strlen(words[i]) + 1;
        s = malloc(len);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(words[i]);

                if (i > 0)
                        s[o++] = ' ';
                memcpy(s + o, words[i], l);
                o += l;
        }
        s[o] = '\0';
        *retp = s;
        return 0;
}

/* Sorts words[0..n) and joins them. */
static int words_sort_join(const char **words, size_t n, char **retp) {
        if (n > 1)
                qsort(words, n, sizeof(*words), word_cmp);
        return words_join(words, n, retp);
}

int imap_flags_parse(const ImapStrList *flags, uint32_t *maskp, char **keywordsp) {
        _cleanup_free_ const char **kw = NULL;
        size_t n_kw = 0;
        uint32_t mask = 0;

        kw = calloc(flags->n + 1, sizeof(*kw));
        if (!kw)
                return -ENOMEM;
        for (size_t i = 0; i < flags->n; i++) {
                const char *f = flags->v[i].s;
                bool known = false, dup = false;

                if (!f || !*f)
                        continue;
                for (size_t k = 0; k < ARRAY_SIZE(flag_names); k++)
                        if (strcasecmp(f, flag_names[k].name) == 0) {
                                mask |= flag_names[k].bit;
                                known = true;
                        }
                if (known || f[0] == '\\')
                        continue; /* \Recent, \*, and system flags this store has no bit for */
                for (size_t k = 0; k < n_kw; k++)
                        dup = dup || strcasecmp(kw[k], f) == 0;
                if (!dup)
                        kw[n_kw++] = f;
        }
        *maskp = mask;
        return words_sort_join(kw, n_kw, keywordsp);
}

/* An IMAP atom usable as a keyword: no atom-specials, no CTL or 8-bit, no "\" start. */
static bool keyword_valid(const char *k) {
        if (!*k || *k == '\\')
                return false;
        for (const unsigned char *p = (const unsigned char *)k; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
                        return false;
        return true;
}

int imap_flags_format(uint32_t mask, const char *keywords, char **retp) {
        _cleanup_(word_set_clear) WordSet w = {};
        const char *words[ARRAY_SIZE(flag_names)];
        _cleanup_free_ char *flags = NULL, *kw = NULL;
        size_t n = 0;
        int r;

        for (size_t k = 0; k < ARRAY_SIZE(flag_names); k++)
                if (mask & flag_names[k].bit)
                        words[n++] = flag_names[k].name;
        r = word_set_parse(keywords, &w);
        if (r < 0)
                return r;
        for (size_t i = 0; i < w.n; i++)
                if (!keyword_valid(w.words[i]))
                        return -EINVAL;
        r = words_join(words, n, &flags);
        if (r >= 0)
                r = words_join(w.words, w.n, &kw);
        if (r < 0)
                return r;
        if (asprintf(retp, "%s%s%s", flags ?: "", flags && kw ? " " : "", kw ?: "") < 0)
                return -ENOMEM;
        return 0;
}

int imap_keywords_normalize(const char *keywords, char **retp) {
        _cleanup_(word_set_clear) WordSet w = {};
        int r = word_set_parse(keywords, &w);

        return r < 0 ? r : words_join(w.words, w.n, retp);
}

int imap_keywords_apply(const char *keywords, const char *add, const char *remove, char **retp) {
        _cleanup_(word_set_clear) WordSet k = {}, a = {}, d = {};
        _cleanup_free_ const char **v = NULL;
        size_t n = 0;
        int r;

        if ((r = word_set_parse(keywords, &k)) < 0 || (r = word_set_parse(add, &a)) < 0 ||
            (r = word_set_parse(remove, &d)) < 0)
                return r;
        v = calloc(k.n + a.n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < k.n; i++)
                if (!word_set_has(&d, k.words[i], strlen(k.words[i])))
                        v[n++] = k.words[i];
        for (size_t i = 0; i < a.n; i++)
                if (!word_set_has(&d, a.words[i], strlen(a.words[i])) &&
                    !word_set_has(&k, a.words[i], strlen(a.words[i])))
                        v[n++] = a.words[i];
        return words_sort_join(v, n, retp);
}

/* Words of a that are not in b. */
static int word_set_minus(const WordSet *a, const WordSet *b, char **retp) {
        _cleanup_free_ const char **v = calloc(a->n + 1, sizeof(*v));
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < a->n; i++)
                if (!word_set_has(b, a->words[i], strlen(a->words[i])))
                        v[n++] = a->words[i];
        return words_join(v, n, retp);
}

int imap_keywords_diff(const char *from, const char *to, char **addp, char **removep) {
        _cleanup_(word_set_clear) WordSet f = {}, t = {};
        _cleanup_free_ char *add = NULL;
        int r;

        if ((r = word_set_parse(from, &f)) < 0 || (r = word_set_parse(to, &t)) < 0)
                return r;
        r = word_set_minus(&t, &f, &add);
        if (r < 0)
                return r;
        r = word_set_minus(&f, &t, removep);
        if (r < 0)
                return r;
        *addp = TAKE_PTR(add);
        return 0;
}

uint32_t imap_flags_merge(bool has_base, uint32_t base, uint32_t local, uint32_t server) {
        if (!has_base)
                return server;
        /* A bit flipped on either side (or both, to the same value) is flipped. */
        return base ^ ((local ^ base) | (server ^ base));
}

int imap_keywords_merge(bool has_base, const char *base, const char *local, const char *server, char **retp) {
        _cleanup_(word_set_clear) WordSet b = {}, l = {}, s = {};
        _cleanup_free_ const char **v = NULL;
        const WordSet *sets[3] = {&b, &l, &s};
        size_t n = 0;
        int r;

        if (!has_base)
                return imap_keywords_normalize(server, retp);
        if ((r = word_set_parse(base, &b)) < 0 || (r = word_set_parse(local, &l)) < 0 ||
            (r = word_set_parse(server, &s)) < 0)
                return r;
        v = calloc(b.n + l.n + s.n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        /* Every keyword of the union once, in the first set that has it. */
        for (size_t si = 0; si < 3; si++)
                for (size_t i = 0; i < sets[si]->n; i++) {
                        const char *k = sets[si]->words[i];
                        size_t len = strlen(k);
                        bool in_b = word_set_has(&b, k, len), in_l = word_set_has(&l, k, len),
                             in_s = word_set_has(&s, k, len), seen = false;

                        for (size_t j = 0; j < n; j++)
                                seen = seen || strcasecmp(v[j], k) == 0;
                        if (seen)
                                continue;
                        if ((in_l != in_b || in_s != in_b) ? !in_b : in_b)
                                v[n++] = k;
                }
        return words_sort_join(v, n, retp);
}
