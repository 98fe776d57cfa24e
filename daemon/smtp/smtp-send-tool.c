/*
 * smtp-send-tool: a TEST TOOL, built and not installed. It sends one message
 * file through an account of a config file the way the daemon will: prepare
 * (prepare.c), then one submission session (client.c); with --store, through
 * the durable outbox instead (outbox.c over store/outbox.h). It stands in for
 * the D-Bus Send method in the integration tests until that exists.
 * Single-threaded on one libuv loop; main() owns everything.
 *
 *   smtp-send-tool --config FILE --account NAME [-f FROM] [--rcpt ADDR]...
 *                  [--no-chunking] [--no-pipelining] [--timeout MS]
 *                  [--dsn-notify LIST] [--dsn-ret FULL|HDRS] [--helo NAME]
 *                  [--store PATH] MESSAGE-FILE
 *   smtp-send-tool --config FILE --account NAME --store PATH --resume [--kick]
 *
 * Direct: prints "RESULT <outcome> <code> <reply>" and one
 * "RCPT <addr> <code> <text>" per recipient; errors on stderr.
 * With --store (a plain, unencrypted store file): queues the message
 * ("QUEUED <id>" once durable), runs the outbox until it is idle (each state
 * change as "EVENT <id> <state> <next_attempt> <reply>"), then lists every
 * item as "ITEM <id> <state> <attempts> <rcpts> <last_reply>". --resume
 * queues nothing: it recovers after a crash and sends what is due; --kick
 * makes every queued item due now (connectivity came back).
 * Exit codes: 0 sent to every recipient, 1 sent but some recipients refused,
 * 2 permanent failure (nothing sent), 3 transient failure (outbox: queued
 * for later), 4 account error (credentials, authentication, certificate,
 * downgrade), 5 the message cannot be sent as it is (prepare), 6 unknown
 * (outbox: lost after the final dot), 64 usage or configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/smtp/client.h"
#include "daemon/smtp/outbox.h"
#include "daemon/smtp/prepare.h"
#include "daemon/smtp/reply.h"
#include "util/log.h"

typedef struct Tool {
        int exit_code;
        uv_loop_t *loop;
        const Account *acct;
        const SmtpMessage *msg;
        SmtpSendOptions sopts;
        Store *store;
        SmtpOutbox *outbox;
        uv_timer_t idle_timer;
        int64_t account_id, item_id;
        unsigned n_idle;
        bool queued, kick;
} Tool;

static const char *const state_names[] = {
        [STORE_OUTBOX_QUEUED] = "queued", [STORE_OUTBOX_SENDING] = "sending", [STORE_OUTBOX_SENT] = "sent",
        [STORE_OUTBOX_FAILED] = "failed", [STORE_OUTBOX_UNKNOWN] = "unknown",
        [STORE_OUTBOX_COMMITTING] = "committing",
};

static int read_file(const char *path, char **datap, size_t *np) {
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
        char *data = NULL;
        size_t n = 0, cap = 0;

        if (!f)
                return -errno;
        for (;;) {
                if (n == cap) {
                        char *d = realloc(data, cap = cap ? cap * 2 : 65536);

                        if (!d) {
                                free(data);
                                return -ENOMEM;
                        }
                        data = d;
                }
                size_t got = fread(data + n, 1, cap - n, f);
                if (got == 0)
                        break;
                n += got;
        }
        if (f != stdin)
                fclose(f);
        *datap = data;
        *np = n;
        return 0;
}

static void sent_cb(SmtpClient *c, const SmtpSendResult *res, void *userdata) {
        Tool *t = userdata;
        size_t n_refused = 0;

        printf("RESULT %s %u %s\n", smtp_outcome_to_string(res->outcome), res->code, res->reply);
        for (size_t i = 0; i < res->n_rcpts; i++) {
                printf("RCPT %s %u %s\n", res->rcpts[i].address, res->rcpts[i].code,
                       res->rcpts[i].text ? res->rcpts[i].text : "");
                n_refused += !smtp_reply_is_positive(res->rcpts[i].code);
        }
        if (res->in_doubt)
                printf("IN-DOUBT\n");
        if (res->error[0])
                fprintf(stderr, "smtp-send-tool: %s\n", res->error);
        switch (res->outcome) {
        case SMTP_OUTCOME_SENT:
                t->exit_code = n_refused ? 1 : 0;
                break;
        case SMTP_OUTCOME_PERMANENT:
                t->exit_code = 2;
                break;
        default:
                t->exit_code = res->failure != NET_FAILURE_NONE && net_failure_is_permanent(res->failure) ? 4 : 3;
                break;
        }
}

/* ------------------------------------------------------------------ --store */

static void store_closed_cb(void *userdata) {
}

