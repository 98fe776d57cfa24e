/*
 * pop3-wire: the "wire limit" of the POP3 fetch benchmark (tests/bench/run-pop3).
 *
 * The smallest client that can download a whole POP3 maildrop: it connects
 * (implicit TLS with OpenSSL, verifying the server against --ca, or plain TCP
 * for comparison), sends USER/PASS, UIDL and LIST, then RETR for every message
 * with up to --window commands in flight, and QUIT. Replies are only scanned
 * for what ends them: the status line, and the "." line of a multi-line reply.
 * Body bytes are counted, not dot-unstuffed, not kept: nothing is stored and
 * nothing is fsynced, so no real client can beat it on the same transport; the
 * benchmark divides tegami's time by this one.
 *
 * Output, one line on stdout:
 *   transport=tls messages=N list_bytes=B body_bytes=B wire_bytes=B seconds=S mb_per_s=X
 * mb_per_s is list_bytes (the messages' RFC 822 sizes) per second, as for every
 * tool in the benchmark. Single-threaded, blocking I/O; the process owns every
 * resource until exit, and any failure ends it with status 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define READ_BYTES (256 * 1024)
#define STATUS_MAX 512 /* what is kept of a status line, for error messages */

/* One connection: the socket, the TLS session on it when not plain, and a read buffer. */
typedef struct Conn {
        int fd;
        SSL_CTX *ctx;
        SSL *ssl;
        char buf[READ_BYTES];
        size_t pos, end; /* unread bytes are buf[pos..end) */
        uint64_t n_read;
} Conn;

/*
 * Where the reply scanner is inside one reply: reading its status line, or the
 * lines of a multi-line body. mid_line: the last byte seen was not a line end,
 * so the next byte cannot start the "." terminator.
 */
typedef struct Reply {
        bool in_body;
        bool mid_line;
        char status[STATUS_MAX];
        size_t status_len;
        uint64_t body_bytes; /* bytes of body lines, terminator excluded */
        uint64_t n_lines;
} Reply;

static void die(const char *what) {
        fprintf(stderr, "pop3-wire: %s\n", what);
        exit(1);
}

static void die_ssl(const char *what) {
        unsigned long e = ERR_get_error();
        char buf[256];

        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "pop3-wire: %s: %s\n", what, e ? buf : "connection closed");
        exit(1);
}

static double now_seconds(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void conn_open(Conn *c, const char *host, int port, bool tls, const char *ca_file) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int one = 1;

        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                die("--host must be an IPv4 address");
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("pop3-wire: connect");
                exit(1);
        }
        /* Pipelined commands are small and go out one reply at a time: do not let Nagle hold them. */
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!tls)
                return;
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx)
                die_ssl("SSL_CTX_new");
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
        if (ca_file ? SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL) != 1
                    : SSL_CTX_set_default_verify_paths(c->ctx) != 1)
                die_ssl("loading the CA");
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        c->ssl = SSL_new(c->ctx);
        if (!c->ssl)
                die_ssl("SSL_new");
        /* The certificate names the loopback address: check it as a client must. */
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1)
                die_ssl("setting the expected address");
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_connect(c->ssl) != 1)
                die_ssl("TLS handshake");
}

static void conn_write(Conn *c, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t n;

                if (c->ssl) {
                        int r = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
                        if (r <= 0)
                                die_ssl("write");
                        n = r;
                } else {
                        n = write(c->fd, buf, len);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                perror("pop3-wire: write");
                                exit(1);
                        }
                }
                buf += n;
                len -= (size_t)n;
        }
}

/* Reads more (at least one byte) after the unread bytes, moved to the front; dies at end of stream. */
static void conn_fill(Conn *c) {
        size_t keep = c->end - c->pos;
        ssize_t n;

        memmove(c->buf, c->buf + c->pos, keep);
        c->pos = 0;
        c->end = keep;
        if (c->ssl) {
                int r = SSL_read(c->ssl, c->buf + keep, (int)(sizeof(c->buf) - keep));
                if (r <= 0)
                        die_ssl("read");
                n = r;
        } else {
                do
                        n = read(c->fd, c->buf + keep, sizeof(c->buf) - keep);
                while (n < 0 && errno == EINTR);
                if (n < 0) {
                        perror("pop3-wire: read");
                        exit(1);
                }
                if (n == 0)
                        die("read: connection closed");
        }
        c->end += (size_t)n;
        c->n_read += (uint64_t)n;
}

