/*
 * test_hpcz.c - the .hpcz container (formats/hpcz/FORMAT.md):
 *  - every model of ONNX's node conformance suite and every sample goes
 *    .onnx -> .hpcz -> .onnx and must be semantically equal to the input
 *    (equal after canonical re-serialization), with each encoding forced in
 *    turn and chosen automatically; writing is deterministic;
 *  - every TensorProto field a payload can come from round-trips;
 *  - the automatic choice: sparse for a 90%-zero tensor, raw for random
 *    data, zstd for a constant, inline for small tensors;
 *  - corrupt files (every header and table field) fail with one line.
 *
 * Usage: test_hpcz SUITE_DIR SOURCE_ROOT  (exit 77 = skipped when SUITE_DIR is absent)
 */
#include "hpcz.h"
#include "onnx.pb-c.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            n_pass++;                                                                              \
        } else {                                                                                   \
            n_fail++;                                                                              \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                           \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------ FORMAT.md layout */

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static void wr64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static void wr32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void wr16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

/* Recomputes the header checksum as FORMAT.md defines it. */
static void fix_header_checksum(uint8_t *f)
{
    uint64_t end = rd64(f + 40) + rd32(f + 52);
    uint8_t two[16];
    wr64(two, hpcz_hpcz_checksum(f, 56));
    wr64(two + 8, hpcz_hpcz_checksum(f + 64, (size_t)(end - 64)));
    wr64(f + 56, hpcz_hpcz_checksum(two, 16));
}

static uint8_t *entry_at(uint8_t *f, uint32_t i)
{
    uint8_t *p = f + rd64(f + 40);
    for (uint32_t k = 0; k < i; k++)
        p += rd16(f + 14) + 8 * (size_t)rd16(p + 38);
    return p;
}

/* ------------------------------------------------------------ helpers */

static bool canon_equal(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    hpcz_error err;
    uint8_t *ca = NULL, *cb = NULL;
    size_t cal = 0, cbl = 0;
    bool eq = false;
    if (!hpcz_onnx_canonicalize(a, al, &ca, &cal, &err) &&
        !hpcz_onnx_canonicalize(b, bl, &cb, &cbl, &err))
        eq = cal == cbl && memcmp(ca, cb, cal) == 0;
    free(ca);
    free(cb);
    return eq;
}

static const char *const encodings[] = {NULL, "raw", "zstd", "sparse", "sparse-zstd"};
static unsigned long field_seen[6], enc_seen[4];

/* ONNX bytes -> .hpcz -> ONNX bytes, compared; also checks determinism and
 * that a .hpcz read back writes the same .hpcz again. */
static bool roundtrip(const uint8_t *orig, size_t orig_len, const char *encoding, char *why,
                      size_t cap)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_onnx_load_buffer(orig, orig_len, NULL, &err);
    if (!m) {
        snprintf(why, cap, "onnx load: %s", err.msg);
        return false;
    }
    hpcz_hpcz_opts ho = {.inline_max = 1, .encoding = encoding};
    uint8_t *hz = NULL, *hz2 = NULL, *hz3 = NULL, *back = NULL;
    size_t hz_len = 0, hz2_len = 0, hz3_len = 0, back_len = 0;
    bool ok = false;
    hpcz_model *m2 = NULL;
    if (hpcz_hpcz_serialize(m, &ho, &hz, &hz_len, &err)) {
        snprintf(why, cap, "hpcz write: %s", err.msg);
        goto out;
    }
    if (hpcz_hpcz_serialize(m, &ho, &hz2, &hz2_len, &err) || hz_len != hz2_len ||
        memcmp(hz, hz2, hz_len)) {
        snprintf(why, cap, "two writes differ");
        goto out;
    }
    m2 = hpcz_hpcz_load_buffer(hz, hz_len, 0, 0, NULL, &err);
    if (!m2) {
        snprintf(why, cap, "hpcz read: %s", err.msg);
        goto out;
    }
    if (strcmp(hpcz_model_format(m2), "hpcz")) {
        snprintf(why, cap, "format %s", hpcz_model_format(m2));
        goto out;
    }
    hpcz_hpcz_info hi;
    if (!hpcz_hpcz_model_info(m2, &hi) || (!encoding && hi.stored_bytes > hi.raw_bytes)) {
        snprintf(why, cap, "automatic encodings larger than raw");
        goto out;
    }
    for (int e = 0; e < 4; e++)
        enc_seen[e] += hi.by_encoding[e];
    if (hpcz_onnx_serialize(m2, NULL, &back, &back_len, &err)) {
        snprintf(why, cap, "onnx write: %s", err.msg);
        goto out;
    }
    if (!canon_equal(orig, orig_len, back, back_len)) {
        snprintf(why, cap, "differs after .hpcz and back (encoding %s)",
                 encoding ? encoding : "auto");
        goto out;
    }
    if (hpcz_hpcz_serialize(m2, &ho, &hz3, &hz3_len, &err) || hz3_len != hz_len ||
        memcmp(hz, hz3, hz_len)) {
        snprintf(why, cap, ".hpcz -> .hpcz is not the same bytes");
        goto out;
    }
    /* table fields seen (FORMAT.md "field") */
    for (size_t i = 0; i < m2->graph->n_inits; i++) {
        hpcz_hpcz_tensor_info ti;
        if (hpcz_hpcz_tensor_storage(m2->graph->inits[i], &ti) && ti.field >= 0 && ti.field < 6)
            field_seen[ti.field]++;
    }
    ok = true;
out:
    free(hz);
    free(hz2);
    free(hz3);
    free(back);
    hpcz_model_free(m2);
    hpcz_model_free(m);
    return ok;
}

