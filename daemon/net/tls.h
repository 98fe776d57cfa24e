/*
 * A TLS client engine over OpenSSL memory BIOs: ciphertext in from the socket,
 * plaintext out to the reader, and the other way round. It never touches a
 * socket, so the same code serves implicit TLS and a STARTTLS upgrade.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "daemon/net/backoff.h"
#include "util/macro.h"

typedef struct NetTls NetTls;

typedef struct NetTlsConfig {
        const char *host;         /* verified name or IP literal; also SNI for names */
        const char *ca_file;      /* extra trust anchors, NULL for the system store only */
        const char *fingerprint;  /* 64 lowercase hex digits of the leaf's SHA-256, or NULL */
} NetTlsConfig;

/* Positive result codes. */
enum {
        NET_TLS_AGAIN = 1,  /* needs more ciphertext from the peer */
        NET_TLS_CLOSED,     /* the peer sent close_notify */
        NET_TLS_FAILED,     /* see *failurep and the reason written to err */
};

/*
 * Creates a client for cfg: TLS 1.2 at least, the peer verified against the
 * system store plus ca_file and cfg->host. With a fingerprint the leaf must
 * match it and is then trusted as is (for self-signed servers): chain and name
 * are not checked. Returns 0, NET_TLS_FAILED (reason in err, e.g. an
 * unreadable ca_file) or -ENOMEM.
 */
int net_tls_new(const NetTlsConfig *cfg, NetTls **retp, char *err, size_t errsize);

/* Frees t; accepts NULL; returns NULL. */
NetTls *net_tls_free(NetTls *t);

/* Forgets the TLS contexts kept between connections (after a reload: ca_file may have changed). */
void net_tls_flush_contexts(void);
DEFINE_CLEANUP_FUNC(NetTls *, net_tls_free);

/* Hands ciphertext read from the socket to the engine. Returns 0 or -ENOMEM. */
int net_tls_feed(NetTls *t, const void *data, size_t n);

/*
 * Advances the handshake: 0 when it is complete and the peer verified,
 * NET_TLS_AGAIN, or NET_TLS_FAILED with *failurep (certificate or protocol) and
 * a reason naming the host in err. Send net_tls_take_output() after each call.
 */
int net_tls_handshake(NetTls *t, NetFailure *failurep, char *err, size_t errsize);

/*
 * Decrypts into buf: 0 with *np > 0 bytes, NET_TLS_AGAIN when nothing is
 * ready, NET_TLS_CLOSED, or NET_TLS_FAILED with the reason in err.
 */
int net_tls_read(NetTls *t, char *buf, size_t size, size_t *np, char *err, size_t errsize);

/* Encrypts all of data (after the handshake). Returns 0 or NET_TLS_FAILED. */
int net_tls_write(NetTls *t, const void *data, size_t n);

/* Ciphertext waiting to be sent: copies up to size bytes into buf, returns how many (0 = none). */
size_t net_tls_take_output(NetTls *t, char *buf, size_t size);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for logs. */
const char *net_tls_describe(NetTls *t, char *buf, size_t size);
