/*
 * Schema migrations. The schema is a list of SQL steps; PRAGMA user_version
 * records how many have run. Opening a store runs the missing steps in order,
 * each in its own transaction together with the version bump, so a crash
 * mid-migration leaves the store at the last whole version and the next open
 * resumes there. Steps are only ever appended; a shipped step never changes.
 *
 * Called on the opening thread before the writer thread starts, so nothing
 * else writes meanwhile.
 *
 * Bodies are content-addressed: `bodies.cid` is a keyed BLAKE2b of the bytes
 * (key in `meta`), NULL while a body is still being streamed in; its bytes
 * are rows of `body_chunks` of at most STORE_BODY_CHUNK bytes each, so neither
 * writing nor reading a body needs it whole in memory. Messages, POP3 state and
 * the outbox refer to a body by cid.
 */
#include <errno.h>
#include <stdio.h>

#include "store/db.h"
#include "store/fts-tokenizer.h"
#include "store/schema.h"
#include "util/log.h"

static const StoreMigration migrations[] = {
        /* 1: accounts, folders, messages, bodies. */
        {"CREATE TABLE meta ("
         "  name TEXT PRIMARY KEY,"
         "  value BLOB NOT NULL"
         ") WITHOUT ROWID;"
         "CREATE TABLE accounts ("
         "  id INTEGER PRIMARY KEY,"
         "  name TEXT NOT NULL UNIQUE"
         ");"
         "CREATE TABLE folders ("
         "  id INTEGER PRIMARY KEY,"
         "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
         "  name TEXT NOT NULL,"
         "  delimiter TEXT,"
         "  role INTEGER NOT NULL DEFAULT 0,"
         "  uidvalidity INTEGER NOT NULL DEFAULT 0,"
         "  uidnext INTEGER NOT NULL DEFAULT 0,"
         "  highestmodseq INTEGER NOT NULL DEFAULT 0,"
         "  subscribed INTEGER NOT NULL DEFAULT 0,"
         "  UNIQUE (account_id, name)"
         ");"
         "CREATE TABLE bodies ("
         "  id INTEGER PRIMARY KEY,"
         "  cid BLOB UNIQUE,"
         "  size INTEGER NOT NULL DEFAULT 0,"
         "  n_chunks INTEGER NOT NULL DEFAULT 0"
         ");"
         "CREATE TABLE body_chunks ("
         "  body_id INTEGER NOT NULL REFERENCES bodies(id) ON DELETE CASCADE,"
         "  seq INTEGER NOT NULL,"
         "  data BLOB NOT NULL,"
         "  PRIMARY KEY (body_id, seq)"
         ");"
         "CREATE TABLE messages ("
         "  id INTEGER PRIMARY KEY,"
         "  folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,"
         "  uid INTEGER NOT NULL,"
         "  modseq INTEGER NOT NULL DEFAULT 0,"
         "  flags INTEGER NOT NULL DEFAULT 0,"
         "  keywords TEXT,"
         "  internal_date INTEGER NOT NULL DEFAULT 0,"
         "  size INTEGER NOT NULL DEFAULT 0,"
         "  date INTEGER NOT NULL DEFAULT 0,"
         "  from_addr TEXT,"
         "  to_addr TEXT,"
         "  cc_addr TEXT,"
         "  subject TEXT,"
         "  message_id TEXT,"
         "  in_reply_to TEXT,"
         "  refs TEXT,"
         "  cid BLOB,"
         "  UNIQUE (folder_id, uid)"
         ");"
         "CREATE INDEX messages_by_cid ON messages(cid);"
         "CREATE INDEX messages_by_message_id ON messages(message_id);"},

        /* 2: what the protocol engines keep: POP3 state, outbox, pending changes. */
        {"CREATE TABLE pop3_messages ("
         "  id INTEGER PRIMARY KEY,"
         "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
         "  uidl TEXT NOT NULL,"
         "  first_seen INTEGER NOT NULL,"
         "  size INTEGER NOT NULL DEFAULT 0,"
         "  state INTEGER NOT NULL,"
         "  cid BLOB,"
         "  UNIQUE (account_id, uidl)"
         ");"
         "CREATE INDEX pop3_by_state ON pop3_messages(account_id, state);"
         "CREATE TABLE outbox ("
         "  id INTEGER PRIMARY KEY,"
         "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
         "  mail_from TEXT NOT NULL,"
         "  rcpts TEXT NOT NULL,"
         "  cid BLOB NOT NULL,"
         "  state INTEGER NOT NULL,"
         "  attempts INTEGER NOT NULL DEFAULT 0,"
         "  next_attempt INTEGER NOT NULL DEFAULT 0,"
         "  last_reply TEXT,"
         "  created INTEGER NOT NULL"
         ");"
         "CREATE INDEX outbox_due ON outbox(state, next_attempt);"
         "CREATE TABLE pending_changes ("
         "  id INTEGER PRIMARY KEY,"
         "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
         "  kind INTEGER NOT NULL,"
         "  folder_id INTEGER,"
         "  uid INTEGER NOT NULL DEFAULT 0,"
         "  target_folder_id INTEGER,"
         "  flags_add INTEGER NOT NULL DEFAULT 0,"
         "  flags_remove INTEGER NOT NULL DEFAULT 0,"
         "  keywords_add TEXT,"
         "  keywords_remove TEXT,"
         "  cid BLOB,"
         "  created INTEGER NOT NULL"
         ");"
         "CREATE INDEX pending_by_account ON pending_changes(account_id, id);"},

        /* 3: full-text search (store/search.c). An FTS5 table with the trigram tokenizer, so
         * Japanese needs no word splitter, keyed by message id; it lives in this file, so its pages
         * go through the encrypting VFS like every other. messages.indexed marks what the indexer
         * has done (0 = not yet), which is how it catches up after a crash; has_attachment is
         * filled by the indexer, which is the one that parses the MIME structure. */
        {"CREATE VIRTUAL TABLE search USING fts5("
         "  subject, from_addr, to_addr, cc_addr, body,"
         "  tokenize = 'trigram'"
         ");"
         "ALTER TABLE messages ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE messages ADD COLUMN has_attachment INTEGER NOT NULL DEFAULT 0;"
         "CREATE INDEX messages_unindexed ON messages(id) WHERE indexed = 0;"
         "CREATE INDEX messages_by_date ON messages(date, id);"
         "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN"
         "  DELETE FROM search WHERE rowid = old.id;"
         "END;"},

        /* 4: the search index without positions (detail=none), which makes it a fifteenth of the
         * size and indexing several times faster: a term's trigrams find candidates, and a LIKE on
         * the stored text checks them (store/search.c); no column sizes (they serve ranking,
         * which search does not do). Rebuilt by the indexer: every message is pending again. The
         * trigger names the table, so it stays. */
        {"DROP TABLE search;"
         "CREATE VIRTUAL TABLE search USING fts5("
         "  subject, from_addr, to_addr, cc_addr, body,"
         "  tokenize = 'trigram', detail = 'none', columnsize = 0"
         ");"
         "UPDATE messages SET indexed = 0 WHERE indexed != 0;"},

        /* 5: no index on messages.cid. Only the body collection asks which cids messages use, and
         * its NOT IN builds its own lookup once; the index cost every stored message a write to a
         * random page of it (a content id is a hash), about a fifth of the WAL of a bulk sync. */
        {"DROP INDEX IF EXISTS messages_by_cid;"},

        /* 6: the search index rebuilt (every message pending again) with two changes.
         * - Its tokenizer is "tegami_trigram" (store/fts-tokenizer.c): SQLite's trigram
         *   tokenizer without the trigrams holding a blank, a third of the tokens of Western
         *   text, which the trigrams inside the words and the LIKE check make redundant. The
         *   store registers it on every connection.
         * - Leaves of 4,000 bytes: FTS5 aims at 4,050, more than the 4,021 bytes a row keeps in
         *   a page whose last 40 bytes the encrypting VFS reserves, so every leaf spilled 3.5 KB
         *   to an overflow page of its own. */
        {"DROP TABLE search;"
         "CREATE VIRTUAL TABLE search USING fts5("
         "  subject, from_addr, to_addr, cc_addr, body,"
         "  tokenize = '" STORE_FTS_TOKENIZER "', detail = 'none', columnsize = 0"
         ");"
         "INSERT INTO search(search, rank) VALUES('pgsz', 4000);"
         "UPDATE messages SET indexed = 0 WHERE indexed != 0;"},
};

