/*
 * The daemon's lifetime on the libuv loop. The Daemon is embedded in main()'s
 * frame; its signal handles are closed by daemon_stop() and the loop then runs
 * out of work, which is how tegamid exits cleanly.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "util/log.h"

static void log_accounts(const Config *c) {
        for (size_t i = 0; i < c->n_accounts; i++) {
                const Account *a = &c->accounts[i];
                const ServerUrl *in = a->imap.proto ? &a->imap : &a->pop3;

                log_acct_info(a->name, "%s://%s:%u%s%s", server_url_scheme(in), in->host, in->port,
                              a->smtp.proto ? ", sending through " : "", a->smtp.proto ? a->smtp.host : "");
        }
}

int daemon_init(Daemon *d, uv_loop_t *loop, Config *config, const char *config_path, const char *data_dir) {
        *d = (Daemon){ .loop = loop, .config = config };
        d->config_path = strdup(config_path);
        d->data_dir = strdup(data_dir);
        if (!d->config_path || !d->data_dir)
                return -ENOMEM;
        return 0;
}

static void on_signal_cb(uv_signal_t *h, int signum) {
        Daemon *d = h->data;

        switch (signum) {
        case SIGHUP:
                log_info("SIGHUP: reloading %s", d->config_path);
                daemon_reload(d, NULL);
                break;
        default:
                log_info("%s: shutting down", strsignal(signum));
                daemon_stop(d, 0);
                break;
        }
}

int daemon_start(Daemon *d) {
        struct {
                uv_signal_t *h;
                int sig;
        } sigs[] = { { &d->sig_term, SIGTERM }, { &d->sig_int, SIGINT }, { &d->sig_hup, SIGHUP } };
        int r;

        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
                r = uv_signal_init(d->loop, sigs[i].h);
                if (r < 0)
                        return r;
                sigs[i].h->data = d;
                r = uv_signal_start(sigs[i].h, on_signal_cb, sigs[i].sig);
                if (r < 0)
                        return r;
        }
        log_info("tegamid %s running: %zu account(s) from %s, data in %s", TEGAMI_VERSION, d->config->n_accounts,
                 d->config_path, d->data_dir);
        log_accounts(d->config);
        return 0;
}

int daemon_reload(Daemon *d, char **errp) {
        _cleanup_free_ char *err = NULL;
        Config *c = NULL;
        int r;

        r = config_load(d->config_path, &c, &err);
        if (r < 0) {
                if (!err && asprintf(&err, "%s: %s", d->config_path, strerror(-r)) < 0)
                        err = NULL;
                log_error("reload rejected, keeping the running configuration: %s", err ? err : strerror(-r));
                if (errp)
                        *errp = TAKE_PTR(err);
                return r;
        }
        config_free(d->config);
        d->config = c;
        d->n_reloads++;
        log_info("configuration reloaded: %zu account(s)", c->n_accounts);
        log_accounts(c);
        if (d->listener && d->listener->config_changed)
                d->listener->config_changed(d->listener_userdata);
        return 0;
}

/* Safe twice and on a handle never initialised (its loop is still NULL). */
static void close_handle(uv_signal_t *h) {
        if (h->loop && !uv_is_closing((uv_handle_t *)h))
                uv_close((uv_handle_t *)h, NULL);
}

void daemon_stop(Daemon *d, int exit_code) {
        if (d->stopping)
                return;
        d->stopping = true;
        d->exit_code = exit_code;
        if (d->listener && d->listener->stopping)
                d->listener->stopping(d->listener_userdata);
        close_handle(&d->sig_term);
        close_handle(&d->sig_int);
        close_handle(&d->sig_hup);
}

void daemon_deinit(Daemon *d) {
        config_free(d->config);
        free(d->config_path);
        free(d->data_dir);
        *d = (Daemon){ 0 };
}
