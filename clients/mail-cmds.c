/*
 * The `tegami` commands over the mail view and the outbox: folders, list,
 * show, flag, move, delete and outbox. Each makes one or two blocking calls to
 * tegamid and prints the answer as a table or as JSON. `show` reads the raw
 * message from the file descriptor GetMessage returns, in chunks (or through
 * GMime, clients/show-text.c, for the decoded text), so a large message never
 * sits whole in memory here either. Single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clients/cli.h"
#include "clients/show-text.h"
#include "util/macro.h"

#define MAX_STRV 64 /* strings of one "as" value we print */
#define SHOW_TIMEOUT_MS (5 * 60 * 1000) /* GetMessage may fetch the body from the server first */

/* ---- reading a{sv} dictionaries ---- */

/* Finds key in the a{sv} at dict (an iterator on the array) and, when its
 * value has type, recurses into the variant at *vp. */
static bool dict_find(DBusMessageIter *dict, const char *key, int type, DBusMessageIter *vp) {
        DBusMessageIter a, entry;

        for (dbus_message_iter_recurse(dict, &a); dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&a)) {
                const char *k;

                dbus_message_iter_recurse(&a, &entry);
                dbus_message_iter_get_basic(&entry, &k);
                if (strcmp(k, key) != 0)
                        continue;
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, vp);
                return dbus_message_iter_get_arg_type(vp) == type;
        }
        return false;
}

static const char *dict_str(DBusMessageIter *dict, const char *key) {
        DBusMessageIter v;
        const char *s = "";

        if (dict_find(dict, key, DBUS_TYPE_STRING, &v))
                dbus_message_iter_get_basic(&v, &s);
        return s;
}

static uint64_t dict_u64(DBusMessageIter *dict, const char *key) {
        DBusMessageIter v;
        dbus_uint64_t x = 0;

        if (dict_find(dict, key, DBUS_TYPE_UINT64, &v))
                dbus_message_iter_get_basic(&v, &x);
        return x;
}

static int64_t dict_i64(DBusMessageIter *dict, const char *key) {
        DBusMessageIter v;
        dbus_int64_t x = 0;

        if (dict_find(dict, key, DBUS_TYPE_INT64, &v))
                dbus_message_iter_get_basic(&v, &x);
        return x;
}

static uint32_t dict_u32(DBusMessageIter *dict, const char *key) {
        DBusMessageIter v;
        dbus_uint32_t x = 0;

        if (dict_find(dict, key, DBUS_TYPE_UINT32, &v))
                dbus_message_iter_get_basic(&v, &x);
        return x;
}

/* Fills out (up to MAX_STRV) with the strings of the "as" under key; returns how many. */
static size_t dict_strv(DBusMessageIter *dict, const char *key, const char *out[MAX_STRV]) {
        DBusMessageIter v, a;
        size_t n = 0;

        if (!dict_find(dict, key, DBUS_TYPE_ARRAY, &v) || dbus_message_iter_get_element_type(&v) != DBUS_TYPE_STRING)
                return 0;
        for (dbus_message_iter_recurse(&v, &a); dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING && n < MAX_STRV;
             dbus_message_iter_next(&a))
                dbus_message_iter_get_basic(&a, &out[n++]);
        return n;
}

static void json_strv(const char *const *v, size_t n) {
        putchar('[');
        for (size_t i = 0; i < n; i++) {
                if (i)
                        putchar(',');
                json_string(v[i]);
        }
        putchar(']');
}

/* Parses a positive decimal id; false for anything else. */
static bool parse_id(const char *s, uint64_t *idp) {
        char *end;
        unsigned long long v;

        if (!*s || *s == '-' || *s == '+')
                return false;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || v == 0)
                return false;
        *idp = v;
        return true;
}

static int usage_error(const char *cmd, const char *what) {
        fprintf(stderr, "tegami %s: %s; try \"tegami --help\"\n", cmd, what);
        return EXIT_USAGE;
}

