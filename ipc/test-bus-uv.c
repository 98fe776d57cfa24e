/*
 * Tests for ipc/bus-uv.c against a real bus: the test starts its own
 * `dbus-daemon --session --nofork --print-address`, attaches two private
 * connections to one libuv loop and drives everything with uv_run() alone.
 * Checks that method calls are dispatched and answered both ways, that a
 * batch of calls larger than one dispatch batch completes, that libdbus'
 * timeouts fire (a call that is never answered ends in NoReply), and that
 * closing leaves no handle behind (uv_loop_close() succeeds).
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc/bus-uv.h"
#include "util/macro.h"

#define N_CALLS 300

static pid_t bus_pid = -1;

/* Starts a private session bus and returns its address (malloc'd). */
static char *bus_start(void) {
        int fds[2];
        char buf[1024];
        ssize_t n;
        size_t len = 0;

        if (pipe(fds) < 0)
                return NULL;
        bus_pid = fork();
        if (bus_pid < 0)
                return NULL;
        if (bus_pid == 0) {
                char fdarg[32];

                close(fds[0]);
                snprintf(fdarg, sizeof fdarg, "--print-address=%d", fds[1]);
                execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", fdarg, (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        while (len < sizeof buf - 1 && (n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0) {
                len += (size_t)n;
                if (memchr(buf, '\n', len))
                        break;
        }
        close(fds[0]);
        buf[len] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return len > 0 ? strdup(buf) : NULL;
}

static void bus_stop(void) {
        if (bus_pid > 0) {
                kill(bus_pid, SIGTERM);
                waitpid(bus_pid, NULL, 0);
        }
}

typedef struct Test {
        DBusConnection *server, *client;
        BusUv *server_bus, *client_bus;
        unsigned n_replies, n_noreply, n_closed;
        bool done;
} Test;

static DBusHandlerResult server_message_cb(DBusConnection *c, DBusMessage *m, void *userdata) {
        DBusMessage *reply;
        const char *s;

        if (dbus_message_is_method_call(m, "org.tegami.Test", "Ignore"))
                return DBUS_HANDLER_RESULT_HANDLED; /* never answered: the caller times out */
        if (!dbus_message_is_method_call(m, "org.tegami.Test", "Echo"))
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &s, DBUS_TYPE_INVALID))
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        reply = dbus_message_new_method_return(m);
        assert(reply);
        assert(dbus_message_append_args(reply, DBUS_TYPE_STRING, &s, DBUS_TYPE_INVALID));
        assert(dbus_connection_send(c, reply, NULL));
        dbus_message_unref(reply);
        return DBUS_HANDLER_RESULT_HANDLED;
}

static void closed_cb(BusUv *b, void *userdata) {
        Test *t = userdata;

        t->n_closed++;
}

static void test_finish(Test *t) {
        if (t->done)
                return;
        t->done = true;
        dbus_connection_close(t->server);
        dbus_connection_close(t->client);
        bus_uv_close(t->server_bus, closed_cb, t);
        bus_uv_close(t->client_bus, closed_cb, t);
}

static void check_finished(Test *t) {
        if (t->n_replies == N_CALLS && t->n_noreply == 1)
                test_finish(t);
}

static void echo_reply_cb(DBusPendingCall *pc, void *userdata) {
        Test *t = userdata;
        DBusMessage *reply = dbus_pending_call_steal_reply(pc);
        const char *s = NULL;

        assert(reply);
        assert(dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_METHOD_RETURN);
        assert(dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &s, DBUS_TYPE_INVALID));
        assert(strcmp(s, "hello") == 0);
        dbus_message_unref(reply);
        t->n_replies++;
        check_finished(t);
}

static void ignore_reply_cb(DBusPendingCall *pc, void *userdata) {
        Test *t = userdata;
        DBusMessage *reply = dbus_pending_call_steal_reply(pc);

        assert(reply);
        assert(dbus_message_is_error(reply, DBUS_ERROR_NO_REPLY));
        dbus_message_unref(reply);
        t->n_noreply++;
        check_finished(t);
}

