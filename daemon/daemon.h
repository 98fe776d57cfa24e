/*
 * The daemon object: the libuv loop, signal handling (SIGTERM/SIGINT stop,
 * SIGHUP reloads the config) and the accounts' lifetime. Main thread only.
 */
#pragma once

#include <stdbool.h>
#include <uv.h>

#include "daemon/config.h"

typedef struct Daemon {
        uv_loop_t *loop;
        uv_signal_t sig_term, sig_int, sig_hup;
        Config *config;     /* owned; replaced whole on a good reload */
        char *config_path;
        char *data_dir;
        unsigned n_reloads; /* successful reloads, for tests and status */
        int exit_code;
} Daemon;

/* Sets up d on loop with an already-loaded config (ownership passes to d). */
int daemon_init(Daemon *d, uv_loop_t *loop, Config *config, const char *config_path, const char *data_dir);

/* Starts the signal handlers and the accounts. */
int daemon_start(Daemon *d);

/* Reloads the config file: a bad file is rejected and the running config kept. */
int daemon_reload(Daemon *d);

/* Begins an orderly shutdown: handles close, the loop then runs dry. */
void daemon_stop(Daemon *d, int exit_code);

/* Frees what daemon_init allocated; call after the loop has run dry. */
void daemon_deinit(Daemon *d);
