/*
 * strata_err.h: the one error space shared by every module.
 *
 * 0 is success; every failure is a negative STRATA_E* code from the table
 * below.  strata_strerror() turns a code into a stable human message.  The api
 * module maps these codes to HTTP statuses in exactly one place
 * (api_status_for_error); nothing else should.
 */
#ifndef STRATA_ERR_H
#define STRATA_ERR_H

/* X(name, value, message).  Values are stable: append, never renumber. */
// clang-format off
#define STRATA_ERRORS(X)                                                        \
    X(STRATA_OK,          0,   "ok")                                            \
    X(STRATA_ENOMEM,     -1,   "out of memory")                                 \
    X(STRATA_EINVAL,     -2,   "invalid argument")                              \
    X(STRATA_EIO,        -3,   "I/O error")                                     \
    X(STRATA_ENOSPC,     -4,   "no space left on device")                       \
    X(STRATA_ECORRUPT,   -5,   "data corrupt (checksum or format mismatch)")    \
    X(STRATA_ELOCKED,    -6,   "data directory is locked by another process")   \
    X(STRATA_ECLOSED,    -7,   "database is closed or shutting down")           \
    X(STRATA_ETOOOLD,    -8,   "sample is older than the out-of-order window")  \
    X(STRATA_EDUPTS,     -9,   "sample conflicts with a stored sample at the same timestamp") \
    X(STRATA_EBUFSMALL,  -10,  "buffer too small")                              \
    X(STRATA_ENOTFOUND,  -11,  "not found")                                     \
    X(STRATA_EVERSION,   -12,  "unsupported format version")                    \
    X(STRATA_ELIMIT,     -13,  "limit exceeded")                                \
    X(STRATA_EBADREGEX,  -14,  "invalid regular expression")                    \
    X(STRATA_ETOOBIG,    -15,  "request body too large")                        \
    X(STRATA_EBADSNAPPY, -16,  "corrupt snappy data")                           \
    X(STRATA_EBADPROTO,  -17,  "invalid protobuf message")                      \
    X(STRATA_EBADLABEL,  -18,  "invalid label set")                             \
    X(STRATA_EUNAUTH,    -19,  "missing or invalid credentials")                \
    X(STRATA_EFORBIDDEN, -20,  "insufficient scope")                            \
    X(STRATA_EMEDIA,     -21,  "unsupported media type")                        \
    X(STRATA_EFUTURE,    -22,  "sample timestamp too far in the future")        \
    X(STRATA_ECONFLICT,  -23,  "conflict")                                      \
    X(STRATA_ETIMEOUT,   -24,  "timed out")                                     \
    X(STRATA_EUNSUPPORTED, -25, "not supported")                            \
    X(STRATA_EEXEC,      -26,  "query execution failed")
// clang-format on

enum strata_err {
#define STRATA_ERR_ENUM(name, value, msg) name = value,
    STRATA_ERRORS(STRATA_ERR_ENUM)
#undef STRATA_ERR_ENUM
};

/* Returns a static string; never NULL, also for unknown codes. */
const char *strata_strerror(int err);

#endif
