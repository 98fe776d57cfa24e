/*
 * net-probe: a TEST TOOL, not part of tegami. It drives daemon/net the way a
 * protocol client will: fetch the account's credentials, connect to its
 * IMAP / POP3 / SMTP URL, speak just enough of the protocol for a greeting,
 * CAPABILITY (CAPA, EHLO), STARTTLS (STLS) and one SASL exchange, then log
 * out. Failures go through the shared reconnect policy (backoff.c), so the
 * integration tests can check what a real session would do. Single-threaded
 * on one libuv loop; one Probe on main()'s stack owns everything.
 *
 *   net-probe --config FILE --account NAME [--proto imap|pop3|smtp] [--auth]
 *             [--mech MECH] [--retries N] [--backoff-ms MS] [--cred-timeout MS]
 *             [--timeout MS] [--cred-only]
 *
 * Exit codes: 0 success, 1 network/protocol failure (after the retries),
 * 2 certificate, 3 downgrade (no STARTTLS), 4 authentication refused,
 * 5 credentials unavailable, 64 usage or configuration.
 */
#include <ctype.h>
#include <getopt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/config.h"
#include "daemon/net/backoff.h"
#include "daemon/net/cred.h"
#include "daemon/net/sasl.h"
#include "daemon/net/stream.h"
#include "util/log.h"
#include "util/secret.h"

typedef enum ProbeState {
        PROBE_GREETING,
        PROBE_CAPA,
        PROBE_STARTTLS,
        PROBE_AUTH,
        PROBE_LOGOUT,
        PROBE_DONE,
} ProbeState;

typedef struct Probe {
        uv_loop_t *loop;
        Config *config;
        const Account *acct;
        const ServerUrl *url;
        NetStream stream;
        bool stream_open;
        uv_timer_t retry_timer;
        Backoff backoff;
        Cred *cred;
        SaslClient *sasl;
        CredRequest *cred_req;
        ProbeState state;
        char caps[4096];     /* space-separated capability words, upper case */
        char mechs[1024];
        unsigned attempt, max_attempts;
        bool want_auth, cred_only, refreshed, ok, retry_after_close;
        const char *force_mech;
        uint64_t cred_timeout_ms, timeout_ms;
        int exit_code;
} Probe;

static const int exit_codes[_NET_FAILURE_MAX] = {
        [NET_FAILURE_NETWORK] = 1,     [NET_FAILURE_PROTOCOL] = 1, [NET_FAILURE_CERTIFICATE] = 2,
        [NET_FAILURE_DOWNGRADE] = 3,   [NET_FAILURE_AUTH] = 4,     [NET_FAILURE_CREDENTIALS] = 5,
};

static void start_attempt(Probe *p);

static void send_line(Probe *p, const char *fmt, ...) _printf_(2, 3);
static void send_line(Probe *p, const char *fmt, ...) {
        char buf[8192];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof buf - 2)
                n = 0;
        memcpy(buf + n, "\r\n", 2);
        net_stream_write(&p->stream, buf, (size_t)n + 2);
        sodium_memzero(buf, sizeof buf); /* may hold a SASL response */
}

static bool has_cap(const Probe *p, const char *cap) {
        size_t n = strlen(cap);

        for (const char *c = p->caps; (c = strstr(c, cap)); c += n)
                if ((c == p->caps || c[-1] == ' ') && (c[n] == ' ' || c[n] == '\0'))
                        return true;
        return false;
}

static void add_words(char *dst, size_t size, const char *words, bool upper) {
        size_t len = strlen(dst);

        snprintf(dst + len, size - len, "%s%s", len ? " " : "", words);
        if (upper)
                for (char *c = dst + len; *c; c++)
                        *c = (char)toupper((unsigned char)*c);
}

/* Ends this attempt: logs, then closes the stream; stream_closed_cb decides what next. */
static void attempt_end(Probe *p, int status) {
        if (status == 0) {
                p->ok = true;
                printf("OK %s://%s:%u%s%s%s\n", server_url_scheme(p->url), p->url->host,
                       p->url->port, net_stream_is_tls(&p->stream) ? " tls" : " cleartext",
                       p->sasl ? " auth=" : "", p->sasl ? sasl_client_mech_name(p->sasl) : "");
        }
        net_stream_close(&p->stream);
}

