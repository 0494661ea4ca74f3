/*
 * memory.c: the daemon's malloc settings.
 *
 * A metrics answer builds a few MB in its request arena and frees it when the
 * reply is sent.  With glibc's defaults the large blocks are mmapped (or sit
 * at the top of a thread's heap and are trimmed) and every request faults the
 * same pages in again: page faults were a third of a query's CPU.  Fixed
 * thresholds keep blocks up to 4 MiB in the heap and give memory back only
 * past 8 MiB free at a heap's top (docs/architecture.md, "Memory").
 */
#include "memory.h"

#include <malloc.h>

void daemon_memory_tune(void)
{
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
}
