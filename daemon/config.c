/*
 * Configuration loading. libinih tokenises the file; this module knows every
 * key, its type and its limits (one table), and checks what single keys cannot:
 * required keys, exclusive keys, loopback-only `tls = none`, and a plaintext
 * `password =` in a file others can read.
 *
 * Every error names the file and line, the account when there is one, and the
 * key. inih's handler does not receive line numbers, so the reader we hand it
 * counts lines itself and notes where each section starts.
 *
 * Runs on the main thread at start-up and on SIGHUP; the Config it returns is
 * never modified afterwards.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/config.h"
#include "util/macro.h"
#include "util/secret.h"

#define ACCOUNT_NAME_MAX 64

typedef enum KeyType {
        KEY_STRING,
        KEY_SECRET,
        KEY_URL,
        KEY_UINT,
        KEY_SIZE_MB,  /* integer MB stored as bytes in a uint64_t */
        KEY_BOOL,
        KEY_TLS,
        KEY_FINGERPRINT,
        KEY_FOLDERS,
} KeyType;

typedef struct KeyDef {
        const char *name;
        KeyType type;
        size_t offset;
        ServerProto proto; /* KEY_URL */
        unsigned min, max; /* KEY_UINT */
} KeyDef;

#define K(n, t, field, ...) { n, t, offsetof(Account, field), __VA_ARGS__ }

static const KeyDef account_keys[] = {
        K("address", KEY_STRING, address),
        K("username", KEY_STRING, username),
        K("password", KEY_SECRET, password),
        K("password_command", KEY_STRING, password_command),
        K("oauth2_token_command", KEY_STRING, oauth2_token_command),
        K("imap", KEY_URL, imap, SERVER_IMAP),
        K("pop3", KEY_URL, pop3, SERVER_POP3),
        K("smtp", KEY_URL, smtp, SERVER_SMTP),
        K("ca_file", KEY_STRING, ca_file),
        K("tls", KEY_TLS, tls_none),
        K("tls_fingerprint", KEY_FINGERPRINT, tls_fingerprint),
        K("folders", KEY_FOLDERS, folders),
        K("poll_interval", KEY_UINT, poll_interval, 0, 10, 7 * 24 * 3600),
        K("max_age_days", KEY_UINT, max_age_days, 0, 0, 100000),
        K("max_message_size", KEY_SIZE_MB, max_message_size, 0, 0, 1000000),
        K("sent_folder", KEY_STRING, sent_folder),
        K("outbox_expire_days", KEY_UINT, outbox_expire_days, 0, 1, 365),
        K("quota_warn_percent", KEY_UINT, quota_warn_percent, 0, 1, 100),
        K("pop3_leave_on_server", KEY_BOOL, pop3_leave_on_server),
        K("pop3_delete_after_days", KEY_UINT, pop3_delete_after_days, 0, 0, 100000),
        K("pop3_delete_when_deleted_locally", KEY_BOOL, pop3_delete_when_deleted_locally),
        K("pop3_keep_server_under_messages", KEY_UINT, pop3_keep_server_under_messages, 0, 0, 100000000),
        K("pop3_keep_server_under_mb", KEY_UINT, pop3_keep_server_under_mb, 0, 0, 100000000),
        K("pop3_delete_bigger_than_mb", KEY_UINT, pop3_delete_bigger_than_mb, 0, 0, 100000),
        K("pop3_skip_bigger_than_mb", KEY_UINT, pop3_skip_bigger_than_mb, 0, 0, 100000),
        K("pop3_server_warn_mb", KEY_UINT, pop3_server_warn_mb, 0, 0, 100000000),
        K("notify_preview", KEY_BOOL, notify_preview),
};

/* Parsing state shared by the reader and the handler. */
typedef struct Parser {
        const char *path;
        FILE *f;
        unsigned line;            /* line the last chunk handed to inih belongs to */
        bool at_line_start;
        Config *config;
        Account *account;         /* current [account] section, NULL in [store] */
        bool in_store, in_notify;
        unsigned store_line, notify_line;
        bool seen[ARRAY_SIZE(account_keys)];
        bool store_key_seen;
        char *error;              /* first error, malloc'd */
        unsigned error_line;
} Parser;

