/*
 * The SMTP submission session (RFC 6409 over RFC 5321): one explicit state
 * machine on a NetStream, on the libuv loop thread. Each line from the stream
 * is fed (with its CRLF) to the pure reply parser; each complete reply goes to
 * on_reply(), one switch over the state. enter_state() is the only place that
 * changes the state: it logs the transition and runs the entry action, which
 * sends the state's command(s).
 *
 * The envelope is the only place where more than one command is in flight:
 * with PIPELINING, MAIL FROM and every RCPT TO go in one write and their
 * replies are matched by order (n_envelope_replies). DATA / BDAT always wait
 * for the RCPT replies, so no body goes out when nobody would get it.
 *
 * Ownership: the SmtpClient owns its stream, credentials, SASL exchange and
 * result texts; it borrows the Account and the SmtpMessage. It is freed in one
 * place, complete(), after the stream's closed callback (or directly when no
 * stream was ever opened), right after the caller's callback.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/net/cred.h"
#include "daemon/net/sasl.h"
#include "daemon/net/stream.h"
#include "daemon/smtp/client.h"
#include "daemon/smtp/reply.h"
#include "util/log.h"
#include "util/secret.h"

#define BODY_CHUNK          (64 * 1024)
#define FINAL_REPLY_TIMEOUT (10 * 60 * 1000) /* RFC 5321 §4.5.3.2.6: 10 minutes for the final reply */

typedef enum SmtpState {
        SMTP_STATE_NEW,
        SMTP_STATE_CREDENTIALS, /* waiting for the account's secret */
        SMTP_STATE_CONNECTING,  /* TCP (and implicit TLS) */
        SMTP_STATE_GREETING,    /* waiting for 220 */
        SMTP_STATE_EHLO,
        SMTP_STATE_STARTTLS,
        SMTP_STATE_HANDSHAKE, /* TLS after STARTTLS */
        SMTP_STATE_AUTH,
        SMTP_STATE_ENVELOPE,  /* MAIL FROM and RCPT TO replies */
        SMTP_STATE_DATA,      /* waiting for 354 */
        SMTP_STATE_GATE,      /* body sent; waiting for the owner to record the commit point durably */
        SMTP_STATE_COMMITTED, /* final dot / BDAT 0 LAST sent: waiting for the verdict */
        SMTP_STATE_QUIT,
        SMTP_STATE_CLOSING,
        _SMTP_STATE_MAX,
} SmtpState;

static const char *const state_names[_SMTP_STATE_MAX] = {
        [SMTP_STATE_NEW] = "new",
        [SMTP_STATE_CREDENTIALS] = "credentials",
        [SMTP_STATE_CONNECTING] = "connecting",
        [SMTP_STATE_GREETING] = "greeting",
        [SMTP_STATE_EHLO] = "ehlo",
        [SMTP_STATE_STARTTLS] = "starttls",
        [SMTP_STATE_HANDSHAKE] = "handshake",
        [SMTP_STATE_AUTH] = "auth",
        [SMTP_STATE_ENVELOPE] = "envelope",
        [SMTP_STATE_DATA] = "data",
        [SMTP_STATE_GATE] = "gate",
        [SMTP_STATE_COMMITTED] = "committed",
        [SMTP_STATE_QUIT] = "quit",
        [SMTP_STATE_CLOSING] = "closing",
};

struct SmtpClient {
        uv_loop_t *loop;
        const Account *acct;
        const SmtpMessage *msg;
        SmtpSendOptions opts;
        SmtpSendFn cb;
        void *userdata;

        SmtpState state;
        NetStream stream;
        bool stream_open; /* net_stream_init() done, closed callback not yet run */
        bool canceled;
        CredRequest *cred_req;
        Cred *cred;
        SaslClient *sasl;
        SmtpReplyParser parser;
        SmtpCaps caps;
        bool use_pipelining, use_chunking;
        bool bdat_reply_due; /* the message's chunk went as a non-LAST BDAT: its reply is still to come */
        size_t n_envelope_sent, n_envelope_replies; /* MAIL is 0, RCPT i is i + 1 */
        bool mail_accepted;

