/*
 * The POP3 session state machine. One Pop3Client owns its NetStream (embedded;
 * the stream's handles close asynchronously), its command queue (cmdq.c, with
 * the parser), the credential request and the SASL client. Memory is freed in
 * one place, client_maybe_free(), once the stream has closed and no credential
 * request is outstanding. Loop thread only.
 *
 * The states up to TRANSACTION are driven here: each has an entry action run
 * by enter_state(), and the reply to the command it sent comes back to
 * on_reply(), a switch on the state. From TRANSACTION on the owner sends
 * commands (pop3_client_send) and gets their replies itself.
 *
 * Security: a pop3:// URL means STLS is required; when the server does not
 * offer it the session ends as a downgrade (net_stream_refuse_downgrade). USER/
 * PASS and SASL mechanisms that reveal the secret only go over TLS (or the
 * loopback `tls = none`). Capabilities seen before TLS are forgotten after it.
 */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/net/cred.h"
#include "daemon/net/sasl.h"
#include "daemon/net/stream.h"
#include "daemon/pop3/client.h"
#include "util/log.h"
#include "util/secret.h"

/* Longest message line accepted (RFC 5322 says 998, real mail can be worse; the body streams anyway). */
#define POP3_CLIENT_MAX_LINE (8 * 1024 * 1024)

typedef enum Pop3ClientState {
        POP3_CLIENT_NEW,
        POP3_CLIENT_CREDENTIALS,
        POP3_CLIENT_CONNECTING,
        POP3_CLIENT_GREETING,
        POP3_CLIENT_CAPA,
        POP3_CLIENT_STLS,
        POP3_CLIENT_HANDSHAKE,
        POP3_CLIENT_AUTH,
        POP3_CLIENT_USER,
        POP3_CLIENT_PASS,
        POP3_CLIENT_CAPA_LOGGED_IN,
        POP3_CLIENT_TRANSACTION,
        POP3_CLIENT_FAILED,
        POP3_CLIENT_CLOSING,
        _POP3_CLIENT_STATE_MAX,
} Pop3ClientState;

static const char *const state_names[_POP3_CLIENT_STATE_MAX] = {
        [POP3_CLIENT_NEW] = "new",
        [POP3_CLIENT_CREDENTIALS] = "credentials",
        [POP3_CLIENT_CONNECTING] = "connecting",
        [POP3_CLIENT_GREETING] = "greeting",
        [POP3_CLIENT_CAPA] = "capa",
        [POP3_CLIENT_STLS] = "stls",
        [POP3_CLIENT_HANDSHAKE] = "tls-handshake",
        [POP3_CLIENT_AUTH] = "auth",
        [POP3_CLIENT_USER] = "user",
        [POP3_CLIENT_PASS] = "pass",
        [POP3_CLIENT_CAPA_LOGGED_IN] = "capa-logged-in",
        [POP3_CLIENT_TRANSACTION] = "transaction",
        [POP3_CLIENT_FAILED] = "failed",
        [POP3_CLIENT_CLOSING] = "closing",
};

struct Pop3Client {
        uv_loop_t *loop;
        const Account *acct;
        const Pop3ClientOps *ops;
        void *userdata;
        Pop3ClientState state;
        NetStream stream;
        bool stream_open; /* net_stream_init succeeded; closed_cb still to come */
        Pop3Cmdq q;
        CredRequest *cred_req;
        Cred *cred;
        SaslClient *sasl;
        bool sasl_bad; /* the server's SASL message failed verification: we sent "*" */
        bool ready_reported;
        bool capa_ok; /* the server answered CAPA */
        Pop3Caps caps;
        char auth_name[32];
        uint64_t connect_ms, read_ms;
        NetFailure failure;
        char error[1024];
};

static void enter_state(Pop3Client *c, Pop3ClientState state);

/* The one place the client is freed: after the stream's last close callback and the credential request. */
static void client_maybe_free(Pop3Client *c) {
        if (c->stream_open || c->cred_req)
                return;
        if (c->ops->closed)
                c->ops->closed(c, c->userdata);
        c->sasl = sasl_client_free(c->sasl);
        c->cred = cred_free(c->cred);
        free(c);
}

