/*
 * status.c: the error-to-HTTP-status mapping, the only one in strata.
 */
#include "api.h"

int api_status_for_error(int err)
{
    switch (err) {
    case STRATA_OK: return 200;
    case STRATA_EINVAL:
    case STRATA_EBADSNAPPY:
    case STRATA_EBADPROTO:
    case STRATA_EBADLABEL:
    case STRATA_ETOOOLD:
    case STRATA_EDUPTS:
    case STRATA_EFUTURE:
    case STRATA_EBADREGEX: return 400;
    case STRATA_EUNAUTH: return 401;
    case STRATA_EFORBIDDEN: return 403;
    case STRATA_ENOTFOUND: return 404;
    case STRATA_ECONFLICT: return 409;
    case STRATA_ETOOBIG: return 413;
    case STRATA_EMEDIA: return 415;
    case STRATA_ELIMIT: return 429;
    case STRATA_EEXEC: return 422;
    case STRATA_EUNSUPPORTED: return 501;
    /* the store cannot take the request now; the client may retry */
    case STRATA_ENOMEM:
    case STRATA_EIO:
    case STRATA_ENOSPC:
    case STRATA_ECLOSED:
    case STRATA_ELOCKED:
    case STRATA_ETIMEOUT: return 503;
    default: return 500;
    }
}
