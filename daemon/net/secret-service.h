/*
 * A blocking lookup in the freedesktop Secret Service (gnome-keyring,
 * KeePassXC, ...) over libdbus, the way `secret-tool lookup service S account A`
 * does it. Blocking: call it from a worker thread, never from the loop.
 */
#pragma once

#include <stddef.h>

/*
 * Finds the item with attributes service=service, account=account on the
 * session bus and returns its value in secret memory (*secretp, free with
 * secret_free). Returns 0, -ENOENT when no item matches, -EACCES when it is
 * locked, or -EIO (no bus, no Secret Service, bad reply); err explains.
 * Thread-safe: each call uses its own private bus connection.
 */
int secret_service_lookup(const char *service, const char *account, int timeout_ms, char **secretp, char *err,
                          size_t errsize);
