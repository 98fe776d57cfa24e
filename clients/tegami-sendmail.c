/*
 * tegami-sendmail: the sendmail command line mutt, git send-email and cron
 * expect, in front of tegamid's durable outbox. It reads the message from
 * standard input, hands it to the daemon over D-Bus (which starts tegamid by
 * bus activation when it is not running) and exits 0 once the message is
 * stored durably; delivery happens in the background, with retries. Exit
 * codes follow sysexits.h.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "clients/send.h"
#include "util/macro.h"

#define MESSAGE_MAX (100u << 20)

static void usage(FILE *f) {
        fputs("Usage: tegami-sendmail [-t] [-i | -oi] [-f FROM] [-F NAME] [--account NAME] [RECIPIENT...] < message\n"
              "Queue a message in tegamid's outbox; it is sent in the background and never twice.\n\n"
              "  -t              recipients from To, Cc and Bcc (besides any given)\n"
              "  -i, -oi         a line with a single dot does not end the message\n"
              "  -f FROM         envelope sender (default: the From header)\n"
              "  -F NAME         display name for a From header the message lacks\n"
              "  --account NAME  send through this account (default: the one whose address is From)\n"
              "  -h, --help      print this help and exit\n\n"
              "Options of other sendmails that do not apply (-oXXX, -bm, -odi, -odb, -v) are ignored.\n",
              f);
}

/* Reads standard input; without ignore_dots a line "." alone ends the message. */
static int read_message(bool ignore_dots, char **datap, size_t *np) {
        size_t n = 0, cap = 0;
        char *data = NULL, *line = NULL;
        size_t lcap = 0;
        ssize_t len;

        while ((len = getline(&line, &lcap, stdin)) > 0) {
                if (!ignore_dots && (strcmp(line, ".\n") == 0 || strcmp(line, ".\r\n") == 0 || strcmp(line, ".") == 0))
                        break;
                if (n + (size_t)len > MESSAGE_MAX) {
                        free(line);
                        free(data);
                        return -EFBIG;
                }
                if (n + (size_t)len > cap) {
                        char *nd;

                        cap = (n + (size_t)len) * 2 + 4096;
                        nd = realloc(data, cap);
                        if (!nd) {
                                free(line);
                                free(data);
                                return -ENOMEM;
                        }
                        data = nd;
                }
                memcpy(data + n, line, (size_t)len);
                n += (size_t)len;
        }
        free(line);
        if (ferror(stdin)) {
                free(data);
                return -EIO;
        }
        *datap = data;
        *np = n;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_free_ const char **rcpts = calloc((size_t)argc + 1, sizeof *rcpts);
        _cleanup_free_ char *data = NULL, *err = NULL;
        SendOptions o = {};
        bool ignore_dots = false, options_done = false;
        DBusConnection *conn;
        DBusError e;
        uint64_t id = 0;
        size_t n = 0;
        SendError se;
        int r;

        if (!rcpts)
                return EX_OSERR;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (options_done || a[0] != '-' || a[1] == '\0') {
                        rcpts[o.n_rcpts++] = a;
                        continue;
                }
                if (strcmp(a, "--") == 0)
                        options_done = true;
                else if (strcmp(a, "-t") == 0)
                        o.extract_rcpts = true;
                else if (strcmp(a, "-i") == 0 || strcmp(a, "-oi") == 0)
                        ignore_dots = true;
                else if (strncmp(a, "-f", 2) == 0 || strncmp(a, "-F", 2) == 0 || strcmp(a, "--account") == 0) {
                        const char *v = a[1] != '-' && a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);

                        if (!v) {
                                fprintf(stderr, "tegami-sendmail: %s needs a value\n", a);
                                return EX_USAGE;
                        }
                        if (a[1] == 'f')
                                o.from = *v ? v : NULL; /* -f "" is the null sender of bounces: let From decide */
                        else if (a[1] == 'F')
                                o.from_name = v;
                        else
                                o.account = v;
                } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        usage(stdout);
                        return 0;
                } else if (strncmp(a, "-o", 2) == 0 || strncmp(a, "-b", 2) == 0 || strncmp(a, "-od", 3) == 0 ||
                           strcmp(a, "-v") == 0) {
                        if (strcmp(a, "-bs") == 0 || strcmp(a, "-bp") == 0 || strcmp(a, "-bd") == 0) {
                                fprintf(stderr, "tegami-sendmail: %s is not supported (only sending from stdin)\n", a);
                                return EX_USAGE;
                        }
                        /* Options that only matter to an MTA. */
                } else {
                        fprintf(stderr, "tegami-sendmail: unknown option %s\n", a);
                        usage(stderr);
                        return EX_USAGE;
                }
        }
        o.rcpts = rcpts;
        if (o.n_rcpts == 0 && !o.extract_rcpts) {
                fputs("tegami-sendmail: no recipients given (list them, or use -t)\n", stderr);
                return EX_USAGE;
        }

        r = read_message(ignore_dots, &data, &n);
        if (r < 0) {
                fprintf(stderr, "tegami-sendmail: reading the message: %s\n",
                        r == -EFBIG ? "larger than 100 MiB" : strerror(-r));
                return r == -EFBIG ? EX_DATAERR : EX_IOERR;
        }
        if (n == 0) {
                fputs("tegami-sendmail: the message is empty\n", stderr);
                return EX_NOINPUT;
        }

        dbus_error_init(&e);
        conn = dbus_bus_get_private(DBUS_BUS_SESSION, &e);
        if (!conn) {
                fprintf(stderr, "tegami-sendmail: cannot reach the D-Bus session bus: %s\n", e.message);
                dbus_error_free(&e);
                return EX_UNAVAILABLE;
        }
        dbus_connection_set_exit_on_disconnect(conn, FALSE);
        se = send_message(conn, data, n, &o, &id, &err);
        dbus_connection_close(conn);
        dbus_connection_unref(conn);
        switch (se) {
        case SEND_OK:
                return 0;
        case SEND_E_UNAVAILABLE:
                fprintf(stderr, "tegami-sendmail: tegamid is not running and could not be started: %s\n", err);
                return EX_UNAVAILABLE;
        case SEND_E_REFUSED:
                fprintf(stderr, "tegami-sendmail: message refused: %s\n", err);
                return EX_DATAERR;
        case SEND_E_NO_ACCOUNT:
                fprintf(stderr, "tegami-sendmail: %s\n", err);
                return EX_NOUSER;
        case SEND_E_TEMPORARY:
                fprintf(stderr, "tegami-sendmail: not queued, try again later: %s\n", err);
                return EX_TEMPFAIL;
        default:
                fprintf(stderr, "tegami-sendmail: %s\n", err ? err : "failed");
                return EX_SOFTWARE;
        }
}