static bool roundtrip_file(const char *path, const char *encoding, char *why, size_t cap)
{
    hpcz_error err;
    uint8_t *buf;
    size_t len;
    if (hpcz_file_read(path, UINT64_MAX, &buf, &len, &err)) {
        snprintf(why, cap, "read: %s", err.msg);
        return false;
    }
    bool ok = roundtrip(buf, len, encoding, why, cap);
    free(buf);
    return ok;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ------------------------------------------------------------ conformance */

static int test_suite(const char *suite)
{
    char node_dir[4096];
    snprintf(node_dir, sizeof node_dir, "%s/node", suite);
    DIR *d = opendir(node_dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int ok = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        char path[8704], why[1200] = "";
        snprintf(path, sizeof path, "%s/%s/model.onnx", node_dir, names[i]);
        /* automatic choice for every model, plus one forced encoding in turn */
        const char *forced = encodings[1 + i % 4];
        if (roundtrip_file(path, NULL, why, sizeof why) &&
            roundtrip_file(path, forced, why, sizeof why)) {
            ok++;
        } else {
            printf("FAIL model %s: %s\n", names[i], why);
            bad++;
        }
        free(names[i]);
    }
    free(names);
    printf("conformance: %d of %d models equal after .onnx -> .hpcz -> .onnx\n", ok, ok + bad);
    n_pass += ok;
    n_fail += bad;
    return ok + bad;
}

static void test_samples(const char *root)
{
    const char *rel[] = {"samples/digits_cnn.onnx", "samples/digits_mlp.onnx"};
    int count = 0;
    char path[4096], why[1200];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", root, rel[i]);
        for (size_t k = 0; k < 5; k++) {
            CHECK(roundtrip_file(path, encodings[k], why, sizeof why), "%s: %s", rel[i], why);
            count++;
        }
    }
    snprintf(path, sizeof path, "%s/samples/patterns", root);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".onnx"))
            continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        for (size_t k = 0; k < 5; k++) {
            CHECK(roundtrip_file(p, encodings[k], why, sizeof why), "%s: %s", e->d_name, why);
            count++;
        }
    }
    if (d)
        closedir(d);
    printf("samples: %d round trips\n", count);
}

/* ------------------------------------------------------------ typed fields */