static void outbox_closed_cb(void *userdata) {
        Tool *t = userdata;
        StoreOutboxItem *items = NULL;
        size_t n = 0;

        t->outbox = NULL;
        if (store_outbox_list(t->store, &items, &n) == 0) {
                for (size_t i = 0; i < n; i++) {
                        printf("ITEM %" PRId64 " %s %u ", items[i].id, state_names[items[i].state], items[i].attempts);
                        for (size_t j = 0; j < items[i].n_rcpts; j++)
                                printf("%s%s", j ? "," : "", items[i].rcpts[j]);
                        printf(" %s\n", items[i].last_reply ? items[i].last_reply : "");
                        if (items[i].id == t->item_id || (!t->queued && i == n - 1)) {
                                switch (items[i].state) {
                                case STORE_OUTBOX_SENT:
                                        t->exit_code = items[i].last_reply && strstr(items[i].last_reply, "; refused ")
                                                               ? 1
                                                               : 0;
                                        break;
                                case STORE_OUTBOX_FAILED:
                                        t->exit_code = 2;
                                        break;
                                case STORE_OUTBOX_UNKNOWN:
                                        t->exit_code = 6;
                                        break;
                                default:
                                        t->exit_code = 3;
                                        break;
                                }
                        }
                }
                store_outbox_list_free(items, n);
        }
        fflush(stdout);
        store_close(t->store, store_closed_cb, t);
}

/* Polls until the outbox has nothing in flight, twice in a row, then shuts down. */
static void idle_cb(uv_timer_t *timer) {
        Tool *t = container_of(timer, Tool, idle_timer);

        if (!t->outbox || (t->msg && !t->queued))
                return;
        t->n_idle = smtp_outbox_busy(t->outbox) ? 0 : t->n_idle + 1;
        if (t->n_idle < 2)
                return;
        uv_close((uv_handle_t *)&t->idle_timer, NULL);
        smtp_outbox_close(t->outbox, outbox_closed_cb, t);
}

static void event_cb(SmtpOutbox *o, int64_t id, StoreOutboxState state, int64_t next_attempt, const char *reply,
                     void *userdata) {
        printf("EVENT %" PRId64 " %s %" PRId64 " %s\n", id, state_names[state], next_attempt, reply);
        fflush(stdout);
}

static void queued_cb(int status, int64_t id, void *userdata) {
        Tool *t = userdata;

        if (status < 0) {
                fprintf(stderr, "smtp-send-tool: cannot queue: %s\n", strerror(-status));
                t->msg = NULL; /* nothing to wait for */
                return;
        }
        t->item_id = id;
        t->queued = true;
        printf("QUEUED %" PRId64 "\n", id);
        fflush(stdout);
}

static void account_cb(int r, int64_t id, void *userdata) {
        Tool *t = userdata;

        if (r < 0 || smtp_outbox_new(t->loop, t->store, &t->outbox) < 0 ||
            smtp_outbox_add_account(t->outbox, id, t->acct) < 0) {
                fprintf(stderr, "smtp-send-tool: cannot set the outbox up: %s\n", strerror(r < 0 ? -r : ENOMEM));
                t->exit_code = 70;
                if (t->outbox)
                        smtp_outbox_close(t->outbox, outbox_closed_cb, t);
                else
                        store_close(t->store, store_closed_cb, t);
                uv_close((uv_handle_t *)&t->idle_timer, NULL);
                return;
        }
        t->account_id = id;
        smtp_outbox_set_send_options(t->outbox, &t->sopts);
        smtp_outbox_set_event_cb(t->outbox, event_cb, t);
        if (t->msg && (r = smtp_outbox_queue(t->outbox, id, t->msg, queued_cb, t)) < 0)
                fprintf(stderr, "smtp-send-tool: cannot queue: %s\n", strerror(-r));
        if ((r = smtp_outbox_start(t->outbox)) < 0)
                fprintf(stderr, "smtp-send-tool: cannot start the outbox: %s\n", strerror(-r));
        if (t->kick)
                smtp_outbox_kick(t->outbox); /* everything queued is due now */
        uv_timer_start(&t->idle_timer, idle_cb, 100, 100);
}