        bool have_result; /* the first verdict wins */
        SmtpSendResult result;
        SmtpRcptResult *rcpts;
        char error[1200];
        char reply[SMTP_REPLY_TEXT_MAX + 32];
        char helo[256];
};

static void enter_state(SmtpClient *c, SmtpState state);

const char *smtp_outcome_to_string(SmtpOutcome o) {
        static const char *const names[] = {"sent", "transient", "permanent", "canceled"};

        return (unsigned)o < ARRAY_SIZE(names) ? names[o] : "unknown";
}

/* "550 5.1.1 text" on one line, for results and logs. */
static void format_reply(const SmtpReply *r, char *buf, size_t size) {
        char *c;
        int n;

        if (r->enhanced.cls)
                n = snprintf(buf, size, "%u %u.%u.%u %s", r->code, r->enhanced.cls, r->enhanced.subject,
                             r->enhanced.detail, r->text);
        else
                n = snprintf(buf, size, "%u %s", r->code, r->text);
        for (c = buf; n > 0 && *c; c++)
                if (*c == '\n' || *c == '\r')
                        *c = ' ';
}

/*
 * Records the verdict (the first one wins) and moves on: QUIT when the
 * connection is still good for it, else closing.
 */
static void finish(SmtpClient *c, SmtpOutcome outcome, NetFailure failure, unsigned code, const char *fmt, ...)
        _printf_(5, 6);
static void finish(SmtpClient *c, SmtpOutcome outcome, NetFailure failure, unsigned code, const char *fmt, ...) {
        bool can_quit = c->stream_open && c->stream.state == NET_STREAM_OPEN && !c->stream.starttls_requested &&
                        failure == NET_FAILURE_NONE && c->state >= SMTP_STATE_GREETING && !c->canceled;
        char what[900];
        va_list ap;

        if (!c->have_result) {
                c->have_result = true;
                c->result.outcome = outcome;
                c->result.failure = failure;
                c->result.code = code;
                va_start(ap, fmt);
                vsnprintf(what, sizeof what, fmt, ap);
                va_end(ap);
                if (outcome == SMTP_OUTCOME_SENT)
                        c->error[0] = '\0';
                else if (c->stream_open && c->stream.where[0])
                        snprintf(c->error, sizeof c->error, "account %s: %s: %s", c->acct->name, c->stream.where, what);
                else
                        snprintf(c->error, sizeof c->error, "account %s: %s", c->acct->name, what);
        }
        enter_state(c, can_quit && c->state != SMTP_STATE_QUIT ? SMTP_STATE_QUIT : SMTP_STATE_CLOSING);
}

/*
 * The verdict for a reply about the message: 5xx permanent; 4xx, and a code
 * out of place (a server bug, not the message's fault), transient.
 */
static void finish_reply(SmtpClient *c, const SmtpReply *r, const char *what) {
        format_reply(r, c->reply, sizeof c->reply);
        finish(c, smtp_reply_is_permanent(r->code) ? SMTP_OUTCOME_PERMANENT : SMTP_OUTCOME_TRANSIENT, NET_FAILURE_NONE,
               r->code, "%s: %s", what, c->reply);
}

/* A reply that ends the session before the message is at stake (greeting, EHLO, STARTTLS): retry later. */
static void finish_session(SmtpClient *c, const SmtpReply *r, const char *what) {
        format_reply(r, c->reply, sizeof c->reply);
        finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_NONE, r->code, "%s: %s", what, c->reply);
}

static void send_text(SmtpClient *c, const char *text, size_t n) {
        /* A failed write fails the stream; its failed callback ends the session. */
        (void)net_stream_write(&c->stream, text, n);
}

static void send_line(SmtpClient *c, const char *fmt, ...) _printf_(2, 3);
static void send_line(SmtpClient *c, const char *fmt, ...) {
        char buf[4096];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof buf - 2)
                n = 0; /* cannot happen with our arguments (addresses are < 1000 octets) */
        memcpy(buf + n, "\r\n", 2);
        send_text(c, buf, (size_t)n + 2);
        sodium_memzero(buf, sizeof buf); /* may have held a SASL response */
}