/*
 * The next piece of a line in the buffer: up to and including its LF, or all
 * that is there. A piece without LF is at least 3 bytes long, so a "." CRLF
 * terminator always comes whole and is never taken for body bytes.
 */
static const char *conn_piece(Conn *c, size_t *np, bool *has_nlp) {
        const char *p, *nl;

        for (;;) {
                p = c->buf + c->pos;
                nl = c->pos < c->end ? memchr(p, '\n', c->end - c->pos) : NULL;
                if (nl || c->end - c->pos >= 3)
                        break;
                conn_fill(c);
        }
        *np = nl ? (size_t)(nl - p) + 1 : c->end - c->pos;
        *has_nlp = nl != NULL;
        c->pos += *np;
        return p;
}

/* Appends what fits of a status line, for the error message should it be -ERR. */
static void reply_keep_status(Reply *r, const char *p, size_t n) {
        size_t room = sizeof(r->status) - 1 - r->status_len;

        if (n > room)
                n = room;
        memcpy(r->status + r->status_len, p, n);
        r->status_len += n;
        r->status[r->status_len] = '\0';
}

/*
 * Reads one whole reply: the status line, and for a multi-line reply (when
 * multi and the status is +OK) every line up to the "." line. Scans the
 * buffer in place with memchr; lines of any length pass through in pieces.
 * Dies on -ERR.
 */
static void read_reply(Conn *c, Reply *r, bool multi, const char *cmd) {
        *r = (Reply){0};
        for (;;) {
                size_t n;
                bool nl;
                const char *p = conn_piece(c, &n, &nl);

                if (!r->in_body) {
                        reply_keep_status(r, p, n);
                        if (!nl)
                                continue;
                        if (strncmp(r->status, "+OK", 3) != 0) {
                                fprintf(stderr, "pop3-wire: %s: %s", cmd, r->status);
                                exit(1);
                        }
                        if (!multi)
                                return;
                        r->in_body = true;
                        continue;
                }
                /* A body line: the terminator is "." CRLF (or a bare LF) at the start of a line. */
                if (!r->mid_line && nl && ((n == 3 && p[0] == '.' && p[1] == '\r') || (n == 2 && p[0] == '.')))
                        return;
                r->body_bytes += n;
                r->mid_line = !nl;
                r->n_lines += nl;
        }
}

/* Sends one command line and reads its reply. */
static void command(Conn *c, Reply *r, bool multi, const char *line, const char *name) {
        conn_write(c, line, strlen(line));
        read_reply(c, r, multi, name);
}

/* Parses the "N SIZE" lines of the LIST reply held in buf; returns the sum and sets *n_msgsp. */
static uint64_t list_sum(const char *buf, size_t len, uint64_t *n_msgsp) {
        uint64_t sum = 0, n = 0;
        const char *p = buf, *end = buf + len;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                unsigned long num;
                unsigned long long size;

                if (!nl)
                        break;
                if (!(p[0] == '.' && (p[1] == '\r' || p[1] == '\n')) && sscanf(p, "%lu %llu", &num, &size) == 2) {
                        sum += size;
                        n++;
                }
                p = nl + 1;
        }
        *n_msgsp = n;
        return sum;
}

/*
 * LIST, read line by line into a growing buffer (its lines are needed, unlike
 * the bodies'): returns the sum of the sizes, the message count in *n_msgsp.
 */
