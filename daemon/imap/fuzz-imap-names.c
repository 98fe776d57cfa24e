/*
 * libFuzzer target for the pure helpers the IMAP sync engine runs on what a
 * server sends: modified UTF-7 mailbox names, keyword strings and folder
 * patterns. Input: three fields separated by '\n' (a, b, c); byte 0 of c (if
 * any) is also the hierarchy delimiter and a flag mask. Checks:
 *   - a name that decodes and re-encodes gives back the same bytes, and what
 *     the encoder produces decodes to the original UTF-8;
 *   - canonical keyword strings are fixed points of normalize; apply and
 *     merge return canonical strings; apply(from, diff(from, to)) is to
 *     (as a set: case-insensitively);
 *   - imap_flags_format and imap_folder_wanted do not crash.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/imap/flags.h"
#include "daemon/imap/folders.h"
#include "daemon/imap/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *x, const char *y) {
        return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

static bool same_set(const char *x, const char *y) {
        return (!x && !y) || (x && y && strcasecmp(x, y) == 0);
}

/* n must be canonical: normalize leaves it as it is. */
static void check_canonical(const char *n) {
        char *again = NULL;

        if (imap_keywords_normalize(n, &again) < 0 || !same(n, again))
                abort();
        free(again);
}

/* s[0..len) with a NUL after it (and maybe inside). */
static void fuzz_mutf7(const char *s, size_t len) {
        char *dec = NULL, *enc = NULL, *back = NULL;

        if (imap_mutf7_decode(s, len, &dec) == 0) {
                if (!dec || strlen(dec) > len * 2)
                        abort();
                if (imap_mutf7_encode(dec, &enc) == 0 && (strlen(enc) != len || memcmp(enc, s, len) != 0))
                        abort();
                free(enc);
                enc = NULL;
        }
        free(dec);
        if (strlen(s) == len && imap_mutf7_encode(s, &enc) == 0) {
                if (imap_mutf7_decode(enc, strlen(enc), &back) != 0 || strcmp(back, s) != 0)
                        abort();
                free(back);
                free(enc);
        }
}

static void fuzz_keywords(const char *a, const char *b, const char *c) {
        char *na = NULL, *nb = NULL, *add = NULL, *rm = NULL, *to = NULL, *applied = NULL, *merged = NULL, *f = NULL;
        uint32_t mask = c[0] ? (uint32_t)(unsigned char)c[0] : 0;

        if (imap_keywords_normalize(a, &na) < 0 || imap_keywords_normalize(b, &nb) < 0)
                abort();
        check_canonical(na);
        check_canonical(nb);
        if (imap_keywords_diff(na, nb, &add, &rm) < 0)
                abort();
        check_canonical(add);
        check_canonical(rm);
        /* Equal as sets: keywords compare case-insensitively and apply keeps from's spelling. */
        if (imap_keywords_apply(na, add, rm, &to) < 0 || !same_set(to, nb))
                abort();
        if (imap_keywords_apply(a, b, c, &applied) < 0)
                abort();
        check_canonical(applied);
        if (imap_keywords_merge(mask & 1, a, b, c, &merged) < 0)
                abort();
        check_canonical(merged);
        if (imap_flags_format(mask, a, &f) == 0 && !f)
                abort();
        free(na);
        free(nb);
        free(add);
        free(rm);
        free(to);
        free(applied);
        free(merged);
        free(f);
}

static void fuzz_folders(char *a, const char *b, const char *c) {
        char *patterns[9], *save = NULL;
        size_t n = 0;

        for (char *w = strtok_r(a, " ", &save); w && n < 8; w = strtok_r(NULL, " ", &save))
                patterns[n++] = w;
        patterns[n] = NULL;
        (void)imap_folder_wanted(patterns, b, c[0]);
        (void)imap_folder_wanted(NULL, b, c[0]);
        (void)imap_folder_role(b, c[0] ? (unsigned)(unsigned char)c[0] : 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *copy = malloc(size + 1), *a, *b, *c, *nl;

        if (!copy)
                abort();
        memcpy(copy, data, size);
        copy[size] = '\0';
        fuzz_mutf7(copy, size);
        a = copy;
        b = (nl = strchr(a, '\n')) ? (*nl = '\0', nl + 1) : copy + size;
        c = (nl = strchr(b, '\n')) ? (*nl = '\0', nl + 1) : copy + size;
        fuzz_keywords(a, b, c);
        fuzz_folders(a, b, c);
        free(copy);
        return 0;
}
