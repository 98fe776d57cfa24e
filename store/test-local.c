/*
 * Local changes and front-end reads (store/local.h, store/query.h) on a plain
 * store: flags and keywords applied with their pending rows, all or none;
 * moves within an account only; deletions; nothing recorded when not asked;
 * outbox retry and cancel by state; folder counts and newest-first pages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/body.h"
#include "store/local.h"
#include "store/message.h"
#include "store/outbox.h"
#include "store/pending.h"
#include "store/query.h"
#include "store/store.h"
#include "store/test-util.h"

static uv_loop_t loop;

static void closed_cb(void *userdata) {
        *(bool *)userdata = true;
}

static int64_t upsert_account(Store *s, const char *name) {
        Wait w = {};

        check(store_account_upsert(s, name, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        return w.id;
}

static int64_t upsert_folder(Store *s, int64_t account_id, const char *name) {
        StoreFolder f = {.account_id = account_id, .name = (char *)name, .delimiter = '/'};
        Wait w = {};

        check(store_folder_upsert(s, &f, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        return w.id;
}

static int64_t add_message(Store *s, int64_t folder_id, uint32_t uid, uint32_t flags, const char *keywords) {
        StoreMessage m = {
                .folder_id = folder_id, .uid = uid, .flags = flags, .keywords = (char *)keywords, .size = 100 + uid};
        Wait w = {};

        m.env.subject = (char *)"hello";
        check(store_message_insert(s, &m, STORE_BULK, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        return w.id;
}

static int apply(Store *s, const int64_t *ids, size_t n, const StoreLocalChange *c) {
        Wait w = {};

        check(store_local_apply(s, ids, n, c, 1700000000, wait_done_cb, &w) == 0);
        return wait_for(&loop, &w);
}

static size_t n_pending(Store *s, int64_t account_id, StorePendingChange **cp) {
        StorePendingChange *c = NULL;
        size_t n = 0;

        check(store_pending_list(s, account_id, &c, &n) == 0);
        if (cp)
                *cp = c;
        else
                store_pending_list_free(c, n);
        return n;
}

static void test_flags(Store *s, int64_t acct, int64_t folder) {
        int64_t a = add_message(s, folder, 1, STORE_FLAG_FLAGGED, "$Old keep"), b = add_message(s, folder, 2, 0, NULL);
        int64_t ids[] = {a, b}, bad[] = {a, 999999};
        StoreLocalChange c = {.kind = STORE_LOCAL_FLAGS,
                              .flags_add = STORE_FLAG_SEEN,
                              .flags_remove = STORE_FLAG_FLAGGED,
                              .keywords_add = "$New keep",
                              .keywords_remove = "$Old",
                              .record = true};
        StorePendingChange *p;
        StoreMessage m;
        uint64_t total, unread;

        check(store_query_folder_counts(s, folder, &total, &unread) == 0);
        check(total == 2 && unread == 2);
        /* The account's counts (Unread, Total on D-Bus) cover its folders; none for others. */
        check(store_query_account_counts(s, "work", &total, &unread) == 0);
        check(total == 2 && unread == 2);
        check(store_query_account_counts(s, "nope", &total, &unread) == 0);
        check(total == 0 && unread == 0);
        check(store_query_outbox_waiting(s, "work", &total) == 0 && total == 0);
        check(apply(s, ids, 2, &c) == 0);
        check(store_message_get(s, a, &m) == 0);
        check(m.flags == STORE_FLAG_SEEN && strcmp(m.keywords, "keep $New") == 0);
        store_message_clear(&m);
        check(store_message_get(s, b, &m) == 0);
        check(m.flags == STORE_FLAG_SEEN && strcmp(m.keywords, "$New keep") == 0);
        store_message_clear(&m);
        check(store_query_folder_counts(s, folder, &total, &unread) == 0);
        check(total == 2 && unread == 0);
        check(store_query_account_counts(s, "work", &total, &unread) == 0);
        check(total == 2 && unread == 0);
        check(n_pending(s, acct, &p) == 2);
        check(p[0].kind == STORE_PENDING_FLAGS && p[0].folder_id == folder && p[0].uid == 1);
        check(p[0].flags_add == STORE_FLAG_SEEN && p[0].flags_remove == STORE_FLAG_FLAGGED);
        check(strcmp(p[0].keywords_add, "$New keep") == 0 && strcmp(p[0].keywords_remove, "$Old") == 0);
        check(p[1].uid == 2 && p[1].created == 1700000000);
        store_pending_list_free(p, 2);

        /* All or none: an unknown id rolls the whole job back. */
        c = (StoreLocalChange){.kind = STORE_LOCAL_FLAGS, .flags_remove = STORE_FLAG_SEEN, .record = true};
        check(apply(s, bad, 2, &c) == -ENOENT);
        check(store_message_get(s, a, &m) == 0 && m.flags == STORE_FLAG_SEEN);
        store_message_clear(&m);
        check(n_pending(s, acct, NULL) == 2);

        /* Not recorded when not asked (POP3 accounts); removing every keyword leaves NULL. */
        c = (StoreLocalChange){.kind = STORE_LOCAL_FLAGS, .keywords_remove = "keep $New"};
        check(apply(s, ids, 1, &c) == 0);
        check(store_message_get(s, a, &m) == 0 && m.keywords == NULL);
        store_message_clear(&m);
        check(n_pending(s, acct, NULL) == 2);
}