/* ---- folders ACCOUNT ---- */

int cmd_folders(DBusConnection *conn, const CliArgs *a) {
        DBusMessage *m, *reply = NULL;
        DBusMessageIter it, arr;
        const char *account;
        bool first_row = true;
        int r;

        if (a->n_args != 1)
                return usage_error(a->name, "usage: tegami folders ACCOUNT");
        account = a->args[0];
        m = cli_method("ListFolders");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_STRING, &account, DBUS_TYPE_INVALID))
                return EXIT_FAILURE;
        r = cli_call(conn, m, a->name, DBUS_TIMEOUT_USE_DEFAULT, &reply);
        if (r != 0)
                return r;
        if (!dbus_message_has_signature(reply, "aa{sv}")) {
                dbus_message_unref(reply);
                fputs("tegami folders: malformed reply\n", stderr);
                return EXIT_DAEMON;
        }
        dbus_message_iter_init(reply, &it);
        if (a->json)
                putchar('[');
        else if (dbus_message_iter_get_element_count(&it) == 0)
                printf("account %s has no folders yet\n", account);
        else
                printf("%-32s %-8s %8s %8s\n", "FOLDER", "ROLE", "UNREAD", "TOTAL");
        for (dbus_message_iter_recurse(&it, &arr); dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_ARRAY;
             dbus_message_iter_next(&arr)) {
                if (a->json) {
                        bool first = true;

                        if (!first_row)
                                putchar(',');
                        putchar('{');
                        json_key("name", &first), json_string(dict_str(&arr, "name"));
                        json_key("role", &first), json_string(dict_str(&arr, "role"));
                        json_key("unread", &first), printf("%" PRIu32, dict_u32(&arr, "unread"));
                        json_key("total", &first), printf("%" PRIu32, dict_u32(&arr, "total"));
                        putchar('}');
                } else {
                        const char *role = dict_str(&arr, "role");

                        printf("%-32s %-8s %8" PRIu32 " %8" PRIu32 "\n", dict_str(&arr, "name"), *role ? role : "-",
                               dict_u32(&arr, "unread"), dict_u32(&arr, "total"));
                }
                first_row = false;
        }
        if (a->json)
                puts("]");
        dbus_message_unref(reply);
        return 0;
}

/* ---- list ACCOUNT FOLDER [--limit N] [--offset N] ---- */

/* Four letters for a table: N (not seen), F, A, D (draft), T (deleted). */
static void flag_letters(const char *const *flags, size_t n, char out[6]) {
        bool seen = false;
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                if (strcasecmp(flags[i], "\\Seen") == 0)
                        seen = true;
                else if (strcasecmp(flags[i], "\\Flagged") == 0)
                        out[k++] = 'F';
                else if (strcasecmp(flags[i], "\\Answered") == 0)
                        out[k++] = 'A';
                else if (strcasecmp(flags[i], "\\Draft") == 0)
                        out[k++] = 'D';
                else if (strcasecmp(flags[i], "\\Deleted") == 0)
                        out[k++] = 'T';
                if (k == 4)
                        break;
        }
        if (!seen && k < 5)
                memmove(out + 1, out, k++), out[0] = 'N';
        out[k] = '\0';
}

/* "attachments": [{"name", "type", "size"}…] of the message in fd, numbered as
 * --attachment takes them (the first is 1); nothing when they cannot be read. */
static void json_attachments(int fd, bool *first) {
        MimeAttachment *att;
        size_t n;

        if (show_attachments(fd, &att, &n) < 0)
                return;
        json_key("attachments", first);
        putchar('[');
        for (size_t i = 0; i < n; i++) {
                bool f = true;

                printf(i ? ",{" : "{");
                json_key("name", &f), json_string(att[i].name ? att[i].name : "");
                json_key("type", &f), json_string(att[i].type);
                json_key("size", &f), printf("%" PRIu64, att[i].size);
                putchar('}');
        }
        putchar(']');
        mime_attachments_free(att, n);
}

