/*
 * tegami-notify: desktop notifications for tegamid's events.
 *
 * It listens on the session bus to org.tegami.Mail1's NewMail, QuotaWarning
 * and AccountError signals and shows them through
 * org.freedesktop.Notifications. New mail is coalesced: signals of one
 * account within NOTIFY_SETTLE_MS make one notification, and while that
 * notification is still on screen later mail updates it in place
 * (replaces_id) with the running count, "12 new messages in work". Sender and
 * subject come from GetMessageSummary (already decoded by tegamid), and
 * only when the account allows previews (`notify_preview`, default yes).
 * Subjects are escaped when the server renders body markup. The default
 * action runs `[notify] open_command` with TEGAMI_ACCOUNT and
 * TEGAMI_MESSAGE_IDS in its environment; nothing from a message reaches a
 * shell.
 *
 * The D-Bus connection runs on a libuv loop through ipc/bus-uv; the few
 * method calls it makes are short and synchronous.
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
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "ipc/bus-uv.h"
#include "util/log.h"
#include "util/macro.h"

#define MAIL_NAME  "org.tegami.Mail1"
#define MAIL_PATH  "/org/tegami/Mail1"
#define MAIL_IFACE "org.tegami.Mail1"

#define NOTIF_NAME  "org.freedesktop.Notifications"
#define NOTIF_PATH  "/org/freedesktop/Notifications"
#define NOTIF_IFACE "org.freedesktop.Notifications"

/* New mail of one account arriving within this becomes one notification. */
#define NOTIFY_SETTLE_MS 1500
/* Senders and subjects shown in one notification at most. */
#define NOTIFY_PREVIEW_MAX 3
/* Synchronous calls give up after this. */
#define CALL_TIMEOUT_MS 5000
/* The same account error is not shown again within this. */
#define ERROR_REPEAT_S (10 * 60)

typedef struct Burst {
        char *account;
        uv_timer_t timer;
        bool timer_armed;
        int64_t *ids; /* received and not yet shown */
        size_t n_ids, cap_ids;
        uint64_t n_shown;     /* counted in the notification still on screen */
        uint32_t notif_id;    /* that notification, 0 if none */
        char *shown_ids;      /* "1 2 3": TEGAMI_MESSAGE_IDS for its action */
        char *last_error;     /* the last AccountError shown, for repeat suppression */
        int64_t last_error_at;
        uint32_t error_notif_id;
        struct Burst *next;
} Burst;

typedef struct Notifier {
        uv_loop_t *loop;
        DBusConnection *conn;
        BusUv *bus;
        uv_signal_t sig_term, sig_int;
        Config *config; /* NULL when unreadable: no previews, no action */
        char *config_path;
        bool caps_known, cap_markup, cap_actions, cap_body;
        Burst *bursts;
        unsigned n_notified; /* Notify calls made, for --exit-after (tests) */
        unsigned exit_after;
} Notifier;

/* ---- helpers --------------------------------------------------------------------------------- */

/* s with & < > " ' escaped for body-markup, or a copy when escaping is off. */
static char *markup_escape(const char *s, bool escape) {
        size_t n = 0;
        char *out, *o;

        for (const char *p = s; *p; p++)
                n += !escape ? 1 : *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : (*p == '"' || *p == '\'') ? 6 : 1;
        out = malloc(n + 1);
        if (!out)
                return NULL;
        o = out;
        for (const char *p = s; *p; p++) {
                const char *rep = NULL;

                if (escape)
                        rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '"' ? "&quot;"
                              : *p == '\'' ? "&apos;" : NULL;
                if (rep) {
                        memcpy(o, rep, strlen(rep));
                        o += strlen(rep);
                } else
                        *o++ = *p;
        }
        *o = '\0';
        return out;
}

/* The display name of "Name <addr>", else the address, into buf. */
static void sender_name(const char *from, char *buf, size_t size) {
        const char *lt = strchr(from, '<');
        size_t n;

        if (lt && lt > from) {
                n = (size_t)(lt - from);
                while (n > 0 && (from[n - 1] == ' ' || from[n - 1] == '"'))
                        n--;
                while (n > 0 && (*from == '"' || *from == ' ')) {
                        from++;
                        n--;
                }
                if (n > 0) {
                        snprintf(buf, size, "%.*s", (int)n, from);
                        return;
                }
        }
        if (lt) {
                const char *gt = strchr(lt, '>');

                snprintf(buf, size, "%.*s", gt ? (int)(gt - lt - 1) : (int)strlen(lt + 1), lt + 1);
                return;
        }
        snprintf(buf, size, "%s", from);
}

