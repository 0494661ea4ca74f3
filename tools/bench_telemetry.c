/*
 * bench_telemetry.c: latency of GET /workloads/telemetry's computation
 * (api_telemetry_compute) over a registry of many live workloads.
 *
 *   build/bench-telemetry [workloads=10000] [runs=300]
 *
 * Feeds one tenant's registry with `workloads` workloads (4 clusters, 20
 * departments, 200 projects, 5 types, 3 categories, 16 nodepools with 1-2
 * current ones each, a phase mix with 25% Pending since up to 2 days, GPU
 * allocations, two GPU utilisation series each, a third of them idle), then
 * times each telemetry type grouped by 2 keys (PENDING_TIME_DISTRIBUTION:
 * PendingTime + 1), JSON and CSV, `runs` times each, one thread, and prints
 * p50 / p99 / max of wall time and p50 / p99 of thread CPU time, in ms.  The target is p99 <= 10 ms at 10,000
 * workloads.  Figures are printed, never asserted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry.h"
#include "strata_arena.h"
#include "strata_time.h"
#include "telemetry.h"
#include "tsdb.h"

#define MIN_MS 60000LL
#define NOW    1734878400000LL /* 2024-12-22T14:40:00Z */

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of this thread: what the query costs, without the waits of a
 * machine shared with other work (wall time includes them). */
static double cpu_s(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const tsdb_label_t *)a)->name, ((const tsdb_label_t *)b)->name);
}

