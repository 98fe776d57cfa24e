/*
 * tegami: the command-line front end. Each run makes one private connection
 * to the session bus, calls org.tegami.Mail1 synchronously (bus activation
 * starts tegamid when it is not running), prints the answer for people or as
 * JSON, and exits: 0 ok, 1 the daemon reported an error, 2 usage, 69 the
 * daemon or the bus is unavailable. Single-threaded, no event loop.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "clients/cli.h"
#include "clients/search-cmd.h"
#include "clients/send.h"
#include "util/macro.h"

/* The daemon takes passphrases of up to 4096 bytes; room for CR LF NUL. */
#define IPC_PASSPHRASE_LINE 4099

/* One account as the Status call describes it. */
typedef struct AccountInfo {
        const char *path, *name, *address, *protocol, *server, *send_server, *state;
        const char *error_name, *error_message;
        int64_t last_sync;
        uint32_t unread, total, outbox_size;
        uint64_t quota_used, quota_limit;
} AccountInfo;

typedef struct StatusInfo {
        const char *version, *state, *config;
        uint32_t reloads;
        AccountInfo *accounts;
        size_t n_accounts;
} StatusInfo;

static void usage(FILE *f) {
        fputs("Usage: tegami [--json] COMMAND [ARGS]\n"
              "Talk to tegamid, the tegami mail sync daemon, over D-Bus.\n\n"
              "Commands:\n"
              "  status                 the daemon and every account\n"
              "  accounts               the configured accounts\n"
              "  folders ACCOUNT        an account's folders with unread and total counts\n"
              "  list ACCOUNT FOLDER [--limit N] [--offset N]\n"
              "                         a folder's messages, newest first (50 by default)\n"
              "  show ID [--raw]        a message: From, To, Subject, Date, the body and its\n"
              "                         attachments, numbered; --raw writes the message exactly\n"
              "                         as stored\n"
              "  show ID --attachment N [-o FILE]\n"
              "                         write attachment N, decoded, to FILE or stdout (not\n"
              "                         to a terminal unless it is text)\n"
              "  flag ID... +FLAG -FLAG...\n"
              "                         add or remove flags: seen, answered, flagged, deleted,\n"
              "                         draft, forwarded, or any keyword\n"
              "  move ACCOUNT FOLDER ID...  move messages to another folder of their account\n"
              "  delete ID...           delete messages here and on the server\n"
              "  outbox [retry ID | cancel ID]\n"
              "                         what waits to be sent; send one again now; drop one\n"
              "  unlock                 unlock a passphrase-protected store (the passphrase is\n"
              "                         asked on the terminal, or read as one line from stdin)\n"
              "  send [--account A]     queue the message on stdin in the outbox (recipients from\n"
              "                         To, Cc and Bcc); prints its outbox id\n"
              "  sync [ACCOUNT] [--wait]\n"
              "                         sync one account or all now; --wait follows the sync\n"
              "                         to its end and fails when an account failed\n"
              "  fetch ACCOUNT [--dry-run]\n"
              "                         fetch a POP3 account now; --dry-run lists what a fetch\n"
              "                         would download, delete or keep, and why, changing nothing\n"
              "  watch                  print tegamid's signals, one per line, until interrupted\n"
              "  rekey                  re-encrypt the whole store under a new data key (the\n"
              "                         passphrase is asked for a passphrase-protected store)\n"
              "  search QUERY [--account A] [--limit N]\n"
              "                         full-text search of every account, newest first: words,\n"
              "                         \"phrases\", from: to: subject: folder: account: is:unread\n"
              "                         is:flagged has:attachment before: after: (YYYY-MM-DD)\n\n"
              "Options:\n"
              "  -j, --json             print JSON instead of text\n"
              "  -V, --version          print the version and exit\n"
              "  -h, --help             print this help and exit\n\n"
              "Exit status: 0 ok, 1 the daemon reported an error, 2 usage error,\n"
              "69 tegamid or the session bus is unavailable.\n",
              f);
}

