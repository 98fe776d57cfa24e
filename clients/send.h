/*
 * Handing a message to tegamid's outbox over D-Bus, shared by `tegami send`
 * and tegami-sendmail: the message goes through a memfd (no size limit of the
 * bus, nothing on disk), the call returns once the daemon stored it durably.
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct SendOptions {
        const char *account;      /* NULL or "": chosen by the daemon from From */
        const char *from;         /* envelope sender, NULL: From */
        const char *from_name;    /* display name for a missing From, NULL: none */
        const char *const *rcpts; /* n_rcpts envelope recipients */
        size_t n_rcpts;
        bool extract_rcpts;       /* also To/Cc/Bcc (sendmail -t) */
} SendOptions;

/* What went wrong, for the callers' exit codes. */
typedef enum SendError {
        SEND_OK,
        SEND_E_UNAVAILABLE, /* no bus, tegamid could not be started */
        SEND_E_REFUSED,     /* the message or its envelope cannot be sent as it is */
        SEND_E_NO_ACCOUNT,  /* no such account, or none that can send */
        SEND_E_TEMPORARY,   /* locked store, busy daemon: try later */
        SEND_E_FAILED,      /* anything else */
} SendError;

/*
 * Sends data (n bytes) to the daemon's Send method on conn. On SEND_OK *idp
 * is the outbox id; otherwise *errp (malloc'd) says why, as the daemon put it.
 */
SendError send_message(DBusConnection *conn, const char *data, size_t n, const SendOptions *o, uint64_t *idp,
                       char **errp);
