/*
 * auth.c: bearer-token (JWT) authentication and scope checks.
 *
 * libjwt 1.10 verifies the signature only; it does not look at exp/nbf and
 * it picks the algorithm from the token's own header.  So after decoding we
 * insist the algorithm is the one configured (an RS256 public key must never
 * be usable as an HS256 secret) and check exp, nbf, tenant_id and scope here.
 * A token without exp is refused unless --jwt-require-exp=false; a
 * --jwt-public-key that is not a PEM RSA public key is refused at start.
 * Claims are read through jansson so a string "5" is not taken for 5.
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "strata_log.h"

struct api_auth {
    enum api_auth_mode mode;
    jwt_alg_t alg;
    unsigned char *key;
    size_t keylen;
    int require_exp; /* a token without exp is refused (--jwt-require-exp, on by default) */
};

static int read_file(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return STRATA_EIO;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        unsigned char *nb = cap < (1u << 20) ? realloc(buf, cap * 2) : NULL;
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        return STRATA_EIO;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The key libjwt will verify RS256 with: a PEM SubjectPublicKeyInfo holding an
 * RSA key.  Checked once at start, so a wrong file is a refusal to start, not a
 * 401 on every request. */
static int is_rsa_public_key_pem(const unsigned char *pem, size_t len)
{
    if (len > INT32_MAX) return 0;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    int ok = k && EVP_PKEY_base_id(k) == EVP_PKEY_RSA;
    EVP_PKEY_free(k);
    BIO_free(b);
    return ok;
}

void api_auth_set_require_exp(api_auth_t *a, int on) { a->require_exp = on != 0; }

int api_auth_new(enum api_auth_mode mode, const char *secret_file, const char *public_key_file,
                 api_auth_t **out)
{
    api_auth_t *a = calloc(1, sizeof *a);
    if (!a) return STRATA_ENOMEM;
    a->mode = mode;
    a->require_exp = 1;
    if (mode == API_AUTH_JWT) {
        if (!!secret_file == !!public_key_file) {
            strata_error("--auth=jwt needs exactly one of --jwt-secret-file and --jwt-public-key", "%s", "");
            free(a);
            return STRATA_EINVAL;
        }
        const char *path = secret_file ? secret_file : public_key_file;
        int rc = read_file(path, &a->key, &a->keylen);
        if (rc) {
            strata_error("cannot read JWT key", "path=%s err=\"%s\"", path, strerror(errno));
            free(a);
            return rc;
        }
        if (secret_file) {
            /* a trailing newline from `echo secret > file` is not part of the secret */
            while (a->keylen && (a->key[a->keylen - 1] == '\n' || a->key[a->keylen - 1] == '\r')) a->keylen--;
            a->alg = JWT_ALG_HS256;
        } else {
            a->alg = JWT_ALG_RS256;
        }
        if (a->keylen == 0) {
            strata_error("JWT key file is empty", "path=%s", path);
            api_auth_free(a);
            return STRATA_EINVAL;
        }
        if (public_key_file && !is_rsa_public_key_pem(a->key, a->keylen)) {
            strata_error("--jwt-public-key is not a PEM RSA public key (-----BEGIN PUBLIC KEY-----)",
                         "path=%s", path);
            api_auth_free(a);
            return STRATA_EINVAL;
        }
    }
    *out = a;
    return 0;
}

void api_auth_free(api_auth_t *a)
{
    if (!a) return;
    free(a->key);
    free(a);
}

/* A claim as a jansson value (new reference) or NULL when absent. */
static json_t *claim(jwt_t *jwt, const char *name)
{
    char *s = jwt_get_grants_json(jwt, name);
    if (!s) return NULL;
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    free(s);
    return v;
}

static int has_scope(const char *scopes, const char *want)
{
    size_t wl = strlen(want);
    for (const char *p = scopes; *p;) {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != ' ') e++;
        if ((size_t)(e - p) == wl && memcmp(p, want, wl) == 0) return 1;
        p = e;
    }
    return 0;
}