static void json_account(const AccountInfo *a) {
        bool first = true;

        putchar('{');
        json_key("name", &first), json_string(a->name);
        json_key("path", &first), json_string(a->path);
        json_key("address", &first), json_string(a->address);
        json_key("protocol", &first), json_string(a->protocol);
        json_key("server", &first), json_string(a->server);
        json_key("send_server", &first), json_string(a->send_server);
        json_key("state", &first), json_string(a->state);
        json_key("last_sync", &first), printf("%" PRId64, a->last_sync);
        json_key("unread", &first), printf("%" PRIu32, a->unread);
        json_key("total", &first), printf("%" PRIu32, a->total);
        json_key("outbox_size", &first), printf("%" PRIu32, a->outbox_size);
        json_key("quota", &first), printf("{\"used\":%" PRIu64 ",\"limit\":%" PRIu64 "}", a->quota_used,
                                         a->quota_limit);
        json_key("last_error", &first);
        fputs("{\"name\":", stdout), json_string(a->error_name);
        fputs(",\"message\":", stdout), json_string(a->error_message), putchar('}');
        putchar('}');
}

/* ---- reading replies ---- */

static void read_account_props(DBusMessageIter *dict, AccountInfo *a) {
        static const char empty[] = "";
        DBusMessageIter entry, v, st;

        a->name = a->address = a->protocol = a->server = a->send_server = a->state = empty;
        a->error_name = a->error_message = empty;
        for (; dbus_message_iter_get_arg_type(dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(dict)) {
                const char *key;
                int t;

                dbus_message_iter_recurse(dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &v);
                t = dbus_message_iter_get_arg_type(&v);
                if (t == DBUS_TYPE_STRING) {
                        const char **dst = strcmp(key, "Name") == 0         ? &a->name
                                           : strcmp(key, "Address") == 0    ? &a->address
                                           : strcmp(key, "Protocol") == 0   ? &a->protocol
                                           : strcmp(key, "Server") == 0     ? &a->server
                                           : strcmp(key, "SendServer") == 0 ? &a->send_server
                                           : strcmp(key, "State") == 0      ? &a->state
                                                                            : NULL;
                        if (dst)
                                dbus_message_iter_get_basic(&v, dst);
                } else if (t == DBUS_TYPE_UINT32) {
                        uint32_t *dst = strcmp(key, "Unread") == 0       ? &a->unread
                                        : strcmp(key, "Total") == 0      ? &a->total
                                        : strcmp(key, "OutboxSize") == 0 ? &a->outbox_size
                                                                         : NULL;
                        if (dst)
                                dbus_message_iter_get_basic(&v, dst);
                } else if (t == DBUS_TYPE_INT64 && strcmp(key, "LastSync") == 0) {
                        dbus_message_iter_get_basic(&v, &a->last_sync);
                } else if (t == DBUS_TYPE_STRUCT && strcmp(key, "Quota") == 0) {
                        dbus_message_iter_recurse(&v, &st);
                        if (dbus_message_iter_get_arg_type(&st) == DBUS_TYPE_UINT64) {
                                dbus_message_iter_get_basic(&st, &a->quota_used);
                                dbus_message_iter_next(&st);
                        }
                        if (dbus_message_iter_get_arg_type(&st) == DBUS_TYPE_UINT64)
                                dbus_message_iter_get_basic(&st, &a->quota_limit);
                } else if (t == DBUS_TYPE_STRUCT && strcmp(key, "LastError") == 0) {
                        dbus_message_iter_recurse(&v, &st);
                        if (dbus_message_iter_get_arg_type(&st) == DBUS_TYPE_STRING) {
                                dbus_message_iter_get_basic(&st, &a->error_name);
                                dbus_message_iter_next(&st);
                        }
                        if (dbus_message_iter_get_arg_type(&st) == DBUS_TYPE_STRING)
                                dbus_message_iter_get_basic(&st, &a->error_message);
                }
        }
}

/* Parses a Status reply; strings point into reply. False when malformed. */
static bool read_status(DBusMessage *reply, StatusInfo *st) {
        DBusMessageIter it, dict, entry, v, arr, s, props;
        size_t n = 0;

        *st = (StatusInfo){ .version = "", .state = "", .config = "" };
        if (!dbus_message_has_signature(reply, "a{sv}a(oa{sv})"))
                return false;
        dbus_message_iter_init(reply, &it);
        for (dbus_message_iter_recurse(&it, &dict); dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&dict)) {
                const char *key;

                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &v);
                if (dbus_message_iter_get_arg_type(&v) == DBUS_TYPE_STRING) {
                        if (strcmp(key, "version") == 0)
                                dbus_message_iter_get_basic(&v, &st->version);
                        else if (strcmp(key, "state") == 0)
                                dbus_message_iter_get_basic(&v, &st->state);
                        else if (strcmp(key, "config") == 0)
                                dbus_message_iter_get_basic(&v, &st->config);
                } else if (dbus_message_iter_get_arg_type(&v) == DBUS_TYPE_UINT32 && strcmp(key, "reloads") == 0) {
                        dbus_message_iter_get_basic(&v, &st->reloads);
                }
        }
        dbus_message_iter_next(&it);
        dbus_message_iter_recurse(&it, &arr);
        st->n_accounts = (size_t)dbus_message_iter_get_element_count(&it);
        st->accounts = calloc(st->n_accounts ? st->n_accounts : 1, sizeof *st->accounts);
        if (!st->accounts)
                return false;
        for (; dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRUCT && n < st->n_accounts;
             dbus_message_iter_next(&arr), n++) {
                dbus_message_iter_recurse(&arr, &s);
                dbus_message_iter_get_basic(&s, &st->accounts[n].path);
                dbus_message_iter_next(&s);
                dbus_message_iter_recurse(&s, &props);
                read_account_props(&props, &st->accounts[n]);
        }
        st->n_accounts = n;
        return true;
}