/* The session is over: record why, complete every command, tell the owner once. */
static void session_failed(Pop3Client *c, int r) {
        const char *why = net_stream_error(&c->stream);

        if (c->state == POP3_CLIENT_FAILED || c->state == POP3_CLIENT_CLOSING)
                return;
        if (!c->error[0])
                snprintf(c->error, sizeof c->error, "account %s: %s", c->acct->name, why[0] ? why : "session failed");
        if (c->failure == NET_FAILURE_NONE)
                c->failure = net_stream_failure(&c->stream) ?: NET_FAILURE_NETWORK;
        log_acct_debug(c->acct->name, "pop3: %s -> failed", state_names[c->state]);
        c->state = POP3_CLIENT_FAILED;
        pop3_cmdq_cancel(&c->q, r < 0 ? r : UV_EPROTO);
        if (!c->ready_reported) {
                c->ready_reported = true;
                c->ops->ready(c, r < 0 ? r : UV_EPROTO, c->userdata);
        } else if (c->ops->failed)
                c->ops->failed(c, r < 0 ? r : UV_EPROTO, c->userdata);
}

_printf_(3, 0) static void client_failv(Pop3Client *c, NetFailure failure, const char *fmt, va_list ap) {
        char msg[700];
        int r;

        if (c->state == POP3_CLIENT_FAILED || c->state == POP3_CLIENT_CLOSING)
                return;
        vsnprintf(msg, sizeof msg, fmt, ap);
        r = net_stream_fail(&c->stream, failure, "%s", msg);
        c->failure = failure;
        session_failed(c, r);
}

void pop3_client_fail(Pop3Client *c, NetFailure failure, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        client_failv(c, failure, fmt, ap);
        va_end(ap);
}

/* The queue's transport: every command sent arms the read timeout until its reply. */
static int write_cb(const char *data, size_t n, void *userdata) {
        Pop3Client *c = userdata;

        net_stream_set_waiting(&c->stream, true);
        return net_stream_write(&c->stream, data, n);
}

static void on_reply(Pop3Client *c, int r, const Pop3Status *st);

/* Replies to the client's own commands (greeting to CAPA after login) go to on_reply(). */
static void internal_done_cb(int r, const Pop3Status *st, void *userdata) {
        Pop3Client *c = userdata;

        if (r < 0)
                return; /* cancelled: the session is failing or closing already */
        on_reply(c, r, st);
}

/* Keeps the parsed CAPA answer; a -ERR leaves capa_ok false (a pre-RFC 2449 server). */
static void capa_event_cb(const Pop3Event *ev, void *userdata) {
        Pop3Client *c = userdata;

        if (ev->kind == POP3_EVENT_CAPA) {
                c->caps = *ev->capa;
                c->capa_ok = true;
        }
}

/* Sends one line of a SASL exchange; the stream copies it and wipes its copy once written. */
static void send_secret_line(Pop3Client *c, const char *line) {
        net_stream_set_waiting(&c->stream, true);
        if (net_stream_write(&c->stream, line, strlen(line)) < 0 || net_stream_write(&c->stream, "\r\n", 2) < 0)
                pop3_client_fail(c, NET_FAILURE_NETWORK, "cannot send the SASL response");
}

/* One "+ challenge" of AUTH: the SASL client computes the answer (RFC 5034). */
static void auth_event_cb(const Pop3Event *ev, void *userdata) {
        Pop3Client *c = userdata;
        _cleanup_secret_ char *resp = NULL;
        int r;

        if (ev->kind != POP3_EVENT_CONTINUE || c->state != POP3_CLIENT_AUTH)
                return;
        if (c->sasl_bad) {
                send_secret_line(c, "*");
                return;
        }
        r = sasl_client_step64(c->sasl, ev->line, &resp);
        if (r == SASL_E_SERVER) {
                /* Cancel the exchange; the -ERR that follows ends the session as a protocol failure. */
                c->sasl_bad = true;
                send_secret_line(c, "*");
                return;
        }
        if (r < 0)
                return pop3_client_fail(c, NET_FAILURE_NETWORK, "SASL: %s", strerror(-r));
        send_secret_line(c, resp); /* after SASL_E_REFUSED too: it ends the exchange */
}

