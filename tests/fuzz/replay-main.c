/*
 * A main() for fuzz targets in normal builds: replays a seed corpus through
 * LLVMFuzzerTestOneInput so every build runs each fuzzer's samples as a test
 * (with -Dfuzz=true libFuzzer brings its own main instead). Usage:
 * `fuzz-x CORPUS_DIR [FILE|DIR...]`; each directory is read in name order,
 * each file is one input. Exits non-zero when a path cannot be read or holds
 * no input at all; a bug in the target shows up as a crash or sanitizer report.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        size_t size = 0, cap = 0, n;

        if (!f) {
                perror(path);
                return -1;
        }
        for (;;) {
                if (size == cap) {
                        uint8_t *b = realloc(buf, cap ? cap * 2 : 4096);

                        if (!b) {
                                free(buf);
                                fclose(f);
                                return -1;
                        }
                        buf = b;
                        cap = cap ? cap * 2 : 4096;
                }
                n = fread(buf + size, 1, cap - size, f);
                if (n == 0)
                        break;
                size += n;
        }
        if (ferror(f)) {
                perror(path);
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, size);
        free(buf);
        return 1;
}

static int run_dir(const char *path) {
        struct dirent **names;
        int n = scandir(path, &names, NULL, alphasort), count = 0;

        if (n < 0) {
                perror(path);
                return -1;
        }
        for (int i = 0; i < n; i++) {
                char *file;
                struct stat st;

                if (names[i]->d_name[0] != '.' && asprintf(&file, "%s/%s", path, names[i]->d_name) >= 0) {
                        if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
                                if (run_file(file) < 0)
                                        count = -1;
                                else if (count >= 0)
                                        count++;
                        }
                        free(file);
                }
                free(names[i]);
        }
        free(names);
        return count;
}

int main(int argc, char *argv[]) {
        int total = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s CORPUS_DIR [FILE|DIR...]\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;
                int r;

                if (stat(argv[i], &st) < 0) {
                        perror(argv[i]);
                        return 1;
                }
                r = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]);
                if (r <= 0) {
                        fprintf(stderr, "%s: no input replayed\n", argv[i]);
                        return 1;
                }
                total += r;
        }
        printf("%d inputs replayed\n", total);
        return 0;
}