/* ---- calling the daemon ---- */

static int cmd_status(DBusConnection *conn, bool json) {
        DBusMessage *reply = NULL;
        StatusInfo st;
        int r;

        r = cli_call(conn, cli_method("Status"), "status", DBUS_TIMEOUT_USE_DEFAULT, &reply);
        if (r != 0)
                return r;
        if (!read_status(reply, &st)) {
                fprintf(stderr, "tegami: tegamid sent a malformed Status reply (%s)\n",
                        dbus_message_get_signature(reply));
                free(st.accounts);
                dbus_message_unref(reply);
                return EXIT_DAEMON;
        }
        if (json) {
                bool first = true;

                putchar('{');
                json_key("version", &first), json_string(st.version);
                json_key("state", &first), json_string(st.state);
                json_key("config", &first), json_string(st.config);
                json_key("reloads", &first), printf("%" PRIu32, st.reloads);
                json_key("accounts", &first), putchar('[');
                for (size_t i = 0; i < st.n_accounts; i++) {
                        if (i)
                                putchar(',');
                        json_account(&st.accounts[i]);
                }
                puts("]}");
        } else {
                printf("tegamid %s: %s, %zu account%s (%s)\n", st.version, st.state, st.n_accounts,
                       st.n_accounts == 1 ? "" : "s", st.config);
                for (size_t i = 0; i < st.n_accounts; i++) {
                        const AccountInfo *a = &st.accounts[i];
                        char buf[32];

                        printf("  %-16s %-5s %-10s last sync %-16s unread %" PRIu32 "/%" PRIu32, a->name, a->protocol,
                               a->state, cli_when(a->last_sync, buf, sizeof buf), a->unread, a->total);
                        if (a->outbox_size)
                                printf(", %" PRIu32 " in outbox", a->outbox_size);
                        if (a->quota_limit) {
                                /* The server's quota as the last sync saw it: KiB below a MiB, else MiB. */
                                bool mib = a->quota_limit >= 1024 * 1024;
                                uint64_t unit = mib ? 1024 * 1024 : 1024;

                                printf(", quota %" PRIu64 "%% (%" PRIu64 " of %" PRIu64 " %s)",
                                       a->quota_used * 100 / a->quota_limit, a->quota_used / unit,
                                       a->quota_limit / unit, mib ? "MiB" : "KiB");
                        }
                        if (*a->error_name)
                                printf("\n    error: %s", *a->error_message ? a->error_message : a->error_name);
                        putchar('\n');
                }
        }
        free(st.accounts);
        dbus_message_unref(reply);
        return 0;
}

