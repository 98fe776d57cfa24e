/*
 * Full-text search (see store/search.h). The query parser is pure: it turns
 * each term into one SQL condition over messages m, folders f and accounts a,
 * with the user's text only ever in bound parameters. A text term of three
 * characters or more becomes an FTS5 MATCH of all its trigrams (each a quoted
 * string, so FTS5 syntax in the user's words means nothing), which the index
 * answers with candidates, and a LIKE on the stored column text, which keeps
 * the ones holding the term as one substring: the index has no positions
 * (detail=none, schema version 4), which makes it small and fast to fill. A
 * shorter term, which trigrams cannot index, is the LIKE alone: a scan.
 * Searching and listing pending messages run on the loop thread's read
 * connection; writing index documents runs as one writer job on the writer
 * thread's connection.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/fts-tokenizer.h"
#include "store/search.h"
#include "store/store-private.h"

/* ---- Parsing ---- */

typedef struct Builder {
        FILE *sql;
        char *buf;
        size_t len;
        StoreSearchQuery *q;
        size_t n_terms;
} Builder;

static int add_param(Builder *b, char *p) {
        char **v;

        if (!p)
                return -ENOMEM;
        v = realloc(b->q->params, (b->q->n_params + 1) * sizeof(*v));
        if (!v) {
                free(p);
                return -ENOMEM;
        }
        b->q->params = v;
        v[b->q->n_params++] = p;
        return (int)b->q->n_params; /* its SQL number */
}

static void add_cond(Builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_cond(Builder *b, const char *fmt, ...) {
        va_list ap;

        fputs(b->n_terms++ ? " AND " : "", b->sql);
        va_start(ap, fmt);
        vfprintf(b->sql, fmt, ap);
        va_end(ap);
}

static size_t utf8_chars(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                n += ((unsigned char)*s & 0xc0) != 0x80;
        return n;
}

/* The FTS5 query for the trigrams of text (3+ characters), ANDed: each one
 * a string in double quotes, quotes doubled. The index has no positions
 * (detail=none), so this finds the documents holding every trigram anywhere;
 * the LIKE beside it keeps those where text is one substring of the column.
 * Trigrams holding a blank are not in the index (store/fts-tokenizer.c) and
 * are left out here too: "" when none is left. */
static char *fts_trigrams(const char *text) {
        size_t n = strlen(text);
        char *out = malloc(16 * n + 16), *p = out; /* a byte is in three trigrams at most, doubled when a quote */
        const char *c0 = text, *c3 = text;

        if (!out)
                return NULL;
        for (int k = 0; k < 3 && *c3; k++) /* c3: three characters after c0 */
                while (*++c3 && ((unsigned char)*c3 & 0xc0) == 0x80)
                        ;
        for (;;) {
                if (!store_fts_token_has_blank(c0, (size_t)(c3 - c0))) {
                        if (p > out)
                                p += sprintf(p, " AND ");
                        *p++ = '"';
                        for (const char *t = c0; t < c3; t++) {
                                if (*t == '"')
                                        *p++ = '"';
                                *p++ = *t;
                        }
                        *p++ = '"';
                }
                if (!*c3)
                        break;
                while (*++c0 && ((unsigned char)*c0 & 0xc0) == 0x80)
                        ;
                while (*++c3 && ((unsigned char)*c3 & 0xc0) == 0x80)
                        ;
        }
        *p = '\0';
        return out;
}

/* %text% for LIKE … ESCAPE '\'. */
static char *like_pattern(const char *text) {
        char *out = malloc(2 * strlen(text) + 3), *p = out;

        if (!out)
                return NULL;
        *p++ = '%';
        for (const char *t = text; *t; t++) {
                if (*t == '%' || *t == '_' || *t == '\\')
                        *p++ = '\\';
                *p++ = *t;
        }
        *p++ = '%';
        *p = '\0';
        return out;
}

/* A text term in column (NULL: every indexed column; the columns are the same names in search and messages). */
static int add_text(Builder *b, const char *column, const char *text) {
        static const char *const all[] = {"subject", "from_addr", "to_addr", "cc_addr", "body"};
        _cleanup_free_ char *trigrams = NULL;
        bool first = true;
        size_t chars;
        int n, k;

        if (!*text)
                return 0;
        n = add_param(b, like_pattern(text));
        if (n < 0)
                return n;
        chars = utf8_chars(text);
        if (chars < 3 && column && strcmp(column, "body") != 0) {
                /* The row's own field: found before indexing too. */
                add_cond(b, "m.%s LIKE ?%d ESCAPE '\\'", column, n);
                return 0;
        }
        if (chars >= 3 && !(trigrams = fts_trigrams(text)))
                return -ENOMEM;
        if (trigrams && *trigrams) { /* the index finds candidates, LIKE checks them */
                k = add_param(b, TAKE_PTR(trigrams));
                if (k < 0)
                        return k;
                add_cond(b, "m.id IN (SELECT rowid FROM search WHERE search MATCH ?%d AND (", k);
        } else { /* too short for trigrams, or only blanks between short words: a scan */
                add_cond(b, "m.id IN (SELECT rowid FROM search WHERE (");
        }
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                if (column && strcmp(column, all[i]) != 0)
                        continue;
                fprintf(b->sql, "%s%s LIKE ?%d ESCAPE '\\'", first ? "" : " OR ", all[i], n);
                first = false;
        }
        fputs("))", b->sql);
        return 0;
}