const StoreMigration *store_schema_get_steps(size_t *n_stepsp) {
        *n_stepsp = ARRAY_SIZE(migrations);
        return migrations;
}

int store_schema_get_version(sqlite3 *db, int *versionp) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_db_errno(rc);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_db_errno(rc) ?: -EIO;
        *versionp = sqlite3_column_int(st, 0);
        return 0;
}

static int schema_exec(sqlite3 *db, const char *sql) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                log_error("store: migration failed: %s", sqlite3_errmsg(db));
                return store_db_errno(rc);
        }
        return 0;
}

int store_schema_migrate_steps(sqlite3 *db, const StoreMigration *steps, size_t n_steps) {
        int version, r;

        r = store_schema_get_version(db, &version);
        if (r < 0)
                return r;
        if (version < 0 || (size_t)version > n_steps) {
                log_error("store: schema version %d is newer than this tegami knows (%zu)", version, n_steps);
                return -EPROTO;
        }

        for (size_t i = (size_t)version; i < n_steps; i++) {
                char bump[64];

                r = schema_exec(db, "BEGIN IMMEDIATE");
                if (r < 0)
                        return r;
                snprintf(bump, sizeof(bump), "PRAGMA user_version=%zu", i + 1);
                r = schema_exec(db, steps[i].sql);
                if (r >= 0)
                        r = schema_exec(db, bump);
                if (r >= 0)
                        r = schema_exec(db, "COMMIT");
                if (r < 0) {
                        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                        return r;
                }
                log_debug("store: schema migrated to version %zu", i + 1);
        }
        return 0;
}

int store_schema_migrate(sqlite3 *db) {
        return store_schema_migrate_steps(db, migrations, ARRAY_SIZE(migrations));
}
