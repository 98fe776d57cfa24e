/*
 * TLS through OpenSSL memory BIOs. The engine owns one SSL_CTX and one SSL
 * per connection (a connection's trust settings come from its account), the
 * read BIO that ciphertext from the socket goes into and the write BIO that
 * ciphertext for the socket comes out of. The caller (stream.c) moves bytes
 * between those BIOs and the socket on the libuv thread.
 *
 * Verification: TLS 1.2 minimum; the chain must lead to the system store or
 * the account's ca_file; the host is checked by X509_VERIFY_PARAM (DNS name
 * with SNI, or IP address literal without SNI as RFC 6066 wants). A SHA-256 pin
 * replaces chain and name checks by an exact match on the leaf certificate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/net/tls.h"

struct NetTls {
        SSL_CTX *ctx;
        SSL *ssl;
        BIO *rbio; /* network -> SSL; owned by ssl */
        BIO *wbio; /* SSL -> network; owned by ssl */
        char host[256];
        char fingerprint[65];
        bool done;
};

/* The first queued OpenSSL error as text, or fallback; clears the queue. */
static const char *openssl_reason(char *buf, size_t size, const char *fallback) {
        unsigned long e = ERR_get_error();

        if (!e) {
                snprintf(buf, size, "%s", fallback);
                return buf;
        }
        ERR_error_string_n(e, buf, size);
        ERR_clear_error();
        return buf;
}

