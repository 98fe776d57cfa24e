/*
 * Round trips through the Store API: migrations from an empty file and step
 * by step, idempotent reopen, accounts, folders, messages (paged listing,
 * flags, expunge), bodies (streaming, dedup, abort, gc), POP3 state, outbox
 * and pending changes. Runs on the plain VFS, and again encrypted when this
 * build has the encrypting VFS.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/body.h"
#include "store/db.h"
#include "store/message.h"
#include "store/outbox.h"
#include "store/pending.h"
#include "store/pop3.h"
#include "store/schema.h"
#include "store/store.h"
#include "store/test-util.h"

static uv_loop_t loop;
static const uint8_t *key;

/* A custom job counting rows of a table, so checks work encrypted too. */
typedef struct Count {
        Wait w; /* first: wait_done_cb() gets the same pointer */
        const char *sql;
        int64_t n;
} Count;

static int count_run(sqlite3 *db, void *userdata) {
        Count *c = userdata;
        sqlite3_stmt *st = NULL;

        check(sqlite3_prepare_v2(db, c->sql, -1, &st, NULL) == SQLITE_OK);
        check(sqlite3_step(st) == SQLITE_ROW);
        c->n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return 0;
}

static int64_t count(Store *s, const char *sql) {
        Count c = {.sql = sql};

        check(store_submit(s, STORE_BULK, count_run, wait_done_cb, &c) == 0);
        check(wait_for(&loop, &c.w) == 0);
        return c.n;
}

static void closed_cb(void *userdata) {
        *(bool *)userdata = true;
}

static void close_store(Store *s) {
        bool closed = false;

        store_close(s, closed_cb, &closed);
        while (!closed)
                uv_run(&loop, UV_RUN_ONCE);
}

typedef struct BodyResult {
        Wait w;
        StoreCid cid;
        uint64_t size;
} BodyResult;

static void body_done_cb(int r, const StoreCid *cid, uint64_t size, void *userdata) {
        BodyResult *b = userdata;

        check(!b->w.done);
        b->w.done = true;
        b->w.r = r;
        if (r == 0) {
                b->cid = *cid;
                b->size = size;
        }
}

/* Writes n bytes of a pattern seeded by seed, in uneven pieces. */
static StoreCid write_body(Store *s, size_t n, unsigned seed) {
        StoreBodyWriter *bw;
        BodyResult b = {};
        uint8_t piece[7777];
        size_t done = 0;

        check(store_body_writer_new(s, &bw) == 0);
        while (done < n) {
                size_t k = sizeof(piece) - (done % 1000);
                if (k > n - done)
                        k = n - done;
                for (size_t i = 0; i < k; i++)
                        piece[i] = (uint8_t)((done + i) * 31 + seed);
                check(store_body_writer_append(bw, piece, k) >= 0);
                done += k;
        }
        check(store_body_writer_finish(bw, body_done_cb, &b) == 0);
        check(wait_for(&loop, &b.w) == 0);
        check(b.size == n);
        return b.cid;
}

static void check_body(Store *s, const StoreCid *cid, size_t n, unsigned seed) {
        _cleanup_(store_body_reader_freep) StoreBodyReader *rd = NULL;
        size_t off = 0;

        check(store_body_reader_new(s, cid, &rd) == 0);
        check(store_body_reader_get_size(rd) == n);
        for (;;) {
                const uint8_t *p;
                size_t k;

                check(store_body_reader_read(rd, (const void **)&p, &k) == 0);
                if (k == 0)
                        break;
                check(k <= STORE_BODY_CHUNK);
                for (size_t i = 0; i < k; i++)
                        check(p[i] == (uint8_t)((off + i) * 31 + seed));
                off += k;
        }
        check(off == n);
}

typedef struct ClaimResult {
        Wait w;
        StoreOutboxItem *item;
} ClaimResult;

static void claim_cb(int r, StoreOutboxItem *item, void *userdata) {
        ClaimResult *c = userdata;

        check(!c->w.done);
        c->w = (Wait){.done = true, .r = r};
        c->item = item;
}

