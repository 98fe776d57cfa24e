/*
 * Retention rule tests: one case per rule with a fixed `now`, plus the
 * invariant (nothing not durably stored is ever deleted, whatever the rules
 * and the server say) checked over every combination of local state,
 * durability and rule.
 */
/* The checks below call the code under test: keep them in release builds too. */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "daemon/pop3/rules.h"

#define NOW     ((int64_t)1800000000)
#define DAYS(n) ((int64_t)(n)*POP3_RULES_DAY)
#define MB      ((uint64_t)POP3_RULES_MB)

static int failures;

#define CHECK(cond)                                                                                            \
        do {                                                                                                   \
                if (!(cond)) {                                                                                 \
                        fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, #cond); \
                        failures++;                                                                            \
                }                                                                                              \
        } while (0)

static Pop3Rules keep_rules(void) {
        return (Pop3Rules){.leave_on_server = true, .server_expire_days = -1};
}

/* A stored, durable message first downloaded days_ago days before NOW. */
static Pop3RuleMsg stored(uint32_t msg, int64_t days_ago, uint64_t size) {
        return (Pop3RuleMsg){.msg = msg,
                             .uidl = "u",
                             .size = size,
                             .local = POP3_LOCAL_DOWNLOADED,
                             .first_seen = NOW - DAYS(days_ago),
                             .durable = true};
}

static void run(const Pop3Rules *r, const Pop3RuleMsg *m, size_t n, Pop3Decision *d, Pop3RulesReport *rep) {
        int ret = pop3_rules_apply(r, m, n, NOW, d, rep);
        assert(ret == 0);
}

static void test_leave_on_server(void) {
        Pop3Rules r = keep_rules();
        Pop3RuleMsg m[] = {stored(1, 400, 100), {.msg = 2, .size = 50, .local = POP3_LOCAL_NEW}};
        Pop3Decision d[2];
        Pop3RulesReport rep;

        run(&r, m, 2, d, &rep);
        CHECK(!d[0].download && d[0].download_why == POP3_WHY_HAVE_IT);
        CHECK(!d[0].delete &&d[0].delete_why == POP3_WHY_KEEP);
        CHECK(d[1].download && d[1].download_why == POP3_WHY_NEW);
        CHECK(!d[1].delete);
        CHECK(rep.n_download == 1 && rep.download_bytes == 50 && rep.n_delete == 0 && rep.server_bytes_after == 150);
}

static void test_not_left_on_server(void) {
        Pop3Rules r = keep_rules();
        Pop3RuleMsg m[] = {stored(1, 0, 10), {.msg = 2, .size = 10, .local = POP3_LOCAL_NEW}};
        Pop3Decision d[2];

        r.leave_on_server = false;
        run(&r, m, 2, d, NULL);
        CHECK(d[0].delete &&d[0].delete_why == POP3_WHY_NOT_LEFT);
        /* Not here yet: downloaded now, deleted only once stored (the second pass). */
        CHECK(d[1].download && !d[1].delete &&d[1].delete_why == POP3_WHY_KEEP_NOT_STORED);
        m[1].local = POP3_LOCAL_DOWNLOADED;
        m[1].first_seen = NOW;
        m[1].durable = true;
        run(&r, m, 2, d, NULL);
        CHECK(d[1].delete &&!d[1].download);
}

static void test_delete_after_days(void) {
        Pop3Rules r = keep_rules();
        Pop3RuleMsg m[] = {stored(1, 4, 10), stored(2, 2, 10), stored(3, 3, 10)};
        Pop3Decision d[3];

        r.delete_after_days = 3;
        m[2].first_seen = NOW - DAYS(3) + 1; /* one second short of 3 days */
        run(&r, m, 3, d, NULL);
        CHECK(d[0].delete &&d[0].delete_why == POP3_WHY_AGE);   /* 4 days ago goes */
        CHECK(!d[1].delete &&d[1].delete_why == POP3_WHY_KEEP); /* 2 days ago stays */
        CHECK(!d[2].delete);
        m[2].first_seen = NOW - DAYS(3); /* exactly 3 days: goes */
        run(&r, m, 3, d, NULL);
        CHECK(d[2].delete &&d[2].delete_why == POP3_WHY_AGE);
        r.delete_after_days = 0; /* 0 = never */
        run(&r, m, 3, d, NULL);
        CHECK(!d[0].delete &&!d[1].delete &&!d[2].delete);
}

