/*
 * SASL client mechanisms (RFC 4422): PLAIN (RFC 4616), LOGIN, SCRAM-SHA-1 and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), XOAUTH2 (Google's), OAUTHBEARER
 * (RFC 7628). Pure code: no I/O, no logging; OpenSSL does the hashing, libsodium
 * the base64.
 *
 * The client state lives in sodium_malloc'd memory because it holds the
 * salted password and SCRAM keys; every response is returned in secret memory
 * too, and the protocol module frees it with secret_free() once written.
 * SCRAM passwords are used as given (no SASLprep): ASCII passwords, the
 * common case, are unaffected.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/net/sasl.h"
#include "util/secret.h"

#define SCRAM_MIN_ITERATIONS 4096
#define SCRAM_MAX_ITERATIONS 1000000 /* a hostile server must not make us spin */
#define SCRAM_NONCE_MAX 128
#define SCRAM_MSG_MAX 1024

typedef enum SaslState {
        SASL_STATE_START,     /* nothing sent yet */
        SASL_STATE_SENT,      /* PLAIN/OAuth: initial sent; LOGIN: username sent; SCRAM: client-first sent */
        SASL_STATE_PROOF,     /* LOGIN: password sent; SCRAM: client-final sent */
        SASL_STATE_DONE,      /* complete (SCRAM: server signature verified) */
        SASL_STATE_FAILED,
} SaslState;

struct SaslClient {
        SaslMech mech;
        SaslState state;
        SaslCred cred;
        char nonce[SCRAM_NONCE_MAX + 1];
        char client_first_bare[SCRAM_MSG_MAX];
        unsigned char server_signature[EVP_MAX_MD_SIZE];
};

static const char *const mech_names[_SASL_MECH_MAX] = {
        [SASL_MECH_NONE] = "NONE",
        [SASL_MECH_LOGIN] = "LOGIN",
        [SASL_MECH_PLAIN] = "PLAIN",
        [SASL_MECH_SCRAM_SHA_1] = "SCRAM-SHA-1",
        [SASL_MECH_SCRAM_SHA_256] = "SCRAM-SHA-256",
        [SASL_MECH_XOAUTH2] = "XOAUTH2",
        [SASL_MECH_OAUTHBEARER] = "OAUTHBEARER",
};

/* Preference order, strongest first. */
static const SaslMech password_mechs[] = { SASL_MECH_SCRAM_SHA_256, SASL_MECH_SCRAM_SHA_1, SASL_MECH_PLAIN,
                                           SASL_MECH_LOGIN };
static const SaslMech token_mechs[] = { SASL_MECH_OAUTHBEARER, SASL_MECH_XOAUTH2 };

const char *sasl_mech_name(SaslMech m) {
        return m < _SASL_MECH_MAX ? mech_names[m] : "?";
}

const char *sasl_client_mech_name(const SaslClient *c) {
        return sasl_mech_name(c->mech);
}

SaslMech sasl_client_mech(const SaslClient *c) {
        return c->mech;
}

bool sasl_client_has_initial(const SaslClient *c) {
        return c->mech != SASL_MECH_LOGIN;
}

static bool mech_is_scram(SaslMech m) {
        return m == SASL_MECH_SCRAM_SHA_1 || m == SASL_MECH_SCRAM_SHA_256;
}

/* True when name appears as a word of the space-separated list (case-insensitive). */
static bool list_has(const char *list, const char *name) {
        size_t n = strlen(name);

        for (const char *p = list; *p;) {
                size_t len;

                p += strspn(p, " \t");
                len = strcspn(p, " \t");
                if (len == n && strncasecmp(p, name, n) == 0)
                        return true;
                p += len;
        }
        return false;
}

