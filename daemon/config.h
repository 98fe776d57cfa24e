/*
 * The configuration file: `[store]` and `[account NAME]` sections read with
 * libinih and validated completely before anything uses them. A Config is
 * immutable once loaded; a reload builds a new one and swaps it in whole.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum ServerProto {
        SERVER_NONE,
        SERVER_IMAP,
        SERVER_POP3,
        SERVER_SMTP,
} ServerProto;

/* How a connection is secured: implicit TLS (imaps, pop3s, smtps) or a
 * required STARTTLS/STLS upgrade (imap, pop3, smtp). `tls = none` on a loopback
 * host turns the latter into plain TCP. */
typedef enum ServerTls {
        SERVER_TLS_IMPLICIT,
        SERVER_TLS_STARTTLS,
} ServerTls;

typedef struct ServerUrl {
        ServerProto proto; /* SERVER_NONE when the key is absent */
        ServerTls tls;
        char *host;        /* without brackets for IPv6 literals */
        uint16_t port;
        unsigned line;     /* config line, for later error messages */
} ServerUrl;

typedef enum StoreKeyKind {
        STORE_KEY_AUTO,
        STORE_KEY_FILE,
        STORE_KEY_SECRET_SERVICE,
        STORE_KEY_PASSPHRASE,
} StoreKeyKind;

typedef struct Account {
        char *name;
        unsigned line; /* of the section header */

        char *address;
        char *username;             /* defaults to address */
        char *password;             /* secret memory (util/secret.h) */
        char *password_command;
        char *oauth2_token_command;

        ServerUrl imap, pop3, smtp;
        char *ca_file;
        char *tls_fingerprint;      /* "sha256:" hex, normalised to 64 lowercase hex digits */
        bool tls_none;              /* `tls = none` (loopback only) */

        char **folders;             /* NULL-terminated patterns; "!" prefix excludes */
        unsigned poll_interval;     /* seconds */
        unsigned max_age_days;      /* 0 = no limit */
        uint64_t max_message_size;  /* bytes; 0 = no limit */
        char *sent_folder;          /* NULL = SPECIAL-USE \Sent; "none" = server files it */
        unsigned outbox_expire_days;
        unsigned quota_warn_percent;

        bool pop3_leave_on_server;
        unsigned pop3_delete_after_days;      /* 0 = never */
        bool pop3_delete_when_deleted_locally;
        unsigned pop3_keep_server_under_messages; /* 0 = no rule */
        unsigned pop3_keep_server_under_mb;
        unsigned pop3_delete_bigger_than_mb;
        unsigned pop3_skip_bigger_than_mb;
        unsigned pop3_server_warn_mb;

        bool notify_preview;                  /* notifications may show sender and subject */
} Account;

typedef struct Config {
        unsigned n_ref;     /* config_ref() / config_free() */
        char *path;
        StoreKeyKind store_key;
        char *notify_open_command;  /* [notify] open_command: run by a notification's default action */
        Account *accounts;
        size_t n_accounts;
} Config;

/*
 * Loads and validates path. On success returns 0 and *retp owns the Config.
 * On a configuration error returns -EINVAL and *errp (malloc'd) says
 * "FILE:LINE: [account NAME:] key KEY: reason"; on an I/O error returns
 * -errno with *errp naming the file.
 */
int config_load(const char *path, Config **retp, char **errp);

/*
 * config_load() on an open stream: path names it in messages and file_mode is
 * its permission bits (a plaintext password needs 0600). The stream is read to
 * the end and left open. Lets the fuzz target feed bytes without a file.
 */
int config_load_stream(FILE *f, const char *path, mode_t file_mode, Config **retp, char **errp);

/* Drops a reference to c (NULL allowed) and frees it with the last one, wiping
 * the passwords; returns NULL. config_load() hands out the first reference. */
Config *config_free(Config *c);

/* Takes another reference: a module that keeps Account pointers across a
 * reload holds the Config they point into. */
Config *config_ref(Config *c);

/* The account called name, or NULL. */
const Account *config_find_account(const Config *c, const char *name);

/* Default path: $XDG_CONFIG_HOME/tegami/config.ini (or ~/.config/...); malloc'd. */
char *config_default_path(void);

/* "imaps", "pop3", ... for messages. */
const char *server_url_scheme(const ServerUrl *u);

/* True for localhost, 127.0.0.0/8 and ::1. */
bool host_is_loopback(const char *host);

static inline void config_freep(Config **c) {
        config_free(*c);
}