static void fail(Probe *p, NetFailure failure, const char *fmt, ...) _printf_(3, 4);
static void fail(Probe *p, NetFailure failure, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        net_stream_fail(&p->stream, failure, "%s", msg);
        attempt_end(p, UV_EPROTO);
}

/* Sends a SASL response (base64, or "=" / "*" per protocol rules already applied). */
static void sasl_reply(Probe *p, const char *challenge64) {
        char *resp = NULL;
        int r = sasl_client_step64(p->sasl, challenge64, &resp);

        if (r == SASL_E_SERVER) {
                /* Cancel the exchange ("*") and give up: the server is not who it claims to be. */
                send_line(p, "*");
                fail(p, NET_FAILURE_PROTOCOL, "%s exchange failed: bad server message", sasl_client_mech_name(p->sasl));
                return;
        }
        if (r < 0) {
                fail(p, NET_FAILURE_PROTOCOL, "SASL: %s", strerror(-r));
                return;
        }
        send_line(p, "%s", resp); /* also after SASL_E_REFUSED: the reply that ends the exchange */
        secret_free(resp);
}

static void start_auth(Probe *p) {
        SaslCred sc = { .username = p->cred->username, .secret = p->cred->secret, .is_token = p->cred->is_token,
                        .host = p->url->host, .port = p->url->port };
        char *ir = NULL;
        bool inline_ir;
        int r;

        p->sasl = sasl_client_free(p->sasl);
        r = sasl_client_new(p->mechs, &sc, net_stream_is_secure(&p->stream), p->force_mech, &p->sasl);
        if (r == SASL_E_NEEDS_TLS)
                return fail(p, NET_FAILURE_DOWNGRADE, "refusing to send credentials without TLS (offered: %s)", p->mechs);
        if (r != 0)
                return fail(p, NET_FAILURE_AUTH, "no usable SASL mechanism (offered: %s)", p->mechs[0] ? p->mechs : "none");
        p->state = PROBE_AUTH;
        net_stream_set_waiting(&p->stream, true);
        fprintf(stderr, "net-probe: authenticating with %s\n", sasl_client_mech_name(p->sasl));
        /* The initial response goes inline where the protocol allows it (IMAP only with
         * SASL-IR); otherwise the server's first, empty "+" asks for it. Empty is "=". */
        inline_ir = sasl_client_has_initial(p->sasl) && (p->url->proto != SERVER_IMAP || has_cap(p, "SASL-IR"));
        if (inline_ir && sasl_client_step64(p->sasl, NULL, &ir) != 0)
                return fail(p, NET_FAILURE_PROTOCOL, "SASL initial response failed");
        send_line(p, "%s %s%s%s", p->url->proto == SERVER_IMAP ? "A4 AUTHENTICATE" : "AUTH",
                  sasl_client_mech_name(p->sasl), ir ? " " : "", ir ? (ir[0] ? ir : "=") : "");
        secret_free(ir);
}

static void auth_done(Probe *p) {
        if (sasl_client_finish(p->sasl) != 0)
                return fail(p, NET_FAILURE_PROTOCOL, "server claimed success without proving it knows the password");
        fprintf(stderr, "net-probe: authenticated\n");
        p->state = PROBE_LOGOUT;
        send_line(p, "%s", p->url->proto == SERVER_IMAP ? "A5 LOGOUT" : "QUIT");
        attempt_end(p, 0);
}

/* Capabilities are in: STARTTLS if required, then AUTH or done. */
static void after_caps(Probe *p) {
        if (net_stream_needs_starttls(&p->stream)) {
                const char *cap = p->url->proto == SERVER_POP3 ? "STLS" : "STARTTLS";

                if (!has_cap(p, cap)) {
                        net_stream_refuse_downgrade(&p->stream, cap);
                        return attempt_end(p, UV_EPROTO);
                }
                p->state = PROBE_STARTTLS;
                send_line(p, "%s", p->url->proto == SERVER_IMAP ? "A2 STARTTLS" : cap);
                return;
        }
        if (p->want_auth)
                return start_auth(p);
        p->state = PROBE_LOGOUT;
        send_line(p, "%s", p->url->proto == SERVER_IMAP ? "A5 LOGOUT" : "QUIT");
        attempt_end(p, 0);
}

static void request_caps(Probe *p) {
        p->caps[0] = p->mechs[0] = '\0';
        p->state = PROBE_CAPA;
        send_line(p, "%s", p->url->proto == SERVER_IMAP   ? "A1 CAPABILITY"
                           : p->url->proto == SERVER_POP3 ? "CAPA"
                                                          : "EHLO net-probe.localhost");
}

