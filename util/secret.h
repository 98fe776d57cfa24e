/*
 * Secrets (passwords, tokens, keys) live in sodium_malloc'd memory: guarded,
 * locked against swapping where the system allows, and wiped when freed.
 */
#pragma once

#include <stddef.h>

#include "util/macro.h"

/* Copies the NUL-terminated s into secret memory; NULL on allocation failure. */
char *secret_strdup(const char *s);

/* Copies n bytes of s (plus a terminating NUL) into secret memory. */
char *secret_strndup(const char *s, size_t n);

/* Wipes and frees p (from secret_*); accepts NULL; returns NULL. */
char *secret_free(char *p);

static inline void secret_freep(char **p) {
        secret_free(*p);
}
#define _cleanup_secret_ _cleanup_(secret_freep)
