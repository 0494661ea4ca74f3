/*
 * test_api.c: unit tests of the api module's pure parts: the one
 * error-to-status mapping and JWT checks (tokens minted here with libjwt).
 */
#include "test_helpers.h"

#include <jwt.h>
#include <math.h>
#include <unistd.h>

#include "api.h"

static void test_status_mapping(void **state)
{
    (void)state;
    assert_int_equal(api_status_for_error(0), 200);
    assert_int_equal(api_status_for_error(STRATA_EINVAL), 400);
    assert_int_equal(api_status_for_error(STRATA_EBADSNAPPY), 400);
    assert_int_equal(api_status_for_error(STRATA_EBADPROTO), 400);
    assert_int_equal(api_status_for_error(STRATA_EBADREGEX), 400);
    assert_int_equal(api_status_for_error(STRATA_EUNAUTH), 401);
    assert_int_equal(api_status_for_error(STRATA_EFORBIDDEN), 403);
    assert_int_equal(api_status_for_error(STRATA_ENOTFOUND), 404);
    assert_int_equal(api_status_for_error(STRATA_ECONFLICT), 409);
    assert_int_equal(api_status_for_error(STRATA_ETOOBIG), 413);
    assert_int_equal(api_status_for_error(STRATA_EMEDIA), 415);
    assert_int_equal(api_status_for_error(STRATA_ELIMIT), 429);
    assert_int_equal(api_status_for_error(STRATA_EUNSUPPORTED), 501);
    assert_int_equal(api_status_for_error(STRATA_EEXEC), 422);
    assert_int_equal(api_status_for_error(STRATA_ENOSPC), 503);
    assert_int_equal(api_status_for_error(STRATA_ECLOSED), 503);
    assert_int_equal(api_status_for_error(STRATA_EIO), 503);
    assert_int_equal(api_status_for_error(STRATA_ECORRUPT), 500);
    /* never a 5xx for bad input */
    int bad_input[] = { STRATA_EINVAL, STRATA_EBADSNAPPY, STRATA_EBADPROTO, STRATA_EBADLABEL, STRATA_ETOOOLD,
                        STRATA_EDUPTS, STRATA_EFUTURE,    STRATA_ETOOBIG,   STRATA_EMEDIA };
    for (size_t i = 0; i < sizeof bad_input / sizeof bad_input[0]; i++)
        assert_true(api_status_for_error(bad_input[i]) < 500);
}

typedef struct auth_fix {
    char *dir;
    api_auth_t *auth;
} auth_fix_t;

static const char *SECRET = "unit-test-secret";

static int auth_setup(void **state)
{
    auth_fix_t *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir_new();
    char path[600];
    snprintf(path, sizeof path, "%s/secret", f->dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "%s\n", SECRET);
    fclose(fp);
    assert_ok(api_auth_new(API_AUTH_JWT, path, NULL, &f->auth));
    *state = f;
    return 0;
}

static int auth_teardown(void **state)
{
    auth_fix_t *f = *state;
    api_auth_free(f->auth);
    test_tmpdir_free(f->dir);
    free(f);
    return 0;
}

/* An HS256 token; tenant < 0 leaves tenant_id out; exp/nbf 0 leave them out. */
static char *mint(const char *secret, long tenant, const char *scope, long exp, long nbf)
{
    jwt_t *j;
    jwt_new(&j);
    jwt_add_grant(j, "sub", "alice");
    if (tenant >= 0) jwt_add_grant_int(j, "tenant_id", tenant);
    if (scope) jwt_add_grant(j, "scope", scope);
    if (exp) jwt_add_grant_int(j, "exp", exp);
    if (nbf) jwt_add_grant_int(j, "nbf", nbf);
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret));
    char *tok = jwt_encode_str(j);
    jwt_free(j);
    char *hdr = malloc(strlen(tok) + 8);
    sprintf(hdr, "Bearer %s", tok);
    free(tok);
    return hdr;
}

#define NOW 1700000000L