static void test_migrations(const char *dir) {
        char path[512];
        const StoreMigration *steps;
        size_t n_steps;
        sqlite3 *db = NULL;
        int version;
        Store *s;

        steps = store_schema_get_steps(&n_steps);
        check(n_steps >= 2);

        /* From version 1 to the newest, as an upgrade would. */
        snprintf(path, sizeof(path), "%s/migrate.db", dir);
        check(store_db_open(path, key, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db) == 0);
        check(store_schema_migrate_steps(db, steps, 1) == 0);
        check(store_schema_get_version(db, &version) == 0 && version == 1);
        check(store_schema_migrate_steps(db, steps, 1) == 0); /* idempotent */
        check(store_schema_migrate(db) == 0);
        check(store_schema_get_version(db, &version) == 0 && (size_t)version == n_steps);
        /* A file from a newer tegami is refused, not damaged. */
        check(sqlite3_exec(db, "PRAGMA user_version=999", NULL, NULL, NULL) == SQLITE_OK);
        check(store_schema_migrate(db) == -EPROTO);
        sqlite3_close(db);
        check(store_open(&loop, path, key, &s) == -EPROTO);

        /* From an empty file, then reopen: nothing to do, data intact. */
        snprintf(path, sizeof(path), "%s/empty.db", dir);
        check(store_open(&loop, path, key, &s) == 0);
        close_store(s);
        check(store_open(&loop, path, key, &s) == 0);
        check(count(s, "PRAGMA user_version") == (int64_t)n_steps);
        close_store(s);
}

