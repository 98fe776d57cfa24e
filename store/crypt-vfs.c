/*
 * "tegami-crypt": a SQLite VFS shim that seals every page of the main
 * database, the WAL and the rollback journal with XChaCha20-Poly1305 (IETF,
 * libsodium), in the spirit of SQLite's ext/misc/cksumvfs.c. SQLite itself is
 * not patched: it is told to use 4096-byte pages with 40 reserved bytes at the
 * end of each page, and this shim keeps a fresh 24-byte random nonce and the
 * 16-byte tag there. File sizes and offsets are exactly SQLite's own.
 *
 * Associated data is always dbid(16) || kind(1) || number(8, little-endian),
 * so a unit cannot be moved to another place, file or database. The dbid is
 * 16 random bytes chosen when the database is created.
 *
 * Main database, page N (number = N):
 *     [0, 4056) ciphertext · [4056, 4080) nonce · [4080, 4096) tag.
 *   Page 1 differs only in its first 16 bytes: on disk they hold the dbid in
 *   plaintext instead of "SQLite format 3\0" (a constant, put back on read),
 *   and the ciphertext covers [16, 4056). That is the only plaintext in the
 *   file: a random id. SQLite reads its 100-byte header (and 16 bytes at
 *   offset 24) with short reads; any read that is not a whole page decrypts
 *   the whole page into a buffer and copies the part asked for. (That header
 *   read happens at open without a lock, so page 1 is read twice before a
 *   failure counts: it may have raced a checkpoint.) Writes must be
 *   whole aligned pages, and page 1 must announce 4096-byte pages with at
 *   least 40 reserved bytes: anything else is refused, so a misconfigured
 *   connection fails instead of overwriting its own data with nonces.
 *
 * WAL: the 32-byte header (magic, page size, salts, checksum of itself) is
 *   plaintext: it holds no user data. Each frame (24-byte header + page =
 *   4120 bytes, frame index i = number) is sealed as one unit, because the
 *   frame header carries SQLite's running checksum of the plaintext page,
 *   which would otherwise let anyone test guesses of a page:
 *     [0, 4080) ciphertext of frame header || page[0, 4056) · nonce · tag.
 *   SQLite writes a frame as its header then its page; the header waits in the
 *   file until its page comes. Lone header or page rewrites of an existing
 *   frame (checksum rewrites in one transaction) read, patch and reseal it.
 *   A frame that fails authentication on a read starting at the frame (WAL
 *   recovery) reads as zeros: SQLite then sees a bad salt and ends the log
 *   there, exactly as it treats a torn write after power loss. Any other
 *   failing read is SQLITE_IOERR_DATA.
 *
 * Rollback journal: a record is page number(4) · page(4096) · checksum(4).
 *   The page number stays plaintext (it is the number in the associated
 *   data); page[0, 4056) and the checksum (a sum of plaintext bytes) are
 *   sealed together: [4, 4064) ciphertext · nonce · tag. SQLite writes the
 *   three parts separately: the page waits for its checksum. On playback the
 *   page read decrypts the record and keeps the checksum for the read that
 *   follows. A record that fails authentication is SQLITE_IOERR_DATA: SQLite
 *   plays back only the records it synced before touching the database, so
 *   a torn record is not a crash artefact (unless synchronous=OFF). The
 *   journal header (magic, counts, sizes, random checksum seed) passes
 *   through; any other write carrying data past byte 28 is refused.
 *
 * What passes through: locking, sync, truncate, file size, the -shm wal-index
 *   (page and frame numbers, salts, and the running checksum of the last
 *   frame: no page content; SQLite maps it directly, so it cannot be sealed
 *   here, and it is deleted when the last connection closes). Memory mapping is refused (xFetch
 *   returns no pointer), so every page goes through xRead. Any other file
 *   SQLite may open (temp databases, statement journals, super-journals) is
 *   refused: connections run with temp_store=MEMORY and never attach. (The
 *   one attached file, crypt_vfs_rekey's VACUUM INTO target, is a main
 *   database with a key of its own.) Putting back an older copy of all the
 *   files is not detected: nothing here remembers which state is newest.
 *
 * Keys: crypt_vfs_open hands the key to the main file's xOpen through a
 *   thread-local; the WAL and journal copy it from their main file. Each file
 *   keeps its copy in sodium_malloc'd memory and wipes it on close. Files of
 *   one connection are used by one thread at a time (SQLite's locking), and
 *   each file owns one reused work buffer: no allocation per page.
 *
 * The cipher: XChaCha20-Poly1305 is HChaCha20 (key, nonce[0, 16)) giving a
 *   subkey, then the IETF ChaCha20-Poly1305 AEAD under that subkey with the
 *   nonce 0^4 || nonce[16, 24) (draft-irtf-cfrg-xchacha, and exactly what
 *   libsodium's crypto_aead_xchacha20poly1305_ietf_* compute). libsodium
 *   derives the subkey; the bulk AEAD runs through OpenSSL's EVP
 *   chacha20-poly1305 when it is there, whose AVX-512 code seals a page in
 *   about half the time of libsodium 1.0.18's. The bytes are the same either
 *   way: registration checks OpenSSL against libsodium on a test page and
 *   falls back to libsodium for good if they differ or OpenSSL lacks the
 *   cipher (or TEGAMI_CRYPT_NO_OPENSSL is set: tests and benchmarks compare
 *   the two). Each file owns its EVP context (freed, and so cleansed, on close);
 *   the subkey lives on the stack for one page and is wiped after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/crypt-vfs.h"
#include "util/log.h"
#include "util/macro.h"

#define PAGE        CRYPT_VFS_PAGE_SIZE
#define NONCE       crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define TAG         crypto_aead_xchacha20poly1305_ietf_ABYTES    /* 16 */
#define USABLE      (PAGE - CRYPT_VFS_RESERVE)                   /* 4056 */
#define DBID        16
#define AD_LEN      (DBID + 1 + 8)
#define WAL_HDR     32
#define FRAME_HDR   24
#define FRAME       (FRAME_HDR + PAGE) /* 4120 */
#define JREC_SEALED (USABLE + 4)       /* page part + checksum */
#define JHDR_DATA   28                 /* meaningful bytes of a journal header */

