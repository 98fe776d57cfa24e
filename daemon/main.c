/*
 * tegamid: command line, start-up checks, then the libuv loop. Start-up
 * failures (bad options, bad config, unusable data dir) exit non-zero with a
 * message; everything after start-up is reported per account and never ends
 * the process.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/imap/sync.h"
#include "daemon/pop3/fetch.h"
#include "ipc/server.h"
#include "util/log.h"

enum { EXIT_USAGE = 2, EXIT_CONFIG = 3 };

static void usage(FILE *f) {
        fputs("Usage: tegamid [OPTIONS]\n"
              "Keep mail accounts in sync and serve them on the D-Bus session bus.\n\n"
              "  -c, --config FILE     configuration file (default $XDG_CONFIG_HOME/tegami/config.ini)\n"
              "  -d, --data-dir DIR    data directory (default $XDG_DATA_HOME/tegami)\n"
              "      --once            sync every account once, then exit\n"
              "      --account NAME    with --once: only this account\n"
              "      --check-config    validate the configuration and exit\n"
              "  -l, --log-level LVL   error, warning, notice, info (default) or debug\n"
              "  -V, --version         print the version and exit\n"
              "  -h, --help            print this help and exit\n",
              f);
}

static char *default_data_dir(void) {
        const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        char *r = NULL;

        if (x && *x == '/')
                return asprintf(&r, "%s/tegami", x) < 0 ? NULL : r;
        if (!home || !*home)
                return NULL;
        return asprintf(&r, "%s/.local/share/tegami", home) < 0 ? NULL : r;
}

/* Creates dir (and missing parents) private to the user. */
static int make_private_dir(const char *dir) {
        _cleanup_free_ char *copy = strdup(dir);
        struct stat st;

        if (!copy)
                return -ENOMEM;
        for (char *p = copy + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        if (mkdir(copy, 0700) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        if (mkdir(copy, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (stat(copy, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return 0;
}

/*
 * Connects to the session bus. Without one tegamid runs on (cron, --once);
 * when another process owns org.tegami.Mail1 start-up fails with 1. With
 * --once the name is not taken, so a running tegamid is left alone.
 */
static int start_ipc(Daemon *d, uv_loop_t *loop, bool once) {
        _cleanup_free_ char *err = NULL;
        IpcServer *s;
        int r;

        r = ipc_server_new(loop, d, !once, &s, &err);
        switch (r) {
        case 0:
                return 0; /* the server closes itself when the daemon stops */
        case IPC_SERVER_E_NO_BUS:
                log_warning("%s: continuing without D-Bus", err ? err : "no session bus");
                return 0;
        case IPC_SERVER_E_NAME_TAKEN:
                log_error("%s", err ? err : "org.tegami.Mail1 is already owned on the session bus");
                return 1;
        default:
                log_error("D-Bus: %s", err ? err : strerror(-r));
                return 1;
        }
}

/* What --once is running: POP3 fetches first, then IMAP syncs; the exit is non-zero if any account failed. */
typedef struct Once {
        Daemon *d;
        const char *account;
        bool failed;
} Once;

static Once once_state;

/* Both kinds are over: stop, then let the store close. */
static void once_finish(Once *o) {
        daemon_stop(o->d, o->failed ? EXIT_FAILURE : 0);
        /* After stopping: a SIGTERM meanwhile waited for the syncs before closing the store. */
        daemon_store_release(o->d);
}

static void once_imap_done_cb(size_t n_synced, size_t n_failed, void *userdata) {
        Once *o = userdata;

        log_info("--once: %zu IMAP account(s) synced, %zu failed", n_synced, n_failed);
        o->failed = o->failed || n_failed > 0;
        once_finish(o);
}

/* Starts the IMAP syncs; false when there are none to wait for. */
static bool once_start_imap(Once *o) {
        int r = imap_sync_all_start(o->d->loop, o->d->store, o->d->config, o->account, once_imap_done_cb, o);

        if (r == -ENOENT)
                return false;
        if (r < 0) {
                log_error("--once: IMAP: %s", strerror(-r));
                o->failed = true;
                return false;
        }
        return true;
}

static void once_pop3_done_cb(size_t n_fetched, size_t n_failed, void *userdata) {
        Once *o = userdata;

        log_info("--once: %zu POP3 account(s) fetched, %zu failed", n_fetched, n_failed);
        o->failed = o->failed || n_failed > 0;
        if (!once_start_imap(o))
                once_finish(o);
}

/*
 * --once: fetches the POP3 accounts, then syncs the IMAP accounts (or only
 * the one asked for), then stops; each account's outcome is logged.
 */
static void once_start(Daemon *d, const char *account) {
        Once *o = &once_state;
        int r;

        *o = (Once){.d = d, .account = account};
        if (!d->store) {
                log_error("--once: the store is locked: unlock it with `tegami unlock` first");
                return daemon_stop(d, EXIT_FAILURE);
        }
        daemon_store_hold(d);
        r = pop3_fetch_all_start(d->loop, d->store, d->config, account, (int64_t)time(NULL), once_pop3_done_cb, o);
        if (r == 0)
                return;
        if (r != -ENOENT) {
                log_error("--once: POP3: %s", strerror(-r));
                o->failed = true;
        }
        if (!once_start_imap(o))
                once_finish(o);
}

int main(int argc, char **argv) {
        enum { OPT_ONCE = 0x100, OPT_ACCOUNT, OPT_CHECK };
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "data-dir", required_argument, NULL, 'd' },
                { "once", no_argument, NULL, OPT_ONCE },
                { "account", required_argument, NULL, OPT_ACCOUNT },
                { "check-config", no_argument, NULL, OPT_CHECK },
                { "log-level", required_argument, NULL, 'l' },
                { "version", no_argument, NULL, 'V' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_free_ char *config_path = NULL, *data_dir = NULL, *err = NULL;
        const char *account = NULL;
        bool once = false, check = false;
        Config *config = NULL;
        Daemon d;
        uv_loop_t loop;
        int c, r;

        log_setup(argv[0]);
        /* A server that hangs up makes the next write fail with EPIPE, which its session handles;
         * the default SIGPIPE would end the whole process instead (found by tests/proof). */
        signal(SIGPIPE, SIG_IGN);
        while ((c = getopt_long(argc, argv, "c:d:l:Vh", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        free(config_path);
                        config_path = strdup(optarg);
                        break;
                case 'd':
                        free(data_dir);
                        data_dir = strdup(optarg);
                        break;
                case OPT_ONCE:
                        once = true;
                        break;
                case OPT_ACCOUNT:
                        account = optarg;
                        break;
                case OPT_CHECK:
                        check = true;
                        break;
                case 'l':
                        if (log_level_from_string(optarg) < 0) {
                                log_error("unknown log level \"%s\"", optarg);
                                return EXIT_USAGE;
                        }
                        log_set_max_level(log_level_from_string(optarg));
                        break;
                case 'V':
                        printf("tegamid %s\n", TEGAMI_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument \"%s\"", argv[optind]);
                return EXIT_USAGE;
        }
        if (account && !once) {
                log_error("--account is only meaningful with --once");
                return EXIT_USAGE;
        }
        if (sodium_init() < 0) {
                log_error("libsodium failed to initialise");
                return EXIT_FAILURE;
        }

        if (!config_path && !(config_path = config_default_path())) {
                log_error("no configuration file: pass --config or set HOME");
                return EXIT_CONFIG;
        }
        r = config_load(config_path, &config, &err);
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                return EXIT_CONFIG;
        }
        if (account && !config_find_account(config, account)) {
                log_error("%s: no account \"%s\"", config_path, account);
                config_free(config);
                return EXIT_CONFIG;
        }
        if (check) {
                printf("%s: %zu account(s), configuration is valid\n", config_path, config->n_accounts);
                config_free(config);
                return 0;
        }

        if (!data_dir && !(data_dir = default_data_dir())) {
                log_error("no data directory: pass --data-dir or set HOME");
                config_free(config);
                return EXIT_CONFIG;
        }
        r = make_private_dir(data_dir);
        if (r < 0) {
                log_error("data directory %s: %s", data_dir, strerror(-r));
                config_free(config);
                return EXIT_FAILURE;
        }

        r = uv_loop_init(&loop);
        if (r < 0) {
                log_error("event loop: %s", uv_strerror(r));
                config_free(config);
                return EXIT_FAILURE;
        }
        r = daemon_init(&d, &loop, config, config_path, data_dir);
        d.once = once; /* once_start() runs the accounts; no scheduler */
        /* The bus name first: a second tegamid stops before saying "running". */
        if (r >= 0)
                r = start_ipc(&d, &loop, once);
        if (r == 0) {
                r = daemon_start(&d, &err);
                if (r != 0) {
                        log_error("start-up failed: %s", err ? err : strerror(r < 0 ? -r : EINVAL));
                        daemon_stop(&d, EXIT_FAILURE);
                        r = 0;
                }
        }
        if (r < 0) {
                log_error("start-up failed: %s", uv_strerror(r));
                daemon_stop(&d, EXIT_FAILURE);
        } else if (d.stopping) {
                /* start-up failed above and said why */
        } else if (r > 0) {
                daemon_stop(&d, EXIT_FAILURE);
        } else if (once) {
                once_start(&d, account);
        }

        uv_run(&loop, UV_RUN_DEFAULT);
        r = d.exit_code;
        daemon_deinit(&d);
        if (uv_loop_close(&loop) < 0)
                log_warning("event loop closed with handles still open");
        ipc_shutdown();
        return r;
}
