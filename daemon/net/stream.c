/*
 * NetStream: TCP (tcp.c) + optional TLS (tls.c) + line reader (line-reader.c)
 * on the libuv loop thread. The owner (a protocol session) embeds the struct;
 * the stream embeds its two handles (the NetTcp's socket and timer, and its
 * own timeout timer) and frees its buffers in one place, stream_free_internal(),
 * after the last close callback, then calls ops->closed.
 *
 * Plaintext never follows a STARTTLS reply in the same read: whatever the
 * server sent after that reply is refused as an injection (CVE-2011-0411).
 * With `tls = none` the peer's address must be loopback, checked on the
 * connected socket and not just on the configured name.
 */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/net/stream.h"
#include "util/log.h"

#define READ_BUF_SIZE (16 * 1024)
#define FEED_STOP 100 /* line/raw callbacks stop the line reader (distinct from its own codes) */

typedef struct WriteReq {
        uv_write_t req;
        size_t n;
        char data[];
} WriteReq;

static void stream_fail(NetStream *s, NetFailure failure, int status, const char *fmt, ...) _printf_(4, 5);

static void stream_free_internal(NetStream *s) {
        s->tls = net_tls_free(s->tls);
        line_reader_deinit(&s->reader);
        free(s->rbuf);
        free(s->pbuf);
        free(s->account);
        free(s->host);
        free(s->ca_file);
        free(s->fingerprint);
        s->rbuf = s->pbuf = s->account = s->host = s->ca_file = s->fingerprint = NULL;
}

static void handle_gone(NetStream *s) {
        if (--s->n_open > 0)
                return;
        stream_free_internal(s);
        s->state = NET_STREAM_CLOSED;
        if (s->ops->closed)
                s->ops->closed(s, s->userdata); /* may free s */
}

static void timer_close_cb(uv_handle_t *h) {
        handle_gone(container_of((uv_timer_t *)h, NetStream, timer));
}

static void tcp_close_cb(NetTcp *t) {
        handle_gone(container_of(t, NetStream, tcp));
}

/* Hands one line reader event on; stops the feed when the owner changed the state. */
static int line_cb(void *userdata, const char *line, size_t n) {
        NetStream *s = userdata;

        if (s->ops->line)
                s->ops->line(s, line, n, s->userdata);
        return s->state != NET_STREAM_OPEN || s->starttls_requested ? FEED_STOP : 0;
}

static int raw_cb(void *userdata, const char *data, size_t n, bool done) {
        NetStream *s = userdata;

        if (s->ops->raw)
                s->ops->raw(s, data, n, done, s->userdata);
        return s->state != NET_STREAM_OPEN || s->starttls_requested ? FEED_STOP : 0;
}

int net_stream_init(NetStream *s, uv_loop_t *loop, size_t max_line, const NetStreamOps *ops, void *userdata) {
        int r;

        *s = (NetStream){
                .loop = loop,
                .ops = ops,
                .userdata = userdata,
                .connect_timeout_ms = 30000,
                .read_timeout_ms = 120000,
        };
        line_reader_init(&s->reader, max_line ? max_line : NET_STREAM_MAX_LINE_DEFAULT, line_cb, raw_cb, s);
        r = uv_timer_init(loop, &s->timer);
        if (r < 0)
                return r;
        r = net_tcp_init(&s->tcp, loop);
        if (r < 0) {
                /* Nothing to report to anyone yet: close quietly. */
                uv_close((uv_handle_t *)&s->timer, NULL);
                return r;
        }
        s->n_open = 2;
        return 0;
}

void net_stream_set_timeouts(NetStream *s, uint64_t connect_ms, uint64_t read_ms, uint64_t idle_ms) {
        s->connect_timeout_ms = connect_ms;
        s->read_timeout_ms = read_ms;
        s->idle_timeout_ms = idle_ms;
}

static void timeout_cb(uv_timer_t *timer) {
        NetStream *s = container_of(timer, NetStream, timer);
        uint64_t ms = s->waiting ? s->read_timeout_ms : s->idle_timeout_ms;

        stream_fail(s, NET_FAILURE_NETWORK, UV_ETIMEDOUT, "%s for %.1f s", s->waiting ? "no reply" : "idle",
                    (double)ms / 1000.0);
}

static void arm_timer(NetStream *s) {
        uint64_t ms = s->waiting ? s->read_timeout_ms : s->idle_timeout_ms;

        if (s->state >= NET_STREAM_FAILED)
                return;
        if (ms)
                uv_timer_start(&s->timer, timeout_cb, ms, 0);
        else
                uv_timer_stop(&s->timer);
}

void net_stream_set_waiting(NetStream *s, bool waiting) {
        s->waiting = waiting;
        arm_timer(s);
}