static int run_store(Tool *t, const char *path) {
        int r = store_open(t->loop, path, NULL, &t->store);

        if (r < 0) {
                fprintf(stderr, "smtp-send-tool: cannot open the store %s: %s\n", path, strerror(-r));
                return 64;
        }
        uv_timer_init(t->loop, &t->idle_timer);
        r = store_account_upsert(t->store, t->acct->name, account_cb, t);
        if (r < 0) {
                fprintf(stderr, "smtp-send-tool: %s\n", strerror(-r));
                uv_close((uv_handle_t *)&t->idle_timer, NULL);
                store_close(t->store, store_closed_cb, t);
        }
        uv_run(t->loop, UV_RUN_DEFAULT);
        return t->exit_code;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},  {"account", required_argument, NULL, 'a'},
                {"from", required_argument, NULL, 'f'},    {"rcpt", required_argument, NULL, 'r'},
                {"no-chunking", no_argument, NULL, 'C'},   {"no-pipelining", no_argument, NULL, 'P'},
                {"timeout", required_argument, NULL, 't'}, {"dsn-notify", required_argument, NULL, 'N'},
                {"dsn-ret", required_argument, NULL, 'R'}, {"helo", required_argument, NULL, 'H'},
                {"store", required_argument, NULL, 'S'},   {"resume", no_argument, NULL, 'U'},
                {"kick", no_argument, NULL, 'K'},          {},
        };
        const char *config_path = NULL, *account = NULL, *store_path = NULL;
        bool resume = false, kick = false;
        SmtpPrepareOptions popts = {};
        SmtpSendOptions sopts = {};
        const char **rcpts = NULL;
        _cleanup_free_ char *err = NULL, *raw = NULL;
        _cleanup_(smtp_message_freep) SmtpMessage *m = NULL;
        Config *config = NULL;
        const Account *acct;
        Tool tool = {.exit_code = 3};
        SmtpClient *client;
        uv_loop_t loop;
        size_t n_raw = 0;
        int c, r;

        log_setup(argv[0]);
        if (sodium_init() < 0)
                return 70;
        while ((c = getopt_long(argc, argv, "f:", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'a':
                        account = optarg;
                        break;
                case 'f':
                        popts.from = optarg;
                        break;
                case 'r': {
                        const char **v = realloc(rcpts, (popts.n_rcpts + 1) * sizeof *v);

                        if (!v)
                                return 70;
                        rcpts = v;
                        rcpts[popts.n_rcpts++] = optarg;
                        break;
                }
                case 'C':
                        sopts.no_chunking = true;
                        break;
                case 'P':
                        sopts.no_pipelining = true;
                        break;
                case 't':
                        sopts.timeout_ms = strtoull(optarg, NULL, 10);
                        break;
                case 'N':
                        sopts.dsn_notify = optarg;
                        break;
                case 'R':
                        sopts.dsn_ret = optarg;
                        break;
                case 'H':
                        sopts.helo_name = optarg;
                        break;
                case 'S':
                        store_path = optarg;
                        break;
                case 'U':
                        resume = true;
                        break;
                case 'K':
                        kick = true;
                        break;
                default:
                        return 64;
                }
        }
        popts.rcpts = rcpts;
        if (!config_path || !account || optind != argc - (resume ? 0 : 1) || (resume && !store_path)) {
                fprintf(stderr, "usage: smtp-send-tool --config FILE --account NAME [-f FROM] [--rcpt ADDR]... FILE\n");
                return 64;
        }
        r = config_load(config_path, &config, &err);
        if (r < 0) {
                fprintf(stderr, "smtp-send-tool: %s\n", err ? err : strerror(-r));
                return 64;
        }
        acct = config_find_account(config, account);
        if (!acct || acct->smtp.proto == SERVER_NONE) {
                fprintf(stderr, "smtp-send-tool: no account %s with an smtp URL\n", account);
                config_free(config);
                return 64;
        }
        if (resume) {
                uv_loop_init(&loop);
                tool = (Tool){.exit_code = 3, .loop = &loop, .acct = acct, .sopts = sopts, .kick = kick};
                r = run_store(&tool, store_path);
                goto done;
        }
        r = read_file(argv[optind], &raw, &n_raw);
        if (r < 0) {
                fprintf(stderr, "smtp-send-tool: %s: %s\n", argv[optind], strerror(-r));
                config_free(config);
                return 64;
        }
        r = smtp_message_prepare(raw, n_raw, &popts, &m, &err);
        if (r != 0) {
                fprintf(stderr, "smtp-send-tool: account %s: cannot send the message: %s\n", account,
                        r > 0 ? (err ? err : smtp_prepare_strerror(r)) : strerror(-r));
                config_free(config);
                free(rcpts);
                return 5;
        }
        printf("ENVELOPE %s %zu%s%s\n", m->mail_from, m->n_rcpts, m->needs_8bitmime ? " 8BITMIME" : "",
               m->needs_smtputf8 ? " SMTPUTF8" : "");

        uv_loop_init(&loop);
        if (store_path) {
                tool = (Tool){.exit_code = 3, .loop = &loop, .acct = acct, .msg = m, .sopts = sopts, .kick = kick};
                run_store(&tool, store_path);
                goto done;
        }
        r = smtp_client_send(&loop, acct, m, &sopts, sent_cb, &tool, &client);
        if (r < 0)
                fprintf(stderr, "smtp-send-tool: %s\n", strerror(-r));
        else
                uv_run(&loop, UV_RUN_DEFAULT);
done:
        r = uv_loop_close(&loop);
        if (r < 0)
                fprintf(stderr, "smtp-send-tool: loop still has handles: %s\n", uv_strerror(r));
        config_free(config);
        free(rcpts);
        return tool.exit_code;
}
