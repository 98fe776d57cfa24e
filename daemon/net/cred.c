/*
 * Credential fetching. A CredRequest is a heap object on the loop thread that
 * owns a timer and, for commands, a uv_process_t and a uv_pipe_t for stdout;
 * it frees itself once its callback ran and every handle is closed.
 *
 * Commands run as `/bin/sh -c CMD` in their own process group (so a timeout
 * kills the whole pipeline), stdin from /dev/null, stderr inherited so the
 * user sees their tool's complaints. Only stdout's first line is kept, read
 * straight into secret memory.
 *
 * The Secret Service lookup (secret-service.c) blocks, so it runs on a libuv
 * worker thread (uv_queue_work): it never stalls the loop, and libdbus never
 * meets libuv (that glue is ipc/'s alone).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/net/cred.h"
#include "util/secret-service.h"
#include "util/secret.h"

#define SECRET_MAX 8192
#define DEFAULT_TIMEOUT_MS 30000

typedef enum CredSource {
        SOURCE_PASSWORD,
        SOURCE_COMMAND,
        SOURCE_SECRET_SERVICE,
} CredSource;

struct CredRequest {
        uv_loop_t *loop;
        CredSource source;
        const char *source_name;
        bool is_token;
        char *username;
        char *account;
        char *command;
        uint64_t timeout_ms;
        CredFn cb;
        void *userdata;

        uv_timer_t timer;
        uv_process_t process;
        uv_pipe_t out;
        uv_work_t work;
        unsigned n_open;          /* handles to close + work in flight */
        bool process_open, pipe_open, exited, eof, timed_out, done, cancelled, work_pending;
        int64_t exit_status;
        int term_signal;

        char *buf;                /* secret memory: stdout, or the Secret Service value */
        size_t n_buf;
        int status;               /* worker result */
        char error[256];
};

Cred *cred_free(Cred *c) {
        if (!c)
                return NULL;
        free(c->username);
        secret_free(c->secret);
        free(c);
        return NULL;
}

bool cred_can_refresh(const Account *a) {
        return a->oauth2_token_command != NULL;
}

const char *cred_source_name(const Account *a) {
        return a->password               ? "password"
               : a->password_command     ? "password_command"
               : a->oauth2_token_command ? "oauth2_token_command"
                                         : "Secret Service";
}

static void request_free(CredRequest *r) {
        secret_free(r->buf);
        free(r->username);
        free(r->account);
        free(r->command);
        free(r);
}

static void handle_closed_cb(uv_handle_t *h) {
        CredRequest *r = h->data;

        if (--r->n_open == 0)
                request_free(r);
}

static void close_handles(CredRequest *r) {
        if (!uv_is_closing((uv_handle_t *)&r->timer))
                uv_close((uv_handle_t *)&r->timer, handle_closed_cb);
        if (r->pipe_open && !uv_is_closing((uv_handle_t *)&r->out))
                uv_close((uv_handle_t *)&r->out, handle_closed_cb);
        /* The process handle waits for exit_cb: closing it earlier would leave a zombie unreaped. */
        if (r->process_open && r->exited && !uv_is_closing((uv_handle_t *)&r->process))
                uv_close((uv_handle_t *)&r->process, handle_closed_cb);
}

/* Calls back once with the result, then lets the handles go. */
static void complete(CredRequest *r, int status, const char *fmt, ...) _printf_(3, 4);
static void complete(CredRequest *r, int status, const char *fmt, ...) {
        Cred *c = NULL;
        va_list ap;

        if (r->done)
                return;
        r->done = true;
        if (status == 0) {
                c = calloc(1, sizeof *c);
                if (c) {
                        c->username = strdup(r->username);
                        c->secret = secret_strndup(r->buf, r->n_buf);
                        c->is_token = r->is_token;
                }
                if (!c || !c->username || !c->secret) {
                        c = cred_free(c);
                        status = -ENOMEM;
                        fmt = "out of memory";
                }
        }
        if (status < 0) {
                va_start(ap, fmt);
                vsnprintf(r->error, sizeof r->error, fmt, ap);
                va_end(ap);
        }
        if (status < 0 && r->process_open && r->process.pid > 0)
                uv_kill(-r->process.pid, SIGKILL); /* the whole group (a hung pipeline); exit_cb follows */
        r->cb(status, c, status < 0 ? r->error : NULL, r->userdata);
        close_handles(r);
}