/* RFC 3461 xtext: printable ASCII except '+' and '=' as is, the rest as "+XX". */
static void xtext(const char *in, char *out, size_t size) {
        size_t o = 0;

        for (const unsigned char *c = (const unsigned char *)in; *c && o + 4 < size; c++) {
                if (*c > 32 && *c < 127 && *c != '+' && *c != '=')
                        out[o++] = (char)*c;
                else
                        o += (size_t)snprintf(out + o, size - o, "+%02X", *c);
        }
        out[o] = '\0';
}

/* The EHLO name: configured, or the host's FQDN, or the sender's domain, or our address literal. */
static void choose_helo(SmtpClient *c) {
        const char *domain = smtp_address_domain(c->msg->mail_from);
        char host[256] = "";
        struct sockaddr_storage ss;
        int len = sizeof ss;

        if (c->opts.helo_name) {
                snprintf(c->helo, sizeof c->helo, "%s", c->opts.helo_name);
                return;
        }
        if (gethostname(host, sizeof host - 1) == 0 && strchr(host, '.') && !strchr(host, ' ')) {
                snprintf(c->helo, sizeof c->helo, "%s", host);
                return;
        }
        if (domain && domain[0] && domain[0] != '[' && !smtp_address_is_utf8(domain)) {
                snprintf(c->helo, sizeof c->helo, "%s", domain);
                return;
        }
        if (uv_tcp_getsockname(&c->stream.tcp.handle, (struct sockaddr *)&ss, &len) == 0) {
                char ip[64] = "";

                if (ss.ss_family == AF_INET6) {
                        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
                        snprintf(c->helo, sizeof c->helo, "[IPv6:%s]", ip);
                } else {
                        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
                        snprintf(c->helo, sizeof c->helo, "[%s]", ip);
                }
                return;
        }
        snprintf(c->helo, sizeof c->helo, "localhost");
}

int smtp_client_check_caps(const SmtpCaps *caps, const SmtpMessage *m, char *err, size_t errsize) {
        if (m->needs_smtputf8 && !caps->smtputf8) {
                snprintf(err, errsize,
                         "the message has a non-ASCII address and the server does not offer SMTPUTF8; nothing sent");
                return SMTP_CLIENT_E_NO_SMTPUTF8;
        }
        if (m->needs_8bitmime && !caps->eightbitmime) {
                snprintf(err, errsize,
                         "the message has 8-bit content and the server does not offer 8BITMIME; "
                         "nothing sent");
                return SMTP_CLIENT_E_NO_8BITMIME;
        }
        if (caps->size && caps->size_max > 0 && m->size > caps->size_max) {
                snprintf(err, errsize, "the message is %zu bytes, the server takes at most %" PRIu64 "; nothing sent",
                         m->size, caps->size_max);
                return SMTP_CLIENT_E_TOO_BIG;
        }
        return 0;
}

/* Sends "AUTH MECH [initial-response]" with the strongest mechanism both sides have. */
static void start_auth(SmtpClient *c) {
        SaslCred sc = {.username = c->cred->username,
                       .secret = c->cred->secret,
                       .is_token = c->cred->is_token,
                       .host = c->acct->smtp.host,
                       .port = c->acct->smtp.port};
        char offered[SMTP_CAPS_AUTH_MAX * (SMTP_CAPS_AUTH_NAME_MAX + 1) + 1] = "";
        _cleanup_secret_ char *ir = NULL;
        int r;

        for (size_t i = 0; i < c->caps.n_auth; i++)
                snprintf(offered + strlen(offered), sizeof offered - strlen(offered), "%s%s", i ? " " : "",
                         c->caps.auth_mechs[i]);
        c->sasl = sasl_client_free(c->sasl);
        r = sasl_client_new(offered, &sc, net_stream_is_secure(&c->stream), NULL, &c->sasl);
        if (r == SASL_E_NEEDS_TLS)
                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_DOWNGRADE, 0,
                              "refusing to send credentials without TLS (offered: %s)", offered);
        if (r != 0)
                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_AUTH, 0, "no usable SASL mechanism (offered: %s)",
                              offered[0] ? offered : "none");
        if (sasl_client_has_initial(c->sasl) && sasl_client_step64(c->sasl, NULL, &ir) != 0)
                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_PROTOCOL, 0, "SASL initial response failed");
        send_line(c, "AUTH %s%s%s", sasl_client_mech_name(c->sasl), ir ? " " : "", ir ? (ir[0] ? ir : "=") : "");
}