/* Queues one of the client's own login-phase commands; a queue failure ends the session. */
static int push_internal(Pop3Client *c, const char *line, Pop3Expect expect, unsigned flags, Pop3CmdEventFn event_fn) {
        int r = pop3_cmdq_push(&c->q, line, expect, flags, event_fn, internal_done_cb, c);

        if (r < 0)
                pop3_client_fail(c, NET_FAILURE_NETWORK, "cannot queue a command: %s", strerror(-r));
        return r;
}

/* Words a refusal during login: response codes first (RFC 2449, RFC 3206). */
static void fail_login(Pop3Client *c, const char *what, const Pop3Status *st) {
        const char *text = st && st->text[0] ? st->text : "no reason given";

        switch (st ? st->code : POP3_RESP_NONE) {
        case POP3_RESP_IN_USE:
                return pop3_client_fail(c, NET_FAILURE_NETWORK,
                                        "mailbox in use by another session (IN-USE): %s; will retry later", text);
        case POP3_RESP_LOGIN_DELAY:
                return pop3_client_fail(
                        c, NET_FAILURE_NETWORK, "logged in too soon after the last login (LOGIN-DELAY%s%u s): %s",
                        c->caps.login_delay ? " " : "", c->caps.login_delay ? c->caps.login_delay_seconds : 0, text);
        case POP3_RESP_SYS_TEMP:
                return pop3_client_fail(c, NET_FAILURE_NETWORK, "temporary server problem (SYS/TEMP): %s", text);
        case POP3_RESP_SYS_PERM:
                return pop3_client_fail(c, NET_FAILURE_PROTOCOL, "permanent server problem (SYS/PERM): %s", text);
        case POP3_RESP_AUTH:
        default:
                if (c->sasl_bad)
                        return pop3_client_fail(c, NET_FAILURE_PROTOCOL,
                                                "%s failed: the server's SASL message "
                                                "did not verify (wrong server?)",
                                                what);
                return pop3_client_fail(c, NET_FAILURE_AUTH, "authentication failed (%s, user %s): %s", what,
                                        c->cred ? c->cred->username : "?", text);
        }
}

/* Chooses SASL AUTH or USER/PASS after the (post-TLS) capabilities. */
static void start_login(Pop3Client *c) {
        SaslCred sc = {.username = c->cred->username,
                       .secret = c->cred->secret,
                       .is_token = c->cred->is_token,
                       .host = c->acct->pop3.host,
                       .port = c->acct->pop3.port};
        bool secure = net_stream_is_secure(&c->stream);
        char mechs[POP3_CAPS_SASL_MAX * (POP3_CAPS_SASL_NAME_MAX + 1) + 1] = "";
        int r = SASL_E_NO_MECH;

        for (size_t i = 0; i < c->caps.n_sasl; i++) {
                strcat(mechs, i ? " " : "");
                strcat(mechs, c->caps.sasl[i]);
        }
        c->sasl = sasl_client_free(c->sasl);
        if (c->caps.n_sasl > 0)
                r = sasl_client_new(mechs, &sc, secure, NULL, &c->sasl);
        if (r == 0)
                return enter_state(c, POP3_CLIENT_AUTH);
        if (r < 0)
                return pop3_client_fail(c, NET_FAILURE_NETWORK, "SASL: %s", strerror(-r));
        if (c->cred->is_token)
                return pop3_client_fail(c, NET_FAILURE_AUTH, "no OAuth 2 SASL mechanism offered (offered: %s)",
                                        mechs[0] ? mechs : "none");
        if (!secure)
                return pop3_client_fail(c, NET_FAILURE_DOWNGRADE, "refusing to send the password without TLS");
        if (c->capa_ok && !c->caps.user && c->caps.n_sasl > 0)
                return pop3_client_fail(c, NET_FAILURE_AUTH, "no usable login method (SASL offered: %s, no USER)",
                                        mechs);
        enter_state(c, POP3_CLIENT_USER);
}

/* Capabilities are in (before login): STLS when required, then log in. */
static void after_capa(Pop3Client *c) {
        if (net_stream_needs_starttls(&c->stream)) {
                if (!c->caps.stls) {
                        int r = net_stream_refuse_downgrade(&c->stream, "STLS");

                        c->failure = NET_FAILURE_DOWNGRADE;
                        return session_failed(c, r);
                }
                return enter_state(c, POP3_CLIENT_STLS);
        }
        start_login(c);
}

