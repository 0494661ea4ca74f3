/*
 * strata_fs.h: small file-system helpers shared by the modules that keep
 * files (the storage engine, the report store).
 */
#ifndef STRATA_FS_H
#define STRATA_FS_H

/* STRATA_ENOSPC for ENOSPC/EDQUOT, STRATA_ENOMEM for ENOMEM, else STRATA_EIO. */
int strata_errno_to_err(int e);
/* For a failed system call on path: logs msg with path and errno's text,
 * and returns strata_errno_to_err(errno) (errno kept).  Call it once, where
 * the call failed, so each failure is logged exactly once. */
int strata_io_error(const char *msg, const char *path);
/* fsyncs a directory (after creating, renaming or removing entries in it).
 * 0, or STRATA_EIO/STRATA_ENOSPC, logged here with the errno text. */
int strata_fsync_dir(const char *path);
/* "a/b", malloc'd; NULL when out of memory. */
char *strata_path_join(const char *a, const char *b);

#endif
