/*
 * POP3 retention rules: a pure function of the server's listing, the local
 * state per UIDL, the account's rules, the server's EXPIRE and `now`. The
 * caller owns every array; nothing here allocates except one index array for
 * the oldest-first order of the keep-under limits, freed before returning.
 * Called on the loop thread by the fetch engine (twice: before downloading, to
 * plan, and after the barrier commit, to choose what to DELE) and by dry runs.
 *
 * The order of decisions per message: download (new and not too big), then the
 * per-message delete rules (EXPIRE 0, leave_on_server = no, deleted locally,
 * age, too big), then the capacity limits over what is left on the server,
 * oldest first. Last, whatever the rules said, a message not durably stored
 * here is kept: that single check is the invariant that no mail is lost.
 */
#include <errno.h>
#include <stdlib.h>

#include "daemon/pop3/rules.h"
#include "util/macro.h"

static const char *const why_names[_POP3_WHY_MAX] = {
        [POP3_WHY_NONE] = "none",
        [POP3_WHY_NEW] = "new on the server",
        [POP3_WHY_HAVE_IT] = "stored here already",
        [POP3_WHY_SKIP_TOO_BIG] = "bigger than pop3_skip_bigger_than_mb: not downloaded",
        [POP3_WHY_KEEP] = "left on the server (pop3_leave_on_server)",
        [POP3_WHY_KEEP_NOT_STORED] = "kept: not durably stored here",
        [POP3_WHY_NOT_LEFT] = "pop3_leave_on_server = no",
        [POP3_WHY_SERVER_EXPIRE_0] = "the server's EXPIRE 0 policy",
        [POP3_WHY_AGE] = "first downloaded pop3_delete_after_days ago or more",
        [POP3_WHY_DELETED_LOCALLY] = "deleted here (pop3_delete_when_deleted_locally)",
        [POP3_WHY_TOO_BIG] = "bigger than pop3_delete_bigger_than_mb",
        [POP3_WHY_OVER_COUNT] = "oldest beyond pop3_keep_server_under_messages",
        [POP3_WHY_OVER_SIZE] = "oldest beyond pop3_keep_server_under_mb",
};

static const char *const local_names[_POP3_LOCAL_MAX] = {
        [POP3_LOCAL_NEW] = "new",
        [POP3_LOCAL_DOWNLOADED] = "downloaded",
        [POP3_LOCAL_DELETE_PENDING] = "delete-pending",
        [POP3_LOCAL_DELETED_LOCALLY] = "deleted-locally",
        [POP3_LOCAL_SKIPPED] = "skipped",
};

const char *pop3_why_to_string(Pop3Why why) {
        return (unsigned)why < _POP3_WHY_MAX && why_names[why] ? why_names[why] : "unknown";
}

const char *pop3_local_to_string(Pop3Local local) {
        return (unsigned)local < _POP3_LOCAL_MAX ? local_names[local] : "unknown";
}

void pop3_rules_from_account(Pop3Rules *r, const Account *a) {
        *r = (Pop3Rules){
                .leave_on_server = a->pop3_leave_on_server,
                .delete_after_days = a->pop3_delete_after_days,
                .delete_when_deleted_locally = a->pop3_delete_when_deleted_locally,
                .keep_under_messages = a->pop3_keep_server_under_messages,
                .keep_under_mb = a->pop3_keep_server_under_mb,
                .delete_bigger_than_mb = a->pop3_delete_bigger_than_mb,
                .skip_bigger_than_mb = a->pop3_skip_bigger_than_mb,
                .server_expire_days = -1,
        };
}

bool pop3_rules_may_delete(const Pop3RuleMsg *m) {
        switch (m->local) {
        case POP3_LOCAL_DOWNLOADED:
        case POP3_LOCAL_DELETE_PENDING:
        case POP3_LOCAL_DELETED_LOCALLY:
                return m->durable;
        default:
                return false;
        }
}

static bool bigger_than_mb(uint64_t size, unsigned mb) {
        return mb > 0 && size > (uint64_t)mb * POP3_RULES_MB;
}

/* The first rule that deletes m by itself, or POP3_WHY_KEEP. */
static Pop3Why per_message_rule(const Pop3Rules *r, const Pop3RuleMsg *m, int64_t now) {
        if (r->server_expire_days == 0)
                return POP3_WHY_SERVER_EXPIRE_0;
        if (!r->leave_on_server)
                return POP3_WHY_NOT_LEFT;
        if (r->delete_when_deleted_locally && m->local == POP3_LOCAL_DELETED_LOCALLY)
                return POP3_WHY_DELETED_LOCALLY;
        if (r->delete_after_days > 0 && m->local != POP3_LOCAL_NEW && m->local != POP3_LOCAL_SKIPPED &&
            now - m->first_seen >= (int64_t)r->delete_after_days * POP3_RULES_DAY)
                return POP3_WHY_AGE;
        if (bigger_than_mb(m->size, r->delete_bigger_than_mb))
                return POP3_WHY_TOO_BIG;
        return POP3_WHY_KEEP;
}