_printf_(3, 4) static void parser_error(Parser *p, const Account *a, const char *fmt, ...) {
        char msg[1024];
        va_list ap;

        if (p->error)
                return; /* the first error is the one worth reading */
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (asprintf(&p->error, "%s:%u: %s%s%s%s", p->path, p->line, a ? "account " : "",
                     a ? a->name : "", a ? ": " : "", msg) < 0)
                p->error = NULL;
        p->error_line = p->line;
}

bool host_is_loopback(const char *host) {
        struct in_addr a4;
        struct in6_addr a6;

        if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
                return true;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

const char *server_url_scheme(const ServerUrl *u) {
        static const char *const names[][2] = {
                [SERVER_IMAP] = { "imaps", "imap" },
                [SERVER_POP3] = { "pop3s", "pop3" },
                [SERVER_SMTP] = { "smtps", "smtp" },
        };

        if (u->proto == SERVER_NONE)
                return "none";
        return names[u->proto][u->tls == SERVER_TLS_STARTTLS];
}

static bool valid_host(const char *h, size_t n) {
        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
                        return false;
        return true;
}

/* Parses "scheme://host[:port][/]" for proto; *why explains a failure. */
static int parse_url(const char *s, ServerProto proto, ServerUrl *u, const char **why) {
        static const struct {
                const char *scheme;
                ServerProto proto;
                ServerTls tls;
                uint16_t port;
        } schemes[] = {
                { "imaps", SERVER_IMAP, SERVER_TLS_IMPLICIT, 993 },
                { "imap", SERVER_IMAP, SERVER_TLS_STARTTLS, 143 },
                { "pop3s", SERVER_POP3, SERVER_TLS_IMPLICIT, 995 },
                { "pop3", SERVER_POP3, SERVER_TLS_STARTTLS, 110 },
                { "smtps", SERVER_SMTP, SERVER_TLS_IMPLICIT, 465 },
                { "smtp", SERVER_SMTP, SERVER_TLS_STARTTLS, 587 },
        };
        const char *sep = strstr(s, "://"), *host, *end, *port = NULL;
        size_t i, hlen;

        if (!sep) {
                *why = "expected scheme://host[:port]";
                return -EINVAL;
        }
        for (i = 0; i < ARRAY_SIZE(schemes); i++)
                if (strlen(schemes[i].scheme) == (size_t)(sep - s) &&
                    strncasecmp(s, schemes[i].scheme, (size_t)(sep - s)) == 0)
                        break;
        if (i == ARRAY_SIZE(schemes)) {
                *why = "unknown scheme";
                return -EINVAL;
        }
        if (schemes[i].proto != proto) {
                *why = proto == SERVER_IMAP ? "this key takes imaps:// or imap://"
                     : proto == SERVER_POP3 ? "this key takes pop3s:// or pop3://"
                                            : "this key takes smtps:// or smtp://";
                return -EINVAL;
        }

        host = sep + 3;
        if (*host == '[') {
                end = strchr(host, ']');
                if (!end) {
                        *why = "unterminated [IPv6 address]";
                        return -EINVAL;
                }
                host++;
                hlen = (size_t)(end - host);
                end++;
                struct in6_addr a6;
                char tmp[INET6_ADDRSTRLEN + 1];
                if (hlen >= sizeof tmp || (memcpy(tmp, host, hlen), tmp[hlen] = 0,
                                           inet_pton(AF_INET6, tmp, &a6) != 1)) {
                        *why = "bad IPv6 address";
                        return -EINVAL;
                }
        } else {
                end = host + strcspn(host, ":/");
                hlen = (size_t)(end - host);
                if (!valid_host(host, hlen)) {
                        *why = hlen == 0 ? "missing host name" : "bad host name";
                        return -EINVAL;
                }
        }
        if (*end == ':') {
                char *e;
                unsigned long v;

                port = end + 1;
                errno = 0;
                v = isdigit((unsigned char)*port) ? strtoul(port, &e, 10) : 0;
                if (!isdigit((unsigned char)*port) || errno || v == 0 || v > 65535) {
                        *why = "bad port (1-65535)";
                        return -EINVAL;
                }
                end = e;
        }
        if (*end == '/')
                end++;
        if (*end) {
                *why = "unexpected text after host and port (no user, path or query allowed)";
                return -EINVAL;
        }

        u->host = strndup(host, hlen);
        if (!u->host)
                return -ENOMEM;
        u->proto = proto;
        u->tls = schemes[i].tls;
        u->port = port ? (uint16_t)strtoul(port, NULL, 10) : schemes[i].port;
        return 0;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret) {
        unsigned long long v;
        char *e;

        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &e, 10);
        if (errno || *e || v < min || v > max)
                return -ERANGE;
        *ret = (unsigned)v;
        return 0;
}

