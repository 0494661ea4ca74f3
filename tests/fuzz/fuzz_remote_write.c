/*
 * fuzz_remote_write.c: libFuzzer target for the remote-write decode path
 * (snappy -> protobuf-c unpack into an arena -> validation).
 *
 * Input byte 0 picks the variant: bit 0 = RW2 instead of RW1, bit 1 = the rest
 * is a raw protobuf message (compressed here, so the fuzzer explores the
 * protobuf and validation logic) instead of a snappy body as sent on the
 * wire (which explores the snappy reader and the length check).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    enum ingest_proto proto = (data[0] & 1) ? INGEST_PROTO_V2 : INGEST_PROTO_V1;
    int raw = (data[0] & 2) != 0;
    data++;
    size--;

    ingest_limits_t lim;
    ingest_limits_init(&lim);
    lim.max_request_bytes = 1u << 20;
    lim.max_labels_per_series = 8;
    lim.max_label_name_length = 32;
    lim.max_label_value_length = 64;

    strata_arena_t *arena = strata_arena_new(0);
    if (!arena) return 0;
    strata_arena_set_cap(arena, 64u << 20);

    const char *body = (const char *)data;
    size_t blen = size;
    char *comp = NULL;
    if (raw) {
        blen = snappy_max_compressed_length(size);
        comp = malloc(blen ? blen : 1);
        if (!comp || snappy_compress((const char *)data, size, comp, &blen) != SNAPPY_OK) {
            free(comp);
            strata_arena_free(arena);
            return 0;
        }
        body = comp;
    }
    char *msg;
    size_t mlen;
    if (ingest_snappy_decompress(arena, body, blen, lim.max_request_bytes, &msg, &mlen) == 0) {
        ingest_batch_t *b;
        if (ingest_decode(arena, proto, msg, mlen, &lim, INT64_C(1700000000000), "1", &b) == 0) {
            size_t n;
            const tsdb_series_input_t *s = ingest_batch_series(b, &n);
            /* every series that passed must satisfy the store's contract */
            for (size_t i = 0; i < n; i++) {
                if (s[i].nsamples == 0) abort();
                for (size_t k = 0; k < s[i].nlabels; k++) {
                    if (!s[i].labels[k].value[0]) abort();
                    if (k && strcmp(s[i].labels[k - 1].name, s[i].labels[k].name) >= 0) abort();
                }
            }
        }
    }
    free(comp);
    strata_arena_free(arena);
    return 0;
}