/* One initializer per TensorProto field a payload can come from. */
static void test_fields(void)
{
    static float f32[64];
    static int32_t i8_as_i32[64], i4_as_i32[32];
    static int64_t i64[64];
    static double f64[64];
    static uint64_t u64[64], u32_as_u64[64];
    static float c64[128];
    static uint8_t raw[64 * 2];
    for (int i = 0; i < 64; i++) {
        f32[i] = i % 3 ? 0.0f : (float)i - 20.5f;
        i8_as_i32[i] = (i % 5) - 2; /* negative values sign-extended, as onnx writes them */
        i64[i] = (int64_t)i * -1000003;
        f64[i] = i % 2 ? 0.0 : 1.0 / (i + 1);
        u64[i] = (uint64_t)i << 40;
        u32_as_u64[i] = 4000000000u - (uint64_t)i;
        raw[2 * i] = (uint8_t)i;
        raw[2 * i + 1] = 0x3c;
    }
    for (int i = 0; i < 32; i++)
        i4_as_i32[i] = i % 4 ? 0x21 : 0;
    for (int i = 0; i < 128; i++)
        c64[i] = (float)(i % 7);
    int64_t d64[1] = {64}, d32[2] = {8, 8}, d4[1] = {64};
    struct {
        const char *name;
        int dtype;
        int64_t *dims;
        size_t ndim;
        int field;
        void *data;
        size_t count;
    } spec[] = {
        {"f_float", HPCZ_DTYPE_FLOAT, d64, 1, 1, f32, 64},
        {"f_int8", HPCZ_DTYPE_INT8, d32, 2, 2, i8_as_i32, 64},
        {"f_int4", HPCZ_DTYPE_INT4, d4, 1, 2, i4_as_i32, 32},
        {"f_int64", HPCZ_DTYPE_INT64, d64, 1, 3, i64, 64},
        {"f_double", HPCZ_DTYPE_DOUBLE, d64, 1, 4, f64, 64},
        {"f_uint64", HPCZ_DTYPE_UINT64, d64, 1, 5, u64, 64},
        {"f_uint32", HPCZ_DTYPE_UINT32, d64, 1, 5, u32_as_u64, 64},
        {"f_complex64", HPCZ_DTYPE_COMPLEX64, d64, 1, 1, c64, 128},
        {"f_raw_fp16", HPCZ_DTYPE_FLOAT16, d64, 1, 0, raw, 128},
    };
    enum { N = sizeof spec / sizeof spec[0] };
    Onnx__TensorProto tps[N], *ptrs[N];
    for (size_t i = 0; i < N; i++) {
        Onnx__TensorProto *t = &tps[i];
        onnx__tensor_proto__init(t);
        t->name = (char *)spec[i].name;
        t->has_data_type = 1;
        t->data_type = spec[i].dtype;
        t->n_dims = spec[i].ndim;
        t->dims = spec[i].dims;
        switch (spec[i].field) {
        case 0:
            t->has_raw_data = 1;
            t->raw_data.data = spec[i].data;
            t->raw_data.len = spec[i].count;
            break;
        case 1:
            t->n_float_data = spec[i].count;
            t->float_data = spec[i].data;
            break;
        case 2:
            t->n_int32_data = spec[i].count;
            t->int32_data = spec[i].data;
            break;
        case 3:
            t->n_int64_data = spec[i].count;
            t->int64_data = spec[i].data;
            break;
        case 4:
            t->n_double_data = spec[i].count;
            t->double_data = spec[i].data;
            break;
        default:
            t->n_uint64_data = spec[i].count;
            t->uint64_data = spec[i].data;
        }
        ptrs[i] = t;
    }
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = (char *)"fields";
    g.n_initializer = N;
    g.initializer = ptrs;
    Onnx__OperatorSetIdProto op, *ops[1] = {&op};
    onnx__operator_set_id_proto__init(&op);
    op.domain = (char *)"";
    op.has_version = 1;
    op.version = 21;
    Onnx__ModelProto mp;
    onnx__model_proto__init(&mp);
    mp.has_ir_version = 1;
    mp.ir_version = 10;
    mp.n_opset_import = 1;
    mp.opset_import = ops;
    mp.graph = &g;
    size_t len = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(len);
    onnx__model_proto__pack(&mp, buf);
    char why[1200];
    unsigned long before[6];
    memcpy(before, field_seen, sizeof before);
    for (size_t k = 0; k < 5; k++)
        CHECK(roundtrip(buf, len, encodings[k], why, sizeof why), "typed fields, %s: %s",
              encodings[k] ? encodings[k] : "auto", why);
    for (int f = 0; f < 6; f++)
        CHECK(field_seen[f] > before[f], "field %d never stored in the table", f);
    free(buf);
}

/* ------------------------------------------------------------ encoding choice */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static hpcz_tensor *add_tensor(hpcz_model *m, const char *name, int dtype, int64_t n)
{
    hpcz_error err;
    hpcz_tensor *t = hpcz_tensor_new(m, name, dtype, 1, &n);
    if (!t || !hpcz_tensor_alloc(t) || hpcz_graph_add_initializer(m->graph, t, &err))
        abort();
    return t;
}

/* The model the choice and corruption tests use. */
static hpcz_model *choice_model(void)
{
    hpcz_model *m = hpcz_model_new();
    float *sp = add_tensor(m, "sparse90", HPCZ_DTYPE_FLOAT, 65536)->data;
    for (int i = 0; i < 65536; i++)
        sp[i] = next_rand() % 10 == 0 ? (float)(next_rand() % 1000) / 7.0f - 70.0f : 0.0f;
    uint32_t *rnd = add_tensor(m, "random", HPCZ_DTYPE_FLOAT, 16384)->data;
    for (int i = 0; i < 16384; i++)
        rnd[i] = next_rand() ^ (next_rand() << 16);
    float *c = add_tensor(m, "constant", HPCZ_DTYPE_FLOAT, 16384)->data;
    for (int i = 0; i < 16384; i++)
        c[i] = 0.25f;
    int8_t *q = add_tensor(m, "int8_random", HPCZ_DTYPE_INT8, 4096)->data;
    for (int i = 0; i < 4096; i++)
        q[i] = (int8_t)next_rand();
    float *small = add_tensor(m, "small", HPCZ_DTYPE_FLOAT, 4)->data;
    small[0] = 1.0f;
    return m;
}

