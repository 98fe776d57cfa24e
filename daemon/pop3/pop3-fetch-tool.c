/*
 * pop3-fetch-tool: a TEST TOOL (built, not installed) until tegamid opens the
 * store itself. Opens a store (plain SQLite, or encrypted with a key file
 * beside it), runs one POP3 fetch for an account of a config file, prints the
 * outcome, and exits. Single-threaded on one libuv loop (the store adds its
 * writer thread).
 *
 *   pop3-fetch-tool --config FILE --account NAME --store PATH [--encrypted]
 *                   [--now UNIX_TIME] [--dry-run] [--list] [--expunge-uidl UIDL]...
 *
 * --encrypted opens the store encrypted, its key wrapped under a key file
 * beside it (store/keys.h, `[store] key = file`), made on first use.
 *
 * --list prints the POP3 entries ("UIDL STATE FIRST_SEEN SIZE SHA256") with
 * the SHA-256 of each stored body, then the folder's message rows whose body
 * no entry names ("forgotten:UID forgotten 0 SIZE SHA256": their entries
 * went once the server no longer listed them), then "messages=N" (all the
 * folder's message rows), without fetching; --expunge-uidl deletes the
 * local copy of a message (what a user deleting it here does), without fetching.
 * TEGAMI_POP3_NOW in the environment sets --now's default.
 *
 * Exit codes: 0 success, 1 network/protocol, 2 certificate, 3 downgrade,
 * 4 authentication refused, 5 credentials, 6 store, 64 usage or configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/config.h"
#include "daemon/pop3/fetch.h"
#include "store/body.h"
#include "store/keys.h"
#include "store/message.h"
#include "store/pop3.h"
#include "util/log.h"

typedef struct Tool {
        Store *store;
        int exit_code;
        size_t n_pending;
} Tool;

static const int exit_codes[_NET_FAILURE_MAX] = {
        [NET_FAILURE_NETWORK] = 1,   [NET_FAILURE_PROTOCOL] = 1, [NET_FAILURE_CERTIFICATE] = 2,
        [NET_FAILURE_DOWNGRADE] = 3, [NET_FAILURE_AUTH] = 4,     [NET_FAILURE_CREDENTIALS] = 5,
};

/* The state words --list prints (the integration tests read them). */
static const char *state_name(StorePop3State s) {
        switch (s) {
        case STORE_POP3_DOWNLOADED:
                return "downloaded";
        case STORE_POP3_DELETE_PENDING:
                return "delete-pending";
        case STORE_POP3_DELETED:
                return "deleted";
        case STORE_POP3_SKIPPED:
                return "skipped";
        default:
                return "unknown";
        }
}

/* --dry-run: one line per message: number, UIDL, [download], DELETE or keep, and why. */
static void plan_cb(const Pop3RuleMsg *msgs, const Pop3Decision *d, size_t n, void *userdata) {
        for (size_t i = 0; i < n; i++)
                printf("plan %u %s %s%s %s\n", msgs[i].msg, msgs[i].uidl, d[i].download ? "download " : "",
                       d[i].delete ? "DELETE" : "keep", pop3_why_to_string(d[i].delete_why));
}

/* The fetch is over: print its counters, choose the exit code, close the store (the loop then ends). */
static void fetch_cb(const Pop3FetchResult *res, void *userdata) {
        Tool *t = userdata;

        printf("server=%u server_bytes=%" PRIu64 " downloaded=%zu downloaded_bytes=%" PRIu64
               " skipped=%zu deleted=%zu deleted_elsewhere=%zu unmanaged=%zu warnings=%u\n",
               res->n_server, res->server_bytes, res->n_downloaded, res->downloaded_bytes, res->n_skipped,
               res->n_deleted, res->n_deleted_elsewhere, res->n_unmanaged, res->warnings);
        if (res->r < 0) {
                fprintf(stderr, "pop3-fetch-tool: %s\n", res->error);
                t->exit_code = exit_codes[res->failure] ? exit_codes[res->failure] : 1;
        } else
                t->exit_code = 0;
        store_close(t->store, NULL, NULL);
}

/* The hex SHA-256 of a stored body, or "-" when it cannot be read. */
static void body_sha256(Store *s, const StoreCid *cid, char hex[static crypto_hash_sha256_BYTES * 2 + 1]) {
        _cleanup_(store_body_reader_freep) StoreBodyReader *rd = NULL;
        crypto_hash_sha256_state st;
        unsigned char h[crypto_hash_sha256_BYTES];
        const void *data;
        size_t len;

        strcpy(hex, "-");
        if (store_body_reader_new(s, cid, &rd) < 0)
                return;
        crypto_hash_sha256_init(&st);
        while (store_body_reader_read(rd, &data, &len) == 0 && len > 0)
                crypto_hash_sha256_update(&st, data, len);
        crypto_hash_sha256_final(&st, h);
        sodium_bin2hex(hex, crypto_hash_sha256_BYTES * 2 + 1, h, sizeof h);
}

