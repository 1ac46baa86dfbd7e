/*
 * fuzz_onnx.c - libFuzzer target for the ONNX reader (and the writer and
 * summary code that run on whatever the reader accepts).
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzers=true -Db_sanitize=address,undefined
 * Run:   build-fuzz/tests/fuzz/fuzz_onnx -max_len=65536 CORPUS_DIR
 * The committed corpus in tests/fuzz/corpus/onnx replays under `meson test`
 * through tests/fuzz/regression.c, without libFuzzer.
 */
#include "hpcz.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hpcz_error err;
    /* External data resolves against a folder that does not exist. */
    hpcz_load_opts lo = {.base_dir = "/nonexistent-hpcz-fuzz"};
    hpcz_model *m = hpcz_onnx_load_buffer(data, size, &lo, &err);
    /* the same with every raw_data payload used in place in `data`: it must
     * accept the same inputs and write the same bytes */
    hpcz_load_opts lb = lo;
    lb.borrow = 1;
    lb.borrow_min = 1;
    hpcz_error err_b;
    hpcz_model *mb = hpcz_onnx_load_buffer(data, size, &lb, &err_b);
    if (!m != !mb)
        abort();
    if (mb) {
        uint8_t *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        hpcz_status sa = hpcz_onnx_serialize(m, NULL, &a, &al, &err);
        hpcz_status sb = hpcz_onnx_serialize(mb, NULL, &b, &bl, &err_b);
        if (sa != sb || (sa == HPCZ_OK && (al != bl || memcmp(a, b, al) != 0)))
            abort();
        free(a);
        free(b);
        hpcz_model_free(mb);
    }
    if (m) {
        hpcz_model_summary s;
        if (hpcz_model_summarize(m, &s, &err) == HPCZ_OK)
            hpcz_model_summary_release(&s);
        uint8_t *out = NULL;
        size_t len = 0;
        if (hpcz_onnx_serialize(m, NULL, &out, &len, &err) == HPCZ_OK) {
            /* what we write must read back */
            hpcz_model *m2 = hpcz_onnx_load_buffer(out, len, &lo, &err);
            if (!m2)
                abort();
            hpcz_model_free(m2);
        }
        free(out);
        hpcz_model_free(m);
    }
    hpcz_tensor *t = hpcz_tensorproto_load_buffer(data, size, &err);
    if (t) {
        (void)hpcz_tensor_data(t, &err);
        hpcz_model_free(t->model);
    }
    return 0;
}
