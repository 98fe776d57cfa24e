/*
 * The service API's mail view: folders, message summaries, raw messages and
 * the changes a person makes (flags, moves, deletions) over the store. Reads
 * are synchronous on the loop thread; changes are one store job each
 * (store/local.h) whose callback answers the caller. Loop thread only.
 *
 * Changes are applied to the local view at once and recorded as pending
 * changes for IMAP accounts, which the IMAP engine pushes. POP3 accounts have
 * no server-side folders or flags: their changes are local only, and a
 * deletion here is what the POP3 rule "delete when deleted locally" sees.
 *
 * GetMessage's bytes go out through a memfd filled here, chunk by chunk, from
 * the store's body reader, then sealed: simplest of the bounded choices (no
 * write-side state machine, the client may read at any pace or mmap it), and
 * tegamid's RSS stays at one chunk because the memfd's pages are never mapped
 * here. The cost: the copy lives in tmpfs (RAM or swap, charged to the user)
 * until the client closes the fd, and filling it blocks the loop for the time
 * the store takes to read the body (0.2 s for 50 MB on the test machine). A pipe written
 * from a uv_poll would avoid both and is the way to go if that matters.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "daemon/mime/envelope.h"
#include "daemon/service-private.h"
#include "store/body.h"
#include "store/local.h"
#include "store/message.h"
#include "store/query.h"

int service_fail(char **errp, ServiceError e, const char *fmt, ...) {
        va_list ap;
        int r;

        free(*errp);
        va_start(ap, fmt);
        r = vasprintf(errp, fmt, ap);
        va_end(ap);
        if (r < 0) {
                *errp = NULL;
                return -ENOMEM;
        }
        return (int)e;
}

int service_store(Daemon *d, Store **storep, char **errp) {
        *errp = NULL;
        if (d->locked)
                return service_fail(errp, SERVICE_ERROR_LOCKED, "the store is locked: run `tegami unlock` first");
        if (!d->store || d->stopping)
                return service_fail(errp, SERVICE_ERROR_BUSY, "the store is closed: tegamid is stopping");
        *storep = d->store;
        return 0;
}

int service_store_error(int r, const char *what, char **errp) {
        free(*errp);
        if (asprintf(errp, "store: %s: %s", what, strerror(-r)) < 0)
                *errp = NULL;
        return r < 0 ? r : -EIO;
}

char *service_account_name(Store *store, int64_t account_id) {
        StoreAccount *accounts = NULL;
        size_t n = 0;
        char *name = NULL;

        if (store_account_list(store, &accounts, &n) < 0)
                return strdup("");
        for (size_t i = 0; i < n && !name; i++)
                if (accounts[i].id == account_id)
                        name = strdup(accounts[i].name);
        store_account_list_free(accounts, n);
        return name ? name : strdup("");
}

static const char *role_name(StoreFolderRole role) {
        static const char *const names[] = {
                [STORE_ROLE_NONE] = "",           [STORE_ROLE_INBOX] = "inbox", [STORE_ROLE_SENT] = "sent",
                [STORE_ROLE_DRAFTS] = "drafts",   [STORE_ROLE_TRASH] = "trash", [STORE_ROLE_JUNK] = "junk",
                [STORE_ROLE_ARCHIVE] = "archive", [STORE_ROLE_ALL] = "all",     [STORE_ROLE_FLAGGED] = "flagged",
        };

        return (unsigned)role < ARRAY_SIZE(names) && names[role] ? names[role] : "";
}

/* The configured account name in the store: *idp its id, 0 when the store has
 * no row for it yet (nothing synced: no folders). NOT_FOUND when unconfigured. */
static int find_account(Daemon *d, Store *store, const char *name, int64_t *idp, char **errp) {
        StoreAccount *accounts = NULL;
        size_t n = 0;
        int r;

        *idp = 0;
        if (!d->config || !config_find_account(d->config, name))
                return service_fail(errp, SERVICE_ERROR_NOT_FOUND, "no account \"%.64s\"", name);
        r = store_account_list(store, &accounts, &n);
        if (r < 0)
                return service_store_error(r, "listing accounts", errp);
        for (size_t i = 0; i < n; i++)
                if (strcmp(accounts[i].name, name) == 0)
                        *idp = accounts[i].id;
        store_account_list_free(accounts, n);
        return 0;
}

