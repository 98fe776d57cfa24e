/*
 * The IMAP session state machine. One ImapClient owns its NetStream
 * (embedded; the stream's handles close asynchronously), the response parser,
 * the command queue (cmdq.c), the credential request and the SASL client.
 * Memory is freed in one place, client_maybe_free(), once the stream has
 * closed and no credential request is outstanding. Loop thread only.
 *
 * The states up to READY are driven here: each has an entry action run by
 * enter_state(), and the tagged reply to the command it sent comes back to
 * on_reply(), a switch on the state. From READY on the owner sends commands
 * (imap_client_send, imap_client_append in append.c) and gets their
 * responses itself. client-internal.h holds the struct these files share.
 *
 * Bytes in: the stream gives lines without CRLF; each goes to the parser with
 * its CRLF put back. A line ending in a literal marker ({N}, {N+}, ~{N}) makes
 * the stream hand over the next N bytes raw, which go to the parser unchanged,
 * so a 50 MB FETCH body streams through in the chunks it arrived in.
 *
 * Security: an imap:// URL means STARTTLS is required; when the server does
 * not offer it the session ends as a downgrade. LOGIN and SASL mechanisms that
 * reveal the secret go only over TLS (or the loopback `tls = none`), never
 * after LOGINDISABLED. Capabilities seen before TLS are forgotten after it.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/imap/client-internal.h"
#include "util/log.h"
#include "util/secret.h"

/* The longest line taken from the stream; the parser applies its own, finer limits. */
#define IMAP_CLIENT_MAX_LINE (8 * 1024 * 1024)

static const char *const state_names[_IMAP_CLIENT_STATE_MAX] = {
        [IMAP_CLIENT_NEW] = "new",
        [IMAP_CLIENT_CREDENTIALS] = "credentials",
        [IMAP_CLIENT_CONNECTING] = "connecting",
        [IMAP_CLIENT_GREETING] = "greeting",
        [IMAP_CLIENT_CAPABILITY] = "capability",
        [IMAP_CLIENT_STARTTLS] = "starttls",
        [IMAP_CLIENT_HANDSHAKE] = "tls-handshake",
        [IMAP_CLIENT_AUTHENTICATE] = "authenticate",
        [IMAP_CLIENT_LOGIN] = "login",
        [IMAP_CLIENT_CAPABILITY_AUTHED] = "capability-authed",
        [IMAP_CLIENT_ENABLE] = "enable",
        [IMAP_CLIENT_ID] = "id",
        [IMAP_CLIENT_READY] = "ready",
        [IMAP_CLIENT_LOGOUT] = "logout",
        [IMAP_CLIENT_FAILED] = "failed",
        [IMAP_CLIENT_CLOSING] = "closing",
};

static void enter_state(ImapClient *c, ImapClientState state);

static void *mfree(void *p) {
        free(p);
        return NULL;
}

/* The one place the client is freed: after the stream's last close callback and the credential request. */
static void client_maybe_free(ImapClient *c) {
        if (c->stream_open || c->cred_req)
                return;
        if (c->ops->closed)
                c->ops->closed(c, c->userdata);
        c->parser = imap_parser_free(c->parser);
        c->sasl = sasl_client_free(c->sasl);
        c->cred = cred_free(c->cred);
        free(c->caps);
        free(c->enabled);
        free(c);
}

/* The session is over: record why, complete every command, tell the owner once. */
static void session_failed(ImapClient *c, int r) {
        const char *why = net_stream_error(&c->stream);
        bool logging_out = c->state == IMAP_CLIENT_LOGOUT;

        if (imap_client_is_over(c))
                return;
        r = r < 0 ? r : UV_EPROTO;
        if (!c->error[0])
                snprintf(c->error, sizeof c->error, "account %s: %s", c->acct->name, why[0] ? why : "session failed");
        if (c->failure == NET_FAILURE_NONE)
                c->failure = net_stream_failure(&c->stream) ?: NET_FAILURE_NETWORK;
        log_acct_debug(c->acct->name, "imap: %s -> failed", state_names[c->state]);
        c->state = IMAP_CLIENT_FAILED;
        c->append = NULL;
        imap_cmdq_cancel(&c->q, r);
        if (!c->ready_reported) {
                c->ready_reported = true;
                c->ops->ready(c, r, c->userdata);
        } else if (c->ops->failed && !logging_out)
                c->ops->failed(c, r, c->userdata);
}

_printf_(3, 0) static void client_failv(ImapClient *c, NetFailure failure, const char *fmt, va_list ap) {
        char msg[700];
        int r;

        if (imap_client_is_over(c))
                return;
        vsnprintf(msg, sizeof msg, fmt, ap);
        r = net_stream_fail(&c->stream, failure, "%s", msg);
        c->failure = failure;
        session_failed(c, r);
}

void imap_client_fail(ImapClient *c, NetFailure failure, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        client_failv(c, failure, fmt, ap);
        va_end(ap);
}