static bool account_preview(const Notifier *n, const char *account) {
        const Account *a = n->config ? config_find_account(n->config, account) : NULL;

        return a && a->notify_preview; /* unknown account or unreadable config: no preview */
}

static void load_config(Notifier *n) {
        _cleanup_free_ char *err = NULL;
        Config *c = NULL;
        int r;

        r = config_load(n->config_path, &c, &err);
        if (r < 0) {
                log_warning("%s; notifications show no sender or subject until it is fixed",
                            err ? err : strerror(-r));
                return;
        }
        config_free(n->config);
        n->config = c;
}

static void get_caps(Notifier *n) {
        DBusMessage *m, *reply;
        DBusMessageIter it, arr;
        DBusError e = DBUS_ERROR_INIT;

        if (n->caps_known)
                return;
        m = dbus_message_new_method_call(NOTIF_NAME, NOTIF_PATH, NOTIF_IFACE, "GetCapabilities");
        if (!m)
                return;
        reply = dbus_connection_send_with_reply_and_block(n->conn, m, CALL_TIMEOUT_MS, &e);
        dbus_message_unref(m);
        if (!reply) {
                log_warning("notification server: GetCapabilities: %s", e.message);
                dbus_error_free(&e);
                return;
        }
        n->caps_known = true;
        if (dbus_message_iter_init(reply, &it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_ARRAY) {
                dbus_message_iter_recurse(&it, &arr);
                while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRING) {
                        const char *cap;

                        dbus_message_iter_get_basic(&arr, &cap);
                        n->cap_markup = n->cap_markup || strcmp(cap, "body-markup") == 0;
                        n->cap_actions = n->cap_actions || strcmp(cap, "actions") == 0;
                        n->cap_body = n->cap_body || strcmp(cap, "body") == 0;
                        dbus_message_iter_next(&arr);
                }
        }
        dbus_message_unref(reply);
}

static void dict_entry_str(DBusMessageIter *dict, const char *key, const char *value) {
        DBusMessageIter entry, var;

        dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
        dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
        dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &var);
        dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &value);
        dbus_message_iter_close_container(&entry, &var);
        dbus_message_iter_close_container(dict, &entry);
}

/* Calls Notify; returns the notification's id, 0 on failure (logged). body is already escaped. */
static uint32_t notify(Notifier *n, uint32_t replaces, const char *icon, const char *category, const char *summary,
                       const char *body, bool with_action) {
        const char *app = "tegami", *action_key = "default", *action_label = "Open";
        DBusMessageIter it, arr, dict;
        DBusError e = DBUS_ERROR_INIT;
        DBusMessage *m, *reply;
        int32_t timeout = -1;
        uint32_t id = 0;

        get_caps(n);
        if (!n->cap_body)
                body = "";
        m = dbus_message_new_method_call(NOTIF_NAME, NOTIF_PATH, NOTIF_IFACE, "Notify");
        if (!m)
                return 0;
        dbus_message_iter_init_append(m, &it);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &app);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_UINT32, &replaces);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &icon);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &summary);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &body);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &arr);
        if (with_action && n->cap_actions) {
                dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &action_key);
                dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &action_label);
        }
        dbus_message_iter_close_container(&it, &arr);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        dict_entry_str(&dict, "category", category);
        dict_entry_str(&dict, "desktop-entry", "tegami-notify");
        dbus_message_iter_close_container(&it, &dict);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_INT32, &timeout);
        reply = dbus_connection_send_with_reply_and_block(n->conn, m, CALL_TIMEOUT_MS, &e);
        dbus_message_unref(m);
        if (!reply) {
                log_warning("notification server: Notify: %s", e.message);
                dbus_error_free(&e);
                return 0;
        }
        if (!dbus_message_get_args(reply, &e, DBUS_TYPE_UINT32, &id, DBUS_TYPE_INVALID)) {
                log_warning("notification server: Notify: %s", e.message);
                dbus_error_free(&e);
        }
        dbus_message_unref(reply);
        n->n_notified++;
        if (n->exit_after && n->n_notified >= n->exit_after)
                uv_stop(n->loop);
        return id;
}

/* Sender and subject of message id from tegamid: GetMessageSummary, which never fetches a body
 * (GetMessage would, for a message stored headers only on a metered network). */
