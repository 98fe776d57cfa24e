/*
 * The maildrop of one fetch: the server's listing merged with the local POP3
 * entries. The Pop3Maildrop is embedded in the fetch and owns every array here;
 * vanished[] borrows strings from entries[]. Lookups are binary searches over
 * arrays sorted once (entries by UIDL, bodies by content id), so an account of
 * tens of thousands of messages costs O(n log n) per fetch. Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pop3/maildrop.h"
#include "store/message.h"
#include "util/macro.h"

/* Messages listed per synchronous read of the folder. */
#define MAILDROP_PAGE 1000

void pop3_maildrop_init(Pop3Maildrop *m) {
        *m = (Pop3Maildrop){0};
}

void pop3_maildrop_deinit(Pop3Maildrop *m) {
        for (uint32_t i = 0; m->msgs && i < m->n_msgs; i++)
                free(m->msgs[i].uidl);
        free(m->msgs);
        free(m->cids);
        free(m->vanished);
        free(m->forgettable);
        store_pop3_list_free(m->entries, m->n_entries);
        *m = (Pop3Maildrop){0};
}

/* Orders local entries by UIDL, for bsearch and the merge in find_vanished(). */
static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const StorePop3Entry *)a)->uidl, ((const StorePop3Entry *)b)->uidl);
}

/* Orders content ids bytewise; any total order serves bsearch. */
static int cid_cmp(const void *a, const void *b) {
        return memcmp(a, b, sizeof(StoreCid));
}

/* The local entry for uidl, or NULL for a message never seen here. */
static const StorePop3Entry *entry_find(const Pop3Maildrop *m, const char *uidl) {
        StorePop3Entry key = {.uidl = (char *)uidl};

        return m->n_entries ? bsearch(&key, m->entries, m->n_entries, sizeof key, entry_cmp) : NULL;
}

/* True while some message of the folder still uses the body: false means it was deleted here. */
static bool cid_present(const Pop3Maildrop *m, const StoreCid *cid) {
        return m->n_cids && bsearch(cid, m->cids, m->n_cids, sizeof *cid, cid_cmp);
}

int pop3_maildrop_load_local(Pop3Maildrop *m, Store *s, int64_t account_id, int64_t folder_id) {
        uint32_t after = 0;
        int r;

        r = store_pop3_list(s, account_id, 0, &m->entries, &m->n_entries);
        if (r < 0)
                return r;
        if (m->n_entries)
                qsort(m->entries, m->n_entries, sizeof *m->entries, entry_cmp);
        for (;;) {
                StoreMessage *msgs = NULL;
                size_t n = 0;

                r = store_message_list(s, folder_id, after, MAILDROP_PAGE, &msgs, &n);
                if (r < 0)
                        return r;
                if (n > 0) {
                        StoreCid *nc = reallocarray(m->cids, m->n_cids + n, sizeof *nc);

                        if (!nc) {
                                store_message_list_free(msgs, n);
                                return -ENOMEM;
                        }
                        m->cids = nc;
                        for (size_t i = 0; i < n; i++)
                                if (msgs[i].has_body)
                                        m->cids[m->n_cids++] = msgs[i].cid;
                        after = msgs[n - 1].uid; /* listed by UID: the last is the highest */
                }
                store_message_list_free(msgs, n);
                if (n < MAILDROP_PAGE)
                        break;
        }
        m->next_uid = after + 1;
        if (m->n_cids)
                qsort(m->cids, m->n_cids, sizeof *m->cids, cid_cmp);
        return 0;
}

int pop3_maildrop_set_stat(Pop3Maildrop *m, uint32_t n, uint64_t size) {
        if (m->have_stat)
                return -EALREADY;
        m->msgs = calloc(n ? n : 1, sizeof *m->msgs);
        if (!m->msgs)
                return -ENOMEM;
        m->have_stat = true;
        m->n_msgs = n;
        m->size = size;
        return 0;
}

int pop3_maildrop_add_listing(Pop3Maildrop *m, const Pop3Listing *l) {
        Pop3ServerMsg *sm;

        if (!m->have_stat || l->msg < 1 || l->msg > m->n_msgs)
                return -ERANGE;
        sm = &m->msgs[l->msg - 1];
        if (!l->uid) {
                sm->size = l->size;
                return 0;
        }
        free(sm->uidl);
        sm->uidl = strdup(l->uid);
        sm->uid_valid = l->uid_valid && sm->uidl;
        return sm->uidl ? 0 : -ENOMEM;
}

/* qsort_r comparator: message indexes ordered by their UIDL. */
static int uidl_index_cmp(const void *a, const void *b, void *ctx) {
        const Pop3ServerMsg *msgs = ctx;

        return strcmp(msgs[*(const uint32_t *)a].uidl, msgs[*(const uint32_t *)b].uidl);
}

/* Indexes of the messages that have a UIDL string, sorted by it. */
static int sorted_by_uidl(const Pop3Maildrop *m, uint32_t **orderp, size_t *np) {
        uint32_t *order = calloc(m->n_msgs ? m->n_msgs : 1, sizeof *order);
        size_t n = 0;

        if (!order)
                return -ENOMEM;
        for (uint32_t i = 0; i < m->n_msgs; i++)
                if (m->msgs[i].uidl)
                        order[n++] = i;
        qsort_r(order, n, sizeof *order, uidl_index_cmp, m->msgs);
        *orderp = order;
        *np = n;
        return 0;
}

