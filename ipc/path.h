/*
 * Object paths of tegami's D-Bus objects. Account names become one path
 * element: bytes outside [A-Za-z0-9] are written "_" plus two lowercase hex
 * digits ("work.old" → "work_2eold"), so every name maps to a valid, unique
 * element and back.
 */
#pragma once

#define IPC_PATH_MANAGER "/org/tegami/Mail1"
#define IPC_PATH_ACCOUNTS "/org/tegami/Mail1/account"

/* Escapes name into one path element (malloc'd); NULL on OOM or empty name. */
char *ipc_path_escape(const char *name);

/* The object path of account name (malloc'd); NULL on OOM or empty name. */
char *ipc_path_from_account(const char *name);

/*
 * Parses "/org/tegami/Mail1/account/ELEMENT". On success returns 0 and *namep
 * (malloc'd) holds the unescaped name; -EINVAL for any other path or a badly
 * escaped element, -ENOMEM.
 */
int ipc_path_to_account(const char *path, char **namep);
