/*
 * routes_console.h: the web console's routes: GET / and the console's own
 * page paths answer its index.html, GET /console/{file} its scripts and
 * styles (docs/console.md).
 */
#ifndef API_ROUTES_CONSOLE_H
#define API_ROUTES_CONSOLE_H

#include "api.h"

/* Writes the console's routes into out (at most cap); returns how many. */
size_t api_console_routes(api_route_t *out, size_t cap);

#endif
