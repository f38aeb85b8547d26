/* replay.c - runs a libFuzzer target's LLVMFuzzerTestOneInput over every
 * file named on the command line (directories: every file in them), so the
 * seed corpus and the regression seeds of each target are replayed in the
 * ordinary (ASan) unit test build, without clang. A crash, a sanitizer
 * report or an abort() of a property fails the test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds one file (at most 16 MiB: seeds are small) to the target. */
static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    size_t cap = 16u << 20, n = 0;
    uint8_t *buf = malloc(cap);
    if (buf) n = fread(buf, 1, cap, f);
    fclose(f);
    if (!buf) return 1;
    /* an exact-size copy, so ASan sees a read one byte past the input */
    uint8_t *in = malloc(n ? n : 1);
    if (!in) {
        free(buf);
        return 1;
    }
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

int main(int argc, char **argv) {
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: no such file or directory %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad += replay_file(argv[i]);
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            bad += replay_file(p);
            files++;
        }
        if (d) closedir(d);
    }
    printf("replay: %d inputs, %d unreadable\n", files, bad);
    return files == 0 || bad ? 1 : 0;
}