static void test_move_delete(Store *s, int64_t acct, int64_t folder, int64_t other_folder, int64_t foreign_folder) {
        int64_t a = add_message(s, folder, 10, 0, NULL), b = add_message(s, folder, 11, 0, NULL);
        StoreLocalChange c = {.kind = STORE_LOCAL_MOVE, .target_folder_id = foreign_folder, .record = true};
        StorePendingChange *p;
        StoreMessage m;
        size_t n;

        check(apply(s, &a, 1, &c) == -EXDEV);
        check(store_message_get(s, a, &m) == 0);
        store_message_clear(&m);
        c.target_folder_id = 424242;
        check(apply(s, &a, 1, &c) == -ENOENT);
        c.target_folder_id = folder; /* already there: nothing happens */
        n = n_pending(s, acct, NULL);
        check(apply(s, &a, 1, &c) == 0 && n_pending(s, acct, NULL) == n);
        c.target_folder_id = other_folder;
        check(apply(s, &a, 1, &c) == 0);
        check(store_message_get(s, a, &m) == -ENOENT);
        c = (StoreLocalChange){.kind = STORE_LOCAL_DELETE, .record = true};
        check(apply(s, &b, 1, &c) == 0);
        check(store_message_get(s, b, &m) == -ENOENT);
        check(apply(s, &b, 1, &c) == -ENOENT);
        check(n_pending(s, acct, &p) == n + 2);
        check(p[n].kind == STORE_PENDING_MOVE && p[n].uid == 10 && p[n].folder_id == folder &&
              p[n].target_folder_id == other_folder);
        check(p[n + 1].kind == STORE_PENDING_DELETE && p[n + 1].uid == 11);
        store_pending_list_free(p, n + 2);
}

static void test_newest_first(Store *s, int64_t folder) {
        StoreMessage *msgs;
        size_t n;

        for (uint32_t uid = 20; uid < 25; uid++)
                add_message(s, folder, uid, 0, NULL);
        check(store_query_messages_newest(s, folder, 0, 2, &msgs, &n) == 0);
        check(n == 2 && msgs[0].uid == 24 && msgs[1].uid == 23 && strcmp(msgs[0].env.subject, "hello") == 0);
        store_message_list_free(msgs, n);
        check(store_query_messages_newest(s, folder, 4, 10, &msgs, &n) == 0);
        check(n == 1 && msgs[0].uid == 20);
        store_message_list_free(msgs, n);
        check(store_query_messages_newest(s, folder, UINT64_MAX, 10, &msgs, &n) == 0 && n == 0);
        store_message_list_free(msgs, n);
}

static void claim_cb(int r, StoreOutboxItem *item, void *userdata) {
        Wait *w = userdata;

        check(!w->done);
        *w = (Wait){.done = true, .r = r, .id = item ? item->id : 0};
        store_outbox_item_free(item);
}

