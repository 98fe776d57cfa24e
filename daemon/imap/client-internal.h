/*
 * What the IMAP client's files share (client.c: the session state machine;
 * append.c: APPEND and its literal; quote.c: quoted strings). Not for owners of
 * an ImapClient: they use client.h.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/imap/client.h"
#include "daemon/imap/cmdq.h"
#include "daemon/net/cred.h"
#include "daemon/net/sasl.h"
#include "daemon/net/stream.h"

typedef enum ImapClientState {
        IMAP_CLIENT_NEW,
        IMAP_CLIENT_CREDENTIALS,
        IMAP_CLIENT_CONNECTING,
        IMAP_CLIENT_GREETING,
        IMAP_CLIENT_CAPABILITY,
        IMAP_CLIENT_STARTTLS,
        IMAP_CLIENT_HANDSHAKE,
        IMAP_CLIENT_AUTHENTICATE,
        IMAP_CLIENT_LOGIN,
        IMAP_CLIENT_CAPABILITY_AUTHED,
        IMAP_CLIENT_ENABLE,
        IMAP_CLIENT_ID,
        IMAP_CLIENT_READY,
        IMAP_CLIENT_LOGOUT,
        IMAP_CLIENT_FAILED,
        IMAP_CLIENT_CLOSING,
        _IMAP_CLIENT_STATE_MAX,
} ImapClientState;

/* One APPEND: the owner's reader and callback, and how much of the literal is still to go. */
typedef struct ImapAppend {
        ImapAppendReadFn read_fn;
        ImapCmdDoneFn done_fn;
        void *userdata;
        uint64_t left;
        bool sync;    /* a synchronizing literal: wait for "+" */
        bool writing; /* the literal has started: the session cannot stop it half way */
} ImapAppend;

struct ImapClient {
        uv_loop_t *loop;
        const Account *acct;
        ImapClientOptions opts;
        const ImapClientOps *ops;
        void *userdata;
        ImapClientState state;
        NetStream stream;
        bool stream_open; /* net_stream_init succeeded; closed_cb still to come */
        ImapParser *parser;
        ImapCmdq q;
        CredRequest *cred_req;
        Cred *cred;
        SaslClient *sasl;
        bool sasl_bad;     /* the server's SASL message failed verification: we sent "*" */
        bool sasl_ir_sent; /* the initial response went out (SASL-IR, or after the first "+") */
        bool server_waits; /* a continuation asked us for more and nothing went out since: no read timeout */
        bool ready_owed;   /* imap_client_connect() returned 0: ready must run once */
        bool ready_reported;
        char *caps;    /* "CAP1 CAP2 ..." as the server sent them; NULL when unknown */
        char *enabled; /* "EXT1 EXT2" from ENABLED responses */
        ImapAppend *append; /* the APPEND whose literal is being written */
        char auth_name[32];
        uint64_t bytes_in;
        NetFailure failure;
        char error[1024];
};

static inline bool imap_client_is_over(const ImapClient *c) {
        return c->state == IMAP_CLIENT_FAILED || c->state == IMAP_CLIENT_CLOSING;
}

/* Writes more of the APPEND literal in c->append while the socket's queue is short (append.c). */
void imap_client_append_pump(ImapClient *c);

/*
 * Writes s as an IMAP quoted string to out (NUL-terminated; out may be NULL to
 * measure). Returns its length without the NUL, or -EINVAL when s holds CR or
 * LF (or 8-bit bytes and utf8 is false).
 */
ssize_t imap_quote_to(const char *s, bool utf8, char *out);
