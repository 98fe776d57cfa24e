/*
 * The encrypting SQLite VFS ("tegami-crypt"): every page of the main database,
 * the WAL and the rollback journal is sealed with XChaCha20-Poly1305. See the
 * opening comment of crypt-vfs.c for the on-disk layout.
 */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define CRYPT_VFS_NAME            "tegami-crypt"
#define CRYPT_VFS_KEY_BYTES       32
#define CRYPT_VFS_PAGE_SIZE       4096
#define CRYPT_VFS_RESERVE         40
#define CRYPT_VFS_BUSY_TIMEOUT_MS 5000 /* set on every connection opened here; callers may change it */

/* Positive result: the store failed authentication (tampered, damaged, or the key is wrong). */
#define CRYPT_VFS_E_DAMAGED   1
#define CRYPT_VFS_DAMAGED_MSG "store is damaged or the key is wrong"

/* Registers the VFS (not as the default), wrapping the default VFS. Idempotent and thread-safe.
 * Returns 0 or -ENOMEM / -ENOSYS (libsodium or SQLite unusable). */
int crypt_vfs_register(void);

/* After crypt_vfs_register(): true when pages are sealed through OpenSSL's ChaCha20-Poly1305 (same bytes as
 * libsodium's; see crypt-vfs.c), false when through libsodium (OpenSSL unusable, or TEGAMI_CRYPT_NO_OPENSSL set). */
bool crypt_vfs_uses_openssl(void);

/* Opens the store at path through the encrypting VFS with key (copied; the caller keeps its copy),
 * flags as sqlite3_open_v2 (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, ...). Sets page_size 4096,
 * 40 reserved bytes, temp_store=MEMORY, mmap_size=0, a busy timeout of CRYPT_VFS_BUSY_TIMEOUT_MS, and
 * reads page 1, so a wrong key or a damaged header is reported here. Returns 0 and *dbp; CRYPT_VFS_E_DAMAGED; or a
 * negative errno
 * (-ENOENT without SQLITE_OPEN_CREATE, -EACCES, -EIO, -ENOMEM). *dbp is NULL on failure. */
int crypt_vfs_open(const char *path, const uint8_t key[CRYPT_VFS_KEY_BYTES], int flags, sqlite3 **dbp);

/* Opens path on SQLite's default (plain) VFS with exactly the pragmas crypt_vfs_open sets (page size,
 * the same 40 reserved bytes, temp_store, mmap_size), so the page layout and I/O are identical and a
 * comparison measures only the cipher. For benchmarks. Same returns as crypt_vfs_open. */
int crypt_vfs_open_plain(const char *path, int flags, sqlite3 **dbp);

/* Re-encrypts every page of the store at path under new_key, atomically: the old file stays in
 * place until a complete copy under the new key is on disk (VACUUM INTO a temporary file beside it,
 * fsync, rename over, fsync the directory). No other connection may have the store open.
 * Returns 0; CRYPT_VFS_E_DAMAGED when old_key does not open it; or a negative errno. */
int crypt_vfs_rekey(const char *path, const uint8_t old_key[CRYPT_VFS_KEY_BYTES],
                    const uint8_t new_key[CRYPT_VFS_KEY_BYTES]);

/* True when an SQLite result code means the store failed authentication
 * (SQLITE_IOERR_DATA, SQLITE_NOTADB, SQLITE_CORRUPT and their extended forms). */
bool crypt_vfs_is_damage(int sqlite_rc);

/* The message to show for sqlite_rc on db: CRYPT_VFS_DAMAGED_MSG for damage, else sqlite3_errmsg. */
const char *crypt_vfs_errmsg(sqlite3 *db, int sqlite_rc);