static int feed(api_registry_t *r, tsdb_label_t *l, size_t n, const tsdb_sample_t *s, size_t ns)
{
    qsort(l, n, sizeof *l, label_cmp);
    return api_registry_observe(r, 1, l, n, s, ns);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *const PHASES[] = {
    "Running", "Running", "Running", "Running",   "Running", "Running",
    "Pending", "Pending", "Pending", "Completed", "Failed",  "Initializing"
};
static const char *const TYPES[] = { "Training", "Workspace", "Inference", "DistributedTraining", "NIM" };
static const char *const CATS[] = { "Train", "Build", "Deploy" };

static int populate(api_registry_t *r, int nwl)
{
    char id[40], name[32], dept[16], dname[32], proj[16], pname[32], cluster[40], cur[32], req[32],
        created[STRATA_TIME_RFC3339_BUFSZ], gpu[12];
    for (int i = 0; i < nwl; i++) {
        snprintf(id, sizeof id, "3f1c1a2e-0000-4000-8000-%012d", i);
        snprintf(name, sizeof name, "wl-%d", i);
        int p = (int)rnd(200), d = p % 20;
        snprintf(proj, sizeof proj, "%d", 100 + p);
        snprintf(pname, sizeof pname, "project-%d", p);
        snprintf(dept, sizeof dept, "%d", d);
        snprintf(dname, sizeof dname, "department-%d", d);
        snprintf(cluster, sizeof cluster, "7b2f4c1d-1111-4222-8333-%012d", (int)rnd(4));
        unsigned np = rnd(16);
        if (rnd(3) == 0)
            snprintf(cur, sizeof cur, "pool-%u,pool-%u", np, (np + 1) % 16);
        else
            snprintf(cur, sizeof cur, "pool-%u", np);
        snprintf(req, sizeof req, "pool-%u", np);
        const char *phase = PHASES[rnd(sizeof PHASES / sizeof *PHASES)];
        int64_t since = NOW - (int64_t)rnd(48 * 60) * MIN_MS - MIN_MS;
        if (strata_time_format_rfc3339(since - 10 * MIN_MS, created, sizeof created) < 0) return -1;
        int pending = !strcmp(phase, "Pending");
        tsdb_label_t l[16] = {
            { "__name__", "runai_workload_info" },
            { "workload_id", id },
            { "workload_name", name },
            { "workload_type", TYPES[rnd(5)] },
            { "category", CATS[rnd(3)] },
            { "project_id", proj },
            { "project_name", pname },
            { "department_id", dept },
            { "department_name", dname },
            { "cluster_id", cluster },
            { "requested_nodepools", req },
            { "created_at", created },
            { "current_nodepools", cur },
        };
        tsdb_sample_t s[2] = { { NOW - MIN_MS, 1 }, { NOW - MIN_MS / 2, 1 } };
        if (feed(r, l, pending ? 12 : 13, s, 2)) return -1;
        tsdb_label_t ph[3] = { { "__name__", "runai_workload_phase" },
                               { "workload_id", id },
                               { "phase", phase } };
        s[0].t = since;
        if (feed(r, ph, 3, s, 2)) return -1;
        if (pending) continue;
        tsdb_label_t al[2] = { { "__name__", "runai_workload_gpu_allocation" }, { "workload_id", id } };
        tsdb_sample_t a[1] = { { NOW - MIN_MS, 0.5 * (1 + rnd(16)) } };
        if (feed(r, al, 2, a, 1)) return -1;
        int idle = rnd(3) == 0;
        for (int g = 0; g < 2; g++) {
            snprintf(gpu, sizeof gpu, "%d", g);
            tsdb_label_t gl[3] = { { "__name__", "DCGM_FI_DEV_GPU_UTIL" },
                                   { "workload_id", id },
                                   { "gpu", gpu } };
            tsdb_sample_t u[3] = { { NOW - 10 * MIN_MS, idle ? 0 : 50 },
                                   { NOW - 5 * MIN_MS, idle ? 0 : 70 },
                                   { NOW - 15000, idle ? 0 : 90 } };
            if (feed(r, gl, 3, u, 3)) return -1;
        }
    }
    return 0;
}

static int noop(const api_registry_summary_t *w, void *ctx)
{
    (void)w;
    (*(size_t *)ctx)++;
    return 0;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int nwl = argc > 1 ? atoi(argv[1]) : 10000, runs = argc > 2 ? atoi(argv[2]) : 300;
    if (nwl <= 0 || runs <= 0) {
        fprintf(stderr, "usage: bench-telemetry [workloads] [runs]\n");
        return 2;
    }
    api_registry_t *r;
    if (api_registry_new(NULL, &r)) return 1;
    double t0 = now_s();
    if (populate(r, nwl)) {
        fprintf(stderr, "populate failed\n");
        return 1;
    }
    printf("registry: %d workloads fed in %.0f ms\n", nwl, (now_s() - t0) * 1e3);

    static const struct {
        const char *type, *group_by;
    } Q[] = {
        { "WORKLOADS_COUNT", "DepartmentId,Phase" },
        { "GPU_ALLOCATION", "ProjectId,CurrentNodepools" },
        { "IDLE_ALLOCATED_GPUS", "ClusterId,Type" },
        { "PENDING_TIME_DISTRIBUTION", "DepartmentId" },
        { "WORKLOADS_COUNT", "ProjectId,CurrentNodepools" },
    };
    double *lat = malloc((size_t)runs * sizeof *lat), *cpu = malloc((size_t)runs * sizeof *cpu);
    strata_arena_t *a = strata_arena_new(0);
    if (!lat || !cpu || !a) return 1;
    /* the floor: the registry evaluating every workload, no telemetry work */
    for (int i = 0; i < runs; i++) {
        size_t seen = 0;
        double s = now_s(), c = cpu_s();
        api_registry_foreach(r, 1, NOW, noop, &seen);
        lat[i] = (now_s() - s) * 1e3;
        cpu[i] = (cpu_s() - c) * 1e3;
        if (i == 0) printf("api_registry_foreach alone: %zu live workloads\n", seen);
    }
    qsort(lat, (size_t)runs, sizeof *lat, dcmp);
    qsort(cpu, (size_t)runs, sizeof *cpu, dcmp);
    printf("  wall p50 %.3f ms, p99 %.3f ms; cpu p50 %.3f ms, p99 %.3f ms\n", lat[runs / 2],
           lat[(size_t)(runs * 0.99)], cpu[runs / 2], cpu[(size_t)(runs * 0.99)]);
    printf("%-26s %-27s %-4s %6s %7s %8s %8s %8s %8s %8s\n", "telemetryType", "groupBy", "fmt", "groups",
           "bytes", "p50 ms", "p99 ms", "max ms", "cpu p50", "cpu p99");
    for (size_t q = 0; q < sizeof Q / sizeof *Q; q++) {
        for (int fmt = 0; fmt < 2; fmt++) {
            size_t len = 0, lines = 0;
            for (int i = 0; i < runs; i++) {
                strata_arena_reset(a);
                api_telemetry_param_t p[] = { { "telemetryType", Q[q].type }, { "groupBy", Q[q].group_by } };
                api_telemetry_request_t *req;
                char err[256], *body;
                double s = now_s(), c = cpu_s();
                if (api_telemetry_parse(p, 2, a, &req, err, sizeof err) ||
                    api_telemetry_compute(r, 1, req, NOW, fmt ? API_TELEMETRY_CSV : API_TELEMETRY_JSON, a,
                                          &body, &len)) {
                    fprintf(stderr, "query failed: %s\n", err);
                    return 1;
                }
                lat[i] = (now_s() - s) * 1e3;
                cpu[i] = (cpu_s() - c) * 1e3;
                if (fmt && i == 0)
                    for (const char *c = body; *c; c++) lines += *c == '\n';
            }
            qsort(lat, (size_t)runs, sizeof *lat, dcmp);
            qsort(cpu, (size_t)runs, sizeof *cpu, dcmp);
            size_t i99 = (size_t)(runs * 0.99);
            if (i99 >= (size_t)runs) i99 = (size_t)runs - 1;
            char groups[16] = "";
            if (fmt) snprintf(groups, sizeof groups, "%zu", lines - 1);
            printf("%-26s %-27s %-4s %6s %7zu %8.3f %8.3f %8.3f %8.3f %8.3f\n", Q[q].type, Q[q].group_by,
                   fmt ? "csv" : "json", groups, len, lat[runs / 2], lat[i99], lat[runs - 1], cpu[runs / 2],
                   cpu[i99]);
        }
    }
    free(lat);
    free(cpu);
    strata_arena_free(a);
    api_registry_free(r);
    return 0;
}
