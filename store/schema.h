/*
 * The store's schema and its migrations, versioned by PRAGMA user_version.
 */
#pragma once

#include <sqlite3.h>
#include <stddef.h>

/* One migration: the SQL that takes the schema from version n to n + 1. */
typedef struct StoreMigration {
        const char *sql;
} StoreMigration;

/* Brings db up to the newest schema version, each step in its own
 * transaction. Returns 0, -EPROTO when the file is newer than this program,
 * or a negative errno. */
int store_schema_migrate(sqlite3 *db);

/* Same, with the caller's list of steps (tests use a prefix of the real list). */
int store_schema_migrate_steps(sqlite3 *db, const StoreMigration *steps, size_t n_steps);

/* The real list of steps and its length, which is the current version. */
const StoreMigration *store_schema_get_steps(size_t *n_stepsp);

/* Reads PRAGMA user_version into *versionp. */
int store_schema_get_version(sqlite3 *db, int *versionp);