static int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };

        for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return *ret = true, 0;
                if (strcasecmp(s, no[i]) == 0)
                        return *ret = false, 0;
        }
        return -EINVAL;
}

/* Accepts 64 hex digits, optionally colon-separated, optionally "sha256:"-prefixed. */
static char *parse_fingerprint(const char *s) {
        char out[65];
        size_t n = 0;

        if (strncasecmp(s, "sha256:", 7) == 0)
                s += 7;
        for (; *s; s++) {
                if (*s == ':')
                        continue;
                if (!isxdigit((unsigned char)*s) || n == 64)
                        return NULL;
                out[n++] = (char)tolower((unsigned char)*s);
        }
        if (n != 64)
                return NULL;
        out[64] = '\0';
        return strdup(out);
}

static char **parse_folders(const char *s) {
        char **v = NULL;
        size_t n = 0;

        for (;;) {
                size_t len;
                char **nv;

                s += strspn(s, " \t");
                if (!*s)
                        break;
                len = strcspn(s, " \t");
                nv = realloc(v, (n + 2) * sizeof *v);
                if (!nv)
                        goto oom;
                v = nv;
                v[n] = strndup(s, len);
                if (!v[n])
                        goto oom;
                v[++n] = NULL;
                s += len;
        }
        return v;
oom:
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
        return NULL;
}

static void account_deinit(Account *a) {
        free(a->name);
        free(a->address);
        free(a->username);
        secret_free(a->password);
        free(a->password_command);
        free(a->oauth2_token_command);
        free(a->imap.host);
        free(a->pop3.host);
        free(a->smtp.host);
        free(a->ca_file);
        free(a->tls_fingerprint);
        for (char **f = a->folders; f && *f; f++)
                free(*f);
        free(a->folders);
        free(a->sent_folder);
}

static void account_set_defaults(Account *a) {
        a->poll_interval = 300;
        a->outbox_expire_days = 5;
        a->quota_warn_percent = 90;
        a->pop3_leave_on_server = true;
        a->notify_preview = true;
}

static bool valid_account_name(const char *n) {
        size_t len = strlen(n);

        if (len == 0 || len > ACCOUNT_NAME_MAX)
                return false;
        for (; *n; n++)
                if (!isalnum((unsigned char)*n) && *n != '-' && *n != '_' && *n != '.')
                        return false;
        return true;
}