/* "A B" lists: is word (any case) one of them? */
static bool word_list_has(const char *list, const char *word) {
        size_t n = strlen(word);

        if (!list || n == 0)
                return false;
        for (const char *p = list; *p;) {
                size_t len;

                p += strspn(p, " ");
                len = strcspn(p, " ");
                if (len == n && strncasecmp(p, word, n) == 0)
                        return true;
                p += len;
        }
        return false;
}

/* Appends the words of l to *listp ("A B", NULL for none yet); returns 0 or -ENOMEM. */
static int word_list_add(char **listp, const ImapStrList *l) {
        size_t n = *listp ? strlen(*listp) : 0;
        char *s;

        for (size_t i = 0; i < l->n; i++)
                n += l->v[i].len + 1;
        s = realloc(*listp, n + 1);
        if (!s)
                return -ENOMEM;
        if (!*listp)
                s[0] = '\0';
        for (size_t i = 0; i < l->n; i++) {
                /* A word with a space or NUL would break the list; no capability has one. */
                if (l->v[i].len == 0 || memchr(l->v[i].s, ' ', l->v[i].len) || strlen(l->v[i].s) != l->v[i].len)
                        continue;
                if (s[0])
                        strcat(s, " ");
                strcat(s, l->v[i].s);
        }
        *listp = s;
        return 0;
}

static int set_caps(ImapClient *c, const ImapStrList *l) {
        c->caps = mfree(c->caps);
        return word_list_add(&c->caps, l);
}

/* The queue's transport: every command sent arms the read timeout until its reply. */
static int write_cb(const char *data, size_t n, bool secret, void *userdata) {
        ImapClient *c = userdata;

        c->server_waits = false;
        net_stream_set_waiting(&c->stream, true);
        return net_stream_write(&c->stream, data, n); /* the stream wipes its copy once written */
}

static void on_reply(ImapClient *c, int r, const ImapStatusResp *st);

/* Replies to the client's own commands (CAPABILITY to ID) go to on_reply(). */
static void internal_done_cb(ImapClient *c, int r, const ImapStatusResp *st, void *userdata) {
        if (r < 0)
                return; /* cancelled: the session is failing or closing already */
        on_reply(c, r, st);
}

/* Queues one of the client's own commands (line taken over); a queue failure ends the session. */
static int push_internal(ImapClient *c, char *line, unsigned flags, ImapCmdEventFn event_fn) {
        int r;

        if (!line) {
                imap_client_fail(c, NET_FAILURE_NETWORK, "out of memory");
                return -ENOMEM;
        }
        r = imap_cmdq_push(&c->q, line, flags, event_fn, NULL, internal_done_cb, NULL);
        if (r < 0)
                imap_client_fail(c, NET_FAILURE_NETWORK, "cannot queue a command: %s", strerror(-r));
        return r;
}

/* Sends one line of a SASL exchange; the stream copies it and wipes its copy once written. */
static void send_secret_line(ImapClient *c, const char *line) {
        c->server_waits = false;
        net_stream_set_waiting(&c->stream, true);
        if (net_stream_write(&c->stream, line, strlen(line)) < 0 || net_stream_write(&c->stream, "\r\n", 2) < 0)
                imap_client_fail(c, NET_FAILURE_NETWORK, "cannot send the SASL response");
}

/* One "+ challenge" of AUTHENTICATE (RFC 3501 6.2.2): the SASL client computes the answer. */
static int auth_event_cb(ImapClient *c, const ImapEvent *ev, void *userdata) {
        _cleanup_secret_ char *resp = NULL;
        int r;

        if (ev->kind != IMAP_EVENT_CONTINUATION || c->state != IMAP_CLIENT_AUTHENTICATE)
                return IMAP_CMD_EVENT_PASS;
        if (c->sasl_bad) {
                send_secret_line(c, "*");
                return 0;
        }
        if (!c->sasl_ir_sent && sasl_client_has_initial(c->sasl)) {
                /* No SASL-IR: the empty "+" asks for the initial response. */
                c->sasl_ir_sent = true;
                r = sasl_client_step64(c->sasl, NULL, &resp);
        } else
                r = sasl_client_step64(c->sasl, ev->status.text.s ? ev->status.text.s : "", &resp);
        if (r == SASL_E_SERVER) {
                /* Cancel the exchange; the BAD/NO that follows ends the session as a protocol failure. */
                c->sasl_bad = true;
                send_secret_line(c, "*");
                return 0;
        }
        if (r < 0) {
                imap_client_fail(c, NET_FAILURE_NETWORK, "SASL: %s", strerror(-r));
                return 0;
        }
        send_secret_line(c, resp); /* after SASL_E_REFUSED too: it ends the exchange */
        return 0;
}