static uint64_t command_list(Conn *c, uint64_t *n_msgsp) {
        char *text = NULL;
        size_t len = 0, cap = 0;
        bool in_body = false, at_start = true;
        uint64_t sum;

        conn_write(c, "LIST\r\n", 6);
        for (;;) {
                size_t n;
                bool nl;
                const char *p = conn_piece(c, &n, &nl);

                if (!in_body) {
                        if (at_start && strncmp(p, "+OK", n < 3 ? n : 3) != 0)
                                die("LIST: -ERR");
                        at_start = nl;
                        in_body = nl;
                        continue;
                }
                if (len + n + 1 > cap) {
                        cap = (len + n + 1) * 2;
                        text = realloc(text, cap);
                        if (!text)
                                die("out of memory");
                }
                memcpy(text + len, p, n);
                len += n;
                if (nl && at_start && ((n == 3 && p[0] == '.' && p[1] == '\r') || (n == 2 && p[0] == '.')))
                        break;
                at_start = nl;
        }
        sum = list_sum(text, len, n_msgsp);
        free(text);
        return sum;
}

static void usage(void) {
        fprintf(stderr, "usage: pop3-wire [--tls|--plain] [--ca FILE] --host ADDR --port N --user U --password P "
                        "[--window N]\n");
        exit(2);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"tls", no_argument, NULL, 't'},        {"plain", no_argument, NULL, 'p'},
                {"ca", required_argument, NULL, 'c'},   {"host", required_argument, NULL, 'h'},
                {"port", required_argument, NULL, 'P'}, {"user", required_argument, NULL, 'u'},
                {"password", required_argument, NULL, 'w'}, {"window", required_argument, NULL, 'n'},
                {NULL, 0, NULL, 0},
        };
        const char *ca = NULL, *host = NULL, *user = NULL, *password = NULL;
        bool tls = true;
        int port = 0, opt;
        long window = 32;
        static Conn conn;
        Conn *c = &conn;
        Reply r;
        char line[1024];
        uint64_t n_msgs, n_uidl, list_bytes, body_bytes = 0, sent = 0, done = 0;
        double t0, seconds;

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 't': tls = true; break;
                case 'p': tls = false; break;
                case 'c': ca = optarg; break;
                case 'h': host = optarg; break;
                case 'P': port = atoi(optarg); break;
                case 'u': user = optarg; break;
                case 'w': password = optarg; break;
                case 'n': window = strtol(optarg, NULL, 10); break;
                default: usage();
                }
        }
        if (!host || port <= 0 || port > 65535 || !user || !password || window < 1 || optind != argc)
                usage();
        if (strlen(user) > 200 || strlen(password) > 200)
                die("user or password too long");

        t0 = now_seconds();
        conn_open(c, host, port, tls, ca);
        read_reply(c, &r, false, "greeting");
        snprintf(line, sizeof(line), "USER %s\r\n", user);
        command(c, &r, false, line, "USER");
        snprintf(line, sizeof(line), "PASS %s\r\n", password);
        command(c, &r, false, line, "PASS");
        command(c, &r, true, "UIDL\r\n", "UIDL");
        n_uidl = r.n_lines;
        list_bytes = command_list(c, &n_msgs);
        if (n_uidl != n_msgs)
                die("UIDL and LIST disagree on the message count");

        /* RETR 1..N with at most `window` replies outstanding: the next goes out as each reply ends. */
        while (done < n_msgs) {
                while (sent < n_msgs && sent - done < (uint64_t)window) {
                        int len = snprintf(line, sizeof(line), "RETR %llu\r\n", (unsigned long long)++sent);
                        conn_write(c, line, (size_t)len);
                }
                read_reply(c, &r, true, "RETR");
                body_bytes += r.body_bytes;
                done++;
        }
        command(c, &r, false, "QUIT\r\n", "QUIT");
        seconds = now_seconds() - t0;

        printf("transport=%s messages=%llu list_bytes=%llu body_bytes=%llu wire_bytes=%llu seconds=%.3f "
               "mb_per_s=%.1f\n",
               tls ? "tls" : "plain", (unsigned long long)n_msgs, (unsigned long long)list_bytes,
               (unsigned long long)body_bytes, (unsigned long long)c->n_read, seconds,
               (double)list_bytes / 1e6 / seconds);
        if (c->ssl) {
                SSL_shutdown(c->ssl);
                SSL_free(c->ssl);
                SSL_CTX_free(c->ctx);
        }
        close(c->fd);
        return 0;
}