/* Delivers the end of a pending connect or STARTTLS, or else a failure, exactly once. */
static void report(NetStream *s, int status) {
        if (s->connect_pending) {
                s->connect_pending = false;
                s->ops->connected(s, status, s->userdata);
        } else if (s->tls_pending) {
                s->tls_pending = false;
                s->ops->tls_ready(s, status, s->userdata);
        } else if (status < 0 && s->ops->failed)
                s->ops->failed(s, status, s->userdata);
}

_printf_(4, 0) static void stream_failv(NetStream *s, NetFailure failure, int status, const char *fmt, va_list ap) {
        char reason[512];

        if (s->state >= NET_STREAM_FAILED)
                return;
        vsnprintf(reason, sizeof reason, fmt, ap);
        snprintf(s->error, sizeof s->error, "%s: %s", s->where, reason);
        s->failure = failure;
        s->status = status;
        s->state = NET_STREAM_FAILED;
        uv_timer_stop(&s->timer);
        if (s->tcp.connected)
                uv_read_stop((uv_stream_t *)&s->tcp.handle);
        log_acct_debug(s->account, "%s (%s failure)", s->error, net_failure_to_string(failure));
}

static void stream_fail(NetStream *s, NetFailure failure, int status, const char *fmt, ...) {
        va_list ap;

        if (s->state >= NET_STREAM_FAILED)
                return;
        va_start(ap, fmt);
        stream_failv(s, failure, status, fmt, ap);
        va_end(ap);
        report(s, status);
}

int net_stream_fail(NetStream *s, NetFailure failure, const char *fmt, ...) {
        int status = failure == NET_FAILURE_AUTH || failure == NET_FAILURE_CREDENTIALS ? UV_EACCES : UV_EPROTO;
        va_list ap;

        va_start(ap, fmt);
        stream_failv(s, failure, status, fmt, ap);
        va_end(ap);
        return status;
}

int net_stream_refuse_downgrade(NetStream *s, const char *what) {
        return net_stream_fail(s, NET_FAILURE_DOWNGRADE,
                               "%s was not offered by the server; refusing to continue without TLS "
                               "(possible downgrade attack)",
                               what);
}

static void write_cb(uv_write_t *req, int status) {
        WriteReq *w = container_of(req, WriteReq, req);
        NetStream *s = req->data;

        /* Plaintext writes may carry credentials (`tls = none`): wipe before freeing. */
        sodium_memzero(w->data, w->n);
        free(w);
        if (status < 0 && status != UV_ECANCELED)
                stream_fail(s, NET_FAILURE_NETWORK, status, "write failed: %s", uv_strerror(status));
        else if (status == 0 && s->state == NET_STREAM_OPEN && s->ops->written)
                s->ops->written(s, s->userdata);
}

/* Writes n raw bytes to the socket (ciphertext, or plaintext without TLS). */
static int socket_write(NetStream *s, const void *data, size_t n) {
        WriteReq *w;
        uv_buf_t buf;
        int r;

        w = malloc(sizeof *w + n);
        if (!w)
                return -ENOMEM;
        w->n = n;
        memcpy(w->data, data, n);
        w->req.data = s;
        buf = uv_buf_init(w->data, (unsigned)n);
        r = uv_write(&w->req, (uv_stream_t *)&s->tcp.handle, &buf, 1, write_cb);
        if (r < 0) {
                sodium_memzero(w->data, n);
                free(w);
        }
        return r;
}

/* Sends whatever ciphertext the TLS engine produced. */
static int flush_tls(NetStream *s) {
        char buf[READ_BUF_SIZE];
        size_t n;
        int r;

        while ((n = net_tls_take_output(s->tls, buf, sizeof buf)) > 0) {
                r = socket_write(s, buf, n);
                if (r < 0) {
                        stream_fail(s, NET_FAILURE_NETWORK, r, "write failed: %s", uv_strerror(r));
                        return r;
                }
        }
        return 0;
}

static void start_tls(NetStream *s);

/* Runs plaintext through the line reader; starts a requested TLS upgrade afterwards. */
static void feed_plain(NetStream *s, const char *data, size_t n) {
        size_t used = 0;
        int r;

        s->in_feed = true;
        r = line_reader_feed(&s->reader, data, n, &used);
        s->in_feed = false;
        if (s->state != NET_STREAM_OPEN)
                return; /* closed or failed in a callback */
        if (r == FEED_STOP)
                r = 0;
        if (r == LINE_READER_E_TOO_LONG) {
                stream_fail(s, NET_FAILURE_PROTOCOL, UV_EPROTO, "server sent a line longer than %zu bytes",
                            s->reader.max_line);
                return;
        }
        if (r < 0) {
                stream_fail(s, NET_FAILURE_NETWORK, r, "%s", strerror(-r));
                return;
        }
        if (s->starttls_requested) {
                if (used < n || !line_reader_is_idle(&s->reader)) {
                        stream_fail(s, NET_FAILURE_PROTOCOL, UV_EPROTO,
                                    "server sent data after its STARTTLS reply (possible injection attack)");
                        return;
                }
                start_tls(s);
        }
}