static void on_imap_line(Probe *p, const char *line) {
        switch (p->state) {
        case PROBE_GREETING:
                if (strncmp(line, "* OK", 4) != 0)
                        return fail(p, NET_FAILURE_PROTOCOL, "unexpected greeting: %.80s", line);
                return request_caps(p);
        case PROBE_CAPA:
                if (strncasecmp(line, "* CAPABILITY ", 13) == 0) {
                        add_words(p->caps, sizeof p->caps, line + 13, true);
                        for (const char *c = p->caps; (c = strstr(c, "AUTH=")); c += 5)
                                if (c == p->caps || c[-1] == ' ') {
                                        char mech[64];
                                        sscanf(c + 5, "%63s", mech);
                                        add_words(p->mechs, sizeof p->mechs, mech, true);
                                }
                } else if (strncmp(line, "A1 OK", 5) == 0)
                        after_caps(p);
                else if (strncmp(line, "A1 ", 3) == 0)
                        fail(p, NET_FAILURE_PROTOCOL, "CAPABILITY failed: %.80s", line);
                return;
        case PROBE_STARTTLS:
                if (strncmp(line, "A2 OK", 5) == 0) {
                        if (net_stream_starttls(&p->stream) < 0)
                                fail(p, NET_FAILURE_PROTOCOL, "cannot start TLS");
                } else if (strncmp(line, "A2 ", 3) == 0)
                        fail(p, NET_FAILURE_PROTOCOL, "STARTTLS refused: %.80s", line);
                return;
        case PROBE_AUTH:
                if (line[0] == '+')
                        return sasl_reply(p, line[1] == ' ' ? line + 2 : "");
                if (strncmp(line, "A4 OK", 5) == 0)
                        return auth_done(p);
                if (strncmp(line, "A4 ", 3) == 0)
                        return fail(p, NET_FAILURE_AUTH, "authentication failed: %.120s", line + 3);
                return;
        default:
                return;
        }
}

static void on_pop3_line(Probe *p, const char *line) {
        switch (p->state) {
        case PROBE_GREETING:
                if (strncmp(line, "+OK", 3) != 0)
                        return fail(p, NET_FAILURE_PROTOCOL, "unexpected greeting: %.80s", line);
                return request_caps(p);
        case PROBE_CAPA:
                if (strcmp(line, ".") == 0 || strncmp(line, "-ERR", 4) == 0)
                        return after_caps(p);
                if (strncmp(line, "+OK", 3) == 0)
                        return;
                add_words(p->caps, sizeof p->caps, line, true);
                if (strncasecmp(line, "SASL ", 5) == 0)
                        add_words(p->mechs, sizeof p->mechs, line + 5, true);
                return;
        case PROBE_STARTTLS:
                if (strncmp(line, "+OK", 3) != 0)
                        return fail(p, NET_FAILURE_PROTOCOL, "STLS refused: %.80s", line);
                if (net_stream_starttls(&p->stream) < 0)
                        fail(p, NET_FAILURE_PROTOCOL, "cannot start TLS");
                return;
        case PROBE_AUTH:
                if (strncmp(line, "+OK", 3) == 0)
                        return auth_done(p);
                if (line[0] == '+')
                        return sasl_reply(p, line[1] == ' ' ? line + 2 : "");
                return fail(p, NET_FAILURE_AUTH, "authentication failed: %.120s", line);
        default:
                return;
        }
}

static void on_smtp_line(Probe *p, const char *line) {
        bool last = strlen(line) < 4 || line[3] != '-';
        int code = atoi(line);

        switch (p->state) {
        case PROBE_GREETING:
                if (code != 220)
                        return fail(p, NET_FAILURE_PROTOCOL, "unexpected greeting: %.80s", line);
                if (last)
                        request_caps(p);
                return;
        case PROBE_CAPA:
                if (code != 250)
                        return fail(p, NET_FAILURE_PROTOCOL, "EHLO refused: %.80s", line);
                if (strlen(line) > 4) {
                        add_words(p->caps, sizeof p->caps, line + 4, true);
                        if (strncasecmp(line + 4, "AUTH ", 5) == 0)
                                add_words(p->mechs, sizeof p->mechs, line + 9, true);
                }
                if (last)
                        after_caps(p);
                return;
        case PROBE_STARTTLS:
                if (code != 220)
                        return fail(p, NET_FAILURE_PROTOCOL, "STARTTLS refused: %.80s", line);
                if (last && net_stream_starttls(&p->stream) < 0)
                        fail(p, NET_FAILURE_PROTOCOL, "cannot start TLS");
                return;
        case PROBE_AUTH:
                if (code == 334)
                        return sasl_reply(p, strlen(line) > 4 ? line + 4 : "");
                if (code == 235)
                        return auth_done(p);
                if (code >= 500)
                        return fail(p, NET_FAILURE_AUTH, "authentication failed: %.120s", line);
                return fail(p, NET_FAILURE_PROTOCOL, "authentication error: %.120s", line);
        default:
                return;
        }
}

