/*
 * The transport a protocol client (IMAP, POP3, SMTP) stands on: connect to an
 * account's server URL, implicit TLS or a STARTTLS upgrade on request, write
 * bytes, and read whole lines or raw runs (literals, bodies) through callbacks.
 * It moves bytes and interprets none. A session embeds one NetStream.
 *
 * Callbacks (all get the NetStream and the userdata given to net_stream_init):
 * - connected: once per net_stream_connect() that returned 0. status 0 means
 *   connected, and for implicit TLS the handshake is done and the peer verified.
 * - tls_ready: once per net_stream_starttls() that returned 0.
 * - line / raw: incoming data, while the stream is open.
 * - failed: once, when an open stream breaks (EOF, reset, timeout, TLS error,
 *   overlong line) while neither connected nor tls_ready is pending (they get
 *   the failure instead).
 * - closed: once, after net_stream_close(), when every handle is closed; the
 *   owner may free the memory holding the NetStream from there.
 * A pending connected / tls_ready gets UV_ECANCELED from inside net_stream_close().
 * After any failure net_stream_error() says "HOST:PORT: reason" and
 * net_stream_failure() whether to retry (backoff.h); the owner logs it with
 * log_acct_error(account, "%s", net_stream_error(s)), which adds the account
 * name, and closes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/net/backoff.h"
#include "daemon/net/line-reader.h"
#include "daemon/net/tcp.h"
#include "daemon/net/tls.h"
#include "util/macro.h"

#define NET_STREAM_MAX_LINE_DEFAULT (64 * 1024)

typedef struct NetStream NetStream;

typedef struct NetStreamOps {
        void (*connected)(NetStream *s, int status, void *userdata);
        void (*tls_ready)(NetStream *s, int status, void *userdata);
        /* One line without CRLF, NUL-terminated, n bytes. May write, read_raw, starttls or close. */
        void (*line)(NetStream *s, const char *line, size_t n, void *userdata);
        /* The next chunk of a raw run asked for with net_stream_read_raw(); done on the last. */
        void (*raw)(NetStream *s, const char *data, size_t n, bool done, void *userdata);
        void (*failed)(NetStream *s, int status, void *userdata);
        void (*closed)(NetStream *s, void *userdata);
        /* May be NULL. A write reached the socket, so net_stream_write_queue_size() went down: an
         * upload held back by that size (back-pressure) may write more. Only while the stream is open. */
        void (*written)(NetStream *s, void *userdata);
} NetStreamOps;

typedef enum NetStreamState {
        NET_STREAM_NEW,
        NET_STREAM_CONNECTING,
        NET_STREAM_HANDSHAKE,
        NET_STREAM_OPEN,
        NET_STREAM_FAILED,
        NET_STREAM_CLOSING,
        NET_STREAM_CLOSED,
} NetStreamState;

struct NetStream {
        uv_loop_t *loop;
        const NetStreamOps *ops;
        void *userdata;
        NetTcp tcp;
        uv_timer_t timer;           /* read / idle timeout */
        NetTls *tls;
        LineReader reader;
        NetStreamState state;
        ServerTls mode;
        bool tls_none;              /* `tls = none`: plain TCP to a loopback peer */
        bool connect_pending, tls_pending, starttls_requested, tls_done, waiting, in_feed;
        unsigned n_open;            /* tcp + timer still to close */
        uint64_t connect_timeout_ms, read_timeout_ms, idle_timeout_ms;
        char *account, *host, *ca_file, *fingerprint;
        uint16_t port;
        char where[280];            /* "host:port" for messages */
        char *rbuf, *pbuf;          /* socket read buffer, TLS plaintext buffer */
        NetFailure failure;
        int status;
        char error[800];
};

/*
 * Sets s up on loop; max_line 0 = NET_STREAM_MAX_LINE_DEFAULT. From here s
 * must be closed with net_stream_close(). Returns 0 or a UV_E* code.
 */
int net_stream_init(NetStream *s, uv_loop_t *loop, size_t max_line, const NetStreamOps *ops, void *userdata);

/* Timeouts in ms, 0 = none. Defaults: connect 30 s per address, read 120 s, idle none. */
void net_stream_set_timeouts(NetStream *s, uint64_t connect_ms, uint64_t read_ms, uint64_t idle_ms);

/*
 * Connects to url (one of a's imap / pop3 / smtp) with a's ca_file,
 * tls_fingerprint and tls settings, which are copied. Returns 0 (ops->connected
 * follows) or a negative errno.
 */
int net_stream_connect(NetStream *s, const Account *a, const ServerUrl *url);

/*
 * True when the protocol must now negotiate STARTTLS/STLS: a plain URL
 * without `tls = none`, and TLS not yet started. If the server does not offer
 * it, call net_stream_refuse_downgrade() and never go on in clear.
 */
bool net_stream_needs_starttls(const NetStream *s);

/*
 * Upgrades to TLS after the server accepted STARTTLS/STLS; call it from the
 * line callback of that reply. Bytes the server sent after the reply are an
 * injection attempt and fail the stream. Returns 0 (ops->tls_ready follows) or
 * UV_EINVAL when the stream is not open in plain text.
 */
int net_stream_starttls(NetStream *s);

/* Records "STARTTLS was not offered" (what: "STARTTLS", "STLS") as a downgrade failure; returns UV_EPROTO. */
int net_stream_refuse_downgrade(NetStream *s, const char *what);

/*
 * Records a failure the protocol found (refused credentials, bad reply): the
 * stream stops reading and net_stream_error() gives "HOST:PORT: " + the text.
 * No callback follows. Returns the status to hand up: UV_EACCES for
 * authentication and credential failures, UV_EPROTO otherwise.
 */
int net_stream_fail(NetStream *s, NetFailure failure, const char *fmt, ...) _printf_(3, 4);

/* TLS is up (implicit or after STARTTLS) and the peer verified. */
bool net_stream_is_tls(const NetStream *s);

/* Safe to send secrets: TLS, or `tls = none` to a loopback peer. SASL's "secure". */
bool net_stream_is_secure(const NetStream *s);

/* Queues n bytes (copied; through TLS when up). Returns 0, UV_ENOTCONN or -ENOMEM. */
int net_stream_write(NetStream *s, const void *data, size_t n);

/* Bytes queued and not yet written to the socket (back-pressure for big uploads). */
size_t net_stream_write_queue_size(const NetStream *s);

/* The next n bytes go to ops->raw instead of lines; call from the line callback. Returns 0 or a negative errno. */
int net_stream_read_raw(NetStream *s, uint64_t n);

/* A reply is expected: the read timeout applies; otherwise the idle timeout. Restarts the timer. */
void net_stream_set_waiting(NetStream *s, bool waiting);

/* "HOST:PORT: reason" of the failure, "" if none. */
const char *net_stream_error(const NetStream *s);
NetFailure net_stream_failure(const NetStream *s);

/* Closes; ops->closed follows once. Safe twice (until closed has run). */
void net_stream_close(NetStream *s);