static int summary_of(Notifier *n, uint64_t id, char **fromp, char **subjectp) {
        DBusMessage *m, *reply;
        DBusMessageIter it, dict;
        DBusError e = DBUS_ERROR_INIT;

        m = dbus_message_new_method_call(MAIL_NAME, MAIL_PATH, MAIL_IFACE, "GetMessageSummary");
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_UINT64, &id, DBUS_TYPE_INVALID)) {
                if (m)
                        dbus_message_unref(m);
                return -ENOMEM;
        }
        reply = dbus_connection_send_with_reply_and_block(n->conn, m, CALL_TIMEOUT_MS, &e);
        dbus_message_unref(m);
        if (!reply) {
                log_debug("GetMessageSummary %" PRIu64 ": %s", id, e.message);
                dbus_error_free(&e);
                return -ENOENT;
        }
        if (!dbus_message_iter_init(reply, &it) || dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_ARRAY) {
                dbus_message_unref(reply);
                return -EBADMSG;
        }
        dbus_message_iter_recurse(&it, &dict);
        while (dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY) {
                DBusMessageIter entry, var;
                const char *key, *val;

                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &var);
                if (dbus_message_iter_get_arg_type(&var) == DBUS_TYPE_STRING) {
                        dbus_message_iter_get_basic(&var, &val);
                        if (strcmp(key, "from") == 0 && !*fromp)
                                *fromp = strdup(val);
                        else if (strcmp(key, "subject") == 0 && !*subjectp)
                                *subjectp = strdup(val);
                }
                dbus_message_iter_next(&dict);
        }
        dbus_message_unref(reply);
        return 0;
}

/* ---- new mail --------------------------------------------------------------------------------- */

static Burst *burst_get(Notifier *n, const char *account);

/* Appends "line\n" to the growing text *bufp (size *sizep); silently stops at the cap. */
static void append_line(char *buf, size_t size, const char *line) {
        size_t len = strlen(buf);

        if (len > 0 && len + 1 < size)
                buf[len++] = '\n', buf[len] = '\0';
        snprintf(buf + len, size - len, "%s", line);
}

static void burst_show(Notifier *n, Burst *b) {
        bool preview = account_preview(n, b->account), escape;
        char summary[256], body[2048] = "", line[768];
        size_t n_new = b->n_ids, k;
        char *ids_text, *p;
        uint32_t id;

        if (n_new == 0)
                return;
        get_caps(n);
        escape = n->cap_markup;
        b->n_shown = b->notif_id ? b->n_shown + n_new : n_new;
        if (b->n_shown == 1)
                snprintf(summary, sizeof summary, "New message in %s", b->account);
        else
                snprintf(summary, sizeof summary, "%" PRIu64 " new messages in %s", b->n_shown, b->account);
        if (preview) {
                for (k = 0; k < n_new && k < NOTIFY_PREVIEW_MAX; k++) {
                        _cleanup_free_ char *from = NULL, *subject = NULL, *esc_from = NULL, *esc_subject = NULL;
                        char name[256];

                        if (summary_of(n, (uint64_t)b->ids[k], &from, &subject) < 0)
                                continue;
                        sender_name(from ? from : "", name, sizeof name);
                        esc_from = markup_escape(name, escape);
                        esc_subject = markup_escape(subject && *subject ? subject : "(no subject)", escape);
                        if (!esc_from || !esc_subject)
                                continue;
                        if (b->n_shown == 1) {
                                /* One message: the sender is the title, the subject the text. */
                                snprintf(summary, sizeof summary, "%s", *name ? name : "New message");
                                snprintf(body, sizeof body, "%s", esc_subject);
                        } else {
                                snprintf(line, sizeof line, "%s%s%s", esc_from, *esc_from ? ": " : "", esc_subject);
                                append_line(body, sizeof body, line);
                        }
                }
                if (n_new > NOTIFY_PREVIEW_MAX) {
                        snprintf(line, sizeof line, "and %zu more", n_new - NOTIFY_PREVIEW_MAX);
                        append_line(body, sizeof body, line);
                }
        }
        /* The ids for the action, as text: digits and spaces only. */
        ids_text = malloc(n_new * 21 + 1);
        if (ids_text) {
                p = ids_text;
                *p = '\0';
                for (k = 0; k < n_new; k++)
                        p += sprintf(p, "%s%" PRId64, k ? " " : "", b->ids[k]);
                free(b->shown_ids);
                b->shown_ids = ids_text;
        }
        id = notify(n, b->notif_id, "mail-unread", "email.arrived", summary, body,
                    n->config && n->config->notify_open_command);
        b->notif_id = id;
        b->n_ids = 0;
}