static const hpcz_tensor *find_init(const hpcz_model *m, const char *name)
{
    for (size_t i = 0; i < m->graph->n_inits; i++)
        if (!strcmp(m->graph->inits[i]->name, name))
            return m->graph->inits[i];
    return NULL;
}

static int encoding_of(const hpcz_model *m, const char *name, uint64_t *stored)
{
    hpcz_hpcz_tensor_info ti;
    const hpcz_tensor *t = find_init(m, name);
    if (!t || !hpcz_hpcz_tensor_storage(t, &ti))
        return -1;
    if (stored)
        *stored = ti.stored_bytes;
    return ti.encoding;
}

static bool same_data(hpcz_model *a, hpcz_model *b)
{
    hpcz_error err;
    for (size_t i = 0; i < a->graph->n_inits; i++) {
        hpcz_tensor *x = a->graph->inits[i], *y = (hpcz_tensor *)find_init(b, x->name);
        if (!y || x->nbytes != hpcz_dtype_nbytes(y->dtype, y->numel))
            return false;
        const void *dx = hpcz_tensor_data(x, &err), *dy = hpcz_tensor_data(y, &err);
        if (!dx || !dy || memcmp(dx, dy, x->nbytes))
            return false;
    }
    return true;
}

static void test_choice(uint8_t **file, size_t *file_len)
{
    hpcz_error err;
    hpcz_model *m = choice_model();
    uint8_t *buf;
    size_t len;
    CHECK(!hpcz_hpcz_serialize(m, NULL, &buf, &len, &err), "serialize: %s", err.msg);
    hpcz_model *r = hpcz_hpcz_load_buffer(buf, len, 1, 0, NULL, &err);
    CHECK(r != NULL, "load: %s", err.msg);
    if (!r) {
        hpcz_model_free(m);
        free(buf);
        return;
    }
    uint64_t st = 0;
    int e = encoding_of(r, "sparse90", &st);
    CHECK((e == HPCZ_HPCZ_ENC_SPARSE || e == HPCZ_HPCZ_ENC_SPARSE_ZSTD) && st < 65536 * 4 / 4,
          "90%%-zero tensor: %s, %llu bytes", hpcz_hpcz_encoding_name(e),
          (unsigned long long)st);
    e = encoding_of(r, "random", &st);
    CHECK(e == HPCZ_HPCZ_ENC_RAW && st == 16384 * 4, "random: %s", hpcz_hpcz_encoding_name(e));
    e = encoding_of(r, "constant", &st);
    CHECK(e == HPCZ_HPCZ_ENC_ZSTD && st < 1024, "constant: %s, %llu bytes",
          hpcz_hpcz_encoding_name(e), (unsigned long long)st);
    e = encoding_of(r, "int8_random", NULL);
    CHECK(e == HPCZ_HPCZ_ENC_RAW, "int8 random: %s", hpcz_hpcz_encoding_name(e));
    CHECK(encoding_of(r, "small", NULL) == -1, "a 16-byte tensor stays inline");
    CHECK(same_data(m, r), "payloads differ after the round trip");
    /* raw payloads are borrowed from the buffer, 64-byte aligned in the file */
    const hpcz_tensor *rt = find_init(r, "random");
    hpcz_hpcz_tensor_info ti;
    CHECK(rt && hpcz_hpcz_tensor_storage(rt, &ti) && ti.offset % 64 == 0, "raw payload offset");
    hpcz_model_free(r);

    /* without zstd: the constant stays raw, the sparse one is plain sparse */
    hpcz_hpcz_opts nz = {.zstd_level = -1};
    uint8_t *b2;
    size_t l2;
    CHECK(!hpcz_hpcz_serialize(m, &nz, &b2, &l2, &err), "serialize: %s", err.msg);
    r = hpcz_hpcz_load_buffer(b2, l2, 0, 0, NULL, &err);
    CHECK(r && encoding_of(r, "constant", NULL) == HPCZ_HPCZ_ENC_RAW &&
              encoding_of(r, "sparse90", NULL) == HPCZ_HPCZ_ENC_SPARSE,
          "no zstd");
    CHECK(r && same_data(m, r), "payloads differ (no zstd)");
    hpcz_model_free(r);
    free(b2);
    /* a higher level is still lossless */
    hpcz_hpcz_opts hi = {.zstd_level = 19};
    CHECK(!hpcz_hpcz_serialize(m, &hi, &b2, &l2, &err) && l2 <= len, "level 19: %zu > %zu", l2,
          len);
    free(b2);
    hpcz_hpcz_opts bad = {.encoding = "lz4"};
    CHECK(hpcz_hpcz_serialize(m, &bad, &b2, &l2, &err) == HPCZ_ERR_USAGE, "unknown encoding");

    /* determinism: file and buffer writers agree, and repeat */
    char path[] = "/tmp/test_hpcz_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(!hpcz_hpcz_save(m, path, NULL, &err), "save: %s", err.msg);
    uint8_t *disk;
    size_t disk_len;
    CHECK(!hpcz_file_read(path, UINT64_MAX, &disk, &disk_len, &err) && disk_len == len &&
              !memcmp(disk, buf, len),
          "file and buffer differ");
    free(disk);
    /* the sniffing loader reads it by magic, through mmap */
    r = hpcz_model_load(path, NULL, &err);
    CHECK(r && !strcmp(hpcz_model_format(r), "hpcz") && r->file_size == len &&
              same_data(m, r),
          "hpcz_model_load: %s", r ? "data" : err.msg);
    /* and back to ONNX, through hpcz_model_save choosing by extension */
    char onnx_path[64];
    snprintf(onnx_path, sizeof onnx_path, "%s.onnx", path);
    CHECK(r && !hpcz_model_save(r, onnx_path, HPCZ_FORMAT_AUTO, NULL, NULL, &err), "save onnx");
    hpcz_model *o = hpcz_model_load(onnx_path, NULL, &err);
    CHECK(o && !strcmp(hpcz_model_format(o), "onnx") && same_data(m, o), "onnx back");
    hpcz_save_opts ext = {.external = 1};
    CHECK(hpcz_model_save(m, "x.hpcz", HPCZ_FORMAT_AUTO, &ext, NULL, &err) == HPCZ_ERR_USAGE,
          "external data with .hpcz");
    CHECK(hpcz_format_from_path("a/b.hpcz") == HPCZ_FORMAT_HPCZ &&
              hpcz_format_from_path("b.onnx") == HPCZ_FORMAT_ONNX &&
              hpcz_format_from_path("-") == HPCZ_FORMAT_ONNX,
          "format from path");
    hpcz_model_free(o);
    hpcz_model_free(r);
    unlink(path);
    unlink(onnx_path);
    hpcz_model_free(m);
    *file = buf;
    *file_len = len;
}

