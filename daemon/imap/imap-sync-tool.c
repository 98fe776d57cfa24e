/*
 * imap-sync-tool: a TEST TOOL (built, not installed). Opens a store (plain,
 * or encrypted with a key file beside it as tegamid's `key = file`), and
 * either runs one IMAP sync of an account (imap_sync_start, what tegamid
 * --once runs), or lists the store, or records a local change the way the
 * service API does (store_local_apply with a pending change) for the next
 * sync to push. Single-threaded on one libuv loop (the store adds its writer).
 *
 *   imap-sync-tool --config FILE --account NAME --store PATH [--encrypted]
 *                  [--no-qresync] [--no-condstore] [--large BYTES]      sync (prints counters)
 *                  --list                                               folders and messages
 *                  --flags FOLDER UID CHANGES   e.g. "+\Seen -\Flagged +work"
 *                  --move FOLDER UID TARGET | --delete FOLDER UID | --append FOLDER FILE
 *
 * --list prints "folder NAME ROLE UIDVALIDITY UIDNEXT HIGHESTMODSEQ" per
 * folder and "msg FOLDER UID FLAGS KEYWORDS SIZE SHA256 MESSAGE-ID" per message
 * (FLAGS and KEYWORDS comma-separated, "-" for none; SHA-256 of the stored
 * body, "-" when headers only).
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
#include "daemon/imap/flags.h"
#include "daemon/imap/folders.h"
#include "daemon/imap/sync.h"
#include "store/body.h"
#include "store/keys.h"
#include "store/local.h"
#include "store/message.h"
#include "store/pending.h"
#include "util/log.h"

typedef struct Tool {
        Store *store;
        int exit_code;
        bool done;
} Tool;

static const int exit_codes[_NET_FAILURE_MAX] = {
        [NET_FAILURE_NETWORK] = 1,   [NET_FAILURE_PROTOCOL] = 1, [NET_FAILURE_CERTIFICATE] = 2,
        [NET_FAILURE_DOWNGRADE] = 3, [NET_FAILURE_AUTH] = 4,     [NET_FAILURE_CREDENTIALS] = 5,
};

static void sync_cb(const ImapSyncResult *res, void *userdata) {
        Tool *t = userdata;

        printf("folders=%zu folders_created=%zu folders_deleted=%zu new=%zu bytes=%" PRIu64
               " flags=%zu expunged=%zu pushed=%zu uidvalidity=%zu recovered=%zu\n",
               res->n_folders, res->n_folders_created, res->n_folders_deleted, res->n_new, res->body_bytes,
               res->n_flags_updated, res->n_expunged, res->n_pushed, res->n_uidvalidity, res->n_recovered);
        if (res->r < 0) {
                fprintf(stderr, "imap-sync-tool: %s\n", res->error);
                t->exit_code = exit_codes[res->failure] ? exit_codes[res->failure] : 1;
        } else
                t->exit_code = 0;
        store_close(t->store, NULL, NULL);
}

static void commas(char *s) {
        for (; *s; s++)
                if (*s == ' ')
                        *s = ',';
}

static void body_sha(Store *s, const StoreCid *cid, char hex[crypto_hash_sha256_BYTES * 2 + 1]) {
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

static int list_all(Store *s, int64_t account_id) {
        StoreFolder *folders = NULL;
        size_t n_folders = 0;
        int r;

        r = store_folder_list(s, account_id, &folders, &n_folders);
        for (size_t k = 0; r == 0 && k < n_folders; k++) {
                StoreMessage *m = NULL;
                size_t n = 0;

                printf("folder %s %s %" PRIu32 " %" PRIu32 " %" PRIu64 "\n", folders[k].name,
                       imap_folder_role_to_string(folders[k].role), folders[k].uidvalidity, folders[k].uidnext,
                       folders[k].highestmodseq);
                r = store_message_list(s, folders[k].id, 0, SIZE_MAX, &m, &n);
                for (size_t i = 0; r == 0 && i < n; i++) {
                        char hex[crypto_hash_sha256_BYTES * 2 + 1] = "-";
                        _cleanup_free_ char *flags = NULL, *kw = NULL;

                        if (m[i].has_body)
                                body_sha(s, &m[i].cid, hex);
                        if (imap_flags_format(m[i].flags, NULL, &flags) < 0 ||
                            imap_keywords_normalize(m[i].keywords, &kw) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        commas(flags);
                        if (kw)
                                commas(kw);
                        printf("msg %s %" PRIu32 " %s %s %" PRIu64 " %s %s\n", folders[k].name, m[i].uid,
                               *flags ? flags : "-", kw ? kw : "-", m[i].size, hex,
                               m[i].env.message_id ? m[i].env.message_id : "-");
                }
                store_message_list_free(m, n);
        }
        store_folder_list_free(folders, n_folders);
        return r;
}

static int64_t folder_id_by_name(Store *s, int64_t account_id, const char *name) {
        StoreFolder *folders = NULL;
        size_t n = 0;
        int64_t id = -1;

        if (store_folder_list(s, account_id, &folders, &n) < 0)
                return -1;
        for (size_t i = 0; i < n; i++)
                if (strcmp(folders[i].name, name) == 0)
                        id = folders[i].id;
        store_folder_list_free(folders, n);
        return id;
}

static int64_t message_id_by_uid(Store *s, int64_t folder_id, uint32_t uid) {
        StoreMessage *m = NULL;
        size_t n = 0;
        int64_t id = -1;

        if (uid == 0 || store_message_list(s, folder_id, uid - 1, 1, &m, &n) < 0)
                return -1;
        if (n == 1 && m[0].uid == uid)
                id = m[0].id;
        store_message_list_free(m, n);
        return id;
}

static void done_cb(int r, void *userdata) {
        Tool *t = userdata;

        t->exit_code = r < 0 ? 6 : 0;
        if (r < 0)
                fprintf(stderr, "imap-sync-tool: %s\n", strerror(-r));
        t->done = true;
}

static void id_cb(int r, int64_t id, void *userdata) {
        done_cb(r, userdata);
}

static void wait_done(uv_loop_t *loop, Tool *t) {
        while (!t->done)
                uv_run(loop, UV_RUN_ONCE);
}

/* "+\Seen -\Flagged +work -old" → a FLAGS change. */
static int parse_changes(const char *spec, StoreLocalChange *c, char **addp, char **removep) {
        _cleanup_free_ char *copy = strdup(spec);
        char *save = NULL, add[512] = "", rem[512] = "";

        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                bool plus = w[0] == '+';
                ImapStr f = {w + 1, strlen(w + 1)};
                ImapStrList l = {&f, 1};
                _cleanup_free_ char *kw = NULL;
                uint32_t mask = 0;

                if (w[0] != '+' && w[0] != '-')
                        return -EINVAL;
                if (imap_flags_parse(&l, &mask, &kw) < 0)
                        return -ENOMEM;
                if (plus)
                        c->flags_add |= mask;
                else
                        c->flags_remove |= mask;
                if (kw) {
                        char *dst = plus ? add : rem;
                        if (strlen(dst) + strlen(kw) + 2 > sizeof(add))
                                return -E2BIG;
                        if (*dst)
                                strcat(dst, " ");
                        strcat(dst, kw);
                }
        }
        *addp = *add ? strdup(add) : NULL;
        *removep = *rem ? strdup(rem) : NULL;
        c->keywords_add = *addp;
        c->keywords_remove = *removep;
        return 0;
}