/* qsort_r comparator over indexes into the listing (ctx). */
static int oldest_first(const void *a, const void *b, void *ctx) {
        const Pop3RuleMsg *msgs = ctx;
        const Pop3RuleMsg *x = &msgs[*(const size_t *)a], *y = &msgs[*(const size_t *)b];

        if (x->first_seen != y->first_seen)
                return x->first_seen < y->first_seen ? -1 : 1;
        return x->msg < y->msg ? -1 : x->msg > y->msg;
}

/*
 * Deletes the oldest deletable messages still on the server until at most
 * max_count messages (when not 0) and max_bytes bytes (when not 0) remain.
 */
static void apply_limits(const Pop3Rules *r, const Pop3RuleMsg *msgs, const size_t *order, size_t n, Pop3Decision *out,
                         unsigned *warningsp) {
        uint64_t max_bytes = (uint64_t)r->keep_under_mb * POP3_RULES_MB, bytes = 0;
        size_t count = 0;

        for (size_t i = 0; i < n; i++)
                if (!out[i].delete) {
                        count++;
                        bytes += msgs[i].size;
                }
        for (size_t k = 0; k < n; k++) {
                bool over_count = r->keep_under_messages > 0 && count > r->keep_under_messages;
                bool over_size = r->keep_under_mb > 0 && bytes > max_bytes;
                size_t i = order[k];

                if (!over_count && !over_size)
                        return;
                if (out[i].delete || !pop3_rules_may_delete(&msgs[i]))
                        continue;
                out[i].delete = true;
                out[i].delete_why = over_count ? POP3_WHY_OVER_COUNT : POP3_WHY_OVER_SIZE;
                count--;
                bytes -= msgs[i].size;
        }
        if ((r->keep_under_messages > 0 && count > r->keep_under_messages) ||
            (r->keep_under_mb > 0 && bytes > max_bytes))
                *warningsp |= POP3_RULES_W_LIMIT_UNREACHED;
}

int pop3_rules_apply(const Pop3Rules *r, const Pop3RuleMsg *msgs, size_t n, int64_t now, Pop3Decision *out,
                     Pop3RulesReport *reportp) {
        _cleanup_free_ size_t *order = NULL;
        Pop3RulesReport rep = {0};

        for (size_t i = 0; i < n; i++) {
                const Pop3RuleMsg *m = &msgs[i];
                Pop3Decision *d = &out[i];

                *d = (Pop3Decision){.download_why = POP3_WHY_HAVE_IT};
                if (m->local == POP3_LOCAL_NEW || m->local == POP3_LOCAL_SKIPPED) {
                        /* A skipped message is looked at again: the limit may have been raised. */
                        d->download = !bigger_than_mb(m->size, r->skip_bigger_than_mb);
                        d->download_why = d->download ? POP3_WHY_NEW : POP3_WHY_SKIP_TOO_BIG;
                }
                d->delete_why = per_message_rule(r, m, now);
                d->delete = d->delete_why != POP3_WHY_KEEP;
        }

        /* Decisions only about what may go: per-message rules on the rest are moot. */
        for (size_t i = 0; i < n; i++)
                if (out[i].delete &&!pop3_rules_may_delete(&msgs[i])) {
                        out[i].delete = false;
                        out[i].delete_why = POP3_WHY_KEEP_NOT_STORED;
                }

        if ((r->keep_under_messages > 0 || r->keep_under_mb > 0) && n > 0) {
                order = calloc(n, sizeof *order);
                if (!order)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        order[i] = i;
                qsort_r(order, n, sizeof *order, oldest_first, (void *)msgs);
                apply_limits(r, msgs, order, n, out, &rep.warnings);
        }

        /* The invariant, checked once more after every rule had its say. */
        for (size_t i = 0; i < n; i++) {
                if (out[i].delete &&!pop3_rules_may_delete(&msgs[i])) {
                        out[i].delete = false;
                        out[i].delete_why = POP3_WHY_KEEP_NOT_STORED;
                }
                if (out[i].download) {
                        rep.n_download++;
                        rep.download_bytes += msgs[i].size;
                } else if (out[i].download_why == POP3_WHY_SKIP_TOO_BIG)
                        rep.n_skip++;
                if (out[i].delete) {
                        rep.n_delete++;
                        rep.delete_bytes += msgs[i].size;
                } else
                        rep.server_bytes_after += msgs[i].size;
        }

        if (r->server_expire_days == 0 && r->leave_on_server)
                rep.warnings |= POP3_RULES_W_EXPIRE_0;
        if (r->server_expire_days > 0 && r->leave_on_server &&
            (r->delete_after_days == 0 || (int64_t)r->delete_after_days > r->server_expire_days))
                rep.warnings |= POP3_RULES_W_EXPIRE_EARLIER;
        if (reportp)
                *reportp = rep;
        return 0;
}
