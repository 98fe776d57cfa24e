/*
 * imap-push-tool: a TEST TOOL (built, not installed) for the IMAP push module
 * (push.h). Runs it for one account of a config file on one libuv loop and
 * prints one line per callback until SIGTERM or SIGINT
 * (SIGUSR1: imap_push_stop(), prints "paused"; SIGUSR2: imap_push_start(), prints
 * "resumed ok|ERROR"; SIGHUP: imap_push_retry_now()):
 *
 *   changed FOLDER t=MS wall=EPOCH    (FOLDER "*" when the folder list changed)
 *   state connected mode=notify|idle
 *   state reconnecting delay=MS failure=NAME REASON
 *   state stopped failure=NAME REASON
 *
 * t is milliseconds since the tool started, wall the Unix time in seconds
 * with microseconds, for measuring delays against a delivery.
 *
 *   imap-push-tool --config FILE --account NAME [--no-notify] [--status-interval MS]
 *                  [--idle-renew MS] [--noop-after MS] [--noop-timeout MS]
 *                  [--coalesce MS] [--backoff-base MS]
 *
 * Exit codes: 0 after a signal, 64 usage or configuration, 70 internal.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/config.h"
#include "daemon/imap/push.h"
#include "util/log.h"

typedef struct Tool {
        ImapPush *push;
        uv_signal_t sigterm, sigint, sigusr1, sigusr2, sighup;
        uint64_t start_ns;
} Tool;

static double wall_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void changed_cb(ImapPush *p, const char *account, const char *folder, void *userdata) {
        Tool *t = userdata;

        printf("changed %s t=%" PRIu64 " wall=%.6f\n", folder ? folder : "*", (uv_hrtime() - t->start_ns) / 1000000,
               wall_now());
        fflush(stdout);
}

static void state_cb(ImapPush *p, ImapPushState state, const char *reason, void *userdata) {
        switch (state) {
        case IMAP_PUSH_CONNECTED:
                printf("state connected mode=%s\n", imap_push_mode_to_string(imap_push_get_mode(p)));
                break;
        case IMAP_PUSH_RECONNECTING:
                printf("state reconnecting delay=%" PRIu64 " failure=%s %s\n", imap_push_get_retry_ms(p),
                       net_failure_to_string(imap_push_get_failure(p)), reason ? reason : "");
                break;
        case IMAP_PUSH_STOPPED:
                printf("state stopped failure=%s %s\n", net_failure_to_string(imap_push_get_failure(p)),
                       reason ? reason : "");
                break;
        }
        fflush(stdout);
}

static void push_closed_cb(ImapPush *p, void *userdata) {
        Tool *t = userdata;

        t->push = NULL;
        uv_close((uv_handle_t *)&t->sigterm, NULL);
        uv_close((uv_handle_t *)&t->sigint, NULL);
        uv_close((uv_handle_t *)&t->sigusr1, NULL);
        uv_close((uv_handle_t *)&t->sigusr2, NULL);
        uv_close((uv_handle_t *)&t->sighup, NULL);
}

static void signal_cb(uv_signal_t *h, int signum) {
        Tool *t = h->data;

        if (!t->push)
                return;
        if (signum == SIGUSR1) {
                imap_push_stop(t->push);
                printf("paused\n");
                fflush(stdout);
        } else if (signum == SIGUSR2) {
                int r = imap_push_start(t->push);

                printf("resumed %s\n", r < 0 ? strerror(-r) : "ok");
                fflush(stdout);
        } else if (signum == SIGHUP)
                imap_push_retry_now(t->push);
        else
                imap_push_close(t->push, push_closed_cb);
}

static const ImapPushOps push_ops = {
        .changed = changed_cb,
        .state = state_cb,
};

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},       {"account", required_argument, NULL, 'a'},
                {"no-notify", no_argument, NULL, 'N'},          {"status-interval", required_argument, NULL, 's'},
                {"idle-renew", required_argument, NULL, 'r'},   {"noop-after", required_argument, NULL, 'n'},
                {"noop-timeout", required_argument, NULL, 't'}, {"coalesce", required_argument, NULL, 'C'},
                {"backoff-base", required_argument, NULL, 'b'}, {},
        };
        ImapPushOptions po = IMAP_PUSH_OPTIONS_DEFAULT;
        const char *config_path = NULL, *account = NULL;
        _cleanup_free_ char *err = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        static Tool t;
        const Account *a;
        uv_loop_t loop;
        int c, r;

        log_setup(argv[0]);
        if (sodium_init() < 0)
                return 70;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'a':
                        account = optarg;
                        break;
                case 'N':
                        po.use_notify = false;
                        break;
                case 's':
                        po.status_interval_ms = strtoull(optarg, NULL, 10);
                        break;
                case 'r':
                        po.idle_renew_ms = strtoull(optarg, NULL, 10);
                        break;
                case 'n':
                        po.noop_after_ms = strtoull(optarg, NULL, 10);
                        break;
                case 't':
                        po.noop_timeout_ms = strtoull(optarg, NULL, 10);
                        break;
                case 'C':
                        po.coalesce_ms = strtoull(optarg, NULL, 10);
                        break;
                case 'b':
                        po.backoff_base_ms = strtoull(optarg, NULL, 10);
                        break;
                default:
                        return 64;
                }
        }
        if (!config_path || !account) {
                fprintf(stderr, "usage: imap-push-tool --config FILE --account NAME [--no-notify] "
                                "[--status-interval MS] [--idle-renew MS] [--noop-after MS] [--noop-timeout MS] "
                                "[--coalesce MS] [--backoff-base MS]\n");
                return 64;
        }
        r = config_load(config_path, &config, &err);
        if (r < 0) {
                fprintf(stderr, "imap-push-tool: %s\n", err ? err : strerror(-r));
                return 64;
        }
        a = config_find_account(config, account);
        if (!a || a->imap.proto != SERVER_IMAP) {
                fprintf(stderr, "imap-push-tool: no IMAP account %s\n", account);
                return 64;
        }
        uv_loop_init(&loop);
        t.start_ns = uv_hrtime();
        uv_signal_init(&loop, &t.sigterm);
        uv_signal_init(&loop, &t.sigint);
        t.sigterm.data = t.sigint.data = &t;
        uv_signal_start(&t.sigterm, signal_cb, SIGTERM);
        uv_signal_start(&t.sigint, signal_cb, SIGINT);
        uv_signal_init(&loop, &t.sigusr1);
        uv_signal_init(&loop, &t.sigusr2);
        t.sigusr1.data = t.sigusr2.data = &t;
        uv_signal_start(&t.sigusr1, signal_cb, SIGUSR1);
        uv_signal_start(&t.sigusr2, signal_cb, SIGUSR2);
        uv_signal_init(&loop, &t.sighup);
        t.sighup.data = &t;
        uv_signal_start(&t.sighup, signal_cb, SIGHUP);
        r = imap_push_new(&loop, a, &po, &push_ops, &t, &t.push);
        if (r == 0) {
                r = imap_push_start(t.push);
                if (r < 0)
                        imap_push_close(t.push, push_closed_cb);
        } else
                push_closed_cb(NULL, &t);
        if (r < 0)
                fprintf(stderr, "imap-push-tool: cannot start: %s\n", strerror(-r));
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) < 0) {
                fprintf(stderr, "imap-push-tool: loop still has handles\n");
                return 70;
        }
        return r < 0 ? 70 : 0;
}
