/*
 * Message bodies, streamed in and out in chunks so no body is ever whole in
 * memory. A body is stored once per content (keyed BLAKE2b content id) however
 * many messages, POP3 entries or outbox items refer to it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/macro.h"

/* Bytes per stored chunk (one body_chunks row). */
#define STORE_BODY_CHUNK (64 * 1024)

/* store_body_writer_append() accepted the bytes, but more than
 * STORE_BODY_BACKLOG_MAX bytes now wait for the writer thread: stop reading
 * the source until the drain callback runs. */
#define STORE_BODY_BACKLOG     1
#define STORE_BODY_BACKLOG_MAX (1024 * 1024)

typedef struct StoreBodyWriter StoreBodyWriter;
typedef struct StoreBodyReader StoreBodyReader;

/* Runs when a writer that returned STORE_BODY_BACKLOG has drained to half the limit. */
typedef void (*StoreBodyDrainFn)(StoreBodyWriter *w, void *userdata);

/* Runs once when a finished body is committed: r is 0 (cid and size valid) or
 * a negative errno. The writer is gone by then. */
typedef void (*StoreBodyFinishFn)(int r, const StoreCid *cid, uint64_t size, void *userdata);

/* Body bytes of every writer together waiting for the writer thread: engines
 * downloading many small messages stop asking the server for more above
 * STORE_BODY_BACKLOG_MAX (each writer alone only sees its own). */
uint64_t store_body_backlog(Store *s);

typedef void (*StoreDrainFn)(void *userdata);

/* Calls cb once, from the loop, when the backlog has fallen to half of
 * STORE_BODY_BACKLOG_MAX. Returns 0 or -ENOMEM. A (cb, userdata) pair already
 * waiting is not added twice. */
int store_body_wait_drain(Store *s, StoreDrainFn cb, void *userdata);

/* Forgets a waiting (cb, userdata); safe when it is not waiting. */
void store_body_cancel_drain(Store *s, StoreDrainFn cb, void *userdata);

/* Starts a body. The writer belongs to the caller until finish or abort. */
int store_body_writer_new(Store *s, StoreBodyWriter **wp);

/* Sets the backlog callback (NULL to clear). */
void store_body_writer_set_drain(StoreBodyWriter *w, StoreBodyDrainFn cb, void *userdata);

/* Copies n bytes into the body. Returns 0, STORE_BODY_BACKLOG (accepted; pause
 * the source until the drain callback), or a negative errno (the body failed;
 * finish will report it, or abort). */
int store_body_writer_append(StoreBodyWriter *w, const void *data, size_t n);

/* Commits the body (deduplicated by content) and calls cb once; w is taken
 * over even when this fails, and then cb is not called. */
int store_body_writer_finish(StoreBodyWriter *w, StoreBodyFinishFn cb, void *userdata);

/* Drops a body being written; accepts NULL. No callback runs. */
void store_body_writer_abort(StoreBodyWriter *w);

/* Looks up a stored body: 0 with its size, or -ENOENT. */
int store_body_lookup(Store *s, const StoreCid *cid, uint64_t *sizep);

/* Opens a stored body for reading, synchronously on the loop thread. -ENOENT
 * when there is no such body. */
int store_body_reader_new(Store *s, const StoreCid *cid, StoreBodyReader **rp);

/* The body's total size in bytes. */
uint64_t store_body_reader_get_size(StoreBodyReader *r);

/* Returns the next chunk in *datap and *np (*np == 0 at the end). The data stays
 * valid until the next call or store_body_reader_free(). -EBADMSG when a chunk
 * is missing or the wrong size. */
int store_body_reader_read(StoreBodyReader *r, const void **datap, size_t *np);

/* Frees r; accepts NULL; returns NULL. */
StoreBodyReader *store_body_reader_free(StoreBodyReader *r);
DEFINE_CLEANUP_FUNC(StoreBodyReader *, store_body_reader_free);

/* Deletes bodies nothing refers to any more (no message, POP3 entry, outbox
 * item or pending change); cb's id is how many went. */
int store_body_gc(Store *s, StoreIdFn cb, void *userdata);