/* A throwaway 2048-bit test key pair (generated for this test, protects nothing). */
static const char RSA_PRIVATE[] = "-----BEGIN PRIVATE KEY-----\n"
                                  "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCpyWJxd+x12pCe\n"
                                  "gbUFal9YGV63FpYgPjRbotxr/dXNoOOahjUSWOn3XwWglcbJGjGIdBZvRYEjmp9v\n"
                                  "mgqtpusa3vZthrdy+PglW3wTbqvyG/W298xJv+fDhQHFpcWjQqi8EX9YYRYafBfB\n"
                                  "78aDLMr50rPqfADEhQtacIngr1F3eSj2pkFuhabqe90dG2+/VvyzpbEZXOn9D6O5\n"
                                  "fsMj1Z9ot66/rYwYfLUvITbDsWaoL/C3kS+UkM/WTZb9WDfG8aHUNFjdJ5NXEbUk\n"
                                  "wrczGRslVRGrEoQ3phIZpypN4Jk/qB+Hf7X0zCqQZtJq2X9EdPBnnwj80koDIaZX\n"
                                  "lTVihLe9AgMBAAECggEAFbB4Nu6O8m89UkJXkZ2JGIQFKXZlLzFDFwGzDsiaa25G\n"
                                  "JRNH7FQXb1ZgLad0gXQrJ7dMtmI2oQm7nFIdUxmjpwcci9lNzg4oBP2u1/ynUoJn\n"
                                  "3TvCiRlOzhdLpqgKm1SEoaHKlsuwOynnDwtGXLN4KnnUKfw1TOWCEceWlXFQAubt\n"
                                  "rLJNKaNwZfrLB1WmytyW/NRkExLh8r1YQdI6XDLB1TYBx1eVXcwBjkrD6163NCRh\n"
                                  "08gE01R0vaUn4N+K1MVJAGCxVN0S/RLhAYApF+vqOfvIEYbGr/NHLCw8XgtE6hBi\n"
                                  "LWTNkZlF5z67pQYiSQRFOyEmaEuJSPH4/roRp5wDsQKBgQDuBbQjGcUQ71cOce2V\n"
                                  "mOEAU5Ec4/ZDL41qPqC3pALDlVBBoJcoo1+W9wYDUdfJRtfRGeOGQb1nLYLQVBdV\n"
                                  "gxVe1Ach5SABPNdhOtYbPz5fIuAGImxxO3hMwqM7kEzQQwbJs3KpvecR6KKPX5c/\n"
                                  "/iYc2qmVJbByPVKDeVYzzuztewKBgQC2nE5oVPp/6+EjPmwqnbwDq7BBTA+Iqg9I\n"
                                  "D4X5cffbdbexso39CiuxacFbIYhSEhkx1eK5+lrOezveU+Wl1UlPbPugO3j1ehBP\n"
                                  "nwiKF6lBJlsNVBb2R9SCc6eR9T2WL7eWuM50mIkh72wbygMIYd9Uux6/Q1G9tJX0\n"
                                  "+sYHB35+JwKBgH0UBDhZx2QB0camecoeH0azo1MCPBvMNkz5gi1eg5FRum3yPNy/\n"
                                  "FXFYeBFwhaugjbK1HwojK6u3j8F4Hxbxnl5Jn0HhjLL5zNisOWzyDA2kXwL6PfA2\n"
                                  "5x23Pl4Dk0nxnvSJVxz5zR5tGFetTOb04ARTp7/XoWQ281Bhh7oL6BdXAoGAXFtt\n"
                                  "pILmNvCb63FUz7D7OHgLKttHN/2awP1o6yJjE1HUWEFQYtxUAOTV8DtjcO7KY1Qj\n"
                                  "2Z/vcWMOgoG4MklPTKZ4FTA/GxhjS4HJld4lslet0W3oNyNZLalE5SM9xMnZdpd9\n"
                                  "g6bqJImtCdj/86tcgsQo5t8rZmEBPufeZAu8RB0CgYBQxgvSEXvmM36hGidV8DUO\n"
                                  "cnJq9J3Y9Ntvs3V2ArImbMy5fXpzGC6D+SvXK2fLZl/vn9TlDC+Gp1zP+ZQrXb68\n"
                                  "mEQ41YhxWDh4iBENReldxjGuDm6+R/tmXooqN7BaXrQc5m3zAo4m0CgGQkgVQkvF\n"
                                  "DYHFjj6mQtYAxIdnPokpEQ==\n"
                                  "-----END PRIVATE KEY-----\n";