/* YYYY-MM-DD as the Unix time of that day's start, UTC. */
static bool parse_date(const char *s, int64_t *tp) {
        struct tm tm = {};
        char *end;

        end = strptime(s, "%Y-%m-%d", &tm);
        if (!end || *end)
                return false;
        *tp = (int64_t)timegm(&tm);
        return true;
}

/* Sets the error "<before><what><after>". */
static int fail(Builder *b, const char *before, const char *what, const char *after) {
        if (asprintf(&b->q->error, "%s%s%s", before, what, after) < 0)
                b->q->error = NULL;
        return STORE_SEARCH_E_QUERY;
}

/* One term: op is the part before ':' (NULL for none), value unquoted. */
static int add_term(Builder *b, const char *op, const char *value) {
        static const struct {
                const char *op, *column;
        } fields[] = {
                {"from", "from_addr"}, {"to", "to_addr"}, {"cc", "cc_addr"}, {"subject", "subject"}, {"body", "body"}};
        int64_t t;
        int n;

        if (!op)
                return add_text(b, NULL, value);
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
                if (!strcasecmp(op, fields[i].op))
                        return add_text(b, fields[i].column, value);
        if (!strcasecmp(op, "folder") || !strcasecmp(op, "account")) {
                n = add_param(b, strdup(value));
                if (n < 0)
                        return n;
                add_cond(b, "%s.name = ?%d", !strcasecmp(op, "folder") ? "f" : "a", n);
                return 0;
        }
        if (!strcasecmp(op, "is")) {
                if (!strcasecmp(value, "unread"))
                        add_cond(b, "(m.flags & %u) = 0", (unsigned)STORE_FLAG_SEEN);
                else if (!strcasecmp(value, "read"))
                        add_cond(b, "(m.flags & %u) != 0", (unsigned)STORE_FLAG_SEEN);
                else if (!strcasecmp(value, "flagged"))
                        add_cond(b, "(m.flags & %u) != 0", (unsigned)STORE_FLAG_FLAGGED);
                else if (!strcasecmp(value, "answered"))
                        add_cond(b, "(m.flags & %u) != 0", (unsigned)STORE_FLAG_ANSWERED);
                else
                        return fail(b, "unknown is:", value, " (unread, read, flagged, answered)");
                return 0;
        }
        if (!strcasecmp(op, "has")) {
                if (strcasecmp(value, "attachment") != 0)
                        return fail(b, "unknown has:", value, " (attachment)");
                add_cond(b, "m.has_attachment = 1");
                return 0;
        }
        if (!strcasecmp(op, "before") || !strcasecmp(op, "after")) {
                if (!parse_date(value, &t))
                        return fail(b, "bad date \"", value, "\" (YYYY-MM-DD)");
                add_cond(b, "m.date %s %lld", !strcasecmp(op, "before") ? "<" : ">=", (long long)t);
                return 0;
        }
        /* Not an operator (a URL, a time of day): the whole term is text. */
        {
                char *text;

                if (asprintf(&text, "%s:%s", op, value) < 0)
                        return -ENOMEM;
                n = add_text(b, NULL, text);
                free(text);
                return n;
        }
}

