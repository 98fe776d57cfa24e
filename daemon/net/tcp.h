/*
 * Outgoing TCP connections on libuv: resolve a host name, then try every
 * address it has (IPv6 and IPv4, in the resolver's order) until one accepts,
 * each within a connect timeout. Embedded in NetStream; moves no bytes itself.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct NetTcp NetTcp;

/* status 0: t->handle is connected; otherwise a UV_E* code and t->why says what failed. */
typedef void (*NetTcpConnectFn)(NetTcp *t, int status);
/* Every handle and request of t is gone; its memory may be reused. */
typedef void (*NetTcpCloseFn)(NetTcp *t);

struct NetTcp {
        uv_loop_t *loop;
        uv_tcp_t handle;            /* re-initialised for each address tried */
        uv_timer_t timer;           /* connect timeout */
        uv_getaddrinfo_t gai;
        uv_connect_t connect_req;
        struct addrinfo *addrs, *next;
        uint64_t timeout_ms;
        unsigned n_tried;
        unsigned n_pending;         /* open handles + requests in flight */
        int status;                 /* of the last failed attempt */
        bool handle_open, attempt_live, resolving, connected, closing;
        char host[256];
        char why[400];              /* reason of the last failure, for messages */
        NetTcpConnectFn connect_cb;
        NetTcpCloseFn close_cb;
};

/* Prepares t (initialises its timer); after this t must be closed with net_tcp_close(). Returns 0 or UV_E*. */
int net_tcp_init(NetTcp *t, uv_loop_t *loop);

/*
 * Starts connecting to host:port; cb runs exactly once (UV_ECANCELED when
 * closed first) unless this returns an error. timeout_ms bounds the name
 * lookup and each address tried (0 = none).
 */
int net_tcp_connect(NetTcp *t, const char *host, uint16_t port, uint64_t timeout_ms, NetTcpConnectFn cb);

/* Closes everything; close_cb runs once when all is gone. Safe twice (the second call is ignored). */
void net_tcp_close(NetTcp *t, NetTcpCloseFn close_cb);

/* True when the connected peer address is loopback (127/8, ::1). */
bool net_tcp_peer_is_loopback(NetTcp *t);