static const char sqlite_magic[DBID] = "SQLite format 3";

typedef enum CryptKind {
        CRYPT_KIND_DB = 'D',
        CRYPT_KIND_WAL = 'W',
        CRYPT_KIND_JOURNAL = 'J',
} CryptKind;

typedef struct CryptFile CryptFile;
struct CryptFile {
        sqlite3_file base; /* must come first */
        CryptKind kind;
        uint8_t *key;        /* sodium_malloc'd copy */
        uint8_t *buf;        /* one work unit (FRAME bytes), reused */
        EVP_CIPHER_CTX *evp; /* OpenSSL's chacha20-poly1305, or NULL: libsodium */
        uint8_t dbid[DBID];  /* main database only */
        CryptFile *main;     /* the main database file (itself for the main database) */

        /* WAL: a frame header waiting for its page. */
        bool wal_pending;
        sqlite3_int64 wal_pending_off;
        uint8_t wal_pending_hdr[FRAME_HDR];

        /* Journal: the last 4-byte write (a page number?), a page waiting for its checksum in buf,
         * and the checksum of the last record read. */
        bool jn_pgno_valid, jn_page_pending, jn_cksum_valid;
        sqlite3_int64 jn_pgno_off, jn_page_off, jn_cksum_off;
        uint32_t jn_pgno, jn_page_pgno;
        uint8_t jn_cksum[4];
};

/* The real file lives right after ours (szOsFile covers both). */
#define REAL(f)   ((sqlite3_file *)((CryptFile *)(f) + 1))
#define ROOT(vfs) ((sqlite3_vfs *)((vfs)->pAppData))

static _Thread_local const uint8_t *crypt_pending_key;
static const sqlite3_io_methods crypt_io_methods;

static void crypt_ad(const CryptFile *f, uint64_t number, uint8_t ad[AD_LEN]) {
        memcpy(ad, f->main->dbid, DBID);
        ad[DBID] = (uint8_t)f->kind;
        for (unsigned i = 0; i < 8; i++)
                ad[DBID + 1 + i] = (uint8_t)(number >> (8 * i));
}

/* Random nonces drawn 128 at a time: one getrandom() per page written was a tenth of the writer's time.
 * Per thread, so no lock; they are public (stored beside each page), only their uniqueness matters. */
#define NONCE_POOL 128
static _Thread_local uint8_t nonce_pool[NONCE * NONCE_POOL];
static _Thread_local unsigned nonce_pool_left;

static void crypt_nonce(uint8_t nonce[NONCE]) {
        if (nonce_pool_left == 0) {
                randombytes_buf(nonce_pool, sizeof nonce_pool);
                nonce_pool_left = NONCE_POOL;
        }
        nonce_pool_left--;
        memcpy(nonce, nonce_pool + NONCE * nonce_pool_left, NONCE);
}

/* Whether OpenSSL's chacha20-poly1305 agrees with libsodium (crypt_register_once() checks). */
static bool crypt_use_evp;

/* The IETF ChaCha20-Poly1305 AEAD through OpenSSL, in place, on p[0, n) with the XChaCha20 nonce's
 * subkey and short nonce. Sealing writes the tag; opening checks it (and wipes p when it fails). */
static bool evp_aead(EVP_CIPHER_CTX *c, bool seal, uint8_t *p, size_t n, const uint8_t ad[AD_LEN],
                     const uint8_t nonce[NONCE], const uint8_t *key, uint8_t tag[TAG]) {
        uint8_t subkey[32], iv[12] = {0};
        int len, ok;

        crypto_core_hchacha20(subkey, nonce, key, NULL);
        memcpy(iv + 4, nonce + 16, 8);
        ok = EVP_CipherInit_ex(c, NULL, NULL, subkey, iv, seal);
        sodium_memzero(subkey, sizeof subkey);
        ok = ok && EVP_CipherUpdate(c, NULL, &len, ad, AD_LEN);
        ok = ok && EVP_CipherUpdate(c, p, &len, p, (int)n) && (size_t)len == n;
        if (seal)
                ok = ok && EVP_CipherFinal_ex(c, p + n, &len) &&
                     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG, tag) == 1;
        else
                ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TAG, tag) == 1 &&
                     EVP_CipherFinal_ex(c, p + n, &len) == 1;
        if (!ok && !seal)
                sodium_memzero(p, n); /* never leave unauthenticated plaintext behind */
        return ok;
}

