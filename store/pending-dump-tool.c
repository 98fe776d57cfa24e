/*
 * A test tool (not installed): prints the pending local changes of every
 * account of a store, one per line, for tests/integration/test_cli_store.py:
 *
 *   pending-dump-tool --store PATH [--encrypted]
 *
 * prints "ACCOUNT KIND FOLDER_ID UID TARGET_FOLDER_ID FLAGS_ADD FLAGS_REMOVE
 * KEYWORDS_ADD KEYWORDS_REMOVE HAS_CID" (keywords "-" when none). --encrypted
 * opens the store with its key wrapped under the key file beside it. The
 * store must not be open in another process that writes.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/keys.h"
#include "store/pending.h"
#include "store/store.h"

static void closed_cb(void *userdata) {
        *(bool *)userdata = true;
}

int main(int argc, char **argv) {
        static const char *const kinds[] = {"?", "flags", "move", "delete", "append"};
        const char *path = NULL;
        bool encrypted = false, closed = false;
        uint8_t *key = NULL;
        StoreAccount *accounts = NULL;
        size_t n_accounts = 0;
        uv_loop_t loop;
        Store *s;
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
                        path = argv[++i];
                else if (strcmp(argv[i], "--encrypted") == 0)
                        encrypted = true;
                else
                        path = NULL, i = argc;
        }
        if (!path) {
                fputs("usage: pending-dump-tool --store PATH [--encrypted]\n", stderr);
                return 2;
        }
        if (sodium_init() < 0) {
                fputs("pending-dump-tool: libsodium failed to initialise\n", stderr);
                return 1;
        }
        if (encrypted) {
                char *err = NULL;

                r = keys_open(path, KEYS_KIND_FILE, NULL, &key, &err);
                if (r != 0) {
                        fprintf(stderr, "pending-dump-tool: %s\n", err ? err : "cannot unwrap the key");
                        free(err);
                        return 1;
                }
        }
        uv_loop_init(&loop);
        r = store_open(&loop, path, key, &s);
        keys_free(key);
        if (r < 0) {
                fprintf(stderr, "pending-dump-tool: %s: %s\n", path, strerror(-r));
                return 1;
        }
        r = store_account_list(s, &accounts, &n_accounts);
        for (size_t i = 0; r == 0 && i < n_accounts; i++) {
                StorePendingChange *c = NULL;
                size_t n = 0;

                r = store_pending_list(s, accounts[i].id, &c, &n);
                for (size_t j = 0; r == 0 && j < n; j++)
                        printf("%s %s %lld %u %lld %u %u %s %s %d\n", accounts[i].name,
                               (unsigned)c[j].kind < 5 ? kinds[c[j].kind] : "?", (long long)c[j].folder_id, c[j].uid,
                               (long long)c[j].target_folder_id, c[j].flags_add, c[j].flags_remove,
                               c[j].keywords_add ? c[j].keywords_add : "-",
                               c[j].keywords_remove ? c[j].keywords_remove : "-", c[j].has_cid);
                store_pending_list_free(c, n);
        }
        store_account_list_free(accounts, n_accounts);
        store_close(s, closed_cb, &closed);
        while (!closed)
                uv_run(&loop, UV_RUN_ONCE);
        uv_loop_close(&loop);
        if (r < 0) {
                fprintf(stderr, "pending-dump-tool: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