int store_search_parse(const char *query, StoreSearchQuery *q) {
        Builder b = {.q = q};
        const char *p = query;
        int r = 0;

        *q = (StoreSearchQuery){};
        b.sql = open_memstream(&b.buf, &b.len);
        if (!b.sql)
                return -ENOMEM;
        while (r == 0) {
                const char *q0;
                char *op = NULL, *value;

                while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                        p++;
                if (!*p)
                        break;
                for (q0 = p; (*q0 >= 'a' && *q0 <= 'z') || (*q0 >= 'A' && *q0 <= 'Z'); q0++)
                        ;
                if (*q0 == ':' && q0 > p && q0[1] && q0[1] != ' ') {
                        op = strndup(p, q0 - p);
                        if (!op) {
                                r = -ENOMEM;
                                break;
                        }
                        p = q0 + 1;
                }
                if (*p == '"') {
                        const char *close = strchr(p + 1, '"');

                        if (!close) {
                                free(op);
                                r = fail(&b, "unclosed quote", "", "");
                                break;
                        }
                        value = strndup(p + 1, close - p - 1);
                        p = close + 1;
                } else {
                        const char *start = p;

                        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                                p++;
                        value = strndup(start, p - start);
                }
                if (!value) {
                        free(op);
                        r = -ENOMEM;
                        break;
                }
                r = add_term(&b, op, value);
                free(op);
                free(value);
        }
        if (b.n_terms == 0)
                fputs("1", b.sql);
        if (fclose(b.sql) != 0 && r == 0)
                r = -ENOMEM;
        q->where = b.buf;
        if (r != 0) {
                char *error = q->error;

                q->error = NULL;
                store_search_query_clear(q);
                q->error = error;
        }
        return r;
}

void store_search_query_clear(StoreSearchQuery *q) {
        for (size_t i = 0; i < q->n_params; i++)
                free(q->params[i]);
        free(q->params);
        free(q->where);
        free(q->error);
        *q = (StoreSearchQuery){};
}

/* ---- Searching (loop thread) ---- */

int store_search(Store *s, const char *query, uint64_t offset, size_t limit, StoreMessage **msgsp, size_t *n_msgsp,
                 char **errorp) {
        StoreSearchQuery q;
        sqlite3_stmt *st = NULL;
        StoreMessage *v = NULL;
        char *sql = NULL;
        size_t n = 0;
        int r, rc;

        *msgsp = NULL;
        *n_msgsp = 0;
        *errorp = NULL;
        r = store_search_parse(query, &q);
        if (r == STORE_SEARCH_E_QUERY) {
                *errorp = q.error;
                q.error = NULL;
                store_search_query_clear(&q);
                return r;
        }
        if (r < 0)
                return r;
        if (asprintf(&sql,
                     "SELECT m.id FROM messages m JOIN folders f ON f.id = m.folder_id"
                     " JOIN accounts a ON a.id = f.account_id WHERE %s ORDER BY m.date DESC, m.id DESC"
                     " LIMIT %zu OFFSET %llu",
                     q.where, limit, (unsigned long long)offset) < 0) {
                store_search_query_clear(&q);
                return -ENOMEM;
        }
        rc = sqlite3_prepare_v2(s->read_db, sql, -1, &st, NULL); /* not cached: the SQL differs per query */
        free(sql);
        if (rc != SQLITE_OK) {
                store_search_query_clear(&q);
                return store_db_errno(rc) ?: -EIO;
        }
        for (size_t i = 0; i < q.n_params; i++)
                sqlite3_bind_text(st, (int)i + 1, q.params[i], -1, SQLITE_STATIC);
        v = calloc(limit ? limit : 1, sizeof(*v));
        r = v ? 0 : -ENOMEM;
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW && n < limit) {
                r = store_message_get(s, sqlite3_column_int64(st, 0), &v[n]);
                if (r == 0)
                        n++;
        }
        if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
                r = store_db_errno(rc) ?: -EIO;
        sqlite3_finalize(st);
        store_search_query_clear(&q);
        if (r < 0) {
                store_message_list_free(v, n);
                return r;
        }
        *msgsp = v;
        *n_msgsp = n;
        return 0;
}

/* ---- Indexing ---- */

