/*
 * The client side of org.tegami.Mail1.Send: the message is written to a
 * memfd (sealed against changes) whose descriptor travels with the call, so
 * the bus never carries the bytes and nothing touches the disk. Synchronous:
 * clients are short-lived command-line programs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clients/send.h"
#include "util/macro.h"

#define BUS_NAME "org.tegami.Mail1"
#define BUS_PATH "/org/tegami/Mail1"
#define BUS_IFACE "org.tegami.Mail1"
#define ERR_PREFIX "org.tegami.Mail1.Error."

/* Storing a large message takes a while on a slow disk: be patient. */
#define SEND_TIMEOUT_MS (5 * 60 * 1000)

static int memfd_with(const char *data, size_t n) {
        _cleanup_close_ int fd = memfd_create("tegami-message", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        size_t done = 0;

        if (fd < 0)
                return -errno;
        while (done < n) {
                ssize_t k = write(fd, data + done, n - done);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                done += (size_t)k;
        }
        /* The daemon reads what we wrote, and nobody can change it under it. */
        (void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        return TAKE_FD(fd);
}

static bool append_string_option(DBusMessageIter *dict, const char *key, const char *value) {
        DBusMessageIter entry, v;

        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
               dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &v) &&
               dbus_message_iter_append_basic(&v, DBUS_TYPE_STRING, &value) &&
               dbus_message_iter_close_container(&entry, &v) && dbus_message_iter_close_container(dict, &entry);
}

static bool append_options(DBusMessageIter *it, const SendOptions *o) {
        DBusMessageIter dict, entry, v, arr;
        const char *key;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict))
                return false;
        if (o->from && !append_string_option(&dict, "from", o->from))
                return false;
        if (o->from_name && !append_string_option(&dict, "from_name", o->from_name))
                return false;
        if (o->extract_rcpts) {
                dbus_bool_t t = TRUE;

                key = "extract_recipients";
                if (!dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) ||
                    !dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) ||
                    !dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "b", &v) ||
                    !dbus_message_iter_append_basic(&v, DBUS_TYPE_BOOLEAN, &t) ||
                    !dbus_message_iter_close_container(&entry, &v) || !dbus_message_iter_close_container(&dict, &entry))
                        return false;
        }
        if (o->n_rcpts > 0) {
                key = "recipients";
                if (!dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) ||
                    !dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) ||
                    !dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "as", &v) ||
                    !dbus_message_iter_open_container(&v, DBUS_TYPE_ARRAY, "s", &arr))
                        return false;
                for (size_t i = 0; i < o->n_rcpts; i++)
                        if (!dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &o->rcpts[i]))
                                return false;
                if (!dbus_message_iter_close_container(&v, &arr) || !dbus_message_iter_close_container(&entry, &v) ||
                    !dbus_message_iter_close_container(&dict, &entry))
                        return false;
        }
        return dbus_message_iter_close_container(it, &dict);
}

static SendError classify(const char *name) {
        static const struct {
                const char *name;
                SendError e;
        } map[] = {
                { ERR_PREFIX "InvalidArgs", SEND_E_REFUSED },   { ERR_PREFIX "NotFound", SEND_E_NO_ACCOUNT },
                { ERR_PREFIX "Locked", SEND_E_TEMPORARY },      { ERR_PREFIX "Busy", SEND_E_TEMPORARY },
                { DBUS_ERROR_SERVICE_UNKNOWN, SEND_E_UNAVAILABLE }, { DBUS_ERROR_NAME_HAS_NO_OWNER, SEND_E_UNAVAILABLE },
                { DBUS_ERROR_NO_REPLY, SEND_E_TEMPORARY },      { DBUS_ERROR_DISCONNECTED, SEND_E_UNAVAILABLE },
                { DBUS_ERROR_TIMEOUT, SEND_E_TEMPORARY },
        };

        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (strcmp(name, map[i].name) == 0)
                        return map[i].e;
        if (strncmp(name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0)
                return SEND_E_UNAVAILABLE;
        return SEND_E_FAILED;
}

SendError send_message(DBusConnection *conn, const char *data, size_t n, const SendOptions *o, uint64_t *idp,
                       char **errp) {
        DBusMessage *m = NULL, *reply = NULL;
        const char *account = o->account ? o->account : "";
        DBusMessageIter it;
        DBusError e;
        dbus_uint64_t id = 0;
        SendError ret = SEND_E_FAILED;
        int fd;

        *errp = NULL;
        fd = memfd_with(data, n);
        if (fd < 0) {
                if (asprintf(errp, "cannot hold the message in memory: %s", strerror(-fd)) < 0)
                        *errp = NULL;
                return SEND_E_FAILED;
        }
        m = dbus_message_new_method_call(BUS_NAME, BUS_PATH, BUS_IFACE, "Send");
        if (!m)
                goto oom;
        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &account) ||
            !dbus_message_iter_append_basic(&it, DBUS_TYPE_UNIX_FD, &fd) || !append_options(&it, o))
                goto oom;
        close(fd); /* the message holds its own duplicate */
        fd = -1;
        dbus_error_init(&e);
        reply = dbus_connection_send_with_reply_and_block(conn, m, SEND_TIMEOUT_MS, &e);
        dbus_message_unref(m);
        if (!reply) {
                ret = classify(e.name);
                if (asprintf(errp, "%s", e.message ? e.message : e.name) < 0)
                        *errp = NULL;
                dbus_error_free(&e);
                return ret;
        }
        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_UINT64, &id, DBUS_TYPE_INVALID)) {
                dbus_message_unref(reply);
                if (asprintf(errp, "tegamid answered Send with an unexpected reply") < 0)
                        *errp = NULL;
                return SEND_E_FAILED;
        }
        dbus_message_unref(reply);
        *idp = id;
        return SEND_OK;
oom:
        if (fd >= 0)
                close(fd);
        if (m)
                dbus_message_unref(m);
        if (asprintf(errp, "out of memory") < 0)
                *errp = NULL;
        return SEND_E_FAILED;
}