/* Called by the reader on each "[...]" line, so empty sections are seen too. */
static void parser_begin_section(Parser *p, const char *line) {
        const char *end = strchr(line, ']');
        char name[256];
        size_t len;

        if (!end)
                return; /* inih reports the syntax error */
        len = (size_t)(end - line - 1);
        if (len >= sizeof name) {
                parser_error(p, NULL, "section name too long");
                return;
        }
        memcpy(name, line + 1, len);
        name[len] = '\0';

        p->account = NULL;
        p->in_store = p->in_notify = false;
        memset(p->seen, 0, sizeof p->seen);

        if (strcmp(name, "notify") == 0) {
                if (p->notify_line)
                        parser_error(p, NULL, "duplicate [notify] section (first on line %u)", p->notify_line);
                p->in_notify = true;
                p->notify_line = p->line;
                return;
        }
        if (strcmp(name, "store") == 0) {
                if (p->store_line)
                        parser_error(p, NULL, "duplicate [store] section (first on line %u)", p->store_line);
                p->in_store = true;
                p->store_line = p->line;
                return;
        }
        if (strncmp(name, "account ", 8) != 0) {
                parser_error(p, NULL, "unknown section [%s] (expected [store], [notify] or [account NAME])", name);
                return;
        }

        const char *aname = name + 8;
        aname += strspn(aname, " ");
        if (!valid_account_name(aname)) {
                parser_error(p, NULL, "bad account name \"%s\" (1-%d letters, digits, '-', '_', '.')", aname,
                             ACCOUNT_NAME_MAX);
                return;
        }
        for (size_t i = 0; i < p->config->n_accounts; i++)
                if (strcmp(p->config->accounts[i].name, aname) == 0) {
                        parser_error(p, NULL, "duplicate account \"%s\" (first on line %u)", aname,
                                     p->config->accounts[i].line);
                        return;
                }

        Account *na = realloc(p->config->accounts, (p->config->n_accounts + 1) * sizeof *na);
        if (!na) {
                parser_error(p, NULL, "out of memory");
                return;
        }
        p->config->accounts = na;
        p->account = &na[p->config->n_accounts++];
        *p->account = (Account){ .line = p->line };
        account_set_defaults(p->account);
        p->account->name = strdup(aname);
        if (!p->account->name)
                parser_error(p, NULL, "out of memory");
}

/* fgets-style reader that counts lines and sees section headers. */
static char *parser_read(char *str, int num, void *stream) {
        Parser *p = stream;
        char *r = fgets(str, num, p->f);
        size_t len;

        if (!r)
                return NULL;
        if (p->at_line_start)
                p->line++;
        len = strlen(r);
        p->at_line_start = len > 0 && r[len - 1] == '\n';
        if (!p->at_line_start && !feof(p->f)) {
                parser_error(p, p->account, "line too long (at most %d characters)", num - 3);
                /* Swallow the rest of the line so inih does not parse it as a new one. */
                int c;
                while ((c = fgetc(p->f)) != EOF && c != '\n')
                        ;
                p->at_line_start = true;
                str[0] = '\0';
                return str;
        }

        const char *s = r + strspn(r, " \t");
        if (*s == '[')
                parser_begin_section(p, s);
        return r;
}

static int handle_store_key(Parser *p, const char *name, const char *value) {
        static const char *const kinds[] = {
                [STORE_KEY_AUTO] = "auto",
                [STORE_KEY_FILE] = "file",
                [STORE_KEY_SECRET_SERVICE] = "secret-service",
                [STORE_KEY_PASSPHRASE] = "passphrase",
        };

        if (strcmp(name, "key") != 0) {
                parser_error(p, NULL, "[store]: unknown key \"%s\"", name);
                return 0;
        }
        if (p->store_key_seen) {
                parser_error(p, NULL, "[store]: key \"key\" given twice");
                return 0;
        }
        p->store_key_seen = true;
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
                if (strcmp(value, kinds[i]) == 0) {
                        p->config->store_key = (StoreKeyKind)i;
                        return 1;
                }
        parser_error(p, NULL, "[store]: key \"key\": \"%s\" is not one of auto, file, secret-service, passphrase",
                     value);
        return 0;
}

static int handle_notify_key(Parser *p, const char *name, const char *value) {
        if (strcmp(name, "open_command") != 0) {
                parser_error(p, NULL, "[notify]: unknown key \"%s\" (expected open_command)", name);
                return 0;
        }
        if (p->config->notify_open_command) {
                parser_error(p, NULL, "[notify]: key \"open_command\" given twice");
                return 0;
        }
        if (!*value) {
                parser_error(p, NULL, "[notify]: key \"open_command\" is empty");
                return 0;
        }
        p->config->notify_open_command = strdup(value);
        if (!p->config->notify_open_command) {
                parser_error(p, NULL, "out of memory");
                return 0;
        }
        return 1;
}