/* With fd >= 0 (show): every field and the attachments of the message in fd. */
static void json_summary(DBusMessageIter *d, int fd) {
        bool full = fd >= 0;
        const char *v[MAX_STRV];
        bool first = true;
        size_t n;

        putchar('{');
        json_key("id", &first), printf("%" PRIu64, dict_u64(d, "id"));
        json_key("date", &first), printf("%" PRId64, dict_i64(d, "date"));
        json_key("from", &first), json_string(dict_str(d, "from"));
        json_key("subject", &first), json_string(dict_str(d, "subject"));
        n = dict_strv(d, "flags", v);
        json_key("flags", &first), json_strv(v, n);
        json_key("size", &first), printf("%" PRIu64, dict_u64(d, "size"));
        if (full) {
                json_key("account", &first), json_string(dict_str(d, "account"));
                json_key("folder", &first), json_string(dict_str(d, "folder"));
                n = dict_strv(d, "to", v);
                json_key("to", &first), json_strv(v, n);
                n = dict_strv(d, "cc", v);
                json_key("cc", &first), json_strv(v, n);
                json_key("message_id", &first), json_string(dict_str(d, "message_id"));
                json_attachments(fd, &first);
        }
        putchar('}');
}

int cmd_list(DBusConnection *conn, const CliArgs *a) {
        DBusMessage *m, *reply = NULL;
        DBusMessageIter it, arr;
        dbus_uint64_t offset = a->offset, total = 0;
        dbus_uint32_t limit = a->limit ? a->limit : 50;
        const char *account, *folder;
        bool first_row = true;
        int r;

        if (a->n_args != 2)
                return usage_error(a->name, "usage: tegami list ACCOUNT FOLDER [--limit N] [--offset N]");
        account = a->args[0];
        folder = a->args[1];
        m = cli_method("ListMessages");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_STRING, &account, DBUS_TYPE_STRING, &folder, DBUS_TYPE_UINT64,
                                           &offset, DBUS_TYPE_UINT32, &limit, DBUS_TYPE_INVALID))
                return EXIT_FAILURE;
        r = cli_call(conn, m, a->name, DBUS_TIMEOUT_USE_DEFAULT, &reply);
        if (r != 0)
                return r;
        if (!dbus_message_has_signature(reply, "aa{sv}t")) {
                dbus_message_unref(reply);
                fputs("tegami list: malformed reply\n", stderr);
                return EXIT_DAEMON;
        }
        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &arr);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &total);
        if (a->json)
                printf("{\"total\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"messages\":[", (uint64_t)total,
                       (uint64_t)offset);
        else if (total == 0)
                printf("%s of %s is empty\n", folder, account);
        else
                printf("%-8s %-16s %-5s %-28s %s\n", "ID", "DATE", "FLAGS", "FROM", "SUBJECT");
        for (; dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_ARRAY; dbus_message_iter_next(&arr)) {
                if (a->json) {
                        if (!first_row)
                                putchar(',');
                        json_summary(&arr, -1);
                } else {
                        const char *v[MAX_STRV];
                        size_t n = dict_strv(&arr, "flags", v);
                        char letters[6], date[32];

                        flag_letters(v, n, letters);
                        printf("%-8" PRIu64 " %-16s %-5s %-28.28s %s\n", dict_u64(&arr, "id"),
                               cli_when(dict_i64(&arr, "date"), date, sizeof date), letters, dict_str(&arr, "from"),
                               dict_str(&arr, "subject"));
                }
                first_row = false;
        }
        if (a->json)
                puts("]}");
        else if (total > offset + limit)
                printf("(%" PRIu64 " more: --offset %" PRIu64 ")\n", (uint64_t)(total - offset - limit),
                       (uint64_t)(offset + limit));
        dbus_message_unref(reply);
        return 0;
}

/* ---- show ID [--raw] ---- */

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Copies fd to stdout: everything (raw), or the body after the header block
 * with CR LF shown as LF. */
