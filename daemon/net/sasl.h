/*
 * SASL client mechanisms, pure: challenges in, responses out, no I/O. The
 * protocol modules carry the base64 text over IMAP AUTHENTICATE, POP3 AUTH and
 * SMTP AUTH; this module chooses the mechanism and computes every response.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/macro.h"

typedef enum SaslMech {
        SASL_MECH_NONE,
        SASL_MECH_LOGIN,
        SASL_MECH_PLAIN,
        SASL_MECH_SCRAM_SHA_1,
        SASL_MECH_SCRAM_SHA_256,
        SASL_MECH_XOAUTH2,
        SASL_MECH_OAUTHBEARER,
        _SASL_MECH_MAX,
} SaslMech;

/* Positive result codes. */
enum {
        SASL_E_NO_MECH = 1,   /* sasl_client_new: nothing offered that we may use */
        SASL_E_NEEDS_TLS,     /* sasl_client_new: only mechanisms revealing the secret, and no TLS */
        SASL_E_SERVER,        /* step: the server's message is malformed or fails verification */
        SASL_E_REFUSED,       /* step: the server reported an error (OAuth JSON, SCRAM e=) */
};

/* What we authenticate with; the strings are borrowed for the client's lifetime. */
typedef struct SaslCred {
        const char *username;
        const char *secret;   /* password, or OAuth 2 access token when is_token */
        bool is_token;
        const char *host;     /* for OAUTHBEARER's host= / port= */
        unsigned port;
} SaslCred;

typedef struct SaslClient SaslClient;

/*
 * Chooses the strongest mechanism in offered (space-separated names, any case)
 * that fits cred: for passwords SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN > LOGIN,
 * for tokens OAUTHBEARER > XOAUTH2. force (NULL = none) restricts the choice to
 * that one mechanism. Without secure (TLS, or an allowed loopback `tls = none`)
 * anything that sends the secret itself is refused. Returns 0 and *retp, or
 * SASL_E_NO_MECH / SASL_E_NEEDS_TLS, or -ENOMEM.
 */
int sasl_client_new(const char *offered, const SaslCred *cred, bool secure, const char *force, SaslClient **retp);

/* Wipes and frees c; accepts NULL; returns NULL. */
SaslClient *sasl_client_free(SaslClient *c);
DEFINE_CLEANUP_FUNC(SaslClient *, sasl_client_free);

/* "SCRAM-SHA-256", ... */
const char *sasl_client_mech_name(const SaslClient *c);
SaslMech sasl_client_mech(const SaslClient *c);
const char *sasl_mech_name(SaslMech m);

/* True when the mechanism starts with a client message (sent as SASL-IR when the protocol allows). */
bool sasl_client_has_initial(const SaslClient *c);

/*
 * One exchange on raw (decoded) bytes. challenge is NULL for the initial
 * response. On success returns 0 and *responsep (secret memory, free with
 * secret_free; NUL-terminated; *np bytes). Returns SASL_E_SERVER or
 * SASL_E_REFUSED for a bad or failing server message; after SASL_E_REFUSED
 * *responsep still holds the reply that ends the exchange (OAuth: "\x01" or empty).
 */
int sasl_client_step(SaslClient *c, const char *challenge, size_t n_challenge, char **responsep, size_t *np);

/*
 * The same on base64 text, as IMAP, POP3 and SMTP carry it; *responsep is
 * base64 text in secret memory ("" for an empty response).
 */
int sasl_client_step64(SaslClient *c, const char *challenge64, char **responsep);

/*
 * Once the server said success: 0 when the mechanism is complete (SCRAM: the
 * server signature was received and verified), SASL_E_SERVER otherwise.
 */
int sasl_client_finish(SaslClient *c);

/* Tests only: fixes the SCRAM client nonce instead of drawing a random one. */
int sasl_client_set_nonce(SaslClient *c, const char *nonce);