static int cid_cmp(const void *a, const void *b) {
        return memcmp(a, b, sizeof(StoreCid));
}

/*
 * The message rows in the account's POP3 folder: those whose body no entry
 * names (their entry was forgotten after the server deleted them) are
 * printed as "forgotten:UID forgotten 0 SIZE SHA256"; then "messages=N", all
 * the rows (duplicates would show here). cids is sorted.
 */
static int list_messages(Store *s, int64_t account_id, const StoreCid *cids, size_t n_cids) {
        StoreFolder *folders = NULL;
        size_t n_folders = 0, total = 0;
        int r;

        r = store_folder_list(s, account_id, &folders, &n_folders);
        for (size_t k = 0; r == 0 && k < n_folders; k++) {
                uint32_t after = 0;
                size_t n;

                if (strcmp(folders[k].name, POP3_FETCH_FOLDER) != 0)
                        continue;
                do {
                        StoreMessage *m = NULL;

                        n = 0;
                        r = store_message_list(s, folders[k].id, after, 1000, &m, &n);
                        for (size_t j = 0; j < n; j++) {
                                char hex[crypto_hash_sha256_BYTES * 2 + 1];

                                if (!m[j].has_body || bsearch(&m[j].cid, cids, n_cids, sizeof *cids, cid_cmp))
                                        continue;
                                body_sha256(s, &m[j].cid, hex);
                                printf("forgotten:%" PRIu32 " forgotten 0 %" PRIu64 " %s\n", m[j].uid, m[j].size, hex);
                        }
                        if (n > 0)
                                after = m[n - 1].uid;
                        total += n;
                        store_message_list_free(m, n);
                } while (r == 0 && n == 1000);
        }
        store_folder_list_free(folders, n_folders);
        if (r == 0)
                printf("messages=%zu\n", total);
        return r;
}

/* Prints the entries with the SHA-256 of the stored bodies, then the message rows no entry names, then
 * the message count. */