static int cmd_accounts(DBusConnection *conn, bool json) {
        DBusMessage *reply = NULL;
        StatusInfo st;
        int r;

        r = cli_call(conn, cli_method("Status"), "status", DBUS_TIMEOUT_USE_DEFAULT, &reply);
        if (r != 0)
                return r;
        if (!read_status(reply, &st)) {
                fprintf(stderr, "tegami: tegamid sent a malformed Status reply\n");
                free(st.accounts);
                dbus_message_unref(reply);
                return EXIT_DAEMON;
        }
        if (json) {
                putchar('[');
                for (size_t i = 0; i < st.n_accounts; i++) {
                        if (i)
                                putchar(',');
                        json_account(&st.accounts[i]);
                }
                puts("]");
        } else if (st.n_accounts == 0) {
                puts("no accounts configured");
        } else {
                printf("%-16s %-5s %-32s %-32s %s\n", "NAME", "PROTO", "SERVER", "SENDING", "ADDRESS");
                for (size_t i = 0; i < st.n_accounts; i++) {
                        const AccountInfo *a = &st.accounts[i];

                        printf("%-16s %-5s %-32s %-32s %s\n", a->name, a->protocol, a->server,
                               *a->send_server ? a->send_server : "-", a->address);
                }
        }
        free(st.accounts);
        dbus_message_unref(reply);
        return 0;
}

/* The session bus address as tegamid looks it up (ipc/server.c): the
 * environment, else $XDG_RUNTIME_DIR/bus. NULL when there is none. */
static char *session_bus_address(void) {
        const char *e = getenv("DBUS_SESSION_BUS_ADDRESS"), *run = getenv("XDG_RUNTIME_DIR");
        struct stat st;
        char *r = NULL;

        if (e && *e)
                return strdup(e);
        if (run && *run == '/' && asprintf(&r, "%s/bus", run) >= 0) {
                bool ok = stat(r, &st) == 0 && S_ISSOCK(st.st_mode);

                free(r);
                r = NULL;
                if (ok && asprintf(&r, "unix:path=%s/bus", run) < 0)
                        r = NULL;
        }
        return r;
}

/* A private connection (never libdbus' shared one: it is closed and freed
 * before exit, so leak checkers stay quiet). */
static DBusConnection *connect_session_bus(void) {
        _cleanup_free_ char *address = session_bus_address();
        DBusConnection *conn;
        DBusError e;

        if (!address) {
                fputs("tegami: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)\n", stderr);
                return NULL;
        }
        dbus_error_init(&e);
        conn = dbus_connection_open_private(address, &e);
        if (conn && !dbus_bus_register(conn, &e)) {
                dbus_connection_close(conn);
                dbus_connection_unref(conn);
                conn = NULL;
        }
        if (!conn) {
                fprintf(stderr, "tegami: cannot reach the D-Bus session bus: %s\n", e.message);
                dbus_error_free(&e);
                return NULL;
        }
        dbus_connection_set_exit_on_disconnect(conn, FALSE);
        return conn;
}

/* Reads one line into secret memory: from the terminal without echo, else from stdin. */
static char *read_passphrase(void) {
        _cleanup_fclose_ FILE *tty = fopen("/dev/tty", "re+");
        bool interactive = tty && isatty(STDIN_FILENO);
        FILE *in = interactive ? tty : stdin;
        struct termios old, quiet;
        char *buf = sodium_malloc(IPC_PASSPHRASE_LINE), *p;

        if (!buf)
                return NULL;
        if (interactive) {
                fputs("Store passphrase: ", tty);
                fflush(tty);
                tcgetattr(fileno(tty), &old);
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t)ECHO;
                tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
        }
        p = fgets(buf, IPC_PASSPHRASE_LINE, in);
        if (interactive) {
                tcsetattr(fileno(tty), TCSAFLUSH, &old);
                fputc('\n', tty);
        }
        if (!p) {
                sodium_free(buf);
                return NULL;
        }
        buf[strcspn(buf, "\r\n")] = '\0';
        return buf;
}