/* Sends MAIL FROM and the RCPT TOs: all at once with PIPELINING, else the next one. */
static void send_envelope(SmtpClient *c) {
        const SmtpMessage *m = c->msg;

        while (c->n_envelope_sent <= m->n_rcpts) {
                size_t i = c->n_envelope_sent++;
                char params[1024] = "", buf[512];

                if (i == 0) {
                        if (c->caps.size)
                                snprintf(params + strlen(params), sizeof params - strlen(params), " SIZE=%zu", m->size);
                        if (m->needs_8bitmime)
                                strcat(params, " BODY=8BITMIME");
                        if (m->needs_smtputf8)
                                strcat(params, " SMTPUTF8");
                        if (c->caps.dsn && c->opts.dsn_ret)
                                snprintf(params + strlen(params), sizeof params - strlen(params), " RET=%s",
                                         c->opts.dsn_ret);
                        if (c->caps.dsn && c->opts.dsn_envid) {
                                xtext(c->opts.dsn_envid, buf, 101);
                                snprintf(params + strlen(params), sizeof params - strlen(params), " ENVID=%s", buf);
                        }
                        send_line(c, "MAIL FROM:<%s>%s", m->mail_from, params);
                } else {
                        const char *rcpt = m->rcpts[i - 1];

                        if (c->caps.dsn && c->opts.dsn_notify) {
                                snprintf(params, sizeof params, " NOTIFY=%s", c->opts.dsn_notify);
                                if (!smtp_address_is_utf8(rcpt)) {
                                        xtext(rcpt, buf, sizeof buf);
                                        snprintf(params + strlen(params), sizeof params - strlen(params),
                                                 " ORCPT=rfc822;%s", buf);
                                }
                        }
                        send_line(c, "RCPT TO:<%s>%s", rcpt, params);
                }
                if (!c->use_pipelining)
                        break;
        }
}

/* Writes the dot-stuffed body (DATA), in chunks of BODY_CHUNK; not the final dot. */
static void send_data_body(SmtpClient *c) {
        const char *p = c->msg->data, *end = p + c->msg->size;
        char *chunk = malloc(BODY_CHUNK + 2);
        size_t n = 0;

        if (!chunk)
                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_NONE, 0, "out of memory");
        for (bool bol = true; p < end; p++) {
                if (bol && *p == '.')
                        chunk[n++] = '.'; /* RFC 5321 §4.5.2 */
                chunk[n++] = *p;
                bol = *p == '\n';
                if (n >= BODY_CHUNK) {
                        send_text(c, chunk, n);
                        n = 0;
                }
        }
        send_text(c, chunk, n);
        free(chunk);
}

/* The whole message as one BDAT chunk that is not LAST (RFC 3030): no stuffing; the server answers it, and
 * takes the message only with a "BDAT 0 LAST" after it. */
static void send_bdat(SmtpClient *c) {
        char cmd[64];

        snprintf(cmd, sizeof cmd, "BDAT %zu\r\n", c->msg->size);
        c->bdat_reply_due = true;
        send_text(c, cmd, strlen(cmd));
        for (size_t off = 0; off < c->msg->size; off += BODY_CHUNK)
                send_text(c, c->msg->data + off, c->msg->size - off < BODY_CHUNK ? c->msg->size - off : BODY_CHUNK);
}

