/*
 * imap-wire: the "wire limit" of the IMAP sync benchmark (tests/bench/run-imap).
 *
 * The smallest client that can download a whole account: it connects (implicit
 * TLS with OpenSSL, or plain TCP for comparison), logs in, then sends one
 * `SELECT` and one `UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE
 * BODY.PEEK[])` per folder all at once, without waiting for any reply, and
 * reads everything as fast as the server sends it, discarding it. It parses
 * only what it must to know where the stream ends: lines, literal lengths
 * ({N}), untagged FETCH/EXISTS counts and the tagged completions. Nothing is
 * stored, nothing is fsynced, so a real sync engine cannot beat it on the
 * same transport; the benchmark divides tegami's time by this one.
 *
 * Output, one line on stdout:
 *   transport=tls tls=TLSv1.3/CIPHER messages=N exists=N literal_bytes=B wire_bytes=B seconds=S mb_per_s=X
 * Single-threaded, blocking I/O; the process owns every resource until exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
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

#define LINE_MAX_BYTES (64 * 1024)
#define READ_BYTES     (256 * 1024)

/* One connection: the socket, and the TLS session on it when not plain. */
typedef struct Conn {
        int fd;
        SSL_CTX *ctx;
        SSL *ssl;
        uint64_t n_read;
} Conn;

/*
 * The response scanner: a partial line, or the bytes of a literal still to
 * skip. After a literal the next line continues the same response, so it is
 * never taken for a tagged completion however it starts.
 */
typedef struct Scan {
        char line[LINE_MAX_BYTES];
        size_t len;
        uint64_t literal_left;
        bool continuation;
        uint64_t n_fetch, n_exists, literal_bytes;
        /* Set by scan_line for the caller: the tag of a completion, and whether it was OK. */
        char done_tag[32];
        bool done_ok;
} Scan;

static void die(const char *what) {
        fprintf(stderr, "imap-wire: %s\n", what);
        exit(1);
}

static void die_ssl(const char *what) {
        unsigned long e = ERR_get_error();
        char buf[256];

        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "imap-wire: %s: %s\n", what, e ? buf : "connection closed");
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
                perror("imap-wire: connect");
                exit(1);
        }
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
                                perror("imap-wire: write");
                                exit(1);
                        }
                }
                buf += n;
                len -= (size_t)n;
        }
}

/* Reads what is there (at least one byte); dies at end of stream. */
static size_t conn_read(Conn *c, char *buf, size_t size) {
        ssize_t n;

        if (c->ssl) {
                int r = SSL_read(c->ssl, buf, (int)size);
                if (r <= 0)
                        die_ssl("read");
                n = r;
        } else {
                do
                        n = read(c->fd, buf, size);
                while (n < 0 && errno == EINTR);
                if (n < 0) {
                        perror("imap-wire: read");
                        exit(1);
                }
                if (n == 0)
                        die("read: connection closed by the server");
        }
        c->n_read += (uint64_t)n;
        return (size_t)n;
}

/* Reads until the server closes (after LOGOUT), ignoring what comes and how it ends. */
static void conn_drain(Conn *c, char *buf) {
        for (;;) {
                int r = c->ssl ? SSL_read(c->ssl, buf, READ_BYTES) : (int)read(c->fd, buf, READ_BYTES);
                if (r <= 0)
                        break;
        }
        ERR_clear_error();
}

static void conn_close(Conn *c) {
        if (c->ssl) {
                SSL_shutdown(c->ssl);
                SSL_free(c->ssl);
        }
        SSL_CTX_free(c->ctx);
        if (c->fd >= 0)
                close(c->fd);
}