/* "metrics:read", or for a route any of several scopes allow,
 * "metrics:read or reports:write". */
static void scope_names(unsigned scope, char *buf, size_t cap)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        { API_SCOPE_METRICS_WRITE, "metrics:write" },
        { API_SCOPE_METRICS_READ, "metrics:read" },
        { API_SCOPE_REPORTS_WRITE, "reports:write" },
    };
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(scope & names[i].bit)) continue;
        int k = snprintf(buf + o, cap - o, "%s%s", o ? " or " : "", names[i].name);
        if (k < 0 || (size_t)k >= cap - o) break;
        o += (size_t)k;
    }
}

int api_auth_check(const api_auth_t *a, const char *authorization, unsigned scope, int64_t now_s,
                   api_principal_t *who, char *msg, size_t msgcap)
{
    memset(who, 0, sizeof *who);
    if (a->mode == API_AUTH_NONE) {
        snprintf(who->sub, sizeof who->sub, "anonymous");
        who->scopes = API_SCOPE_METRICS_WRITE | API_SCOPE_METRICS_READ | API_SCOPE_REPORTS_WRITE;
        return 0;
    }
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
        snprintf(msg, msgcap, "missing bearer token");
        return STRATA_EUNAUTH;
    }
    const char *token = authorization + 7;
    while (*token == ' ') token++;
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, a->key, (int)a->keylen) != 0 || !jwt) {
        snprintf(msg, msgcap, "invalid token: bad format or signature");
        return STRATA_EUNAUTH;
    }
    int rc = STRATA_EUNAUTH;
    json_t *exp = NULL, *nbf = NULL, *tid = NULL, *sub = NULL, *scp = NULL;
    if (jwt_get_alg(jwt) != a->alg) {
        snprintf(msg, msgcap, "invalid token: algorithm must be %s",
                 a->alg == JWT_ALG_HS256 ? "HS256" : "RS256");
        goto out;
    }
    exp = claim(jwt, "exp");
    nbf = claim(jwt, "nbf");
    if (!exp && a->require_exp) {
        snprintf(msg, msgcap, "token has no exp claim (an expiry is required: --jwt-require-exp)");
        goto out;
    }
    if (exp && (!json_is_number(exp) || json_number_value(exp) <= (double)now_s)) {
        snprintf(msg, msgcap, "token expired");
        goto out;
    }
    if (nbf && (!json_is_number(nbf) || json_number_value(nbf) > (double)now_s)) {
        snprintf(msg, msgcap, "token not valid yet (nbf)");
        goto out;
    }
    tid = claim(jwt, "tenant_id");
    if (!tid || !json_is_integer(tid) || json_integer_value(tid) < INT32_MIN ||
        json_integer_value(tid) > INT32_MAX) {
        snprintf(msg, msgcap, "token has no int32 tenant_id claim");
        goto out;
    }
    who->tenant_id = (int32_t)json_integer_value(tid);
    sub = claim(jwt, "sub");
    snprintf(who->sub, sizeof who->sub, "%s", sub && json_is_string(sub) ? json_string_value(sub) : "");
    scp = claim(jwt, "scope");
    const char *scopes = scp && json_is_string(scp) ? json_string_value(scp) : "";
    if (has_scope(scopes, "metrics:write")) who->scopes |= API_SCOPE_METRICS_WRITE;
    if (has_scope(scopes, "metrics:read")) who->scopes |= API_SCOPE_METRICS_READ;
    if (has_scope(scopes, "reports:write")) who->scopes |= API_SCOPE_REPORTS_WRITE;
    if (scope && !(who->scopes & scope)) {
        char names[64];
        scope_names(scope, names, sizeof names);
        snprintf(msg, msgcap, "token lacks scope %s", names);
        rc = STRATA_EFORBIDDEN;
        goto out;
    }
    rc = 0;
out:
    json_decref(exp);
    json_decref(nbf);
    json_decref(tid);
    json_decref(sub);
    json_decref(scp);
    jwt_free(jwt);
    return rc;
}