static int handle_account_key(Parser *p, const char *name, const char *value) {
        Account *a = p->account;
        const KeyDef *k = NULL;
        size_t idx;
        const char *why = NULL;
        char *field;
        int r;

        for (idx = 0; idx < ARRAY_SIZE(account_keys); idx++)
                if (strcmp(account_keys[idx].name, name) == 0) {
                        k = &account_keys[idx];
                        break;
                }
        if (!k) {
                parser_error(p, a, "unknown key \"%s\"", name);
                return 0;
        }
        if (p->seen[idx]) {
                parser_error(p, a, "key \"%s\" given twice", name);
                return 0;
        }
        p->seen[idx] = true;
        field = (char *)a + k->offset;

        switch (k->type) {
        case KEY_STRING:
        case KEY_SECRET:
                if (!*value) {
                        parser_error(p, a, "key \"%s\": empty value", name);
                        return 0;
                }
                *(char **)field = k->type == KEY_SECRET ? secret_strdup(value) : strdup(value);
                if (!*(char **)field)
                        goto oom;
                return 1;
        case KEY_URL: {
                ServerUrl *u = (ServerUrl *)field;
                r = parse_url(value, k->proto, u, &why);
                if (r == -ENOMEM)
                        goto oom;
                if (r < 0) {
                        parser_error(p, a, "key \"%s\": bad URL \"%s\": %s", name, value, why);
                        return 0;
                }
                u->line = p->line;
                return 1;
        }
        case KEY_UINT:
        case KEY_SIZE_MB: {
                unsigned v;
                r = parse_uint(value, k->min, k->max, &v);
                if (r < 0) {
                        parser_error(p, a, "key \"%s\": bad number \"%s\" (expected a whole number from %u to %u%s)",
                                     name, value, k->min, k->max, k->type == KEY_SIZE_MB ? ", in MB" : "");
                        return 0;
                }
                if (k->type == KEY_SIZE_MB)
                        *(uint64_t *)field = (uint64_t)v * 1024 * 1024;
                else
                        *(unsigned *)field = v;
                return 1;
        }
        case KEY_BOOL:
                if (parse_bool(value, (bool *)field) < 0) {
                        parser_error(p, a, "key \"%s\": \"%s\" is not yes or no", name, value);
                        return 0;
                }
                return 1;
        case KEY_TLS:
                if (strcmp(value, "required") == 0)
                        a->tls_none = false;
                else if (strcmp(value, "none") == 0)
                        a->tls_none = true;
                else {
                        parser_error(p, a, "key \"tls\": \"%s\" is not \"required\" or \"none\"", value);
                        return 0;
                }
                return 1;
        case KEY_FINGERPRINT:
                a->tls_fingerprint = parse_fingerprint(value);
                if (!a->tls_fingerprint) {
                        parser_error(p, a, "key \"%s\": expected a SHA-256 fingerprint (64 hex digits)", name);
                        return 0;
                }
                return 1;
        case KEY_FOLDERS:
                a->folders = parse_folders(value);
                if (!a->folders) {
                        parser_error(p, a, "key \"folders\": no folder pattern given");
                        return 0;
                }
                return 1;
        }
        return 1;
oom:
        parser_error(p, a, "out of memory");
        return 0;
}

static int parser_handler(void *user, const char *section, const char *name, const char *value) {
        Parser *p = user;

        if (!*section) {
                parser_error(p, NULL, "key \"%s\" outside any section", name);
                return 0;
        }
        if (p->in_store)
                return handle_store_key(p, name, value);
        if (p->in_notify)
                return handle_notify_key(p, name, value);
        if (p->account)
                return handle_account_key(p, name, value);
        return 0; /* in a rejected section: the error is already recorded */
}