static void burst_timer_cb(uv_timer_t *t) {
        Burst *b = t->data;
        Notifier *n = t->loop->data;

        b->timer_armed = false;
        burst_show(n, b);
}

static Burst *burst_get(Notifier *n, const char *account) {
        Burst *b;

        for (b = n->bursts; b; b = b->next)
                if (strcmp(b->account, account) == 0)
                        return b;
        b = calloc(1, sizeof *b);
        if (!b || !(b->account = strdup(account))) {
                free(b);
                return NULL;
        }
        uv_timer_init(n->loop, &b->timer);
        b->timer.data = b;
        b->next = n->bursts;
        n->bursts = b;
        return b;
}

static void on_new_mail(Notifier *n, DBusMessage *m) {
        const char *account, *folder;
        DBusMessageIter it, arr;
        Burst *b;

        if (!dbus_message_iter_init(m, &it) || strcmp(dbus_message_get_signature(m), "ssat") != 0)
                return;
        dbus_message_iter_get_basic(&it, &account);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &folder);
        dbus_message_iter_next(&it);
        b = burst_get(n, account);
        if (!b)
                return;
        dbus_message_iter_recurse(&it, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_UINT64) {
                uint64_t id;

                dbus_message_iter_get_basic(&arr, &id);
                if (b->n_ids == b->cap_ids) {
                        size_t cap = b->cap_ids ? b->cap_ids * 2 : 16;
                        int64_t *v = realloc(b->ids, cap * sizeof *v);

                        if (!v)
                                break;
                        b->ids = v;
                        b->cap_ids = cap;
                }
                b->ids[b->n_ids++] = (int64_t)id;
                dbus_message_iter_next(&arr);
        }
        log_debug("new mail: %s/%s: %zu waiting", account, folder, b->n_ids);
        /* The first signal of a burst starts the clock; later ones join it. */
        if (!b->timer_armed && b->n_ids > 0) {
                b->timer_armed = true;
                uv_timer_start(&b->timer, burst_timer_cb, NOTIFY_SETTLE_MS, 0);
        }
}

/* ---- quota, errors, actions ------------------------------------------------------------------- */

static void on_quota(Notifier *n, DBusMessage *m) {
        const char *account;
        uint64_t used, limit;
        char summary[256], body[256];

        if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &account, DBUS_TYPE_UINT64, &used, DBUS_TYPE_UINT64,
                                   &limit, DBUS_TYPE_INVALID))
                return;
        snprintf(summary, sizeof summary, "Mailbox %s is almost full", account);
        snprintf(body, sizeof body, "%.1f MB used of %.1f MB", (double)used / 1048576.0, (double)limit / 1048576.0);
        notify(n, 0, "dialog-warning", "email", summary, body, false);
}

static const char *error_title(const char *error) {
        static const struct {
                const char *suffix, *title;
        } titles[] = {
                { "AuthFailed", "the server refused the login" },
                { "Tls", "the server's certificate was refused" },
                { "Network", "cannot reach the server" },
        };
        const char *dot = strrchr(error, '.');

        for (size_t i = 0; i < ARRAY_SIZE(titles); i++)
                if (dot && strcmp(dot + 1, titles[i].suffix) == 0)
                        return titles[i].title;
        return "cannot sync";
}

static void on_account_error(Notifier *n, DBusMessage *m) {
        const char *account, *error, *message;
        _cleanup_free_ char *body = NULL;
        char summary[256];
        Burst *b;

        if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &account, DBUS_TYPE_STRING, &error, DBUS_TYPE_STRING,
                                   &message, DBUS_TYPE_INVALID))
                return;
        b = burst_get(n, account);
        if (!b)
                return;
        /* The same failure again soon after (a retry failing alike) is not news. */
        if (b->last_error && strcmp(b->last_error, error) == 0 && time(NULL) - b->last_error_at < ERROR_REPEAT_S)
                return;
        free(b->last_error);
        b->last_error = strdup(error);
        b->last_error_at = time(NULL);
        get_caps(n);
        snprintf(summary, sizeof summary, "%s: %s", account, error_title(error));
        body = markup_escape(message, n->cap_markup);
        b->error_notif_id = notify(n, b->error_notif_id, "dialog-error", "email", summary, body ? body : "", false);
}

