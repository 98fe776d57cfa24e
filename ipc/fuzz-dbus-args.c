/*
 * libFuzzer target for D-Bus argument validation: method calls go through
 * ipc_server_call(), the dispatch tegamid runs for every incoming call (object
 * lookup from the path, method lookup, exact signature check, then the
 * method's own validation of the values), against a real Daemon loaded from a
 * config of two accounts ("work" on IMAP, "shop" on POP3) whose store is not
 * open: every method validates its arguments, then the service API answers at
 * once, so no store, network or bus is touched and each input is one call.
 *
 * Input: byte 0 picks the mode. Bit 3 set: the rest is a whole marshalled
 * message (dbus_message_demarshal), as a client could send it. Otherwise the
 * call is built: bits 0-2 pick the object path, bit 4 drops the interface,
 * byte 1 picks the method (ipc_methods[]), byte 2 another method whose
 * signature the arguments follow instead when it is not 0 (mismatches must be
 * refused), and the rest feeds the argument values in signature order
 * (strings: a length byte, 255 for a 16-bit length, then the bytes; arrays: a
 * count; variants: a type byte; fds: a memfd holding a string's bytes).
 *
 * Checks: every call gets a reply (never deferred: the store is closed); it is
 * a method return or an error answering the call's serial, with a known error
 * name; a signature that is not the method's is an error; the reply marshals
 * and demarshals again. Anything else aborts.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "ipc/path.h"
#include "ipc/props.h"
#include "ipc/server-private.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_text[] = "[account work]\n"
                                  "address = work@example.org\n"
                                  "imap = imap://127.0.0.1:9\n"
                                  "tls = none\n"
                                  "smtp = smtp://127.0.0.1:9\n"
                                  "[account shop]\n"
                                  "address = shop@example.org\n"
                                  "pop3 = pop3s://pop.example.org\n";

static Daemon daemon_;
static IpcServer server;
static uv_loop_t loop;

/* The daemon as tegamid has it between daemon_init() and an open store. */
static void setup(void) {
        char dir[] = "/tmp/tegami-fuzz-dbus-XXXXXX", *path, *err = NULL;
        DBusError e = DBUS_ERROR_INIT;
        static DBusServer *bus_server; /* listens for the whole run */
        char *address;
        Config *c = NULL;
        FILE *f;

        if (sodium_init() < 0 || uv_loop_init(&loop) < 0 || !mkdtemp(dir) || asprintf(&path, "%s/config.ini", dir) < 0)
                abort();
        log_set_max_level(LOG_EMERG); /* Reload logs each time */
        f = fopen(path, "w");
        if (!f || fputs(config_text, f) < 0 || fclose(f) != 0)
                abort();
        if (config_load(path, &c, &err) != 0) {
                fprintf(stderr, "fuzz-dbus-args: %s\n", err ? err : "config");
                abort();
        }
        if (daemon_init(&daemon_, &loop, c, path, dir) != 0)
                abort();
        free(path);
        /* Pending replies reference a connection: one to a private listener
         * that nothing ever reads (no reply is sent on it). */
        bus_server = dbus_server_listen("unix:tmpdir=/tmp", &e);
        if (!bus_server)
                abort();
        address = dbus_server_get_address(bus_server);
        server.daemon = &daemon_;
        server.conn = address ? dbus_connection_open_private(address, &e) : NULL;
        if (!server.conn)
                abort();
        dbus_free(address);
        server.exported = true;
}

/* ---- reading values from the input ---- */

typedef struct Cursor {
        const uint8_t *p;
        size_t n;
        int fds[4];
        size_t n_fds;
} Cursor;

static uint8_t take8(Cursor *c) {
        if (!c->n)
                return 0;
        c->n--;
        return *c->p++;
}

static uint64_t take(Cursor *c, unsigned bytes) {
        uint64_t v = 0;

        for (unsigned i = 0; i < bytes; i++)
                v |= (uint64_t)take8(c) << (8 * i);
        return v;
}

/* A string of valid UTF-8 without NUL (malloc'd): what libdbus accepts. */
static char *take_string(Cursor *c) {
        size_t len = take8(c);
        char *s;

        if (len == 255)
                len = (size_t)take(c, 2);
        if (len > c->n)
                len = c->n;
        s = malloc(len + 1);
        if (!s)
                abort();
        memcpy(s, c->p, len);
        s[len] = '\0';
        c->p += len;
        c->n -= len;
        for (size_t i = 0; i < len; i++)
                if (!s[i])
                        s[i] = '?';
        if (!dbus_validate_utf8(s, NULL))
                for (size_t i = 0; i < len; i++)
                        if ((unsigned char)s[i] >= 0x80 || !s[i])
                                s[i] = '?';
        return s;
}

static bool append_value(DBusMessageIter *it, DBusSignatureIter *sig, Cursor *c, unsigned depth);

