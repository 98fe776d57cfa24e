/*
 * The data key and its wrapping. The data key is 32 random bytes; on disk it
 * exists only sealed (XChaCha20-Poly1305) in STORE.keywrap, a 120-byte file:
 *
 *     0 "TGKWRAP1" · 8 kind · 9 zero[7] · 16 opslimit (u64 LE) · 24 memlimit (u64 LE)
 *     · 32 salt[16] · 48 nonce[24] · 72 sealed data key[32 + 16]
 *
 * with bytes [0, 48) as associated data, so the kind and the Argon2id costs
 * cannot be changed without breaking the seal. The key-encryption key (KEK)
 * comes from the kind: 32 random bytes in STORE.key (mode 0600, refused when
 * looser), 32 random bytes in a Secret Service item, or Argon2id of the
 * passphrase with the salt and costs above. So changing the passphrase or the
 * KEK rewrites only the 120 bytes; rekey changes the data key and re-encrypts
 * the store (crypt_vfs_rekey), and STORE.keywrap.next carries the new wrapped
 * key across that step so a crash at any point is finished or rolled back by
 * the next keys_open().
 *
 * Every KEK and data key lives in sodium_malloc'd memory, is wiped on free,
 * and is never logged. Files are replaced atomically (write, fsync, rename,
 * fsync the directory). Runs on whichever thread opens the store, before the
 * store is opened; nothing here keeps state between calls (except the
 * Argon2id costs tests may lower).
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/crypt-vfs.h"
#include "store/keys.h"
#include "util/secret-service.h"
#include "util/macro.h"

#define WRAP_MAGIC   "TGKWRAP1"
#define WRAP_SIZE    120
#define WRAP_AD      48
#define KEY          KEYS_DATA_KEY_BYTES
#define MEMLIMIT_CAP (1ULL << 30) /* refuse stored costs that would exhaust memory */

static unsigned long long pwhash_ops = crypto_pwhash_OPSLIMIT_MODERATE;
static size_t pwhash_mem = crypto_pwhash_MEMLIMIT_MODERATE;

static const char *const kind_names[] = {
        [KEYS_KIND_AUTO] = "auto",
        [KEYS_KIND_FILE] = "file",
        [KEYS_KIND_SECRET_SERVICE] = "secret-service",
        [KEYS_KIND_PASSPHRASE] = "passphrase",
};

/* Paths and secrets of one operation on one store. */
typedef struct Keys {
        const char *store;
        char *abs;     /* absolute store path: the Secret Service attribute */
        char *keyfile; /* STORE.key */
        char *wrap;    /* STORE.keywrap */
        char *next;    /* STORE.keywrap.next */
        uint8_t raw[WRAP_SIZE];
        uint8_t *kek; /* sodium_malloc'd */
        char **errp;
} Keys;

_printf_(2, 3) static void keys_error(Keys *k, const char *fmt, ...) {
        va_list ap;

        if (!k->errp || *k->errp)
                return;
        va_start(ap, fmt);
        if (vasprintf(k->errp, fmt, ap) < 0)
                *k->errp = NULL;
        va_end(ap);
}

const char *keys_kind_to_string(KeysKind kind) {
        return (unsigned)kind < ARRAY_SIZE(kind_names) ? kind_names[kind] : "unknown";
}

int keys_kind_from_string(const char *s) {
        for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
                if (strcmp(s, kind_names[i]) == 0)
                        return (int)i;
        return -EINVAL;
}

KeysKind keys_kind_resolve(KeysKind kind) {
        if (kind != KEYS_KIND_AUTO)
                return kind;
        return secret_service_available() ? KEYS_KIND_SECRET_SERVICE : KEYS_KIND_FILE;
}

uint8_t *keys_free(uint8_t *key) {
        if (key)
                sodium_free(key);
        return NULL;
}

void keys_pwhash_limits_set(unsigned long long opslimit, size_t memlimit) {
        pwhash_ops = opslimit;
        pwhash_mem = memlimit;
}

static void keys_deinit(Keys *k) {
        free(k->abs);
        free(k->keyfile);
        free(k->wrap);
        free(k->next);
        k->kek = keys_free(k->kek);
        sodium_memzero(k->raw, sizeof k->raw);
        k->abs = k->keyfile = k->wrap = k->next = NULL;
}

