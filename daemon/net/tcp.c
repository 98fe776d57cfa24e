/*
 * Resolve-then-connect on the libuv loop thread. A failed connect leaves the
 * socket unusable, so each address gets a fresh uv_tcp_t: the old handle is
 * closed and the next attempt starts from its close callback, reusing the
 * same embedded memory. One timer bounds the lookup and each attempt.
 *
 * n_pending counts open handles and requests in flight; close_cb fires when it
 * drops to zero, which is always from a libuv callback (the timer is open from
 * init to close), never inside net_tcp_close() itself.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "daemon/net/tcp.h"
#include "util/macro.h"

static void pending_put(NetTcp *t) {
        if (--t->n_pending == 0 && t->closing && t->close_cb)
                t->close_cb(t);
}

static void timer_close_cb(uv_handle_t *h) {
        pending_put(container_of((uv_timer_t *)h, NetTcp, timer));
}

int net_tcp_init(NetTcp *t, uv_loop_t *loop) {
        int r;

        *t = (NetTcp){ .loop = loop };
        r = uv_timer_init(loop, &t->timer);
        if (r < 0)
                return r;
        t->n_pending = 1;
        return 0;
}

/* Reports the outcome once; afterwards connect_cb is NULL. */
static void finish(NetTcp *t, int status) {
        NetTcpConnectFn cb = t->connect_cb;

        t->connect_cb = NULL;
        uv_timer_stop(&t->timer);
        if (cb)
                cb(t, status);
}

static void try_next(NetTcp *t);

static void addr_to_string(const struct sockaddr *sa, char *buf, size_t size) {
        if (sa->sa_family == AF_INET6)
                uv_ip6_name((const struct sockaddr_in6 *)sa, buf, size);
        else
                uv_ip4_name((const struct sockaddr_in *)sa, buf, size);
}

static void handle_close_cb(uv_handle_t *h) {
        NetTcp *t = container_of((uv_tcp_t *)h, NetTcp, handle);

        t->handle_open = false;
        if (!t->closing)
                try_next(t);
        pending_put(t);
}

/* The attempt on the current address failed with status: note why, move on. */
static void attempt_failed(NetTcp *t, int status) {
        char addr[INET6_ADDRSTRLEN] = "?";

        if (t->next)
                addr_to_string(t->next->ai_addr, addr, sizeof addr);
        snprintf(t->why, sizeof t->why, "%s (%s%s)",
                 status == UV_ETIMEDOUT ? "connection timed out" : uv_strerror(status), addr,
                 t->n_tried > 1 ? ", the last of several addresses tried" : "");
        t->status = status;
        t->attempt_live = false; /* the cancelled connect_cb of this attempt is ignored */
        t->next = t->next ? t->next->ai_next : NULL;
        uv_timer_stop(&t->timer);
        if (t->handle_open)
                uv_close((uv_handle_t *)&t->handle, handle_close_cb); /* continues in try_next */
        else
                try_next(t);
}

static void connect_cb(uv_connect_t *req, int status) {
        NetTcp *t = container_of(req, NetTcp, connect_req);

        pending_put(t);
        if (t->closing || !t->connect_cb || !t->attempt_live)
                return;
        t->attempt_live = false;
        if (status == 0) {
                t->connected = true;
                uv_tcp_nodelay(&t->handle, 1);
                uv_tcp_keepalive(&t->handle, 1, 60);
                finish(t, 0);
                return;
        }
        attempt_failed(t, status);
}

static void timeout_cb(uv_timer_t *timer) {
        NetTcp *t = container_of(timer, NetTcp, timer);

        if (t->resolving) {
                /* Still resolving: a getaddrinfo in the thread pool cannot be stopped; its
                 * callback will find connect_cb NULL and just free the result. */
                snprintf(t->why, sizeof t->why, "name lookup of %s timed out", t->host);
                finish(t, UV_ETIMEDOUT);
                return;
        }
        attempt_failed(t, UV_ETIMEDOUT);
}

static void try_next(NetTcp *t) {
        int r;

        if (!t->connect_cb)
                return;
        if (!t->next) {
                finish(t, t->status ? t->status : UV_ECONNREFUSED); /* t->why says more */
                return;
        }
        t->n_tried++;
        r = uv_tcp_init(t->loop, &t->handle);
        if (r < 0) {
                attempt_failed(t, r);
                return;
        }
        t->handle_open = true;
        t->n_pending++;
        r = uv_tcp_connect(&t->connect_req, &t->handle, t->next->ai_addr, connect_cb);
        if (r < 0) {
                attempt_failed(t, r);
                return;
        }
        t->n_pending++;
        t->attempt_live = true;
        if (t->timeout_ms)
                uv_timer_start(&t->timer, timeout_cb, t->timeout_ms, 0);
}

static void getaddrinfo_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
        NetTcp *t = container_of(req, NetTcp, gai);

        t->resolving = false;
        if (t->closing || !t->connect_cb) {
                uv_freeaddrinfo(res);
                pending_put(t);
                return;
        }
        if (status < 0) {
                snprintf(t->why, sizeof t->why, "cannot resolve %s: %s", t->host, uv_strerror(status));
                uv_freeaddrinfo(res);
                finish(t, status);
                pending_put(t);
                return;
        }
        t->addrs = t->next = res;
        uv_timer_stop(&t->timer);
        try_next(t);
        pending_put(t);
}

int net_tcp_connect(NetTcp *t, const char *host, uint16_t port, uint64_t timeout_ms, NetTcpConnectFn cb) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP };
        char service[8];
        int r;

        if (t->connect_cb || t->closing || t->addrs || strlen(host) >= sizeof t->host)
                return UV_EINVAL;
        snprintf(t->host, sizeof t->host, "%s", host);
        snprintf(service, sizeof service, "%u", port);
        hints.ai_flags = AI_NUMERICSERV;
        t->timeout_ms = timeout_ms;
        r = uv_getaddrinfo(t->loop, &t->gai, getaddrinfo_cb, host, service, &hints);
        if (r < 0)
                return r;
        t->n_pending++;
        t->resolving = true;
        t->connect_cb = cb;
        if (timeout_ms)
                uv_timer_start(&t->timer, timeout_cb, timeout_ms, 0);
        return 0;
}

void net_tcp_close(NetTcp *t, NetTcpCloseFn close_cb) {
        if (t->closing)
                return;
        t->closing = true;
        t->close_cb = close_cb;
        if (t->connect_cb) {
                snprintf(t->why, sizeof t->why, "cancelled");
                finish(t, UV_ECANCELED);
        }
        if (t->resolving)
                uv_cancel((uv_req_t *)&t->gai); /* its callback still runs, with UV_ECANCELED */
        if (t->handle_open && !uv_is_closing((uv_handle_t *)&t->handle))
                uv_close((uv_handle_t *)&t->handle, handle_close_cb);
        uv_close((uv_handle_t *)&t->timer, timer_close_cb);
        if (t->addrs) {
                uv_freeaddrinfo(t->addrs);
                t->addrs = t->next = NULL;
        }
}

bool net_tcp_peer_is_loopback(NetTcp *t) {
        struct sockaddr_storage ss;
        int len = sizeof ss;

        if (!t->connected || uv_tcp_getpeername(&t->handle, (struct sockaddr *)&ss, &len) < 0)
                return false;
        if (ss.ss_family == AF_INET)
                return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
        if (ss.ss_family == AF_INET6) {
                const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
                return IN6_IS_ADDR_LOOPBACK(a) ||
                       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
        }
        return false;
}