static void enter_state(SmtpClient *c, SmtpState state) {
        SmtpState old = c->state;
        char err[300];

        log_acct_debug(c->acct->name, "smtp: %s → %s", state_names[old], state_names[state]);
        c->state = state;
        switch (state) {
        case SMTP_STATE_GREETING:
                net_stream_set_waiting(&c->stream, true);
                break;
        case SMTP_STATE_EHLO:
                memset(&c->caps, 0, sizeof c->caps); /* what was said before TLS is forgotten */
                (void)smtp_reply_parser_expect_ehlo(&c->parser);
                send_line(c, "EHLO %s", c->helo);
                break;
        case SMTP_STATE_STARTTLS:
                send_line(c, "STARTTLS");
                break;
        case SMTP_STATE_HANDSHAKE:
                if (net_stream_starttls(&c->stream) < 0)
                        finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_PROTOCOL, 0, "cannot start TLS");
                break;
        case SMTP_STATE_AUTH:
                start_auth(c);
                break;
        case SMTP_STATE_ENVELOPE:
                /* Last look before anything of the message goes out. */
                if (smtp_client_check_caps(&c->caps, c->msg, err, sizeof err) != 0)
                        return finish(c, SMTP_OUTCOME_PERMANENT, NET_FAILURE_NONE, 0, "%s", err);
                c->use_pipelining = c->caps.pipelining && !c->opts.no_pipelining;
                c->use_chunking = c->caps.chunking && !c->opts.no_chunking;
                send_envelope(c);
                break;
        case SMTP_STATE_DATA:
                send_line(c, "DATA");
                break;
        case SMTP_STATE_GATE:
                /* All of the message but its end goes out now: until the final dot (or BDAT LAST) the
                 * server keeps nothing, so a failure up to there is a plain retry, never a doubt. */
                if (c->opts.timeout_ms == 0)
                        net_stream_set_timeouts(&c->stream, c->stream.connect_timeout_ms, FINAL_REPLY_TIMEOUT, 0);
                if (c->use_chunking)
                        send_bdat(c);
                else
                        send_data_body(c);
                if (!c->opts.committing)
                        return enter_state(c, SMTP_STATE_COMMITTED);
                /* The owner answers with smtp_client_commit_ready(); only a BDAT reply is due meanwhile. */
                net_stream_set_waiting(&c->stream, c->bdat_reply_due);
                c->opts.committing(c, c->userdata);
                break;
        case SMTP_STATE_COMMITTED:
                if (c->opts.timeout_ms == 0)
                        net_stream_set_timeouts(&c->stream, c->stream.connect_timeout_ms, FINAL_REPLY_TIMEOUT, 0);
                if (c->use_chunking)
                        send_text(c, "BDAT 0 LAST\r\n", 13);
                else
                        send_text(c, ".\r\n", 3);
                net_stream_set_waiting(&c->stream, true);
                break;
        case SMTP_STATE_QUIT:
                send_line(c, "QUIT");
                break;
        case SMTP_STATE_CLOSING:
                if (c->cred_req)
                        cred_request_cancel(c->cred_req); /* cred_cb comes back here with the stream never opened */
                else if (c->stream_open)
                        net_stream_close(&c->stream);
                break;
        default:
                break;
        }
}

/* All envelope replies are in: go on with the body, or give the verdict. */
static void envelope_done(SmtpClient *c) {
        size_t n_perm = 0, n_temp = 0;
        const SmtpRcptResult *first_bad = NULL;

        for (size_t i = 0; i < c->msg->n_rcpts; i++) {
                if (smtp_reply_is_positive(c->rcpts[i].code)) {
                        c->result.n_accepted++;
                        continue;
                }
                if (!first_bad)
                        first_bad = &c->rcpts[i];
                if (smtp_reply_is_permanent(c->rcpts[i].code))
                        n_perm++;
                else
                        n_temp++;
        }
        if (!c->mail_accepted)
                return; /* finish() ran on the MAIL reply */
        if (c->result.n_accepted > 0)
                return enter_state(c, c->use_chunking ? SMTP_STATE_GATE : SMTP_STATE_DATA);
        snprintf(c->reply, sizeof c->reply, "%s", first_bad && first_bad->text ? first_bad->text : "");
        finish(c, n_temp == 0 ? SMTP_OUTCOME_PERMANENT : SMTP_OUTCOME_TRANSIENT, NET_FAILURE_NONE,
               first_bad ? first_bad->code : 0, "every recipient was refused: %s", c->reply);
}