static const char RSA_PUBLIC[] = "-----BEGIN PUBLIC KEY-----\n"
                                 "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqclicXfsddqQnoG1BWpf\n"
                                 "WBletxaWID40W6Lca/3VzaDjmoY1Eljp918FoJXGyRoxiHQWb0WBI5qfb5oKrabr\n"
                                 "Gt72bYa3cvj4JVt8E26r8hv1tvfMSb/nw4UBxaXFo0KovBF/WGEWGnwXwe/GgyzK\n"
                                 "+dKz6nwAxIULWnCJ4K9Rd3ko9qZBboWm6nvdHRtvv1b8s6WxGVzp/Q+juX7DI9Wf\n"
                                 "aLeuv62MGHy1LyE2w7FmqC/wt5EvlJDP1k2W/Vg3xvGh1DRY3SeTVxG1JMK3Mxkb\n"
                                 "JVURqxKEN6YSGacqTeCZP6gfh3+19MwqkGbSatl/RHTwZ58I/NJKAyGmV5U1YoS3\n"
                                 "vQIDAQAB\n"
                                 "-----END PUBLIC KEY-----\n";

static void test_auth_jwt(void **state)
{
    auth_fix_t *f = *state;
    api_principal_t who;
    char msg[160];
    char *t = mint(SECRET, 42, "metrics:read metrics:write", NOW + 60, NOW - 60);
    assert_ok(api_auth_check(f->auth, t, API_SCOPE_METRICS_WRITE, NOW, &who, msg, sizeof msg));
    assert_int_equal(who.tenant_id, 42);
    assert_string_equal(who.sub, "alice");
    assert_int_equal(who.scopes, API_SCOPE_METRICS_READ | API_SCOPE_METRICS_WRITE);
    assert_err(api_auth_check(f->auth, t, API_SCOPE_REPORTS_WRITE, NOW, &who, msg, sizeof msg),
               STRATA_EFORBIDDEN);
    assert_string_equal(msg, "token lacks scope reports:write");
    /* expired: exp == now is already expired */
    assert_err(api_auth_check(f->auth, t, 0, NOW + 60, &who, msg, sizeof msg), STRATA_EUNAUTH);
    assert_string_equal(msg, "token expired");
    assert_err(api_auth_check(f->auth, t, 0, NOW - 61, &who, msg, sizeof msg), STRATA_EUNAUTH);
    assert_string_equal(msg, "token not valid yet (nbf)");
    free(t);

    t = mint("another-secret", 42, "metrics:write", NOW + 60, 0);
    assert_err(api_auth_check(f->auth, t, 0, NOW, &who, msg, sizeof msg), STRATA_EUNAUTH);
    assert_string_equal(msg, "invalid token: bad format or signature");
    free(t);

    t = mint(SECRET, -1, "metrics:write", NOW + 60, 0);
    assert_err(api_auth_check(f->auth, t, 0, NOW, &who, msg, sizeof msg), STRATA_EUNAUTH);
    assert_string_equal(msg, "token has no int32 tenant_id claim");
    free(t);

    t = mint(SECRET, 5000000000L, "metrics:write", NOW + 60, 0);
    assert_err(api_auth_check(f->auth, t, 0, NOW, &who, msg, sizeof msg), STRATA_EUNAUTH);
    free(t);

    /* "metrics:writer" is not "metrics:write" */
    t = mint(SECRET, 1, "metrics:writer", NOW + 60, 0);
    assert_err(api_auth_check(f->auth, t, API_SCOPE_METRICS_WRITE, NOW, &who, msg, sizeof msg),
               STRATA_EFORBIDDEN);
    free(t);

    assert_err(api_auth_check(f->auth, NULL, 0, NOW, &who, msg, sizeof msg), STRATA_EUNAUTH);
    assert_string_equal(msg, "missing bearer token");
    assert_err(api_auth_check(f->auth, "Basic abc", 0, NOW, &who, msg, sizeof msg), STRATA_EUNAUTH);
    assert_err(api_auth_check(f->auth, "Bearer not.a.jwt", 0, NOW, &who, msg, sizeof msg), STRATA_EUNAUTH);
    /* alg none must never pass */
    assert_err(api_auth_check(f->auth, "Bearer eyJhbGciOiJub25lIn0.eyJ0ZW5hbnRfaWQiOjF9.", 0, NOW, &who, msg,
                              sizeof msg),
               STRATA_EUNAUTH);
}

static char *mint_rs256(const char *alg_secret_is_pubkey)
{
    jwt_t *j;
    jwt_new(&j);
    jwt_add_grant_int(j, "tenant_id", 9);
    jwt_add_grant(j, "scope", "metrics:read");
    jwt_add_grant_int(j, "exp", NOW + 60);
    if (alg_secret_is_pubkey) /* the classic confusion attack: HS256 keyed with the public key */
        jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)RSA_PUBLIC, (int)strlen(RSA_PUBLIC));
    else
        jwt_set_alg(j, JWT_ALG_RS256, (const unsigned char *)RSA_PRIVATE, (int)strlen(RSA_PRIVATE));
    char *tok = jwt_encode_str(j);
    jwt_free(j);
    char *hdr = malloc(strlen(tok) + 8);
    sprintf(hdr, "Bearer %s", tok);
    free(tok);
    return hdr;
}

