/*
 * SASL tests: the RFC 5802 (SCRAM-SHA-1) and RFC 7677 (SCRAM-SHA-256)
 * exchanges byte for byte, PLAIN / LOGIN / XOAUTH2 / OAUTHBEARER encodings,
 * mechanism choice, refusal without TLS, and hostile server messages.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "daemon/net/sasl.h"
#include "util/secret.h"

static int failures;

#define CHECK(cond)                                                                \
        do {                                                                       \
                if (!(cond)) {                                                     \
                        fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                \
                }                                                                  \
        } while (0)

static SaslClient *client(const char *offered, const char *user, const char *secret, bool token, bool secure) {
        SaslCred cred = { .username = user, .secret = secret, .is_token = token, .host = "imap.example.org",
                          .port = 993 };
        SaslClient *c = NULL;
        int r = sasl_client_new(offered, &cred, secure, NULL, &c);

        return r == 0 ? c : NULL;
}

/* Steps with a text challenge (NULL = initial) and compares the response to want (length n). */
static int step_expect(SaslClient *c, const char *challenge, const char *want, size_t n) {
        char *resp = NULL;
        size_t len = 0;
        int r = sasl_client_step(c, challenge, challenge ? strlen(challenge) : 0, &resp, &len);

        if (r == 0 && want && (len != n || memcmp(resp, want, n) != 0)) {
                fprintf(stderr, "FAIL response: got \"%.*s\"\n     want \"%.*s\"\n", (int)len, resp, (int)n, want);
                failures++;
        }
        secret_free(resp);
        return r;
}
#define STEP(c, ch, want) step_expect(c, ch, want, sizeof(want) - 1)
#define STEPX(c, ch) step_expect(c, ch, NULL, 0) /* response not checked */

