/*
 * Credential fetching on a real loop: the config password, password_command
 * (first line only, CRLF trimmed), its failures (exit status, nothing printed,
 * timeout with the whole process group killed), and cancellation. Each
 * callback must run exactly once and never from inside cred_request_start().
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/net/cred.h"
#include "util/secret.h"

typedef struct Result {
        int n_calls;
        int status;
        char secret[64];
        char error[256];
        bool is_token;
} Result;

static void cb(int status, Cred *cred, const char *error, void *userdata) {
        Result *r = userdata;

        r->n_calls++;
        r->status = status;
        if (cred) {
                snprintf(r->secret, sizeof r->secret, "%s", cred->secret);
                r->is_token = cred->is_token;
                assert(strcmp(cred->username, "alice") == 0);
                cred_free(cred);
        } else
                snprintf(r->error, sizeof r->error, "%s", error);
}

static Result fetch(uv_loop_t *loop, Account *a, uint64_t timeout_ms, bool cancel) {
        Result r = { 0 };
        CredRequest *req = NULL;

        assert(cred_request_start(loop, a, timeout_ms, cb, &r, &req) == 0);
        assert(r.n_calls == 0); /* never from inside start */
        if (cancel) {
                cred_request_cancel(req);
                assert(r.n_calls == 1 && r.status == UV_ECANCELED);
        }
        uv_run(loop, UV_RUN_DEFAULT); /* until every handle of the request is closed */
        assert(r.n_calls == 1);
        return r;
}

int main(void) {
        char pw[] = "hunter2";
        Account a = { .name = "work", .address = "alice@example.org", .username = "alice" };
        uv_loop_t loop;
        Result r;

        assert(sodium_init() >= 0);
        uv_loop_init(&loop);

        a.password = secret_strdup(pw);
        r = fetch(&loop, &a, 0, false);
        assert(r.status == 0 && strcmp(r.secret, "hunter2") == 0 && !r.is_token);
        a.password = secret_free(a.password);
        printf("ok password\n");

        a.password_command = "printf 'from-cmd\\r\\nsecond\\n'";
        r = fetch(&loop, &a, 0, false);
        assert(r.status == 0 && strcmp(r.secret, "from-cmd") == 0);
        printf("ok password_command\n");

        a.password_command = "exit 7";
        r = fetch(&loop, &a, 0, false);
        assert(r.status == -EIO && strstr(r.error, "exit status 7"));
        printf("ok failing command: %s\n", r.error);

        a.password_command = "true";
        r = fetch(&loop, &a, 0, false);
        assert(r.status == -ENOENT && strstr(r.error, "printed nothing"));
        printf("ok silent command: %s\n", r.error);

        /* A pipeline that hangs: the whole group dies at the timeout, and the loop ends. */
        a.password_command = "sleep 60 | cat";
        r = fetch(&loop, &a, 200, false);
        assert(r.status == UV_ETIMEDOUT && strstr(r.error, "timed out after 0.2 s"));
        printf("ok hanging command: %s\n", r.error);

        a.password_command = "sleep 60";
        r = fetch(&loop, &a, 0, true);
        assert(strcmp(r.error, "cancelled") == 0);
        printf("ok cancel\n");

        a.password_command = NULL;
        a.oauth2_token_command = "echo ya29.token";
        assert(cred_can_refresh(&a));
        r = fetch(&loop, &a, 0, false);
        assert(r.status == 0 && r.is_token && strcmp(r.secret, "ya29.token") == 0);
        printf("ok oauth2_token_command\n");

        assert(uv_loop_close(&loop) == 0);
        return 0;
}