static int copy_message(int fd, bool raw) {
        char buf[65536], out[65536];
        /* Header state: how many of "\n\n" (CRs ignored) we have seen; 2 = in the body. */
        int state = raw ? 2 : 0;
        bool cr = false;

        fflush(stdout);
        for (;;) {
                ssize_t k = read(fd, buf, sizeof buf);
                size_t n = 0;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                if (raw) {
                        if (write_all(STDOUT_FILENO, buf, (size_t)k) < 0)
                                return -errno;
                        continue;
                }
                for (ssize_t i = 0; i < k; i++) {
                        char c = buf[i];

                        if (state < 2) {
                                if (c == '\n')
                                        state++;
                                else if (c != '\r')
                                        state = 0;
                                continue;
                        }
                        if (cr && c != '\n')
                                out[n++] = '\r';
                        cr = c == '\r';
                        if (!cr)
                                out[n++] = c;
                        if (n >= sizeof out - 1) {
                                if (write_all(STDOUT_FILENO, out, n) < 0)
                                        return -errno;
                                n = 0;
                        }
                }
                if (n > 0 && write_all(STDOUT_FILENO, out, n) < 0)
                        return -errno;
        }
        return 0;
}

/* After the body: the attachments, numbered from 1 as --attachment takes them. */
static int list_attachments(int fd) {
        MimeAttachment *att;
        size_t n;
        int r;

        r = show_attachments(fd, &att, &n);
        if (r < 0)
                return r;
        if (n > 0)
                printf("\nAttachments (tegami show ID --attachment N):\n");
        for (size_t i = 0; i < n; i++)
                printf("%4zu  %s  (%s, %" PRIu64 " bytes)\n", i + 1, att[i].name ? att[i].name : "(no name)",
                       att[i].type, att[i].size);
        mime_attachments_free(att, n);
        fflush(stdout);
        return 0;
}

/* show ID --attachment N [-o FILE]: the attachment decoded, to FILE or stdout.
 * A binary one (not text/...) is not written to a terminal. Returns the exit code. */
static int write_attachment(int fd, uint64_t id, uint64_t number, const char *output) {
        MimeAttachment *att;
        size_t n;
        bool text;
        int out = STDOUT_FILENO, r;

        r = show_attachments(fd, &att, &n);
        if (r < 0) {
                fprintf(stderr, "tegami show: message %" PRIu64 ": cannot read its attachments: %s\n", id,
                        strerror(-r));
                return EXIT_FAILURE;
        }
        if (number > n) {
                mime_attachments_free(att, n);
                if (n == 0)
                        fprintf(stderr, "tegami show: message %" PRIu64 " has no attachments\n", id);
                else
                        fprintf(stderr,
                                "tegami show: message %" PRIu64 " has %zu attachment%s: there is no attachment %" PRIu64
                                "\n",
                                id, n, n == 1 ? "" : "s", number);
                return EXIT_FAILURE;
        }
        text = strncmp(att[number - 1].type, "text/", 5) == 0;
        mime_attachments_free(att, n);
        if (!output && !text && isatty(STDOUT_FILENO)) {
                fprintf(stderr,
                        "tegami show: attachment %" PRIu64 " is binary: not writing it to a terminal"
                        " (use -o FILE or a redirection)\n",
                        number);
                return EXIT_USAGE;
        }
        if (output) {
                out = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
                if (out < 0) {
                        fprintf(stderr, "tegami show: %s: %s\n", output, strerror(errno));
                        return EXIT_FAILURE;
                }
        }
        fflush(stdout);
        r = show_attachment_write(fd, (size_t)(number - 1), out);
        if (output && close(out) < 0 && r == 0)
                r = -errno;
        if (r != 0) {
                fprintf(stderr, "tegami show: cannot write attachment %" PRIu64 "%s%s: %s\n", number,
                        output ? " to " : "", output ? output : "", r > 0 ? "no such attachment" : strerror(-r));
                return EXIT_FAILURE;
        }
        return 0;
}

