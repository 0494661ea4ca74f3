/*
 * memory.h: the daemon's malloc settings (docs/architecture.md, "Memory").
 */
#ifndef DAEMON_MEMORY_H
#define DAEMON_MEMORY_H

/* Sets glibc's mmap and trim thresholds once, before any thread starts. */
void daemon_memory_tune(void);

#endif