static void test_deleted_locally(void) {
        Pop3Rules r = keep_rules();
        Pop3RuleMsg m[] = {stored(1, 0, 10), stored(2, 0, 10)};
        Pop3Decision d[2];

        m[1].local = POP3_LOCAL_DELETED_LOCALLY;
        run(&r, m, 2, d, NULL);
        CHECK(!d[0].delete &&!d[1].delete); /* rule off */
        r.delete_when_deleted_locally = true;
        run(&r, m, 2, d, NULL);
        CHECK(!d[0].delete);
        CHECK(d[1].delete &&d[1].delete_why == POP3_WHY_DELETED_LOCALLY);
        CHECK(!d[1].download);
}

static void test_keep_under_messages(void) {
        Pop3Rules r = keep_rules();
        /* Listed out of age order: the oldest by first_seen go, not the lowest numbers. */
        Pop3RuleMsg m[] = {stored(1, 1, 10),
                           stored(2, 9, 10),
                           stored(3, 5, 10),
                           stored(4, 0, 10),
                           {.msg = 5, .size = 10, .local = POP3_LOCAL_NEW}};
        Pop3Decision d[5];
        Pop3RulesReport rep;

        r.keep_under_messages = 3;
        run(&r, m, 5, d, &rep);
        CHECK(d[1].delete &&d[1].delete_why == POP3_WHY_OVER_COUNT);
        CHECK(d[2].delete &&d[2].delete_why == POP3_WHY_OVER_COUNT);
        CHECK(!d[0].delete &&!d[3].delete &&!d[4].delete);
        CHECK(rep.n_delete == 2 && rep.warnings == 0);
        /* Same first_seen: the lower message number is older. */
        for (size_t i = 0; i < 4; i++)
                m[i].first_seen = NOW;
        r.keep_under_messages = 2;
        m[4] = stored(5, 0, 10);
        run(&r, m, 5, d, NULL);
        CHECK(d[0].delete &&d[1].delete &&d[2].delete &&!d[3].delete &&!d[4].delete);
}

static void test_keep_under_mb(void) {
        Pop3Rules r = keep_rules();
        Pop3RuleMsg m[] = {stored(1, 3, 2 * MB), stored(2, 2, 2 * MB), stored(3, 1, 2 * MB)};
        Pop3Decision d[3];
        Pop3RulesReport rep;

        r.keep_under_mb = 4; /* 6 MiB on the server: the oldest goes, 4 MiB stay */
        run(&r, m, 3, d, &rep);
        CHECK(d[0].delete &&d[0].delete_why == POP3_WHY_OVER_SIZE);
        CHECK(!d[1].delete &&!d[2].delete);
        CHECK(rep.server_bytes_after == 4 * MB);
        r.keep_under_mb = 3;
        run(&r, m, 3, d, NULL);
        CHECK(d[0].delete &&d[1].delete &&!d[2].delete);
}

static void test_limit_unreached(void) {
        Pop3Rules r = keep_rules();
        Pop3RuleMsg m[] = {{.msg = 1, .size = 10, .local = POP3_LOCAL_NEW},
                           {.msg = 2, .size = 10, .local = POP3_LOCAL_NEW}};
        Pop3Decision d[2];
        Pop3RulesReport rep;

        r.keep_under_messages = 1;
        run(&r, m, 2, d, &rep);
        CHECK(!d[0].delete &&!d[1].delete);
        CHECK(rep.warnings & POP3_RULES_W_LIMIT_UNREACHED);
}