static int append_file(uv_loop_t *loop, Tool *t, int64_t account_id, int64_t folder_id, const char *path);

/* --progress: one line per report. */
static void progress_cb(const ImapSyncProgress *p, void *userdata) {
        printf("progress %s %zu/%zu %zu/%zu %" PRIu64 "\n", p->folder, p->folders_done, p->folders_total, p->msgs_done,
               p->msgs_total, p->bytes);
}

static void account_id_cb(int r, int64_t id, void *userdata) {
        int64_t *idp = userdata;
        *idp = r < 0 ? -1 : id;
}

int main(int argc, char **argv) {
        enum {
                OPT_LIST = 0x100,
                OPT_FLAGS,
                OPT_MOVE,
                OPT_DELETE,
                OPT_APPEND,
                OPT_NOQ,
                OPT_NOC,
                OPT_LARGE,
                OPT_ENC,
                OPT_PROGRESS,
        };
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"account", required_argument, NULL, 'a'},
                {"store", required_argument, NULL, 's'},
                {"encrypted", no_argument, NULL, OPT_ENC},
                {"list", no_argument, NULL, OPT_LIST},
                {"flags", no_argument, NULL, OPT_FLAGS},
                {"move", no_argument, NULL, OPT_MOVE},
                {"delete", no_argument, NULL, OPT_DELETE},
                {"append", no_argument, NULL, OPT_APPEND},
                {"no-qresync", no_argument, NULL, OPT_NOQ},
                {"no-condstore", no_argument, NULL, OPT_NOC},
                {"large", required_argument, NULL, OPT_LARGE},
                {"progress", no_argument, NULL, OPT_PROGRESS},
                {},
        };
        const char *config_path = NULL, *account = NULL, *store_path = NULL;
        ImapSyncOptions so = {};
        int action = 0;
        bool encrypted = false;
        _cleanup_key_ uint8_t *key = NULL;
        _cleanup_free_ char *err = NULL;
        Config *config = NULL;
        const Account *a;
        Tool t = {.exit_code = 1};
        int64_t account_id = 0;
        uv_loop_t loop;
        int c, r;

        log_setup(argv[0]);
        if (getenv("TEGAMI_LOG_DEBUG"))
                log_set_max_level(LOG_DEBUG);
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
                case OPT_ENC:
                        encrypted = true;
                        break;
                case OPT_LIST:
                case OPT_FLAGS:
                case OPT_MOVE:
                case OPT_DELETE:
                case OPT_APPEND:
                        action = c;
                        break;
                case OPT_NOQ:
                        so.no_qresync = true;
                        break;
                case OPT_NOC:
                        so.no_condstore = true;
                        break;
                case OPT_LARGE:
                        so.large_threshold = strtoull(optarg, NULL, 10);
                        break;
                case OPT_PROGRESS:
                        so.progress_fn = progress_cb;
                        break;
                default:
                        return 64;
                }
        }
        if (!config_path || !account || !store_path) {
                fprintf(stderr, "usage: imap-sync-tool --config FILE --account NAME --store PATH [--encrypted] "
                                "[--list | --flags F UID SPEC | --move F UID T | --delete F UID | --append F FILE]\n");
                return 64;
        }
        r = config_load(config_path, &config, &err);
        if (r < 0) {
                fprintf(stderr, "imap-sync-tool: %s\n", err ? err : strerror(-r));
                return 64;
        }
        a = config_find_account(config, account);
        if (!a || a->imap.proto != SERVER_IMAP) {
                fprintf(stderr, "imap-sync-tool: no IMAP account %s\n", account);
                config_free(config);
                return 64;
        }
        if (encrypted) {
                r = keys_open(store_path, KEYS_KIND_FILE, NULL, &key, &err);
                if (r != 0) {
                        fprintf(stderr, "imap-sync-tool: %s\n", err ? err : strerror(r < 0 ? -r : EINVAL));
                        config_free(config);
                        return 6;
                }
        }
        uv_loop_init(&loop);
        r = store_open(&loop, store_path, key, &t.store);
        if (r < 0) {
                fprintf(stderr, "imap-sync-tool: %s: %s\n", store_path, strerror(-r));
                config_free(config);
                uv_loop_close(&loop);
                return 6;
        }
        if (action) {
                char **args = argv + optind;
                int n_args = argc - optind;
                int64_t folder = -1, msg = -1;

                r = store_account_upsert(t.store, a->name, account_id_cb, &account_id);
                while (r == 0 && account_id == 0)
                        uv_run(&loop, UV_RUN_ONCE);
                if (action != OPT_LIST && n_args >= 1)
                        folder = folder_id_by_name(t.store, account_id, args[0]);
                if ((action == OPT_FLAGS || action == OPT_MOVE || action == OPT_DELETE) && n_args >= 2 && folder > 0)
                        msg = message_id_by_uid(t.store, folder, (uint32_t)strtoul(args[1], NULL, 10));
                if (account_id <= 0)
                        t.exit_code = 6;
                else if (action == OPT_LIST)
                        t.exit_code = list_all(t.store, account_id) < 0 ? 6 : 0;
                else if (action == OPT_APPEND && n_args == 2 && folder > 0)
                        t.exit_code = append_file(&loop, &t, account_id, folder, args[1]) < 0 ? 6 : t.exit_code;
                else if (msg <= 0 || (action == OPT_FLAGS && n_args != 3) || (action == OPT_MOVE && n_args != 3)) {
                        fprintf(stderr, "imap-sync-tool: no such message, or bad arguments\n");
                        t.exit_code = 64;
                } else {
                        StoreLocalChange lc = {.record = true};
                        _cleanup_free_ char *add = NULL, *rem = NULL;

                        if (action == OPT_FLAGS) {
                                lc.kind = STORE_LOCAL_FLAGS;
                                r = parse_changes(args[2], &lc, &add, &rem);
                        } else if (action == OPT_MOVE) {
                                lc.kind = STORE_LOCAL_MOVE;
                                lc.target_folder_id = folder_id_by_name(t.store, account_id, args[2]);
                                r = lc.target_folder_id > 0 ? 0 : -ENOENT;
                        } else {
                                lc.kind = STORE_LOCAL_DELETE;
                                r = 0;
                        }
                        if (r >= 0)
                                r = store_local_apply(t.store, &msg, 1, &lc, (int64_t)time(NULL), done_cb, &t);
                        if (r < 0) {
                                fprintf(stderr, "imap-sync-tool: %s\n", strerror(-r));
                                t.exit_code = 64;
                        } else
                                wait_done(&loop, &t);
                }
                store_close(t.store, NULL, NULL);
        } else {
                r = imap_sync_start(&loop, t.store, a, &so, sync_cb, &t);
                if (r < 0) {
                        fprintf(stderr, "imap-sync-tool: %s\n", strerror(-r));
                        store_close(t.store, NULL, NULL);
                }
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) < 0)
                fprintf(stderr, "imap-sync-tool: loop still has handles\n");
        config_free(config);
        return t.exit_code;
}