static void line_cb(NetStream *s, const char *line, size_t n, void *userdata) {
        Probe *p = userdata;

        if (p->url->proto == SERVER_IMAP)
                on_imap_line(p, line);
        else if (p->url->proto == SERVER_POP3)
                on_pop3_line(p, line);
        else
                on_smtp_line(p, line);
}

static void connected_cb(NetStream *s, int status, void *userdata) {
        Probe *p = userdata;

        if (status < 0)
                return attempt_end(p, status);
        p->state = PROBE_GREETING;
        net_stream_set_waiting(s, true);
}

static void tls_ready_cb(NetStream *s, int status, void *userdata) {
        Probe *p = userdata;

        if (status < 0)
                return attempt_end(p, status);
        request_caps(p); /* capabilities from before TLS are forgotten */
}

static void failed_cb(NetStream *s, int status, void *userdata) {
        attempt_end(userdata, status);
}

static void retry_cb(uv_timer_t *t) {
        start_attempt(container_of(t, Probe, retry_timer));
}

/* The attempt is over and its stream gone: report, then retry or stop. */
static void stream_closed_cb(NetStream *s, void *userdata) {
        Probe *p = userdata;
        NetFailure failure = net_stream_failure(s);
        uint64_t delay = 0;

        p->stream_open = false;
        if (p->ok) {
                p->exit_code = 0;
                uv_close((uv_handle_t *)&p->retry_timer, NULL);
                return;
        }
        log_acct_error(p->acct->name, "%s", net_stream_error(s));
        /* An OAuth token may just have expired: fetch a fresh one once, at once. */
        if (failure == NET_FAILURE_AUTH && p->cred && p->cred->is_token && !p->refreshed) {
                p->refreshed = true;
                p->cred = cred_free(p->cred);
                fprintf(stderr, "net-probe: refreshing the OAuth 2 token\n");
                start_attempt(p);
                return;
        }
        p->exit_code = exit_codes[failure] ? exit_codes[failure] : 1;
        if (backoff_next(&p->backoff, failure, &delay) == BACKOFF_STOP) {
                log_acct_error(p->acct->name, "account error (%s failure): not retrying", net_failure_to_string(failure));
                uv_close((uv_handle_t *)&p->retry_timer, NULL);
                return;
        }
        if (p->attempt >= p->max_attempts) {
                uv_close((uv_handle_t *)&p->retry_timer, NULL);
                return;
        }
        fprintf(stderr, "net-probe: retrying in %llu ms\n", (unsigned long long)delay);
        uv_timer_start(&p->retry_timer, retry_cb, delay, 0);
}

static const NetStreamOps probe_ops = {
        .connected = connected_cb,
        .tls_ready = tls_ready_cb,
        .line = line_cb,
        .failed = failed_cb,
        .closed = stream_closed_cb,
};

static void connect_now(Probe *p) {
        int r;

        r = net_stream_init(&p->stream, p->loop, 0, &probe_ops, p);
        if (r < 0) {
                fprintf(stderr, "net-probe: %s\n", uv_strerror(r));
                p->exit_code = 1;
                uv_close((uv_handle_t *)&p->retry_timer, NULL);
                return;
        }
        p->stream_open = true;
        net_stream_set_timeouts(&p->stream, p->timeout_ms, p->timeout_ms, 0);
        r = net_stream_connect(&p->stream, p->acct, p->url);
        if (r < 0) {
                net_stream_fail(&p->stream, NET_FAILURE_NETWORK, "%s", strerror(-r));
                net_stream_close(&p->stream);
        }
}

