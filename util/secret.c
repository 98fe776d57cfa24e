/*
 * Secret strings on libsodium's guarded heap. sodium_malloc places each
 * allocation against a guard page and locks it in memory; sodium_free wipes it.
 * sodium_init() must have run (tegamid and the tests call it first thing).
 */
#include <sodium.h>
#include <string.h>

#include "util/secret.h"

char *secret_strndup(const char *s, size_t n) {
        char *p = sodium_malloc(n + 1);

        if (!p)
                return NULL;
        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

char *secret_strdup(const char *s) {
        return secret_strndup(s, strlen(s));
}

char *secret_free(char *p) {
        if (p)
                sodium_free(p);
        return NULL;
}
