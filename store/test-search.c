/*
 * Full-text search: the query parser's SQL, then a store with three messages
 * indexed through store_search_put() and every operator of the query language
 * checked for the exact ids it returns, newest first, with paging; a Japanese
 * word of 3+ characters found in a subject and in a body. Encrypted, the FTS
 * tables and the WAL hold no plaintext: a marker in a body and in a subject
 * never reaches the files (the index's trigrams included).
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"
#include "store/message.h"
#include "store/schema.h"
#include "store/search.h"
#include "store/store.h"
#include "store/test-util.h"

#define WORD   "手紙の検索テスト"
#define MARKER "MARKER-ZEBRA-7731"

static uv_loop_t loop;
static const uint8_t *key;

static void closed_cb(void *userdata) {
        *(bool *)userdata = true;
}

static void close_store(Store *s) {
        bool closed = false;

        store_close(s, closed_cb, &closed);
        while (!closed)
                uv_run(&loop, UV_RUN_ONCE);
}

static void test_parse(void) {
        StoreSearchQuery q;

        check(store_search_parse("", &q) == 0 && strcmp(q.where, "1") == 0 && q.n_params == 0);
        store_search_query_clear(&q);
        check(store_search_parse("  from:\"Alice Example\"  is:unread ab", &q) == 0);
        check(q.n_params == 3);
        /* 3+ characters: the LIKE pattern that checks, and the trigrams that find candidates */
        check(strcmp(q.params[0], "%Alice Example%") == 0);
        /* none across the blank: the index has none (store/fts-tokenizer.c) */
        check(strcmp(q.params[1], "\"Ali\" AND \"lic\" AND \"ice\" AND \"Exa\" AND \"xam\" AND \"amp\" AND "
                                  "\"mpl\" AND \"ple\"") == 0);
        check(strstr(q.where, "search MATCH ?2 AND (from_addr LIKE ?1 ESCAPE"));
        check(strcmp(q.params[2], "%ab%") == 0);
        check(strstr(q.where, "(m.flags & 1) = 0"));
        store_search_query_clear(&q);
        check(store_search_parse("say \"a \"\"b", &q) == STORE_SEARCH_E_QUERY); /* unclosed quote */
        check(q.error && strstr(q.error, "quote"));
        store_search_query_clear(&q);
        check(store_search_parse("before:2024-13-45", &q) == STORE_SEARCH_E_QUERY);
        store_search_query_clear(&q);
        check(store_search_parse("has:wings", &q) == STORE_SEARCH_E_QUERY);
        store_search_query_clear(&q);
        check(store_search_parse("\"x\"\"y\" 100%_", &q) == 0); /* FTS5 and LIKE syntax stay text */
        store_search_query_clear(&q);
        check(store_search_parse("https://example.org/", &q) == 0); /* not an operator */
        check(strcmp(q.params[0], "%https://example.org/%") == 0);
        check(strncmp(q.params[1], "\"htt\" AND \"ttp\" AND \"tps\"", 25) == 0);
        store_search_query_clear(&q);
        check(store_search_parse("a\"bcd", &q) == 0 && q.n_params == 2); /* a quote doubled in its trigrams */
        check(strcmp(q.params[1], "\"a\"\"b\" AND \"\"\"bc\" AND \"bcd\"") == 0);
        store_search_query_clear(&q);
        check(store_search_parse("検索テスト", &q) == 0 && q.n_params == 2); /* characters, not bytes */
        check(strcmp(q.params[1], "\"検索テ\" AND \"索テス\" AND \"テスト\"") == 0);
        store_search_query_clear(&q);
        check(store_search_parse("abc", &q) == 0 && q.n_params == 2 && strcmp(q.params[1], "\"abc\"") == 0);
        store_search_query_clear(&q);
        check(store_search_parse("\"a b\"", &q) == 0 && q.n_params == 1); /* only blank trigrams: LIKE alone */
        check(strcmp(q.params[0], "%a b%") == 0 && !strstr(q.where, "MATCH"));
        store_search_query_clear(&q);
}

