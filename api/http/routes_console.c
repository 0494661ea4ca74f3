/*
 * routes_console.c: serves the web console built into the binary
 * (console_assets.h, docs/console.md).  The page itself needs no token: it
 * asks the person for one when the API answers 401, so these routes are
 * API_ROUTE_NO_AUTH, and API_ROUTE_UNREADY so the page shows the API's own
 * 503 during a WAL replay instead of failing to load.
 *
 * Every page path (/, /workloads/{id}, /telemetry, /reports) answers the same
 * index.html; the page's script reads the path.  Files are sent gzip-encoded
 * when the request accepts it (nearly always, so the raw copy is a fallback
 * for curl), with a strong ETag so a reload is a 304, and a Content-Security-
 * Policy that allows nothing but this origin: no inline script, no CDN.
 */
#include "routes_console.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console_assets.h"

/* The page builds every element with DOM calls, and uPlot sets styles through
 * the CSSOM, which style-src does not restrict; blob: is the CSV download. */
#define CONSOLE_CSP                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const api_console_asset_t *asset_named(const char *name)
{
    for (size_t i = 0; i < api_console_nassets; i++)
        if (strcmp(api_console_assets[i].name, name) == 0) return &api_console_assets[i];
    return NULL;
}

/* 1 when an Accept-Encoding value accepts gzip: the token present and not
 * refused with q=0 (anything finer than that is not worth parsing here). */
static int accepts_gzip(const char *ae)
{
    if (!ae) return 0;
    for (const char *p = ae; (p = strcasestr(p, "gzip")) != NULL; p += 4) {
        if (p != ae && p[-1] != ' ' && p[-1] != ',') continue;
        const char *q = p + 4;
        while (*q == ' ') q++;
        if (*q == '\0' || *q == ',') return 1;
        if (*q != ';') continue;
        q++;
        while (*q == ' ') q++;
        if (strncasecmp(q, "q=", 2) == 0) return strtod(q + 2, NULL) > 0;
        return 1;
    }
    return 0;
}

/* 1 when If-None-Match names etag (or is *). */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm) return 0;
    if (strcmp(inm, "*") == 0) return 1;
    return strstr(inm, etag) != NULL;
}

static int send_asset(api_call_t *c, const api_console_asset_t *a)
{
    int gz = accepts_gzip(api_call_header(c, "Accept-Encoding"));
    api_call_add_header(c, "ETag", a->etag);
    api_call_add_header(c, "Vary", "Accept-Encoding");
    /* hashed names never change; the page itself is revalidated every time so
     * a new binary's page (and its new file names) is picked up at once */
    api_call_add_header(c, "Cache-Control",
                        a->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    api_call_add_header(c, "X-Content-Type-Options", "nosniff");
    if (strcmp(a->name, "index.html") == 0) {
        api_call_add_header(c, "Content-Security-Policy", CONSOLE_CSP);
        api_call_add_header(c, "Referrer-Policy", "no-referrer");
    }
    if (etag_matches(api_call_header(c, "If-None-Match"), a->etag)) return api_call_reply_empty(c, 304);
    if (gz) {
        api_call_add_header(c, "Content-Encoding", "gzip");
        return api_call_reply(c, 200, a->content_type, (const char *)a->gz, a->gz_len);
    }
    return api_call_reply(c, 200, a->content_type, (const char *)a->raw, a->raw_len);
}

static int h_page(api_call_t *c, void *ctx)
{
    (void)ctx;
    if (api_console_nassets == 0)
        return api_call_reply_error(c, 503, "console not built",
                                    "this binary was built without node; run make deps, then make");
    return send_asset(c, &api_console_assets[0]);
}

static int h_file(api_call_t *c, void *ctx)
{
    (void)ctx;
    const api_console_asset_t *a = asset_named(api_call_segment(c, 0));
    if (!a) return api_call_reply_strata_error(c, STRATA_ENOTFOUND, "not found", "no such console file");
    return send_asset(c, a);
}

#define CONSOLE_FLAGS (API_ROUTE_NO_AUTH | API_ROUTE_UNREADY | API_ROUTE_PATH_LABEL)

size_t api_console_routes(api_route_t *out, size_t cap)
{
    const api_route_t r[] = {
        { "GET", "/", 0, h_page, NULL, CONSOLE_FLAGS },
        { "GET", "/workloads/{}", 0, h_page, NULL, CONSOLE_FLAGS },
        { "GET", "/telemetry", 0, h_page, NULL, CONSOLE_FLAGS },
        { "GET", "/reports", 0, h_page, NULL, CONSOLE_FLAGS },
        { "GET", "/console/{}", 0, h_file, NULL, CONSOLE_FLAGS },
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > cap) n = cap;
    memcpy(out, r, n * sizeof *out);
    return n;
}
