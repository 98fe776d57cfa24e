/*
 * A minimal freedesktop Secret Service client (libdbus, blocking calls on a
 * private connection per call, so any thread may use it): items are found and
 * stored by their attributes. The store keeps its key under {application:
 * tegami, purpose: store-key, store: PATH}; account passwords are found the
 * way `secret-tool lookup service tegami account NAME` finds them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Positive results. */
#define SECRET_SERVICE_E_NOT_FOUND 1 /* no item has these attributes */

/* Default per-call timeout: an activation may have to start the provider. */
#define SECRET_SERVICE_TIMEOUT_MS 25000

typedef struct SecretAttr {
        const char *key, *value;
} SecretAttr;

/* Sets the per-call timeout in ms (<= 0: the default). Process-wide; set it at start-up. */
void secret_service_set_timeout(int timeout_ms);

/* True when a session bus is reachable and org.freedesktop.secrets has an owner (a running provider).
 * Never starts a bus: without DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus it answers false. */
bool secret_service_available(void);

/* Finds the first item with every attribute in attrs. Returns 0 with *secretp (sodium_malloc'd, free
 * with sodium_free) and *np; SECRET_SERVICE_E_NOT_FOUND; or a negative errno with *errp (malloc'd)
 * saying why (-ENOTCONN: no bus or provider; -EACCES: the item is locked behind a prompt). */
int secret_service_lookup(const SecretAttr *attrs, size_t n_attrs, uint8_t **secretp, size_t *np, char **errp);

/* Stores secret (n bytes) under attrs with label in the default collection, replacing an older item.
 * Returns 0 or a negative errno with *errp (malloc'd). */
int secret_service_store(const SecretAttr *attrs, size_t n_attrs, const char *label, const uint8_t *secret,
                         size_t n, char **errp);