/* Seals p[0, n) in place; the nonce and tag go to p[n, n + 40). False only if OpenSSL failed (then p[0, n) may
 * be half sealed, and the caller must not write it). */
static bool crypt_seal(const CryptFile *f, uint8_t *p, size_t n, uint64_t number) {
        uint8_t ad[AD_LEN];

        crypt_ad(f, number, ad);
        crypt_nonce(p + n);
        if (f->evp)
                return evp_aead(f->evp, true, p, n, ad, p + n, f->key, p + n + NONCE);
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(p, p + n + NONCE, NULL, p, n, ad, sizeof ad, NULL, p + n,
                                                            f->key);
        return true;
}

/* Opens p[0, n) in place (nonce and tag at p[n, n + 40)); false when it fails authentication. */
static bool crypt_unseal(const CryptFile *f, uint8_t *p, size_t n, uint64_t number) {
        uint8_t ad[AD_LEN], nonce[NONCE], tag[TAG];
        int rc;

        crypt_ad(f, number, ad);
        memcpy(nonce, p + n, NONCE);
        memcpy(tag, p + n + NONCE, TAG);
        if (f->evp)
                return evp_aead(f->evp, false, p, n, ad, nonce, f->key, tag);
        rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(p, NULL, p, n, tag, ad, sizeof ad, nonce, f->key);
        return rc == 0;
}

static uint32_t be32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- main database ---------------------------------------------------- */

/* Reads and opens page index pg (0-based) into dst (PAGE bytes). */
static int db_read_page(CryptFile *f, uint8_t *dst, sqlite3_int64 pg) {
        size_t skip = pg == 0 ? DBID : 0;
        uint8_t old_id[DBID];
        int rc;

        /* Page 1 gets a second chance: SQLite reads the header at open without a lock, so it can race a
         * checkpoint rewriting page 1 and see a torn page. Other pages are only read under SQLite's locks. */
        for (int attempt = 0; attempt < (pg == 0 ? 2 : 1); attempt++) {
                rc = REAL(f)->pMethods->xRead(REAL(f), dst, PAGE, pg * PAGE);
                if (rc != SQLITE_OK) {
                        if (rc == SQLITE_IOERR_SHORT_READ)
                                memset(dst, 0, PAGE); /* not written yet: SQLite treats it as absent */
                        return rc;
                }
                if (pg == 0) {
                        /* Page 1 is authoritative for the id, whoever created the database. */
                        memcpy(old_id, f->dbid, DBID);
                        memcpy(f->dbid, dst, DBID);
                }
                if (crypt_unseal(f, dst + skip, USABLE - skip, (uint64_t)pg + 1)) {
                        if (pg == 0)
                                memcpy(dst, sqlite_magic, DBID);
                        memset(dst + USABLE, 0, CRYPT_VFS_RESERVE);
                        return SQLITE_OK;
                }
                if (pg == 0)
                        memcpy(f->dbid, old_id, DBID);
        }
        memset(dst, 0, PAGE);
        sqlite3_log(SQLITE_IOERR_DATA, "tegami-crypt: page %lld failed authentication", pg + 1);
        return SQLITE_IOERR_DATA;
}

static int db_read(CryptFile *f, uint8_t *out, int n, sqlite3_int64 off) {
        sqlite3_int64 end = off + n;
        int result = SQLITE_OK;

        for (sqlite3_int64 pg = off / PAGE; pg * PAGE < end; pg++) {
                sqlite3_int64 start = pg * PAGE, from = off > start ? off : start;
                sqlite3_int64 to = end < start + PAGE ? end : start + PAGE;
                bool whole = from == start && to == start + PAGE;
                uint8_t *dst = whole ? out + (start - off) : f->buf;
                int rc = db_read_page(f, dst, pg);

                if (rc == SQLITE_IOERR_SHORT_READ)
                        result = rc;
                else if (rc != SQLITE_OK)
                        return rc;
                if (!whole)
                        memcpy(out + (from - off), f->buf + (from - start), (size_t)(to - from));
        }
        return result;
}

static int db_write(CryptFile *f, const uint8_t *in, int n, sqlite3_int64 off) {
        if (off % PAGE != 0 || n % PAGE != 0) {
                sqlite3_log(SQLITE_IOERR_WRITE, "tegami-crypt: refused a %d-byte write at %lld", n, off);
                return SQLITE_IOERR_WRITE;
        }
        for (int done = 0; done < n; done += PAGE) {
                const uint8_t *src = in + done;
                sqlite3_int64 pg = (off + done) / PAGE;
                size_t skip = pg == 0 ? DBID : 0;
                int rc;

                if (pg == 0 && (memcmp(src, sqlite_magic, DBID) != 0 || src[16] != PAGE >> 8 || src[17] != 0 ||
                                src[20] < CRYPT_VFS_RESERVE)) {
                        sqlite3_log(SQLITE_IOERR_WRITE, "tegami-crypt: page 1 lacks 4096-byte pages with %d reserved",
                                    CRYPT_VFS_RESERVE);
                        return SQLITE_IOERR_WRITE;
                }
                memcpy(f->buf, pg == 0 ? f->dbid : src, skip);
                memcpy(f->buf + skip, src + skip, USABLE - skip);
                if (!crypt_seal(f, f->buf + skip, USABLE - skip, (uint64_t)pg + 1))
                        return SQLITE_IOERR_WRITE;
                rc = REAL(f)->pMethods->xWrite(REAL(f), f->buf, PAGE, off + done);
                if (rc != SQLITE_OK)
                        return rc;
        }
        return SQLITE_OK;
}