/* The reply to the command the current state sent: decides the next state. */
static void on_reply(Pop3Client *c, int r, const Pop3Status *st) {
        bool ok = r == 0;

        switch (c->state) {
        case POP3_CLIENT_GREETING:
                if (!ok)
                        return fail_login(c, "greeting", st);
                return enter_state(c, POP3_CLIENT_CAPA);
        case POP3_CLIENT_CAPA:
                /* -ERR: a pre-RFC 2449 server; go on without capabilities. */
                return after_capa(c);
        case POP3_CLIENT_STLS:
                if (!ok)
                        return pop3_client_fail(c, NET_FAILURE_DOWNGRADE, "STLS refused: %s", st->text);
                if (net_stream_starttls(&c->stream) < 0)
                        return pop3_client_fail(c, NET_FAILURE_PROTOCOL, "cannot start TLS");
                return enter_state(c, POP3_CLIENT_HANDSHAKE);
        case POP3_CLIENT_AUTH:
                if (!ok)
                        return fail_login(c, sasl_client_mech_name(c->sasl), st);
                if (sasl_client_finish(c->sasl) != 0)
                        return pop3_client_fail(c, NET_FAILURE_PROTOCOL,
                                                "server claimed success without proving it knows the password");
                snprintf(c->auth_name, sizeof c->auth_name, "%s", sasl_client_mech_name(c->sasl));
                return enter_state(c, POP3_CLIENT_CAPA_LOGGED_IN);
        case POP3_CLIENT_USER:
                if (!ok)
                        return fail_login(c, "USER", st);
                return enter_state(c, POP3_CLIENT_PASS);
        case POP3_CLIENT_PASS:
                if (!ok)
                        return fail_login(c, "USER/PASS", st);
                snprintf(c->auth_name, sizeof c->auth_name, "USER");
                return enter_state(c, POP3_CLIENT_CAPA_LOGGED_IN);
        case POP3_CLIENT_CAPA_LOGGED_IN:
                return enter_state(c, POP3_CLIENT_TRANSACTION);
        default:
                return;
        }
}

/* Credentials are in (or not): only then is the server contacted, so a missing secret costs no connection. */
static void cred_cb(int status, Cred *cred, const char *error, void *userdata) {
        Pop3Client *c = userdata;

        c->cred_req = NULL;
        if (c->state == POP3_CLIENT_CLOSING) {
                cred_free(cred);
                return client_maybe_free(c);
        }
        if (status < 0) {
                snprintf(c->error, sizeof c->error, "account %s: %s:%u: credentials from %s: %s", c->acct->name,
                         c->acct->pop3.host, c->acct->pop3.port, cred_source_name(c->acct), error ? error : "failed");
                c->failure = NET_FAILURE_CREDENTIALS;
                return session_failed(c, status);
        }
        c->cred = cred;
        enter_state(c, POP3_CLIENT_CONNECTING);
}

