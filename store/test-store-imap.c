/*
 * The IMAP engine's store calls: the compact listing (with and without
 * Message-IDs), lookup by UID, renumbering after a UIDVALIDITY change (UIDs
 * swapped and shifted without colliding, unmatched messages removed, folder
 * state reset, other folders untouched) and setting a folder's sync state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/imap.h"
#include "store/message.h"
#include "store/pending.h"
#include "store/store.h"
#include "store/test-util.h"

static uv_loop_t loop;

static void closed_cb(void *userdata) {
        *(bool *)userdata = true;
}

static int64_t add_folder(Store *s, int64_t account, const char *name, uint32_t uidvalidity) {
        StoreFolder f = {.account_id = account, .name = (char *)name, .uidvalidity = uidvalidity, .uidnext = 50};
        Wait w = {};

        check(store_folder_upsert(s, &f, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        return w.id;
}

static void add_msg(Store *s, int64_t folder, uint32_t uid, const char *mid, uint64_t size, const char *kw) {
        StoreMessage m = {.folder_id = folder,
                          .uid = uid,
                          .modseq = uid * 10,
                          .flags = STORE_FLAG_SEEN,
                          .keywords = (char *)kw,
                          .size = size,
                          .env = {.message_id = (char *)mid}};
        Wait w = {};

        check(store_message_insert(s, &m, STORE_BULK, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
}

int main(void) {
        char path[] = "/tmp/test-store-imap-XXXXXX";
        int fd = mkstemp(path);
        StoreImapMsg *v = NULL;
        StoreFolder *folders = NULL;
        size_t n = 0, n_folders = 0;
        Store *s = NULL;
        bool closed = false;
        Wait w = {};

        check(fd >= 0);
        close(fd);
        unlink(path);
        check(uv_loop_init(&loop) == 0);
        check(store_open(&loop, path, NULL, &s) == 0);
        check(store_account_upsert(s, "a", wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        int64_t acct = w.id;
        int64_t inbox = add_folder(s, acct, "INBOX", 7), other = add_folder(s, acct, "Other", 9);

        add_msg(s, inbox, 1, "<a@x>", 100, NULL);
        add_msg(s, inbox, 2, "<b@x>", 200, "work");
        add_msg(s, inbox, 3, "<c@x>", 300, NULL);
        add_msg(s, inbox, 4, NULL, 400, NULL);
        add_msg(s, other, 1, "<a@x>", 100, NULL);

        check(store_imap_msg_list(s, inbox, 0, &v, &n) == 0);
        check(n == 4 && v[0].uid == 1 && v[3].uid == 4 && v[1].size == 200 && v[1].modseq == 20);
        check(v[1].keywords && strcmp(v[1].keywords, "work") == 0 && !v[0].keywords);
        check(!v[0].message_id && !v[0].has_body && v[0].flags == STORE_FLAG_SEEN);
        check(store_imap_msg_find(v, n, 3) == &v[2] && !store_imap_msg_find(v, n, 5) && !store_imap_msg_find(v, n, 0));
        store_imap_msg_list_free(v, n);
        check(store_imap_msg_list(s, inbox, STORE_IMAP_LIST_IDS, &v, &n) == 0);
        check(n == 4 && v[2].message_id && strcmp(v[2].message_id, "<c@x>") == 0 && !v[3].message_id);
        store_imap_msg_list_free(v, n);

        /* Pending changes: flags on 1, delete of 4, an append (uid 0). */
        StorePendingChange pc[] = {
                {.account_id = acct, .kind = STORE_PENDING_FLAGS, .folder_id = inbox, .uid = 1, .flags_add = 1},
                {.account_id = acct, .kind = STORE_PENDING_DELETE, .folder_id = inbox, .uid = 4},
                {.account_id = acct, .kind = STORE_PENDING_APPEND, .folder_id = inbox, .has_cid = false},
                {.account_id = acct, .kind = STORE_PENDING_FLAGS, .folder_id = other, .uid = 1, .flags_add = 2},
        };
        for (size_t i = 0; i < sizeof(pc) / sizeof(pc[0]); i++) {
                w = (Wait){};
                check(store_pending_add(s, &pc[i], wait_id_cb, &w) == 0);
                check(wait_for(&loop, &w) == 0);
        }

        /* 1 → 2 and 2 → 1 (a swap), 3 → 10; 4 is unmatched and goes. */
        uint32_t old_uids[] = {1, 2, 3}, new_uids[] = {2, 1, 10};
        w = (Wait){};
        check(store_imap_renumber(s, inbox, old_uids, new_uids, 3, 1234, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        check(w.id == 1);
        check(store_imap_msg_list(s, inbox, STORE_IMAP_LIST_IDS, &v, &n) == 0);
        check(n == 3);
        check(v[0].uid == 1 && strcmp(v[0].message_id, "<b@x>") == 0 && v[0].keywords);
        check(v[1].uid == 2 && strcmp(v[1].message_id, "<a@x>") == 0);
        check(v[2].uid == 10 && strcmp(v[2].message_id, "<c@x>") == 0);
        store_imap_msg_list_free(v, n);
        check(store_imap_msg_list(s, other, 0, &v, &n) == 0);
        check(n == 1 && v[0].uid == 1);
        store_imap_msg_list_free(v, n);
        check(store_folder_list(s, acct, &folders, &n_folders) == 0);
        check(n_folders == 2 && strcmp(folders[0].name, "INBOX") == 0);
        check(folders[0].uidvalidity == 1234 && folders[0].uidnext == 0 && folders[0].highestmodseq == 0);
        check(folders[1].uidvalidity == 9 && folders[1].uidnext == 50);
        store_folder_list_free(folders, n_folders);
        StorePendingChange *pl = NULL;
        size_t n_pl = 0;
        check(store_pending_list(s, acct, &pl, &n_pl) == 0);
        check(n_pl == 3); /* the delete of 4 went with 4 */
        check(pl[0].kind == STORE_PENDING_FLAGS && pl[0].folder_id == inbox && pl[0].uid == 2);
        check(pl[1].kind == STORE_PENDING_APPEND && pl[1].uid == 0);
        check(pl[2].folder_id == other && pl[2].uid == 1); /* another folder: untouched */
        store_pending_list_free(pl, n_pl);

        /* Renumbering nothing empties the folder. */
        w = (Wait){};
        check(store_imap_renumber(s, other, NULL, NULL, 0, 5, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0 && w.id == 1);

        w = (Wait){};
        check(store_imap_folder_set_state(s, inbox, 1234, 11, 77, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        check(store_folder_list(s, acct, &folders, &n_folders) == 0);
        check(folders[0].uidnext == 11 && folders[0].highestmodseq == 77);
        store_folder_list_free(folders, n_folders);
        w = (Wait){};
        check(store_imap_folder_set_state(s, 999, 1, 1, 1, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == -ENOENT);

        store_close(s, closed_cb, &closed);
        while (!closed)
                uv_run(&loop, UV_RUN_ONCE);
        check(uv_loop_close(&loop) == 0);
        unlink(path);
        printf("store-imap: ok\n");
        return 0;
}
