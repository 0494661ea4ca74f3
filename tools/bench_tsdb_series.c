/*
 * bench_tsdb_series.c: memory per active series and append rate of the head.
 *
 * Appends N series (default 1,000,000) of 10 labels each, one sample per
 * series, as a DCGM exporter on a large GPU fleet would produce them: 20
 * metric names x 50,000 GPUs (8 per host, 4 GPUs per pod), so UUID, pod and
 * workload_id strings are shared by the 20 series of a GPU and postings
 * lists have realistic lengths.  WAL fsync is off (the figure is the
 * engine's, not the disk's).  RSS growth is read from /proc/self/statm.
 * Prints figures only; nothing is asserted.
 *
 *   build/bench-tsdb-series [nseries] [unique]
 *
 * "unique" gives every series its own GPU (UUID, pod, workload_id unique per
 * series): the worst case for string interning and postings.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tsdb.h"
#include "strata_log.h"

static const char *metrics[20] = {
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_ENC_UTIL",
    "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES",
    "DCGM_FI_PROF_NVLINK_TX_BYTES",
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

#define BATCH 1000
#define NLAB  10

int main(int argc, char **argv)
{
    size_t nseries = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    int unique = argc > 2 && !strcmp(argv[2], "unique");
    strata_log_set_level(STRATA_LOG_WARN);
    char dir[] = "/tmp/strata-bench-series-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.fsync = TSDB_FSYNC_NEVER;
    o.background = 0;
    o.wal_segment_bytes = 256ull << 20;
    tsdb_t *db = NULL;
    int rc = tsdb_open(&o, &db);
    if (rc) {
        fprintf(stderr, "open: %s\n", strata_strerror(rc));
        return 1;
    }

    /* per-batch storage for the label strings */
    static char strs[BATCH][NLAB][64];
    static tsdb_label_t labels[BATCH][NLAB];
    static tsdb_sample_t samples[BATCH];
    static tsdb_series_input_t in[BATCH];
    const int64_t t0 = 1764000000000LL;

    uint64_t rss0 = rss_bytes();
    double start = now_s(), append_s = 0;
    size_t done = 0;
    while (done < nseries) {
        size_t n = nseries - done < BATCH ? nseries - done : BATCH;
        for (size_t i = 0; i < n; i++) {
            size_t id = done + i;
            size_t metric = id % 20, gpu_global = unique ? id : id / 20;
            size_t host = gpu_global / 8, gpu = gpu_global % 8, pod = gpu_global / 4;
            snprintf(strs[i][0], 64, "GPU-%08zx-1c2d-4e5f-8a9b-%012zx",
                     gpu_global * 2654435761u % 0xffffffffu, gpu_global);
            snprintf(strs[i][1], 64, "dgx-h200-%05zu.cluster.local", host);
            snprintf(strs[i][2], 64, "%s", metrics[metric]);
            snprintf(strs[i][3], 64, "%zu", pod % 4);
            snprintf(strs[i][4], 64, "%s", pod % 3 ? "trainer" : "inference-server");
            snprintf(strs[i][5], 64, "%zu", gpu);
            snprintf(strs[i][6], 64, "NVIDIA H200");
            snprintf(strs[i][7], 64, "team-%03zu", pod % 200);
            snprintf(strs[i][8], 64, "job-%06zu-worker-%zu", pod / 2, pod % 2);
            snprintf(strs[i][9], 64, "%08zx-7d3c-4b1a-9e2f-%012zx", pod / 2 * 40503u, pod / 2);
            static const char *names[NLAB] = { "Hostname",  "UUID",       "__name__",  "__tenant__",
                                               "container", "gpu",        "modelName", "namespace",
                                               "pod",       "workload_id" };
            /* labels in name order (byte order: upper case < '_' < lower case) */
            const char *vals[NLAB] = { strs[i][1], strs[i][0], strs[i][2], strs[i][3], strs[i][4],
                                       strs[i][5], strs[i][6], strs[i][7], strs[i][8], strs[i][9] };
            for (int l = 0; l < NLAB; l++) labels[i][l] = (tsdb_label_t){ names[l], vals[l] };
            samples[i] = (tsdb_sample_t){ t0, (double)(id % 100) };
            in[i] = (tsdb_series_input_t){ labels[i], NLAB, &samples[i], 1 };
        }
        double a = now_s();
        tsdb_append_result_t res;
        rc = tsdb_append(db, in, n, &res);
        append_s += now_s() - a;
        if (rc || res.appended != n) {
            fprintf(stderr, "append: %s (appended %zu of %zu)\n", strata_strerror(rc), res.appended, n);
            return 1;
        }
        done += n;
    }
    double total_s = now_s() - start;
    uint64_t rss1 = rss_bytes();
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    double per = (double)(rss1 - rss0) / (double)nseries;
    printf("series appended:        %zu (10 labels, 1 sample each, fsync never%s)\n", nseries,
           unique ? ", UUID/pod/workload_id unique per series" : ", 20 metrics per GPU");
    printf("append rate:            %.0f series/s in tsdb_append (%.0f/s including label generation)\n",
           (double)nseries / append_s, (double)nseries / total_s);
    printf("RSS growth:             %.1f MiB = %.0f bytes per active series (goal <= 400) -> %s\n",
           (double)(rss1 - rss0) / 1048576.0, per, per <= 400 ? "met" : "NOT met");
    printf("head bytes (accounted): %" PRIu64 " = %.0f per series\n", st.head_bytes,
           (double)st.head_bytes / (double)nseries);
    printf("WAL bytes on disk:      %" PRIu64 " = %.1f per series\n", st.wal_bytes,
           (double)st.wal_bytes / (double)nseries);
    printf("series in index:        %" PRIu64 ", head samples %" PRIu64 "\n", st.series, st.head_samples);
    /* the same head cut into a block: the cost of the 2h cut at this scale */
    double k0 = now_s();
    rc = tsdb_cut_head(db);
    double cut_s = now_s() - k0;
    tsdb_get_stats(db, &st);
    if (rc)
        fprintf(stderr, "cut: %s\n", strata_strerror(rc));
    else
        printf(
            "cut head into a block:  %.2f s, block %" PRIu64 " bytes = %.1f per series, RSS now %.1f MiB\n",
            cut_s, st.block_bytes, (double)st.block_bytes / (double)nseries, (double)rss_bytes() / 1048576.0);
    tsdb_matcher_t m[2] = { { TSDB_MATCH_EQ, "__name__", "DCGM_FI_DEV_GPU_UTIL" },
                            { TSDB_MATCH_EQ, "gpu", "3" } };
    double q0 = now_s();
    tsdb_series_set_t *set = NULL;
    size_t found = 0;
    if (tsdb_select(db, m, 2, INT64_MIN, INT64_MAX, &set) == 0)
        while (tsdb_series_set_next(set) == 1) found++;
    tsdb_series_set_free(set);
    printf("select from the block:  %zu series (__name__=\"DCGM_FI_DEV_GPU_UTIL\",gpu=\"3\") in %.3f s\n",
           found, now_s() - q0);
    /* Steady state: a scraped series holds up to TSDB_HEAD_OPEN_SAMPLES raw
     * samples in its open buffer, then small chunks merged up to
     * TSDB_HEAD_CHUNK_SAMPLES (docs/storage.md, "Head").
     * Accounted head bytes (not RSS: the cut's freed memory is reused) of
     * 100k series after 60 and after 240 samples at a 15 s interval. */
    size_t nss = nseries < 100000 ? nseries : 100000;
    static tsdb_sample_t ss[BATCH][60];
    tsdb_stats_t st0;
    tsdb_get_stats(db, &st0);
    for (int round = 0; round < 4; round++) {
        for (size_t done2 = 0; done2 < nss;) {
            size_t n = nss - done2 < BATCH ? nss - done2 : BATCH;
            for (size_t i = 0; i < n; i++) {
                size_t id = done2 + i;
                snprintf(strs[i][0], 64, "steady-%zu", id);
                labels[i][0] = (tsdb_label_t){ "__name__", "steady" };
                labels[i][1] = (tsdb_label_t){ "id", strs[i][0] };
                for (int k = 0; k < 60; k++)
                    ss[i][k] = (tsdb_sample_t){ t0 + (int64_t)(round * 60 + k) * 15000,
                                                (double)((id + (size_t)k) % 50) };
                in[i] = (tsdb_series_input_t){ labels[i], 2, ss[i], 60 };
            }
            tsdb_append_result_t res;
            if (tsdb_append(db, in, n, &res) != 0 || res.appended != n * 60) {
                fprintf(stderr, "steady append failed\n");
                return 1;
            }
            done2 += n;
        }
        if (round == 0 || round == 3) {
            tsdb_get_stats(db, &st);
            printf("steady state:           %zu series x %d samples: head %.0f bytes per series (%.1f per "
                   "sample)\n",
                   nss, (round + 1) * 60, (double)(st.head_bytes - st0.head_bytes) / (double)nss,
                   (double)(st.head_bytes - st0.head_bytes) / (double)nss / ((round + 1) * 60.0));
        }
    }
    double c0 = now_s();
    tsdb_close(db);
    printf("close:                  %.2f s\n", now_s() - c0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
