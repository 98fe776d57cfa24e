/*
 * NetStream tests on a real loop against a scripted local TCP server (plain
 * text; TLS is covered by tests/integration/test_net.py against Dovecot):
 * every callback exactly once, close safe twice, cancel while connecting,
 * refused connections, EOF, read timeout, overlong lines, raw runs, and the
 * STARTTLS injection refusal.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/net/stream.h"

typedef struct Case {
        NetStream stream;
        const char *script;       /* what the server sends at once on accept */
        size_t script_len;
        bool server_closes;       /* close the server side after sending */
        int n_connected, n_tls, n_failed, n_closed;
        int connected_status, tls_status, failed_status;
        char lines[2048];
        size_t n_raw;
        bool raw_done, close_in_connected;
} Case;

static uv_loop_t loop;
static uv_tcp_t server;
static uv_tcp_t peer;
static Case *current;
static int port;

static void peer_write_cb(uv_write_t *req, int status) {
        free(req);
}

static void peer_close_cb(uv_handle_t *h) {
}

static void peer_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
        static char sink[4096];
        *buf = uv_buf_init(sink, sizeof sink);
}

static void peer_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
        if (nread < 0 && !uv_is_closing((uv_handle_t *)s))
                uv_close((uv_handle_t *)s, peer_close_cb);
}

static void on_connection(uv_stream_t *srv, int status) {
        assert(status == 0);
        uv_tcp_init(&loop, &peer);
        assert(uv_accept(srv, (uv_stream_t *)&peer) == 0);
        uv_read_start((uv_stream_t *)&peer, peer_alloc_cb, peer_read_cb);
        if (current->script_len) {
                uv_write_t *req = malloc(sizeof *req);
                uv_buf_t b = uv_buf_init((char *)current->script, (unsigned)current->script_len);
                uv_write(req, (uv_stream_t *)&peer, &b, 1, peer_write_cb);
        }
        if (current->server_closes)
                uv_close((uv_handle_t *)&peer, peer_close_cb);
}

static void connected_cb(NetStream *s, int status, void *userdata) {
        Case *c = userdata;
        c->n_connected++;
        c->connected_status = status;
        if (c->close_in_connected) {
                net_stream_close(s);
                net_stream_close(s); /* safe twice */
        }
}

static void tls_ready_cb(NetStream *s, int status, void *userdata) {
        Case *c = userdata;
        c->n_tls++;
        c->tls_status = status;
}

static void line_cb(NetStream *s, const char *line, size_t n, void *userdata) {
        Case *c = userdata;
        const char *brace = strrchr(line, '{');

        size_t used = strlen(c->lines), take = n < 40 ? n : 40;

        assert(used + take + 2 < sizeof c->lines);
        memcpy(c->lines + used, line, take);
        memcpy(c->lines + used + take, "|", 2);
        if (strcmp(line, "A OK begin TLS") == 0)
                assert(net_stream_starttls(s) == 0);
        if (brace && line[n - 1] == '}')
                assert(net_stream_read_raw(s, strtoul(brace + 1, NULL, 10)) == 0);
}

static void raw_cb(NetStream *s, const char *data, size_t n, bool done, void *userdata) {
        Case *c = userdata;
        assert(!c->raw_done);
        c->n_raw += n;
        c->raw_done = done;
}

static void failed_cb(NetStream *s, int status, void *userdata) {
        Case *c = userdata;
        c->n_failed++;
        c->failed_status = status;
}

static void closed_cb(NetStream *s, void *userdata) {
        Case *c = userdata;
        c->n_closed++;
}

static const NetStreamOps ops = {
        .connected = connected_cb,
        .tls_ready = tls_ready_cb,
        .line = line_cb,
        .raw = raw_cb,
        .failed = failed_cb,
        .closed = closed_cb,
};

/* Runs one connection to 127.0.0.1:p until the loop has nothing left but the server. */
static void run_case(Case *c, int p, const char *scheme_tls, size_t max_line, uint64_t read_ms) {
        ServerUrl url = { .proto = SERVER_IMAP, .tls = SERVER_TLS_STARTTLS, .host = "127.0.0.1", .port = (uint16_t)p };
        Account a = { .name = "test", .address = "a@example.org", .tls_none = scheme_tls == NULL };

        current = c;
        assert(net_stream_init(&c->stream, &loop, max_line, &ops, c) == 0);
        net_stream_set_timeouts(&c->stream, 2000, read_ms, 0);
        assert(net_stream_write(&c->stream, "x", 1) == UV_ENOTCONN);
        assert(net_stream_connect(&c->stream, &a, &url) == 0);
        assert(net_stream_connect(&c->stream, &a, &url) < 0); /* once per stream */
        while (c->n_closed == 0) {
                uv_run(&loop, UV_RUN_ONCE);
                if ((c->n_failed || c->tls_status < 0 || c->connected_status < 0 || c->n_raw == 10) &&
                    c->stream.state < NET_STREAM_CLOSING)
                        net_stream_close(&c->stream);
        }
        net_stream_close(&c->stream); /* after closed: still a no-op */
        assert(c->n_closed == 1);
        if (!uv_is_closing((uv_handle_t *)&peer) && peer.type == UV_TCP)
                uv_close((uv_handle_t *)&peer, peer_close_cb);
        uv_run(&loop, UV_RUN_NOWAIT);
        memset(&peer, 0, sizeof peer);
}

#define SCRIPT(s) .script = (s), .script_len = sizeof(s) - 1

