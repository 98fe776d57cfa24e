/*
 * imap-client-tool: a TEST TOOL (built, not installed) for the IMAP client.
 * Logs in with an account of a config file, prints how, runs the commands given
 * on the command line pipelined (all queued at once, in order), prints what
 * comes back, logs out and exits. Single-threaded on one libuv loop.
 *
 *   imap-client-tool --config FILE --account NAME [--cmd 'SELECT INBOX']...
 *                    [--append MAILBOX FILE]... [--condstore] [--qresync] [--utf8]
 *                    [--id] [--max-flight N] [--read-timeout MS] [--idle-ms MS]
 *
 * Output, one line each: "auth MECH", "caps CAP...", "enabled EXT..."; then per
 * command (numbered from 1 in the order given) "event N TEXT" for each
 * untagged response it got (imap_event_to_string), "body N seq=S size=B
 * sha256=HEX" for each streamed FETCH body, "idling N" when an IDLE command
 * is idling (the tool ends it with DONE at once, or after --idle-ms), and
 * "done N OK|NO|BAD|ERR TEXT";
 * "untagged TEXT" for responses no command took; "bytes_in=N" at the end.
 *
 * Exit codes: 0 the session worked (whatever the commands' results),
 * 1 network/protocol, 2 certificate, 3 downgrade, 4 authentication refused,
 * 5 credentials, 64 usage or configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "daemon/config.h"
#include "daemon/imap/client.h"
#include "util/log.h"

#define MAX_CMDS 256

typedef struct Tool Tool;

/* One command of the command line: a line to send, or an APPEND of a file. */
typedef struct ToolCmd {
        Tool *tool;
        unsigned index;
        const char *line;          /* NULL for an APPEND */
        const char *mailbox, *path; /* APPEND */
        FILE *f;
        char buf[64 * 1024];
        crypto_hash_sha256_state body_hash;
        uint64_t body_size;
} ToolCmd;

struct Tool {
        ImapClient *client;
        uv_timer_t idle_timer; /* ends an IDLE after idle_ms */
        uint64_t idle_ms;
        ToolCmd cmds[MAX_CMDS];
        unsigned n_cmds, n_done;
        int exit_code;
};

static const int exit_codes[_NET_FAILURE_MAX] = {
        [NET_FAILURE_NETWORK] = 1,   [NET_FAILURE_PROTOCOL] = 1, [NET_FAILURE_CERTIFICATE] = 2,
        [NET_FAILURE_DOWNGRADE] = 3, [NET_FAILURE_AUTH] = 4,     [NET_FAILURE_CREDENTIALS] = 5,
};

static void print_event(const char *prefix, const ImapEvent *ev) {
        _cleanup_free_ char *s = imap_event_to_string(ev);

        printf("%s%s\n", prefix, s ? s : "(out of memory)");
}

/* --idle-ms: the server was left idling that long (longer than any read timeout given). */
static void idle_timer_cb(uv_timer_t *timer) {
        Tool *t = container_of(timer, Tool, idle_timer);

        if (imap_client_write_line(t->client, "DONE") < 0)
                fprintf(stderr, "imap-client-tool: cannot end IDLE\n");
}

/* A command's untagged responses; FETCH bodies are hashed as they stream, never held. */
static int cmd_event_cb(ImapClient *c, const ImapEvent *ev, void *userdata) {
        ToolCmd *cmd = userdata;
        char prefix[32];

        switch (ev->kind) {
        case IMAP_EVENT_BODY_START:
                crypto_hash_sha256_init(&cmd->body_hash);
                cmd->body_size = 0;
                return 0;
        case IMAP_EVENT_BODY_DATA:
                crypto_hash_sha256_update(&cmd->body_hash, ev->body.data, ev->body.len);
                cmd->body_size += ev->body.len;
                return 0;
        case IMAP_EVENT_BODY_END: {
                unsigned char h[crypto_hash_sha256_BYTES];
                char hex[sizeof h * 2 + 1];

                crypto_hash_sha256_final(&cmd->body_hash, h);
                sodium_bin2hex(hex, sizeof hex, h, sizeof h);
                printf("body %u seq=%" PRIu32 " size=%" PRIu64 " sha256=%s\n", cmd->index, ev->body.seq,
                       cmd->body_size, hex);
                return 0;
        }
        case IMAP_EVENT_CONTINUATION:
                /* IDLE: the server is idling; end it at once (the NOOP after it shows the session goes on). */
                if (cmd->line && strcasecmp(cmd->line, "IDLE") == 0) {
                        printf("idling %u\n", cmd->index);
                        fflush(stdout);
                        if (cmd->tool->idle_ms > 0)
                                return uv_timer_start(&cmd->tool->idle_timer, idle_timer_cb, cmd->tool->idle_ms, 0);
                        return imap_client_write_line(c, "DONE");
                }
                return IMAP_CMD_EVENT_PASS;
        default:
                snprintf(prefix, sizeof prefix, "event %u ", cmd->index);
                print_event(prefix, ev);
                return 0;
        }
}

