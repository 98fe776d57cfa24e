/*
 * The daemon object: the libuv loop, signal handling (SIGTERM/SIGINT stop,
 * SIGHUP reloads the config) and the accounts' lifetime. Main thread only.
 */
#pragma once

#include <stdbool.h>
#include <uv.h>

#include "daemon/config.h"

/* Hears about the daemon's changes (ipc/ registers one through the service
 * API). Called on the loop thread; either callback may be NULL. */
typedef struct DaemonListener {
        void (*config_changed)(void *userdata); /* after a good reload */
        void (*stopping)(void *userdata);       /* from daemon_stop(): close your handles */
} DaemonListener;

typedef struct Daemon {
        uv_loop_t *loop;
        uv_signal_t sig_term, sig_int, sig_hup;
        Config *config;     /* owned; replaced whole on a good reload */
        char *config_path;
        char *data_dir;
        unsigned n_reloads; /* successful reloads, for tests and status */
        int exit_code;
        bool stopping;
        const DaemonListener *listener; /* borrowed; see service_set_listener() */
        void *listener_userdata;
} Daemon;

/* Sets up d on loop with an already-loaded config (ownership passes to d). */
int daemon_init(Daemon *d, uv_loop_t *loop, Config *config, const char *config_path, const char *data_dir);

/* Starts the signal handlers and the accounts. */
int daemon_start(Daemon *d);

/*
 * Reloads the config file: a bad file is rejected, logged and the running
 * config kept; then, when errp is not NULL, *errp (malloc'd) says why.
 */
int daemon_reload(Daemon *d, char **errp);

/* Begins an orderly shutdown: handles close (the listener's too), the loop
 * then runs dry. The first call's exit_code wins. */
void daemon_stop(Daemon *d, int exit_code);

/* Frees what daemon_init allocated; call after the loop has run dry. */
void daemon_deinit(Daemon *d);