int store_search_pending(Store *s, int64_t after_id, size_t max, StoreSearchPending **pendingp, size_t *n_pendingp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        StoreSearchPending *v;
        size_t n = 0;
        int r, rc;

        *pendingp = NULL;
        *n_pendingp = 0;
        r = store_prepare(s->read_db,
                          "SELECT id, cid FROM messages WHERE indexed = 0 AND cid IS NOT NULL AND id > ? ORDER BY id"
                          " LIMIT ?",
                          &st);
        if (r < 0)
                return r;
        v = calloc(max ? max : 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        sqlite3_bind_int64(st, 1, after_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                v[n].id = sqlite3_column_int64(st, 0);
                if (store_column_cid(st, 1, &v[n].cid))
                        n++;
        }
        if (rc != SQLITE_DONE) {
                free(v);
                return store_db_errno(rc) ?: -EIO;
        }
        *pendingp = v;
        *n_pendingp = n;
        return 0;
}

int store_search_count_pending(Store *s, uint64_t *np) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(s->read_db, "SELECT count(*) FROM messages WHERE indexed = 0 AND cid IS NOT NULL", &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_db_errno(rc) ?: -EIO;
        *np = (uint64_t)sqlite3_column_int64(st, 0);
        return 0;
}

typedef struct PutOp {
        StoreOp op;
        StoreSearchDoc *docs;
        size_t n;
} PutOp;

static void docs_free(StoreSearchDoc *docs, size_t n) {
        for (size_t i = 0; docs && i < n; i++)
                free(docs[i].body);
        free(docs);
}

static void put_op_free(StoreOp *op) {
        PutOp *p = (PutOp *)op;

        docs_free(p->docs, p->n);
        free(p);
}

/*
 * FTS5 flushes its pending terms to a new index segment at every savepoint,
 * statement savepoints included, and every segment is merged again later: so
 * the rows are marked first, and the documents then go in with single-row
 * INSERT … VALUES statements, which open no statement savepoint. The job's
 * documents then make one segment (or a few, when they pass FTS5's hash size)
 * instead of one per message.
 */
static int put_run(sqlite3 *db, void *userdata) {
        PutOp *p = userdata;
        int r;

        for (size_t i = 0; i < p->n; i++) {
                _cleanup_reset_ sqlite3_stmt *mark = NULL;

                r = store_prepare(db, "UPDATE messages SET indexed = 1, has_attachment = ? WHERE id = ?", &mark);
                if (r < 0)
                        return r;
                sqlite3_bind_int(mark, 1, p->docs[i].has_attachment);
                sqlite3_bind_int64(mark, 2, p->docs[i].id);
                r = store_step_done(mark);
                if (r < 0)
                        return r;
                p->docs[i].id = sqlite3_changes(db) > 0 ? p->docs[i].id : 0; /* 0: deleted meanwhile */
        }
        for (size_t i = 0; i < p->n; i++) {
                _cleanup_reset_ sqlite3_stmt *env = NULL;
                _cleanup_reset_ sqlite3_stmt *ins = NULL;
                int rc;

                if (p->docs[i].id == 0)
                        continue;
                r = store_prepare(db, "SELECT subject, from_addr, to_addr, cc_addr FROM messages WHERE id = ?", &env);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(env, 1, p->docs[i].id);
                rc = sqlite3_step(env);
                if (rc == SQLITE_DONE)
                        continue;
                if (rc != SQLITE_ROW)
                        return store_db_errno(rc) ?: -EIO;
                /* REPLACE: a message indexed again (its body arrived, a crash before the mark) keeps one row. */
                r = store_prepare(db,
                                  "INSERT OR REPLACE INTO search (rowid, subject, from_addr, to_addr, cc_addr, body)"
                                  " VALUES (?, ?, ?, ?, ?, ?)",
                                  &ins);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(ins, 1, p->docs[i].id);
                for (int c = 0; c < 4; c++)
                        sqlite3_bind_value(ins, c + 2, sqlite3_column_value(env, c));
                sqlite3_bind_text(ins, 6, p->docs[i].body, -1, SQLITE_STATIC);
                r = store_step_done(ins);
                if (r < 0)
                        return r;
        }
        return 0;
}

int store_search_put(Store *s, StoreSearchDoc *docs, size_t n, StoreDoneFn cb, void *userdata) {
        PutOp *p = calloc(1, sizeof(*p));

        if (!p) {
                docs_free(docs, n);
                return -ENOMEM;
        }
        p->docs = docs;
        p->n = n;
        p->op.free_fn = put_op_free;
        p->op.done_cb = cb;
        p->op.userdata = userdata;
        return store_op_submit(s, STORE_BULK, &p->op, put_run);
}
