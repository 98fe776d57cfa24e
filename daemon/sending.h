/*
 * The daemon's sending side: one outbox engine (daemon/smtp/outbox.h) over
 * the open store, fed by the service API (D-Bus Send, tegami-sendmail) and
 * rebuilt whenever the configuration changes. Loop thread only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "store/store.h"

typedef struct Sending Sending;

/* Envelope choices of a Send call; every field may be empty. */
typedef struct SendingRequest {
        const char *account;            /* "" or NULL: the account whose address is in From, else the first with smtp */
        const char *from;               /* envelope sender (-f); NULL: From: */
        const char *from_name;          /* display name for a From: the message lacks (-F) */
        const char *const *rcpts;       /* envelope recipients; NULL with n_rcpts 0: To/Cc/Bcc */
        size_t n_rcpts;
        bool extract_rcpts;             /* -t: To/Cc/Bcc too, besides rcpts */
} SendingRequest;

/* Positive results of sending_queue(): the message or the request is refused. */
enum {
        SENDING_E_NO_ACCOUNT = 1, /* no such account, or none that can send */
        SENDING_E_REFUSED,        /* the message cannot be sent as it is (*errp says why) */
        SENDING_E_NOT_READY,      /* the store is locked or closed */
};

/* Runs once: status 0 and the outbox id when the message is stored durably, else a negative errno. */
typedef void (*SendingQueuedFn)(int status, int64_t id, void *userdata);
typedef void (*SendingClosedFn)(void *userdata);

/*
 * Starts the engine for config (referenced) on store: registers the accounts
 * in the store, then sends what is due. Returns 0 or a negative errno.
 */
int sending_new(uv_loop_t *loop, Store *store, Config *config, Sending **retp);

/* Queues raw (n bytes) as req says. Returns 0 (cb follows), a SENDING_E_* code with *errp
 * (malloc'd) saying why, or a negative errno. */
int sending_queue(Sending *s, const char *raw, size_t n, const SendingRequest *req, SendingQueuedFn cb,
                  void *userdata, char **errp);

/* Told when an outbox entry changes state: "queued", "sending", "retrying" (queued again after a
 * failed attempt), "failed", "sent" or "unknown". */
typedef void (*SendingEventFn)(int64_t id, const char *state, void *userdata);

/* Sets the one event callback (NULL: none). */
void sending_set_event_cb(Sending *s, SendingEventFn cb, void *userdata);

/*
 * Told when a copy of a sent message waits to be filed in the account's Sent
 * folder on the server (an IMAP account), so its sync can run now. (NULL: none)
 */
typedef void (*SendingCopyFn)(const char *account, void *userdata);
void sending_set_copy_cb(Sending *s, SendingCopyFn cb, void *userdata);

/* account was synced: copies to Sent that waited for its folders are filed now. */
void sending_account_synced(Sending *s, const char *account);

/* Every queued message is due now (connectivity came back, or a user asked). */
void sending_kick(Sending *s);

/* Stops the engine (a session in flight is cancelled safely), then cb; s is freed. */
void sending_close(Sending *s, SendingClosedFn cb, void *userdata);
