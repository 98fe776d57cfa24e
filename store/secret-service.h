/*
 * A minimal freedesktop Secret Service client (libdbus, synchronous): keeps
 * one secret per store, found by the attributes {application: tegami,
 * purpose: store-key, store: <absolute store path>}.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Positive results. */
#define SECRET_SERVICE_E_NOT_FOUND 1 /* no item for this store */

/* True when a session bus is reachable and org.freedesktop.secrets has an owner or is activatable.
 * Never starts a bus: without DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus it answers false. */
bool secret_service_available(void);

/* Finds the secret kept for store_path. Returns 0 with *secretp (sodium_malloc'd, free with
 * sodium_free) and *np; SECRET_SERVICE_E_NOT_FOUND; or a negative errno with *errp (malloc'd)
 * saying why (-ENOTCONN: no bus or provider; -EACCES: the item is locked behind a prompt). */
int secret_service_lookup(const char *store_path, uint8_t **secretp, size_t *np, char **errp);

/* Stores secret (n bytes) for store_path in the default collection, replacing an older one.
 * Returns 0 or a negative errno with *errp (malloc'd). */
int secret_service_store(const char *store_path, const uint8_t *secret, size_t n, char **errp);