static void test_bigger_than(void) {
        Pop3Rules r = keep_rules();
        Pop3RuleMsg m[] = {
                stored(1, 0, 5 * MB), stored(2, 0, 1 * MB), {.msg = 3, .size = 3 * MB + 1}, {.msg = 4, .size = 3 * MB}};
        Pop3Decision d[4];
        Pop3RulesReport rep;

        r.delete_bigger_than_mb = 4;
        r.skip_bigger_than_mb = 3;
        run(&r, m, 4, d, &rep);
        CHECK(d[0].delete &&d[0].delete_why == POP3_WHY_TOO_BIG);
        CHECK(!d[1].delete);
        CHECK(!d[2].download && d[2].download_why == POP3_WHY_SKIP_TOO_BIG && !d[2].delete);
        CHECK(d[3].download); /* exactly the limit is not bigger */
        CHECK(rep.n_skip == 1 && rep.n_download == 1);
        /* A skipped message is downloaded once the limit allows it. */
        m[2].local = POP3_LOCAL_SKIPPED;
        r.skip_bigger_than_mb = 0;
        run(&r, m, 4, d, NULL);
        CHECK(d[2].download);
        /* A message too big to keep is never deleted unless it is stored. */
        m[2].local = POP3_LOCAL_SKIPPED;
        m[2].size = 9 * MB;
        r.skip_bigger_than_mb = 3;
        run(&r, m, 4, d, NULL);
        CHECK(!d[2].download && !d[2].delete &&d[2].delete_why == POP3_WHY_KEEP_NOT_STORED);
}

static void test_expire(void) {
        Pop3Rules r = keep_rules();
        Pop3RuleMsg m[] = {stored(1, 0, 10)};
        Pop3Decision d[1];
        Pop3RulesReport rep;

        r.server_expire_days = 0;
        run(&r, m, 1, d, &rep);
        CHECK(d[0].delete &&d[0].delete_why == POP3_WHY_SERVER_EXPIRE_0);
        CHECK(rep.warnings & POP3_RULES_W_EXPIRE_0);
        r.server_expire_days = 5;
        r.delete_after_days = 10;
        run(&r, m, 1, d, &rep);
        CHECK(!d[0].delete &&(rep.warnings & POP3_RULES_W_EXPIRE_EARLIER));
        r.delete_after_days = 3;
        run(&r, m, 1, d, &rep);
        CHECK(!(rep.warnings & POP3_RULES_W_EXPIRE_EARLIER));
}

static void test_delete_pending_rechecked(void) {
        Pop3Rules r = keep_rules();
        Pop3RuleMsg m[] = {stored(1, 5, 10), stored(2, 1, 10)};
        Pop3Decision d[2];

        m[0].local = m[1].local = POP3_LOCAL_DELETE_PENDING;
        r.delete_after_days = 3;
        run(&r, m, 2, d, NULL);
        CHECK(d[0].delete &&!d[0].download);  /* still due: DELE again */
        CHECK(!d[1].delete &&!d[1].download); /* no longer due (rules changed): stays, never re-downloaded */
}

/* Every local state × durability × rule: nothing not durably stored is deleted. */
static void test_invariant(void) {
        for (unsigned local = 0; local < _POP3_LOCAL_MAX; local++)
                for (int durable = 0; durable < 2; durable++)
                        for (unsigned rule = 0; rule < 8; rule++) {
                                Pop3Rules r = keep_rules();
                                Pop3RuleMsg m = {.msg = 1,
                                                 .size = 50 * MB,
                                                 .local = local,
                                                 .first_seen = NOW - DAYS(100),
                                                 .durable = durable};
                                Pop3Decision d;
                                bool may = (local == POP3_LOCAL_DOWNLOADED || local == POP3_LOCAL_DELETE_PENDING ||
                                            local == POP3_LOCAL_DELETED_LOCALLY) &&
                                           durable;

                                r.server_expire_days = rule == 0 ? 0 : -1;
                                r.leave_on_server = rule != 1;
                                r.delete_after_days = rule == 2 ? 1 : 0;
                                r.delete_when_deleted_locally = rule == 3;
                                r.keep_under_messages = rule == 4 ? 1 : 0;
                                r.keep_under_mb = rule == 5 ? 1 : 0;
                                r.delete_bigger_than_mb = rule == 6 ? 1 : 0;
                                if (rule == 7) {
                                        r.leave_on_server = false;
                                        r.server_expire_days = 0;
                                        r.delete_when_deleted_locally = true;
                                        r.delete_bigger_than_mb = 1;
                                }
                                run(&r, &m, 1, &d, NULL);
                                CHECK(!d.delete || may);
                                CHECK(may == pop3_rules_may_delete(&m));
                        }
}

/* A small deterministic generator: the same cases on every run. */
static uint64_t rng_state = 88172645463325252ull;