int cmd_show(DBusConnection *conn, const CliArgs *a) {
        DBusMessage *m, *reply = NULL;
        DBusMessageIter it, dict;
        dbus_uint64_t id;
        uint64_t v;
        int fd = -1, r;

        if (a->n_args != 1 || !parse_id(a->args[0], &v))
                return usage_error(a->name, "usage: tegami show ID [--raw | --attachment N [-o FILE]]");
        id = v;
        m = cli_method("GetMessage");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_UINT64, &id, DBUS_TYPE_INVALID))
                return EXIT_FAILURE;
        /* Longer than the default 25 s: a body stored headers only (metered network) is fetched first. */
        r = cli_call(conn, m, a->name, SHOW_TIMEOUT_MS, &reply);
        if (r != 0)
                return r;
        if (!dbus_message_has_signature(reply, "ha{sv}")) {
                dbus_message_unref(reply);
                fputs("tegami show: malformed reply\n", stderr);
                return EXIT_DAEMON;
        }
        dbus_message_iter_init(reply, &it);
        dbus_message_iter_get_basic(&it, &fd); /* ours to close */
        dbus_message_iter_next(&it);
        dict = it;
        if (a->attachment) {
                r = write_attachment(fd, id, a->attachment, a->output);
        } else if (a->json && !a->raw) {
                json_summary(&dict, fd);
                putchar('\n');
        } else {
                if (!a->raw) {
                        const char *to[MAX_STRV], *cc[MAX_STRV];
                        size_t n_to = dict_strv(&dict, "to", to), n_cc = dict_strv(&dict, "cc", cc);
                        char date[32];

                        printf("From: %s\n", dict_str(&dict, "from"));
                        for (size_t i = 0; i < n_to; i++)
                                printf(i ? ", %s" : "To: %s", to[i]);
                        if (n_to)
                                putchar('\n');
                        for (size_t i = 0; i < n_cc; i++)
                                printf(i ? ", %s" : "Cc: %s", cc[i]);
                        if (n_cc)
                                putchar('\n');
                        printf("Subject: %s\n", dict_str(&dict, "subject"));
                        printf("Date: %s\n\n", cli_when(dict_i64(&dict, "date"), date, sizeof date));
                }
                /* Without --raw: the text part, decoded (GMime); the body as stored
                 * when there is none (or it cannot be parsed). */
                fflush(stdout); /* what follows goes straight to the descriptor */
                r = a->raw ? 1 : show_text_body(fd);
                if (r == 1)
                        r = lseek(fd, 0, SEEK_SET) < 0 ? -errno : copy_message(fd, a->raw);
                if (r == 0 && !a->raw)
                        r = list_attachments(fd);
                if (r < 0) {
                        fprintf(stderr, "tegami show: cannot copy the message: %s\n", strerror(-r));
                        r = EXIT_FAILURE;
                }
        }
        close(fd);
        dbus_message_unref(reply);
        return r;
}

/* ---- flag ID... +FLAG -FLAG..., move ACCOUNT FOLDER ID..., delete ID... ---- */

/* "seen" → "\Seen" and the like; other names are keywords, passed as they are. */
static const char *flag_name(const char *s) {
        static const char *const names[] = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Forwarded"};

        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                const char *n = names[i] + 1;

                if (strcasecmp(s, n) == 0 || strcasecmp(s, names[i]) == 0)
                        return names[i];
        }
        return s;
}

/* Reads ids from args[from..to) into a new array; NULL (usage) on a bad one. */
static dbus_uint64_t *read_ids(const CliArgs *a, size_t from, size_t to, int *np) {
        dbus_uint64_t *ids = calloc(to - from + 1, sizeof *ids);
        int n = 0;

        if (!ids)
                return NULL;
        for (size_t i = from; i < to; i++) {
                uint64_t v;

                if (!parse_id(a->args[i], &v)) {
                        fprintf(stderr, "tegami %s: \"%s\" is not a message id\n", a->name, a->args[i]);
                        free(ids);
                        return NULL;
                }
                ids[n++] = v;
        }
        *np = n;
        return ids;
}

