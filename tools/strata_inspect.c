/*
 * strata_inspect.c: looks inside a data directory without opening the
 * database (no lock taken, nothing written), so it works next to a running
 * server.
 *
 *   strata-inspect DIR                 blocks (meta) and WAL files (records)
 *   strata-inspect DIR verify          also reads and checks every chunk and rollup page
 *   strata-inspect DIR series BLOCK    the series of one block: labels, samples, time range
 *   strata-inspect DIR bytes BLOCK     where a block's bytes go: per file, and the codec
 *                                      chunk bytes (before zstd) per metric name
 *
 * Exit status: 0, or 1 when something is corrupt or cannot be read.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "block_internal.h"
#include "wal.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted directory entries (not starting with '.'); *n set. */
static char **list_dir(const char *path, size_t *n)
{
    *n = 0;
    DIR *d = opendir(path);
    if (!d) return NULL;
    char **v = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv) break;
            v = nv;
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n > 1) qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int verify_block(tsdb_block_t *b)
{
    tsdb_page_cache_t pc = { 0 };
    tsdb_sample_t *buf = NULL;
    tsdb_rollup_point_t *rp = NULL;
    size_t cap = 0, rcap = 0;
    uint64_t samples = 0;
    int bad = 0;
    for (uint32_t i = 0; i < b->nseries && !bad; i++) {
        size_t n = 0, nr = 0;
        int rc = tsdb_block_series_samples(b, i, INT64_MIN, INT64_MAX, &pc, &buf, &n, &cap);
        if (!rc) rc = tsdb_block_series_rollups(b, i, TSDB_ROLLUP_5M, &pc, &rp, &nr, &rcap);
        if (!rc) rc = tsdb_block_series_rollups(b, i, TSDB_ROLLUP_1H, &pc, &rp, &nr, &rcap);
        if (rc) {
            printf("  series %u: %s\n", i, strata_strerror(rc));
            bad = 1;
        }
        samples += n;
    }
    if (!bad && samples != b->nsamples) {
        printf("  sample count %" PRIu64 " != meta %" PRIu64 "\n", samples, b->nsamples);
        bad = 1;
    }
    free(buf);
    free(rp);
    tsdb_page_cache_free(&pc);
    return bad;
}

static void print_series(tsdb_block_t *b)
{
    for (uint32_t i = 0; i < b->nseries; i++) {
        const tsdb_block_series_t *s = &b->series[i];
        uint64_t n = 0;
        for (uint32_t c = 0; c < s->nchunks; c++) n += s->chunks[c].count;
        printf("{");
        for (uint32_t l = 0; l < s->nlabels; l++)
            printf("%s%s=\"%s\"", l ? "," : "", b->syms[s->labels[2 * l]], b->syms[s->labels[2 * l + 1]]);
        printf("} samples=%" PRIu64 " chunks=%u mint=%" PRId64 " maxt=%" PRId64 "\n", n, s->nchunks,
               s->nchunks ? s->chunks[0].mint : 0, s->nchunks ? s->chunks[s->nchunks - 1].maxt : 0);
    }
}

/* Codec chunk bytes (before the page's zstd) per metric name, largest first. */
typedef struct name_bytes {
    const char *name;
    uint64_t series, samples, bytes;
} name_bytes_t;

static int cmp_bytes(const void *a, const void *b)
{
    uint64_t x = ((const name_bytes_t *)a)->bytes, y = ((const name_bytes_t *)b)->bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void print_bytes(tsdb_block_t *b)
{
    static const char *files[] = { "chunks", "rollups", "rollups1h", "index", "copy", "meta" };
    printf("file        bytes  bytes/sample\n");
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char p[4200];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", b->path, files[i]);
        long long sz = stat(p, &st) == 0 ? (long long)st.st_size : 0;
        printf("%-9s %10lld  %.4f\n", files[i], sz, b->nsamples ? (double)sz / (double)b->nsamples : 0.0);
    }
    name_bytes_t *v = calloc(b->nseries + 1, sizeof *v);
    size_t nv = 0;
    uint64_t all = 0;
    for (uint32_t i = 0; v && i < b->nseries; i++) {
        const tsdb_block_series_t *s = &b->series[i];
        const char *name = "";
        for (uint32_t l = 0; l < s->nlabels; l++)
            if (!strcmp(b->syms[s->labels[2 * l]], "__name__")) name = b->syms[s->labels[2 * l + 1]];
        size_t k = 0;
        while (k < nv && strcmp(v[k].name, name)) k++;
        if (k == nv) v[nv++].name = name;
        v[k].series++;
        for (uint32_t c = 0; c < s->nchunks; c++) {
            v[k].samples += s->chunks[c].count;
            v[k].bytes += s->chunks[c].len;
            all += s->chunks[c].len;
        }
    }
    if (v) qsort(v, nv, sizeof *v, cmp_bytes);
    printf("codec chunk bytes before zstd: %" PRIu64 " (%.4f bytes/sample)\n", all,
           b->nsamples ? (double)all / (double)b->nsamples : 0.0);
    printf("%-50s %8s %10s %10s %8s %7s\n", "metric", "series", "samples", "bytes", "B/sample", "share");
    for (size_t k = 0; k < nv; k++)
        printf("%-50s %8" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8.4f %6.1f%%\n", v[k].name, v[k].series,
               v[k].samples, v[k].bytes, v[k].samples ? (double)v[k].bytes / (double)v[k].samples : 0.0,
               all ? 100.0 * (double)v[k].bytes / (double)all : 0.0);
    free(v);
}