static void test_api(const char *dir) {
        char path[512];
        Store *s;
        Wait w = {};
        int64_t acct, inbox, other;
        StoreAccount *accounts;
        StoreFolder *folders;
        size_t n;

        snprintf(path, sizeof(path), "%s/api.db", dir);
        check(store_open(&loop, path, key, &s) == 0);

        /* Accounts: upsert is idempotent. */
        check(store_account_upsert(s, "work", wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        acct = w.id;
        w = (Wait){};
        check(store_account_upsert(s, "work", wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == acct);
        check(store_account_list(s, &accounts, &n) == 0);
        check(n == 1 && accounts[0].id == acct && strcmp(accounts[0].name, "work") == 0);
        store_account_list_free(accounts, n);

        /* Folders: insert, update in place, list, delete. */
        StoreFolder f = {.account_id = acct,
                         .name = "INBOX",
                         .delimiter = '/',
                         .role = STORE_ROLE_INBOX,
                         .uidvalidity = 42,
                         .uidnext = 1,
                         .subscribed = true};
        w = (Wait){};
        check(store_folder_upsert(s, &f, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        inbox = w.id;
        f.uidnext = 100;
        f.highestmodseq = 1ull << 40;
        w = (Wait){};
        check(store_folder_upsert(s, &f, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == inbox);
        f = (StoreFolder){.account_id = acct, .name = "受信/日本語"};
        w = (Wait){};
        check(store_folder_upsert(s, &f, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        other = w.id;
        check(store_folder_list(s, acct, &folders, &n) == 0);
        check(n == 2 && folders[0].id == inbox && folders[0].uidnext == 100 && folders[0].delimiter == '/');
        check(folders[0].highestmodseq == 1ull << 40 && folders[0].subscribed && folders[0].role == STORE_ROLE_INBOX);
        check(strcmp(folders[1].name, "受信/日本語") == 0 && folders[1].delimiter == '\0');
        store_folder_list_free(folders, n);

        /* Bodies: streaming round trip, dedup, empty body, abort. */
        StoreCid big = write_body(s, 300000, 1);
        StoreCid big2 = write_body(s, 300000, 1);
        StoreCid other_body = write_body(s, 300000, 2);
        StoreCid empty = write_body(s, 0, 0);
        check(memcmp(&big, &big2, sizeof(big)) == 0);
        check(memcmp(&big, &other_body, sizeof(big)) != 0);
        check(count(s, "SELECT count(*) FROM bodies") == 3);
        check(count(s, "SELECT count(*) FROM body_chunks") == 2 * 5); /* 300000 B = 5 chunks each */
        check_body(s, &big, 300000, 1);
        check_body(s, &other_body, 300000, 2);
        check_body(s, &empty, 0, 0);
        StoreBodyWriter *bw;
        check(store_body_writer_new(s, &bw) == 0);
        check(store_body_writer_append(bw, "half a message", 14) == 0);
        store_body_writer_abort(bw);
        check(count(s, "SELECT count(*) FROM bodies") == 3);
        uint64_t size;
        check(store_body_lookup(s, &big, &size) == 0 && size == 300000);
        StoreCid missing = {};
        check(store_body_lookup(s, &missing, NULL) == -ENOENT);
        StoreBodyReader *rd;
        check(store_body_reader_new(s, &missing, &rd) == -ENOENT);

        /* Messages: insert 250, page through them. */
        for (uint32_t uid = 1; uid <= 250; uid++) {
                char subject[64];
                snprintf(subject, sizeof(subject), "件名 %u", uid);
                StoreMessage m = {.folder_id = inbox,
                                  .uid = uid,
                                  .modseq = uid,
                                  .flags = STORE_FLAG_SEEN,
                                  .internal_date = 1700000000 + uid,
                                  .size = 300000,
                                  .env = {.date = 1700000000,
                                          .from = "Alice <alice@example.org>",
                                          .to = "bob@example.net",
                                          .subject = subject,
                                          .message_id = "<id@example.org>",
                                          .references = "<a@b> <c@d>"},
                                  .has_body = uid % 2,
                                  .cid = big};
                w = (Wait){};
                check(store_message_insert(s, &m, uid == 250 ? STORE_BARRIER : STORE_BULK, wait_id_cb, &w) == 0);
                check(wait_for(&loop, &w) == 0 && w.id > 0);
        }
        uint32_t last = 0, seen = 0;
        for (;;) {
                StoreMessage *msgs;
                check(store_message_list(s, inbox, last, 100, &msgs, &n) == 0);
                if (n == 0) {
                        store_message_list_free(msgs, n);
                        break;
                }
                for (size_t i = 0; i < n; i++) {
                        char subject[64];
                        check(msgs[i].uid == ++seen);
                        snprintf(subject, sizeof(subject), "件名 %u", seen);
                        check(strcmp(msgs[i].env.subject, subject) == 0);
                        check(strcmp(msgs[i].env.references, "<a@b> <c@d>") == 0 && !msgs[i].env.cc);
                        check(msgs[i].has_body == (seen % 2 == 1));
                        check(!msgs[i].has_body || memcmp(&msgs[i].cid, &big, sizeof(big)) == 0);
                }
                last = msgs[n - 1].uid;
                store_message_list_free(msgs, n);
        }
        check(seen == 250);

        /* Re-inserting a UID updates it (an interrupted fetch redone). */
        StoreMessage again = {.folder_id = inbox,
                              .uid = 7,
                              .modseq = 7,
                              .env = {.subject = "redone"},
                              .has_body = true,
                              .cid = other_body};
        w = (Wait){};
        check(store_message_insert(s, &again, STORE_BULK, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        StoreMessage got;
        check(store_message_get(s, w.id, &got) == 0);
        check(got.uid == 7 && strcmp(got.env.subject, "redone") == 0 && memcmp(&got.cid, &other_body, 32) == 0);
        store_message_clear(&got);

        /* Flags. */
        w = (Wait){};
        check(store_message_set_flags(s, inbox, 7, STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED, "$Label1 work", 99,
                                      wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        w = (Wait){};
        check(store_message_set_flags(s, inbox, 9999, 0, NULL, 1, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == -ENOENT);
        StoreMessage *msgs;
        check(store_message_list(s, inbox, 6, 1, &msgs, &n) == 0 && n == 1);
        check(msgs[0].flags == (STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED) && msgs[0].modseq == 99);
        check(strcmp(msgs[0].keywords, "$Label1 work") == 0);
        store_message_list_free(msgs, n);

        /* Expunge, then gc: other_body loses its only message; big stays. */
        uint32_t gone[] = {7, 8, 9999};
        w = (Wait){};
        check(store_message_expunge(s, inbox, gone, 3, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == 2);
        check(count(s, "SELECT count(*) FROM messages") == 248);
        w = (Wait){};
        check(store_body_gc(s, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == 2); /* other_body and empty */
        check(store_body_lookup(s, &big, NULL) == 0);
        check(store_body_lookup(s, &other_body, NULL) == -ENOENT);

        /* POP3: download with the message atomically, delete-pending, deleted. */
        StoreMessage pm = {.folder_id = other, .uid = 1, .env = {.subject = "pop"}, .has_body = true, .cid = big};
        w = (Wait){};
        check(store_pop3_mark_downloaded(s, acct, "UIDL-1", 300000, 1000, &big, &pm, STORE_BULK, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        {
                StoreMessage pm_got;

                check(store_message_get(s, w.id, &pm_got) == 0); /* the id is the message's */
                check(pm_got.uid == 1 && pm_got.env.subject && strcmp(pm_got.env.subject, "pop") == 0);
                store_message_clear(&pm_got);
        }
        w = (Wait){};
        check(store_pop3_mark_downloaded(s, acct, "UIDL-2", 10, 2000, &big, NULL, STORE_BARRIER, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        /* Again: first_seen stays. */
        w = (Wait){};
        check(store_pop3_mark_downloaded(s, acct, "UIDL-1", 300000, 5000, &big, NULL, STORE_BULK, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        const char *dele[] = {"UIDL-2"};
        w = (Wait){};
        check(store_pop3_set_state(s, acct, dele, 1, STORE_POP3_DELETE_PENDING, 3000, STORE_BARRIER, wait_id_cb, &w) ==
              0);
        check(wait_for(&loop, &w) == 0 && w.id == 1);
        StorePop3Entry *pe;
        check(store_pop3_list(s, acct, 0, &pe, &n) == 0 && n == 2);
        check(strcmp(pe[0].uidl, "UIDL-1") == 0 && pe[0].first_seen == 1000 && pe[0].has_cid);
        check(pe[0].state == STORE_POP3_DOWNLOADED && pe[1].state == STORE_POP3_DELETE_PENDING);
        store_pop3_list_free(pe, n);
        check(store_pop3_list(s, acct, STORE_POP3_DELETE_PENDING, &pe, &n) == 0 && n == 1);
        check(strcmp(pe[0].uidl, "UIDL-2") == 0 && pe[0].size == 10);
        store_pop3_list_free(pe, n);
        check(count(s, "SELECT count(*) FROM messages WHERE subject = 'pop'") == 1);
        w = (Wait){};
        check(store_pop3_set_state(s, acct, dele, 1, STORE_POP3_DELETED, 3000, STORE_BULK, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        /* Only listed entries in state DELETED go: UIDL-1 (downloaded) stays. */
        const char *forget[] = {"UIDL-1", dele[0], "UIDL-unknown"};
        w = (Wait){};
        check(store_pop3_forget_deleted(s, acct, forget, 3, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == 1);
        check(store_pop3_list(s, acct, 0, &pe, &n) == 0 && n == 1 && strcmp(pe[0].uidl, "UIDL-1") == 0);
        store_pop3_list_free(pe, n);

        /* Outbox. */
        const char *rcpts[] = {"bob@example.net", "carol@example.com"};
        w = (Wait){};
        check(store_outbox_accept(s, acct, "alice@example.org", rcpts, 2, &big, 100, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        int64_t item_id = w.id;
        check(store_outbox_accept(s, acct, "a@b", rcpts, 0, &big, 100, wait_id_cb, &w) == -EINVAL);
        ClaimResult claim = {};
        check(store_outbox_claim(s, 0, 99, claim_cb, &claim) == 0); /* not due yet */
        check(wait_for(&loop, &claim.w) == 0 && !claim.item);
        claim.w = (Wait){};
        check(store_outbox_claim(s, acct, 100, claim_cb, &claim) == 0);
        check(wait_for(&loop, &claim.w) == 0 && claim.item);
        check(claim.item->id == item_id && claim.item->state == STORE_OUTBOX_SENDING && claim.item->attempts == 1);
        check(claim.item->n_rcpts == 2 && strcmp(claim.item->rcpts[1], "carol@example.com") == 0);
        check(strcmp(claim.item->mail_from, "alice@example.org") == 0);
        claim.item = store_outbox_item_free(claim.item);
        claim.w = (Wait){};
        check(store_outbox_claim(s, acct, 100, claim_cb, &claim) == 0); /* taken: nothing left */
        check(wait_for(&loop, &claim.w) == 0 && !claim.item);
        w = (Wait){};
        check(store_outbox_set_state(s, item_id, STORE_OUTBOX_QUEUED, 160, "451 4.3.0 try later", wait_done_cb, &w) ==
              0);
        check(wait_for(&loop, &w) == 0);
        claim.w = (Wait){};
        check(store_outbox_claim(s, acct, 200, claim_cb, &claim) == 0);
        check(wait_for(&loop, &claim.w) == 0 && claim.item && claim.item->attempts == 2);
        check(strcmp(claim.item->last_reply, "451 4.3.0 try later") == 0);
        claim.item = store_outbox_item_free(claim.item);
        /* A crash before the commit point: SENDING goes back to the queue. */
        w = (Wait){};
        check(store_outbox_recover(s, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == 0);
        StoreOutboxItem *items;
        check(store_outbox_list(s, &items, &n) == 0 && n == 1 && items[0].state == STORE_OUTBOX_QUEUED);
        store_outbox_list_free(items, n);
        /* A crash past it: COMMITTING becomes UNKNOWN, never sent again on its own. */
        w = (Wait){};
        check(store_outbox_set_state(s, item_id, STORE_OUTBOX_COMMITTING, 0, NULL, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        w = (Wait){};
        check(store_outbox_recover(s, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == 1);
        check(store_outbox_list(s, &items, &n) == 0 && n == 1 && items[0].state == STORE_OUTBOX_UNKNOWN);
        store_outbox_list_free(items, n);

        /* Pending changes. */
        int64_t ids[3];
        for (int i = 0; i < 3; i++) {
                StorePendingChange c = {.account_id = acct,
                                        .kind = STORE_PENDING_FLAGS + i,
                                        .folder_id = inbox,
                                        .uid = 10 + i,
                                        .target_folder_id = other,
                                        .flags_add = STORE_FLAG_SEEN,
                                        .keywords_remove = "$Junk",
                                        .created = 7};
                w = (Wait){};
                check(store_pending_add(s, &c, wait_id_cb, &w) == 0);
                check(wait_for(&loop, &w) == 0);
                ids[i] = w.id;
        }
        StorePendingChange *pc;
        check(store_pending_list(s, acct, &pc, &n) == 0 && n == 3);
        check(pc[1].kind == STORE_PENDING_MOVE && pc[1].uid == 11 && pc[1].target_folder_id == other);
        check(strcmp(pc[2].keywords_remove, "$Junk") == 0 && !pc[2].keywords_add && pc[2].flags_add == STORE_FLAG_SEEN);
        store_pending_list_free(pc, n);
        w = (Wait){};
        check(store_pending_remove(s, ids, 2, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == 2);
        check(store_pending_list(s, acct, &pc, &n) == 0 && n == 1 && pc[0].id == ids[2]);
        store_pending_list_free(pc, n);

        /* Folder delete cascades to its messages. */
        w = (Wait){};
        check(store_folder_delete(s, other, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        check(count(s, "SELECT count(*) FROM messages WHERE subject = 'pop'") == 0);

        /* A writer idle for a second has the checkpointer copy what the WAL still holds (store/writer.c). */
        uint64_t n_ckpt0 = 0, n_ckpt = 0;
        store_get_stats(s, NULL, NULL, &n_ckpt0);
        for (int i = 0; i < 50 && n_ckpt <= n_ckpt0; i++) {
                usleep(100 * 1000);
                store_get_stats(s, NULL, NULL, &n_ckpt);
        }
        check(n_ckpt > n_ckpt0);
        close_store(s);

        /* Reopen: everything is still there, and the cid key did not change. */
        check(store_open(&loop, path, key, &s) == 0);
        StoreCid big3 = write_body(s, 300000, 1);
        check(memcmp(&big, &big3, sizeof(big)) == 0);
        check(count(s, "SELECT count(*) FROM messages") == 248);
        close_store(s);
}

typedef struct DrainCount {
        unsigned n;
        uint64_t backlog_seen; /* the backlog when the callback ran */
        Store *s;
} DrainCount;

static void drained_cb(void *userdata) {
        DrainCount *d = userdata;

        d->n++;
        d->backlog_seen = store_body_backlog(d->s);
}

/* Many small bodies: each writer stays under its own limit, the store-wide backlog sees them all,
 * and a waiter hears once when it is down to half. */
static void test_body_backlog(const char *dir) {
        enum { N = 600, SIZE = 6000 };
        BodyResult res[N] = {};
        DrainCount d = {};
        uint8_t data[SIZE];
        char path[512];
        Store *s;

        snprintf(path, sizeof(path), "%s/backlog.db", dir);
        check(store_open(&loop, path, key, &s) == 0);
        d.s = s;
        check(store_body_backlog(s) == 0);
        for (unsigned i = 0; i < N; i++) {
                StoreBodyWriter *bw;

                memset(data, (int)i, sizeof data);
                check(store_body_writer_new(s, &bw) == 0);
                check(store_body_writer_append(bw, data, sizeof data) == 0); /* under its own limit */
                check(store_body_writer_finish(bw, body_done_cb, &res[i]) == 0);
        }
        /* Nothing ran yet (the writer's callbacks come through this loop): all of it is queued. */
        check(store_body_backlog(s) >= (uint64_t)N * SIZE);
        check(store_body_backlog(s) > STORE_BODY_BACKLOG_MAX);
        check(store_body_wait_drain(s, drained_cb, &d) == 0);
        check(store_body_wait_drain(s, drained_cb, &d) == 0); /* not twice */
        for (unsigned i = 0; i < N; i++)
                check(wait_for(&loop, &res[i].w) == 0 && res[i].size == SIZE);
        check(d.n == 1 && d.backlog_seen <= STORE_BODY_BACKLOG_MAX / 2);
        check(store_body_backlog(s) == 0);
        /* A cancelled waiter is never called. */
        check(store_body_wait_drain(s, drained_cb, &d) == 0);
        store_body_cancel_drain(s, drained_cb, &d);
        store_body_cancel_drain(s, drained_cb, &d); /* safe when not waiting */
        write_body(s, 100, 3);
        check(d.n == 1);
        close_store(s);
}

static void run_all(const char *label) {
        char dir[] = "/tmp/tegami-test-store-XXXXXX";
        char cmd[128];

        check(mkdtemp(dir));
        test_migrations(dir);
        test_api(dir);
        test_body_backlog(dir);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        check(system(cmd) == 0);
        printf("%s: ok\n", label);
}

int main(void) {
        uint8_t k[32];

        check(sodium_init() >= 0);
        check(uv_loop_init(&loop) == 0);
        key = NULL;
        run_all("plain");
        if (store_db_have_encryption()) {
                randombytes_buf(k, sizeof(k));
                key = k;
                run_all("encrypted");
        } else {
                printf("encrypted: skipped (no encrypting VFS in this build)\n");
        }
        check(uv_loop_close(&loop) == 0);
        return 0;
}