/* Every command's end: once all are done, log out (the loop then ends with the session). */
static void cmd_done_cb(ImapClient *c, int r, const ImapStatusResp *st, void *userdata) {
        ToolCmd *cmd = userdata;
        Tool *t = cmd->tool;

        if (r < 0)
                printf("done %u ERR %s\n", cmd->index, strerror(-r));
        else {
                printf("done %u %s %s%s%s\n", cmd->index, r == 0 ? "OK" : r == IMAP_CLIENT_E_NO ? "NO" : "BAD",
                       st->code.name.s ? "[" : "", st->code.name.s ? st->code.name.s : "",
                       st->code.name.s ? "] " : "");
                if (st->code.kind == IMAP_CODE_APPENDUID && st->code.set.n > 0)
                        printf("appenduid %u %" PRIu32 " %" PRIu32 "\n", cmd->index, st->code.uidvalidity,
                               st->code.set.v[0].first);
                if (st->text.s)
                        printf("text %u %s\n", cmd->index, st->text.s);
        }
        if (cmd->f) {
                fclose(cmd->f);
                cmd->f = NULL;
        }
        if (++t->n_done == t->n_cmds && r >= 0)
                imap_client_logout(c);
}

/* The APPEND body, 64 KiB at a time. */
static int append_read_cb(void *userdata, const void **datap, size_t *np) {
        ToolCmd *cmd = userdata;
        size_t n = fread(cmd->buf, 1, sizeof cmd->buf, cmd->f);

        if (n == 0 && ferror(cmd->f))
                return -EIO;
        *datap = cmd->buf;
        *np = n;
        return 0;
}

static void untagged_cb(ImapClient *c, const ImapEvent *ev, void *userdata) {
        print_event("untagged ", ev);
}

/* Logged in (or not): print how, then queue every command at once. */
static void ready_cb(ImapClient *c, int r, void *userdata) {
        Tool *t = userdata;
        static const char *const exts[] = {"CONDSTORE", "QRESYNC", "UTF8=ACCEPT"};

        if (r < 0) {
                fprintf(stderr, "imap-client-tool: %s\n", imap_client_get_error(c));
                t->exit_code = exit_codes[imap_client_get_failure(c)] ?: 1;
                return imap_client_close(c);
        }
        printf("auth %s\ncaps %s\nenabled", imap_client_get_auth_name(c), imap_client_get_caps(c));
        for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
                if (imap_client_is_enabled(c, exts[i]))
                        printf(" %s", exts[i]);
        printf("\n");
        t->exit_code = 0;
        if (t->n_cmds == 0)
                return imap_client_logout(c);
        for (unsigned i = 0; i < t->n_cmds; i++) {
                ToolCmd *cmd = &t->cmds[i];

                if (cmd->line)
                        r = imap_client_send(c, strcasecmp(cmd->line, "IDLE") == 0 ? IMAP_CMD_ALONE : 0,
                                             cmd_event_cb, cmd_done_cb, cmd, "%s", cmd->line);
                else {
                        struct stat st;

                        cmd->f = fopen(cmd->path, "rb");
                        if (!cmd->f || fstat(fileno(cmd->f), &st) < 0) {
                                fprintf(stderr, "imap-client-tool: %s: %s\n", cmd->path, strerror(errno));
                                t->exit_code = 64;
                                return imap_client_close(c);
                        }
                        r = imap_client_append(c, cmd->mailbox, "(\\Seen)", 1800000000, (uint64_t)st.st_size,
                                               append_read_cb, cmd_done_cb, cmd);
                }
                if (r < 0) {
                        fprintf(stderr, "imap-client-tool: command %u: %s\n", i + 1, strerror(-r));
                        t->exit_code = 64;
                        return imap_client_close(c);
                }
        }
        printf("pending %u\n", imap_client_get_n_pending(c));
        fflush(stdout);
}