/* Whole-file rules: what single keys cannot decide. */
static void validate(Parser *p, mode_t file_mode) {
        for (size_t i = 0; i < p->config->n_accounts && !p->error; i++) {
                Account *a = &p->config->accounts[i];
                const ServerUrl *urls[] = { &a->imap, &a->pop3, &a->smtp };

                p->line = a->line;
                if (!a->address) {
                        parser_error(p, a, "key \"address\" is missing");
                        break;
                }
                if (a->imap.proto && a->pop3.proto) {
                        p->line = a->pop3.line;
                        parser_error(p, a, "keys \"imap\" and \"pop3\" are both set (choose one)");
                        break;
                }
                if (!a->imap.proto && !a->pop3.proto) {
                        parser_error(p, a, "no \"imap\" or \"pop3\" server given");
                        break;
                }
                if (a->password && (file_mode & 077)) {
                        parser_error(p, a,
                                     "key \"password\": %s is readable by group or others (mode %04o); "
                                     "chmod 600 it or use password_command",
                                     p->path, (unsigned)(file_mode & 07777));
                        break;
                }
                if ((a->password != NULL) + (a->password_command != NULL) + (a->oauth2_token_command != NULL) > 1) {
                        parser_error(p, a, "keys \"password\", \"password_command\" and \"oauth2_token_command\" "
                                           "exclude each other");
                        break;
                }
                for (size_t u = 0; u < ARRAY_SIZE(urls) && a->tls_none; u++) {
                        if (!urls[u]->proto)
                                continue;
                        if (!host_is_loopback(urls[u]->host)) {
                                parser_error(p, a,
                                             "key \"tls\": \"none\" is only allowed for a loopback host, "
                                             "and %s is not one",
                                             urls[u]->host);
                                break;
                        }
                        if (urls[u]->tls == SERVER_TLS_IMPLICIT) {
                                parser_error(p, a, "key \"tls\": \"none\" contradicts %s:// (use %.4s://)",
                                             server_url_scheme(urls[u]), server_url_scheme(urls[u]));
                                break;
                        }
                }
                if (!a->username && !(a->username = strdup(a->address)))
                        parser_error(p, a, "out of memory");
                if (!a->folders && !(a->folders = parse_folders("*")))
                        parser_error(p, a, "out of memory");
        }
}

int config_load(const char *path, Config **retp, char **errp) {
        _cleanup_fclose_ FILE *f = NULL;
        struct stat st;
        int r;

        *errp = NULL;
        f = fopen(path, "re");
        if (!f || fstat(fileno(f), &st) < 0) {
                r = -errno;
                if (asprintf(errp, "%s: cannot read: %s", path, strerror(errno)) < 0)
                        *errp = NULL;
                return r;
        }
        return config_load_stream(f, path, st.st_mode, retp, errp);
}

int config_load_stream(FILE *f, const char *path, mode_t file_mode, Config **retp, char **errp) {
        _cleanup_(config_freep) Config *c = NULL;
        Parser p = { .path = path, .at_line_start = true };
        int r;

        *errp = NULL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        if (!(c->path = strdup(path)))
                return -ENOMEM;

        p.f = f;
        p.config = c;
        /* An indented line is a continuation in inih; here it is a mistake. */
        ini_allow_multiline = false;
        r = ini_parse_stream(parser_read, &p, parser_handler, &p);
        if (r != 0 && !p.error) {
                /* inih's own syntax error (no '=', unterminated section) */
                p.line = r > 0 ? (unsigned)r : p.line;
                parser_error(&p, NULL, r > 0 ? "syntax error (expected \"key = value\" or \"[section]\")"
                                             : "cannot parse");
        }
        if (!p.error) {
                if (c->n_accounts == 0) {
                        p.line = p.line ? p.line : 1;
                        parser_error(&p, NULL, "no [account NAME] section");
                } else
                        validate(&p, file_mode);
        }
        if (p.error) {
                *errp = p.error;
                return -EINVAL;
        }
        *retp = TAKE_PTR(c);
        return 0;
}

Config *config_ref(Config *c) {
        c->n_ref++;
        return c;
}

Config *config_free(Config *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        for (size_t i = 0; i < c->n_accounts; i++)
                account_deinit(&c->accounts[i]);
        free(c->accounts);
        free(c->notify_open_command);
        free(c->path);
        free(c);
        return NULL;
}

const Account *config_find_account(const Config *c, const char *name) {
        for (size_t i = 0; i < c->n_accounts; i++)
                if (strcmp(c->accounts[i].name, name) == 0)
                        return &c->accounts[i];
        return NULL;
}

char *config_default_path(void) {
        const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        char *r = NULL;

        if (x && *x == '/')
                return asprintf(&r, "%s/tegami/config.ini", x) < 0 ? NULL : r;
        if (!home || !*home)
                return NULL;
        return asprintf(&r, "%s/.config/tegami/config.ini", home) < 0 ? NULL : r;
}