/* Words a refused login: UNAVAILABLE is the server's trouble (retry), anything else our credentials. */
static void fail_login(ImapClient *c, const char *what, const ImapStatusResp *st) {
        const char *text = st && st->text.s && st->text.s[0] ? st->text.s : "no reason given";
        const char *code = st && st->code.kind == IMAP_CODE_OTHER && st->code.name.s ? st->code.name.s : "";

        if (strcasecmp(code, "UNAVAILABLE") == 0 || strcasecmp(code, "SERVERBUG") == 0)
                return imap_client_fail(c, NET_FAILURE_NETWORK, "temporary server problem during %s (%s): %s",
                                        what, code, text);
        if (c->sasl_bad)
                return imap_client_fail(c, NET_FAILURE_PROTOCOL,
                                        "%s failed: the server's SASL message did not verify (wrong server?)", what);
        imap_client_fail(c, NET_FAILURE_AUTH, "authentication failed (%s, user %s): %s", what,
                         c->cred ? c->cred->username : "?", text);
}

/* The AUTH=... capabilities as the space-separated list sasl_client_new() reads. */
static char *offered_mechs(const ImapClient *c) {
        size_t n = c->caps ? strlen(c->caps) : 0;
        char *out = calloc(1, n + 1);

        if (!out || !c->caps)
                return out;
        for (const char *p = c->caps; *p;) {
                size_t len;

                p += strspn(p, " ");
                len = strcspn(p, " ");
                if (len > 5 && strncasecmp(p, "AUTH=", 5) == 0) {
                        strncat(out, p + 5, len - 5);
                        strcat(out, " ");
                }
                p += len;
        }
        return out;
}

/* Chooses AUTHENTICATE or LOGIN after the (post-TLS) capabilities. */
static void start_login(ImapClient *c) {
        SaslCred sc = {.username = c->cred->username,
                       .secret = c->cred->secret,
                       .is_token = c->cred->is_token,
                       .host = c->acct->imap.host,
                       .port = c->acct->imap.port};
        bool secure = net_stream_is_secure(&c->stream);
        _cleanup_free_ char *mechs = offered_mechs(c);
        int r = SASL_E_NO_MECH;

        if (!mechs)
                return imap_client_fail(c, NET_FAILURE_NETWORK, "out of memory");
        c->sasl = sasl_client_free(c->sasl);
        if (mechs[0])
                r = sasl_client_new(mechs, &sc, secure, NULL, &c->sasl);
        if (r == 0)
                return enter_state(c, IMAP_CLIENT_AUTHENTICATE);
        if (r < 0)
                return imap_client_fail(c, NET_FAILURE_NETWORK, "SASL: %s", strerror(-r));
        if (c->cred->is_token)
                return imap_client_fail(c, NET_FAILURE_AUTH, "no OAuth 2 SASL mechanism offered (offered: %s)",
                                        mechs[0] ? mechs : "none");
        if (!secure)
                return imap_client_fail(c, NET_FAILURE_DOWNGRADE, "refusing to send the password without TLS");
        if (imap_client_has_cap(c, "LOGINDISABLED"))
                return imap_client_fail(c, NET_FAILURE_AUTH, "no usable login method (LOGINDISABLED, SASL offered: %s)",
                                        mechs[0] ? mechs : "none");
        enter_state(c, IMAP_CLIENT_LOGIN);
}

/* Capabilities are in (before login): STARTTLS when required, then log in. */
static void after_caps(ImapClient *c) {
        if (net_stream_needs_starttls(&c->stream)) {
                if (!imap_client_has_cap(c, "STARTTLS")) {
                        int r = net_stream_refuse_downgrade(&c->stream, "STARTTLS");

                        c->failure = NET_FAILURE_DOWNGRADE;
                        return session_failed(c, r);
                }
                return enter_state(c, IMAP_CLIENT_STARTTLS);
        }
        start_login(c);
}

/* What ENABLE asks for: the extensions wanted and offered; "" when none. */
static void enable_list(const ImapClient *c, char *buf, size_t size) {
        bool qresync = c->opts.enable_qresync && imap_client_has_cap(c, "QRESYNC");

        /* RFC 7162 3.2.3: QRESYNC implies CONDSTORE; naming both makes ENABLED list both on every server. */
        snprintf(buf, size, "%s%s%s",
                 (c->opts.enable_condstore || qresync) && imap_client_has_cap(c, "CONDSTORE") ? " CONDSTORE" : "",
                 qresync ? " QRESYNC" : "",
                 c->opts.enable_utf8 && imap_client_has_cap(c, "UTF8=ACCEPT") ? " UTF8=ACCEPT" : "");
}

/* After ENABLE (or instead of it): ID when wanted and offered, then ready. */
static void after_enable(ImapClient *c) {
        if (c->opts.send_id && imap_client_has_cap(c, "ID"))
                return enter_state(c, IMAP_CLIENT_ID);
        enter_state(c, IMAP_CLIENT_READY);
}

/* Authenticated, capabilities known: ENABLE what was asked for. */
static void after_login_caps(ImapClient *c) {
        char list[64];

        enable_list(c, list, sizeof list);
        if (list[0] && imap_client_has_cap(c, "ENABLE"))
                return enter_state(c, IMAP_CLIENT_ENABLE);
        after_enable(c);
}