/* Logs the transition and runs the entry action of state. */
static void enter_state(Pop3Client *c, Pop3ClientState state) {
        char line[600];
        int r;

        log_acct_debug(c->acct->name, "pop3: %s -> %s", state_names[c->state], state_names[state]);
        c->state = state;
        switch (state) {
        case POP3_CLIENT_CREDENTIALS:
                r = cred_request_start(c->loop, c->acct, 0, cred_cb, c, &c->cred_req);
                if (r < 0) {
                        snprintf(c->error, sizeof c->error, "account %s: credentials: %s", c->acct->name, strerror(-r));
                        c->failure = NET_FAILURE_CREDENTIALS;
                        session_failed(c, r);
                }
                return;
        case POP3_CLIENT_CONNECTING:
                r = net_stream_connect(&c->stream, c->acct, &c->acct->pop3);
                if (r < 0)
                        pop3_client_fail(c, NET_FAILURE_NETWORK, "cannot connect: %s", strerror(-r));
                return;
        case POP3_CLIENT_GREETING:
                (void)push_internal(c, NULL, POP3_EXPECT_GREETING, POP3_CMD_ALONE, NULL);
                net_stream_set_waiting(&c->stream, true);
                return;
        case POP3_CLIENT_CAPA:
        case POP3_CLIENT_CAPA_LOGGED_IN:
                /* Forget what an earlier CAPA said (before TLS it may have been forged). */
                c->caps = (Pop3Caps){0};
                c->capa_ok = false;
                (void)push_internal(c, "CAPA", POP3_EXPECT_CAPA, POP3_CMD_ALONE, capa_event_cb);
                return;
        case POP3_CLIENT_STLS:
                (void)push_internal(c, "STLS", POP3_EXPECT_SINGLE, POP3_CMD_ALONE, NULL);
                return;
        case POP3_CLIENT_AUTH: {
                _cleanup_secret_ char *ir = NULL;

                if (sasl_client_has_initial(c->sasl) && sasl_client_step64(c->sasl, NULL, &ir) != 0)
                        return pop3_client_fail(c, NET_FAILURE_PROTOCOL, "SASL initial response failed");
                snprintf(line, sizeof line, "AUTH %s%s%s", sasl_client_mech_name(c->sasl), ir ? " " : "",
                         ir ? (ir[0] ? ir : "=") : "");
                (void)push_internal(c, line, POP3_EXPECT_AUTH, POP3_CMD_ALONE | POP3_CMD_SECRET, auth_event_cb);
                sodium_memzero(line, sizeof line);
                return;
        }
        case POP3_CLIENT_USER:
                snprintf(line, sizeof line, "USER %s", c->cred->username);
                (void)push_internal(c, line, POP3_EXPECT_SINGLE, POP3_CMD_ALONE, NULL);
                return;
        case POP3_CLIENT_PASS:
                if ((size_t)snprintf(line, sizeof line, "PASS %s", c->cred->secret) >= sizeof line) {
                        sodium_memzero(line, sizeof line);
                        return pop3_client_fail(c, NET_FAILURE_CREDENTIALS, "password too long");
                }
                (void)push_internal(c, line, POP3_EXPECT_SINGLE, POP3_CMD_ALONE | POP3_CMD_SECRET, NULL);
                sodium_memzero(line, sizeof line);
                return;
        case POP3_CLIENT_TRANSACTION:
                c->sasl = sasl_client_free(c->sasl);
                c->cred = cred_free(c->cred); /* nothing needs the secret any more */
                if (c->caps.pipelining)
                        pop3_cmdq_set_max_flight(&c->q, POP3_CLIENT_PIPELINE_MAX);
                log_acct_info(c->acct->name, "pop3: logged in to %s with %s%s", c->stream.where, c->auth_name,
                              c->caps.pipelining ? ", pipelining" : "");
                c->ready_reported = true;
                c->ops->ready(c, 0, c->userdata);
                return;
        default:
                return;
        }
}

/* TCP (and for pop3s the TLS handshake) is up: the greeting comes next. */
static void stream_connected_cb(NetStream *s, int status, void *userdata) {
        Pop3Client *c = userdata;

        if (status < 0)
                return session_failed(c, status);
        enter_state(c, POP3_CLIENT_GREETING);
}

/* STLS done: ask CAPA again, since what the server said in clear may have been forged. */
static void stream_tls_ready_cb(NetStream *s, int status, void *userdata) {
        Pop3Client *c = userdata;

        if (status < 0)
                return session_failed(c, status);
        enter_state(c, POP3_CLIENT_CAPA);
}

/* Every line from the server goes through the queue's parser (bodies included, dot-unstuffed there). */
static void stream_line_cb(NetStream *s, const char *line, size_t n, void *userdata) {
        Pop3Client *c = userdata;
        int r;

        if (c->state == POP3_CLIENT_FAILED || c->state == POP3_CLIENT_CLOSING)
                return;
        /* The stream strips CRLF; the parser wants the wire form back. */
        r = pop3_cmdq_feed(&c->q, line, n);
        if (r == 0)
                r = pop3_cmdq_feed(&c->q, "\r\n", 2);
        if (c->state == POP3_CLIENT_FAILED || c->state == POP3_CLIENT_CLOSING)
                return;
        if (r == 0) {
                /* Nothing awaited (the owner is busy, e.g. committing): the read timeout stops. */
                if (pop3_cmdq_is_idle(&c->q))
                        net_stream_set_waiting(&c->stream, false);
                return;
        }
        if (r > 0)
                return pop3_client_fail(c, NET_FAILURE_PROTOCOL, "bad reply from the server: %s",
                                        pop3_parser_strerror(r));
        pop3_client_fail(c, NET_FAILURE_NETWORK, "%s", strerror(-r));
}