static void on_envelope_reply(SmtpClient *c, const SmtpReply *r) {
        size_t i = c->n_envelope_replies++;

        if (i == 0) {
                if (!smtp_reply_is_positive(r->code))
                        return finish_reply(c, r, "MAIL FROM refused");
                c->mail_accepted = true;
        } else if (i <= c->msg->n_rcpts) {
                char text[sizeof c->reply];

                format_reply(r, text, sizeof text);
                c->rcpts[i - 1].code = r->code;
                free(c->rcpts[i - 1].text);
                c->rcpts[i - 1].text = strdup(text);
                if (!smtp_reply_is_positive(r->code))
                        log_acct_notice(c->acct->name, "smtp: recipient %s refused: %s", c->rcpts[i - 1].address, text);
        }
        if (c->n_envelope_replies == c->msg->n_rcpts + 1)
                return envelope_done(c);
        if (c->n_envelope_sent == c->n_envelope_replies)
                send_envelope(c);
}

static void sasl_continue(SmtpClient *c, const SmtpReply *r) {
        _cleanup_secret_ char *resp = NULL;
        int s = sasl_client_step64(c->sasl, r->text, &resp);

        if (s == SASL_E_SERVER) {
                send_line(c, "*");
                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_PROTOCOL, 0,
                              "%s exchange failed: bad server message", sasl_client_mech_name(c->sasl));
        }
        if (s < 0)
                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_PROTOCOL, 0, "SASL: %s", strerror(-s));
        send_line(c, "%s", resp); /* also after SASL_E_REFUSED: the reply that ends the exchange */
}

static void on_reply(SmtpClient *c, const SmtpReply *r) {
        if (c->bdat_reply_due && (c->state == SMTP_STATE_GATE || c->state == SMTP_STATE_COMMITTED)) {
                /* The message's chunk; the verdict comes with the reply to BDAT 0 LAST. */
                c->bdat_reply_due = false;
                if (!smtp_reply_is_positive(r->code))
                        return finish_reply(c, r, "message refused");
                return;
        }
        switch (c->state) {
        case SMTP_STATE_GREETING:
                if (r->code != 220)
                        return finish_session(c, r, "server refused the session");
                return enter_state(c, SMTP_STATE_EHLO);
        case SMTP_STATE_EHLO:
                if (r->code != 250 || !r->caps)
                        return finish_session(c, r, "EHLO refused");
                c->caps = *r->caps;
                if (net_stream_needs_starttls(&c->stream)) {
                        if (!c->caps.starttls) {
                                net_stream_refuse_downgrade(&c->stream, "STARTTLS");
                                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_DOWNGRADE, 0,
                                              "STARTTLS was not offered by the server; refusing to continue "
                                              "without TLS (possible downgrade attack)");
                        }
                        return enter_state(c, SMTP_STATE_STARTTLS);
                }
                return enter_state(c, c->caps.auth && c->cred ? SMTP_STATE_AUTH : SMTP_STATE_ENVELOPE);
        case SMTP_STATE_STARTTLS:
                if (r->code != 220)
                        return finish_session(c, r, "STARTTLS refused");
                return enter_state(c, SMTP_STATE_HANDSHAKE);
        case SMTP_STATE_AUTH:
                if (r->code == 334)
                        return sasl_continue(c, r);
                format_reply(r, c->reply, sizeof c->reply);
                if (r->code == 235) {
                        if (sasl_client_finish(c->sasl) != 0)
                                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_PROTOCOL, 0,
                                              "server claimed success without proving it knows the password");
                        log_acct_debug(c->acct->name, "smtp: authenticated with %s", sasl_client_mech_name(c->sasl));
                        return enter_state(c, SMTP_STATE_ENVELOPE);
                }
                if (smtp_reply_is_permanent(r->code))
                        return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_AUTH, r->code,
                                      "authentication as %s with %s failed: %s", c->cred->username,
                                      sasl_client_mech_name(c->sasl), c->reply);
                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_NONE, r->code, "authentication failed: %s",
                              c->reply);
        case SMTP_STATE_ENVELOPE:
                return on_envelope_reply(c, r);
        case SMTP_STATE_DATA:
                if (r->code != 354)
                        return finish_reply(c, r, "DATA refused");
                return enter_state(c, SMTP_STATE_GATE);
        case SMTP_STATE_COMMITTED:
                format_reply(r, c->reply, sizeof c->reply);
                if (smtp_reply_is_positive(r->code))
                        return finish(c, SMTP_OUTCOME_SENT, NET_FAILURE_NONE, r->code, "%s", c->reply);
                return finish_reply(c, r, "message refused");
        case SMTP_STATE_QUIT:
                return enter_state(c, SMTP_STATE_CLOSING);
        default:
                return; /* late replies while closing */
        }
}

