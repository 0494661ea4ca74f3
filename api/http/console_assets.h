/*
 * console_assets.h: the web console's files as built into the binary
 * (docs/console.md).  The table is generated at build time by
 * console/build.mjs into build/gen/console_assets.c: each file raw and
 * gzip-compressed, with a content hash for its ETag.  Only
 * routes_console.c reads it.
 */
#ifndef API_CONSOLE_ASSETS_H
#define API_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct api_console_asset {
    const char *name;         /* "index.html", "app.<hash>.js": the part after /console/ */
    const char *content_type; /* with charset for text */
    const char *etag;         /* quoted, e.g. "\"3f2a9c1b\"" */
    int immutable;            /* the name carries its hash: cache it for a year */
    const unsigned char *raw;
    size_t raw_len;
    const unsigned char *gz;
    size_t gz_len;
} api_console_asset_t;

/* The files, index.html first; api_console_nassets is 0 when the build had no node
 * (the console then answers 503 saying how to build it). */
extern const api_console_asset_t api_console_assets[];
extern const size_t api_console_nassets;

#endif