static int outbox_edit(Store *s, int64_t id, bool cancel) {
        Wait w = {};

        check((cancel ? store_outbox_cancel(s, id, wait_done_cb, &w)
                      : store_outbox_retry(s, id, 1700000500, wait_done_cb, &w)) == 0);
        return wait_for(&loop, &w);
}

static void body_cb(int r, const StoreCid *cid, uint64_t size, void *userdata) {
        StoreCid *out = userdata;

        check(r == 0);
        *out = *cid;
}

static void test_outbox(Store *s, int64_t acct) {
        const char *rcpts[] = {"bob@example.org"};
        StoreBodyWriter *bw;
        StoreOutboxItem *items;
        StoreCid cid = {}, zero = {};
        int64_t first, second;
        size_t n;
        Wait w = {};

        check(store_body_writer_new(s, &bw) == 0);
        check(store_body_writer_append(bw, "Subject: x\r\n\r\nhi\r\n", 18) == 0);
        check(store_body_writer_finish(bw, body_cb, &cid) == 0);
        while (memcmp(&cid, &zero, sizeof cid) == 0)
                uv_run(&loop, UV_RUN_ONCE);
        check(store_outbox_accept(s, acct, "a@example.org", rcpts, 1, &cid, 1700000000, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        first = w.id;
        w = (Wait){};
        check(store_outbox_accept(s, acct, "a@example.org", rcpts, 1, &cid, 1800000000, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        second = w.id;

        /* The second is not due until 1800000000; retry makes it due now. */
        check(outbox_edit(s, second, false) == 0);
        check(store_outbox_list(s, &items, &n) == 0 && n == 2);
        check(items[1].state == STORE_OUTBOX_QUEUED && items[1].next_attempt == 1700000500);
        store_outbox_list_free(items, n);

        w = (Wait){};
        check(store_outbox_claim(s, 0, 1700000001, claim_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == first);
        check(outbox_edit(s, first, false) == -EBUSY);
        check(outbox_edit(s, first, true) == -EBUSY);
        w = (Wait){};
        check(store_outbox_set_state(s, first, STORE_OUTBOX_SENT, 0, "250 ok", wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        check(outbox_edit(s, first, false) == -EALREADY);
        check(outbox_edit(s, first, true) == -EALREADY);

        check(outbox_edit(s, second, true) == 0);
        check(outbox_edit(s, second, true) == -ENOENT);
        check(outbox_edit(s, second, false) == -ENOENT);
        check(store_outbox_list(s, &items, &n) == 0 && n == 1 && items[0].id == first);
        store_outbox_list_free(items, n);
}

int main(void) {
        char dir[] = "/tmp/tegami-test-local-XXXXXX", path[64];
        int64_t acct, other, inbox, archive, foreign;
        StoreFolder f;
        Store *s;
        bool closed = false;

        check(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/mail.db", dir);
        check(uv_loop_init(&loop) == 0);
        check(store_open(&loop, path, NULL, &s) == 0);
        acct = upsert_account(s, "work");
        other = upsert_account(s, "home");
        inbox = upsert_folder(s, acct, "INBOX");
        archive = upsert_folder(s, acct, "Archive");
        foreign = upsert_folder(s, other, "INBOX");

        check(store_query_folder_get(s, archive, &f) == 0);
        check(f.account_id == acct && strcmp(f.name, "Archive") == 0 && f.delimiter == '/');
        store_query_folder_clear(&f);
        check(store_query_folder_get(s, 424242, &f) == -ENOENT);

        test_flags(s, acct, inbox);
        test_move_delete(s, acct, inbox, archive, foreign);
        test_newest_first(s, archive);
        test_outbox(s, acct);

        store_close(s, closed_cb, &closed);
        while (!closed)
                uv_run(&loop, UV_RUN_ONCE);
        check(uv_loop_close(&loop) == 0);
        unlink(path);
        for (const char *suffix = "-wal"; suffix; suffix = strcmp(suffix, "-wal") == 0 ? "-shm" : NULL) {
                char p[80];

                snprintf(p, sizeof p, "%s%s", path, suffix);
                unlink(p);
        }
        rmdir(dir);
        puts("ok");
        return 0;
}