/* ---- WAL ---------------------------------------------------------------- */

/* Reads frame i into buf and opens it: buf then holds the plaintext frame (reserved bytes zero). */
static int wal_read_frame(CryptFile *f, sqlite3_int64 i) {
        int rc = REAL(f)->pMethods->xRead(REAL(f), f->buf, FRAME, WAL_HDR + i * FRAME);

        if (rc != SQLITE_OK)
                return rc;
        if (!crypt_unseal(f, f->buf, FRAME_HDR + USABLE, (uint64_t)i))
                return SQLITE_IOERR_DATA;
        memset(f->buf + FRAME_HDR + USABLE, 0, CRYPT_VFS_RESERVE);
        return SQLITE_OK;
}

static int wal_write_frame(CryptFile *f, sqlite3_int64 i) {
        if (!crypt_seal(f, f->buf, FRAME_HDR + USABLE, (uint64_t)i))
                return SQLITE_IOERR_WRITE;
        return REAL(f)->pMethods->xWrite(REAL(f), f->buf, FRAME, WAL_HDR + i * FRAME);
}

/* Writes a frame header that no page followed: patches the frame already on disk. */
static int wal_flush(CryptFile *f) {
        sqlite3_int64 i;
        int rc;

        if (!f->wal_pending)
                return SQLITE_OK;
        f->wal_pending = false;
        i = (f->wal_pending_off - WAL_HDR) / FRAME;
        rc = wal_read_frame(f, i);
        if (rc == SQLITE_IOERR_SHORT_READ)
                return SQLITE_IOERR_WRITE; /* a new frame's header without its page */
        if (rc != SQLITE_OK)
                return rc;
        memcpy(f->buf, f->wal_pending_hdr, FRAME_HDR);
        return wal_write_frame(f, i);
}

static int wal_read(CryptFile *f, uint8_t *out, int n, sqlite3_int64 off) {
        sqlite3_int64 i, r;
        int rc = wal_flush(f);

        if (rc != SQLITE_OK)
                return rc;
        if (off + n <= WAL_HDR)
                return REAL(f)->pMethods->xRead(REAL(f), out, n, off);
        if (off < WAL_HDR)
                return SQLITE_IOERR_READ;
        i = (off - WAL_HDR) / FRAME;
        r = (off - WAL_HDR) % FRAME;
        if (r + n > FRAME)
                return SQLITE_IOERR_READ; /* SQLite never reads across frames */
        rc = wal_read_frame(f, i);
        if (rc == SQLITE_IOERR_SHORT_READ || (rc == SQLITE_IOERR_DATA && r == 0)) {
                /* Recovery reads whole frames from their start: an unreadable one ends the log. */
                memset(out, 0, (size_t)n);
                return rc == SQLITE_IOERR_DATA ? SQLITE_OK : rc;
        }
        if (rc == SQLITE_IOERR_DATA)
                sqlite3_log(rc, "tegami-crypt: WAL frame %lld failed authentication", i);
        if (rc != SQLITE_OK)
                return rc;
        memcpy(out, f->buf + r, (size_t)n);
        return SQLITE_OK;
}

static int wal_write(CryptFile *f, const uint8_t *in, int n, sqlite3_int64 off) {
        sqlite3_int64 i, r;
        int rc;

        if (off + n <= WAL_HDR) {
                rc = wal_flush(f);
                return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xWrite(REAL(f), in, n, off);
        }
        i = (off - WAL_HDR) / FRAME;
        r = (off - WAL_HDR) % FRAME;
        if (off >= WAL_HDR && r == 0 && n == FRAME_HDR) {
                rc = wal_flush(f);
                if (rc != SQLITE_OK)
                        return rc;
                memcpy(f->wal_pending_hdr, in, FRAME_HDR);
                f->wal_pending_off = off;
                f->wal_pending = true;
                return SQLITE_OK;
        }
        if (off < WAL_HDR || r != FRAME_HDR || n != PAGE) {
                sqlite3_log(SQLITE_IOERR_WRITE, "tegami-crypt: refused a %d-byte WAL write at %lld", n, off);
                return SQLITE_IOERR_WRITE;
        }
        if (f->wal_pending && f->wal_pending_off == off - FRAME_HDR) {
                f->wal_pending = false; /* the common case: a new frame, header then page */
                memcpy(f->buf, f->wal_pending_hdr, FRAME_HDR);
        } else {
                rc = wal_flush(f);
                if (rc == SQLITE_OK)
                        rc = wal_read_frame(f, i); /* a page rewritten within its transaction */
                if (rc != SQLITE_OK)
                        return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_WRITE : rc;
        }
        memcpy(f->buf + FRAME_HDR, in, USABLE);
        return wal_write_frame(f, i);
}

/* ---- rollback journal ----------------------------------------------------- */