/* Logged in: the OK's [CAPABILITY] code (RFC 3501 7.1) spares a CAPABILITY round trip. */
static void after_auth(ImapClient *c, const ImapStatusResp *st) {
        if (st && st->code.kind == IMAP_CODE_CAPABILITY && c->caps)
                return after_login_caps(c);
        enter_state(c, IMAP_CLIENT_CAPABILITY_AUTHED);
}

/* The tagged reply to the command the current state sent: decides the next state. */
static void on_reply(ImapClient *c, int r, const ImapStatusResp *st) {
        bool ok = r == 0;

        switch (c->state) {
        case IMAP_CLIENT_CAPABILITY:
                if (!ok || !c->caps)
                        return imap_client_fail(c, NET_FAILURE_PROTOCOL, "CAPABILITY failed: %s",
                                                st->text.s ? st->text.s : "no capabilities");
                return after_caps(c);
        case IMAP_CLIENT_STARTTLS:
                if (!ok)
                        return imap_client_fail(c, NET_FAILURE_DOWNGRADE, "STARTTLS refused: %s",
                                                st->text.s ? st->text.s : "");
                if (net_stream_starttls(&c->stream) < 0)
                        return imap_client_fail(c, NET_FAILURE_PROTOCOL, "cannot start TLS");
                return enter_state(c, IMAP_CLIENT_HANDSHAKE);
        case IMAP_CLIENT_AUTHENTICATE:
                if (!ok)
                        return fail_login(c, sasl_client_mech_name(c->sasl), st);
                if (sasl_client_finish(c->sasl) != 0)
                        return imap_client_fail(c, NET_FAILURE_PROTOCOL,
                                                "server claimed success without proving it knows the password");
                snprintf(c->auth_name, sizeof c->auth_name, "%s", sasl_client_mech_name(c->sasl));
                return after_auth(c, st);
        case IMAP_CLIENT_LOGIN:
                if (!ok)
                        return fail_login(c, "LOGIN", st);
                snprintf(c->auth_name, sizeof c->auth_name, "LOGIN");
                return after_auth(c, st);
        case IMAP_CLIENT_CAPABILITY_AUTHED:
                if (!ok || !c->caps)
                        return imap_client_fail(c, NET_FAILURE_PROTOCOL, "CAPABILITY failed after login: %s",
                                                st->text.s ? st->text.s : "no capabilities");
                return after_login_caps(c);
        case IMAP_CLIENT_ENABLE:
                /* A refused ENABLE leaves the extensions off; is_enabled() says so. */
                if (!ok)
                        log_acct_info(c->acct->name, "imap: ENABLE refused: %s", st->text.s ? st->text.s : "");
                return after_enable(c);
        case IMAP_CLIENT_ID:
                /* ID is courtesy; the server's answer changes nothing. */
                return enter_state(c, IMAP_CLIENT_READY);
        default:
                return;
        }
}

/* The greeting (RFC 3501 7.1.1, 7.1.4, 7.1.5): OK, PREAUTH or BYE. */
static void on_greeting(ImapClient *c, const ImapStatusResp *st) {
        const char *text = st->text.s ? st->text.s : "";
        bool have_caps = st->code.kind == IMAP_CODE_CAPABILITY && c->caps;

        switch (st->status) {
        case IMAP_STATUS_OK:
                if (have_caps)
                        return after_caps(c);
                return enter_state(c, IMAP_CLIENT_CAPABILITY);
        case IMAP_STATUS_PREAUTH:
                /* STARTTLS is not allowed once authenticated: a required upgrade cannot happen. */
                if (net_stream_needs_starttls(&c->stream)) {
                        int r = net_stream_refuse_downgrade(&c->stream, "STARTTLS (server sent PREAUTH)");

                        c->failure = NET_FAILURE_DOWNGRADE;
                        return session_failed(c, r);
                }
                snprintf(c->auth_name, sizeof c->auth_name, "PREAUTH");
                if (have_caps)
                        return after_login_caps(c);
                return enter_state(c, IMAP_CLIENT_CAPABILITY_AUTHED);
        case IMAP_STATUS_BYE:
                return imap_client_fail(c, NET_FAILURE_NETWORK, "server refused the session (BYE): %s", text);
        default:
                return imap_client_fail(c, NET_FAILURE_PROTOCOL, "unexpected greeting: %s", text);
        }
}

/* Credentials are in (or not): only then is the server contacted, so a missing secret costs no connection. */
static void cred_cb(int status, Cred *cred, const char *error, void *userdata) {
        ImapClient *c = userdata;

        c->cred_req = NULL;
        if (c->state == IMAP_CLIENT_CLOSING) {
                cred_free(cred);
                return client_maybe_free(c);
        }
        if (status < 0) {
                snprintf(c->error, sizeof c->error, "account %s: %s:%u: credentials from %s: %s", c->acct->name,
                         c->acct->imap.host, c->acct->imap.port, cred_source_name(c->acct), error ? error : "failed");
                c->failure = NET_FAILURE_CREDENTIALS;
                return session_failed(c, status);
        }
        c->cred = cred;
        enter_state(c, IMAP_CLIENT_CONNECTING);
}