static int keys_init(Keys *k, const char *store, char **errp) {
        _cleanup_free_ char *dir = strdup(store), *real = NULL;
        const char *base = strrchr(store, '/');
        char *slash;

        *k = (Keys){.store = store, .errp = errp};
        if (errp)
                *errp = NULL;
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        real = realpath(slash ? dir : ".", NULL);
        if (!real) {
                keys_error(k, "store directory of %s: %s", store, strerror(errno));
                return -errno;
        }
        base = base ? base + 1 : store;
        if (asprintf(&k->abs, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base) < 0 ||
            asprintf(&k->keyfile, "%s.key", store) < 0 || asprintf(&k->wrap, "%s.keywrap", store) < 0 ||
            asprintf(&k->next, "%s.keywrap.next", store) < 0 || !(k->kek = sodium_malloc(KEY))) {
                keys_deinit(k);
                return -ENOMEM;
        }
        return 0;
}

static int fsync_dir_of(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        _cleanup_close_ int fd = -1;
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

/* Writes data to path through path.tmp, mode 0600, durably. */
static int write_atomic(const char *path, const uint8_t *data, size_t n) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;

        if (asprintf(&tmp, "%s.tmp", path) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, data, n) != (ssize_t)n || fsync(fd) < 0 || rename(tmp, path) < 0) {
                int e = errno ? errno : EIO;

                unlink(tmp);
                return -e;
        }
        return fsync_dir_of(path);
}

/* Reads a wrap file into raw: 0, -ENOENT, KEYS_E_MISMATCH when it is not one, or -errno. */
static int wrap_read(Keys *k, const char *path, uint8_t raw[WRAP_SIZE]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t buf[WRAP_SIZE + 1]; /* one more: a longer file is not ours either */
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof buf);
        if (n < 0) {
                keys_error(k, "cannot read %s: %s", path, strerror(errno));
                return -errno;
        }
        memcpy(raw, buf, WRAP_SIZE);
        if (n != WRAP_SIZE || memcmp(raw, WRAP_MAGIC, 8) != 0 || raw[8] == KEYS_KIND_AUTO ||
            raw[8] >= ARRAY_SIZE(kind_names)) {
                keys_error(k, "%s is not a tegami key wrap file", path);
                return KEYS_E_MISMATCH;
        }
        return 0;
}