/* Writes the page waiting in buf with checksum (all 4 bytes given). */
static int jn_write_record(CryptFile *f, const uint8_t cksum[4]) {
        f->jn_page_pending = false;
        memcpy(f->buf + USABLE, cksum, 4);
        if (!crypt_seal(f, f->buf, JREC_SEALED, f->jn_page_pgno))
                return SQLITE_IOERR_WRITE;
        return REAL(f)->pMethods->xWrite(REAL(f), f->buf, JREC_SEALED + CRYPT_VFS_RESERVE, f->jn_page_off);
}

static int jn_flush(CryptFile *f) {
        static const uint8_t no_cksum[4];

        /* SQLite always writes the checksum next; without it playback stops at this record anyway. */
        return f->jn_page_pending ? jn_write_record(f, no_cksum) : SQLITE_OK;
}

static int jn_read(CryptFile *f, uint8_t *out, int n, sqlite3_int64 off) {
        int rc = jn_flush(f);

        if (rc != SQLITE_OK)
                return rc;
        if (n == 4 && f->jn_cksum_valid && off == f->jn_cksum_off) {
                f->jn_cksum_valid = false;
                memcpy(out, f->jn_cksum, 4);
                return SQLITE_OK;
        }
        if (n != PAGE || off < 4)
                return REAL(f)->pMethods->xRead(REAL(f), out, n, off);

        /* A record's page: read it with its page number before it, and its checksum. */
        rc = REAL(f)->pMethods->xRead(REAL(f), f->buf, 4 + JREC_SEALED + CRYPT_VFS_RESERVE, off - 4);
        if (rc != SQLITE_OK) {
                memset(out, 0, (size_t)n);
                return rc;
        }
        if (!crypt_unseal(f, f->buf + 4, JREC_SEALED, be32(f->buf))) {
                sqlite3_log(SQLITE_IOERR_DATA, "tegami-crypt: journal record at %lld failed authentication", off);
                return SQLITE_IOERR_DATA;
        }
        memcpy(out, f->buf + 4, USABLE);
        memset(out + USABLE, 0, CRYPT_VFS_RESERVE);
        memcpy(f->jn_cksum, f->buf + 4 + USABLE, 4);
        f->jn_cksum_off = off + PAGE;
        f->jn_cksum_valid = true;
        return SQLITE_OK;
}

static int jn_write(CryptFile *f, const uint8_t *in, int n, sqlite3_int64 off) {
        bool after_pgno = f->jn_pgno_valid && off == f->jn_pgno_off + 4;
        int rc;

        f->jn_cksum_valid = false;
        if (f->jn_page_pending) {
                if (n == 4 && off == f->jn_page_off + PAGE)
                        return jn_write_record(f, in);
                rc = jn_flush(f);
                if (rc != SQLITE_OK)
                        return rc;
        }
        f->jn_pgno_valid = false;
        if (n == PAGE && after_pgno) {
                memcpy(f->buf, in, USABLE);
                f->jn_page_pgno = f->jn_pgno;
                f->jn_page_off = off;
                f->jn_page_pending = true;
                return SQLITE_OK;
        }
        if (n == 4) {
                f->jn_pgno = be32(in);
                f->jn_pgno_off = off;
                f->jn_pgno_valid = true;
        }
        for (int k = JHDR_DATA; k < n; k++)
                if (in[k] != 0) {
                        sqlite3_log(SQLITE_IOERR_WRITE, "tegami-crypt: refused a %d-byte journal write at %lld", n,
                                    off);
                        return SQLITE_IOERR_WRITE;
                }
        return REAL(f)->pMethods->xWrite(REAL(f), in, n, off);
}

/* ---- io methods ----------------------------------------------------------- */

static int crypt_flush(CryptFile *f) {
        if (f->kind == CRYPT_KIND_WAL)
                return wal_flush(f);
        if (f->kind == CRYPT_KIND_JOURNAL)
                return jn_flush(f);
        return SQLITE_OK;
}

static void crypt_file_release(CryptFile *f) {
        if (f->key)
                sodium_free(f->key);
        if (f->buf) {
                sodium_memzero(f->buf, FRAME);
                sqlite3_free(f->buf);
        }
        EVP_CIPHER_CTX_free(f->evp); /* cleanses the context */
        f->evp = NULL;
        f->key = f->buf = NULL;
}

static int crypt_close(sqlite3_file *file) {
        CryptFile *f = (CryptFile *)file;
        int rc = crypt_flush(f), rc2 = REAL(f)->pMethods->xClose(REAL(f));

        crypt_file_release(f);
        return rc != SQLITE_OK ? rc : rc2;
}

static int crypt_read(sqlite3_file *file, void *out, int n, sqlite3_int64 off) {
        CryptFile *f = (CryptFile *)file;

        switch (f->kind) {
        case CRYPT_KIND_DB:
                return db_read(f, out, n, off);
        case CRYPT_KIND_WAL:
                return wal_read(f, out, n, off);
        case CRYPT_KIND_JOURNAL:
                return jn_read(f, out, n, off);
        }
        return SQLITE_IOERR_READ;
}

static int crypt_write(sqlite3_file *file, const void *in, int n, sqlite3_int64 off) {
        CryptFile *f = (CryptFile *)file;

        switch (f->kind) {
        case CRYPT_KIND_DB:
                return db_write(f, in, n, off);
        case CRYPT_KIND_WAL:
                return wal_write(f, in, n, off);
        case CRYPT_KIND_JOURNAL:
                return jn_write(f, in, n, off);
        }
        return SQLITE_IOERR_WRITE;
}