/* One complete line (CRLF stripped): counts it, and notes a literal or a completion. */
static void scan_line(Scan *s, char *line, size_t len) {
        bool continuation = s->continuation;

        line[len] = '\0';
        s->continuation = false;
        if (len > 2 && line[len - 1] == '}') {
                char *open = strrchr(line, '{');
                char *end;
                unsigned long long n;

                if (!open)
                        die("unbalanced literal length");
                n = strtoull(open + 1, &end, 10);
                if (end == open + 1 || (*end != '}' && *end != '+'))
                        die("bad literal length");
                s->literal_left = n;
                s->literal_bytes += n;
                s->continuation = true;
        }
        if (continuation)
                return;
        if (strncmp(line, "* ", 2) == 0) {
                char *sp = strchr(line + 2, ' ');

                if (sp && strncmp(sp, " FETCH ", 7) == 0)
                        s->n_fetch++;
                else if (sp && strcmp(sp, " EXISTS") == 0)
                        s->n_exists += strtoull(line + 2, NULL, 10);
                return;
        }
        if (line[0] == '+')
                return;
        /* A tagged completion: "TAG OK|NO|BAD text". */
        {
                char *sp = strchr(line, ' ');
                size_t tag_len = sp ? (size_t)(sp - line) : 0;

                if (!sp || tag_len >= sizeof(s->done_tag))
                        return;
                memcpy(s->done_tag, line, tag_len);
                s->done_tag[tag_len] = '\0';
                s->done_ok = strncmp(sp, " OK", 3) == 0;
                if (!s->done_ok)
                        fprintf(stderr, "imap-wire: server: %s\n", line);
        }
}

/* Feeds received bytes; returns true once the completion of `want_tag` went by. */
static bool scan_feed(Scan *s, const char *p, size_t n, const char *want_tag) {
        bool done = false;

        while (n > 0) {
                if (s->literal_left > 0) {
                        size_t skip = s->literal_left < n ? (size_t)s->literal_left : n;
                        p += skip;
                        n -= skip;
                        s->literal_left -= skip;
                        continue;
                }
                const char *nl = memchr(p, '\n', n);
                size_t take = nl ? (size_t)(nl - p) + 1 : n;

                if (s->len + take >= sizeof(s->line))
                        die("response line too long");
                memcpy(s->line + s->len, p, take);
                s->len += take;
                p += take;
                n -= take;
                if (!nl)
                        break;
                size_t len = s->len - 1;
                if (len > 0 && s->line[len - 1] == '\r')
                        len--;
                s->done_tag[0] = '\0';
                scan_line(s, s->line, len);
                s->len = 0;
                if (s->done_tag[0] && strcmp(s->done_tag, want_tag) == 0) {
                        if (!s->done_ok)
                                die("command failed");
                        done = true;
                }
        }
        return done;
}

/* Reads and scans until the completion of `tag` (or, for NULL, the greeting line). */
static void wait_for(Conn *c, Scan *s, char *buf, const char *tag) {
        for (bool first = true;; first = false) {
                size_t n = conn_read(c, buf, READ_BYTES);

                if (!tag) {
                        /* The greeting is one short line; nothing is pipelined before it. */
                        if (first && (n < 4 || strncmp(buf, "* OK", 4) != 0))
                                die("the server did not greet with * OK");
                        if (memchr(buf, '\n', n))
                                return;
                        continue;
                }
                if (scan_feed(s, buf, n, tag))
                        return;
        }
}

/* Appends an IMAP quoted string; the names and credentials here never hold CR/LF. */
static size_t put_quoted(char *out, size_t size, const char *text) {
        size_t o = 0;

        if (o < size)
                out[o++] = '"';
        for (const char *t = text; *t && o + 2 < size; t++) {
                if (*t == '"' || *t == '\\')
                        out[o++] = '\\';
                out[o++] = *t;
        }
        if (o < size)
                out[o++] = '"';
        return o;
}