static void on_closed(Notifier *n, DBusMessage *m) {
        uint32_t id, reason;

        if (!dbus_message_get_args(m, NULL, DBUS_TYPE_UINT32, &id, DBUS_TYPE_UINT32, &reason, DBUS_TYPE_INVALID))
                return;
        for (Burst *b = n->bursts; b; b = b->next) {
                if (b->notif_id == id) {
                        b->notif_id = 0; /* the next mail starts a new count */
                        b->n_shown = 0;
                }
                if (b->error_notif_id == id)
                        b->error_notif_id = 0;
        }
}

static void proc_closed_cb(uv_handle_t *h) {
        free(h);
}

/* The command ended: reap it (no zombie) and free its handle. */
static void proc_exit_cb(uv_process_t *proc, int64_t status, int signum) {
        if (status != 0 || signum != 0)
                log_info("open_command exited with status %" PRId64 "%s%s", status, signum ? ", signal " : "",
                         signum ? strsignal(signum) : "");
        uv_close((uv_handle_t *)proc, proc_closed_cb);
}

static void on_action(Notifier *n, DBusMessage *m) {
        const char *key, *shell = "/bin/sh";
        char env_account[128], *env_ids = NULL;
        uv_process_options_t opts = {};
        uv_process_t *proc;
        uint32_t id;
        Burst *b;
        int r;

        if (!dbus_message_get_args(m, NULL, DBUS_TYPE_UINT32, &id, DBUS_TYPE_STRING, &key, DBUS_TYPE_INVALID))
                return;
        for (b = n->bursts; b && b->notif_id != id; b = b->next)
                ;
        if (!b || id == 0 || strcmp(key, "default") != 0 || !n->config || !n->config->notify_open_command)
                return;
        snprintf(env_account, sizeof env_account, "TEGAMI_ACCOUNT=%s", b->account);
        if (asprintf(&env_ids, "TEGAMI_MESSAGE_IDS=%s", b->shown_ids ? b->shown_ids : "") < 0)
                return;
        char *args[] = { (char *)shell, (char *)"-c", n->config->notify_open_command, NULL };
        char *env[] = { env_account, env_ids, NULL, NULL, NULL, NULL, NULL };
        size_t k = 2;
        /* What the command needs to reach the desktop and the user's files. */
        static const char *const keep[] = { "PATH", "HOME", "DISPLAY", "WAYLAND_DISPLAY" };
        char *kept[ARRAY_SIZE(keep)] = {};

        for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
                const char *v = getenv(keep[i]);

                if (v && asprintf(&kept[i], "%s=%s", keep[i], v) >= 0)
                        env[k++] = kept[i];
        }
        proc = calloc(1, sizeof *proc);
        if (!proc)
                goto out;
        opts.file = shell;
        opts.args = args;
        opts.env = env;
        opts.flags = UV_PROCESS_DETACHED;
        opts.exit_cb = proc_exit_cb;
        r = uv_spawn(n->loop, proc, &opts);
        if (r < 0) {
                log_warning("open_command: %s", uv_strerror(r));
                free(proc);
        } else
                uv_unref((uv_handle_t *)proc);
out:
        for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
                free(kept[i]);
        free(env_ids);
}

static DBusHandlerResult filter_cb(DBusConnection *c, DBusMessage *m, void *userdata) {
        Notifier *n = userdata;

        if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_SIGNAL)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        if (dbus_message_is_signal(m, MAIL_IFACE, "NewMail"))
                on_new_mail(n, m);
        else if (dbus_message_is_signal(m, MAIL_IFACE, "QuotaWarning"))
                on_quota(n, m);
        else if (dbus_message_is_signal(m, MAIL_IFACE, "AccountError"))
                on_account_error(n, m);
        else if (dbus_message_is_signal(m, NOTIF_IFACE, "NotificationClosed"))
                on_closed(n, m);
        else if (dbus_message_is_signal(m, NOTIF_IFACE, "ActionInvoked"))
                on_action(n, m);
        else if (dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged")) {
                const char *name, *old_owner, *new_owner;

                /* A new notification server may render differently: ask again. */
                if (dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &old_owner,
                                          DBUS_TYPE_STRING, &new_owner, DBUS_TYPE_INVALID) &&
                    strcmp(name, NOTIF_NAME) == 0)
                        n->caps_known = n->cap_markup = n->cap_actions = n->cap_body = false;
        } else if (dbus_message_is_signal(m, DBUS_INTERFACE_LOCAL, "Disconnected")) {
                log_error("the session bus went away");
                uv_stop(n->loop);
        }
        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
}