static int crypt_truncate(sqlite3_file *file, sqlite3_int64 size) {
        CryptFile *f = (CryptFile *)file;
        int rc = crypt_flush(f);

        f->jn_cksum_valid = f->jn_pgno_valid = false;
        return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int crypt_sync(sqlite3_file *file, int flags) {
        CryptFile *f = (CryptFile *)file;
        int rc = crypt_flush(f);

        return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int crypt_file_size(sqlite3_file *file, sqlite3_int64 *sizep) {
        CryptFile *f = (CryptFile *)file;
        int rc = crypt_flush(f);

        return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFileSize(REAL(f), sizep);
}

static int crypt_lock(sqlite3_file *file, int lock) {
        return REAL(file)->pMethods->xLock(REAL(file), lock);
}

static int crypt_unlock(sqlite3_file *file, int lock) {
        return REAL(file)->pMethods->xUnlock(REAL(file), lock);
}

static int crypt_check_reserved_lock(sqlite3_file *file, int *outp) {
        return REAL(file)->pMethods->xCheckReservedLock(REAL(file), outp);
}

static int crypt_file_control(sqlite3_file *file, int op, void *arg) {
        if (op == SQLITE_FCNTL_MMAP_SIZE) {
                *(sqlite3_int64 *)arg = 0; /* every page must pass through xRead */
                return SQLITE_OK;
        }
        return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int crypt_sector_size(sqlite3_file *file) {
        return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int crypt_device_characteristics(sqlite3_file *file) {
        return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int crypt_shm_map(sqlite3_file *file, int pg, int pgsz, int extend, void volatile **pp) {
        return REAL(file)->pMethods->xShmMap(REAL(file), pg, pgsz, extend, pp);
}

static int crypt_shm_lock(sqlite3_file *file, int offset, int n, int flags) {
        return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}

static void crypt_shm_barrier(sqlite3_file *file) {
        REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int crypt_shm_unmap(sqlite3_file *file, int delete_flag) {
        return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}

static int crypt_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **pp) {
        *pp = NULL; /* no mapping: the bytes on disk are ciphertext */
        return SQLITE_OK;
}

static int crypt_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p) {
        return SQLITE_OK;
}

static const sqlite3_io_methods crypt_io_methods = {
        .iVersion = 3,
        .xClose = crypt_close,
        .xRead = crypt_read,
        .xWrite = crypt_write,
        .xTruncate = crypt_truncate,
        .xSync = crypt_sync,
        .xFileSize = crypt_file_size,
        .xLock = crypt_lock,
        .xUnlock = crypt_unlock,
        .xCheckReservedLock = crypt_check_reserved_lock,
        .xFileControl = crypt_file_control,
        .xSectorSize = crypt_sector_size,
        .xDeviceCharacteristics = crypt_device_characteristics,
        .xShmMap = crypt_shm_map,
        .xShmLock = crypt_shm_lock,
        .xShmBarrier = crypt_shm_barrier,
        .xShmUnmap = crypt_shm_unmap,
        .xFetch = crypt_fetch,
        .xUnfetch = crypt_unfetch,
};

/* ---- vfs ------------------------------------------------------------------- */

static int crypt_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags) {
        CryptFile *f = (CryptFile *)file;
        const uint8_t *key = NULL;
        int rc;

        memset(f, 0, sizeof *f);
        if (flags & SQLITE_OPEN_MAIN_DB) {
                f->kind = CRYPT_KIND_DB;
                f->main = f;
                key = crypt_pending_key;
        } else if (flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL)) {
                sqlite3_file *db = sqlite3_database_file_object(name);

                f->kind = flags & SQLITE_OPEN_WAL ? CRYPT_KIND_WAL : CRYPT_KIND_JOURNAL;
                if (db && db->pMethods == &crypt_io_methods) {
                        f->main = (CryptFile *)db;
                        key = f->main->key;
                }
        }
        if (!key) {
                /* No key (a plain sqlite3_open on this VFS) or a file we would have to leave in plaintext. */
                sqlite3_log(SQLITE_CANTOPEN, "tegami-crypt: refused to open %s (flags 0x%x)", name ? name : "(temp)",
                            flags);
                return SQLITE_CANTOPEN;
        }
        f->key = sodium_malloc(CRYPT_VFS_KEY_BYTES);
        f->buf = sqlite3_malloc(FRAME);
        if (crypt_use_evp) {
                f->evp = EVP_CIPHER_CTX_new();
                if (f->evp && !EVP_CipherInit_ex(f->evp, EVP_chacha20_poly1305(), NULL, NULL, NULL, 1)) {
                        EVP_CIPHER_CTX_free(f->evp);
                        f->evp = NULL; /* libsodium for this file */
                }
        }
        if (!f->key || !f->buf) {
                crypt_file_release(f);
                return SQLITE_NOMEM;
        }
        memcpy(f->key, key, CRYPT_VFS_KEY_BYTES);
        rc = ROOT(vfs)->xOpen(ROOT(vfs), name, REAL(f), flags, out_flags);
        if (rc != SQLITE_OK) {
                crypt_file_release(f);
                return rc;
        }
        f->base.pMethods = &crypt_io_methods;
        if (f->kind == CRYPT_KIND_DB && REAL(f)->pMethods->xRead(REAL(f), f->dbid, DBID, 0) != SQLITE_OK)
                randombytes_buf(f->dbid, DBID); /* a new database: its id is written with page 1 */
        return SQLITE_OK;
}

static int crypt_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
        return ROOT(vfs)->xDelete(ROOT(vfs), name, sync_dir);
}

static int crypt_access(sqlite3_vfs *vfs, const char *name, int flags, int *outp) {
        return ROOT(vfs)->xAccess(ROOT(vfs), name, flags, outp);
}

static int crypt_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
        return ROOT(vfs)->xFullPathname(ROOT(vfs), name, n, out);
}

