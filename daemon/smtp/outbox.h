/*
 * The sending engine over the durable outbox (store/outbox.h): queues
 * prepared messages (body stored, then a barrier accept), and sends what is
 * due, one message at a time, through smtp/client.h.
 *
 * States: queued → sending (claimed, barrier) → sent | failed (5xx: the
 * server's words kept) | unknown (the connection broke after the final dot
 * and before the reply: never resent on its own). 4xx and network failures go
 * back to queued with an exponential backoff with jitter (about 1 minute,
 * doubling, up to 6 hours) until the account's outbox_expire_days run out.
 * At start, items a previous run left past the commit point ("committing")
 * become "unknown"; items it left "sending" before that point are queued again.
 * Accounts take turns. An account failing for a reason no retry fixes
 * (credentials, authentication, certificate, downgrade) is held: its items
 * stay queued, untried, until smtp_outbox_kick().
 * Recipients deferred with 4xx while others were accepted are queued again
 * as a new item with the same body.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/smtp/client.h"
#include "daemon/smtp/prepare.h"
#include "store/outbox.h"
#include "store/store.h"

/* Retry delays: the first, and the cap (RFC 5321 §4.5.4.1 asks for at least 30 min before giving up). */
#define SMTP_OUTBOX_RETRY_MIN_S (60)
#define SMTP_OUTBOX_RETRY_MAX_S (6 * 60 * 60)

typedef struct SmtpOutbox SmtpOutbox;

/*
 * Every state an item reaches through this engine: SENT, FAILED, UNKNOWN, or
 * QUEUED again (next_attempt says when). reply is the server's words or the
 * error ("" when none). For tests, logs and later D-Bus signals.
 */
typedef void (*SmtpOutboxEventFn)(SmtpOutbox *o, int64_t id, StoreOutboxState state, int64_t next_attempt,
                                  const char *reply, void *userdata);

/* Runs once with the new item's id (status 0: durable) or a negative errno. */
typedef void (*SmtpOutboxQueuedFn)(int status, int64_t id, void *userdata);

/* Runs once when the engine is idle after smtp_outbox_close(). */
typedef void (*SmtpOutboxClosedFn)(void *userdata);

/* Creates an engine on loop over store (borrowed). Returns 0 or -ENOMEM. */
int smtp_outbox_new(uv_loop_t *loop, Store *store, SmtpOutbox **retp);

/* Sends items of store account account_id through a (borrowed until close). Returns 0 or -ENOMEM. */
int smtp_outbox_add_account(SmtpOutbox *o, int64_t account_id, const Account *a);

/* Options for every session (timeouts, DSN, test switches); copied, its strings borrowed. */
void smtp_outbox_set_send_options(SmtpOutbox *o, const SmtpSendOptions *opts);

/* Sets the callback told of every state an item reaches (NULL: none). */
void smtp_outbox_set_event_cb(SmtpOutbox *o, SmtpOutboxEventFn cb, void *userdata);

/* Told once per item when its "sent" state is durable, with the message's body (for the copy to Sent). */
typedef void (*SmtpOutboxSentFn)(SmtpOutbox *o, int64_t id, int64_t account_id, const StoreCid *cid, void *userdata);
void smtp_outbox_set_sent_cb(SmtpOutbox *o, SmtpOutboxSentFn cb, void *userdata);

/*
 * Queues a prepared message for account_id: the body is streamed into the
 * store, then the item is accepted with a barrier commit; cb then says it
 * survives a crash. Returns 0 (cb follows) or a negative errno.
 */
int smtp_outbox_queue(SmtpOutbox *o, int64_t account_id, const SmtpMessage *m, SmtpOutboxQueuedFn cb, void *userdata);

/*
 * Starts: first settles what a crash left (committing → unknown, sending →
 * queued), then
 * sends whatever is due and keeps a timer for the next. Returns 0 or a
 * negative errno.
 */
int smtp_outbox_start(SmtpOutbox *o);

/*
 * Connectivity came back, or the user asked (after fixing a password): every
 * queued item is due now, and accounts held after a credentials,
 * authentication, certificate or downgrade failure may send again.
 */
void smtp_outbox_kick(SmtpOutbox *o);

/* True while a message is being sent or a store operation is in flight. */
bool smtp_outbox_busy(const SmtpOutbox *o);

/*
 * Stops: the session in flight is cancelled (its item goes back to queued,
 * or unknown if past the final dot), then cb runs and o is freed.
 */
void smtp_outbox_close(SmtpOutbox *o, SmtpOutboxClosedFn cb, void *userdata);

/*
 * Pure: seconds to wait before attempt n + 1 after n failed attempts (n >= 1):
 * d = min(MAX, MIN * 2^(n-1)), then d/2 + rnd % (d/2 + 1), so never below 30 s.
 */
uint64_t smtp_outbox_retry_delay(unsigned n_attempts, uint32_t rnd);