/* "LOGIN user password" in secret memory; NULL when a string cannot be quoted (or ENOMEM). */
static char *login_line(const ImapClient *c) {
        ssize_t nu = imap_quote_to(c->cred->username, false, NULL), np = imap_quote_to(c->cred->secret, false, NULL);
        char *buf, *line;
        size_t n;

        if (nu < 0 || np < 0)
                return NULL;
        n = 6 + (size_t)nu + 1 + (size_t)np + 1;
        buf = malloc(n);
        if (!buf)
                return NULL;
        memcpy(buf, "LOGIN ", 6);
        imap_quote_to(c->cred->username, false, buf + 6);
        buf[6 + nu] = ' ';
        imap_quote_to(c->cred->secret, false, buf + 6 + nu + 1);
        line = secret_strdup(buf);
        sodium_memzero(buf, n);
        free(buf);
        return line;
}

/* Logs the transition and runs the entry action of state. */
static void enter_state(ImapClient *c, ImapClientState state) {
        char *line = NULL;
        int r;

        log_acct_debug(c->acct->name, "imap: %s -> %s", state_names[c->state], state_names[state]);
        c->state = state;
        switch (state) {
        case IMAP_CLIENT_CREDENTIALS:
                r = cred_request_start(c->loop, c->acct, 0, cred_cb, c, &c->cred_req);
                if (r < 0) {
                        snprintf(c->error, sizeof c->error, "account %s: credentials: %s", c->acct->name, strerror(-r));
                        c->failure = NET_FAILURE_CREDENTIALS;
                        session_failed(c, r);
                }
                return;
        case IMAP_CLIENT_CONNECTING:
                r = net_stream_connect(&c->stream, c->acct, &c->acct->imap);
                if (r < 0)
                        imap_client_fail(c, NET_FAILURE_NETWORK, "cannot connect: %s", strerror(-r));
                return;
        case IMAP_CLIENT_GREETING:
                net_stream_set_waiting(&c->stream, true);
                return;
        case IMAP_CLIENT_CAPABILITY:
        case IMAP_CLIENT_CAPABILITY_AUTHED:
                /* Forget what was said before (before TLS it may have been forged; login changes it). */
                c->caps = mfree(c->caps);
                (void)push_internal(c, strdup("CAPABILITY"), IMAP_CMD_ALONE, NULL);
                return;
        case IMAP_CLIENT_STARTTLS:
                (void)push_internal(c, strdup("STARTTLS"), IMAP_CMD_ALONE, NULL);
                return;
        case IMAP_CLIENT_HANDSHAKE:
                return;
        case IMAP_CLIENT_AUTHENTICATE: {
                _cleanup_secret_ char *ir = NULL;
                const char *mech = sasl_client_mech_name(c->sasl);

                c->sasl_ir_sent = false;
                if (sasl_client_has_initial(c->sasl) && imap_client_has_cap(c, "SASL-IR")) {
                        if (sasl_client_step64(c->sasl, NULL, &ir) != 0)
                                return imap_client_fail(c, NET_FAILURE_PROTOCOL, "SASL initial response failed");
                        c->sasl_ir_sent = true;
                }
                /* RFC 4959: an empty initial response is sent as "=". */
                if (asprintf(&line, "AUTHENTICATE %s%s%s", mech, ir ? " " : "", ir ? (ir[0] ? ir : "=") : "") < 0)
                        line = NULL;
                if (line) {
                        char *s = secret_strdup(line);

                        sodium_memzero(line, strlen(line));
                        free(line);
                        line = s;
                }
                (void)push_internal(c, line, IMAP_CMD_ALONE | IMAP_CMD_SECRET, auth_event_cb);
                return;
        }
        case IMAP_CLIENT_LOGIN:
                line = login_line(c);
                if (!line)
                        return imap_client_fail(c, NET_FAILURE_CREDENTIALS,
                                                "user name or password cannot be sent with LOGIN (8-bit or line breaks)");
                (void)push_internal(c, line, IMAP_CMD_ALONE | IMAP_CMD_SECRET, NULL);
                return;
        case IMAP_CLIENT_ENABLE: {
                char list[64];

                enable_list(c, list, sizeof list);
                if (asprintf(&line, "ENABLE%s", list) < 0)
                        line = NULL;
                (void)push_internal(c, line, IMAP_CMD_ALONE, NULL);
                return;
        }
        case IMAP_CLIENT_ID:
                (void)push_internal(c, strdup("ID (\"name\" \"tegami\" \"version\" \"" TEGAMI_VERSION "\")"),
                                    IMAP_CMD_ALONE, NULL);
                return;
        case IMAP_CLIENT_READY:
                c->sasl = sasl_client_free(c->sasl);
                c->cred = cred_free(c->cred); /* nothing needs the secret any more */
                imap_cmdq_set_max_flight(&c->q, c->opts.max_flight ?: IMAP_CLIENT_PIPELINE_DEFAULT);
                log_acct_info(c->acct->name, "imap: logged in to %s with %s%s%s", c->stream.where, c->auth_name,
                              c->enabled ? ", enabled " : "", c->enabled ? c->enabled : "");
                c->ready_reported = true;
                net_stream_set_waiting(&c->stream, false);
                c->ops->ready(c, 0, c->userdata);
                return;
        default:
                return;
        }
}