static void line_cb(NetStream *s, const char *line, size_t n, void *userdata) {
        SmtpClient *c = userdata;
        char buf[SMTP_REPLY_LINE_MAX + 4];
        const char *p = buf;
        size_t left, used;
        SmtpEvent ev;
        int r;

        if (n > SMTP_REPLY_LINE_MAX)
                n = SMTP_REPLY_LINE_MAX + 1; /* the parser reports the overlong line */
        memcpy(buf, line, n);
        memcpy(buf + n, "\r\n", 2);
        left = n + 2;
        for (;;) {
                r = smtp_reply_parser_feed(&c->parser, p, left, &used, &ev);
                if (r > 0) {
                        net_stream_fail(s, NET_FAILURE_PROTOCOL, "bad reply: %s", smtp_reply_strerror(r));
                        return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_PROTOCOL, 0, "bad reply: %s",
                                      smtp_reply_strerror(r));
                }
                p += used, left -= used;
                if (ev.kind == SMTP_EVENT_NONE)
                        break;
                if (ev.kind == SMTP_EVENT_REPLY) {
                        on_reply(c, &ev.reply);
                        if (c->state == SMTP_STATE_CLOSING || c->state == SMTP_STATE_HANDSHAKE)
                                break;
                }
        }
        if (c->state != SMTP_STATE_CLOSING && c->stream.state == NET_STREAM_OPEN)
                net_stream_set_waiting(s, true); /* every state past the greeting waits for a reply */
}

/* A transport failure: what it means depends on how far the message got. */
static void transport_failed(SmtpClient *c, int status) {
        const char *why = net_stream_error(&c->stream);
        NetFailure failure = net_stream_failure(&c->stream);

        if (c->canceled)
                return finish(c, c->state == SMTP_STATE_COMMITTED ? SMTP_OUTCOME_TRANSIENT : SMTP_OUTCOME_CANCELED,
                              NET_FAILURE_NONE, 0, "canceled");
        if (c->state == SMTP_STATE_QUIT)
                return enter_state(c, SMTP_STATE_CLOSING); /* the verdict is in; the goodbye does not matter */
        if (c->state == SMTP_STATE_COMMITTED)
                c->result.in_doubt = !c->have_result;
        if (failure == NET_FAILURE_NONE)
                failure = NET_FAILURE_NETWORK;
        /* The stream's message starts with HOST:PORT already. */
        if (!c->have_result) {
                c->have_result = true;
                c->result.outcome = SMTP_OUTCOME_TRANSIENT;
                c->result.failure = failure;
                snprintf(c->error, sizeof c->error, "account %s: %s%s", c->acct->name,
                         why[0] ? why : uv_strerror(status),
                         c->result.in_doubt ? " (after the message was sent: it may have been delivered)" : "");
        }
        enter_state(c, SMTP_STATE_CLOSING);
}

static void connected_cb(NetStream *s, int status, void *userdata) {
        SmtpClient *c = userdata;

        if (status < 0)
                return transport_failed(c, status);
        choose_helo(c);
        enter_state(c, SMTP_STATE_GREETING);
}

static void tls_ready_cb(NetStream *s, int status, void *userdata) {
        SmtpClient *c = userdata;

        if (status < 0)
                return transport_failed(c, status);
        enter_state(c, SMTP_STATE_EHLO);
}

static void failed_cb(NetStream *s, int status, void *userdata) {
        transport_failed(userdata, status);
}

/* The one place a client ends: the caller hears the verdict, then the client is freed. */
static void complete(SmtpClient *c) {
        if (!c->have_result)
                snprintf(c->error, sizeof c->error, "account %s: connection closed", c->acct->name);
        c->result.error = c->error;
        c->result.reply = c->reply;
        c->result.rcpts = c->rcpts;
        c->result.n_rcpts = c->msg->n_rcpts;
        c->cb(c, &c->result, c->userdata);

        /* The caller may have freed the message in its callback: only our own copies from here. */
        for (size_t i = 0; i < c->result.n_rcpts; i++)
                free(c->rcpts[i].text);
        free(c->rcpts);
        c->sasl = sasl_client_free(c->sasl);
        c->cred = cred_free(c->cred);
        free(c);
}