static void cred_cb(int status, Cred *cred, const char *error, void *userdata) {
        Probe *p = userdata;

        p->cred_req = NULL;
        if (status < 0) {
                log_acct_error(p->acct->name, "%s", error);
                log_acct_error(p->acct->name, "account error (credentials failure): not retrying");
                p->exit_code = exit_codes[NET_FAILURE_CREDENTIALS];
                uv_close((uv_handle_t *)&p->retry_timer, NULL);
                return;
        }
        p->cred = cred;
        if (p->cred_only) {
                printf("OK credentials from %s (%zu bytes)\n", cred_source_name(p->acct), strlen(cred->secret));
                p->exit_code = 0;
                uv_close((uv_handle_t *)&p->retry_timer, NULL);
                return;
        }
        connect_now(p);
}

static void start_attempt(Probe *p) {
        int r;

        p->attempt++;
        p->state = PROBE_GREETING;
        fprintf(stderr, "net-probe: attempt %u to %s://%s:%u\n", p->attempt, server_url_scheme(p->url), p->url->host,
                p->url->port);
        if ((p->want_auth || p->cred_only) && !p->cred) {
                r = cred_request_start(p->loop, p->acct, p->cred_timeout_ms, cred_cb, p, &p->cred_req);
                if (r < 0) {
                        fprintf(stderr, "net-probe: %s\n", strerror(-r));
                        p->exit_code = 5;
                        uv_close((uv_handle_t *)&p->retry_timer, NULL);
                }
                return;
        }
        connect_now(p);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },   { "account", required_argument, NULL, 'a' },
                { "proto", required_argument, NULL, 'p' },    { "auth", no_argument, NULL, 'A' },
                { "mech", required_argument, NULL, 'm' },     { "retries", required_argument, NULL, 'r' },
                { "backoff-ms", required_argument, NULL, 'b' }, { "cred-timeout", required_argument, NULL, 'T' },
                { "timeout", required_argument, NULL, 't' },  { "cred-only", no_argument, NULL, 'C' },
                {},
        };
        const char *config_path = NULL, *account = NULL, *proto = "imap";
        Probe p = { .max_attempts = 1, .timeout_ms = 10000, .exit_code = 1 };
        uint64_t backoff_ms = 100;
        _cleanup_free_ char *err = NULL;
        uv_loop_t loop;
        int c, r;

        log_setup(argv[0]);
        if (sodium_init() < 0)
                return 70;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'c': config_path = optarg; break;
                case 'a': account = optarg; break;
                case 'p': proto = optarg; break;
                case 'A': p.want_auth = true; break;
                case 'm': p.force_mech = optarg; break;
                case 'r': p.max_attempts = 1 + (unsigned)atoi(optarg); break;
                case 'b': backoff_ms = strtoull(optarg, NULL, 10); break;
                case 'T': p.cred_timeout_ms = strtoull(optarg, NULL, 10); break;
                case 't': p.timeout_ms = strtoull(optarg, NULL, 10); break;
                case 'C': p.cred_only = true; break;
                default: return 64;
                }
        }
        if (!config_path || !account) {
                fprintf(stderr, "usage: net-probe --config FILE --account NAME [--proto imap|pop3|smtp] [--auth] ...\n");
                return 64;
        }
        r = config_load(config_path, &p.config, &err);
        if (r < 0) {
                fprintf(stderr, "net-probe: %s\n", err ? err : strerror(-r));
                return 64;
        }
        p.acct = config_find_account(p.config, account);
        if (!p.acct) {
                fprintf(stderr, "net-probe: no account %s\n", account);
                config_free(p.config);
                return 64;
        }
        p.url = strcmp(proto, "pop3") == 0 ? &p.acct->pop3 : strcmp(proto, "smtp") == 0 ? &p.acct->smtp : &p.acct->imap;
        if (p.url->proto == SERVER_NONE && !p.cred_only) {
                fprintf(stderr, "net-probe: account %s has no %s URL\n", account, proto);
                config_free(p.config);
                return 64;
        }
        backoff_init(&p.backoff, backoff_ms, backoff_ms * 16);

        uv_loop_init(&loop);
        p.loop = &loop;
        uv_timer_init(&loop, &p.retry_timer);
        start_attempt(&p);
        uv_run(&loop, UV_RUN_DEFAULT);
        r = uv_loop_close(&loop);
        if (r < 0)
                fprintf(stderr, "net-probe: loop still has handles: %s\n", uv_strerror(r));
        p.sasl = sasl_client_free(p.sasl);
        p.cred = cred_free(p.cred);
        config_free(p.config);
        return p.exit_code;
}