int sasl_client_new(const char *offered, const SaslCred *cred, bool secure, const char *force, SaslClient **retp) {
        const SaslMech *order = cred->is_token ? token_mechs : password_mechs;
        size_t n_order = cred->is_token ? ARRAY_SIZE(token_mechs) : ARRAY_SIZE(password_mechs);
        bool refused_for_tls = false;
        SaslMech pick = SASL_MECH_NONE;
        SaslClient *c;

        for (size_t i = 0; i < n_order && pick == SASL_MECH_NONE; i++) {
                if (force && strcasecmp(force, mech_names[order[i]]) != 0)
                        continue;
                if (!list_has(offered, mech_names[order[i]]))
                        continue;
                /* Only SCRAM keeps the secret off the wire. */
                if (!secure && !mech_is_scram(order[i])) {
                        refused_for_tls = true;
                        continue;
                }
                pick = order[i];
        }
        if (pick == SASL_MECH_NONE)
                return refused_for_tls ? SASL_E_NEEDS_TLS : SASL_E_NO_MECH;

        c = sodium_malloc(sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (SaslClient){ .mech = pick, .cred = *cred };
        *retp = c;
        return 0;
}

SaslClient *sasl_client_free(SaslClient *c) {
        if (c)
                sodium_free(c); /* wipes */
        return NULL;
}

int sasl_client_set_nonce(SaslClient *c, const char *nonce) {
        if (strlen(nonce) > SCRAM_NONCE_MAX || strchr(nonce, ','))
                return -EINVAL;
        strcpy(c->nonce, nonce);
        return 0;
}

/* Builds a response of n bytes in secret memory from the parts (ptr, len pairs, ended by NULL). */
static int make_response(char **responsep, size_t *np, size_t n_parts, const char *const *parts,
                         const size_t *lens) {
        size_t n = 0;
        char *r;

        for (size_t i = 0; i < n_parts; i++)
                n += lens[i];
        r = sodium_malloc(n + 1);
        if (!r)
                return -ENOMEM;
        n = 0;
        for (size_t i = 0; i < n_parts; i++) {
                memcpy(r + n, parts[i], lens[i]);
                n += lens[i];
        }
        r[n] = '\0';
        *responsep = r;
        *np = n;
        return 0;
}

static int respond_str(char **responsep, size_t *np, const char *s) {
        size_t n = strlen(s);
        return make_response(responsep, np, 1, &s, &n);
}

/* SCRAM's saslname: ',' and '=' escaped (RFC 5802 5.1); false when it does not fit. */
static bool scram_escape(const char *s, char *out, size_t size) {
        size_t o = 0;

        for (; *s; s++) {
                const char *rep = *s == ',' ? "=2C" : *s == '=' ? "=3D" : NULL;
                size_t len = rep ? 3 : 1;

                if (o + len >= size)
                        return false;
                if (rep)
                        memcpy(out + o, rep, 3);
                else
                        out[o] = *s;
                o += len;
        }
        out[o] = '\0';
        return true;
}

static const EVP_MD *scram_md(const SaslClient *c) {
        return c->mech == SASL_MECH_SCRAM_SHA_1 ? EVP_sha1() : EVP_sha256();
}

static int scram_client_first(SaslClient *c, char **responsep, size_t *np) {
        char user[256], msg[SCRAM_MSG_MAX + 3];

        if (!c->nonce[0]) {
                unsigned char raw[24];

                randombytes_buf(raw, sizeof raw);
                sodium_bin2base64(c->nonce, sizeof c->nonce, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
        }
        if (!scram_escape(c->cred.username, user, sizeof user))
                return -EINVAL;
        snprintf(c->client_first_bare, sizeof c->client_first_bare, "n=%s,r=%s", user, c->nonce);
        snprintf(msg, sizeof msg, "n,,%s", c->client_first_bare);
        return respond_str(responsep, np, msg);
}

/* Finds "k=" among the comma-separated attributes of msg; returns the value and its length. */
static const char *scram_attr(const char *msg, size_t n, char k, size_t *lenp) {
        const char *p = msg, *end = msg + n;

        while (p < end) {
                const char *comma = memchr(p, ',', (size_t)(end - p));
                const char *stop = comma ? comma : end;

                if (stop - p >= 2 && p[0] == k && p[1] == '=') {
                        *lenp = (size_t)(stop - p - 2);
                        return p + 2;
                }
                p = stop + 1;
        }
        return NULL;
}

static int scram_client_final(SaslClient *c, const char *sf, size_t n, char **responsep, size_t *np) {
        const EVP_MD *md = scram_md(c);
        unsigned md_len = (unsigned)EVP_MD_get_size(md);
        size_t r_len = 0, s_len = 0, i_len = 0, salt_len, auth_len;
        const char *r, *s, *i;
        unsigned char salt[256], salted[EVP_MAX_MD_SIZE], client_key[EVP_MAX_MD_SIZE], stored[EVP_MAX_MD_SIZE],
                signature[EVP_MAX_MD_SIZE], server_key[EVP_MAX_MD_SIZE];
        char iter_s[16], without_proof[SCRAM_NONCE_MAX * 3], proof64[EVP_MAX_MD_SIZE * 2], *auth_msg, *end;
        unsigned long iter;
        int ret = SASL_E_SERVER;

        if (memchr(sf, '\0', n) || (n >= 2 && sf[0] == 'm' && sf[1] == '='))
                return SASL_E_SERVER; /* NULs, or a mandatory extension we do not know */
        if (n >= 2 && sf[0] == 'e' && sf[1] == '=')
                return SASL_E_REFUSED;
        r = scram_attr(sf, n, 'r', &r_len);
        s = scram_attr(sf, n, 's', &s_len);
        i = scram_attr(sf, n, 'i', &i_len);
        if (!r || !s || !i || i_len == 0 || i_len >= sizeof iter_s)
                return SASL_E_SERVER;
        /* The server nonce must extend ours. */
        if (r_len <= strlen(c->nonce) || r_len >= SCRAM_NONCE_MAX * 2 ||
            memcmp(r, c->nonce, strlen(c->nonce)) != 0)
                return SASL_E_SERVER;
        memcpy(iter_s, i, i_len);
        iter_s[i_len] = '\0';
        errno = 0;
        iter = strtoul(iter_s, &end, 10);
        if (errno || *end || iter_s[0] == '-' || iter < SCRAM_MIN_ITERATIONS || iter > SCRAM_MAX_ITERATIONS)
                return SASL_E_SERVER;
        if (sodium_base642bin(salt, sizeof salt, s, s_len, NULL, &salt_len, NULL, sodium_base64_VARIANT_ORIGINAL) <
                    0 ||
            salt_len == 0)
                return SASL_E_SERVER;

        snprintf(without_proof, sizeof without_proof, "c=biws,r=%.*s", (int)r_len, r);
        auth_len = strlen(c->client_first_bare) + 1 + n + 1 + strlen(without_proof);
        auth_msg = malloc(auth_len + 1);
        if (!auth_msg)
                return -ENOMEM;
        snprintf(auth_msg, auth_len + 1, "%s,%.*s,%s", c->client_first_bare, (int)n, sf, without_proof);

        /* RFC 5802 3: SaltedPassword, ClientKey, StoredKey, ClientSignature, ServerKey, ServerSignature. */
        if (PKCS5_PBKDF2_HMAC(c->cred.secret, (int)strlen(c->cred.secret), salt, (int)salt_len, (int)iter, md,
                              (int)md_len, salted) != 1 ||
            !HMAC(md, salted, (int)md_len, (const unsigned char *)"Client Key", 10, client_key, NULL) ||
            EVP_Digest(client_key, md_len, stored, NULL, md, NULL) != 1 ||
            !HMAC(md, stored, (int)md_len, (const unsigned char *)auth_msg, auth_len, signature, NULL) ||
            !HMAC(md, salted, (int)md_len, (const unsigned char *)"Server Key", 10, server_key, NULL) ||
            !HMAC(md, server_key, (int)md_len, (const unsigned char *)auth_msg, auth_len, c->server_signature,
                  NULL)) {
                ret = -EIO;
                goto out;
        }
        for (unsigned k = 0; k < md_len; k++)
                client_key[k] ^= signature[k]; /* now the ClientProof */
        sodium_bin2base64(proof64, sizeof proof64, client_key, md_len, sodium_base64_VARIANT_ORIGINAL);
        {
                const char *parts[] = { without_proof, ",p=", proof64 };
                size_t lens[] = { strlen(without_proof), 3, strlen(proof64) };
                ret = make_response(responsep, np, 3, parts, lens);
        }
out:
        sodium_memzero(salted, sizeof salted);
        sodium_memzero(client_key, sizeof client_key);
        sodium_memzero(stored, sizeof stored);
        sodium_memzero(server_key, sizeof server_key);
        free(auth_msg);
        return ret;
}

static int scram_verify_final(SaslClient *c, const char *sf, size_t n) {
        unsigned md_len = (unsigned)EVP_MD_get_size(scram_md(c));
        unsigned char sig[EVP_MAX_MD_SIZE];
        size_t v_len, sig_len;
        const char *v;

        if (n >= 2 && sf[0] == 'e' && sf[1] == '=')
                return SASL_E_REFUSED;
        v = scram_attr(sf, n, 'v', &v_len);
        if (!v || sodium_base642bin(sig, sizeof sig, v, v_len, NULL, &sig_len, NULL,
                                    sodium_base64_VARIANT_ORIGINAL) < 0)
                return SASL_E_SERVER;
        if (sig_len != md_len || sodium_memcmp(sig, c->server_signature, md_len) != 0)
                return SASL_E_SERVER; /* the server does not know the password: not our server */
        return 0;
}

static int initial_response(SaslClient *c, char **responsep, size_t *np) {
        const SaslCred *k = &c->cred;
        char port[16];

        switch (c->mech) {
        case SASL_MECH_PLAIN: {
                const char *parts[] = { "", k->username, "", k->secret };
                size_t lens[] = { 1, strlen(k->username), 1, strlen(k->secret) };
                return make_response(responsep, np, 4, parts, lens);
        }
        case SASL_MECH_XOAUTH2: {
                const char *parts[] = { "user=", k->username, "\001auth=Bearer ", k->secret, "\001\001" };
                size_t lens[] = { 5, strlen(k->username), 13, strlen(k->secret), 2 };
                return make_response(responsep, np, 5, parts, lens);
        }
        case SASL_MECH_OAUTHBEARER: {
                char user[256];

                if (!scram_escape(k->username, user, sizeof user))
                        return -EINVAL;
                snprintf(port, sizeof port, "%u", k->port);
                const char *parts[] = { "n,a=", user, ",\001host=", k->host ? k->host : "", "\001port=", port,
                                        "\001auth=Bearer ", k->secret, "\001\001" };
                size_t lens[ARRAY_SIZE(parts)];
                for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
                        lens[i] = strlen(parts[i]);
                return make_response(responsep, np, ARRAY_SIZE(parts), parts, lens);
        }
        case SASL_MECH_SCRAM_SHA_1:
        case SASL_MECH_SCRAM_SHA_256:
                return scram_client_first(c, responsep, np);
        default:
                return -EINVAL;
        }
}

int sasl_client_step(SaslClient *c, const char *challenge, size_t n, char **responsep, size_t *np) {
        int r;

        if (c->state == SASL_STATE_FAILED || c->state == SASL_STATE_DONE)
                return SASL_E_SERVER; /* nothing more is expected */

        if (c->state == SASL_STATE_START && c->mech != SASL_MECH_LOGIN) {
                /* The initial response; a server that sends an (empty) challenge first gets it too. */
                if (challenge && n > 0)
                        return c->state = SASL_STATE_FAILED, SASL_E_SERVER;
                r = initial_response(c, responsep, np);
                if (r == 0)
                        c->state = SASL_STATE_SENT;
                return r;
        }

        switch (c->mech) {
        case SASL_MECH_LOGIN:
                /* "Username:" then "Password:"; the prompt text is not standardised. */
                if (!challenge && c->state == SASL_STATE_START)
                        return -EINVAL; /* LOGIN has no initial response */
                if (c->state == SASL_STATE_PROOF)
                        return c->state = SASL_STATE_FAILED, SASL_E_SERVER;
                r = respond_str(responsep, np, c->state == SASL_STATE_START ? c->cred.username : c->cred.secret);
                if (r == 0)
                        c->state = c->state == SASL_STATE_START ? SASL_STATE_SENT : SASL_STATE_PROOF;
                return r;

        case SASL_MECH_PLAIN:
                return c->state = SASL_STATE_FAILED, SASL_E_SERVER;

        case SASL_MECH_XOAUTH2:
        case SASL_MECH_OAUTHBEARER:
                /* Any challenge after the token is an error report (JSON); the client must
                 * answer it ("" for XOAUTH2, %x01 for OAUTHBEARER) and the server then fails. */
                r = respond_str(responsep, np, c->mech == SASL_MECH_OAUTHBEARER ? "\001" : "");
                c->state = SASL_STATE_FAILED;
                return r < 0 ? r : SASL_E_REFUSED;

        case SASL_MECH_SCRAM_SHA_1:
        case SASL_MECH_SCRAM_SHA_256:
                if (!challenge)
                        return c->state = SASL_STATE_FAILED, SASL_E_SERVER;
                if (c->state == SASL_STATE_SENT) {
                        r = scram_client_final(c, challenge, n, responsep, np);
                        c->state = r == 0 ? SASL_STATE_PROOF : SASL_STATE_FAILED;
                        return r;
                }
                r = scram_verify_final(c, challenge, n);
                if (r != 0)
                        return c->state = SASL_STATE_FAILED, r;
                c->state = SASL_STATE_DONE;
                return respond_str(responsep, np, "");

        default:
                return -EINVAL;
        }
}

int sasl_client_step64(SaslClient *c, const char *challenge64, char **responsep) {
        _cleanup_secret_ char *raw = NULL, *resp = NULL;
        size_t n_raw = 0, n_resp, len64;
        char *out;
        int r;

        if (challenge64) {
                size_t n64 = strlen(challenge64);
                const char *end;

                raw = sodium_malloc(n64 / 4 * 3 + 4);
                if (!raw)
                        return -ENOMEM;
                if (sodium_base642bin((unsigned char *)raw, n64 / 4 * 3 + 3, challenge64, n64, NULL, &n_raw, &end,
                                      sodium_base64_VARIANT_ORIGINAL) < 0 ||
                    end != challenge64 + n64)
                        return c->state = SASL_STATE_FAILED, SASL_E_SERVER;
                raw[n_raw] = '\0';
        }
        r = sasl_client_step(c, challenge64 ? raw : NULL, n_raw, &resp, &n_resp);
        if (r < 0 || (r > 0 && !resp))
                return r;
        len64 = sodium_base64_ENCODED_LEN(n_resp, sodium_base64_VARIANT_ORIGINAL);
        out = sodium_malloc(len64);
        if (!out)
                return -ENOMEM;
        sodium_bin2base64(out, len64, (const unsigned char *)resp, n_resp, sodium_base64_VARIANT_ORIGINAL);
        *responsep = out;
        return r;
}

int sasl_client_finish(SaslClient *c) {
        if (mech_is_scram(c->mech))
                return c->state == SASL_STATE_DONE ? 0 : SASL_E_SERVER;
        if (c->state == SASL_STATE_FAILED)
                return SASL_E_SERVER;
        c->state = SASL_STATE_DONE;
        return 0;
}
