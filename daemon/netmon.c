/*
 * rtnetlink watcher: one NETLINK_ROUTE socket bound to the link, address and
 * route groups, read from a uv_poll; every RTM_NEWLINK of a running
 * interface, RTM_NEWADDR and RTM_NEWROUTE (re)starts a settle timer, whose
 * expiry is the one report of a burst. Deletions are not reported: losing
 * the network needs no retry, the sessions notice on their own.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/netmon.h"
#include "util/log.h"

struct Netmon {
        int fd;
        uv_poll_t poll;
        uv_timer_t settle;
        unsigned n_open; /* handles still to close */
        NetmonFn cb;
        void *userdata;
        NetmonClosedFn closed_cb;
        void *closed_userdata;
};

/* Whether one rtnetlink message says connectivity may have improved. */
static bool message_is_gain(const struct nlmsghdr *h) {
        switch (h->nlmsg_type) {
        case RTM_NEWLINK: {
                const struct ifinfomsg *ifi = NLMSG_DATA(h);

                return h->nlmsg_len >= NLMSG_LENGTH(sizeof *ifi) && (ifi->ifi_flags & IFF_UP) &&
                       (ifi->ifi_flags & IFF_RUNNING);
        }
        case RTM_NEWADDR:
        case RTM_NEWROUTE:
                return true;
        default:
                return false;
        }
}

static void settle_cb(uv_timer_t *t) {
        Netmon *m = t->data;

        log_debug("network: connectivity changed");
        m->cb(m->userdata);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
        Netmon *m = p->data;
        char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
        bool gain = false;

        if (status < 0) {
                log_warning("network: rtnetlink: %s; no longer watching for connectivity", uv_strerror(status));
                uv_poll_stop(p);
                return;
        }
        for (;;) {
                ssize_t n = recv(m->fd, buf, sizeof buf, MSG_DONTWAIT);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == ENOBUFS) {
                        gain = true; /* the kernel dropped messages: something changed */
                        continue;
                }
                if (n <= 0)
                        break;
                int len = (int)n;

                for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len))
                        gain = gain || message_is_gain(h);
        }
        if (gain)
                uv_timer_start(&m->settle, settle_cb, NETMON_SETTLE_MS, 0);
}

int netmon_new(uv_loop_t *loop, NetmonFn cb, void *userdata, Netmon **retp) {
        struct sockaddr_nl sa = {
                .nl_family = AF_NETLINK,
                .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
                             RTMGRP_IPV6_ROUTE,
        };
        Netmon *m;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->cb = cb;
        m->userdata = userdata;
        m->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                r = -errno;
                if (m->fd >= 0)
                        close(m->fd);
                free(m);
                return r;
        }
        r = uv_poll_init(loop, &m->poll, m->fd);
        if (r < 0) {
                close(m->fd);
                free(m);
                return r;
        }
        uv_timer_init(loop, &m->settle);
        m->poll.data = m->settle.data = m;
        m->n_open = 2;
        r = uv_poll_start(&m->poll, UV_READABLE, poll_cb);
        if (r < 0) {
                netmon_close(m, NULL, NULL);
                return r;
        }
        *retp = m;
        return 0;
}

static void handle_closed_cb(uv_handle_t *h) {
        Netmon *m = h->data;

        if (--m->n_open > 0)
                return;
        close(m->fd);
        if (m->closed_cb)
                m->closed_cb(m->closed_userdata);
        free(m);
}

void netmon_close(Netmon *m, NetmonClosedFn closed_cb, void *userdata) {
        m->closed_cb = closed_cb;
        m->closed_userdata = userdata;
        uv_close((uv_handle_t *)&m->poll, handle_closed_cb);
        uv_close((uv_handle_t *)&m->settle, handle_closed_cb);
}
