/*
 * Credentials for an account, obtained asynchronously: the `password` from
 * the config, the first line printed by `password_command` or
 * `oauth2_token_command`, or else the Secret Service item with the
 * attributes service=tegami account=NAME (what
 * `secret-tool store --label=tegami service tegami account NAME` creates).
 * Secrets live in sodium_malloc'd memory and are wiped when freed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "util/macro.h"

typedef struct Cred {
        char *username;      /* malloc'd */
        char *secret;        /* secret memory (util/secret.h) */
        bool is_token;       /* OAuth 2 access token rather than a password */
} Cred;

typedef struct CredRequest CredRequest;

/*
 * The outcome, exactly once. On success status is 0 and the receiver owns
 * cred (cred_free). Otherwise cred is NULL, status a negative errno
 * (UV_ECANCELED after cred_request_cancel, UV_ETIMEDOUT for a hung command,
 * -ENOENT when nothing is stored, -EIO for a failing command) and error says
 * why without the secret, e.g. "password_command printed nothing".
 * The request is freed by the module after this returns.
 */
typedef void (*CredFn)(int status, Cred *cred, const char *error, void *userdata);

/*
 * Starts fetching a's credentials; a command gets timeout_ms (0 = 30 s) to
 * print its line, then its whole process group is killed. Returns 0 and
 * *reqp (valid until cb runs), or a negative errno (cb will not run).
 */
int cred_request_start(uv_loop_t *loop, const Account *a, uint64_t timeout_ms, CredFn cb, void *userdata,
                       CredRequest **reqp);

/* Stops req before its callback ran; the callback then runs with UV_ECANCELED. */
void cred_request_cancel(CredRequest *req);

/* True when running the source again may give a fresh secret (an OAuth 2 token command). */
bool cred_can_refresh(const Account *a);

/* "password", "password_command", "oauth2_token_command" or "Secret Service". */
const char *cred_source_name(const Account *a);

/* Wipes and frees c; accepts NULL; returns NULL. */
Cred *cred_free(Cred *c);
DEFINE_CLEANUP_FUNC(Cred *, cred_free);