/* The folder called name of account_id: *folderp filled (free its name), or NOT_FOUND. */
static int find_folder(Store *store, const char *account, int64_t account_id, const char *name, StoreFolder *folderp,
                       char **errp) {
        StoreFolder *folders = NULL;
        size_t n = 0;
        bool found = false;
        int r;

        if (account_id > 0) {
                r = store_folder_list(store, account_id, &folders, &n);
                if (r < 0)
                        return service_store_error(r, "listing folders", errp);
        }
        for (size_t i = 0; i < n && !found; i++)
                if (strcmp(folders[i].name, name) == 0) {
                        *folderp = folders[i];
                        folders[i].name = NULL; /* handed over */
                        found = true;
                }
        store_folder_list_free(folders, n);
        if (!found)
                return service_fail(errp, SERVICE_ERROR_NOT_FOUND, "account %.64s has no folder \"%.128s\"", account,
                                    name);
        return 0;
}

void service_folder_list_free(ServiceFolder *folders, size_t n_folders) {
        for (size_t i = 0; i < n_folders; i++)
                free(folders[i].name);
        free(folders);
}

int service_list_folders(Daemon *d, const char *account, ServiceFolder **foldersp, size_t *n_foldersp, char **errp) {
        StoreFolder *folders = NULL;
        ServiceFolder *out;
        Store *store;
        int64_t account_id;
        size_t n = 0;
        int r;

        *foldersp = NULL;
        *n_foldersp = 0;
        r = service_store(d, &store, errp);
        if (r == 0)
                r = find_account(d, store, account, &account_id, errp);
        if (r != 0)
                return r;
        if (account_id > 0) {
                r = store_folder_list(store, account_id, &folders, &n);
                if (r < 0)
                        return service_store_error(r, "listing folders", errp);
        }
        out = calloc(n ? n : 1, sizeof *out);
        if (!out) {
                store_folder_list_free(folders, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                out[i].name = folders[i].name;
                folders[i].name = NULL;
                out[i].role = role_name(folders[i].role);
                r = store_query_folder_counts(store, folders[i].id, &out[i].total, &out[i].unread);
                if (r < 0) {
                        store_folder_list_free(folders, n);
                        service_folder_list_free(out, n);
                        return service_store_error(r, "counting messages", errp);
                }
        }
        store_folder_list_free(folders, n);
        *foldersp = out;
        *n_foldersp = n;
        return 0;
}

void service_message_clear(ServiceMessage *m) {
        free(m->account);
        free(m->folder);
        free(m->from);
        free(m->to);
        free(m->cc);
        free(m->subject);
        free(m->message_id);
        free(m->keywords);
        *m = (ServiceMessage){};
}

void service_message_list_free(ServiceMessage *msgs, size_t n_msgs) {
        for (size_t i = 0; i < n_msgs; i++)
                service_message_clear(&msgs[i]);
        free(msgs);
}

/* Takes the string at *src (sets it NULL). */
static char *take(char **src) {
        char *s = *src;

        *src = NULL;
        return s;
}

/* Fills *out from a stored message (strings taken from m). Envelope fields
 * the store lacks are read from the first chunk of the body. */
static int summarize(Store *store, StoreMessage *m, const char *account, const char *folder, ServiceMessage *out) {
        *out = (ServiceMessage){
                .id = m->id,
                .account = strdup(account),
                .folder = strdup(folder),
                .date = m->env.date,
                .from = take(&m->env.from),
                .to = take(&m->env.to),
                .cc = take(&m->env.cc),
                .subject = take(&m->env.subject),
                .message_id = take(&m->env.message_id),
                .flags = m->flags,
                .keywords = take(&m->keywords),
                .size = m->size,
        };
        if (!out->account || !out->folder) {
                service_message_clear(out);
                return -ENOMEM;
        }
        if (!out->from && !out->subject && !out->date && m->has_body) {
                _cleanup_(store_body_reader_freep) StoreBodyReader *rd = NULL;
                StoreEnvelope env = {};
                const void *data;
                size_t n = 0;

                /* No envelope stored (a store from before POP3 kept them): the
                 * header block is in the first chunk, or its first 64 KiB are. */
                if (store_body_reader_new(store, &m->cid, &rd) == 0 && store_body_reader_read(rd, &data, &n) == 0 &&
                    mime_envelope_parse(data, n, &env) == 0) {
                        out->from = take(&env.from), out->to = take(&env.to), out->cc = take(&env.cc);
                        out->subject = take(&env.subject), out->message_id = take(&env.message_id);
                        out->date = env.date;
                }
                mime_envelope_clear(&env);
        }
        if (!out->date)
                out->date = m->internal_date;
        return 0;
}

int service_list_messages(Daemon *d, const char *account, const char *folder, uint64_t offset, size_t limit,
                          ServiceMessage **msgsp, size_t *n_msgsp, uint64_t *totalp, char **errp) {
        StoreFolder f = {};
        StoreMessage *msgs = NULL;
        ServiceMessage *out;
        Store *store;
        int64_t account_id;
        uint64_t unread;
        size_t n = 0;
        int r;

        *msgsp = NULL;
        *n_msgsp = 0;
        *totalp = 0;
        r = service_store(d, &store, errp);
        if (r == 0)
                r = find_account(d, store, account, &account_id, errp);
        if (r == 0)
                r = find_folder(store, account, account_id, folder, &f, errp);
        if (r != 0)
                return r;
        r = store_query_folder_counts(store, f.id, totalp, &unread);
        if (r == 0)
                r = store_query_messages_newest(store, f.id, offset, limit, &msgs, &n);
        if (r < 0) {
                store_query_folder_clear(&f);
                return service_store_error(r, "listing messages", errp);
        }
        out = calloc(n ? n : 1, sizeof *out);
        for (size_t i = 0; out && i < n; i++)
                if (summarize(store, &msgs[i], account, folder, &out[i]) < 0) {
                        service_message_list_free(out, i);
                        out = NULL;
                }
        store_message_list_free(msgs, n);
        store_query_folder_clear(&f);
        if (!out)
                return -ENOMEM;
        *msgsp = out;
        *n_msgsp = n;
        return 0;
}

/* A message by id with its folder and account names; NOT_FOUND when absent. */
static int load_message(Store *store, int64_t id, StoreMessage *m, ServiceMessage *out, char **errp) {
        _cleanup_free_ char *account = NULL;
        StoreFolder f = {};
        int r;

        r = store_message_get(store, id, m);
        if (r == -ENOENT)
                return service_fail(errp, SERVICE_ERROR_NOT_FOUND, "no message with id %" PRId64, id);
        if (r < 0)
                return service_store_error(r, "reading a message", errp);
        r = store_query_folder_get(store, m->folder_id, &f);
        if (r < 0) {
                store_message_clear(m);
                return service_store_error(r, "reading a folder", errp);
        }
        account = service_account_name(store, f.account_id);
        r = account ? summarize(store, m, account, f.name, out) : -ENOMEM;
        store_query_folder_clear(&f);
        if (r < 0)
                store_message_clear(m);
        return r;
}

/* Copies the body cid into a new sealed memfd, one stored chunk at a time. */
static int body_to_memfd(Store *store, const StoreCid *cid, int *fdp) {
        _cleanup_(store_body_reader_freep) StoreBodyReader *rd = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        r = store_body_reader_new(store, cid, &rd);
        if (r < 0)
                return r;
        fd = memfd_create("tegami-message", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        for (;;) {
                const void *data;
                size_t n = 0;

                r = store_body_reader_read(rd, &data, &n);
                if (r < 0)
                        return r;
                if (n == 0)
                        break;
                for (const char *p = data; n > 0;) {
                        ssize_t k = write(fd, p, n);

                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return -errno;
                        p += k;
                        n -= (size_t)k;
                }
        }
        /* Sealed: the client reads exactly what the store holds, and cannot change it for anyone. */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
            lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        *fdp = TAKE_FD(fd);
        return 0;
}

int service_get_summary(Daemon *d, int64_t id, ServiceMessage *msgp, char **errp) {
        StoreMessage m = {};
        Store *store;
        int r;

        *msgp = (ServiceMessage){};
        r = service_store(d, &store, errp);
        if (r == 0)
                r = load_message(store, id, &m, msgp, errp);
        if (r == 0)
                store_message_clear(&m);
        return r;
}

int service_get_message(Daemon *d, int64_t id, ServiceMessage *msgp, int *fdp, char **errp) {
        StoreMessage m = {};
        Store *store;
        int r;

        *fdp = -1;
        *msgp = (ServiceMessage){};
        r = service_store(d, &store, errp);
        if (r == 0)
                r = load_message(store, id, &m, msgp, errp);
        if (r != 0)
                return r;
        if (!m.has_body) {
                /* The caller fetches it now (service_fetch_body(), daemon/service-fetch.c) and asks again. */
                r = service_fail(errp, SERVICE_ERROR_NOT_FOUND, "message %" PRId64 " has no body here yet", id);
                if (r > 0)
                        r = SERVICE_NO_BODY;
        } else {
                r = body_to_memfd(store, &m.cid, fdp);
                if (r == -ENOENT)
                        r = service_fail(errp, SERVICE_ERROR_NOT_FOUND, "the body of message %" PRId64 " is missing",
                                         id);
                else if (r < 0 && r != -ENOMEM)
                        r = service_fail(errp, SERVICE_ERROR_FAILED, "message %" PRId64 ": %s", id, strerror(-r));
        }
        store_message_clear(&m);
        if (r != 0)
                service_message_clear(msgp);
        return r;
}

/* ---- changes ---- */

typedef struct ChangeOp {
        Daemon *d;
        ServiceDoneFn cb;
        void *userdata;
        unsigned n_jobs; /* store jobs still out */
        int r;           /* the first failure */
} ChangeOp;

static void change_done_cb(int r, void *userdata) {
        ChangeOp *op = userdata;
        char buf[160];

        if (r < 0 && op->r == 0)
                op->r = r;
        if (--op->n_jobs > 0)
                return;
        /* Unread and Total may differ now (even after a partial failure). */
        service_counts_invalidate(op->d, NULL);
        if (op->d->listener && op->d->listener->mail_changed)
                op->d->listener->mail_changed(op->d->listener_userdata);
        if (op->r == 0)
                op->cb(SERVICE_ERROR_NONE, "", op->userdata);
        else if (op->r == -ENOENT)
                op->cb(SERVICE_ERROR_NOT_FOUND, "a message or the target folder went away meanwhile", op->userdata);
        else if (op->r == -EXDEV)
                op->cb(SERVICE_ERROR_INVALID_ARGS, "messages move within their account only", op->userdata);
        else {
                snprintf(buf, sizeof buf, "store: %s", strerror(-op->r));
                op->cb(SERVICE_ERROR_FAILED, buf, op->userdata);
        }
        free(op);
}

/* Checks every id and splits them by whether their account records pending
 * changes (IMAP) or not (POP3, or no longer configured): the two halves go in
 * imap[] and local[]. *accountp (when not NULL) gets the one account id all
 * messages share, or -1 when they span accounts. */
static int check_ids(Daemon *d, Store *store, const int64_t *ids, size_t n, int64_t *imap, size_t *n_imapp,
                     int64_t *local, size_t *n_localp, int64_t *accountp, char **errp) {
        *n_imapp = *n_localp = 0;
        if (accountp)
                *accountp = 0;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *name = NULL;
                StoreMessage m = {};
                StoreFolder f = {};
                const Account *a;
                int r;

                if (ids[i] <= 0)
                        return service_fail(errp, SERVICE_ERROR_NOT_FOUND, "no message with id %" PRId64, ids[i]);
                r = store_message_get(store, ids[i], &m);
                if (r == -ENOENT)
                        return service_fail(errp, SERVICE_ERROR_NOT_FOUND, "no message with id %" PRId64, ids[i]);
                if (r < 0)
                        return service_store_error(r, "reading a message", errp);
                r = store_query_folder_get(store, m.folder_id, &f);
                store_message_clear(&m);
                if (r < 0)
                        return service_store_error(r, "reading a folder", errp);
                store_query_folder_clear(&f);
                if (accountp)
                        *accountp = *accountp == 0 || *accountp == f.account_id ? f.account_id : -1;
                name = service_account_name(store, f.account_id);
                if (!name)
                        return -ENOMEM;
                a = d->config ? config_find_account(d->config, name) : NULL;
                if (a && a->imap.proto)
                        imap[(*n_imapp)++] = ids[i];
                else
                        local[(*n_localp)++] = ids[i];
        }
        return 0;
}

static int cmp_id(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Sorts v and drops repeated ids (a message named twice is changed once). */
static size_t unique_ids(int64_t *v, size_t n) {
        size_t k = 0;

        qsort(v, n, sizeof *v, cmp_id);
        for (size_t i = 0; i < n; i++)
                if (k == 0 || v[k - 1] != v[i])
                        v[k++] = v[i];
        return k;
}

/* Checks ids, then runs c over them, one job for the messages of IMAP
 * accounts (recorded for the server) and one for the rest: each job is all
 * or none. cb answers once both are done. */
static int apply_change(Daemon *d, Store *store, const int64_t *ids, size_t n_ids, StoreLocalChange *c,
                        ServiceDoneFn cb, void *userdata, char **errp) {
        _cleanup_free_ int64_t *imap = calloc(n_ids ? n_ids : 1, sizeof *imap);
        _cleanup_free_ int64_t *local = calloc(n_ids ? n_ids : 1, sizeof *local);
        size_t n_imap, n_local;
        ChangeOp *op;
        int r;

        if (!imap || !local)
                return -ENOMEM;
        if (n_ids == 0)
                return service_fail(errp, SERVICE_ERROR_INVALID_ARGS, "no message ids given");
        r = check_ids(d, store, ids, n_ids, imap, &n_imap, local, &n_local, NULL, errp);
        if (r != 0)
                return r;
        n_imap = unique_ids(imap, n_imap);
        n_local = unique_ids(local, n_local);
        op = calloc(1, sizeof *op);
        if (!op)
                return -ENOMEM;
        *op = (ChangeOp){.d = d, .cb = cb, .userdata = userdata};
        /* Both jobs queue before either runs (the writer runs them in order),
         * so op lives until the second callback. */
        for (int pass = 0; pass < 2; pass++) {
                const int64_t *v = pass ? local : imap;
                size_t n = pass ? n_local : n_imap;

                if (n == 0)
                        continue;
                c->record = pass == 0;
                r = store_local_apply(store, v, n, c, (int64_t)time(NULL), change_done_cb, op);
                if (r < 0)
                        break;
                op->n_jobs++;
        }
        if (op->n_jobs == 0) {
                free(op);
                return r == -ENOMEM ? r : service_store_error(r, "queueing the change", errp);
        }
        if (r < 0)
                op->r = r; /* the job that was queued answers with the failure */
        return 0;
}

/* Maps one flag name to a STORE_FLAG_* bit; 0 for a keyword. */
static uint32_t flag_bit(const char *f) {
        static const struct {
                const char *name;
                uint32_t bit;
        } table[] = {
                {"\\Seen", STORE_FLAG_SEEN},       {"\\Answered", STORE_FLAG_ANSWERED},
                {"\\Flagged", STORE_FLAG_FLAGGED}, {"\\Deleted", STORE_FLAG_DELETED},
                {"\\Draft", STORE_FLAG_DRAFT},     {"$Forwarded", STORE_FLAG_FORWARDED},
        };

        for (size_t i = 0; i < ARRAY_SIZE(table); i++)
                if (strcasecmp(f, table[i].name) == 0)
                        return table[i].bit;
        return 0;
}

/* Splits flag names into bits and a space-separated keyword list (*kwp, malloc'd or NULL). */
static int split_flags(const char *const *names, size_t n, uint32_t *bitsp, char **kwp, char **errp) {
        size_t len = 1;
        char *kw;

        *bitsp = 0;
        *kwp = NULL;
        for (size_t i = 0; i < n; i++) {
                uint32_t bit = flag_bit(names[i]);

                if (bit)
                        *bitsp |= bit;
                else if (names[i][0] == '\\')
                        return service_fail(errp, SERVICE_ERROR_INVALID_ARGS, "unknown system flag \"%.64s\"",
                                            names[i]);
                else if (!names[i][0] || strpbrk(names[i], " \t\r\n"))
                        return service_fail(errp, SERVICE_ERROR_INVALID_ARGS, "malformed keyword");
                else
                        len += strlen(names[i]) + 1;
        }
        if (len == 1)
                return 0;
        kw = calloc(1, len);
        if (!kw)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!flag_bit(names[i])) {
                        if (*kw)
                                strcat(kw, " ");
                        strcat(kw, names[i]);
                }
        *kwp = kw;
        return 0;
}

int service_set_flags(Daemon *d, const int64_t *ids, size_t n_ids, const char *const *add, size_t n_add,
                      const char *const *remove, size_t n_remove, ServiceDoneFn cb, void *userdata, char **errp) {
        _cleanup_free_ char *kw_add = NULL, *kw_remove = NULL;
        StoreLocalChange c = {.kind = STORE_LOCAL_FLAGS};
        Store *store;
        int r;

        r = service_store(d, &store, errp);
        if (r == 0)
                r = split_flags(add, n_add, &c.flags_add, &kw_add, errp);
        if (r == 0)
                r = split_flags(remove, n_remove, &c.flags_remove, &kw_remove, errp);
        if (r != 0)
                return r;
        if ((c.flags_add & c.flags_remove) != 0)
                return service_fail(errp, SERVICE_ERROR_INVALID_ARGS, "a flag cannot be both added and removed");
        c.keywords_add = kw_add;
        c.keywords_remove = kw_remove;
        return apply_change(d, store, ids, n_ids, &c, cb, userdata, errp);
}

int service_move(Daemon *d, const int64_t *ids, size_t n_ids, const char *account, const char *folder, ServiceDoneFn cb,
                 void *userdata, char **errp) {
        _cleanup_free_ int64_t *scratch = calloc(2 * (n_ids ? n_ids : 1), sizeof *scratch);
        StoreLocalChange c = {.kind = STORE_LOCAL_MOVE};
        StoreFolder f = {};
        Store *store;
        int64_t account_id, msgs_account;
        size_t n_a, n_b;
        int r;

        if (!scratch)
                return -ENOMEM;
        r = service_store(d, &store, errp);
        if (r == 0)
                r = find_account(d, store, account, &account_id, errp);
        if (r == 0)
                r = find_folder(store, account, account_id, folder, &f, errp);
        if (r != 0)
                return r;
        c.target_folder_id = f.id;
        store_query_folder_clear(&f);
        r = check_ids(d, store, ids, n_ids, scratch, &n_a, scratch + n_ids, &n_b, &msgs_account, errp);
        if (r != 0)
                return r;
        if (msgs_account != account_id)
                return service_fail(errp, SERVICE_ERROR_INVALID_ARGS,
                                    "messages move within their account only: not every message is in %.64s", account);
        return apply_change(d, store, ids, n_ids, &c, cb, userdata, errp);
}

int service_delete(Daemon *d, const int64_t *ids, size_t n_ids, ServiceDoneFn cb, void *userdata, char **errp) {
        StoreLocalChange c = {.kind = STORE_LOCAL_DELETE};
        Store *store;
        int r;

        r = service_store(d, &store, errp);
        if (r != 0)
                return r;
        return apply_change(d, store, ids, n_ids, &c, cb, userdata, errp);
}
