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

/* The Prometheus query API's errors (docs/promql.md, "HTTP API") carry an
 * errorType beside the status, as Prometheus 2.42 pairs them: bad_data 400,
 * execution 422, timeout 503, not_found 404, internal 500; strata's
 * retryable conditions answer 503 "unavailable".  A sample limit is an
 * execution error there (Prometheus' "query processing would load too many
 * samples"), not a tenant limit (429). */
const char *api_prom_error_type(int err, int *status)
{
    switch (err) {
    case STRATA_EINVAL:
    case STRATA_EBADREGEX:
    case STRATA_EBADLABEL: *status = 400; return "bad_data";
    case STRATA_EEXEC:
    case STRATA_ELIMIT: *status = 422; return "execution";
    case STRATA_ETIMEOUT: *status = 503; return "timeout";
    case STRATA_ENOTFOUND: *status = 404; return "not_found";
    default: break;
    }
    *status = api_status_for_error(err);
    return *status == 503 ? "unavailable" : "internal";
}