static bool is_ip_literal(const char *host) {
        unsigned char a[16];
        return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/*
 * The system's trust anchors. The hashed certificate directory is searched
 * only for the issuers a chain needs; the default bundle file would be
 * parsed whole (some 140 certificates, milliseconds of CPU) at every
 * connection. SSL_CERT_FILE, or a system without the directory, gets
 * OpenSSL's defaults.
 */
static void load_system_trust(SSL_CTX *ctx) {
        const char *dir = getenv(X509_get_default_cert_dir_env());
        struct stat st;

        if (!dir)
                dir = X509_get_default_cert_dir();
        if (!getenv(X509_get_default_cert_file_env()) && dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
            SSL_CTX_load_verify_dir(ctx, dir) == 1)
                return;
        if (SSL_CTX_set_default_verify_paths(ctx) != 1)
                ERR_clear_error(); /* no system store: ca_file or a pin may still do */
}

/*
 * Contexts by ca_file, kept for the life of the process (loop thread only):
 * building one parses the trust anchors, which is most of the CPU of a short
 * sync. net_tls_flush_contexts() drops them (a reload may point at new files).
 */
#define CTX_CACHE_MAX 8
static struct {
        char *ca_file; /* NULL: the system's anchors only */
        SSL_CTX *ctx;
        bool used;
} ctx_cache[CTX_CACHE_MAX];

void net_tls_flush_contexts(void) {
        for (size_t i = 0; i < CTX_CACHE_MAX; i++) {
                SSL_CTX_free(ctx_cache[i].ctx);
                free(ctx_cache[i].ca_file);
                ctx_cache[i].ctx = NULL;
                ctx_cache[i].ca_file = NULL;
                ctx_cache[i].used = false;
        }
}

static bool same_file(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* A new reference to the context for ca_file: from the cache, or built (and cached when there is room). */
static int ctx_get(const char *ca_file, SSL_CTX **ctxp, char *err, size_t errsize) {
        char reason[256];
        SSL_CTX *ctx;

        for (size_t i = 0; i < CTX_CACHE_MAX; i++)
                if (ctx_cache[i].used && same_file(ctx_cache[i].ca_file, ca_file)) {
                        SSL_CTX_up_ref(ctx_cache[i].ctx);
                        *ctxp = ctx_cache[i].ctx;
                        return 0;
                }
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
                return -ENOMEM;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
        load_system_trust(ctx);
        if (ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
                snprintf(err, errsize, "cannot load ca_file %s: %s", ca_file,
                         openssl_reason(reason, sizeof reason, "unreadable"));
                SSL_CTX_free(ctx);
                return NET_TLS_FAILED;
        }
        for (size_t i = 0; i < CTX_CACHE_MAX; i++)
                if (!ctx_cache[i].used) {
                        char *name = ca_file ? strdup(ca_file) : NULL;

                        if (ca_file && !name)
                                break;
                        ctx_cache[i].ca_file = name;
                        ctx_cache[i].ctx = ctx;
                        ctx_cache[i].used = true;
                        SSL_CTX_up_ref(ctx);
                        break;
                }
        *ctxp = ctx;
        return 0;
}

int net_tls_new(const NetTlsConfig *cfg, NetTls **retp, char *err, size_t errsize) {
        _cleanup_(net_tls_freep) NetTls *t = NULL;
        X509_VERIFY_PARAM *param;
        int r;

        ERR_clear_error();
        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        snprintf(t->host, sizeof t->host, "%s", cfg->host);
        if (cfg->fingerprint)
                snprintf(t->fingerprint, sizeof t->fingerprint, "%s", cfg->fingerprint);

        r = ctx_get(cfg->ca_file, &t->ctx, err, errsize);
        if (r != 0)
                return r;

        t->ssl = SSL_new(t->ctx);
        t->rbio = BIO_new(BIO_s_mem());
        t->wbio = BIO_new(BIO_s_mem());
        if (!t->ssl || !t->rbio || !t->wbio) {
                BIO_free(t->rbio);
                BIO_free(t->wbio);
                t->rbio = t->wbio = NULL;
                return -ENOMEM;
        }
        /* An empty read BIO means "try again", not end of file. */
        BIO_set_mem_eof_return(t->rbio, -1);
        SSL_set_bio(t->ssl, t->rbio, t->wbio);
        SSL_set_connect_state(t->ssl);

        param = SSL_get0_param(t->ssl);
        if (is_ip_literal(cfg->host)) {
                if (X509_VERIFY_PARAM_set1_ip_asc(param, cfg->host) != 1)
                        return -ENOMEM;
        } else {
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                if (SSL_set_tlsext_host_name(t->ssl, cfg->host) != 1 || SSL_set1_host(t->ssl, cfg->host) != 1)
                        return -ENOMEM;
        }
        /* With a pin, verification still runs (its result is ignored) and the pin decides. */
        SSL_set_verify(t->ssl, t->fingerprint[0] ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);

        *retp = TAKE_PTR(t);
        return 0;
}

NetTls *net_tls_free(NetTls *t) {
        if (!t)
                return NULL;
        SSL_free(t->ssl); /* frees both BIOs */
        SSL_CTX_free(t->ctx);
        free(t);
        return NULL;
}

int net_tls_feed(NetTls *t, const void *data, size_t n) {
        if (n == 0)
                return 0;
        if (BIO_write(t->rbio, data, (int)n) != (int)n)
                return -ENOMEM;
        return 0;
}

/* Compares the leaf's SHA-256 to the pin; on mismatch writes the reason. */
static bool check_pin(NetTls *t, char *err, size_t errsize) {
        const X509 *cert = SSL_get0_peer_certificate(t->ssl);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];

        if (!cert || X509_digest(cert, EVP_sha256(), md, &len) != 1) {
                snprintf(err, errsize, "certificate of %s: none presented, cannot check tls_fingerprint", t->host);
                return false;
        }
        for (unsigned i = 0; i < len; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (strcmp(hex, t->fingerprint) == 0)
                return true;
        snprintf(err, errsize, "certificate of %s rejected: its SHA-256 fingerprint %s does not match tls_fingerprint",
                 t->host, hex);
        return false;
}

int net_tls_handshake(NetTls *t, NetFailure *failurep, char *err, size_t errsize) {
        char reason[256];
        long verify;
        int r;

        if (t->done)
                return 0;
        ERR_clear_error();
        r = SSL_do_handshake(t->ssl);
        if (r == 1) {
                if (t->fingerprint[0] && !check_pin(t, err, errsize)) {
                        *failurep = NET_FAILURE_CERTIFICATE;
                        return NET_TLS_FAILED;
                }
                t->done = true;
                return 0;
        }
        switch (SSL_get_error(t->ssl, r)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
                return NET_TLS_AGAIN;
        default:
                break;
        }
        verify = SSL_get_verify_result(t->ssl);
        if (!t->fingerprint[0] && verify != X509_V_OK) {
                *failurep = NET_FAILURE_CERTIFICATE;
                snprintf(err, errsize, "certificate of %s rejected: %s", t->host,
                         X509_verify_cert_error_string(verify));
                ERR_clear_error();
        } else {
                *failurep = NET_FAILURE_PROTOCOL;
                snprintf(err, errsize, "TLS handshake with %s failed: %s", t->host,
                         openssl_reason(reason, sizeof reason, "connection closed"));
        }
        return NET_TLS_FAILED;
}

int net_tls_read(NetTls *t, char *buf, size_t size, size_t *np, char *err, size_t errsize) {
        char reason[256];
        size_t n = 0;
        int r;

        ERR_clear_error();
        r = SSL_read_ex(t->ssl, buf, size, &n);
        if (r == 1) {
                *np = n;
                return 0;
        }
        switch (SSL_get_error(t->ssl, r)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
                return NET_TLS_AGAIN;
        case SSL_ERROR_ZERO_RETURN:
                return NET_TLS_CLOSED;
        default:
                snprintf(err, errsize, "TLS error from %s: %s", t->host,
                         openssl_reason(reason, sizeof reason, "connection closed"));
                return NET_TLS_FAILED;
        }
}

int net_tls_write(NetTls *t, const void *data, size_t n) {
        size_t written = 0;

        if (n == 0)
                return 0;
        ERR_clear_error();
        /* Memory BIOs grow, so one call writes everything once the handshake is done. */
        if (!t->done || SSL_write_ex(t->ssl, data, n, &written) != 1 || written != n) {
                ERR_clear_error();
                return NET_TLS_FAILED;
        }
        return 0;
}

size_t net_tls_take_output(NetTls *t, char *buf, size_t size) {
        int r;

        if (BIO_ctrl_pending(t->wbio) == 0)
                return 0;
        r = BIO_read(t->wbio, buf, (int)(size > INT32_MAX ? INT32_MAX : size));
        return r > 0 ? (size_t)r : 0;
}

const char *net_tls_describe(NetTls *t, char *buf, size_t size) {
        snprintf(buf, size, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
        return buf;
}
