/*
 * libFuzzer target for the parser-level code of daemon/net: the line reader
 * (with raw runs requested by "{N}" lines, fed in pieces whose sizes come from
 * the input) and the SASL client's handling of server challenges (SCRAM
 * server-first/final, OAuth error reports, LOGIN prompts, base64 decoding).
 * The first input byte picks the target and its options.
 *
 * In normal builds (NET_FUZZ_REPLAY defined by meson) a small main() replays
 * every file of the seed corpus directory given on the command line, so the
 * corpus runs as a test under the sanitizers.
 */
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/net/line-reader.h"
#include "daemon/net/sasl.h"
#include "util/secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct FuzzLines {
        LineReader reader;
        uint64_t n_raw;
} FuzzLines;

static int on_line(void *userdata, const char *line, size_t n) {
        FuzzLines *f = userdata;
        const char *brace;

        if (n >= 3 && line[n - 1] == '}' && (brace = memrchr(line, '{', n))) {
                unsigned long len = strtoul(brace + 1, NULL, 10);
                (void)line_reader_expect_raw(&f->reader, len % 100000);
        }
        return 0;
}

static int on_raw(void *userdata, const char *data, size_t n, bool done) {
        FuzzLines *f = userdata;

        f->n_raw += n;
        return 0;
}

static void fuzz_lines(uint8_t opts, const uint8_t *data, size_t size) {
        FuzzLines f = { 0 };
        size_t step = (size_t)(opts & 0x0f) + 1, pos = 0;

        line_reader_init(&f.reader, 64 + (opts & 0xf0), on_line, on_raw, &f);
        while (pos < size) {
                size_t n = size - pos < step ? size - pos : step;
                if (line_reader_feed(&f.reader, (const char *)data + pos, n, NULL) != 0)
                        break;
                pos += n;
        }
        line_reader_deinit(&f.reader);
}

static void fuzz_sasl(uint8_t opts, const uint8_t *data, size_t size) {
        static const char *const mechs[] = { "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "LOGIN", "XOAUTH2",
                                             "OAUTHBEARER" };
        const char *mech = mechs[(opts & 0x7f) % 6];
        bool token = strstr(mech, "OAUTH") != NULL, b64 = opts & 0x80;
        SaslCred cred = { .username = "user", .secret = "pencil", .is_token = token, .host = "h", .port = 1 };
        SaslClient *c = NULL;
        char *copy, *line, *save = NULL;

        if (sasl_client_new(mech, &cred, true, NULL, &c) != 0)
                return;
        /* A short nonce keeps SCRAM inputs reachable: server nonces must extend it. */
        sasl_client_set_nonce(c, "n");
        if (sasl_client_has_initial(c)) {
                char *resp = NULL;
                size_t n;
                if (sasl_client_step(c, NULL, 0, &resp, &n) == 0)
                        secret_free(resp);
        }
        copy = malloc(size + 1);
        if (!copy)
                goto out;
        memcpy(copy, data, size);
        copy[size] = '\0';
        /* One challenge per line. */
        for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *resp = NULL;
                size_t n;
                int r = b64 ? sasl_client_step64(c, line, &resp) : sasl_client_step(c, line, strlen(line), &resp, &n);
                secret_free(resp);
                if (r != 0)
                        break;
        }
        (void)sasl_client_finish(c);
        free(copy);
out:
        sasl_client_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool init;

        if (!init) {
                if (sodium_init() < 0)
                        abort();
                init = true;
        }
        if (size < 2)
                return 0;
        if (data[0] & 1)
                fuzz_sasl(data[1], data + 2, size - 2);
        else
                fuzz_lines(data[1], data + 2, size - 2);
        return 0;
}

#ifdef NET_FUZZ_REPLAY
/* Replays each regular file in the directories (or files) named on the command line. */
static int replay(const char *path) {
        FILE *f = fopen(path, "rb");
        uint8_t *buf;
        long n;

        if (!f)
                return -errno;
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -EIO;
        }
        buf = malloc((size_t)n + 1);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                fclose(f);
                return -EIO;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
        return 0;
}

int main(int argc, char **argv) {
        unsigned n_files = 0;

        for (int i = 1; i < argc; i++) {
                DIR *d = opendir(argv[i]);
                struct dirent *e;

                if (!d) {
                        if (replay(argv[i]) < 0) {
                                fprintf(stderr, "cannot read %s\n", argv[i]);
                                return 1;
                        }
                        n_files++;
                        continue;
                }
                while ((e = readdir(d))) {
                        char path[4096];

                        if (e->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                        if (replay(path) < 0) {
                                fprintf(stderr, "cannot read %s\n", path);
                                closedir(d);
                                return 1;
                        }
                        n_files++;
                }
                closedir(d);
        }
        printf("replayed %u inputs\n", n_files);
        return n_files ? 0 : 1;
}
#endif
