/*
 * The store's data key: 32 random bytes that the encrypting VFS uses, kept on
 * disk only wrapped (XChaCha20-Poly1305) in STORE.keywrap beside the store,
 * under a key-encryption key from a key file, the Secret Service or a
 * passphrase. Keys returned here live in sodium_malloc'd memory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

/* Where the key-encryption key comes from ([store] key = ...). Same order as daemon's StoreKeyKind. */
typedef enum KeysKind {
        KEYS_KIND_AUTO,           /* Secret Service when a provider is on the bus, else file */
        KEYS_KIND_FILE,           /* STORE.key beside the store, mode 0600 */
        KEYS_KIND_SECRET_SERVICE, /* freedesktop Secret Service item */
        KEYS_KIND_PASSPHRASE,     /* Argon2id of a passphrase; the store starts locked */
} KeysKind;

#define KEYS_DATA_KEY_BYTES 32

/* Positive results: expected outcomes the caller reports (with the message from errp). */
#define KEYS_E_LOCKED         1 /* passphrase store: a passphrase is needed */
#define KEYS_E_BAD_PASSPHRASE 2 /* the passphrase does not unwrap the key */
#define KEYS_E_INSECURE       3 /* the key file is readable or writable by others */
#define KEYS_E_MISMATCH       4 /* the key-encryption key does not unwrap the key (damaged or replaced) */
#define KEYS_E_MISSING        5 /* the store exists but its key material is gone */
#define KEYS_E_KIND           6 /* the store's key is kept by another kind than asked for */

/* "auto", "file", "secret-service", "passphrase". */
const char *keys_kind_to_string(KeysKind kind);

/* Parses the names above; -EINVAL when unknown. */
int keys_kind_from_string(const char *s);

/* What a new store of kind would use: auto becomes secret-service when secret_service_available(),
 * else file; other kinds are returned unchanged. */
KeysKind keys_kind_resolve(KeysKind kind);

/* The kind recorded for the store at store_path: 0 and *kindp, or -ENOENT when it has no key yet.
 * A passphrase kind means the store stays locked until keys_open() gets the passphrase. */
int keys_stored_kind(const char *store_path, KeysKind *kindp);

/* Unwraps the data key of the store at store_path, creating key and key-encryption key on first use
 * (for passphrase, passphrase becomes the store's passphrase). passphrase is used by the passphrase
 * kind only, and may be NULL. Finishes a rekey that was interrupted. Returns 0 and *keyp
 * (KEYS_DATA_KEY_BYTES, free with keys_free); a KEYS_E_* code; or a negative errno. Either way,
 * when errp is not NULL and the result is not 0, *errp is a malloc'd message naming the file or
 * service and the reason. */
int keys_open(const char *store_path, KeysKind kind, const char *passphrase, uint8_t **keyp, char **errp);

/* Rewraps the data key of a passphrase store under new_passphrase; the store is not touched and
 * old_passphrase stops working. Returns as keys_open. */
int keys_passphrase_change(const char *store_path, const char *old_passphrase, const char *new_passphrase, char **errp);

/* Re-encrypts the store under a new random data key (crypt_vfs_rekey) and rewraps it. The store must
 * be closed. A crash in between is finished or rolled back by the next keys_open(). Returns as
 * keys_open, or CRYPT_VFS_E_DAMAGED-style failures as KEYS_E_MISMATCH. */
int keys_rekey(const char *store_path, KeysKind kind, const char *passphrase, char **errp);

/* Wipes and frees a key from keys_open; accepts NULL; returns NULL. */
uint8_t *keys_free(uint8_t *key);

static inline void keys_freep(uint8_t **key) {
        keys_free(*key);
}
#define _cleanup_key_ _cleanup_(keys_freep)

/* Argon2id costs for passphrases wrapped from now on (defaults: libsodium's MODERATE).
 * For tests; stored wraps keep the costs they were made with. */
void keys_pwhash_limits_set(unsigned long long opslimit, size_t memlimit);