/*
 * Server state that any response may carry is kept whoever the response goes
 * to: capabilities (CAPABILITY, or an OK's [CAPABILITY] code) and ENABLED.
 */
static void track_server_state(ImapClient *c, const ImapEvent *ev) {
        int r = 0;

        if (ev->kind == IMAP_EVENT_CAPABILITY)
                r = set_caps(c, &ev->capabilities);
        else if (ev->kind == IMAP_EVENT_ENABLED) {
                r = word_list_add(&c->enabled, &ev->capabilities);
                /* RFC 7162 3.2.3: enabling QRESYNC enables CONDSTORE too, listed or not. */
                if (r == 0 && word_list_has(c->enabled, "QRESYNC") && !word_list_has(c->enabled, "CONDSTORE")) {
                        ImapStr s = {.s = "CONDSTORE", .len = 9};

                        r = word_list_add(&c->enabled, &(ImapStrList){.v = &s, .n = 1});
                }
        } else if (ev->kind == IMAP_EVENT_STATUS && ev->status.code.kind == IMAP_CODE_CAPABILITY)
                r = set_caps(c, &ev->status.code.list);
        else if (ev->kind == IMAP_EVENT_STATUS && ev->status.code.kind == IMAP_CODE_ALERT)
                log_acct_warning(c->acct->name, "imap: server alert: %s", ev->status.text.s ? ev->status.text.s : "");
        if (r < 0)
                imap_client_fail(c, NET_FAILURE_NETWORK, "out of memory");
}

/* Every parsed response: greeting, BYE, or the queue's (tagged status, command data, continuation). */
static int parser_event_cb(const ImapEvent *ev, void *userdata) {
        ImapClient *c = userdata;
        int r;

        if (imap_client_is_over(c))
                return -ECANCELED;
        track_server_state(c, ev);
        if (c->state == IMAP_CLIENT_GREETING) {
                if (ev->kind != IMAP_EVENT_STATUS || ev->tag.s)
                        imap_client_fail(c, NET_FAILURE_PROTOCOL, "expected a greeting, got %s",
                                         imap_event_kind_to_string(ev->kind));
                else
                        on_greeting(c, &ev->status);
                return imap_client_is_over(c) ? -ECANCELED : 0;
        }
        if (ev->kind == IMAP_EVENT_STATUS && !ev->tag.s && ev->status.status == IMAP_STATUS_BYE) {
                /* Expected after LOGOUT (its tagged OK follows); anywhere else the server is leaving. */
                if (c->state != IMAP_CLIENT_LOGOUT)
                        imap_client_fail(c, NET_FAILURE_NETWORK, "server closed the session (BYE): %s",
                                         ev->status.text.s ? ev->status.text.s : "");
                return imap_client_is_over(c) ? -ECANCELED : 0;
        }
        /* After "+" the server waits for us (IDLE may wait half an hour): no read timeout until we write. */
        if (ev->kind == IMAP_EVENT_CONTINUATION)
                c->server_waits = true;
        r = imap_cmdq_event(&c->q, ev);
        if (imap_client_is_over(c))
                return -ECANCELED;
        switch (r) {
        case 0:
                break;
        case IMAP_CMDQ_UNTAKEN:
                if ((c->state == IMAP_CLIENT_READY || c->state == IMAP_CLIENT_LOGOUT) && c->ops->untagged)
                        c->ops->untagged(c, ev, c->userdata);
                break;
        case IMAP_CMDQ_E_UNKNOWN_TAG:
                imap_client_fail(c, NET_FAILURE_PROTOCOL, "server answered a command never sent (tag %s)", ev->tag.s);
                break;
        case IMAP_CMDQ_E_UNEXPECTED_CONTINUATION:
                imap_client_fail(c, NET_FAILURE_PROTOCOL, "unexpected continuation request: + %s",
                                 ev->status.text.s ? ev->status.text.s : "");
                break;
        default:
                imap_client_fail(c, NET_FAILURE_PROTOCOL, "response to %s refused: %s", imap_cmdq_last_tag(&c->q),
                                 strerror(r < 0 ? -r : EPROTO));
                break;
        }
        return imap_client_is_over(c) ? -ECANCELED : 0;
}