static void *crypt_dl_open(sqlite3_vfs *vfs, const char *path) {
        return ROOT(vfs)->xDlOpen(ROOT(vfs), path);
}

static void crypt_dl_error(sqlite3_vfs *vfs, int n, char *msg) {
        ROOT(vfs)->xDlError(ROOT(vfs), n, msg);
}

static void (*crypt_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void) {
        return ROOT(vfs)->xDlSym(ROOT(vfs), h, sym);
}

static void crypt_dl_close(sqlite3_vfs *vfs, void *h) {
        ROOT(vfs)->xDlClose(ROOT(vfs), h);
}

static int crypt_randomness(sqlite3_vfs *vfs, int n, char *out) {
        return ROOT(vfs)->xRandomness(ROOT(vfs), n, out);
}

static int crypt_sleep(sqlite3_vfs *vfs, int usec) {
        return ROOT(vfs)->xSleep(ROOT(vfs), usec);
}

static int crypt_current_time(sqlite3_vfs *vfs, double *outp) {
        return ROOT(vfs)->xCurrentTime(ROOT(vfs), outp);
}

static int crypt_get_last_error(sqlite3_vfs *vfs, int n, char *out) {
        return ROOT(vfs)->xGetLastError(ROOT(vfs), n, out);
}

static int crypt_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *outp) {
        return ROOT(vfs)->xCurrentTimeInt64(ROOT(vfs), outp);
}

static sqlite3_vfs crypt_vfs = {
        .iVersion = 2,
        .zName = CRYPT_VFS_NAME,
        .xOpen = crypt_open,
        .xDelete = crypt_delete,
        .xAccess = crypt_access,
        .xFullPathname = crypt_full_pathname,
        .xDlOpen = crypt_dl_open,
        .xDlError = crypt_dl_error,
        .xDlSym = crypt_dl_sym,
        .xDlClose = crypt_dl_close,
        .xRandomness = crypt_randomness,
        .xSleep = crypt_sleep,
        .xCurrentTime = crypt_current_time,
        .xGetLastError = crypt_get_last_error,
        .xCurrentTimeInt64 = crypt_current_time_int64,
};

static pthread_once_t crypt_once = PTHREAD_ONCE_INIT;
static int crypt_register_result;

/* Seals and opens one random page both ways; true when OpenSSL gives libsodium's bytes. */
static bool crypt_evp_check(void) {
        static const uint8_t ad[AD_LEN] = "tegami-crypt evp check";
        uint8_t key[CRYPT_VFS_KEY_BYTES], nonce[NONCE], a[FRAME_HDR + USABLE], b[sizeof a], tag_a[TAG], tag_b[TAG];
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        bool ok;

        randombytes_buf(key, sizeof key);
        randombytes_buf(nonce, sizeof nonce);
        randombytes_buf(a, sizeof a);
        memcpy(b, a, sizeof a);
        ok = c && EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, NULL, NULL, 1);
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(a, tag_a, NULL, a, sizeof a, ad, sizeof ad, NULL, nonce,
                                                            key);
        ok = ok && evp_aead(c, true, b, sizeof b, ad, nonce, key, tag_b) && memcmp(a, b, sizeof a) == 0 &&
             memcmp(tag_a, tag_b, TAG) == 0;
        ok = ok && evp_aead(c, false, b, sizeof b, ad, nonce, key, tag_b) &&
             crypto_aead_xchacha20poly1305_ietf_decrypt_detached(a, NULL, a, sizeof a, tag_a, ad, sizeof ad, nonce,
                                                                 key) == 0 &&
             memcmp(a, b, sizeof a) == 0;
        tag_b[0] ^= 1; /* and a bad tag must fail */
        ok = ok && !evp_aead(c, false, b, sizeof b, ad, nonce, key, tag_b);
        EVP_CIPHER_CTX_free(c);
        sodium_memzero(key, sizeof key);
        return ok;
}

static void crypt_register_once(void) {
        sqlite3_vfs *root;

        if (sodium_init() < 0 || sqlite3_initialize() != SQLITE_OK || !(root = sqlite3_vfs_find(NULL)) ||
            root->iVersion < 2) {
                crypt_register_result = -ENOSYS;
                return;
        }
        crypt_use_evp = !getenv("TEGAMI_CRYPT_NO_OPENSSL") && crypt_evp_check();
        crypt_vfs.szOsFile = (int)sizeof(CryptFile) + root->szOsFile;
        crypt_vfs.mxPathname = root->mxPathname;
        crypt_vfs.pAppData = root;
        crypt_register_result = sqlite3_vfs_register(&crypt_vfs, 0) == SQLITE_OK ? 0 : -ENOMEM;
}