static int64_t upsert_folder(Store *s, int64_t account_id, const char *name) {
        StoreFolder f = {.account_id = account_id, .name = (char *)name};
        Wait w = {};

        check(store_folder_upsert(s, &f, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        return w.id;
}

/* Opens (creating) the store at dir/name and gives it the account "work"; returns the account id. */
static int64_t open_with_account(const char *dir, const char *name, char *path, size_t path_size, Store **sp) {
        Wait w = {};

        snprintf(path, path_size, "%s/%s", dir, name);
        check(store_open(&loop, path, key, sp) == 0);
        check(store_account_upsert(*sp, "work", wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        return w.id;
}

static int64_t insert(Store *s, int64_t folder_id, uint32_t uid, int64_t date, uint32_t flags, const char *from,
                      const char *to, const char *subject) {
        StoreMessage m = {
                .folder_id = folder_id,
                .uid = uid,
                .flags = flags,
                .env = {.date = date, .from = (char *)from, .to = (char *)to, .subject = (char *)subject},
                .has_body = true,
        };
        Wait w = {};

        randombytes_buf(m.cid.bytes, sizeof(m.cid.bytes));
        check(store_message_insert(s, &m, STORE_BULK, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        return w.id;
}

/* Searches and checks the ids returned, in order; -1 ends the list. */
static void expect(Store *s, const char *query, uint64_t offset, size_t limit, const int64_t *ids) {
        StoreMessage *msgs;
        char *error;
        size_t n, i;

        check(store_search(s, query, offset, limit, &msgs, &n, &error) == 0);
        for (i = 0; ids[i] >= 0; i++) {
                if (i >= n || msgs[i].id != ids[i]) {
                        fprintf(stderr, "query \"%s\": result %zu is %lld, want %lld\n", query, i,
                                i < n ? (long long)msgs[i].id : -1LL, (long long)ids[i]);
                        abort();
                }
        }
        if (n != i) {
                fprintf(stderr, "query \"%s\": %zu results, want %zu\n", query, n, i);
                abort();
        }
        store_message_list_free(msgs, n);
}

#define EXPECT(s, q, ...) expect(s, q, 0, 50, (const int64_t[]){__VA_ARGS__, -1})
#define NONE              -1

static bool file_has(const char *path, const char *needle) {
        FILE *f = fopen(path, "rb");
        size_t n = strlen(needle), len = 0, cap = 0;
        char *buf = NULL;
        bool found = false;

        if (!f)
                return false;
        for (;;) {
                if (len == cap) {
                        cap = cap ? 2 * cap : 1 << 20;
                        buf = realloc(buf, cap);
                        check(buf);
                }
                size_t r = fread(buf + len, 1, cap - len, f);
                if (r == 0)
                        break;
                len += r;
        }
        fclose(f);
        found = memmem(buf, len, needle, n) != NULL;
        free(buf);
        return found;
}

static void test_search(const char *dir) {
        int64_t acct, inbox, archive, m1, m2, m3;
        char path[512], wal[600];
        StoreSearchPending *pending;
        StoreSearchDoc *docs;
        StoreMessage *msgs;
        char *error;
        uint64_t n_pending;
        size_t n;
        Wait w = {};
        Store *s;

        acct = open_with_account(dir, "search.db", path, sizeof(path), &s);
        inbox = upsert_folder(s, acct, "INBOX");
        archive = upsert_folder(s, acct, "Archive");
        m1 = insert(s, inbox, 1, 1704888000 /* 2024-01-10 12:00 UTC */, 0, "Taro <taro@example.jp>", "me@example.org",
                    WORD "について");
        m2 = insert(s, inbox, 2, 1707566400 /* 2024-02-10 */, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED,
                    "Alice Example <alice@example.org>", "bob@example.org", "Meeting " MARKER);
        m3 = insert(s, archive, 1, 1701432000 /* 2023-12-01 */, STORE_FLAG_SEEN, "bob@example.org", "me@example.org",
                    "Old one");

        check(store_search_count_pending(s, &n_pending) == 0 && n_pending == 3);
        check(store_search_pending(s, m1, 10, &pending, &n) == 0 && n == 2);
        free(pending);
        check(store_search_pending(s, 0, 10, &pending, &n) == 0 && n == 3);
        check(pending[0].id == m1 && pending[2].id == m3);
        free(pending);
        docs = calloc(3, sizeof(*docs));
        check(docs);
        docs[0] = (StoreSearchDoc){.id = m1, .body = strdup("hello world\n")};
        docs[1] = (StoreSearchDoc){
                .id = m2, .body = strdup("本文に" WORD "があります " MARKER "\n"), .has_attachment = true};
        docs[2] = (StoreSearchDoc){.id = m3, .body = strdup("ab short\n")};
        w = (Wait){};
        check(store_search_put(s, docs, 3, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        check(store_search_count_pending(s, &n_pending) == 0 && n_pending == 0);

        EXPECT(s, "", m2, m1, m3);
        EXPECT(s, "検索テスト", m2, m1); /* body of m2, subject of m1 */
        EXPECT(s, "subject:検索テスト", m1);
        EXPECT(s, "body:検索テスト", m2);
        EXPECT(s, "from:alice", m2);
        EXPECT(s, "from:\"Alice Example\"", m2);
        EXPECT(s, "to:bob@example", m2);
        EXPECT(s, "folder:Archive", m3);
        EXPECT(s, "folder:INBOX is:unread", m1);
        EXPECT(s, "account:work", m2, m1, m3);
        EXPECT(s, "account:home", NONE);
        EXPECT(s, "is:flagged", m2);
        EXPECT(s, "is:read", m2, m3);
        EXPECT(s, "has:attachment", m2);
        EXPECT(s, "before:2024-01-01", m3);
        EXPECT(s, "after:2024-01-10", m2, m1);
        EXPECT(s, "after:2024-01-11", m2);
        EXPECT(s, "after:2024-01-01 before:2024-02-01", m1);
        EXPECT(s, "\"hello world\"", m1);
        EXPECT(s, "\"hello wor\"", m1); /* trigrams across the blank are not indexed: the LIKE decides */
        EXPECT(s, "\"hello wold\"", NONE);
        EXPECT(s, "\"o w\"", m1);         /* no trigram without a blank: a scan */
        EXPECT(s, "\"o x\"", NONE);
        EXPECT(s, "HELLO", m1);
        EXPECT(s, "\"world hello\"", NONE);
        EXPECT(s, "ab", m3); /* two characters: the scan, not the index */
        EXPECT(s, "hello alice", NONE);
        EXPECT(s, "https://example.org/", NONE);
        expect(s, "account:work", 1, 1, (const int64_t[]){m1, -1});
        expect(s, "account:work", 3, 10, (const int64_t[]){-1});
        check(store_search(s, "is:bogus", 0, 10, &msgs, &n, &error) == STORE_SEARCH_E_QUERY);
        check(error && strstr(error, "bogus"));
        free(error);

        /* Indexed again (its body changed): one row, the new text only. */
        docs = calloc(1, sizeof(*docs));
        check(docs);
        docs[0] = (StoreSearchDoc){.id = m1, .body = strdup("goodbye world\n")};
        w = (Wait){};
        check(store_search_put(s, docs, 1, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        EXPECT(s, "hello", NONE);
        EXPECT(s, "\"goodbye world\"", m1);
        EXPECT(s, "world", m1);

        /* A deleted message leaves the index with it. */
        w = (Wait){};
        check(store_message_expunge(s, archive, (const uint32_t[]){1}, 1, wait_id_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        EXPECT(s, "ab", NONE);

        /* Encrypted, nothing of the index is readable in the files, the WAL included (checked before the
         * close checkpoints it away). */
        snprintf(wal, sizeof(wal), "%s-wal", path);
        if (key) {
                check(!file_has(path, MARKER) && !file_has(wal, MARKER));
                check(!file_has(path, "ZEBRA") && !file_has(wal, "ZEBRA"));
                check(!file_has(path, "検索") && !file_has(wal, "検索"));
        } else {
                check(file_has(path, MARKER) || file_has(wal, MARKER)); /* the check can see plaintext */
        }
        close_store(s);
        if (key)
                check(!file_has(path, MARKER) && !file_has(wal, MARKER));
}

/* A store indexed by a tegami of schema version 3 (the index with positions): opened by this one,
 * the index is rebuilt without them and every message waits for indexing again, then is found. */
static void test_migrate_from_v3(const char *dir) {
        const StoreMigration *steps;
        StoreSearchDoc *docs;
        uint64_t n_pending;
        size_t n_steps;
        char path[512];
        sqlite3 *db = NULL;
        Wait w = {};
        Store *s;

        snprintf(path, sizeof(path), "%s/v3.db", dir);
        steps = store_schema_get_steps(&n_steps);
        check(n_steps >= 4);
        check(store_db_open(path, key, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db) == 0);
        check(store_schema_migrate_steps(db, steps, 3) == 0);
        check(sqlite3_exec(db,
                           "INSERT INTO accounts (id, name) VALUES (1, 'work');"
                           "INSERT INTO folders (id, account_id, name) VALUES (1, 1, 'INBOX');"
                           "INSERT INTO messages (id, folder_id, uid, subject, cid, indexed, has_attachment)"
                           "  VALUES (1, 1, 1, 'old index', zeroblob(32), 1, 1);"
                           "INSERT INTO search (rowid, subject, body) VALUES (1, 'old index', 'kangaroo');",
                           NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);

        check(store_open(&loop, path, key, &s) == 0);
        check(store_search_count_pending(s, &n_pending) == 0 && n_pending == 1);
        EXPECT(s, "kangaroo", NONE);    /* the old index is gone */
        EXPECT(s, "has:attachment", 1); /* kept until the indexer has looked again */
        docs = calloc(1, sizeof(*docs));
        check(docs);
        docs[0] = (StoreSearchDoc){.id = 1, .body = strdup("a kangaroo again")};
        check(store_search_put(s, docs, 1, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        check(store_search_count_pending(s, &n_pending) == 0 && n_pending == 0);
        EXPECT(s, "kangaroo", 1);
        EXPECT(s, "\"kangaroo again\"", 1);
        EXPECT(s, "\"kangaroo agian\"", NONE);
        EXPECT(s, "has:attachment", NONE);
        close_store(s);
}

/* The index as schema step 6 makes it: no trigram holding a blank (store/fts-tokenizer.c), and
 * leaves that fit a page (a leaf bigger than the 4,021 bytes a row keeps in a page, with the 40
 * bytes the encrypting VFS reserves, would spill to an overflow page of its own). */
static void test_index_shape(const char *dir) {
        enum { N_DOCS = 40, DOC_WORDS = 2000 };
        StoreSearchDoc *docs;
        char path[512];
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t acct, inbox, max_len, n_blocks;
        Wait w = {};
        Store *s;

        acct = open_with_account(dir, "leaves.db", path, sizeof(path), &s);
        inbox = upsert_folder(s, acct, "INBOX");
        docs = calloc(N_DOCS, sizeof(*docs));
        check(docs);
        for (int i = 0; i < N_DOCS; i++) {
                char *b = malloc(DOC_WORDS * 8 + 1), *o = b;

                check(b);
                for (int k = 0; k < DOC_WORDS; k++) { /* random 7-letter words: many distinct trigrams */
                        for (int c = 0; c < 7; c++)
                                *o++ = (char)('a' + randombytes_uniform(26));
                        *o++ = ' ';
                }
                *o = '\0';
                docs[i] = (StoreSearchDoc){.id = insert(s, inbox, (uint32_t)i + 1, 1704888000, 0, "a@example.org",
                                                        "b@example.org", "leaves"),
                                           .body = b};
        }
        check(store_search_put(s, docs, N_DOCS, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        close_store(s);

        check(store_db_open(path, key, SQLITE_OPEN_READONLY, &db) == 0);
        check(sqlite3_prepare_v2(db, "SELECT max(length(block)), count(*) FROM search_data", -1, &st, NULL) ==
              SQLITE_OK);
        check(sqlite3_step(st) == SQLITE_ROW);
        max_len = sqlite3_column_int64(st, 0);
        n_blocks = sqlite3_column_int64(st, 1);
        sqlite3_finalize(st);
        check(n_blocks > 50); /* the index spans many leaves */
        check(max_len > 3000 && max_len <= 4000);

        check(sqlite3_exec(db, "CREATE VIRTUAL TABLE temp.vocab USING fts5vocab('main', 'search', 'row')", NULL,
                           NULL, NULL) == SQLITE_OK);
        check(sqlite3_prepare_v2(db,
                                 "SELECT count(*), count(*) FILTER (WHERE term GLOB '* *'), "
                                 "count(*) FILTER (WHERE term GLOB '*@*') FROM temp.vocab",
                                 -1, &st, NULL) == SQLITE_OK);
        check(sqlite3_step(st) == SQLITE_ROW);
        check(sqlite3_column_int64(st, 0) > 1000);   /* the words' trigrams */
        check(sqlite3_column_int64(st, 1) == 0);     /* none across a blank */
        check(sqlite3_column_int64(st, 2) > 0);      /* the addresses' */
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static void run_all(const char *label) {
        char dir[] = "/tmp/tegami-test-search-XXXXXX";
        char cmd[128];

        check(mkdtemp(dir));
        test_search(dir);
        test_migrate_from_v3(dir);
        test_index_shape(dir);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        check(system(cmd) == 0);
        printf("%s: ok\n", label);
}

int main(void) {
        uint8_t k[32];

        check(sodium_init() >= 0);
        check(uv_loop_init(&loop) == 0);
        test_parse();
        key = NULL;
        run_all("plain");
        if (store_db_have_encryption()) {
                randombytes_buf(k, sizeof(k));
                key = k;
                run_all("encrypted");
        }
        check(uv_loop_close(&loop) == 0);
        return 0;
}