static void test_auth_rs256(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new(), path[600];
    snprintf(path, sizeof path, "%s/pub.pem", dir);
    FILE *fp = fopen(path, "w");
    fputs(RSA_PUBLIC, fp);
    fclose(fp);
    api_auth_t *a;
    assert_ok(api_auth_new(API_AUTH_JWT, NULL, path, &a));
    api_principal_t who;
    char msg[160];
    char *t = mint_rs256(NULL);
    assert_ok(api_auth_check(a, t, API_SCOPE_METRICS_READ, NOW, &who, msg, sizeof msg));
    assert_int_equal(who.tenant_id, 9);
    free(t);
    t = mint_rs256("confused");
    assert_err(api_auth_check(a, t, API_SCOPE_METRICS_READ, NOW, &who, msg, sizeof msg), STRATA_EUNAUTH);
    free(t);
    api_auth_free(a);
    test_tmpdir_free(dir);
}

/* A token without exp is refused unless api_auth_set_require_exp(a, 0). */
static void test_auth_require_exp(void **state)
{
    auth_fix_t *f = *state;
    api_principal_t who;
    char msg[160];
    char *t = mint(SECRET, 7, "metrics:write", 0, 0);
    assert_err(api_auth_check(f->auth, t, API_SCOPE_METRICS_WRITE, NOW, &who, msg, sizeof msg),
               STRATA_EUNAUTH);
    assert_non_null(strstr(msg, "no exp claim"));
    api_auth_set_require_exp(f->auth, 0);
    assert_ok(api_auth_check(f->auth, t, API_SCOPE_METRICS_WRITE, NOW, &who, msg, sizeof msg));
    assert_int_equal(who.tenant_id, 7);
    free(t);
    /* exp is still checked when present */
    t = mint(SECRET, 7, "metrics:write", NOW - 1, 0);
    assert_err(api_auth_check(f->auth, t, 0, NOW, &who, msg, sizeof msg), STRATA_EUNAUTH);
    assert_string_equal(msg, "token expired");
    free(t);
    api_auth_set_require_exp(f->auth, 1);
    t = mint(SECRET, 7, "metrics:write", 0, 0);
    assert_err(api_auth_check(f->auth, t, 0, NOW, &who, msg, sizeof msg), STRATA_EUNAUTH);
    free(t);
}

/* --jwt-public-key must be a PEM RSA public key: anything else is refused at start. */
static void test_auth_public_key_not_pem(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new(), path[600];
    static const char *const bad[] = {
        "this is not a PEM file\n",
        "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n",
        RSA_PRIVATE, /* a private key where the public one belongs */
    };
    api_auth_t *a;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "%s/key%zu.pem", dir, i);
        FILE *fp = fopen(path, "w");
        fputs(bad[i], fp);
        fclose(fp);
        assert_err(api_auth_new(API_AUTH_JWT, NULL, path, &a), STRATA_EINVAL);
    }
    /* an HS256 secret is any bytes: no PEM check there */
    assert_ok(api_auth_new(API_AUTH_JWT, path, NULL, &a));
    api_auth_free(a);
    test_tmpdir_free(dir);
}

static void test_auth_none(void **state)
{
    (void)state;
    api_auth_t *a;
    assert_ok(api_auth_new(API_AUTH_NONE, NULL, NULL, &a));
    api_principal_t who;
    char msg[64];
    assert_ok(api_auth_check(a, NULL, API_SCOPE_REPORTS_WRITE, NOW, &who, msg, sizeof msg));
    assert_int_equal(who.tenant_id, 0);
    assert_string_equal(who.sub, "anonymous");
    api_auth_free(a);
    /* jwt needs exactly one key */
    assert_err(api_auth_new(API_AUTH_JWT, NULL, NULL, &a), STRATA_EINVAL);
    assert_err(api_auth_new(API_AUTH_JWT, "/nonexistent/secret", NULL, &a), STRATA_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test_setup_teardown(test_auth_jwt, auth_setup, auth_teardown),
        cmocka_unit_test(test_auth_rs256),
        cmocka_unit_test_setup_teardown(test_auth_require_exp, auth_setup, auth_teardown),
        cmocka_unit_test(test_auth_public_key_not_pem),
        cmocka_unit_test(test_auth_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