static int cmd_unlock(DBusConnection *conn, bool json) {
        DBusMessage *m = cli_method("Unlock"), *reply;
        char *pass = read_passphrase();
        const char *bytes = pass;
        DBusError e;
        int n;

        if (!pass || !*pass) {
                fputs("tegami unlock: no passphrase given\n", stderr);
                if (pass)
                        sodium_free(pass);
                if (m)
                        dbus_message_unref(m);
                return EXIT_USAGE;
        }
        n = (int)strlen(pass);
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &bytes, n, DBUS_TYPE_INVALID)) {
                sodium_free(pass);
                fputs("tegami: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        sodium_free(pass);
        dbus_error_init(&e);
        /* Deriving the key (Argon2id) takes a moment; allow for a slow machine. */
        reply = dbus_connection_send_with_reply_and_block(conn, m, 120000, &e);
        dbus_message_unref(m);
        if (!reply) {
                int r = cli_error_means_unavailable(e.name) ? EXIT_UNAVAILABLE : EXIT_DAEMON;

                fprintf(stderr, "tegami unlock: %s\n", e.message);
                dbus_error_free(&e);
                return r;
        }
        dbus_message_unref(reply);
        puts(json ? "{\"unlocked\": true}" : "store unlocked");
        return 0;
}

/* Calls method(passphrase ay); the reply, or NULL with e set. */
static DBusMessage *call_passphrase(DBusConnection *conn, const char *method, const char *pass, DBusError *e) {
        DBusMessage *m = cli_method(method), *reply;
        const char *bytes = pass ? pass : "";
        int n = pass ? (int)strlen(pass) : 0;

        if (!m || !dbus_message_append_args(m, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &bytes, n, DBUS_TYPE_INVALID)) {
                if (m)
                        dbus_message_unref(m);
                dbus_set_error_const(e, DBUS_ERROR_NO_MEMORY, "out of memory");
                return NULL;
        }
        /* Argon2id and re-encrypting every page take a while: allow for a slow machine and a big store. */
        reply = dbus_connection_send_with_reply_and_block(conn, m, 30 * 60 * 1000, e);
        dbus_message_unref(m);
        return reply;
}

/* rekey: a new data key for the whole store; the passphrase is asked only when the store has one. */
static int cmd_rekey(DBusConnection *conn, bool json) {
        DBusMessage *reply;
        DBusError e;

        dbus_error_init(&e);
        reply = call_passphrase(conn, "Rekey", NULL, &e);
        if (!reply && e.name && strcmp(e.name, "org.tegami.Mail1.Error.InvalidArgs") == 0) {
                char *pass;

                dbus_error_free(&e);
                pass = read_passphrase();
                if (!pass || !*pass) {
                        fputs("tegami rekey: no passphrase given\n", stderr);
                        if (pass)
                                sodium_free(pass);
                        return EXIT_USAGE;
                }
                reply = call_passphrase(conn, "Rekey", pass, &e);
                sodium_free(pass);
        }
        if (!reply) {
                int r = cli_error_means_unavailable(e.name) ? EXIT_UNAVAILABLE : EXIT_DAEMON;

                fprintf(stderr, "tegami rekey: %s\n", e.message);
                dbus_error_free(&e);
                return r;
        }
        dbus_message_unref(reply);
        puts(json ? "{\"rekeyed\": true}" : "store re-encrypted under a new data key");
        return 0;
}

static const char *opt_account;

static int cmd_send(DBusConnection *conn, bool json) {
        SendOptions o = { .account = opt_account, .extract_rcpts = true };
        _cleanup_free_ char *data = NULL, *err = NULL;
        size_t n = 0, cap = 0;
        uint64_t id = 0;

        for (;;) {
                size_t k;

                if (n == cap) {
                        char *nd = realloc(data, cap = cap ? cap * 2 : 65536);

                        if (!nd) {
                                fputs("tegami send: out of memory\n", stderr);
                                return EXIT_FAILURE;
                        }
                        data = nd;
                }
                k = fread(data + n, 1, cap - n, stdin);
                n += k;
                if (k == 0)
                        break;
        }
        if (ferror(stdin) || n == 0) {
                fputs(n == 0 ? "tegami send: no message on standard input\n" : "tegami send: cannot read standard input\n",
                      stderr);
                return EXIT_USAGE;
        }
        switch (send_message(conn, data, n, &o, &id, &err)) {
        case SEND_OK:
                if (json)
                        printf("{\"outbox_id\": %" PRIu64 "}\n", id);
                else
                        printf("queued as outbox item %" PRIu64 "\n", id);
                return 0;
        case SEND_E_UNAVAILABLE:
                fprintf(stderr, "tegami send: tegamid is not running and could not be started: %s\n", err);
                return EXIT_UNAVAILABLE;
        default:
                fprintf(stderr, "tegami send: %s\n", err ? err : "failed");
                return EXIT_DAEMON;
        }
}

/* Adapters: the older commands take only the JSON switch. */
static int run_status(DBusConnection *conn, const CliArgs *a) {
        return cmd_status(conn, a->json);
}

static int run_accounts(DBusConnection *conn, const CliArgs *a) {
        return cmd_accounts(conn, a->json);
}

static int run_unlock(DBusConnection *conn, const CliArgs *a) {
        return cmd_unlock(conn, a->json);
}

static int run_rekey(DBusConnection *conn, const CliArgs *a) {
        return cmd_rekey(conn, a->json);
}

static int run_send(DBusConnection *conn, const CliArgs *a) {
        return cmd_send(conn, a->json);
}

typedef struct Command {
        const char *name;
        int (*run)(DBusConnection *conn, const CliArgs *a);
        size_t max_args; /* more is a usage error; the command checks the rest */
} Command;

/* `flag` takes "-seen" as an argument, not as an option (see main()). */
static const Command commands[] = {
        { "status", run_status, 0 },   { "accounts", run_accounts, 0 }, { "unlock", run_unlock, 0 },
        { "rekey", run_rekey, 0 },
        { "send", run_send, 0 },       { "folders", cmd_folders, 1 },   { "list", cmd_list, 2 },
        { "show", cmd_show, 1 },       { "flag", cmd_flag, SIZE_MAX },  { "move", cmd_move, SIZE_MAX },
        { "delete", cmd_delete, SIZE_MAX }, { "outbox", cmd_outbox, 2 },
        { "sync", cmd_sync, 1 },       { "fetch", cmd_fetch, 1 },       { "watch", cmd_watch, 0 },
        { "search", cmd_search, SIZE_MAX },
};

/* Parses a decimal number for --limit / --offset. */
static bool parse_number(const char *s, uint64_t max, uint64_t *vp) {
        char *end;
        unsigned long long v;

        if (!s || !*s || *s == '-' || *s == '+')
                return false;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || v > max)
                return false;
        *vp = v;
        return true;
}