/* Advances the TLS engine after ciphertext arrived: handshake, then plaintext. */
static void pump_tls(NetStream *s) {
        NetFailure failure = NET_FAILURE_PROTOCOL;
        char why[512];
        size_t n;
        int r;

        if (!s->tls_done) {
                r = net_tls_handshake(s->tls, &failure, why, sizeof why);
                if (flush_tls(s) < 0)
                        return;
                if (r == NET_TLS_AGAIN)
                        return;
                if (r != 0) {
                        stream_fail(s, failure, UV_EPROTO, "%s", why);
                        return;
                }
                s->tls_done = true;
                s->state = NET_STREAM_OPEN;
                log_acct_debug(s->account, "%s: %s, certificate verified", s->where,
                               net_tls_describe(s->tls, why, sizeof why));
                report(s, 0);
                if (s->state != NET_STREAM_OPEN)
                        return;
        }
        while (s->state == NET_STREAM_OPEN) {
                r = net_tls_read(s->tls, s->pbuf, READ_BUF_SIZE, &n, why, sizeof why);
                if (flush_tls(s) < 0)
                        return;
                if (r == NET_TLS_AGAIN)
                        return;
                if (r == NET_TLS_CLOSED) {
                        stream_fail(s, NET_FAILURE_NETWORK, UV_EOF, "server closed the TLS session");
                        return;
                }
                if (r != 0) {
                        stream_fail(s, NET_FAILURE_PROTOCOL, UV_EPROTO, "%s", why);
                        return;
                }
                feed_plain(s, s->pbuf, n);
        }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
        NetStream *s = container_of((NetTcp *)container_of((uv_tcp_t *)h, NetTcp, handle), NetStream, tcp);

        *buf = uv_buf_init(s->rbuf, READ_BUF_SIZE);
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
        NetStream *s = container_of((NetTcp *)container_of((uv_tcp_t *)h, NetTcp, handle), NetStream, tcp);

        if (s->state != NET_STREAM_OPEN && s->state != NET_STREAM_HANDSHAKE)
                return;
        if (nread < 0) {
                if (nread == UV_EOF)
                        stream_fail(s, NET_FAILURE_NETWORK, UV_EOF, "connection closed by the server");
                else
                        stream_fail(s, NET_FAILURE_NETWORK, (int)nread, "%s", uv_strerror((int)nread));
                return;
        }
        if (nread == 0)
                return;
        arm_timer(s);
        if (s->tls) {
                if (net_tls_feed(s->tls, buf->base, (size_t)nread) < 0) {
                        stream_fail(s, NET_FAILURE_NETWORK, -ENOMEM, "out of memory");
                        return;
                }
                pump_tls(s);
        } else
                feed_plain(s, buf->base, (size_t)nread);
}

static void start_tls(NetStream *s) {
        NetTlsConfig cfg = { .host = s->host, .ca_file = s->ca_file, .fingerprint = s->fingerprint };
        char why[512];
        int r;

        s->starttls_requested = false; /* from here on the socket carries ciphertext */
        s->state = NET_STREAM_HANDSHAKE;
        s->waiting = true;
        arm_timer(s);
        r = net_tls_new(&cfg, &s->tls, why, sizeof why);
        if (r == NET_TLS_FAILED) {
                stream_fail(s, NET_FAILURE_CERTIFICATE, UV_EPROTO, "%s", why); /* a configuration problem */
                return;
        }
        if (r < 0) {
                stream_fail(s, NET_FAILURE_NETWORK, r, "%s", strerror(-r));
                return;
        }
        pump_tls(s); /* sends the ClientHello */
}

static void tcp_connected_cb(NetTcp *t, int status) {
        NetStream *s = container_of(t, NetStream, tcp);
        int r;

        if (status == UV_ECANCELED && s->state >= NET_STREAM_CLOSING)
                return; /* net_stream_close() reported it already */
        if (status < 0) {
                stream_fail(s, NET_FAILURE_NETWORK, status, "%s", t->why);
                return;
        }
        if (s->tls_none && !net_tcp_peer_is_loopback(t)) {
                stream_fail(s, NET_FAILURE_DOWNGRADE, UV_EPROTO,
                            "tls = none, but the connected address is not loopback; refusing plain text");
                return;
        }
        r = uv_read_start((uv_stream_t *)&t->handle, alloc_cb, read_cb);
        if (r < 0) {
                stream_fail(s, NET_FAILURE_NETWORK, r, "%s", uv_strerror(r));
                return;
        }
        log_acct_debug(s->account, "%s: TCP connected", s->where);
        if (s->mode == SERVER_TLS_IMPLICIT) {
                start_tls(s);
                return;
        }
        s->state = NET_STREAM_OPEN;
        arm_timer(s);
        report(s, 0);
}