static int finish_change(DBusConnection *conn, DBusMessage *m, const CliArgs *a, int n) {
        DBusMessage *reply = NULL;
        int r = cli_call(conn, m, a->name, DBUS_TIMEOUT_USE_DEFAULT, &reply);

        if (r != 0)
                return r;
        dbus_message_unref(reply);
        if (a->json)
                printf("{\"changed\":%d}\n", n);
        else
                printf("%d message%s changed\n", n, n == 1 ? "" : "s");
        return 0;
}

int cmd_flag(DBusConnection *conn, const CliArgs *a) {
        _cleanup_free_ dbus_uint64_t *ids = calloc(a->n_args + 1, sizeof *ids);
        _cleanup_free_ const char **add = calloc(a->n_args + 1, sizeof *add);
        _cleanup_free_ const char **remove = calloc(a->n_args + 1, sizeof *remove);
        int n_ids = 0, n_add = 0, n_remove = 0;
        DBusMessage *m;

        if (!ids || !add || !remove)
                return EXIT_FAILURE;
        for (size_t i = 0; i < a->n_args; i++) {
                const char *w = a->args[i];
                uint64_t v;

                if (w[0] == '+' && w[1])
                        add[n_add++] = flag_name(w + 1);
                else if (w[0] == '-' && w[1])
                        remove[n_remove++] = flag_name(w + 1);
                else if (parse_id(w, &v))
                        ids[n_ids++] = v;
                else
                        return usage_error(a->name, "arguments are message ids, +FLAG and -FLAG");
        }
        if (n_ids == 0 || n_add + n_remove == 0)
                return usage_error(a->name, "usage: tegami flag ID... +FLAG|-FLAG...");
        m = cli_method("SetFlags");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_ARRAY, DBUS_TYPE_UINT64, &ids, n_ids, DBUS_TYPE_ARRAY,
                                           DBUS_TYPE_STRING, &add, n_add, DBUS_TYPE_ARRAY, DBUS_TYPE_STRING, &remove,
                                           n_remove, DBUS_TYPE_INVALID))
                return EXIT_FAILURE;
        return finish_change(conn, m, a, n_ids);
}

int cmd_move(DBusConnection *conn, const CliArgs *a) {
        _cleanup_free_ dbus_uint64_t *ids = NULL;
        const char *account, *folder;
        DBusMessage *m;
        int n = 0;

        if (a->n_args < 3)
                return usage_error(a->name, "usage: tegami move ACCOUNT FOLDER ID...");
        ids = read_ids(a, 2, a->n_args, &n);
        if (!ids)
                return EXIT_USAGE;
        account = a->args[0];
        folder = a->args[1];
        m = cli_method("Move");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_ARRAY, DBUS_TYPE_UINT64, &ids, n, DBUS_TYPE_STRING, &account,
                                           DBUS_TYPE_STRING, &folder, DBUS_TYPE_INVALID))
                return EXIT_FAILURE;
        return finish_change(conn, m, a, n);
}

int cmd_delete(DBusConnection *conn, const CliArgs *a) {
        _cleanup_free_ dbus_uint64_t *ids = NULL;
        DBusMessage *m;
        int n = 0;

        if (a->n_args < 1)
                return usage_error(a->name, "usage: tegami delete ID...");
        ids = read_ids(a, 0, a->n_args, &n);
        if (!ids)
                return EXIT_USAGE;
        m = cli_method("Delete");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_ARRAY, DBUS_TYPE_UINT64, &ids, n, DBUS_TYPE_INVALID))
                return EXIT_FAILURE;
        return finish_change(conn, m, a, n);
}

/* ---- outbox [retry ID | cancel ID] ---- */