/* The parser refused the server's bytes (or a callback aborted the feed). */
static void parser_failed(ImapClient *c, int r) {
        uint64_t offset = 0;
        const char *reason = NULL;

        if (imap_client_is_over(c))
                return;
        if (r < 0)
                return imap_client_fail(c, NET_FAILURE_NETWORK, "%s", strerror(-r));
        (void)imap_parser_get_error(c->parser, &offset, &reason);
        imap_client_fail(c, NET_FAILURE_PROTOCOL, "bad response from the server: %s at byte %" PRIu64 "%s%s%s",
                         imap_parser_code_to_string(r), offset, reason ? " (" : "", reason ? reason : "",
                         reason ? ")" : "");
}

/* The size of a literal announced at the end of line ("{N}", "{N+}", "~{N}"), or false. */
static bool literal_at_end(const char *line, size_t n, uint64_t *sizep) {
        size_t end, i;
        uint64_t v = 0;

        if (n < 3 || line[n - 1] != '}')
                return false;
        end = line[n - 2] == '+' ? n - 2 : n - 1;
        for (i = end; i > 0 && isdigit((unsigned char)line[i - 1]); i--)
                ;
        if (i == end || i == 0 || line[i - 1] != '{' || end - i > 19)
                return false;
        for (; i < end; i++)
                v = v * 10 + (uint64_t)(line[i] - '0');
        *sizep = v;
        return true;
}

/* After a line or raw chunk: the read timeout runs while an answer is owed. */
static void update_waiting(ImapClient *c) {
        if (!imap_client_is_over(c))
                net_stream_set_waiting(&c->stream, !c->server_waits && (c->state != IMAP_CLIENT_READY ||
                                                                        imap_cmdq_get_n_pending(&c->q) > 0));
}

/* Every line goes to the parser with its CRLF back; a literal that follows is read raw. */
static void stream_line_cb(NetStream *s, const char *line, size_t n, void *userdata) {
        ImapClient *c = userdata;
        uint64_t lit;
        int r;

        c->bytes_in += n + 2;
        if (imap_client_is_over(c))
                return;
        r = imap_parser_feed(c->parser, line, n, NULL);
        if (r == 0)
                r = imap_parser_feed(c->parser, "\r\n", 2, NULL);
        if (r != 0)
                return parser_failed(c, r);
        if (imap_client_is_over(c))
                return;
        if (literal_at_end(line, n, &lit) && lit > 0) {
                r = net_stream_read_raw(&c->stream, lit);
                if (r < 0)
                        return imap_client_fail(c, NET_FAILURE_NETWORK, "cannot read a literal: %s", strerror(-r));
        }
        update_waiting(c);
}

/* A chunk of a literal: the parser takes bytes split anywhere. */
static void stream_raw_cb(NetStream *s, const char *data, size_t n, bool done, void *userdata) {
        ImapClient *c = userdata;
        int r;

        c->bytes_in += n;
        if (imap_client_is_over(c))
                return;
        r = imap_parser_feed(c->parser, data, n, NULL);
        if (r != 0)
                return parser_failed(c, r);
        update_waiting(c);
}

/* The socket took some of what was queued: an APPEND literal may go on. */
static void stream_written_cb(NetStream *s, void *userdata) {
        ImapClient *c = userdata;

        if (c->append && c->append->writing && !imap_client_is_over(c))
                imap_client_append_pump(c);
}

/* TCP (and for imaps the TLS handshake) is up: the greeting comes next. */
static void stream_connected_cb(NetStream *s, int status, void *userdata) {
        ImapClient *c = userdata;

        if (status < 0)
                return session_failed(c, status);
        enter_state(c, IMAP_CLIENT_GREETING);
}

/* STARTTLS done: ask CAPABILITY again, since what the server said in clear may have been forged. */
static void stream_tls_ready_cb(NetStream *s, int status, void *userdata) {
        ImapClient *c = userdata;

        if (status < 0)
                return session_failed(c, status);
        enter_state(c, IMAP_CLIENT_CAPABILITY);
}

/* EOF, reset, timeout, TLS error: net_stream_error() already says which. */
static void stream_failed_cb(NetStream *s, int status, void *userdata) {
        session_failed(userdata, status);
}

/* The stream's handles are closed: the client may go now. */
static void stream_closed_cb(NetStream *s, void *userdata) {
        ImapClient *c = userdata;

        c->stream_open = false;
        client_maybe_free(c);
}

static const NetStreamOps stream_ops = {
        .connected = stream_connected_cb,
        .tls_ready = stream_tls_ready_cb,
        .line = stream_line_cb,
        .raw = stream_raw_cb,
        .failed = stream_failed_cb,
        .closed = stream_closed_cb,
        .written = stream_written_cb,
};