int pop3_maildrop_mark_unusable(Pop3Maildrop *m) {
        _cleanup_free_ uint32_t *order = NULL;
        size_t n = 0;
        int r;

        r = sorted_by_uidl(m, &order, &n);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < m->n_msgs; i++)
                m->msgs[i].unusable = !m->msgs[i].uidl || !m->msgs[i].uid_valid;
        /* Two messages under one UIDL cannot be told apart: neither is trusted. */
        for (size_t k = 1; k < n; k++)
                if (strcmp(m->msgs[order[k]].uidl, m->msgs[order[k - 1]].uidl) == 0)
                        m->msgs[order[k]].unusable = m->msgs[order[k - 1]].unusable = true;
        m->n_unusable = 0;
        for (uint32_t i = 0; i < m->n_msgs; i++)
                m->n_unusable += m->msgs[i].unusable;
        return (int)m->n_unusable;
}

int pop3_maildrop_set_header_uid(Pop3Maildrop *m, uint32_t msg, const uint8_t *hash, size_t n_hash) {
        char hex[2 * 32 + 1];
        Pop3ServerMsg *sm;

        if (msg < 1 || msg > m->n_msgs || n_hash > 32)
                return -EINVAL;
        sm = &m->msgs[msg - 1];
        sodium_bin2hex(hex, sizeof hex, hash, n_hash);
        free(sm->uidl);
        /* "tegami-top-" + 40 hex digits + "-" + size stays within RFC 1939's 70 characters. */
        if (asprintf(&sm->uidl, "tegami-top-%s-%" PRIu64, hex, sm->size) < 0) {
                sm->uidl = NULL;
                sm->uid_valid = false;
                return -ENOMEM;
        }
        sm->uid_valid = true;
        return 0;
}

/* What the rules are told about a listed message, from its entry (NULL: new). */
static Pop3Local local_of(const Pop3Maildrop *m, const StorePop3Entry *e) {
        if (!e)
                return POP3_LOCAL_NEW;
        switch (e->state) {
        case STORE_POP3_SKIPPED:
                return POP3_LOCAL_SKIPPED;
        case STORE_POP3_DELETE_PENDING:
                return POP3_LOCAL_DELETE_PENDING;
        default:
                /* DOWNLOADED (or DELETED yet listed again: stored, so never fetched twice). */
                if (e->has_cid && !cid_present(m, &e->cid))
                        return POP3_LOCAL_DELETED_LOCALLY;
                return POP3_LOCAL_DOWNLOADED;
        }
}

/* Local entries whose UIDL the server lists under no message at all. */
static int find_vanished(Pop3Maildrop *m) {
        _cleanup_free_ uint32_t *order = NULL;
        size_t n_order = 0;
        int r;

        r = sorted_by_uidl(m, &order, &n_order);
        if (r < 0)
                return r;
        free(m->vanished);
        free(m->forgettable);
        m->n_vanished = m->n_vanished_elsewhere = m->n_forgettable = 0;
        m->vanished = calloc(m->n_entries ? m->n_entries : 1, sizeof *m->vanished);
        m->forgettable = calloc(m->n_entries ? m->n_entries : 1, sizeof *m->forgettable);
        if (!m->vanished || !m->forgettable)
                return -ENOMEM;
        /* Both lists are sorted by UIDL: one merge pass. */
        for (size_t e = 0, k = 0; e < m->n_entries; e++) {
                const StorePop3Entry *en = &m->entries[e];
                int c = 1;

                while (k < n_order && (c = strcmp(m->msgs[order[k]].uidl, en->uidl)) < 0)
                        k++;
                if (k < n_order && c == 0)
                        continue;
                if (en->state == STORE_POP3_DELETED) {
                        m->forgettable[m->n_forgettable++] = en->uidl; /* gone for good: its UIDL cannot return */
                        continue;
                }
                m->vanished[m->n_vanished++] = en->uidl;
                if (en->state != STORE_POP3_DELETE_PENDING)
                        m->n_vanished_elsewhere++; /* we never sent DELE: another client did */
        }
        return 0;
}

int pop3_maildrop_resolve(Pop3Maildrop *m, int64_t now) {
        int r;

        r = pop3_maildrop_mark_unusable(m);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < m->n_msgs; i++) {
                Pop3ServerMsg *sm = &m->msgs[i];
                const StorePop3Entry *e = sm->unusable ? NULL : entry_find(m, sm->uidl);

                sm->local = local_of(m, e);
                sm->first_seen = e ? e->first_seen : now;
        }
        return find_vanished(m);
}

int pop3_maildrop_rule_input(const Pop3Maildrop *m, Pop3RuleMsg **msgsp, size_t *np) {
        Pop3RuleMsg *rm = calloc(m->n_msgs ? m->n_msgs : 1, sizeof *rm);
        size_t n = 0;

        if (!rm)
                return -ENOMEM;
        for (uint32_t i = 0; i < m->n_msgs; i++) {
                const Pop3ServerMsg *sm = &m->msgs[i];

                if (sm->unusable)
                        continue;
                rm[n++] = (Pop3RuleMsg){.msg = i + 1,
                                        .uidl = sm->uidl,
                                        .size = sm->size,
                                        .local = sm->local,
                                        .first_seen = sm->first_seen,
                                        .durable = sm->local != POP3_LOCAL_NEW};
        }
        *msgsp = rm;
        *np = n;
        return 0;
}