static void closed_cb(NetStream *s, void *userdata) {
        SmtpClient *c = userdata;

        c->stream_open = false;
        complete(c);
}

static const NetStreamOps stream_ops = {
        .connected = connected_cb,
        .tls_ready = tls_ready_cb,
        .line = line_cb,
        .failed = failed_cb,
        .closed = closed_cb,
};

static void connect_now(SmtpClient *c) {
        int r;

        c->state = SMTP_STATE_CONNECTING;
        r = net_stream_init(&c->stream, c->loop, 0, &stream_ops, c);
        if (r < 0) {
                finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_NETWORK, 0, "%s", uv_strerror(r));
                return complete(c);
        }
        c->stream_open = true;
        if (c->opts.timeout_ms)
                net_stream_set_timeouts(&c->stream, c->opts.timeout_ms, c->opts.timeout_ms, 0);
        r = net_stream_connect(&c->stream, c->acct, &c->acct->smtp);
        if (r < 0) {
                net_stream_fail(&c->stream, NET_FAILURE_NETWORK, "%s", strerror(-r));
                finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_NETWORK, 0, "cannot connect: %s", strerror(-r));
        }
}

static void cred_cb(int status, Cred *cred, const char *error, void *userdata) {
        SmtpClient *c = userdata;

        c->cred_req = NULL;
        if (c->canceled || status == UV_ECANCELED) {
                finish(c, SMTP_OUTCOME_CANCELED, NET_FAILURE_NONE, 0, "canceled");
                return complete(c);
        }
        if (status < 0) {
                finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_CREDENTIALS, 0, "no credentials from %s: %s",
                       cred_source_name(c->acct), error ? error : strerror(-status));
                return complete(c);
        }
        c->cred = cred;
        connect_now(c);
}

int smtp_client_send(uv_loop_t *loop, const Account *a, const SmtpMessage *m, const SmtpSendOptions *opts,
                     SmtpSendFn cb, void *userdata, SmtpClient **clientp) {
        SmtpClient *c;
        int r;

        if (a->smtp.proto != SERVER_SMTP || m->n_rcpts == 0)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->rcpts = calloc(m->n_rcpts, sizeof *c->rcpts);
        if (!c->rcpts) {
                free(c);
                return -ENOMEM;
        }
        for (size_t i = 0; i < m->n_rcpts; i++)
                c->rcpts[i].address = m->rcpts[i];
        c->loop = loop;
        c->acct = a;
        c->msg = m;
        if (opts)
                c->opts = *opts;
        c->cb = cb;
        c->userdata = userdata;
        smtp_reply_parser_init(&c->parser);
        c->state = SMTP_STATE_CREDENTIALS;
        r = cred_request_start(loop, a, 0, cred_cb, c, &c->cred_req);
        if (r < 0) {
                free(c->rcpts);
                free(c);
                return r;
        }
        *clientp = c;
        return 0;
}

void smtp_client_commit_ready(SmtpClient *c, int r) {
        if (c->state != SMTP_STATE_GATE || c->have_result)
                return;
        if (r < 0)
                return finish(c, SMTP_OUTCOME_TRANSIENT, NET_FAILURE_NONE, 0,
                              "cannot record that the message is being committed: %s; not sent", strerror(-r));
        enter_state(c, SMTP_STATE_COMMITTED);
}

void smtp_client_cancel(SmtpClient *c) {
        if (c->canceled)
                return;
        c->canceled = true;
        if (c->cred_req)
                return cred_request_cancel(c->cred_req);
        if (c->state == SMTP_STATE_COMMITTED)
                c->result.in_doubt = !c->have_result;
        finish(c, c->state == SMTP_STATE_COMMITTED ? SMTP_OUTCOME_TRANSIENT : SMTP_OUTCOME_CANCELED, NET_FAILURE_NONE,
               0,
               c->state == SMTP_STATE_COMMITTED ? "canceled after the message was sent: it may have been delivered"
                                                : "canceled");
        if (c->state == SMTP_STATE_QUIT)
                enter_state(c, SMTP_STATE_CLOSING);
}