static uint32_t rnd(uint32_t n) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint32_t)(rng_state % n);
}

/* Random listings and rules: the invariant, the limits and oldest-first hold in every case. */
static void test_random(void) {
        for (int round = 0; round < 20000; round++) {
                Pop3RuleMsg m[24];
                Pop3Decision d[24];
                Pop3RulesReport rep;
                Pop3Rules r = {
                        .leave_on_server = rnd(4) != 0,
                        .delete_after_days = rnd(3) ? 0 : rnd(10),
                        .delete_when_deleted_locally = rnd(2),
                        .keep_under_messages = rnd(2) ? 0 : rnd(20),
                        .keep_under_mb = rnd(2) ? 0 : rnd(8),
                        .delete_bigger_than_mb = rnd(3) ? 0 : 1 + rnd(3),
                        .skip_bigger_than_mb = rnd(3) ? 0 : 1 + rnd(3),
                        .server_expire_days = rnd(5) ? -1 : (int64_t)rnd(4),
                };
                size_t n = rnd(25), count = 0;
                uint64_t bytes = 0;

                for (size_t i = 0; i < n; i++)
                        m[i] = (Pop3RuleMsg){.msg = (uint32_t)i + 1,
                                             .uidl = "u",
                                             .size = (uint64_t)rnd(4 * 1024) * 1024,
                                             .local = rnd(_POP3_LOCAL_MAX),
                                             .first_seen = NOW - DAYS(rnd(15)) - rnd(1000),
                                             .durable = rnd(5) != 0};
                run(&r, m, n, d, &rep);
                for (size_t i = 0; i < n; i++) {
                        CHECK(!d[i].delete || pop3_rules_may_delete(&m[i]));
                        CHECK(!d[i].download || m[i].local == POP3_LOCAL_NEW || m[i].local == POP3_LOCAL_SKIPPED);
                        if (!d[i].delete) {
                                count++;
                                bytes += m[i].size;
                        }
                }
                if (!(rep.warnings & POP3_RULES_W_LIMIT_UNREACHED)) {
                        CHECK(r.keep_under_messages == 0 || count <= r.keep_under_messages);
                        CHECK(r.keep_under_mb == 0 || bytes <= (uint64_t)r.keep_under_mb * MB);
                }
                /* The limits took the oldest deletable messages: none kept is older than one they took. */
                for (size_t i = 0; i < n; i++)
                        for (size_t k = 0; k < n; k++)
                                if (d[i].delete &&(d[i].delete_why == POP3_WHY_OVER_COUNT ||
                                                   d[i].delete_why == POP3_WHY_OVER_SIZE) &&
                                    !d[k].delete &&pop3_rules_may_delete(&m[k]))
                                        CHECK(m[k].first_seen > m[i].first_seen ||
                                              (m[k].first_seen == m[i].first_seen && m[k].msg > m[i].msg));
                if (failures)
                        return;
        }
}

static void test_names(void) {
        for (unsigned w = 0; w < _POP3_WHY_MAX; w++)
                CHECK(strcmp(pop3_why_to_string(w), "unknown") != 0);
        CHECK(strcmp(pop3_why_to_string(_POP3_WHY_MAX), "unknown") == 0);
        CHECK(strcmp(pop3_local_to_string(POP3_LOCAL_DELETE_PENDING), "delete-pending") == 0);
}

static void test_from_account(void) {
        Account a = {.pop3_leave_on_server = true, .pop3_delete_after_days = 3, .pop3_keep_server_under_mb = 7};
        Pop3Rules r;

        pop3_rules_from_account(&r, &a);
        CHECK(r.leave_on_server && r.delete_after_days == 3 && r.keep_under_mb == 7 && r.server_expire_days == -1);
        CHECK(pop3_rules_apply(&r, NULL, 0, NOW, NULL, NULL) == 0);
}

int main(void) {
        test_leave_on_server();
        test_not_left_on_server();
        test_delete_after_days();
        test_deleted_locally();
        test_keep_under_messages();
        test_keep_under_mb();
        test_limit_unreached();
        test_bigger_than();
        test_expire();
        test_delete_pending_rechecked();
        test_invariant();
        test_random();
        test_names();
        test_from_account();
        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        return failures ? 1 : 0;
}
