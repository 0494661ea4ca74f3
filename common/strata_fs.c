/*
 * strata_fs.c: small file-system helpers (strata_fs.h).
 */
#include "strata_fs.h"
#include "strata_err.h"
#include "strata_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int strata_errno_to_err(int e)
{
    if (e == ENOSPC || e == EDQUOT) return STRATA_ENOSPC;
    if (e == ENOMEM) return STRATA_ENOMEM;
    return STRATA_EIO;
}

int strata_io_error(const char *msg, const char *path)
{
    int e = errno;
    strata_error(msg, "path=%s err=\"%s\"", path, strerror(e));
    errno = e;
    return strata_errno_to_err(e);
}

int strata_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = fd < 0 || fsync(fd) != 0 ? errno : 0;
    if (fd >= 0) close(fd);
    if (!e) return 0;
    errno = e;
    return strata_io_error("directory fsync failed", path);
}

char *strata_path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}
