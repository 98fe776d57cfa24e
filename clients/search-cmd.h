/*
 * `tegami search QUERY… [--json] [--account A] [--limit N] [--offset N]`:
 * the Search method of tegamid; QUERY words are joined with spaces (the query
 * language is in ipc/org.tegami.Mail1.xml). Single-threaded.
 */
#pragma once

#include "clients/cli.h"

/* Runs the command; returns the exit code. */
int cmd_search(DBusConnection *conn, const CliArgs *a);