static char *strdup_or_null(const char *s, bool *oom) {
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                *oom = true;
        return d;
}

int net_stream_connect(NetStream *s, const Account *a, const ServerUrl *url) {
        bool oom = false;
        int r;

        if (s->state != NET_STREAM_NEW || url->proto == SERVER_NONE || !url->host)
                return -EINVAL;
        s->account = strdup_or_null(a->name, &oom);
        s->host = strdup_or_null(url->host, &oom);
        s->ca_file = strdup_or_null(a->ca_file, &oom);
        s->fingerprint = strdup_or_null(a->tls_fingerprint, &oom);
        s->rbuf = malloc(READ_BUF_SIZE);
        s->pbuf = malloc(READ_BUF_SIZE);
        if (oom || !s->rbuf || !s->pbuf)
                return -ENOMEM;
        s->port = url->port;
        s->mode = url->tls;
        s->tls_none = a->tls_none && url->tls == SERVER_TLS_STARTTLS;
        snprintf(s->where, sizeof s->where, strchr(url->host, ':') ? "[%s]:%u" : "%s:%u", url->host, url->port);

        r = net_tcp_connect(&s->tcp, s->host, s->port, s->connect_timeout_ms, tcp_connected_cb);
        if (r < 0)
                return r;
        s->state = NET_STREAM_CONNECTING;
        s->connect_pending = true;
        s->waiting = true;
        return 0;
}

bool net_stream_needs_starttls(const NetStream *s) {
        return s->mode == SERVER_TLS_STARTTLS && !s->tls_none && !s->tls;
}

int net_stream_starttls(NetStream *s) {
        if (s->state != NET_STREAM_OPEN || s->tls || s->starttls_requested || s->connect_pending)
                return UV_EINVAL;
        s->starttls_requested = true;
        s->tls_pending = true;
        if (!s->in_feed) {
                /* Outside the line callback: nothing may be buffered either. */
                if (!line_reader_is_idle(&s->reader)) {
                        s->tls_pending = false;
                        s->starttls_requested = false;
                        return UV_EINVAL;
                }
                start_tls(s);
        }
        return 0;
}

bool net_stream_is_tls(const NetStream *s) {
        return s->tls && s->tls_done;
}

bool net_stream_is_secure(const NetStream *s) {
        if (net_stream_is_tls(s))
                return true;
        return s->tls_none && s->state == NET_STREAM_OPEN && net_tcp_peer_is_loopback((NetTcp *)&s->tcp);
}

int net_stream_write(NetStream *s, const void *data, size_t n) {
        /* Nothing goes out between a STARTTLS reply and the start of the handshake. */
        if (s->state != NET_STREAM_OPEN || s->starttls_requested)
                return UV_ENOTCONN;
        if (n == 0)
                return 0;
        if (s->tls) {
                if (net_tls_write(s->tls, data, n) != 0) {
                        stream_fail(s, NET_FAILURE_PROTOCOL, UV_EPROTO, "TLS write failed");
                        return UV_EPROTO;
                }
                return flush_tls(s);
        }
        return socket_write(s, data, n);
}

size_t net_stream_write_queue_size(const NetStream *s) {
        return s->tcp.connected ? s->tcp.handle.write_queue_size : 0;
}

int net_stream_read_raw(NetStream *s, uint64_t n) {
        return line_reader_expect_raw(&s->reader, n);
}

const char *net_stream_error(const NetStream *s) {
        return s->error;
}

NetFailure net_stream_failure(const NetStream *s) {
        return s->failure;
}

void net_stream_close(NetStream *s) {
        if (s->state >= NET_STREAM_CLOSING)
                return;
        if (s->state < NET_STREAM_FAILED)
                snprintf(s->error, sizeof s->error, "%s: cancelled", s->where);
        s->state = NET_STREAM_CLOSING;
        if (s->tcp.connected)
                uv_read_stop((uv_stream_t *)&s->tcp.handle);
        if (s->connect_pending || s->tls_pending)
                report(s, UV_ECANCELED); /* only a pending connected / tls_ready hears of it */
        uv_timer_stop(&s->timer);
        uv_close((uv_handle_t *)&s->timer, timer_close_cb);
        net_tcp_close(&s->tcp, tcp_close_cb);
}