/* A command's stdout is complete and it exited: judge the result. */
static void command_check(CredRequest *r) {
        char *nl;

        if (r->done || !r->exited || !r->eof)
                return;
        if (r->term_signal)
                return complete(r, -EIO, "%s was killed by signal %d", r->source_name, r->term_signal);
        if (r->exit_status != 0)
                return complete(r, -EIO, "%s failed (exit status %lld)", r->source_name, (long long)r->exit_status);
        nl = memchr(r->buf, '\n', r->n_buf);
        if (nl)
                r->n_buf = (size_t)(nl - r->buf);
        if (r->n_buf > 0 && r->buf[r->n_buf - 1] == '\r')
                r->n_buf--;
        if (r->n_buf == 0)
                return complete(r, -ENOENT, "%s printed %s", r->source_name,
                                nl ? "an empty first line" : "nothing");
        complete(r, 0, "ok");
}

static void exit_cb(uv_process_t *p, int64_t exit_status, int term_signal) {
        CredRequest *r = container_of(p, CredRequest, process);

        r->exited = true;
        r->exit_status = exit_status;
        r->term_signal = term_signal;
        if (r->done) {
                close_handles(r);
                return;
        }
        command_check(r);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
        CredRequest *r = h->data;

        /* Reads land in secret memory; one byte stays free for the NUL. */
        *buf = uv_buf_init(r->buf + r->n_buf, (unsigned)(SECRET_MAX - 1 - r->n_buf));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
        CredRequest *r = s->data;

        if (nread > 0) {
                r->n_buf += (size_t)nread;
                if (r->n_buf < SECRET_MAX - 1 && !memchr(r->buf, '\n', r->n_buf))
                        return;
                /* A whole first line (or the buffer is full): that is all we want. */
        } else if (nread == 0)
                return;
        uv_read_stop(s);
        r->eof = true;
        command_check(r);
}

static void timeout_cb(uv_timer_t *t) {
        CredRequest *r = t->data;

        r->timed_out = true;
        complete(r, UV_ETIMEDOUT, "%s timed out after %.1f s without printing a line", r->source_name,
                 (double)r->timeout_ms / 1000.0);
}

static void immediate_cb(uv_timer_t *t) {
        CredRequest *r = t->data;

        complete(r, 0, "ok");
}

static int start_command(CredRequest *r) {
        char *argv[] = { "/bin/sh", "-c", r->command, NULL };
        uv_stdio_container_t stdio[3] = {
                { .flags = UV_IGNORE },
                { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->out },
                { .flags = UV_INHERIT_FD, .data.fd = 2 },
        };
        uv_process_options_t opts = {
                .file = argv[0],
                .args = argv,
                .exit_cb = exit_cb,
                .stdio = stdio,
                .stdio_count = 3,
                .flags = UV_PROCESS_DETACHED, /* own process group: the timeout kills it all */
        };
        int ret;

        ret = uv_pipe_init(r->loop, &r->out, 0);
        if (ret < 0)
                return ret;
        r->out.data = r;
        r->pipe_open = true;
        r->n_open++;
        ret = uv_spawn(r->loop, &r->process, &opts);
        /* Even a failed uv_spawn leaves an initialised handle that must be closed. */
        r->process.data = r;
        r->process_open = true;
        r->n_open++;
        if (ret < 0) {
                r->exited = true;
                return ret;
        }
        ret = uv_read_start((uv_stream_t *)&r->out, alloc_cb, read_cb);
        if (ret < 0) {
                uv_kill(-r->process.pid, SIGKILL);
                return ret;
        }
        return uv_timer_start(&r->timer, timeout_cb, r->timeout_ms, 0);
}

