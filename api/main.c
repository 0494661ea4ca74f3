/*
 * main.c: the strata daemon's entry point.
 *
 * For now a minimal server that answers GET /healthz; remote-write ingest and
 * the API arrive with their issues (README, "Status").
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "strata_log.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)cls; (void)version; (void)upload; (void)upload_size; (void)con_cls;
    int ok = strcmp(method, "GET") == 0 && strcmp(url, "/healthz") == 0;
    const char *body = ok ? "ok\n"
                          : "{\"code\":501,\"message\":\"not implemented yet\",\"details\":\"only /healthz is served\"}\n";
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, ok ? 200 : 501, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:9201";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: strata [--listen=ADDR:PORT]\n");
            return 0;
        }
        if (strncmp(argv[i], "--listen=", 9) == 0) listen = argv[i] + 9;
    }
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        fprintf(stderr, "strata: --listen wants HOST:PORT\n");
        return 2;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "strata: bad listen address %s\n", host);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            answer, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    if (!d) { strata_error("cannot listen", "addr=%s", listen); return 1; }
    strata_info("listening", "addr=%s", listen);
    while (!stop_requested) pause();
    MHD_stop_daemon(d);
    strata_info("stopped", "%s", "");
    return 0;
}
