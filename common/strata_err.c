/* strata_err.c: the message table behind strata_strerror(). */
#include "strata_err.h"

const char *strata_strerror(int err)
{
    switch (err) {
#define STRATA_ERR_CASE(name, value, msg) \
    case value: return msg;
        STRATA_ERRORS(STRATA_ERR_CASE)
#undef STRATA_ERR_CASE
    default: return "unknown error";
    }
}
