/*
 * Config loader tests: every rejected shape gives an error naming file:line,
 * the account and the key; accepted shapes fill the fields and defaults.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"

static char tmpdir[] = "/tmp/tegami-test-config-XXXXXX";
static int failures;

static char *write_config(const char *text, mode_t mode) {
        static unsigned n;
        char *path;
        FILE *f;

        assert(asprintf(&path, "%s/c%u.ini", tmpdir, n++) > 0);
        f = fopen(path, "w");
        assert(f);
        fputs(text, f);
        fclose(f);
        chmod(path, mode);
        return path;
}

/* Expects text to be rejected with an error containing ":LINE: " and every needle. */
static void expect_error(const char *what, const char *text, mode_t mode, unsigned line, const char *needles[]) {
        char *path = write_config(text, mode), *err = NULL, want[64];
        Config *c = NULL;
        int r = config_load(path, &c, &err);

        snprintf(want, sizeof want, "%s:%u: ", path, line);
        if (r >= 0 || !err || !strstr(err, want)) {
                fprintf(stderr, "FAIL %s: r=%d err=%s (wanted prefix %s)\n", what, r, err ? err : "(none)", want);
                failures++;
        } else
                for (const char **n = needles; *n; n++)
                        if (!strstr(err, *n)) {
                                fprintf(stderr, "FAIL %s: \"%s\" lacks \"%s\"\n", what, err, *n);
                                failures++;
                        }
        if (r >= 0)
                config_free(c);
        printf("%s %s: %s\n", failures ? "?" : "ok", what, err ? err : "");
        free(err);
        unlink(path);
        free(path);
}

#define EXPECT_ERROR(what, text, mode, line, ...) \
        expect_error(what, text, mode, line, (const char *[]){ __VA_ARGS__, NULL })

#define ACC "[account work]\naddress = a@example.org\n"

static void test_errors(void) {
        EXPECT_ERROR("unknown key", ACC "imap = imaps://h\nbogus = 1\n", 0600, 4, "account work", "\"bogus\"");
        EXPECT_ERROR("missing address", "[store]\nkey = file\n\n[account home]\nimap = imaps://h\n", 0600, 4,
                     "account home", "\"address\"");
        EXPECT_ERROR("no server", ACC "username = a\n", 0600, 1, "account work", "\"imap\"", "\"pop3\"");
        EXPECT_ERROR("imap and pop3", ACC "imap = imaps://h\npop3 = pop3s://h\n", 0600, 4, "account work",
                     "\"imap\"", "\"pop3\"");
        EXPECT_ERROR("bad url scheme", ACC "imap = http://h\n", 0600, 3, "account work", "\"imap\"", "bad URL");
        EXPECT_ERROR("wrong scheme for key", ACC "smtp = imaps://h\nimap = imaps://h\n", 0600, 3, "account work",
                     "\"smtp\"", "smtps://");
        EXPECT_ERROR("bad port", ACC "imap = imaps://h:99999\n", 0600, 3, "account work", "\"imap\"", "port");
        EXPECT_ERROR("url with path", ACC "imap = imaps://h/INBOX\n", 0600, 3, "account work", "\"imap\"");
        EXPECT_ERROR("empty host", ACC "imap = imaps://:993\n", 0600, 3, "account work", "\"imap\"", "host");
        EXPECT_ERROR("bad number", ACC "imap = imaps://h\npoll_interval = 5m\n", 0600, 4, "account work",
                     "\"poll_interval\"", "bad number");
        EXPECT_ERROR("number too small", ACC "imap = imaps://h\npoll_interval = 1\n", 0600, 4, "account work",
                     "\"poll_interval\"");
        EXPECT_ERROR("bad bool", ACC "pop3 = pop3s://h\npop3_leave_on_server = maybe\n", 0600, 4, "account work",
                     "\"pop3_leave_on_server\"");
        EXPECT_ERROR("tls none remote", ACC "imap = imap://mail.example.org\ntls = none\n", 0600, 1,
                     "account work", "\"tls\"", "loopback", "mail.example.org");
        EXPECT_ERROR("tls none implicit", ACC "imap = imaps://127.0.0.1\ntls = none\n", 0600, 1, "account work",
                     "\"tls\"", "imaps://");
        EXPECT_ERROR("password world readable", ACC "imap = imaps://h\npassword = hunter2\n", 0644, 1,
                     "account work", "\"password\"", "0644");
        EXPECT_ERROR("duplicate key", ACC "imap = imaps://h\naddress = b@example.org\n", 0600, 4, "account work",
                     "\"address\"", "twice");
        EXPECT_ERROR("duplicate account", ACC "imap = imaps://h\n[account work]\n", 0600, 4, "\"work\"",
                     "duplicate");
        EXPECT_ERROR("unknown section", "[acount work]\naddress = x\n", 0600, 1, "[acount work]");
        EXPECT_ERROR("bad account name", "[account w/k]\n", 0600, 1, "w/k");
        EXPECT_ERROR("bad store key", "[store]\nkey = rot13\n" ACC "imap = imaps://h\n", 0600, 2, "[store]",
                     "rot13");
        EXPECT_ERROR("syntax", ACC "imaps.example.org\n", 0600, 3, "syntax");
        EXPECT_ERROR("no accounts", "[store]\nkey = file\n", 0600, 2, "no [account");
        EXPECT_ERROR("bad fingerprint", ACC "imap = imaps://h\ntls_fingerprint = abcd\n", 0600, 4,
                     "\"tls_fingerprint\"");
        EXPECT_ERROR("two secrets", ACC "imap = imaps://h\npassword = x\npassword_command = y\n", 0600, 1,
                     "\"password\"", "\"password_command\"");
        EXPECT_ERROR("indented continuation", ACC "imap = imaps://h\n  continued\n", 0600, 4, "syntax");
        EXPECT_ERROR("unknown notify key", "[notify]\npreview = no\n" ACC "imap = imaps://h\n", 0600, 2,
                     "[notify]", "\"preview\"");
        EXPECT_ERROR("duplicate notify", "[notify]\n[notify]\n" ACC "imap = imaps://h\n", 0600, 2, "[notify]",
                     "line 1");
        EXPECT_ERROR("bad notify_preview", ACC "imap = imaps://h\nnotify_preview = maybe\n", 0600, 4,
                     "\"notify_preview\"");
}