/* Stores the file as a body and records a pending APPEND of it to the folder (\Seen). */
typedef struct AppendWait {
        Tool *t;
        bool done;
        int r;
        StoreCid cid;
} AppendWait;

static void body_cb(int r, const StoreCid *cid, uint64_t size, void *userdata) {
        AppendWait *w = userdata;

        w->done = true;
        w->r = r;
        if (r == 0)
                w->cid = *cid;
}

static int append_file(uv_loop_t *loop, Tool *t, int64_t account_id, int64_t folder_id, const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "rb");
        StoreBodyWriter *w = NULL;
        AppendWait aw = {.t = t};
        char buf[65536];
        size_t n;
        int r;

        if (!f)
                return -errno;
        r = store_body_writer_new(t->store, &w);
        if (r < 0)
                return r;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
                if (store_body_writer_append(w, buf, n) < 0) {
                        store_body_writer_abort(w);
                        return -EIO;
                }
        r = store_body_writer_finish(w, body_cb, &aw);
        if (r < 0)
                return r;
        while (!aw.done)
                uv_run(loop, UV_RUN_ONCE);
        if (aw.r < 0)
                return aw.r;
        StorePendingChange pc = {.account_id = account_id,
                                 .kind = STORE_PENDING_APPEND,
                                 .folder_id = folder_id,
                                 .flags_add = STORE_FLAG_SEEN,
                                 .has_cid = true,
                                 .cid = aw.cid,
                                 .created = (int64_t)time(NULL)};
        r = store_pending_add(t->store, &pc, id_cb, t);
        if (r < 0)
                return r;
        wait_done(loop, t);
        return 0;
}