int crypt_vfs_register(void) {
        pthread_once(&crypt_once, crypt_register_once);
        return crypt_register_result;
}

bool crypt_vfs_uses_openssl(void) {
        return crypt_use_evp;
}

/* ---- connections ------------------------------------------------------------- */

bool crypt_vfs_is_damage(int rc) {
        return rc == SQLITE_IOERR_DATA || (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT;
}

const char *crypt_vfs_errmsg(sqlite3 *db, int rc) {
        return crypt_vfs_is_damage(rc) ? CRYPT_VFS_DAMAGED_MSG : sqlite3_errmsg(db);
}

/* Maps an SQLite failure on db to our return convention. */
static int crypt_error(sqlite3 *db, int rc) {
        int e = db ? sqlite3_system_errno(db) : 0;

        if (db)
                rc = sqlite3_extended_errcode(db);
        if (crypt_vfs_is_damage(rc))
                return CRYPT_VFS_E_DAMAGED;
        switch (rc & 0xff) {
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_PERM:
        case SQLITE_READONLY:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return e > 0 ? -e : -ENOENT;
        default:
                return e > 0 ? -e : -EIO;
        }
}

static int crypt_exec(sqlite3 *db, const char *sql) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : crypt_error(db, rc);
}

/* Sets the pragmas both kinds of connection share (a plain store gets the same page layout, reserved bytes
 * included, so a benchmark compares only the cipher) and reads the schema, so a bad key shows now. */
static int crypt_setup(sqlite3 *db) {
        int r, reserve = CRYPT_VFS_RESERVE;

        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, CRYPT_VFS_BUSY_TIMEOUT_MS); /* the check below may meet a writer's lock */
        r = crypt_exec(db, "PRAGMA page_size=4096");
        if (r != 0)
                return r;
        if (sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve) != SQLITE_OK)
                return -EIO;
        return crypt_exec(db, "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0; SELECT count(*) FROM sqlite_schema");
}

static int crypt_open_with(const char *path, const uint8_t *key, int flags, sqlite3 **dbp) {
        sqlite3 *db = NULL;
        int rc, r;

        *dbp = NULL;
        r = crypt_vfs_register();
        if (r < 0)
                return r;
        crypt_pending_key = key;
        rc = sqlite3_open_v2(path, &db, flags, key ? CRYPT_VFS_NAME : NULL);
        crypt_pending_key = NULL;
        r = rc == SQLITE_OK ? crypt_setup(db) : crypt_error(db, rc);
        if (r != 0) {
                sqlite3_close_v2(db);
                return r;
        }
        *dbp = db;
        return 0;
}

int crypt_vfs_open(const char *path, const uint8_t key[CRYPT_VFS_KEY_BYTES], int flags, sqlite3 **dbp) {
        return crypt_open_with(path, key, flags, dbp);
}

int crypt_vfs_open_plain(const char *path, int flags, sqlite3 **dbp) {
        return crypt_open_with(path, NULL, flags, dbp);
}

static int fsync_path(const char *path, int oflags) {
        _cleanup_close_ int fd = open(path, oflags | O_CLOEXEC);

        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

int crypt_vfs_rekey(const char *path, const uint8_t old_key[CRYPT_VFS_KEY_BYTES],
                    const uint8_t new_key[CRYPT_VFS_KEY_BYTES]) {
        _cleanup_free_ char *tmp = NULL, *dir = NULL;
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char *slash;
        int r, rc;

        if (asprintf(&tmp, "%s.rekey", path) < 0 || !(dir = strdup(path)))
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        else
                strcpy(dir, ".");

        r = crypt_vfs_open(path, old_key, SQLITE_OPEN_READWRITE, &db);
        if (r != 0)
                return r;
        (void)unlink(tmp); /* a copy left by an interrupted rekey: VACUUM INTO wants a fresh file */
        rc = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, tmp, -1, SQLITE_STATIC);
                crypt_pending_key = new_key; /* the copy's main file takes the new key */
                rc = sqlite3_step(st);
                crypt_pending_key = NULL;
                if (rc == SQLITE_DONE)
                        rc = SQLITE_OK;
        }
        r = rc == SQLITE_OK ? 0 : crypt_error(db, rc);
        if (r != 0)
                log_error("rekey of %s failed: %s", path, crypt_vfs_errmsg(db, rc));
        sqlite3_finalize(st);
        sqlite3_close_v2(db);
        if (r == 0)
                r = fsync_path(tmp, O_RDONLY);
        if (r == 0) {
                /* The old connection is closed: a WAL or wal-index left now is stale and under the old key. */
                static const char *const sides[] = {"-wal", "-shm"};

                for (size_t k = 0; k < ARRAY_SIZE(sides); k++) {
                        _cleanup_free_ char *side = NULL;

                        if (asprintf(&side, "%s%s", path, sides[k]) < 0) {
                                side = NULL;
                                return -ENOMEM;
                        }
                        (void)unlink(side);
                }
                if (rename(tmp, path) < 0)
                        r = -errno;
        }
        if (r == 0)
                r = fsync_path(dir, O_RDONLY | O_DIRECTORY);
        else
                (void)unlink(tmp);
        return r;
}