static void scram_vectors(void) {
        SaslClient *c;

        /* RFC 5802 section 5. */
        c = client("SCRAM-SHA-1", "user", "pencil", false, true);
        CHECK(c && sasl_client_mech(c) == SASL_MECH_SCRAM_SHA_1);
        CHECK(sasl_client_set_nonce(c, "fyko+d2lbbFgONRv9qkxdawL") == 0);
        CHECK(STEP(c, NULL, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL") == 0);
        CHECK(STEP(c, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                   "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=") == 0);
        CHECK(sasl_client_finish(c) == SASL_E_SERVER); /* not verified yet */
        CHECK(STEP(c, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", "") == 0);
        CHECK(sasl_client_finish(c) == 0);
        sasl_client_free(c);

        /* RFC 7677 section 3. */
        c = client("PLAIN SCRAM-SHA-1 SCRAM-SHA-256 LOGIN", "user", "pencil", false, true);
        CHECK(c && sasl_client_mech(c) == SASL_MECH_SCRAM_SHA_256);
        CHECK(sasl_client_set_nonce(c, "rOprNGfwEbeRWgbNEkqO") == 0);
        CHECK(STEP(c, NULL, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO") == 0);
        CHECK(STEP(c, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                   "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                   "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") == 0);
        CHECK(STEP(c, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "") == 0);
        CHECK(sasl_client_finish(c) == 0);
        sasl_client_free(c);

        /* A forged server signature (the server does not know the password). */
        c = client("SCRAM-SHA-256", "user", "pencil", false, true);
        sasl_client_set_nonce(c, "rOprNGfwEbeRWgbNEkqO");
        STEPX(c, NULL);
        STEPX(c, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        CHECK(STEPX(c, "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=") == SASL_E_SERVER);
        CHECK(sasl_client_finish(c) == SASL_E_SERVER);
        sasl_client_free(c);

        /* Hostile server-first messages. */
        static const char *const bad[] = {
                "r=otherNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",          /* does not extend ours */
                "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /* no server part */
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",  /* too few iterations */
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999", /* too many */
                "r=rOprNGfwEbeRWgbNEkqOx,s=!!!,i=4096",                    /* bad salt */
                "r=rOprNGfwEbeRWgbNEkqOx,i=4096",                          /* no salt */
                "m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                c = client("SCRAM-SHA-256", "user", "pencil", false, true);
                sasl_client_set_nonce(c, "rOprNGfwEbeRWgbNEkqO");
                STEPX(c, NULL);
                CHECK(STEPX(c, bad[i]) == SASL_E_SERVER);
                sasl_client_free(c);
        }
        c = client("SCRAM-SHA-256", "user", "pencil", false, true);
        STEPX(c, NULL);
        CHECK(STEPX(c, "e=unknown-user") == SASL_E_REFUSED);
        sasl_client_free(c);

        /* User names are escaped. */
        c = client("SCRAM-SHA-256", "a,b=c", "x", false, true);
        sasl_client_set_nonce(c, "N");
        CHECK(STEP(c, NULL, "n,,n=a=2Cb=3Dc,r=N") == 0);
        sasl_client_free(c);
}

static void simple_mechs(void) {
        SaslClient *c;
        char *resp = NULL;

        c = client("LOGIN PLAIN", "alice@example.org", "s3cret", false, true);
        CHECK(c && sasl_client_mech(c) == SASL_MECH_PLAIN && sasl_client_has_initial(c));
        CHECK(STEP(c, NULL, "\0alice@example.org\0s3cret") == 0);
        CHECK(sasl_client_finish(c) == 0);
        sasl_client_free(c);

        /* base64 form of the same, as IMAP carries it */
        c = client("PLAIN", "alice@example.org", "s3cret", false, true);
        CHECK(sasl_client_step64(c, NULL, &resp) == 0);
        CHECK(resp && strcmp(resp, "AGFsaWNlQGV4YW1wbGUub3JnAHMzY3JldA==") == 0);
        secret_free(resp);
        sasl_client_free(c);

        /* PLAIN after an empty "+ " continuation (no SASL-IR) */
        c = client("PLAIN", "u", "p", false, true);
        CHECK(sasl_client_step64(c, "", &resp) == 0 && strcmp(resp, "AHUAcA==") == 0);
        resp = secret_free(resp);
        CHECK(sasl_client_step64(c, "bm9wZQ==", &resp) == SASL_E_SERVER);
        sasl_client_free(c);

        c = client("LOGIN", "u", "p", false, true);
        CHECK(c && !sasl_client_has_initial(c));
        CHECK(STEP(c, "Username:", "u") == 0);
        CHECK(STEP(c, "Password:", "p") == 0);
        CHECK(STEP(c, "What?", "") == SASL_E_SERVER);
        sasl_client_free(c);

        c = client("XOAUTH2 PLAIN", "u@example.org", "ya29.tok", true, true);
        CHECK(c && sasl_client_mech(c) == SASL_MECH_XOAUTH2);
        CHECK(STEP(c, NULL, "user=u@example.org\001auth=Bearer ya29.tok\001\001") == 0);
        /* an error report (JSON) must be answered with an empty response */
        CHECK(STEP(c, "{\"status\":\"401\"}", "") == SASL_E_REFUSED);
        sasl_client_free(c);

        c = client("XOAUTH2 OAUTHBEARER", "u@example.org", "tok", true, true);
        CHECK(c && sasl_client_mech(c) == SASL_MECH_OAUTHBEARER);
        CHECK(STEP(c, NULL, "n,a=u@example.org,\001host=imap.example.org\001port=993\001auth=Bearer tok\001\001") ==
              0);
        CHECK(sasl_client_step64(c, "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=", &resp) == SASL_E_REFUSED);
        CHECK(resp && strcmp(resp, "AQ==") == 0); /* %x01 */
        secret_free(resp);
        sasl_client_free(c);
}

static void choice(void) {
        SaslCred pw = { .username = "u", .secret = "p" }, tok = { .username = "u", .secret = "t", .is_token = true };
        SaslClient *c = NULL;

        CHECK(sasl_client_new("PLAIN LOGIN", &pw, false, NULL, &c) == SASL_E_NEEDS_TLS);
        CHECK(sasl_client_new("XOAUTH2", &tok, false, NULL, &c) == SASL_E_NEEDS_TLS);
        CHECK(sasl_client_new("GSSAPI", &pw, true, NULL, &c) == SASL_E_NO_MECH);
        CHECK(sasl_client_new("PLAIN", &tok, true, NULL, &c) == SASL_E_NO_MECH);
        CHECK(sasl_client_new("", &pw, true, NULL, &c) == SASL_E_NO_MECH);
        /* SCRAM never reveals the password, so it is allowed even in clear */
        CHECK(sasl_client_new("PLAIN scram-sha-1", &pw, false, NULL, &c) == 0);
        CHECK(c && sasl_client_mech(c) == SASL_MECH_SCRAM_SHA_1);
        c = sasl_client_free(c);
        CHECK(sasl_client_new("SCRAM-SHA-256 PLAIN", &pw, true, "PLAIN", &c) == 0);
        CHECK(c && sasl_client_mech(c) == SASL_MECH_PLAIN);
        c = sasl_client_free(c);
        CHECK(sasl_client_new("SCRAM-SHA-256-PLUS SCRAM-SHA-2567", &pw, true, NULL, &c) == SASL_E_NO_MECH);
        CHECK(sasl_client_free(NULL) == NULL);
}

int main(void) {
        assert(sodium_init() >= 0);
        scram_vectors();
        simple_mechs();
        choice();
        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        else
                printf("ok sasl\n");
        return failures ? 1 : 0;
}
