/*
 * fuzz_hpcz.c - libFuzzer target for the .hpcz reader (and the summary code
 * and both writers, on whatever the reader accepts).
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzers=true -Db_sanitize=address,undefined
 * Run:   build-fuzz/tests/fuzz/fuzz_hpcz -max_len=65536 CORPUS_DIR tests/fuzz/corpus/hpcz
 * The committed corpus in tests/fuzz/corpus/hpcz replays under `meson test`
 * through tests/fuzz/regression.c, without libFuzzer.
 */
#include "hpcz.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rd(const uint8_t *p, int n)
{
    uint64_t v = 0;
    memcpy(&v, p, (size_t)n);
    return v;
}

/* Rewrites every checksum a mutated file carries (FORMAT.md "Checksums"), so
 * that mutations reach the table, skeleton and decoders behind them. Only
 * what lies inside the buffer is touched. */
static void fix_checksums(uint8_t *f, size_t size)
{
    if (size < 64)
        return;
    uint64_t toff = rd(f + 40, 8), tlen = rd(f + 52, 4), esz = rd(f + 14, 2);
    uint64_t count = rd(f + 48, 4);
    if (toff > size || tlen > size - toff || toff + tlen < 64 || esz < 40)
        return;
    uint64_t q = toff;
    for (uint64_t i = 0; i < count && q + esz <= toff + tlen; i++) {
        uint64_t off = rd(f + q, 8), stored = rd(f + q + 8, 8), ndim = rd(f + q + 38, 2);
        if (off <= size && stored <= size - off) {
            uint64_t c = hpcz_hpcz_checksum(f + off, (size_t)stored);
            memcpy(f + q + 24, &c, 8);
        }
        q += esz + 8 * ndim;
    }
    uint8_t two[16];
    uint64_t a = hpcz_hpcz_checksum(f, 56), b = hpcz_hpcz_checksum(f + 64, (size_t)(toff + tlen - 64));
    memcpy(two, &a, 8);
    memcpy(two + 8, &b, 8);
    uint64_t c = hpcz_hpcz_checksum(two, 16);
    memcpy(f + 56, &c, 8);
}

static void one_input(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one_input(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    fix_checksums(copy, size);
    if (size < 64 || memcmp(copy + 56, data + 56, 8) != 0)
        one_input(copy, size);
    free(copy);
    return 0;
}

static void one_input(const uint8_t *data, size_t size)
{
    hpcz_error err;
    /* External data resolves against a folder that does not exist. */
    hpcz_load_opts lo = {.base_dir = "/nonexistent-hpcz-fuzz"};
    /* a small file may legitimately decode to a lot (zstd): bound it */
    hpcz_model *m = hpcz_hpcz_load_buffer(data, size, 0, (uint64_t)64 << 20, &lo, &err);
    if (!m)
        return;
    hpcz_model_summary s;
    if (hpcz_model_summarize(m, &s, &err) == HPCZ_OK)
        hpcz_model_summary_release(&s);
    uint8_t *out = NULL;
    size_t len = 0;
    /* what we write must read back, and .hpcz -> .hpcz is stable */
    if (hpcz_hpcz_serialize(m, NULL, &out, &len, &err) == HPCZ_OK) {
        hpcz_model *m2 = hpcz_hpcz_load_buffer(out, len, 0, 0, &lo, &err);
        if (!m2)
            abort();
        uint8_t *out2 = NULL;
        size_t len2 = 0;
        if (hpcz_hpcz_serialize(m2, NULL, &out2, &len2, &err) != HPCZ_OK || len2 != len ||
            memcmp(out, out2, len) != 0)
            abort();
        free(out2);
        hpcz_model_free(m2);
    }
    free(out);
    out = NULL;
    if (hpcz_onnx_serialize(m, NULL, &out, &len, &err) == HPCZ_OK) {
        hpcz_model *m3 = hpcz_onnx_load_buffer(out, len, &lo, &err);
        if (!m3)
            abort();
        hpcz_model_free(m3);
    }
    free(out);
    hpcz_model_free(m);
}