static void work_cb(uv_work_t *w) {
        CredRequest *r = container_of(w, CredRequest, work);
        const SecretAttr attrs[] = { { "service", "tegami" }, { "account", r->account } };
        _cleanup_free_ char *err = NULL;
        uint8_t *secret = NULL;
        size_t n = 0;

        r->status = secret_service_lookup(attrs, ARRAY_SIZE(attrs), &secret, &n, &err);
        if (r->status == SECRET_SERVICE_E_NOT_FOUND) {
                r->status = -ENOENT;
                snprintf(r->error, sizeof r->error,
                         "no password found in the Secret Service; store one with: "
                         "secret-tool store --label='tegami %s' service tegami account %s",
                         r->account, r->account);
        } else if (r->status < 0)
                snprintf(r->error, sizeof r->error, "%s", err ? err : strerror(-r->status));
        else if (n == 0 || memchr(secret, '\0', n)) {
                r->status = -ENOENT;
                snprintf(r->error, sizeof r->error, "the Secret Service item is empty or not text");
        } else {
                /* The first line only, like password_command's output. */
                r->n_buf = 0;
                while (r->n_buf < n && r->n_buf < SECRET_MAX - 1 && secret[r->n_buf] != '\n' && secret[r->n_buf])
                        r->n_buf++;
                memcpy(r->buf, secret, r->n_buf);
        }
        if (secret)
                sodium_free(secret);
}

static void after_work_cb(uv_work_t *w, int status) {
        CredRequest *r = container_of(w, CredRequest, work);

        r->work_pending = false;
        r->n_open--; /* the timer is still open, so this never reaches 0 here */
        if (status == UV_ECANCELED || r->cancelled)
                complete(r, UV_ECANCELED, "cancelled");
        else if (r->status < 0) {
                char why[sizeof r->error];

                memcpy(why, r->error, sizeof why); /* complete() formats into r->error */
                complete(r, r->status, "%s", why);
        }
        else
                complete(r, 0, "ok");
}

int cred_request_start(uv_loop_t *loop, const Account *a, uint64_t timeout_ms, CredFn cb, void *userdata,
                       CredRequest **reqp) {
        CredRequest *r;
        int ret;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        *r = (CredRequest){ .loop = loop, .cb = cb, .userdata = userdata,
                            .timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS };
        r->username = strdup(a->username ? a->username : a->address);
        r->account = strdup(a->name);
        r->buf = sodium_malloc(SECRET_MAX);
        r->source_name = cred_source_name(a);
        if (a->password) {
                r->source = SOURCE_PASSWORD;
        } else if (a->password_command || a->oauth2_token_command) {
                r->source = SOURCE_COMMAND;
                r->is_token = a->oauth2_token_command != NULL;
                r->command = strdup(a->password_command ? a->password_command : a->oauth2_token_command);
        } else
                r->source = SOURCE_SECRET_SERVICE;
        if (!r->username || !r->account || !r->buf || (r->source == SOURCE_COMMAND && !r->command)) {
                request_free(r);
                return -ENOMEM;
        }
        ret = uv_timer_init(loop, &r->timer);
        if (ret < 0) {
                request_free(r);
                return ret;
        }
        r->timer.data = r;
        r->n_open = 1;

        switch (r->source) {
        case SOURCE_PASSWORD:
                r->n_buf = strnlen(a->password, SECRET_MAX - 1);
                memcpy(r->buf, a->password, r->n_buf);
                ret = uv_timer_start(&r->timer, immediate_cb, 0, 0); /* never call back from inside start */
                break;
        case SOURCE_COMMAND:
                ret = start_command(r);
                break;
        case SOURCE_SECRET_SERVICE:
                ret = uv_queue_work(loop, &r->work, work_cb, after_work_cb);
                if (ret == 0) {
                        r->work_pending = true;
                        r->n_open++;
                }
                break;
        }
        if (ret < 0) {
                r->done = true; /* no callback for a failed start */
                if (r->process_open && !r->exited)
                        uv_kill(-r->process.pid, SIGKILL);
                close_handles(r);
                return ret;
        }
        *reqp = r;
        return 0;
}

void cred_request_cancel(CredRequest *r) {
        if (r->done)
                return;
        r->cancelled = true;
        if (r->work_pending) {
                /* A lookup already running finishes on its thread; after_work reports the cancel. */
                uv_cancel((uv_req_t *)&r->work);
                return;
        }
        complete(r, UV_ECANCELED, "cancelled");
}
