/*
 * fuzz_rw1_fastpath.c: differential libFuzzer target for ingest's RW1 fast
 * path (ingest/decode.c reads plain timeseries/labels/samples requests
 * itself and leaves everything else to protobuf-c).
 *
 * The input is a raw RW1 message.  Appending an empty metadata field
 * (field 3, "1a 00") keeps a well-formed message well-formed and means the
 * same thing, but always sends it through protobuf-c.  Whenever the input
 * decodes, both decodes must give the same series, labels, samples, reject
 * counts and first error, byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

static ingest_batch_t *decode(strata_arena_t *a, const uint8_t *buf, size_t len, int *rc)
{
    ingest_limits_t lim;
    ingest_limits_init(&lim);
    lim.max_labels_per_series = 8;
    lim.max_label_name_length = 32;
    lim.max_label_value_length = 64;
    ingest_batch_t *b = NULL;
    *rc = ingest_decode(a, INGEST_PROTO_V1, buf, len, &lim, INT64_C(1700000000000), "1", &b);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20)) return 0;
    strata_arena_t *a1 = strata_arena_new(0), *a2 = strata_arena_new(0);
    uint8_t *slow = malloc(size + 2);
    if (!a1 || !a2 || !slow) goto out;
    strata_arena_set_cap(a1, 64u << 20);
    strata_arena_set_cap(a2, 64u << 20);
    if (size) memcpy(slow, data, size);
    slow[size] = 0x1a;
    slow[size + 1] = 0x00;
    int rc1, rc2;
    ingest_batch_t *b1 = decode(a1, data, size, &rc1);
    if (rc1 != 0) goto out;
    ingest_batch_t *b2 = decode(a2, slow, size + 2, &rc2);
    if (rc2 != 0) abort();
    size_t n1, n2;
    const tsdb_series_input_t *s1 = ingest_batch_series(b1, &n1), *s2 = ingest_batch_series(b2, &n2);
    if (n1 != n2) abort();
    if (ingest_batch_samples_in(b1) != ingest_batch_samples_in(b2)) abort();
    for (int r = 0; r < INGEST_R_COUNT; r++)
        if (ingest_batch_rejected(b1, (enum ingest_reason)r) !=
            ingest_batch_rejected(b2, (enum ingest_reason)r))
            abort();
    const char *e1 = ingest_batch_first_error(b1), *e2 = ingest_batch_first_error(b2);
    if (!e1 != !e2 || (e1 && strcmp(e1, e2))) abort();
    for (size_t i = 0; i < n1; i++) {
        if (s1[i].nlabels != s2[i].nlabels || s1[i].nsamples != s2[i].nsamples) abort();
        for (size_t k = 0; k < s1[i].nlabels; k++)
            if (strcmp(s1[i].labels[k].name, s2[i].labels[k].name) ||
                strcmp(s1[i].labels[k].value, s2[i].labels[k].value))
                abort();
        if (s1[i].nsamples && memcmp(s1[i].samples, s2[i].samples, s1[i].nsamples * sizeof *s1[i].samples))
            abort();
    }
out:
    free(slow);
    strata_arena_free(a1);
    strata_arena_free(a2);
    return 0;
}