static void test_ok(void) {
        char *path = write_config("; comment\n[store]\nkey = passphrase\n\n"
                                  "[account work]\naddress = alice@example.org\npassword = s3cret ; note\n"
                                  "imap = imap://[::1]:1143\ntls = none\nsmtp = smtp://localhost:2525\n"
                                  "folders = * !Junk\n"
                                  "tls_fingerprint = sha256:" "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
                                  "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\n"
                                  "[account home]\naddress = bob@example.net\npop3 = pop3s://pop.example.net\n"
                                  "pop3_delete_after_days = 3\nmax_message_size = 25\nnotify_preview = no\n"
                                  "[notify]\nopen_command = xdg-open mailto:\n",
                                  0600);
        char *err = NULL;
        Config *c = NULL;
        const Account *w, *h;

        if (config_load(path, &c, &err) != 0) {
                fprintf(stderr, "FAIL accepted config: %s\n", err);
                exit(1);
        }
        assert(c->store_key == STORE_KEY_PASSPHRASE);
        assert(c->n_accounts == 2);
        w = config_find_account(c, "work");
        h = config_find_account(c, "home");
        assert(w && h && !config_find_account(c, "nope"));
        assert(strcmp(w->password, "s3cret") == 0);
        assert(strcmp(w->username, "alice@example.org") == 0);
        assert(w->imap.proto == SERVER_IMAP && w->imap.tls == SERVER_TLS_STARTTLS);
        assert(strcmp(w->imap.host, "::1") == 0 && w->imap.port == 1143);
        assert(w->tls_none);
        assert(w->smtp.tls == SERVER_TLS_STARTTLS && w->smtp.port == 2525);
        assert(strcmp(w->folders[0], "*") == 0 && strcmp(w->folders[1], "!Junk") == 0 && !w->folders[2]);
        assert(strncmp(w->tls_fingerprint, "abcdef0123456789", 16) == 0 && strlen(w->tls_fingerprint) == 64);
        assert(h->pop3.port == 995 && h->pop3_delete_after_days == 3 && h->pop3_leave_on_server);
        assert(h->max_message_size == 25u * 1024 * 1024);
        assert(!h->notify_preview && w->notify_preview);
        assert(strcmp(c->notify_open_command, "xdg-open mailto:") == 0);
        assert(h->poll_interval == 300 && strcmp(h->folders[0], "*") == 0);
        assert(strcmp(server_url_scheme(&h->pop3), "pop3s") == 0);
        config_free(c);
        unlink(path);
        free(path);

        assert(host_is_loopback("127.0.0.2") && host_is_loopback("::1") && host_is_loopback("localhost"));
        assert(!host_is_loopback("128.0.0.1") && !host_is_loopback("example.org"));
        printf("ok accepted config\n");
}

int main(void) {
        assert(sodium_init() >= 0);
        assert(mkdtemp(tmpdir));
        test_errors();
        test_ok();
        rmdir(tmpdir);
        if (failures)
                fprintf(stderr, "%d failure(s)\n", failures);
        return failures ? 1 : 0;
}