static void usage(void) {
        fputs("usage: imap-wire [--plain | --tls [--ca FILE]] --host IP --port N --user U --password P\n"
              "                 [--items FETCH-ITEMS] FOLDER...\n",
              stderr);
        exit(2);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"plain", no_argument, NULL, 'P'},
                {"tls", no_argument, NULL, 'T'},
                {"ca", required_argument, NULL, 'c'},
                {"host", required_argument, NULL, 'h'},
                {"port", required_argument, NULL, 'p'},
                {"user", required_argument, NULL, 'u'},
                {"password", required_argument, NULL, 'w'},
                {"items", required_argument, NULL, 'i'},
                {0},
        };
        const char *host = "127.0.0.1", *ca = NULL, *user = NULL, *password = NULL;
        const char *items = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])";
        bool tls = true;
        int port = 0, opt;

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'P':
                        tls = false;
                        break;
                case 'T':
                        tls = true;
                        break;
                case 'c':
                        ca = optarg;
                        break;
                case 'h':
                        host = optarg;
                        break;
                case 'p':
                        port = atoi(optarg);
                        break;
                case 'u':
                        user = optarg;
                        break;
                case 'w':
                        password = optarg;
                        break;
                case 'i':
                        items = optarg;
                        break;
                default:
                        usage();
                }
        }
        if (!user || !password || port <= 0 || port > 65535 || optind >= argc)
                usage();

        static Scan scan;
        static char buf[READ_BYTES];
        static char cmd[64 * 1024];
        Conn conn = {.fd = -1};
        size_t o;
        char last_tag[32] = "";

        /* A server gone after LOGOUT must not kill us while we say goodbye. */
        signal(SIGPIPE, SIG_IGN);
        double start = now_seconds();
        conn_open(&conn, host, port, tls, ca);
        wait_for(&conn, &scan, buf, NULL);

        o = (size_t)snprintf(cmd, sizeof(cmd), "l LOGIN ");
        o += put_quoted(cmd + o, sizeof(cmd) - o, user);
        cmd[o++] = ' ';
        o += put_quoted(cmd + o, sizeof(cmd) - o, password);
        o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, "\r\n");
        conn_write(&conn, cmd, o);
        wait_for(&conn, &scan, buf, "l");

        /* Every folder's SELECT and FETCH in one write: the pipeline is as deep as it gets. */
        o = 0;
        for (int i = optind; i < argc; i++) {
                if (o + strlen(argv[i]) * 2 + strlen(items) + 64 > sizeof(cmd))
                        die("too many folders for one write");
                o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, "s%d SELECT ", i - optind);
                o += put_quoted(cmd + o, sizeof(cmd) - o, argv[i]);
                o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, "\r\nf%d UID FETCH 1:* %s\r\n", i - optind, items);
                snprintf(last_tag, sizeof(last_tag), "f%d", i - optind);
        }
        conn_write(&conn, cmd, o);
        wait_for(&conn, &scan, buf, last_tag);
        double seconds = now_seconds() - start;
        /*
         * LOGOUT only now, untimed: pipelined behind the FETCHes, Dovecot 2.3
         * (TLS through imap-login) now and then closed the connection before
         * the last tagged OK reached us.
         */
        conn_write(&conn, "z LOGOUT\r\n", 10);
        conn_drain(&conn, buf);
        char tls_desc[128] = "none";
        if (conn.ssl)
                snprintf(tls_desc, sizeof(tls_desc), "%s/%s", SSL_get_version(conn.ssl), SSL_get_cipher_name(conn.ssl));
        conn_close(&conn);

        if (scan.n_fetch != scan.n_exists) {
                fprintf(stderr, "imap-wire: %llu FETCH responses for %llu messages\n", (unsigned long long)scan.n_fetch,
                        (unsigned long long)scan.n_exists);
                return 1;
        }
        printf("transport=%s tls=%s messages=%llu exists=%llu literal_bytes=%llu wire_bytes=%llu seconds=%.3f "
               "mb_per_s=%.1f\n",
               tls ? "tls" : "plain", tls_desc, (unsigned long long)scan.n_fetch, (unsigned long long)scan.n_exists,
               (unsigned long long)scan.literal_bytes, (unsigned long long)conn.n_read, seconds,
               (double)conn.n_read / 1e6 / seconds);
        return 0;
}
