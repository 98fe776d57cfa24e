/*
 * libFuzzer target for the configuration loader: the input is a config file.
 * It is read from memory (fmemopen) through config_load_stream(), the code
 * config_load() runs on a real file, twice: as a file of mode 0600 and of
 * mode 0644. Checks: an error is -EINVAL with a message starting "FILE:LINE: ";
 * an accepted config satisfies what validate() promises (an address, exactly
 * one of imap/pop3, a username and folder list filled in, `tls = none` only
 * on loopback STARTTLS hosts, unique valid names); the 0644 load differs from
 * the 0600 one only by refusing a plaintext password. Any violation aborts.
 */
#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PATH "fuzz.ini"

static void check_account(const Config *c, const Account *a, mode_t mode) {
        const ServerUrl *urls[] = { &a->imap, &a->pop3, &a->smtp };

        if (!a->name || !*a->name || strlen(a->name) > 64 || config_find_account(c, a->name) != a)
                abort();
        if (!a->address || !a->username || !a->folders)
                abort();
        if (!a->imap.proto == !a->pop3.proto)
                abort();
        if (a->password && (mode & 077))
                abort();
        if ((a->password != NULL) + (a->password_command != NULL) + (a->oauth2_token_command != NULL) > 1)
                abort();
        if (a->tls_fingerprint && (strlen(a->tls_fingerprint) != 64 ||
                                   strspn(a->tls_fingerprint, "0123456789abcdef") != 64))
                abort();
        for (size_t i = 0; i < 3; i++) {
                const ServerUrl *u = urls[i];

                if (!u->proto)
                        continue;
                if (u->proto != (ServerProto)(SERVER_IMAP + i) || !u->host || !*u->host || u->port == 0 ||
                    !server_url_scheme(u))
                        abort();
                if (a->tls_none && (!host_is_loopback(u->host) || u->tls == SERVER_TLS_IMPLICIT))
                        abort();
        }
}

/* Loads the bytes as a file of the given mode; returns config_load_stream()'s result. */
static int load(const uint8_t *data, size_t size, mode_t mode, Config **cp) {
        static const char empty[1];
        char *err = NULL;
        FILE *f = fmemopen(size ? (void *)data : (void *)empty, size, "r");
        Config *c = NULL;
        int r;

        if (!f)
                abort();
        r = config_load_stream(f, PATH, mode, &c, &err);
        fclose(f);
        if (r == 0) {
                if (!c || err || c->n_ref != 1 || c->n_accounts == 0 || strcmp(c->path, PATH) != 0)
                        abort();
                for (size_t i = 0; i < c->n_accounts; i++)
                        check_account(c, &c->accounts[i], mode);
        } else {
                if (r != -EINVAL || c || !err || strncmp(err, PATH ":", strlen(PATH ":")) != 0)
                        abort();
                /* "FILE:LINE: " with a line number of at least 1 */
                if (strtoul(err + strlen(PATH ":"), NULL, 10) < 1 || !strstr(err, ": "))
                        abort();
        }
        free(err);
        *cp = c;
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool init;
        Config *private = NULL, *shared = NULL;
        bool password = false;
        int r_private, r_shared;

        if (!init) {
                if (sodium_init() < 0)
                        abort();
                init = true;
        }
        r_private = load(data, size, 0600, &private);
        r_shared = load(data, size, 0644, &shared);
        if ((r_private == 0) != (private != NULL))
                abort();
        if (private) {
                for (size_t i = 0; i < private->n_accounts; i++)
                        password |= private->accounts[i].password != NULL;
                /* Readable by others: refused exactly when a password is in it. */
                if ((r_shared == 0) == password)
                        abort();
                if (shared && shared->n_accounts != private->n_accounts)
                        abort();
        } else if (r_shared == 0) {
                abort(); /* looser mode accepted what 0600 refused */
        }
        config_free(private);
        config_free(shared);
        return 0;
}
