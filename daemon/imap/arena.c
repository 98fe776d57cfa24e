/*
 * The IMAP parser's per-response arena: a bump allocator over a list of
 * malloc()ed chunks, capped in total, reset after every response with one
 * small chunk kept for the next. It lets the grammar build nested structures
 * without freeing anything piecemeal. Owned by one parser; no locking.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/parser-internal.h"

typedef struct ArenaChunkHdr {
        ArenaChunk *next;
        size_t size, used;
} ArenaChunkHdr;

struct ArenaChunk {
        ArenaChunkHdr h;
        max_align_t data[];
};

#define ARENA_MIN_CHUNK  4096u
#define ARENA_KEEP_CHUNK 16384u

/* The arena starts empty; max caps the bytes of chunks it may hold. */
void arena_init(Arena *a, size_t max) {
        *a = (Arena){.max = max};
}

/* Frees every chunk but a small one kept for the next response. */
void arena_reset(Arena *a) {
        ArenaChunk *keep = NULL;

        while (a->chunks) {
                ArenaChunk *c = a->chunks;

                a->chunks = c->h.next;
                if (!keep && c->h.size <= ARENA_KEEP_CHUNK)
                        keep = c;
                else
                        free(c);
        }
        a->used = 0;
        a->over = false;
        if (keep) {
                keep->h.next = NULL;
                keep->h.used = 0;
                a->chunks = keep;
                a->used = keep->h.size;
        }
}

/* Frees everything; safe twice. */
void arena_deinit(Arena *a) {
        arena_reset(a);
        free(a->chunks);
        a->chunks = NULL;
        a->used = 0;
}

/* Zeroed, max_align_t-aligned memory valid until the next reset. */
void *arena_alloc(Arena *a, size_t size) {
        const size_t align = sizeof(max_align_t);
        ArenaChunk *c = a->chunks;
        size_t want;
        void *m;

        size = (size + align - 1) & ~(align - 1);
        if (!c || c->h.size - c->h.used < size) {
                /* a->used never exceeds a->max, so the subtraction is safe. */
                if (size > a->max - a->used) {
                        a->over = true;
                        return NULL;
                }
                want = ARENA_MIN_CHUNK > size ? ARENA_MIN_CHUNK : size;
                while (want < a->used && want < (1u << 20))
                        want *= 2;
                if (want > a->max - a->used)
                        want = a->max - a->used;
                c = malloc(sizeof(ArenaChunk) + want);
                if (!c) {
                        a->over = false;
                        return NULL;
                }
                c->h = (ArenaChunkHdr){.next = a->chunks, .size = want};
                a->chunks = c;
                a->used += want;
        }
        m = (char *)c->data + c->h.used;
        c->h.used += size;
        memset(m, 0, size);
        return m;
}