static bool append_basic(DBusMessageIter *it, int type, Cursor *c) {
        union {
                uint8_t y;
                dbus_bool_t b;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
                double d;
                int h;
                const char *s;
        } v;
        char *str = NULL;
        bool ok;

        switch (type) {
        case DBUS_TYPE_BYTE:
                v.y = take8(c);
                break;
        case DBUS_TYPE_BOOLEAN:
                v.b = take8(c) & 1;
                break;
        case DBUS_TYPE_INT16:
        case DBUS_TYPE_UINT16:
                v.q = (uint16_t)take(c, 2);
                break;
        case DBUS_TYPE_INT32:
        case DBUS_TYPE_UINT32:
                v.u = (uint32_t)take(c, 4);
                break;
        case DBUS_TYPE_INT64:
        case DBUS_TYPE_UINT64:
                v.t = take(c, 8);
                break;
        case DBUS_TYPE_DOUBLE:
                v.d = (double)(int64_t)take(c, 8) / 16;
                break;
        case DBUS_TYPE_STRING:
                v.s = str = take_string(c);
                break;
        case DBUS_TYPE_OBJECT_PATH:
                str = take_string(c);
                v.s = dbus_validate_path(str, NULL) ? str : "/";
                break;
        case DBUS_TYPE_SIGNATURE:
                str = take_string(c);
                v.s = dbus_signature_validate(str, NULL) ? str : "s";
                break;
        case DBUS_TYPE_UNIX_FD: {
                char *bytes = take_string(c);
                int fd = memfd_create("fuzz", MFD_CLOEXEC);
                size_t len = strlen(bytes);

                if (fd < 0 || (len && write(fd, bytes, len) != (ssize_t)len) || lseek(fd, 0, SEEK_SET) < 0)
                        abort();
                free(bytes);
                if (c->n_fds == sizeof c->fds / sizeof c->fds[0])
                        abort(); /* no signature here has that many */
                c->fds[c->n_fds++] = fd;
                v.h = fd;
                break;
        }
        default:
                abort();
        }
        ok = dbus_message_iter_append_basic(it, type, &v);
        free(str);
        return ok;
}

/* Appends an array of the element type at sig (positioned inside the array). */
static bool append_array(DBusMessageIter *it, DBusSignatureIter *elem, Cursor *c, unsigned depth) {
        char *esig = dbus_signature_iter_get_signature(elem);
        int etype = dbus_signature_iter_get_current_type(elem);
        DBusMessageIter a;
        size_t count;
        bool ok;

        if (!esig || !dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, esig, &a))
                abort();
        dbus_free(esig);
        /* Fixed arrays ("ay", "at") may be long: the 1 MiB and 10000-id limits. */
        if (etype == DBUS_TYPE_BYTE || etype == DBUS_TYPE_UINT64) {
                uint8_t k = take8(c);
                count = k == 255 ? (size_t)take(c, 2) : k == 254 ? 10000 + (size_t)(take8(c) % 3) : k;
                if (etype == DBUS_TYPE_BYTE && k == 253)
                        count = (1u << 20) + (size_t)(take8(c) % 2);
        } else
                count = take8(c) % 80;
        ok = true;
        for (size_t i = 0; i < count && ok; i++) {
                DBusSignatureIter e = *elem;

                if (etype == DBUS_TYPE_UINT64 && !c->n) {
                        dbus_uint64_t id = i + 1; /* input used up: distinct valid ids */
                        ok = dbus_message_iter_append_basic(&a, DBUS_TYPE_UINT64, &id);
                } else
                        ok = append_value(&a, &e, c, depth + 1);
        }
        if (!ok) {
                dbus_message_iter_abandon_container(it, &a);
                return false;
        }
        return dbus_message_iter_close_container(it, &a);
}

static bool append_value(DBusMessageIter *it, DBusSignatureIter *sig, Cursor *c, unsigned depth) {
        static const char *const variants[] = { "s", "u", "t", "b", "as", "x", "i", "y", "ay", "d", "a{sv}", "o" };
        int type = dbus_signature_iter_get_current_type(sig);
        DBusSignatureIter sub;
        DBusMessageIter in;

        if (depth > 8)
                return false;
        switch (type) {
        case DBUS_TYPE_ARRAY:
                dbus_signature_iter_recurse(sig, &sub);
                return append_array(it, &sub, c, depth);
        case DBUS_TYPE_DICT_ENTRY:
        case DBUS_TYPE_STRUCT:
                if (!dbus_message_iter_open_container(it, type, NULL, &in))
                        abort();
                dbus_signature_iter_recurse(sig, &sub);
                do {
                        if (!append_value(&in, &sub, c, depth + 1)) {
                                dbus_message_iter_abandon_container(it, &in);
                                return false;
                        }
                } while (dbus_signature_iter_next(&sub));
                return dbus_message_iter_close_container(it, &in);
        case DBUS_TYPE_VARIANT: {
                const char *vs = variants[take8(c) % (sizeof variants / sizeof variants[0])];

                if (!dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, vs, &in))
                        abort();
                dbus_signature_iter_init(&sub, vs);
                if (!append_value(&in, &sub, c, depth + 1)) {
                        dbus_message_iter_abandon_container(it, &in);
                        return false;
                }
                return dbus_message_iter_close_container(it, &in);
        }
        default:
                return append_basic(it, type, c);
        }
}

/* ---- the call ---- */