int imap_client_new(uv_loop_t *loop, const Account *a, const ImapClientOptions *opts, const ImapClientOps *ops,
                    void *userdata, ImapClient **cp) {
        ImapClient *c;

        if (a->imap.proto != SERVER_IMAP || !ops || !ops->ready)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->loop = loop;
        c->acct = a;
        c->opts = opts ? *opts : (ImapClientOptions){0};
        c->ops = ops;
        c->userdata = userdata;
        c->parser = imap_parser_new(c->opts.limits, parser_event_cb, c);
        if (!c->parser) {
                free(c);
                return -ENOMEM;
        }
        c->opts.limits = NULL; /* copied into the parser; the owner's struct need not outlive us */
        imap_cmdq_init(&c->q, c, write_cb, c);
        *cp = c;
        return 0;
}

int imap_client_connect(ImapClient *c) {
        int r;

        if (c->state != IMAP_CLIENT_NEW)
                return -EALREADY;
        r = net_stream_init(&c->stream, c->loop, IMAP_CLIENT_MAX_LINE, &stream_ops, c);
        if (r < 0)
                return r;
        c->stream_open = true;
        net_stream_set_timeouts(&c->stream, c->opts.connect_timeout_ms ?: 30000, c->opts.read_timeout_ms ?: 120000,
                                0);
        c->ready_owed = true;
        enter_state(c, IMAP_CLIENT_CREDENTIALS);
        return 0;
}

int imap_client_send(ImapClient *c, unsigned flags, ImapCmdEventFn event_fn, ImapCmdDoneFn done_fn, void *userdata,
                     const char *fmt, ...) {
        char *line = NULL;
        va_list ap;
        int n;

        if (c->state != IMAP_CLIENT_READY)
                return -ENOTCONN;
        va_start(ap, fmt);
        n = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        if (n == 0 || strpbrk(line, "\r\n") || (size_t)n != strlen(line)) {
                sodium_memzero(line, (size_t)n);
                free(line);
                return -EINVAL;
        }
        if (flags & IMAP_CMD_SECRET) {
                char *s = secret_strdup(line);

                sodium_memzero(line, (size_t)n);
                free(line);
                if (!s)
                        return -ENOMEM;
                line = s;
        }
        return imap_cmdq_push(&c->q, line, flags, event_fn, NULL, done_fn, userdata);
}

void imap_client_close(ImapClient *c) {
        if (c->state == IMAP_CLIENT_CLOSING)
                return;
        c->state = IMAP_CLIENT_CLOSING;
        c->append = NULL;
        /* Owner callbacks of unanswered commands run now, with -ECANCELED. */
        imap_cmdq_cancel(&c->q, -ECANCELED);
        if (c->ready_owed && !c->ready_reported) {
                c->ready_reported = true;
                if (!c->error[0])
                        snprintf(c->error, sizeof c->error, "account %s: closed before logging in", c->acct->name);
                c->ops->ready(c, -ECANCELED, c->userdata);
        }
        if (c->cred_req)
                cred_request_cancel(c->cred_req);
        if (c->stream_open)
                net_stream_close(&c->stream);
        else
                client_maybe_free(c);
}

int imap_client_write_line(ImapClient *c, const char *line) {
        int r;

        if ((c->state != IMAP_CLIENT_READY && c->state != IMAP_CLIENT_LOGOUT) || imap_cmdq_get_n_pending(&c->q) == 0 ||
            c->append)
                return -ENOTCONN;
        if (strpbrk(line, "\r\n"))
                return -EINVAL;
        c->server_waits = false;
        r = net_stream_write(&c->stream, line, strlen(line));
        if (r == 0)
                r = net_stream_write(&c->stream, "\r\n", 2);
        if (r == 0)
                net_stream_set_waiting(&c->stream, true);
        return r;
}

static void logout_done_cb(ImapClient *c, int r, const ImapStatusResp *st, void *userdata) {
        imap_client_close(c);
}

void imap_client_logout(ImapClient *c) {
        if (c->state != IMAP_CLIENT_READY) {
                imap_client_close(c);
                return;
        }
        c->state = IMAP_CLIENT_LOGOUT;
        /* Commands already queued go first; LOGOUT completes after them. */
        if (imap_cmdq_push(&c->q, strdup("LOGOUT"), 0, NULL, NULL, logout_done_cb, NULL) < 0)
                imap_client_close(c);
}

bool imap_client_has_cap(const ImapClient *c, const char *cap) {
        return word_list_has(c->caps, cap);
}

const char *imap_client_get_caps(const ImapClient *c) {
        return c->caps ? c->caps : "";
}

bool imap_client_is_enabled(const ImapClient *c, const char *ext) {
        return word_list_has(c->enabled, ext);
}

const char *imap_client_get_auth_name(const ImapClient *c) {
        return c->auth_name;
}

unsigned imap_client_get_n_pending(const ImapClient *c) {
        return imap_cmdq_get_n_pending(&c->q);
}

const char *imap_client_get_error(const ImapClient *c) {
        return c->error;
}

NetFailure imap_client_get_failure(const ImapClient *c) {
        return c->failure;
}

uint64_t imap_client_get_bytes_in(const ImapClient *c) {
        return c->bytes_in;
}
