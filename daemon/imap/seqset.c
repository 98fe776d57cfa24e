/*
 * IMAP sequence sets ("1:3,5,7:*") as lists of ranges: parsing a set the
 * client holds as text (a saved VANISHED or COPYUID answer, a test table),
 * compacting one into sorted, disjoint ranges, and membership. The parser's
 * events carry sets already in this form. Pure functions; the caller owns
 * every array.
 */
#include <errno.h>
#include <stdlib.h>

#include "daemon/imap/parser.h"

/* Reads nz-number or "*" at s[*ip]; false when there is neither. */
static bool seq_number(const char *s, size_t len, size_t *ip, uint32_t *vp) {
        uint64_t v = 0;
        size_t i = *ip;

        if (i < len && s[i] == '*') {
                *vp = IMAP_SEQ_STAR;
                *ip = i + 1;
                return true;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9') {
                v = v * 10 + (uint64_t)(s[i++] - '0');
                if (v > UINT32_MAX)
                        return false;
        }
        if (i == *ip || v == 0)
                return false;
        *vp = (uint32_t)v;
        *ip = i;
        return true;
}

/* See parser.h. */
int imap_seqset_parse(const char *s, size_t len, ImapRange **rangesp, size_t *n_rangesp) {
        _cleanup_free_ ImapRange *v = NULL;
        size_t n = 0, cap = 0, i = 0;

        do {
                ImapRange r;

                if (n == cap) {
                        size_t c = cap ? cap * 2 : 8;
                        ImapRange *nv = reallocarray(v, c, sizeof *nv);

                        if (!nv)
                                return -ENOMEM;
                        v = nv;
                        cap = c;
                }
                if (!seq_number(s, len, &i, &r.first))
                        return IMAP_PARSER_E_SYNTAX;
                r.last = r.first;
                if (i < len && s[i] == ':' && (++i, !seq_number(s, len, &i, &r.last)))
                        return IMAP_PARSER_E_SYNTAX;
                if (r.first != IMAP_SEQ_STAR && r.last != IMAP_SEQ_STAR && r.first > r.last) {
                        uint32_t t = r.first;

                        r.first = r.last;
                        r.last = t;
                }
                v[n++] = r;
        } while (i < len && s[i] == ',' && (i++, true));
        if (i != len)
                return IMAP_PARSER_E_SYNTAX;
        *rangesp = TAKE_PTR(v);
        *n_rangesp = n;
        return 0;
}

static int range_cmp(const void *a, const void *b) {
        const ImapRange *x = a, *y = b;

        return x->first < y->first ? -1 : x->first > y->first;
}

/* See parser.h. */
size_t imap_seqset_compact(ImapRange *r, size_t n, uint32_t star) {
        size_t out = 0;

        for (size_t i = 0; i < n; i++) {
                if (r[i].first == IMAP_SEQ_STAR)
                        r[i].first = star;
                if (r[i].last == IMAP_SEQ_STAR)
                        r[i].last = star;
                if (r[i].first > r[i].last) {
                        uint32_t t = r[i].first;

                        r[i].first = r[i].last;
                        r[i].last = t;
                }
        }
        if (n == 0)
                return 0;
        qsort(r, n, sizeof *r, range_cmp);
        for (size_t i = 1; i < n; i++) {
                /* Overlapping or adjacent: last + 1 computed in 64 bits so UINT32_MAX does not wrap. */
                if ((uint64_t)r[i].first <= (uint64_t)r[out].last + 1) {
                        if (r[i].last > r[out].last)
                                r[out].last = r[i].last;
                } else {
                        r[++out] = r[i];
                }
        }
        return out + 1;
}

/* See parser.h. */
bool imap_seqset_contains(const ImapRange *r, size_t n, uint32_t v, uint32_t star) {
        for (size_t i = 0; i < n; i++) {
                uint32_t a = r[i].first == IMAP_SEQ_STAR ? star : r[i].first;
                uint32_t b = r[i].last == IMAP_SEQ_STAR ? star : r[i].last;

                if ((a <= v && v <= b) || (b <= v && v <= a))
                        return true;
        }
        return false;
}