static const char *pick_path(unsigned k, Cursor *c, char **ownedp) {
        switch (k) {
        case 0:
                return IPC_PATH_MANAGER;
        case 1:
                return *ownedp = ipc_path_from_account("work");
        case 2:
                return *ownedp = ipc_path_from_account("shop");
        case 3:
                return IPC_PATH_ACCOUNTS;
        case 4:
                return "/";
        case 5:
                return "/org/tegami";
        case 6: { /* an account path from the input: escaped, so always valid */
                char *name = take_string(c);

                *ownedp = *name ? ipc_path_from_account(name) : strdup(IPC_PATH_ACCOUNTS "/nobody");
                free(name);
                return *ownedp;
        }
        default: {
                char *p = take_string(c);

                if (dbus_validate_path(p, NULL))
                        return *ownedp = p;
                free(p);
                return "/org/tegami/Mail1/other";
        }
        }
}

static DBusMessage *build_call(const uint8_t *data, size_t size, Cursor *c, const IpcMethod **methodp,
                               const char **sigp) {
        const IpcMethod *mt = &ipc_methods[data[1] % ipc_n_methods];
        const char *sig = data[2] ? ipc_methods[data[2] % ipc_n_methods].signature : mt->signature;
        _cleanup_free_ char *path_owned = NULL;
        const char *path;
        DBusMessage *m;
        DBusMessageIter it;
        DBusSignatureIter si;

        path = pick_path(data[0] & 7, c, &path_owned);
        if (!path)
                abort();
        m = dbus_message_new_method_call(NULL, path, data[0] & 0x10 ? NULL : mt->interface, mt->member);
        if (!m)
                abort();
        dbus_message_iter_init_append(m, &it);
        if (*sig) {
                dbus_signature_iter_init(&si, sig);
                do {
                        if (!append_value(&it, &si, c, 0)) {
                                dbus_message_unref(m);
                                return NULL;
                        }
                } while (dbus_signature_iter_next(&si));
        }
        *methodp = mt;
        *sigp = sig;
        return m;
}

static bool known_error(const char *name) {
        return strncmp(name, "org.tegami.Mail1.Error.", 23) == 0 ||
               strncmp(name, "org.freedesktop.DBus.Error.", 27) == 0;
}

static void check_reply(DBusMessage *m, DBusMessage *reply) {
        DBusMessage *again;
        DBusError e = DBUS_ERROR_INIT;
        char *wire = NULL;
        int len = 0;

        if (!reply || reply == IPC_REPLY_DEFERRED)
                abort();
        if (dbus_message_get_reply_serial(reply) != dbus_message_get_serial(m))
                abort();
        switch (dbus_message_get_type(reply)) {
        case DBUS_MESSAGE_TYPE_METHOD_RETURN:
                break;
        case DBUS_MESSAGE_TYPE_ERROR:
                if (!known_error(dbus_message_get_error_name(reply)))
                        abort();
                break;
        default:
                abort();
        }
        dbus_message_set_serial(reply, 2);
        if (!dbus_message_marshal(reply, &wire, &len))
                abort();
        again = dbus_message_demarshal(wire, len, &e);
        if (!again)
                abort();
        dbus_message_unref(again);
        dbus_free(wire);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool init, verbose;
        DBusMessage *m = NULL, *reply;
        const char *text = NULL;
        const IpcMethod *mt = NULL;
        const char *sig = NULL;
        Cursor c = {};

        if (!init) {
                setup();
                verbose = getenv("FUZZ_DBUS_VERBOSE") != NULL;
                init = true;
        }
        if (size < 3)
                return 0;
        if (data[0] & 8) {
                DBusError e = DBUS_ERROR_INIT;

                m = dbus_message_demarshal((const char *)data + 1, (int)(size - 1), &e);
                dbus_error_free(&e);
                if (!m)
                        return 0;
                if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL) {
                        dbus_message_unref(m);
                        return 0;
                }
        } else {
                c.p = data + 3;
                c.n = size - 3;
                m = build_call(data, size, &c, &mt, &sig);
                for (size_t i = 0; i < c.n_fds; i++)
                        close(c.fds[i]); /* the message holds its own duplicates */
                if (!m)
                        return 0;
                dbus_message_set_serial(m, 1);
        }
        reply = ipc_server_call(&server, m);
        check_reply(m, reply);
        if (verbose) /* FUZZ_DBUS_VERBOSE=1: what each input got, for writing seeds */
                fprintf(stderr, "%s %s(%s): %s %s\n", dbus_message_get_path(m), dbus_message_get_member(m),
                        dbus_message_get_signature(m), dbus_message_get_error_name(reply) ?: "return",
                        dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_ERROR && dbus_message_get_args(reply, NULL,
                                DBUS_TYPE_STRING, &text, DBUS_TYPE_INVALID) ? text : "");
        /* A call built for method mt with another signature must be refused. */
        if (mt && strcmp(sig, mt->signature) != 0 && dbus_message_get_type(reply) != DBUS_MESSAGE_TYPE_ERROR)
                abort();
        dbus_message_unref(reply);
        dbus_message_unref(m);
        return 0;
}