static int outbox_list(DBusConnection *conn, const CliArgs *a) {
        DBusMessage *reply = NULL;
        DBusMessageIter it, arr;
        bool first_row = true;
        int r;

        r = cli_call(conn, cli_method("ListOutbox"), a->name, DBUS_TIMEOUT_USE_DEFAULT, &reply);
        if (r != 0)
                return r;
        if (!dbus_message_has_signature(reply, "aa{sv}")) {
                dbus_message_unref(reply);
                fputs("tegami outbox: malformed reply\n", stderr);
                return EXIT_DAEMON;
        }
        dbus_message_iter_init(reply, &it);
        if (a->json)
                putchar('[');
        else if (dbus_message_iter_get_element_count(&it) == 0)
                puts("the outbox is empty");
        else
                printf("%-6s %-12s %-9s %-8s %-16s %-28s %s\n", "ID", "ACCOUNT", "STATE", "ATTEMPTS", "NEXT",
                       "RECIPIENTS", "SUBJECT");
        for (dbus_message_iter_recurse(&it, &arr); dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_ARRAY;
             dbus_message_iter_next(&arr)) {
                const char *rcpts[MAX_STRV];
                size_t n = dict_strv(&arr, "recipients", rcpts);

                if (a->json) {
                        bool first = true;

                        if (!first_row)
                                putchar(',');
                        putchar('{');
                        json_key("id", &first), printf("%" PRIu64, dict_u64(&arr, "id"));
                        json_key("account", &first), json_string(dict_str(&arr, "account"));
                        json_key("state", &first), json_string(dict_str(&arr, "state"));
                        json_key("attempts", &first), printf("%" PRIu32, dict_u32(&arr, "attempts"));
                        json_key("next_attempt", &first), printf("%" PRId64, dict_i64(&arr, "next_attempt"));
                        json_key("created", &first), printf("%" PRId64, dict_i64(&arr, "created"));
                        json_key("last_error", &first), json_string(dict_str(&arr, "last_error"));
                        json_key("recipients", &first), json_strv(rcpts, n);
                        json_key("subject", &first), json_string(dict_str(&arr, "subject"));
                        putchar('}');
                } else {
                        const char *err = dict_str(&arr, "last_error");
                        char next[32];

                        printf("%-6" PRIu64 " %-12s %-9s %-8" PRIu32 " %-16s %-28.28s %s\n", dict_u64(&arr, "id"),
                               dict_str(&arr, "account"), dict_str(&arr, "state"), dict_u32(&arr, "attempts"),
                               cli_when(dict_i64(&arr, "next_attempt"), next, sizeof next), n ? rcpts[0] : "-",
                               dict_str(&arr, "subject"));
                        if (*err)
                                printf("       last error: %s\n", err);
                }
                first_row = false;
        }
        if (a->json)
                puts("]");
        dbus_message_unref(reply);
        return 0;
}

int cmd_outbox(DBusConnection *conn, const CliArgs *a) {
        DBusMessage *m, *reply = NULL;
        dbus_uint64_t id;
        bool retry;
        uint64_t v;
        int r;

        if (a->n_args == 0)
                return outbox_list(conn, a);
        retry = strcmp(a->args[0], "retry") == 0;
        if ((!retry && strcmp(a->args[0], "cancel") != 0) || a->n_args != 2 || !parse_id(a->args[1], &v))
                return usage_error(a->name, "usage: tegami outbox [retry ID | cancel ID]");
        id = v;
        m = cli_method(retry ? "RetryOutbox" : "CancelOutbox");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_UINT64, &id, DBUS_TYPE_INVALID))
                return EXIT_FAILURE;
        r = cli_call(conn, m, a->name, DBUS_TIMEOUT_USE_DEFAULT, &reply);
        if (r != 0)
                return r;
        dbus_message_unref(reply);
        if (a->json)
                printf("{\"id\":%" PRIu64 ",\"%s\":true}\n", (uint64_t)id, retry ? "retried" : "cancelled");
        else
                printf("outbox entry %" PRIu64 " %s\n", (uint64_t)id, retry ? "will be retried now" : "cancelled");
        return 0;
}
