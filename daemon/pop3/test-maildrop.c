/*
 * Maildrop tests, without a server or a store: a listing (STAT, UIDL, LIST) is
 * fed in, local entries and folder bodies are set by hand, and the merge is
 * checked: unusable UIDLs (missing, malformed, duplicate), the header-hash
 * fallback, local states (new, downloaded, deleted here, delete-pending,
 * skipped), vanished UIDLs told apart (ours vs another client's), and the
 * rules' input.
 */
/* The checks below call the code under test: keep them in release builds too. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pop3/maildrop.h"

static int failures;

#define CHECK(cond)                                                                                            \
        do {                                                                                                   \
                if (!(cond)) {                                                                                 \
                        fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, #cond); \
                        failures++;                                                                            \
                }                                                                                              \
        } while (0)

static void add_uidl(Pop3Maildrop *m, uint32_t msg, const char *uid, bool valid) {
        Pop3Listing l = {.msg = msg, .uid = uid, .uid_valid = valid};
        int r = pop3_maildrop_add_listing(m, &l);

        assert(r == 0);
}

static void add_size(Pop3Maildrop *m, uint32_t msg, uint64_t size) {
        Pop3Listing l = {.msg = msg, .size = size};
        int r = pop3_maildrop_add_listing(m, &l);

        assert(r == 0);
}

static StoreCid cid_of(uint8_t b) {
        StoreCid c;

        memset(c.bytes, b, sizeof c.bytes);
        return c;
}

/* Local entries as store_pop3_list() would return them, sorted by UIDL as load_local leaves them. */
static void set_entries(Pop3Maildrop *m, const StorePop3Entry *src, size_t n) {
        m->entries = calloc(n, sizeof *m->entries);
        assert(m->entries);
        for (size_t i = 0; i < n; i++) {
                m->entries[i] = src[i];
                m->entries[i].uidl = strdup(src[i].uidl);
                assert(m->entries[i].uidl);
        }
        m->n_entries = n;
}

static void test_listing_errors(void) {
        Pop3Maildrop m;
        Pop3Listing l = {.msg = 1, .size = 10};

        pop3_maildrop_init(&m);
        CHECK(pop3_maildrop_add_listing(&m, &l) == -ERANGE); /* before STAT */
        CHECK(pop3_maildrop_set_stat(&m, 2, 30) == 0);
        CHECK(pop3_maildrop_set_stat(&m, 2, 30) == -EALREADY);
        l.msg = 3;
        CHECK(pop3_maildrop_add_listing(&m, &l) == -ERANGE);
        l.msg = 0;
        CHECK(pop3_maildrop_add_listing(&m, &l) == -ERANGE);
        pop3_maildrop_deinit(&m);
        pop3_maildrop_deinit(&m); /* safe twice */
}

static void test_unusable_and_fallback(void) {
        uint8_t hash[20];
        Pop3Maildrop m;

        pop3_maildrop_init(&m);
        assert(pop3_maildrop_set_stat(&m, 5, 500) == 0);
        add_uidl(&m, 1, "a", true);
        add_uidl(&m, 2, "dup", true);
        add_uidl(&m, 3, "dup", true);
        add_uidl(&m, 4, "bad uid", false);
        /* 5 has no UIDL at all */
        for (uint32_t i = 1; i <= 5; i++)
                add_size(&m, i, 100);
        CHECK(pop3_maildrop_mark_unusable(&m) == 4);
        CHECK(!m.msgs[0].unusable && m.msgs[1].unusable && m.msgs[2].unusable && m.msgs[3].unusable &&
              m.msgs[4].unusable);
        for (uint32_t i = 2; i <= 5; i++) {
                memset(hash, (int)i, sizeof hash);
                CHECK(pop3_maildrop_set_header_uid(&m, i, hash, sizeof hash) == 0);
        }
        CHECK(strcmp(m.msgs[4].uidl, "tegami-top-0505050505050505050505050505050505050505-100") == 0);
        CHECK(strlen(m.msgs[4].uidl) <= POP3_UID_MAX);
        CHECK(pop3_maildrop_mark_unusable(&m) == 0);
        /* Same headers and size: the hash cannot tell them apart either. */
        memset(hash, 2, sizeof hash);
        CHECK(pop3_maildrop_set_header_uid(&m, 3, hash, sizeof hash) == 0);
        CHECK(pop3_maildrop_mark_unusable(&m) == 2);
        CHECK(pop3_maildrop_set_header_uid(&m, 6, hash, sizeof hash) == -EINVAL);
        pop3_maildrop_deinit(&m);
}