/* After ready: the session broke or the server said BYE. */
static void failed_cb(ImapClient *c, int r, void *userdata) {
        Tool *t = userdata;

        fprintf(stderr, "imap-client-tool: %s\n", imap_client_get_error(c));
        t->exit_code = exit_codes[imap_client_get_failure(c)] ?: 1;
        imap_client_close(c);
}

static void closed_cb(ImapClient *c, void *userdata) {
        Tool *t = userdata;

        printf("bytes_in=%" PRIu64 "\n", imap_client_get_bytes_in(c));
        uv_close((uv_handle_t *)&t->idle_timer, NULL);
}

static const ImapClientOps client_ops = {
        .ready = ready_cb,
        .failed = failed_cb,
        .closed = closed_cb,
        .untagged = untagged_cb,
};

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"account", required_argument, NULL, 'a'},
                {"cmd", required_argument, NULL, 'C'},
                {"append", required_argument, NULL, 'A'},
                {"condstore", no_argument, NULL, 'S'},
                {"qresync", no_argument, NULL, 'Q'},
                {"utf8", no_argument, NULL, 'U'},
                {"id", no_argument, NULL, 'I'},
                {"max-flight", required_argument, NULL, 'm'},
                {"read-timeout", required_argument, NULL, 'r'},
                {"idle-ms", required_argument, NULL, 'i'},
                {},
        };
        const char *config_path = NULL, *account = NULL;
        ImapClientOptions co = {0};
        _cleanup_free_ char *err = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        static Tool t = {.exit_code = 1};
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
                case 'C':
                case 'A':
                        if (t.n_cmds == MAX_CMDS || (c == 'A' && optind >= argc))
                                return 64;
                        t.cmds[t.n_cmds] = (ToolCmd){.tool = &t, .index = t.n_cmds + 1};
                        if (c == 'C')
                                t.cmds[t.n_cmds].line = optarg;
                        else {
                                t.cmds[t.n_cmds].mailbox = optarg;
                                t.cmds[t.n_cmds].path = argv[optind++];
                        }
                        t.n_cmds++;
                        break;
                case 'S':
                        co.enable_condstore = true;
                        break;
                case 'Q':
                        co.enable_qresync = true;
                        break;
                case 'U':
                        co.enable_utf8 = true;
                        break;
                case 'I':
                        co.send_id = true;
                        break;
                case 'm':
                        co.max_flight = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'r':
                        co.read_timeout_ms = strtoull(optarg, NULL, 10);
                        break;
                case 'i':
                        t.idle_ms = strtoull(optarg, NULL, 10);
                        break;
                default:
                        return 64;
                }
        }
        if (!config_path || !account) {
                fprintf(stderr, "usage: imap-client-tool --config FILE --account NAME [--cmd LINE]... "
                                "[--append MAILBOX FILE]... [--condstore] [--qresync] [--utf8] [--id] "
                                "[--max-flight N] [--read-timeout MS] [--idle-ms MS]\n");
                return 64;
        }
        r = config_load(config_path, &config, &err);
        if (r < 0) {
                fprintf(stderr, "imap-client-tool: %s\n", err ? err : strerror(-r));
                return 64;
        }
        a = config_find_account(config, account);
        if (!a || a->imap.proto != SERVER_IMAP) {
                fprintf(stderr, "imap-client-tool: no IMAP account %s\n", account);
                return 64;
        }
        uv_loop_init(&loop);
        uv_timer_init(&loop, &t.idle_timer);
        r = imap_client_new(&loop, a, &co, &client_ops, &t, &t.client);
        if (r == 0)
                r = imap_client_connect(t.client);
        if (r < 0) {
                fprintf(stderr, "imap-client-tool: %s\n", strerror(-r));
                if (t.client)
                        imap_client_close(t.client); /* closed_cb closes the timer */
                else
                        uv_close((uv_handle_t *)&t.idle_timer, NULL);
                t.exit_code = 1;
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) < 0)
                fprintf(stderr, "imap-client-tool: loop still has handles\n");
        return t.exit_code;
}