int main(void) {
        struct sockaddr_in addr;
        struct sockaddr_storage name;
        int len = sizeof name;

        assert(sodium_init() >= 0);
        uv_loop_init(&loop);
        uv_tcp_init(&loop, &server);
        uv_ip4_addr("127.0.0.1", 0, &addr);
        assert(uv_tcp_bind(&server, (struct sockaddr *)&addr, 0) == 0);
        assert(uv_listen((uv_stream_t *)&server, 8, on_connection) == 0);
        uv_tcp_getsockname(&server, (struct sockaddr *)&name, &len);
        port = ntohs(((struct sockaddr_in *)&name)->sin_port);

        {       /* lines and a raw run, split however TCP delivers them */
                Case c = { SCRIPT("* OK hi\r\n* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n") };
                run_case(&c, port, NULL, 0, 2000);
                assert(c.n_connected == 1 && c.connected_status == 0);
                assert(strcmp(c.lines, "* OK hi|* 1 FETCH (BODY[] {10}|)|") == 0);
                assert(c.n_raw == 10 && c.raw_done && c.n_failed == 0);
                printf("ok lines and raw\n");
        }
        {       /* overlong line */
                static char big[5000];
                memset(big, 'x', sizeof big);
                memcpy(big, "* OK hi\r\n", 9);
                Case c = { .script = big, .script_len = sizeof big };
                run_case(&c, port, NULL, 1024, 2000);
                assert(c.n_connected == 1 && c.n_failed == 1 && c.failed_status == UV_EPROTO);
                assert(net_stream_failure(&c.stream) == NET_FAILURE_PROTOCOL);
                assert(strstr(net_stream_error(&c.stream), "longer than 1024 bytes"));
                printf("ok overlong line: %s\n", net_stream_error(&c.stream));
        }
        {       /* bytes after the STARTTLS reply are an injection */
                Case c = { SCRIPT("* OK\r\nA OK begin TLS\r\n* 1 EXISTS\r\n") };
                run_case(&c, port, "tls", 0, 2000);
                assert(net_stream_needs_starttls(&c.stream) || c.stream.state >= NET_STREAM_CLOSING);
                assert(c.n_tls == 1 && c.tls_status == UV_EPROTO && c.n_failed == 0);
                assert(strstr(net_stream_error(&c.stream), "after its STARTTLS reply"));
                printf("ok injection: %s\n", net_stream_error(&c.stream));
        }
        {       /* the server hangs up */
                Case c = { SCRIPT("* OK\r\n"), .server_closes = true };
                run_case(&c, port, NULL, 0, 2000);
                assert(c.n_connected == 1 && c.n_failed == 1 && c.failed_status == UV_EOF);
                assert(net_stream_failure(&c.stream) == NET_FAILURE_NETWORK);
                printf("ok eof: %s\n", net_stream_error(&c.stream));
        }
        {       /* the server says nothing */
                Case c = { 0 };
                run_case(&c, port, NULL, 0, 200);
                assert(c.n_connected == 1 && c.n_failed == 1 && c.failed_status == UV_ETIMEDOUT);
                printf("ok read timeout: %s\n", net_stream_error(&c.stream));
        }
        {       /* closed inside connected */
                Case c = { SCRIPT("* OK\r\n"), .close_in_connected = true };
                run_case(&c, port, NULL, 0, 2000);
                assert(c.n_connected == 1 && c.connected_status == 0 && c.n_failed == 0 && c.lines[0] == 0);
                printf("ok close in callback\n");
        }
        {       /* cancelled while connecting */
                Case c = { 0 };
                ServerUrl url = { .proto = SERVER_IMAP, .tls = SERVER_TLS_IMPLICIT, .host = "127.0.0.1",
                                  .port = (uint16_t)port };
                Account a = { .name = "test", .address = "a@example.org" };
                current = &c;
                assert(net_stream_init(&c.stream, &loop, 0, &ops, &c) == 0);
                assert(net_stream_connect(&c.stream, &a, &url) == 0);
                net_stream_close(&c.stream);
                net_stream_close(&c.stream);
                assert(c.n_connected == 1 && c.connected_status == UV_ECANCELED && c.n_closed == 0);
                while (c.n_closed == 0)
                        uv_run(&loop, UV_RUN_ONCE);
                assert(c.n_connected == 1 && c.n_failed == 0 && c.n_closed == 1);
                if (peer.type == UV_TCP && !uv_is_closing((uv_handle_t *)&peer))
                        uv_close((uv_handle_t *)&peer, peer_close_cb);
                uv_run(&loop, UV_RUN_NOWAIT);
                memset(&peer, 0, sizeof peer);
                printf("ok cancel while connecting\n");
        }
        {       /* nobody listens */
                uv_tcp_t tmp;
                int closed_port;
                uv_tcp_init(&loop, &tmp);
                uv_tcp_bind(&tmp, (struct sockaddr *)&addr, 0);
                len = sizeof name;
                uv_tcp_getsockname(&tmp, (struct sockaddr *)&name, &len);
                closed_port = ntohs(((struct sockaddr_in *)&name)->sin_port);
                uv_close((uv_handle_t *)&tmp, NULL);
                uv_run(&loop, UV_RUN_NOWAIT);
                Case c = { 0 };
                run_case(&c, closed_port, NULL, 0, 2000);
                assert(c.n_connected == 1 && c.connected_status == UV_ECONNREFUSED && c.n_failed == 0);
                assert(strstr(net_stream_error(&c.stream), "connection refused"));
                printf("ok refused: %s\n", net_stream_error(&c.stream));
        }
        uv_close((uv_handle_t *)&server, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert(uv_loop_close(&loop) == 0);
        return 0;
}
