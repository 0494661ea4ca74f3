/*
 * file_check.c: the integrity record of a report's CSV (docs/reports.md,
 * "Integrity"): its size and SHA-256, taken when the file is made and checked
 * before it is served.  OpenSSL's SHA-256 (the project already links
 * libcrypto); the CRC32C in tsdb/ is private to the tsdb.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "reports_internal.h"
#include "strata_err.h"
#include "strata_fs.h"

int reports_file_digest(int fd, char hex[65], int64_t *size)
{
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = 0;
    if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) rc = STRATA_ENOMEM;
    int64_t off = 0;
    while (rc == 0) {
        ssize_t k = pread(fd, buf, CHUNK, (off_t)off); /* pread: the fd's offset stays at 0 */
        if (k < 0) {
            if (errno == EINTR) continue;
            rc = strata_errno_to_err(errno);
            break;
        }
        if (k == 0) break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)k) != 1) rc = STRATA_ENOMEM;
        off += k;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)) rc = STRATA_ENOMEM;
    if (rc == 0) {
        static const char hx[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
            hex[2 * i] = hx[md[i] >> 4];
            hex[2 * i + 1] = hx[md[i] & 15];
        }
        hex[64] = 0;
        *size = off;
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

/* The file's identity as the verification cache keeps it. */
static int same_file(const report_t *r, const struct stat *sb)
{
    return r->file_ok && r->file_dev == sb->st_dev && r->file_ino == sb->st_ino &&
           r->file_ok_size == (int64_t)sb->st_size && r->file_mtime_s == (int64_t)sb->st_mtim.tv_sec &&
           r->file_mtime_ns == (int64_t)sb->st_mtim.tv_nsec &&
           r->file_ctime_s == (int64_t)sb->st_ctim.tv_sec && r->file_ctime_ns == (int64_t)sb->st_ctim.tv_nsec;
}

int reports_file_verify_locked(report_t *r, int fd, const struct stat *sb, char *why, size_t cap)
{
    why[0] = 0;
    if (!r->file_sha256[0]) return 0; /* written before checksums: served as it is */
    if (same_file(r, sb)) return 0;
    if ((int64_t)sb->st_size != r->file_size) {
        snprintf(why, cap, "%s%lld bytes on disk, %lld written (truncated or appended to)",
                 REPORTS_DAMAGED_PREFIX, (long long)sb->st_size, (long long)r->file_size);
        return STRATA_ECORRUPT;
    }
    char hex[65];
    int64_t size;
    int rc = reports_file_digest(fd, hex, &size);
    if (rc) return rc; /* an I/O error is not damage */
    if (size != r->file_size) {
        snprintf(why, cap, "%s%lld bytes read, %lld written (it changed while read)", REPORTS_DAMAGED_PREFIX,
                 (long long)size, (long long)r->file_size);
        return STRATA_ECORRUPT;
    }
    if (strcmp(hex, r->file_sha256) != 0) {
        snprintf(why, cap, "%sits SHA-256 is %.16s..., %.16s... when written (bytes changed on disk)",
                 REPORTS_DAMAGED_PREFIX, hex, r->file_sha256);
        return STRATA_ECORRUPT;
    }
    /* Cached only once the file's ctime is 2 s old: timestamps advance in
     * coarse ticks, so a write in the same tick as the one we hashed after
     * would leave the same identity (git's "racy" index entries). */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    r->file_ok = (int64_t)now.tv_sec - (int64_t)sb->st_ctim.tv_sec >= 2;
    r->file_dev = sb->st_dev;
    r->file_ino = sb->st_ino;
    r->file_ok_size = (int64_t)sb->st_size;
    r->file_mtime_s = (int64_t)sb->st_mtim.tv_sec;
    r->file_mtime_ns = (int64_t)sb->st_mtim.tv_nsec;
    r->file_ctime_s = (int64_t)sb->st_ctim.tv_sec;
    r->file_ctime_ns = (int64_t)sb->st_ctim.tv_nsec;
    return 0;
}