/* ------------------------------------------------------------ corruption */

static void expect_fail(const uint8_t *f, size_t len, const char *want, const char *what)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_hpcz_load_buffer(f, len, 1, 0, NULL, &err);
    CHECK(!m && strstr(err.msg, want) && !strchr(err.msg, '\n'), "%s: %s (wanted '%s')", what,
          m ? "accepted" : err.msg, want);
    hpcz_model_free(m);
}

static void expect_ok(const uint8_t *f, size_t len, const char *what)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_hpcz_load_buffer(f, len, 1, 0, NULL, &err);
    CHECK(m != NULL, "%s: %s", what, err.msg);
    hpcz_model_free(m);
}

static void test_corruption(const uint8_t *good, size_t len)
{
    uint8_t *f = malloc(len + 1);
#define RESET() memcpy(f, good, len)
    expect_ok(good, len, "intact file");
    CHECK(!memcmp(good, "HPCZ", 4) && rd16(good + 4) == 1 && rd16(good + 6) == 0 &&
              rd32(good + 8) == 0 && rd16(good + 12) == 64 && rd16(good + 14) == 40 &&
              rd64(good + 16) == len && rd64(good + 24) == 64 && rd64(good + 40) % 8 == 0 &&
              rd32(good + 48) == 4,
          "header fields as FORMAT.md says");
    uint64_t toff = rd64(good + 40);
    uint32_t tlen = rd32(good + 52);
    CHECK(toff >= 64 + rd64(good + 32) && toff + tlen <= len && tlen == 4 * (40 + 8),
          "table placement");

    RESET();
    f[0] = 'X';
    expect_fail(f, len, "bad magic", "bad magic");
    expect_fail(f, 0, "bad magic", "empty");
    RESET();
    wr16(f + 4, 2);
    expect_fail(f, len, "unsupported .hpcz version 2.0", "major 2");
    RESET();
    wr16(f + 6, 7); /* a newer minor of the same major reads */
    fix_header_checksum(f);
    expect_ok(f, len, "minor 7");
    RESET();
    wr32(f + 8, 1); /* required flag */
    fix_header_checksum(f);
    expect_fail(f, len, "required flags 0x0001", "required flag");
    RESET();
    wr32(f + 8, 1u << 16); /* optional flag: ignored */
    fix_header_checksum(f);
    expect_ok(f, len, "optional flag");
    RESET();
    wr16(f + 12, 32);
    fix_header_checksum(f);
    expect_fail(f, len, "header size 32", "header size");
    RESET();
    wr16(f + 14, 36);
    fix_header_checksum(f);
    expect_fail(f, len, "entry size 36", "entry size");
    size_t cuts[] = {3, 10, 63, 64, 100, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        expect_fail(good, cuts[i], cuts[i] < 4 ? "bad magic" : "truncated", "truncated");
    RESET();
    f[len] = 0;
    expect_fail(f, len + 1, "the header says", "trailing byte");
    RESET();
    wr64(f + 16, len - 8);
    fix_header_checksum(f);
    expect_fail(f, len, "the header says", "file size");
    RESET();
    wr64(f + 24, 32);
    fix_header_checksum(f);
    expect_fail(f, len, "skeleton", "skeleton offset");
    RESET();
    wr64(f + 32, len);
    fix_header_checksum(f);
    expect_fail(f, len, "skeleton", "skeleton length");
    RESET();
    wr64(f + 40, toff + 4);
    expect_fail(f, len, "tensor table", "table offset misaligned");
    RESET();
    wr32(f + 48, 1000);
    fix_header_checksum(f);
    expect_fail(f, len, "do not fit", "table count");
    RESET();
    wr32(f + 48, 3);
    fix_header_checksum(f);
    expect_fail(f, len, "bad table reference", "an entry fewer");
    RESET();
    wr32(f + 52, tlen - 8);
    fix_header_checksum(f);
    expect_fail(f, len, "past the end of the table", "table length");
    RESET();
    f[64 + 3] ^= 1; /* skeleton byte */
    expect_fail(f, len, "header checksum mismatch", "skeleton flip");
    RESET();
    f[toff + 20] ^= 1; /* table byte */
    expect_fail(f, len, "header checksum mismatch", "table flip");
    RESET();
    f[56] ^= 1; /* the checksum itself */
    expect_fail(f, len, "header checksum mismatch", "checksum flip");
    RESET();
    memset(f + 64, 0xff, 16); /* garbage skeleton with a valid checksum */
    fix_header_checksum(f);
    expect_fail(f, len, "skeleton", "garbage skeleton");

    /* table entries: entry 0 is sparse90, 1 random (raw), 2 constant (zstd), 3 int8 */
    for (uint32_t i = 0; i < 4; i++) {
        uint8_t *e = entry_at((uint8_t *)good, i);
        size_t eo = (size_t)(e - good);
        uint64_t off = rd64(e + 0), stored = rd64(e + 8);
        CHECK(off % 64 == 0 && off + stored <= len && rd16(e + 38) == 1, "entry %u layout", i);
        CHECK(hpcz_hpcz_checksum(good + off, (size_t)stored) == rd64(e + 24),
              "entry %u checksum as FORMAT.md says", i);
        RESET();
        f[off + stored / 2] ^= 0x10;
        expect_fail(f, len, "payload checksum mismatch", "payload flip");
        RESET();
        wr64(f + eo, len + 64 * 4);
        fix_header_checksum(f);
        expect_fail(f, len, "outside the file", "offset past the end");
        RESET();
        wr64(f + eo, off + 8);
        fix_header_checksum(f);
        expect_fail(f, len, "outside the file", "misaligned offset");
        RESET();
        wr64(f + eo, 0);
        fix_header_checksum(f);
        expect_fail(f, len, "outside the file", "offset inside the metadata");
        RESET();
        wr64(f + eo + 8, len);
        fix_header_checksum(f);
        expect_fail(f, len, "outside the file", "stored length");
        RESET();
        wr64(f + eo + 16, (uint64_t)1 << 42);
        fix_header_checksum(f);
        expect_fail(f, len, "raw length", "raw length of terabytes");
        RESET();
        wr64(f + eo + 40, (uint64_t)1 << 41); /* dims claim 2^41 elements */
        fix_header_checksum(f);
        expect_fail(f, len, "bad dimension", "huge dims");
        RESET();
        wr64(f + eo + 40, rd64(f + eo + 40) + 1); /* dims differ from the skeleton's */
        wr64(f + eo + 16, rd64(f + eo + 16) + (i == 3 ? 1 : 4));
        fix_header_checksum(f);
        expect_fail(f, len, "", "dims differ");
        RESET();
        wr32(f + eo + 32, i == 3 ? HPCZ_DTYPE_UINT8 : HPCZ_DTYPE_INT32); /* same size */
        fix_header_checksum(f);
        expect_fail(f, len, "type or shape differs", "dtype differs from the skeleton");
        RESET();
        wr32(f + eo + 32, HPCZ_DTYPE_DOUBLE); /* dtype differs */
        wr64(f + eo + 16, rd64(f + eo + 16) * (i == 3 ? 8 : 2));
        fix_header_checksum(f);
        expect_fail(f, len, "", "dtype differs");
        RESET();
        wr32(f + eo + 32, 9999);
        fix_header_checksum(f);
        expect_fail(f, len, "cannot hold", "unknown dtype");
        RESET();
        f[eo + 36] = 9;
        fix_header_checksum(f);
        expect_fail(f, len, "unknown encoding 9", "encoding");
        RESET();
        f[eo + 37] = 7;
        fix_header_checksum(f);
        expect_fail(f, len, "field 7", "field");
        RESET();
        f[eo + 37] = 3; /* int64_data cannot carry float */
        fix_header_checksum(f);
        expect_fail(f, len, "cannot hold", "field for dtype");
        RESET();
        wr16(f + eo + 38, 65);
        fix_header_checksum(f);
        expect_fail(f, len, "rank 65", "rank");
    }
    /* payloads whose checksum is right but whose content is wrong */
    uint8_t *e0 = entry_at((uint8_t *)good, 0), *e2 = entry_at((uint8_t *)good, 2);
    size_t eo0 = (size_t)(e0 - good), eo2 = (size_t)(e2 - good);
    RESET();
    if (f[eo0 + 36] == 3) { /* sparse-zstd: say it is plain sparse */
        f[eo0 + 36] = 2;
        fix_header_checksum(f);
        expect_fail(f, len, "sparse", "sparse-zstd read as sparse");
    }
    RESET();
    f[eo2 + 36] = 0; /* zstd read as raw */
    fix_header_checksum(f);
    expect_fail(f, len, "cannot hold", "zstd read as raw");
    RESET();
    f[eo2 + 36] = 2; /* zstd read as sparse */
    fix_header_checksum(f);
    expect_fail(f, len, "", "zstd read as sparse");
    RESET();
    {
        uint64_t off = rd64(f + eo2), stored = rd64(f + eo2 + 8);
        f[off + stored - 1] ^= 0x55; /* inside the zstd frame, checksum fixed */
        wr64(f + eo2 + 24, hpcz_hpcz_checksum(f + off, (size_t)stored));
        fix_header_checksum(f);
        expect_fail(f, len, "tensor 'constant'", "bad zstd frame");
    }
    /* one zstd frame shared by two entries (each passes its own ratio check,
     * together they decode to more than the file can hold: a 38 KB file
     * made 64 GiB that way) */
    {
        uint8_t *e1 = entry_at((uint8_t *)good, 1);
        size_t eo1 = (size_t)(e1 - good);
        RESET();
        CHECK(rd64(f + eo1 + 16) == rd64(f + eo2 + 16), "entries 1 and 2 decode to the same size");
        memcpy(f + eo1, f + eo2, 8);           /* offset */
        memcpy(f + eo1 + 8, f + eo2 + 8, 8);   /* stored length */
        memcpy(f + eo1 + 24, f + eo2 + 24, 8); /* checksum */
        f[eo1 + 36] = f[eo2 + 36];             /* zstd */
        fix_header_checksum(f);
        expect_fail(f, len, "zstd payload shares bytes with entry", "a shared zstd frame");
        /* an encoded payload inside a raw one is refused too */
        RESET();
        uint64_t off1 = rd64(f + eo1) + 64, stored2 = rd64(f + eo2 + 8);
        wr64(f + eo2, off1);
        wr64(f + eo2 + 24, hpcz_hpcz_checksum(f + off1, (size_t)stored2));
        fix_header_checksum(f);
        expect_fail(f, len, "shares bytes with entry", "a raw payload over a zstd frame");
    }
    /* the decode budget */
    {
        hpcz_error err;
        hpcz_model *m = hpcz_hpcz_load_buffer(good, len, 0, 1000, NULL, &err);
        CHECK(!m && strstr(err.msg, "above the limit"), "max_decoded: %s", m ? "accepted" : err.msg);
        hpcz_model_free(m);
    }
    /* every single-byte flip outside padding is caught */
    uint64_t first_payload = UINT64_MAX;
    for (uint32_t i = 0; i < 4; i++)
        if (rd64(entry_at((uint8_t *)good, i)) < first_payload)
            first_payload = rd64(entry_at((uint8_t *)good, i));
    size_t caught = 0, tried = 0;
    for (size_t pos = 0; pos < len; pos += (pos < first_payload ? 1 : 97)) {
        bool padding = pos >= toff + tlen && pos < first_payload;
        for (uint32_t i = 0; i < 4 && !padding; i++) {
            uint8_t *e = entry_at((uint8_t *)good, i);
            uint64_t end = rd64(e) + rd64(e + 8);
            padding = pos >= end && pos < (end + 63) / 64 * 64;
        }
        if (padding)
            continue;
        RESET();
        f[pos] ^= 0x01;
        hpcz_error err;
        hpcz_model *m = hpcz_hpcz_load_buffer(f, len, 1, 0, NULL, &err);
        tried++;
        caught += m == NULL;
        hpcz_model_free(m);
    }
    CHECK(caught == tried, "byte flips: %zu of %zu caught", caught, tried);
    printf("corruption: %zu single-byte flips caught\n", caught);
#undef RESET
    free(f);
}

static void test_checksum(void)
{
    /* pinned: the checksum is part of the format */
    CHECK(hpcz_hpcz_checksum("", 0) == 0x21e1b2b8c29012a9ull, "checksum(\"\") = %016llx",
          (unsigned long long)hpcz_hpcz_checksum("", 0));
    CHECK(hpcz_hpcz_checksum("abc", 3) == 0xa73c05dbb195112eull, "checksum(\"abc\") = %016llx",
          (unsigned long long)hpcz_hpcz_checksum("abc", 3));
    uint8_t big[100];
    for (int i = 0; i < 100; i++)
        big[i] = (uint8_t)i;
    CHECK(hpcz_hpcz_checksum(big, 100) == 0xb31796bb5ae4e935ull, "checksum(0..99) = %016llx",
          (unsigned long long)hpcz_hpcz_checksum(big, 100));
    CHECK(!strcmp(hpcz_hpcz_encoding_name(3), "sparse-zstd") &&
              !strcmp(hpcz_hpcz_encoding_name(7), "?"),
          "encoding names");
}

/* Writes small .hpcz files, one per encoding, as a fuzzing seed corpus:
 *   test_hpcz --seeds OUT_DIR MODEL.onnx... */
static int write_seeds(int argc, char **argv)
{
    int count = 0;
    for (int i = 3; i < argc; i++) {
        hpcz_error err;
        hpcz_model *m = hpcz_onnx_load(argv[i], NULL, &err);
        if (!m) {
            fprintf(stderr, "%s: %s\n", argv[i], err.msg);
            return 1;
        }
        for (size_t k = 0; k < 5; k++) {
            hpcz_hpcz_opts ho = {.inline_max = 1, .encoding = encodings[k]};
            char path[4096];
            const char *base = strrchr(argv[i], '/');
            snprintf(path, sizeof path, "%s/%d-%s.hpcz", argv[2], i - 2,
                     encodings[k] ? encodings[k] : "auto");
            if (hpcz_hpcz_save(m, path, &ho, &err)) {
                fprintf(stderr, "%s: %s\n", path, err.msg);
                return 1;
            }
            (void)base;
            count++;
        }
        hpcz_model_free(m);
    }
    printf("wrote %d seeds\n", count);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--seeds"))
        return write_seeds(argc, argv);
    if (argc < 3) {
        fprintf(stderr, "usage: %s SUITE_DIR SOURCE_ROOT\n", argv[0]);
        return 2;
    }
    test_checksum();
    test_fields();
    uint8_t *file = NULL;
    size_t len = 0;
    test_choice(&file, &len);
    if (file)
        test_corruption(file, len);
    free(file);
    test_samples(argv[2]);
    int models = test_suite(argv[1]);
    printf("encodings chosen or forced: raw %lu, zstd %lu, sparse %lu, sparse-zstd %lu\n",
           enc_seen[0], enc_seen[1], enc_seen[2], enc_seen[3]);
    printf("fields: raw_data %lu, float_data %lu, int32_data %lu, int64_data %lu, double_data "
           "%lu, uint64_data %lu\n",
           field_seen[0], field_seen[1], field_seen[2], field_seen[3], field_seen[4],
           field_seen[5]);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    if (!models && !n_fail) {
        printf("SKIP: ONNX node conformance suite not found at %s/node\n", argv[1]);
        return 77;
    }
    return n_fail ? 1 : 0;
}
