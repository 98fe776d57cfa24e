/*
 * Escaping of account names into object path elements and back. Pure string
 * functions, no state; the encoding is the one systemd uses for unit paths,
 * so the mapping is injective and every output is a valid path element.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/path.h"

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

char *ipc_path_escape(const char *name) {
        static const char hex[] = "0123456789abcdef";
        size_t n = strlen(name);
        char *r, *p;

        if (n == 0 || n > SIZE_MAX / 3 - 1)
                return NULL;
        r = p = malloc(n * 3 + 1);
        if (!r)
                return NULL;
        for (const char *s = name; *s; s++) {
                if (is_alnum(*s)) {
                        *p++ = *s;
                        continue;
                }
                *p++ = '_';
                *p++ = hex[(unsigned char)*s >> 4];
                *p++ = hex[(unsigned char)*s & 15];
        }
        *p = '\0';
        return r;
}

char *ipc_path_from_account(const char *name) {
        char *e = ipc_path_escape(name), *r = NULL;

        if (!e)
                return NULL;
        if (asprintf(&r, IPC_PATH_ACCOUNTS "/%s", e) < 0)
                r = NULL;
        free(e);
        return r;
}

int ipc_path_to_account(const char *path, char **namep) {
        const char *e;
        char *r, *p;

        if (strncmp(path, IPC_PATH_ACCOUNTS "/", strlen(IPC_PATH_ACCOUNTS "/")) != 0)
                return -EINVAL;
        e = path + strlen(IPC_PATH_ACCOUNTS "/");
        if (!*e)
                return -EINVAL;
        r = p = malloc(strlen(e) + 1);
        if (!r)
                return -ENOMEM;
        while (*e) {
                int hi, lo;

                if (is_alnum(*e)) {
                        *p++ = *e++;
                        continue;
                }
                /* Only "_xx" escapes of bytes that needed escaping are canonical. */
                if (*e != '_' || (hi = unhex(e[1])) < 0 || (lo = unhex(e[2])) < 0 || (hi == 0 && lo == 0) ||
                    is_alnum((char)(hi << 4 | lo))) {
                        free(r);
                        return -EINVAL;
                }
                *p++ = (char)(hi << 4 | lo);
                e += 3;
        }
        *p = '\0';
        *namep = r;
        return 0;
}