static void on_signal_cb(uv_signal_t *h, int signum) {
        uv_stop(h->loop);
}

static void usage(FILE *f) {
        fprintf(f, "Usage: tegami-notify [--config FILE] [--log-level LEVEL]\n"
                   "Shows desktop notifications for tegamid's new mail, quota warnings and account errors.\n");
}

int main(int argc, char **argv) {
        enum { OPT_EXIT_AFTER = 0x100 };
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "log-level", required_argument, NULL, 'l' },
                { "exit-after", required_argument, NULL, OPT_EXIT_AFTER }, /* tests: stop after N notifications */
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const char *const matches[] = {
                "type='signal',sender='" MAIL_NAME "',interface='" MAIL_IFACE "',path='" MAIL_PATH "'",
                "type='signal',interface='" NOTIF_IFACE "',path='" NOTIF_PATH "'",
                "type='signal',sender='" DBUS_SERVICE_DBUS "',member='NameOwnerChanged',arg0='" NOTIF_NAME "'",
        };
        Notifier n = {};
        DBusError e = DBUS_ERROR_INIT;
        uv_loop_t loop;
        int c, r;

        log_setup(argv[0]);
        while ((c = getopt_long(argc, argv, "c:l:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        free(n.config_path);
                        n.config_path = strdup(optarg);
                        break;
                case 'l':
                        if (log_level_from_string(optarg) < 0) {
                                log_error("unknown log level \"%s\"", optarg);
                                return 2;
                        }
                        log_set_max_level(log_level_from_string(optarg));
                        break;
                case OPT_EXIT_AFTER:
                        n.exit_after = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (sodium_init() < 0) { /* the config loader keeps passwords in sodium memory */
                log_error("libsodium failed to initialise");
                return 1;
        }
        if (!n.config_path && !(n.config_path = config_default_path())) {
                log_error("no configuration file: pass --config or set HOME");
                return 2;
        }
        load_config(&n);

        n.conn = dbus_bus_get_private(DBUS_BUS_SESSION, &e);
        if (!n.conn) {
                log_error("cannot connect to the session bus: %s", e.message);
                dbus_error_free(&e);
                config_free(n.config);
                return 1;
        }
        for (size_t i = 0; i < ARRAY_SIZE(matches); i++)
                dbus_bus_add_match(n.conn, matches[i], NULL);
        if (!dbus_connection_add_filter(n.conn, filter_cb, &n, NULL)) {
                log_error("out of memory");
                return 1;
        }
        uv_loop_init(&loop);
        loop.data = &n;
        n.loop = &loop;
        r = bus_uv_new(&loop, n.conn, &n.bus);
        if (r < 0) {
                log_error("session bus: %s", strerror(-r));
                return 1;
        }
        uv_signal_init(&loop, &n.sig_term);
        uv_signal_start(&n.sig_term, on_signal_cb, SIGTERM);
        uv_signal_init(&loop, &n.sig_int);
        uv_signal_start(&n.sig_int, on_signal_cb, SIGINT);
        signal(SIGPIPE, SIG_IGN);
        log_info("watching for new mail (config %s)", n.config_path);

        uv_run(&loop, UV_RUN_DEFAULT);

        /* Mail waiting in a burst is shown before leaving. */
        for (Burst *b = n.bursts; b; b = b->next)
                if (b->timer_armed && !(n.exit_after && n.n_notified >= n.exit_after))
                        burst_show(&n, b);
        for (Burst *b = n.bursts, *next; b; b = next) {
                next = b->next;
                uv_close((uv_handle_t *)&b->timer, NULL);
        }
        uv_close((uv_handle_t *)&n.sig_term, NULL);
        uv_close((uv_handle_t *)&n.sig_int, NULL);
        dbus_connection_close(n.conn);
        bus_uv_close(n.bus, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        dbus_connection_unref(n.conn);
        for (Burst *b = n.bursts, *next; b; b = next) {
                next = b->next;
                free(b->account);
                free(b->ids);
                free(b->shown_ids);
                free(b->last_error);
                free(b);
        }
        config_free(n.config);
        free(n.config_path);
        return 0;
}