static int list_entries(Store *s, int64_t account_id) {
        _cleanup_free_ StoreCid *cids = NULL;
        StorePop3Entry *e = NULL;
        size_t n = 0, n_cids = 0;
        int r;

        r = store_pop3_list(s, account_id, 0, &e, &n);
        if (r < 0)
                return r;
        cids = calloc(n ? n : 1, sizeof *cids);
        if (!cids) {
                store_pop3_list_free(e, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                char hex[crypto_hash_sha256_BYTES * 2 + 1] = "-";

                if (e[i].has_cid) {
                        body_sha256(s, &e[i].cid, hex);
                        cids[n_cids++] = e[i].cid;
                }
                printf("%s %s %" PRId64 " %" PRIu64 " %s\n", e[i].uidl, state_name(e[i].state), e[i].first_seen,
                       e[i].size, hex);
        }
        store_pop3_list_free(e, n);
        qsort(cids, n_cids, sizeof *cids, cid_cmp);
        return list_messages(s, account_id, cids, n_cids);
}

/* Deletes the local copy of the message fetched as uidl (by its content id). */
static int expunge_uidl(Store *s, int64_t account_id, const char *uidl, uint32_t **uidsp, size_t *np) {
        StorePop3Entry *e = NULL;
        StoreFolder *folders = NULL;
        size_t n = 0, n_folders = 0;
        int r;

        r = store_pop3_list(s, account_id, 0, &e, &n);
        if (r < 0)
                return r;
        r = store_folder_list(s, account_id, &folders, &n_folders);
        for (size_t i = 0; r == 0 && i < n; i++) {
                if (strcmp(e[i].uidl, uidl) != 0 || !e[i].has_cid)
                        continue;
                for (size_t k = 0; k < n_folders; k++) {
                        StoreMessage *m = NULL;
                        size_t n_m = 0;

                        if (strcmp(folders[k].name, POP3_FETCH_FOLDER) != 0)
                                continue;
                        r = store_message_list(s, folders[k].id, 0, SIZE_MAX, &m, &n_m);
                        for (size_t j = 0; r == 0 && j < n_m; j++)
                                if (m[j].has_body && memcmp(&m[j].cid, &e[i].cid, sizeof m[j].cid) == 0) {
                                        uint32_t *nu = reallocarray(*uidsp, *np + 1, sizeof *nu);
                                        if (!nu) {
                                                r = -ENOMEM;
                                                break;
                                        }
                                        *uidsp = nu;
                                        nu[(*np)++] = m[j].uid;
                                }
                        store_message_list_free(m, n_m);
                        if (r == 0)
                                r = (int)folders[k].id;
                }
        }
        store_folder_list_free(folders, n_folders);
        store_pop3_list_free(e, n);
        return r;
}

/* --expunge-uidl is committed. */
static void expunged_cb(int r, int64_t id, void *userdata) {
        Tool *t = userdata;

        t->exit_code = r < 0 ? 6 : 0;
        printf("expunged=%" PRId64 "\n", id);
        store_close(t->store, NULL, NULL);
}

/* The account's row id (or -1), for the synchronous reads of --list and --expunge-uidl. */
static void account_id_cb(int r, int64_t id, void *userdata) {
        int64_t *idp = userdata;

        *idp = r < 0 ? -1 : id;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"account", required_argument, NULL, 'a'},
                {"store", required_argument, NULL, 's'},
                {"encrypted", no_argument, NULL, 'e'},
                {"now", required_argument, NULL, 'n'},
                {"dry-run", no_argument, NULL, 'D'},
                {"list", no_argument, NULL, 'L'},
                {"expunge-uidl", required_argument, NULL, 'x'},
                {},
        };
        const char *config_path = NULL, *account = NULL, *store_path = NULL, *expunge = NULL;
        Pop3FetchOptions fo = {.now = getenv("TEGAMI_POP3_NOW") ? strtoll(getenv("TEGAMI_POP3_NOW"), NULL, 10)
                                                                : (int64_t)time(NULL)};
        bool list = false, encrypted = false;
        _cleanup_key_ uint8_t *key = NULL;
        _cleanup_free_ char *err = NULL;
        Config *config = NULL;
        const Account *a;
        Tool t = {.exit_code = 1};
        int64_t account_id = 0;
        uv_loop_t loop;
        int c, r;

        log_setup(argv[0]);
        if (sodium_init() < 0)
                return 70;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'a':
                        account = optarg;
                        break;
                case 's':
                        store_path = optarg;
                        break;
                case 'e':
                        encrypted = true;
                        break;
                case 'n':
                        fo.now = strtoll(optarg, NULL, 10);
                        break;
                case 'D':
                        fo.dry_run = true;
                        fo.plan_fn = plan_cb;
                        break;
                case 'L':
                        list = true;
                        break;
                case 'x':
                        expunge = optarg;
                        break;
                default:
                        return 64;
                }
        }
        if (!config_path || !account || !store_path) {
                fprintf(stderr, "usage: pop3-fetch-tool --config FILE --account NAME --store PATH [--encrypted] "
                                "[--now T] [--dry-run] [--list] [--expunge-uidl UIDL]\n");
                return 64;
        }
        r = config_load(config_path, &config, &err);
        if (r < 0) {
                fprintf(stderr, "pop3-fetch-tool: %s\n", err ? err : strerror(-r));
                return 64;
        }
        a = config_find_account(config, account);
        if (!a || a->pop3.proto != SERVER_POP3) {
                fprintf(stderr, "pop3-fetch-tool: no POP3 account %s\n", account);
                config_free(config);
                return 64;
        }
        if (encrypted) {
                r = keys_open(store_path, KEYS_KIND_FILE, NULL, &key, &err);
                if (r != 0) {
                        fprintf(stderr, "pop3-fetch-tool: %s\n", err ? err : strerror(r < 0 ? -r : EINVAL));
                        config_free(config);
                        return 6;
                }
        }
        uv_loop_init(&loop);
        r = store_open(&loop, store_path, key, &t.store);
        if (r < 0) {
                fprintf(stderr, "pop3-fetch-tool: %s: %s\n", store_path, strerror(-r));
                config_free(config);
                uv_loop_close(&loop);
                return 6;
        }
        if (list || expunge) {
                /* The account's id, from the writer; then the synchronous reads. */
                r = store_account_upsert(t.store, a->name, account_id_cb, &account_id);
                while (r == 0 && account_id == 0)
                        uv_run(&loop, UV_RUN_ONCE);
                if (account_id <= 0) {
                        fprintf(stderr, "pop3-fetch-tool: store: cannot add the account\n");
                        t.exit_code = 6;
                        store_close(t.store, NULL, NULL);
                } else if (list) {
                        t.exit_code = list_entries(t.store, account_id) < 0 ? 6 : 0;
                        store_close(t.store, NULL, NULL);
                } else {
                        _cleanup_free_ uint32_t *uids = NULL;
                        size_t n = 0;
                        int folder = expunge_uidl(t.store, account_id, expunge, &uids, &n);

                        if (folder <= 0 || n == 0 ||
                            store_message_expunge(t.store, folder, uids, n, expunged_cb, &t) < 0) {
                                fprintf(stderr, "pop3-fetch-tool: no local message for UIDL %s\n", expunge);
                                t.exit_code = 6;
                                store_close(t.store, NULL, NULL);
                        }
                }
        } else {
                r = pop3_fetch_start_full(&loop, t.store, a, &fo, fetch_cb, &t);
                if (r < 0) {
                        fprintf(stderr, "pop3-fetch-tool: %s\n", strerror(-r));
                        store_close(t.store, NULL, NULL);
                }
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) < 0)
                fprintf(stderr, "pop3-fetch-tool: loop still has handles\n");
        config_free(config);
        return t.exit_code;
}