static void test_resolve(void) {
        /* Sorted by UIDL. */
        const StorePop3Entry local[] = {
                {.uidl = "dl", .first_seen = 100, .state = STORE_POP3_DOWNLOADED, .has_cid = true, .cid = cid_of(1)},
                {.uidl = "gone-ours", .first_seen = 50, .state = STORE_POP3_DELETE_PENDING},
                {.uidl = "gone-theirs", .first_seen = 60, .state = STORE_POP3_DOWNLOADED},
                {.uidl = "here-deleted",
                 .first_seen = 70,
                 .state = STORE_POP3_DOWNLOADED,
                 .has_cid = true,
                 .cid = cid_of(2)},
                {.uidl = "long-gone", .first_seen = 10, .state = STORE_POP3_DELETED},
                {.uidl = "pending",
                 .first_seen = 80,
                 .state = STORE_POP3_DELETE_PENDING,
                 .has_cid = true,
                 .cid = cid_of(3)},
                {.uidl = "skip", .first_seen = 90, .state = STORE_POP3_SKIPPED},
        };
        Pop3RuleMsg *rm = NULL;
        Pop3Maildrop m;
        size_t n = 0;

        pop3_maildrop_init(&m);
        set_entries(&m, local, sizeof local / sizeof local[0]);
        /* The folder still holds bodies 1 and 3; body 2 was deleted here. */
        m.cids = calloc(2, sizeof *m.cids);
        assert(m.cids);
        m.cids[0] = cid_of(1);
        m.cids[1] = cid_of(3);
        m.n_cids = 2;
        assert(pop3_maildrop_set_stat(&m, 6, 600) == 0);
        add_uidl(&m, 1, "dl", true);
        add_uidl(&m, 2, "here-deleted", true);
        add_uidl(&m, 3, "pending", true);
        add_uidl(&m, 4, "skip", true);
        add_uidl(&m, 5, "new", true);
        add_uidl(&m, 6, "", false);
        for (uint32_t i = 1; i <= 6; i++)
                add_size(&m, i, 100 * i);
        CHECK(pop3_maildrop_resolve(&m, 1000) == 0);
        CHECK(m.msgs[0].local == POP3_LOCAL_DOWNLOADED && m.msgs[0].first_seen == 100);
        CHECK(m.msgs[1].local == POP3_LOCAL_DELETED_LOCALLY);
        CHECK(m.msgs[2].local == POP3_LOCAL_DELETE_PENDING);
        CHECK(m.msgs[3].local == POP3_LOCAL_SKIPPED);
        CHECK(m.msgs[4].local == POP3_LOCAL_NEW && m.msgs[4].first_seen == 1000);
        CHECK(m.n_unusable == 1);
        /* Vanished: ours (delete-pending) and another client's; not the one already recorded deleted. */
        CHECK(m.n_vanished == 2 && m.n_vanished_elsewhere == 1);
        CHECK(strcmp(m.vanished[0], "gone-ours") == 0 && strcmp(m.vanished[1], "gone-theirs") == 0);
        /* Recorded deleted and no longer listed: the record can go. */
        CHECK(m.n_forgettable == 1 && strcmp(m.forgettable[0], "long-gone") == 0);

        CHECK(pop3_maildrop_rule_input(&m, &rm, &n) == 0);
        CHECK(n == 5);
        CHECK(rm[0].msg == 1 && rm[0].size == 100 && rm[0].durable);
        CHECK(rm[4].msg == 5 && rm[4].local == POP3_LOCAL_NEW && !rm[4].durable);
        free(rm);
        pop3_maildrop_deinit(&m);
}

static void test_empty(void) {
        Pop3RuleMsg *rm = NULL;
        Pop3Maildrop m;
        size_t n = 1;

        pop3_maildrop_init(&m);
        CHECK(pop3_maildrop_set_stat(&m, 0, 0) == 0);
        CHECK(pop3_maildrop_resolve(&m, 5) == 0);
        CHECK(pop3_maildrop_rule_input(&m, &rm, &n) == 0 && n == 0);
        free(rm);
        pop3_maildrop_deinit(&m);
}

int main(void) {
        test_listing_errors();
        test_unusable_and_fallback();
        test_resolve();
        test_empty();
        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        return failures ? 1 : 0;
}
