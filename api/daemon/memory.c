/*
 * memory.c: the daemon's malloc settings.
 *
 * A metrics answer builds a few MB in its request arena and frees it when the
 * reply is sent.  With glibc's defaults the large blocks are mmapped (or sit
 * at the top of a thread's heap and are trimmed) and every request faults the
 * same pages in again: page faults were a third of a query's CPU, and which
 * queries paid depended on glibc's adaptive thresholds (a 7-day query took 19
 * or 32 ms from run to run).  Fixed thresholds keep blocks up to 16 MiB in the
 * heap and give memory back past 32 MiB free at a heap's top
 * (docs/architecture.md, "Memory").
 */
#include "memory.h"

#include <malloc.h>

void daemon_memory_tune(void)
{
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
}