static uint64_t get_le64(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

static void put_le64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/* Fills the header of raw for kind (fresh salt and current costs for a passphrase). */
static void wrap_header(uint8_t raw[WRAP_SIZE], KeysKind kind) {
        memset(raw, 0, WRAP_AD);
        memcpy(raw, WRAP_MAGIC, 8);
        raw[8] = (uint8_t)kind;
        if (kind == KEYS_KIND_PASSPHRASE) {
                put_le64(raw + 16, pwhash_ops);
                put_le64(raw + 24, pwhash_mem);
                randombytes_buf(raw + 32, crypto_pwhash_SALTBYTES);
        }
}

static void wrap_seal(uint8_t raw[WRAP_SIZE], const uint8_t *kek, const uint8_t *key) {
        randombytes_buf(raw + WRAP_AD, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
        crypto_aead_xchacha20poly1305_ietf_encrypt(raw + 72, NULL, key, KEY, raw, WRAP_AD, NULL, raw + WRAP_AD, kek);
}

static bool wrap_open(const uint8_t raw[WRAP_SIZE], const uint8_t *kek, uint8_t *key) {
        return crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL, raw + 72, KEY + 16, raw, WRAP_AD,
                                                          raw + WRAP_AD, kek) == 0;
}

/* KEK from STORE.key; creates it (0600, random) when create and it is missing. */
static int kek_from_file(Keys *k, bool create) {
        _cleanup_close_ int fd = open(k->keyfile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;

        if (fd < 0 && errno == ENOENT && create) {
                _cleanup_close_ int wfd = open(k->keyfile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

                randombytes_buf(k->kek, KEY);
                if (wfd < 0 || fchmod(wfd, 0600) < 0 || write(wfd, k->kek, KEY) != KEY || fsync(wfd) < 0) {
                        int e = errno ? errno : EIO;

                        keys_error(k, "cannot create key file %s: %s", k->keyfile, strerror(e));
                        if (wfd >= 0)
                                unlink(k->keyfile);
                        return -e;
                }
                return fsync_dir_of(k->keyfile);
        }
        if (fd < 0) {
                int e = errno;

                keys_error(k, "key file %s: %s", k->keyfile, strerror(e));
                return e == ENOENT ? KEYS_E_MISSING : -e;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((st.st_mode & 0077) != 0) {
                keys_error(k, "key file %s has mode %04o; it must be 0600, readable by its owner only (chmod 600 %s)",
                           k->keyfile, (unsigned)(st.st_mode & 07777), k->keyfile);
                return KEYS_E_INSECURE;
        }
        if (st.st_uid != geteuid()) {
                keys_error(k, "key file %s is owned by uid %u, not by uid %u who runs tegami", k->keyfile,
                           (unsigned)st.st_uid, (unsigned)geteuid());
                return KEYS_E_INSECURE;
        }
        if (!S_ISREG(st.st_mode) || st.st_size != KEY || read(fd, k->kek, KEY) != KEY) {
                keys_error(k, "key file %s is not a %d-byte key", k->keyfile, KEY);
                return KEYS_E_MISMATCH;
        }
        return 0;
}

/* KEK from the Secret Service item of this store; stores a new random one when create and none exists. */
static int kek_from_secret_service(Keys *k, bool create) {
        const SecretAttr attrs[] = {
                { "application", "tegami" },
                { "purpose", "store-key" },
                { "store", k->abs },
        };
        _cleanup_free_ char *label = NULL;
        uint8_t *secret = NULL;
        size_t n = 0;
        int r = secret_service_lookup(attrs, ARRAY_SIZE(attrs), &secret, &n, k->errp);

        if (r == 0 && n == KEY)
                memcpy(k->kek, secret, KEY);
        if (secret)
                sodium_free(secret);
        if (r == 0 && n != KEY) {
                keys_error(k, "Secret Service item for %s does not hold a %d-byte key", k->abs, KEY);
                return KEYS_E_MISMATCH;
        }
        if (r != SECRET_SERVICE_E_NOT_FOUND)
                return r;
        if (!create) {
                keys_error(k, "no Secret Service item for store %s (application=tegami purpose=store-key)", k->abs);
                return KEYS_E_MISSING;
        }
        if (asprintf(&label, "tegami store key (%s)", k->abs) < 0) {
                label = NULL;
                return -ENOMEM;
        }
        randombytes_buf(k->kek, KEY);
        return secret_service_store(attrs, ARRAY_SIZE(attrs), label, k->kek, KEY, k->errp);
}

/* KEK = Argon2id(passphrase) with the salt and costs in raw. */
static int kek_from_passphrase(Keys *k, const char *passphrase) {
        uint64_t ops = get_le64(k->raw + 16), mem = get_le64(k->raw + 24);

        if (!passphrase) {
                keys_error(k, "store %s is locked: its key needs the passphrase", k->store);
                return KEYS_E_LOCKED;
        }
        if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > 1000 || mem < crypto_pwhash_MEMLIMIT_MIN || mem > MEMLIMIT_CAP) {
                keys_error(k, "%s holds unreasonable Argon2id costs", k->wrap);
                return KEYS_E_MISMATCH;
        }
        if (crypto_pwhash(k->kek, KEY, passphrase, strlen(passphrase), k->raw + 32, ops, (size_t)mem,
                          crypto_pwhash_ALG_ARGON2ID13) != 0) {
                keys_error(k, "not enough memory for Argon2id (%llu MiB)", (unsigned long long)(mem >> 20));
                return -ENOMEM;
        }
        return 0;
}

static int kek_get(Keys *k, KeysKind kind, const char *passphrase, bool create) {
        switch (kind) {
        case KEYS_KIND_FILE:
                return kek_from_file(k, create);
        case KEYS_KIND_SECRET_SERVICE:
                return kek_from_secret_service(k, create);
        case KEYS_KIND_PASSPHRASE:
                return kek_from_passphrase(k, passphrase);
        case KEYS_KIND_AUTO:
                break;
        }
        return -EINVAL;
}

/* A store without a wrap file: creates the data key, its KEK and the wrap. */
static int keys_create(Keys *k, KeysKind kind, const char *passphrase, uint8_t *key) {
        struct stat st;
        int r;

        if (stat(k->store, &st) == 0 && st.st_size > 0) {
                keys_error(k, "store %s exists but its key wrap file %s is missing", k->store, k->wrap);
                return KEYS_E_MISSING;
        }
        kind = keys_kind_resolve(kind);
        if (kind == KEYS_KIND_PASSPHRASE && (!passphrase || !*passphrase)) {
                keys_error(k, "store %s is new: a passphrase must be set first", k->store);
                return KEYS_E_LOCKED;
        }
        wrap_header(k->raw, kind);
        r = kek_get(k, kind, passphrase, true);
        if (r != 0)
                return r;
        randombytes_buf(key, KEY);
        wrap_seal(k->raw, k->kek, key);
        r = write_atomic(k->wrap, k->raw, WRAP_SIZE);
        if (r < 0)
                keys_error(k, "cannot write %s: %s", k->wrap, strerror(-r));
        return r;
}

/* Reads the wrap (creating everything for a new store) and unwraps the data key into key. */
static int keys_unlock(Keys *k, KeysKind kind, const char *passphrase, uint8_t *key) {
        KeysKind stored;
        int r = wrap_read(k, k->wrap, k->raw);

        if (r == -ENOENT)
                return keys_create(k, kind, passphrase, key);
        if (r != 0)
                return r;
        stored = k->raw[8];
        if (kind != KEYS_KIND_AUTO && kind != stored) {
                keys_error(k, "the key of store %s is kept by %s, but %s was asked for", k->store,
                           keys_kind_to_string(stored), keys_kind_to_string(kind));
                return KEYS_E_KIND;
        }
        r = kek_get(k, stored, passphrase, false);
        if (r != 0)
                return r;
        if (wrap_open(k->raw, k->kek, key))
                return 0;
        if (stored == KEYS_KIND_PASSPHRASE) {
                keys_error(k, "wrong passphrase for store %s", k->store);
                return KEYS_E_BAD_PASSPHRASE;
        }
        keys_error(k, "the %s key does not open %s (damaged, or the key was replaced)", keys_kind_to_string(stored),
                   k->wrap);
        return KEYS_E_MISMATCH;
}

/* Opens the store with key and closes it: 0, CRYPT_VFS_E_DAMAGED, or a negative errno. */
static int keys_try_store(const char *store, const uint8_t *key) {
        sqlite3 *db = NULL;
        int r = crypt_vfs_open(store, key, SQLITE_OPEN_READWRITE, &db);

        sqlite3_close(db);
        return r;
}

/* An interrupted rekey left STORE.keywrap.next: keep whichever key the store file is under now. */
static int keys_finish_rekey(Keys *k, uint8_t *key) {
        _cleanup_key_ uint8_t *next = sodium_malloc(KEY);
        _cleanup_free_ char *tmp = NULL;
        uint8_t raw[WRAP_SIZE];
        int r;

        if (access(k->next, F_OK) < 0)
                return 0;
        if (!next)
                return -ENOMEM;
        r = wrap_read(k, k->next, raw) == 0 && wrap_open(raw, k->kek, next) ? keys_try_store(k->store, next)
                                                                            : CRYPT_VFS_E_DAMAGED;
        if (r == 0) {
                /* The store was replaced: the new key is the key. */
                if (rename(k->next, k->wrap) < 0)
                        return -errno;
                memcpy(key, next, KEY);
                return fsync_dir_of(k->wrap);
        }
        if (r != CRYPT_VFS_E_DAMAGED)
                return r; /* cannot tell now; decide on a later open */
        r = keys_try_store(k->store, key);
        if (r != 0) {
                keys_error(k, "store %s opens with neither its key nor the key of an interrupted rekey (%s)", k->store,
                           k->next);
                return r == CRYPT_VFS_E_DAMAGED ? KEYS_E_MISMATCH : r;
        }
        /* The store was never replaced: drop the new key and the half-made copy. */
        if (asprintf(&tmp, "%s.rekey", k->store) > 0)
                unlink(tmp);
        else
                tmp = NULL;
        return unlink(k->next) < 0 ? -errno : 0;
}

int keys_open(const char *store_path, KeysKind kind, const char *passphrase, uint8_t **keyp, char **errp) {
        _cleanup_key_ uint8_t *key = NULL;
        Keys k;
        int r;

        *keyp = NULL;
        r = keys_init(&k, store_path, errp);
        if (r != 0)
                return r;
        key = sodium_malloc(KEY);
        r = key ? keys_unlock(&k, kind, passphrase, key) : -ENOMEM;
        if (r == 0)
                r = keys_finish_rekey(&k, key);
        if (r < 0)
                keys_error(&k, "store key of %s: %s", store_path, strerror(-r));
        keys_deinit(&k);
        if (r == 0)
                *keyp = TAKE_PTR(key);
        return r;
}

int keys_stored_kind(const char *store_path, KeysKind *kindp) {
        Keys k;
        int r = keys_init(&k, store_path, NULL);

        if (r == 0)
                r = wrap_read(&k, k.wrap, k.raw);
        if (r == 0)
                *kindp = k.raw[8];
        keys_deinit(&k);
        return r == KEYS_E_MISMATCH ? -EBADMSG : r;
}

int keys_passphrase_change(const char *store_path, const char *old_passphrase, const char *new_passphrase,
                           char **errp) {
        _cleanup_key_ uint8_t *key = sodium_malloc(KEY);
        Keys k;
        int r = keys_init(&k, store_path, errp);

        if (r != 0)
                return r;
        if (!key)
                r = -ENOMEM;
        else if (!new_passphrase || !*new_passphrase) {
                keys_error(&k, "the new passphrase is empty");
                r = KEYS_E_BAD_PASSPHRASE;
        } else if (access(k.wrap, F_OK) < 0) {
                keys_error(&k, "store %s has no key yet", store_path);
                r = KEYS_E_MISSING;
        } else
                r = keys_unlock(&k, KEYS_KIND_PASSPHRASE, old_passphrase, key);
        if (r == 0) {
                wrap_header(k.raw, KEYS_KIND_PASSPHRASE); /* a fresh salt: the old passphrase is useless now */
                r = kek_from_passphrase(&k, new_passphrase);
        }
        if (r == 0) {
                wrap_seal(k.raw, k.kek, key);
                r = write_atomic(k.wrap, k.raw, WRAP_SIZE);
                if (r < 0)
                        keys_error(&k, "cannot write %s: %s", k.wrap, strerror(-r));
        }
        keys_deinit(&k);
        return r;
}

int keys_rekey(const char *store_path, KeysKind kind, const char *passphrase, char **errp) {
        _cleanup_key_ uint8_t *key = sodium_malloc(KEY), *fresh = sodium_malloc(KEY);
        uint8_t raw[WRAP_SIZE];
        Keys k;
        int r = keys_init(&k, store_path, errp);

        if (r != 0)
                return r;
        if (!key || !fresh)
                r = -ENOMEM;
        else if (access(k.wrap, F_OK) < 0) {
                keys_error(&k, "store %s has no key yet", store_path);
                r = KEYS_E_MISSING;
        } else
                r = keys_unlock(&k, kind, passphrase, key);
        if (r == 0)
                r = keys_finish_rekey(&k, key);
        if (r == 0) {
                /* Same KEK and header; the new data key travels in .next until the store is replaced. */
                randombytes_buf(fresh, KEY);
                memcpy(raw, k.raw, WRAP_AD);
                wrap_seal(raw, k.kek, fresh);
                r = write_atomic(k.next, raw, WRAP_SIZE);
        }
        if (r == 0) {
                r = crypt_vfs_rekey(store_path, key, fresh);
                if (r != 0) {
                        unlink(k.next);
                        if (r == CRYPT_VFS_E_DAMAGED) {
                                keys_error(&k, "store %s: %s", store_path, CRYPT_VFS_DAMAGED_MSG);
                                r = KEYS_E_MISMATCH;
                        }
                } else if (rename(k.next, k.wrap) < 0)
                        r = -errno; /* the next keys_open() finishes it */
                else
                        r = fsync_dir_of(k.wrap);
        }
        if (r < 0)
                keys_error(&k, "rekey of %s: %s", store_path, strerror(-r));
        keys_deinit(&k);
        return r;
}