static int wal_files(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/wal", dir);
    size_t n;
    char **v = list_dir(path, &n);
    int bad = 0;
    printf("wal: %zu files\n", n);
    for (size_t i = 0; i < n; i++) {
        char fp[4200];
        snprintf(fp, sizeof fp, "%s/%s", path, v[i]);
        FILE *f = fopen(fp, "rb");
        if (!f) {
            printf("  %s: cannot open\n", v[i]);
            bad = 1;
            continue;
        }
        struct stat st;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size + 1)))
            len = fread(buf, 1, (size_t)st.st_size, f);
        fclose(f);
        tsdb_wal_replay_stats_t rs = { 0 };
        size_t valid = 0;
        const char *why = NULL;
        int rc = buf ? tsdb_wal_replay_buffer(buf, len, NULL, &rs, &valid, &why) : STRATA_ENOMEM;
        printf("  %-24s %10zu bytes  records=%" PRIu64 " series=%" PRIu64 " samples=%" PRIu64, v[i], len,
               rs.records, rs.series, rs.samples);
        if (rc) {
            printf("  error: %s", strata_strerror(rc));
            bad = 1;
        } else if (why) {
            printf("  torn/corrupt at %zu: %s", valid, why);
            bad = 1;
        }
        printf("\n");
        free(buf);
    }
    free_list(v, n);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s DIR [verify | series BLOCK | bytes BLOCK]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int verify = argc >= 3 && !strcmp(argv[2], "verify");
    int bytes = argc == 4 && !strcmp(argv[2], "bytes");
    const char *only = argc == 4 && (bytes || !strcmp(argv[2], "series")) ? argv[3] : NULL;
    if (argc >= 3 && !verify && !only) {
        fprintf(stderr, "usage: %s DIR [verify | series BLOCK | bytes BLOCK]\n", argv[0]);
        return 2;
    }
    struct stat dst;
    if (stat(dir, &dst) != 0 || !S_ISDIR(dst.st_mode)) {
        fprintf(stderr, "%s: not a directory\n", dir);
        return 1;
    }
    char blocks[4096];
    snprintf(blocks, sizeof blocks, "%s/blocks", dir);
    if (only) {
        tsdb_block_t *b;
        int rc = tsdb_block_open(blocks, only, &b);
        if (rc) {
            fprintf(stderr, "block %s: %s\n", only, strata_strerror(rc));
            return 1;
        }
        if (bytes)
            print_bytes(b);
        else
            print_series(b);
        tsdb_block_close(b);
        return 0;
    }
    size_t n;
    char **v = list_dir(blocks, &n);
    int bad = 0;
    uint64_t total = 0;
    printf("blocks: %zu\n", n);
    printf("  %-26s %14s %14s %6s %9s %10s %8s %5s %10s\n", "id", "mint", "maxt", "hours", "series",
           "samples", "chunks", "level", "bytes");
    for (size_t i = 0; i < n; i++) {
        tsdb_block_t *b;
        int rc = tsdb_block_open(blocks, v[i], &b);
        if (rc) {
            printf("  %-26s %s\n", v[i], strata_strerror(rc));
            bad = 1;
            continue;
        }
        printf("  %-26s %14" PRId64 " %14" PRId64 " %6.1f %9" PRIu64 " %10" PRIu64 " %8" PRIu64
               " %5u %10" PRIu64 " (%.2f bytes/sample)\n",
               b->id, b->mint, b->maxt, (double)(b->maxt - b->mint) / 3.6e6, b->nseries, b->nsamples,
               b->nchunks, b->level, b->bytes, b->nsamples ? (double)b->bytes / (double)b->nsamples : 0.0);
        total += b->bytes;
        if (verify) bad |= verify_block(b);
        tsdb_block_close(b);
    }
    printf("  total %" PRIu64 " bytes\n", total);
    free_list(v, n);
    char corrupt[4096];
    snprintf(corrupt, sizeof corrupt, "%s/corrupt", dir);
    char **c = list_dir(corrupt, &n);
    if (n) printf("corrupt (set aside): %zu\n", n);
    for (size_t i = 0; i < n; i++) printf("  %s\n", c[i]);
    free_list(c, n);
    bad |= wal_files(dir);
    if (verify) printf("%s\n", bad ? "verify: problems found" : "verify: ok");
    return bad;
}