static void call(Test *t, const char *method, int timeout_ms, DBusPendingCallNotifyFunction cb) {
        const char *hello = "hello";
        DBusPendingCall *pc = NULL;
        DBusMessage *m;

        m = dbus_message_new_method_call("org.tegami.Test", "/test", "org.tegami.Test", method);
        assert(m);
        assert(dbus_message_append_args(m, DBUS_TYPE_STRING, &hello, DBUS_TYPE_INVALID));
        assert(dbus_connection_send_with_reply(t->client, m, &pc, timeout_ms));
        assert(pc);
        assert(dbus_pending_call_set_notify(pc, cb, t, NULL));
        dbus_pending_call_unref(pc);
        dbus_message_unref(m);
}

static DBusConnection *connect_bus(const char *address) {
        DBusConnection *c;
        DBusError e;

        dbus_error_init(&e);
        c = dbus_connection_open_private(address, &e);
        if (!c || !dbus_bus_register(c, &e)) {
                fprintf(stderr, "connect %s: %s\n", address, e.message);
                exit(EXIT_FAILURE);
        }
        return c;
}

static void test_round_trips(const char *address) {
        static const DBusObjectPathVTable vtable = { .message_function = server_message_cb };
        Test t = { 0 };
        uv_loop_t loop;
        DBusError e;

        assert(uv_loop_init(&loop) == 0);
        t.server = connect_bus(address);
        t.client = connect_bus(address);
        dbus_error_init(&e);
        assert(dbus_bus_request_name(t.server, "org.tegami.Test", DBUS_NAME_FLAG_DO_NOT_QUEUE, &e) ==
               DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER);
        assert(dbus_connection_register_object_path(t.server, "/test", &vtable, &t));
        assert(bus_uv_new(&loop, t.server, &t.server_bus) == 0);
        assert(bus_uv_new(&loop, t.client, &t.client_bus) == 0);
        assert(bus_uv_get_connection(t.client_bus) == t.client);

        /* More calls than one dispatch batch, and one that only a timeout ends. */
        for (unsigned i = 0; i < N_CALLS; i++)
                call(&t, "Echo", DBUS_TIMEOUT_USE_DEFAULT, echo_reply_cb);
        call(&t, "Ignore", 200, ignore_reply_cb);

        assert(uv_run(&loop, UV_RUN_DEFAULT) == 0);
        assert(t.done);
        assert(t.n_replies == N_CALLS && t.n_noreply == 1);
        assert(t.n_closed == 2);
        assert(uv_loop_close(&loop) == 0);
        dbus_connection_unref(t.server);
        dbus_connection_unref(t.client);
        printf("ok round trips: %u replies, 1 timeout\n", t.n_replies);
}

/* A BusUv closed before the loop ever ran still closes every handle. */
static void test_close_unused(const char *address) {
        DBusConnection *c = connect_bus(address);
        uv_loop_t loop;
        BusUv *b;

        assert(uv_loop_init(&loop) == 0);
        assert(bus_uv_new(&loop, c, &b) == 0);
        dbus_connection_close(c);
        bus_uv_close(b, NULL, NULL);
        bus_uv_close(b, NULL, NULL); /* safe twice */
        assert(uv_run(&loop, UV_RUN_DEFAULT) == 0);
        assert(uv_loop_close(&loop) == 0);
        dbus_connection_unref(c);
        printf("ok close unused\n");
}

int main(void) {
        _cleanup_free_ char *address = NULL;

        signal(SIGPIPE, SIG_IGN);
        address = bus_start();
        if (!address) {
                fprintf(stderr, "could not start dbus-daemon\n");
                bus_stop();
                return 77;
        }
        atexit(bus_stop);
        test_round_trips(address);
        test_close_unused(address);
        dbus_shutdown();
        return 0;
}