int main(int argc, char **argv) {
        const Command *cmd = NULL;
        CliArgs a = {};
        DBusConnection *conn;
        const char *bad_option = NULL, *bad_value = NULL;
        bool raw_seen = false, only_args = false, wait_seen = false, dry_seen = false, att_seen = false;
        int r;

        a.args = calloc((size_t)argc + 1, sizeof *a.args);
        if (!a.args)
                return EXIT_FAILURE;
        /* Options may come before or after the command ("tegami status --json").
         * Unknown ones are reported once the command is known, so that
         * "tegami sync --wait" says the command is not available yet; for
         * `flag`, "-seen" is an argument. */
        for (int i = 1; i < argc; i++) {
                const char *w = argv[i], *val = NULL;
                uint64_t v;

                if (only_args || w[0] != '-' || !w[1]) {
                        if (!a.name)
                                a.name = w;
                        else
                                a.args[a.n_args++] = argv[i];
                        continue;
                }
                if (strcmp(w, "--") == 0) {
                        only_args = true;
                } else if (strcmp(w, "-j") == 0 || strcmp(w, "--json") == 0) {
                        a.json = true;
                } else if (strcmp(w, "-V") == 0 || strcmp(w, "--version") == 0) {
                        printf("tegami %s\n", TEGAMI_VERSION);
                        free(a.args);
                        return 0;
                } else if (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0) {
                        usage(stdout);
                        free(a.args);
                        return 0;
                } else if (strcmp(w, "--raw") == 0) {
                        a.raw = raw_seen = true;
                } else if (strcmp(w, "--attachment") == 0 || strncmp(w, "--attachment=", 13) == 0) {
                        val = w[12] == '=' ? w + 13 : (i + 1 < argc ? argv[++i] : NULL);
                        if (parse_number(val, UINT32_MAX, &v) && v > 0)
                                a.attachment = v;
                        else
                                bad_value = "--attachment (a number from 1)";
                        att_seen = true;
                } else if (strcmp(w, "-o") == 0 || strcmp(w, "--output") == 0 || strncmp(w, "--output=", 9) == 0) {
                        val = w[1] == '-' && w[8] == '=' ? w + 9 : (i + 1 < argc ? argv[++i] : NULL);
                        if (!val || !*val)
                                bad_value = w;
                        a.output = val;
                        att_seen = true;
                } else if (strcmp(w, "--wait") == 0) {
                        a.wait = wait_seen = true;
                } else if (strcmp(w, "--dry-run") == 0 || strcmp(w, "-n") == 0) {
                        a.dry_run = dry_seen = true;
                } else if (strcmp(w, "-a") == 0 || strcmp(w, "--account") == 0 || strncmp(w, "--account=", 10) == 0) {
                        val = w[1] == '-' && w[9] == '=' ? w + 10 : (i + 1 < argc ? argv[++i] : NULL);
                        if (!val)
                                bad_value = w;
                        a.account = val;
                } else if (strcmp(w, "--limit") == 0 || strncmp(w, "--limit=", 8) == 0) {
                        val = w[7] == '=' ? w + 8 : (i + 1 < argc ? argv[++i] : NULL);
                        if (parse_number(val, 1000, &v) && v > 0)
                                a.limit = (uint32_t)v;
                        else
                                bad_value = "--limit (1 to 1000)";
                } else if (strcmp(w, "--offset") == 0 || strncmp(w, "--offset=", 9) == 0) {
                        val = w[8] == '=' ? w + 9 : (i + 1 < argc ? argv[++i] : NULL);
                        if (parse_number(val, INT64_MAX, &v))
                                a.offset = v;
                        else
                                bad_value = "--offset";
                } else if (a.name && strcmp(a.name, "flag") == 0) {
                        a.args[a.n_args++] = argv[i];
                } else if (!bad_option) {
                        bad_option = w;
                }
        }
        if (!a.name) {
                usage(stderr);
                free(a.args);
                return EXIT_USAGE;
        }
        if (strcmp(a.name, "help") == 0) {
                usage(stdout);
                free(a.args);
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
                if (strcmp(a.name, commands[i].name) == 0)
                        cmd = &commands[i];
        r = EXIT_USAGE;
        if (!cmd) {
                fprintf(stderr, "tegami: unknown command \"%s\"; try \"tegami --help\"\n", a.name);
        } else if (bad_option) {
                fprintf(stderr, "tegami %s: unknown option \"%s\"; try \"tegami --help\"\n", a.name, bad_option);
        } else if (bad_value) {
                fprintf(stderr, "tegami %s: %s needs a valid value\n", a.name, bad_value);
        } else if (raw_seen && strcmp(a.name, "show") != 0) {
                fprintf(stderr, "tegami %s: --raw is for \"tegami show\"\n", a.name);
        } else if (att_seen && strcmp(a.name, "show") != 0) {
                fprintf(stderr, "tegami %s: --attachment and -o are for \"tegami show\"\n", a.name);
        } else if (a.output && !a.attachment) {
                fputs("tegami show: -o needs --attachment N\n", stderr);
        } else if (a.attachment && (a.raw || a.json)) {
                fputs("tegami show: --attachment goes without --raw and --json\n", stderr);
        } else if (wait_seen && strcmp(a.name, "sync") != 0) {
                fprintf(stderr, "tegami %s: --wait is for \"tegami sync\"\n", a.name);
        } else if (dry_seen && strcmp(a.name, "fetch") != 0) {
                fprintf(stderr, "tegami %s: --dry-run is for \"tegami fetch\"\n", a.name);
        } else if (a.n_args > cmd->max_args) {
                fprintf(stderr, "tegami %s: unexpected argument \"%s\"\n", a.name, a.args[cmd->max_args]);
        } else if (sodium_init() < 0) {
                fputs("tegami: libsodium failed to initialise\n", stderr);
                r = EXIT_FAILURE;
        } else {
                conn = connect_session_bus();
                if (!conn) {
                        r = EXIT_UNAVAILABLE;
                } else {
                        opt_account = a.account;
                        r = cmd->run(conn, &a);
                        dbus_connection_close(conn);
                        dbus_connection_unref(conn);
                        dbus_shutdown();
                }
        }
        free(a.args);
        return r;
}