/* EOF, reset, timeout, TLS error: net_stream_error() already says which. */
static void stream_failed_cb(NetStream *s, int status, void *userdata) {
        session_failed(userdata, status);
}

/* The stream's handles are closed: the client may go now. */
static void stream_closed_cb(NetStream *s, void *userdata) {
        Pop3Client *c = userdata;

        c->stream_open = false;
        client_maybe_free(c);
}

static const NetStreamOps stream_ops = {
        .connected = stream_connected_cb,
        .tls_ready = stream_tls_ready_cb,
        .line = stream_line_cb,
        .failed = stream_failed_cb,
        .closed = stream_closed_cb,
};

int pop3_client_new(uv_loop_t *loop, const Account *a, const Pop3ClientOps *ops, void *userdata, Pop3Client **cp) {
        Pop3Client *c;

        if (a->pop3.proto != SERVER_POP3 || !ops || !ops->ready)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->loop = loop;
        c->acct = a;
        c->ops = ops;
        c->userdata = userdata;
        c->connect_ms = 30000;
        c->read_ms = 120000;
        pop3_cmdq_init(&c->q, write_cb, c);
        *cp = c;
        return 0;
}

void pop3_client_set_timeouts(Pop3Client *c, uint64_t connect_ms, uint64_t read_ms) {
        c->connect_ms = connect_ms;
        c->read_ms = read_ms;
}

int pop3_client_connect(Pop3Client *c) {
        int r;

        if (c->state != POP3_CLIENT_NEW)
                return -EALREADY;
        r = net_stream_init(&c->stream, c->loop, POP3_CLIENT_MAX_LINE, &stream_ops, c);
        if (r < 0)
                return r;
        c->stream_open = true;
        net_stream_set_timeouts(&c->stream, c->connect_ms, c->read_ms, 0);
        enter_state(c, POP3_CLIENT_CREDENTIALS);
        return 0;
}

int pop3_client_send(Pop3Client *c, Pop3Expect expect, Pop3CmdEventFn event_fn, Pop3CmdDoneFn done_fn, void *userdata,
                     const char *fmt, ...) {
        char line[512];
        va_list ap;
        int n;

        if (c->state != POP3_CLIENT_TRANSACTION)
                return -ENOTCONN;
        va_start(ap, fmt);
        n = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof line)
                return -EINVAL;
        return pop3_cmdq_push(&c->q, line, expect, 0, event_fn, done_fn, userdata);
}

int pop3_client_quit(Pop3Client *c, Pop3CmdDoneFn done_fn, void *userdata) {
        if (c->state != POP3_CLIENT_TRANSACTION)
                return -ENOTCONN;
        return pop3_cmdq_push(&c->q, "QUIT", POP3_EXPECT_SINGLE, POP3_CMD_ALONE, NULL, done_fn, userdata);
}

void pop3_client_close(Pop3Client *c) {
        if (c->state == POP3_CLIENT_CLOSING)
                return;
        c->state = POP3_CLIENT_CLOSING;
        /* Owner callbacks of unanswered commands run now, with -ECANCELED. */
        pop3_cmdq_cancel(&c->q, -ECANCELED);
        if (c->cred_req)
                cred_request_cancel(c->cred_req);
        if (c->stream_open)
                net_stream_close(&c->stream);
        else
                client_maybe_free(c);
}

const Pop3Caps *pop3_client_get_caps(const Pop3Client *c) {
        return &c->caps;
}

bool pop3_client_is_pipelining(const Pop3Client *c) {
        return c->caps.pipelining;
}

const char *pop3_client_get_auth_name(const Pop3Client *c) {
        return c->auth_name;
}

const char *pop3_client_get_error(const Pop3Client *c) {
        return c->error;
}

NetFailure pop3_client_get_failure(const Pop3Client *c) {
        return c->failure;
}
