/*
 * quant.c - QuantizeLinear, DequantizeLinear (per tensor, per axis,
 * blocked) and DynamicQuantizeLinear.
 */
#include "../rt.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define Q_X86 1
#endif

/* ---- fast paths: float32 <-> uint8/int8 with a per-tensor scale and zero
 * point, in fixed chunks on the thread pool (elementwise: any split gives
 * the same bytes). Same arithmetic as the generic loops below:
 * Q: clamp(rint(x / s) + zp) (ties to even); DQ: (float)(q - zp) * s. */
typedef struct qfast {
    const void *src;
    void *dst;
    int64_t n;
    float s;
    int32_t zp;
    bool u8;
} qfast;

#define QF_CHUNK 16384

static void quant_scalar(const qfast *j, int64_t i0, int64_t i1)
{
    const float *x = j->src;
    float lo = j->u8 ? 0.f : -128.f, hi = j->u8 ? 255.f : 127.f;
    for (int64_t i = i0; i < i1; i++) {
        float v = nearbyintf(x[i] / j->s) + (float)j->zp;
        v = v < lo ? lo : v > hi ? hi : v;
        if (j->u8)
            ((uint8_t *)j->dst)[i] = (uint8_t)v;
        else
            ((int8_t *)j->dst)[i] = (int8_t)v;
    }
}

static void dequant_scalar(const qfast *j, int64_t i0, int64_t i1)
{
    float *y = j->dst;
    for (int64_t i = i0; i < i1; i++) {
        int32_t q = j->u8 ? ((const uint8_t *)j->src)[i] : ((const int8_t *)j->src)[i];
        y[i] = (float)(q - j->zp) * j->s;
    }
}

#ifdef Q_X86
__attribute__((target("avx2"))) static void quant_avx2(const qfast *j, int64_t i0, int64_t i1)
{
    const float *x = j->src;
    __m256 s = _mm256_set1_ps(j->s), zp = _mm256_set1_ps((float)j->zp);
    __m256 lo = _mm256_set1_ps(j->u8 ? 0.f : -128.f), hi = _mm256_set1_ps(j->u8 ? 255.f : 127.f);
    int64_t i = i0;
    for (; i + 16 <= i1; i += 16) {
        __m256i q[2];
        for (int h = 0; h < 2; h++) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i + 8 * h), s);
            v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v = _mm256_add_ps(v, zp);
            v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
            q[h] = _mm256_cvtps_epi32(v);
        }
        __m128i a = _mm_packs_epi32(_mm256_castsi256_si128(q[0]), _mm256_extracti128_si256(q[0], 1));
        __m128i b = _mm_packs_epi32(_mm256_castsi256_si128(q[1]), _mm256_extracti128_si256(q[1], 1));
        __m128i r = j->u8 ? _mm_packus_epi16(a, b) : _mm_packs_epi16(a, b);
        _mm_storeu_si128((__m128i *)((uint8_t *)j->dst + i), r);
    }
    quant_scalar(j, i, i1);
}

__attribute__((target("avx2"))) static void dequant_avx2(const qfast *j, int64_t i0, int64_t i1)
{
    float *y = j->dst;
    __m256 s = _mm256_set1_ps(j->s);
    __m256i zp = _mm256_set1_epi32(j->zp);
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)((const uint8_t *)j->src + i));
        __m256i q = j->u8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)), s);
        _mm256_storeu_ps(y + i, v);
    }
    dequant_scalar(j, i, i1);
}
#endif

static bool have_avx2(void)
{
#ifdef Q_X86
    static int v = -1;
    if (v < 0)
        v = __builtin_cpu_supports("avx2") ? 1 : 0;
    return v == 1;
#else
    return false;
#endif
}

static void quant_task(void *ctx, int64_t t)
{
    const qfast *j = ctx;
    int64_t i0 = t * QF_CHUNK, i1 = i0 + QF_CHUNK < j->n ? i0 + QF_CHUNK : j->n;
#ifdef Q_X86
    if (have_avx2()) {
        quant_avx2(j, i0, i1);
        return;
    }
#endif
    quant_scalar(j, i0, i1);
}

void rt_quantize_f32(const float *x, void *y, int64_t n, float s, int32_t zp, bool u8)
{
    qfast j = {x, y, n, s, zp, u8};
#ifdef Q_X86
    if (have_avx2()) {
        quant_avx2(&j, 0, n);
        return;
    }
#endif
    quant_scalar(&j, 0, n);
}

static void dequant_task(void *ctx, int64_t t)
{
    const qfast *j = ctx;
    int64_t i0 = t * QF_CHUNK, i1 = i0 + QF_CHUNK < j->n ? i0 + QF_CHUNK : j->n;
#ifdef Q_X86
    if (have_avx2()) {
        dequant_avx2(j, i0, i1);
        return;
    }
#endif
    dequant_scalar(j, i0, i1);
}

/* The fast path applies: float32 side, per-tensor float32 scale, u8/s8 side. */
static bool qfast_ok(const rt_ctx *c, const hpcz_array *fl, const hpcz_array *s,
                     const hpcz_array *zp, int qdt)
{
    return !c->reference && fl->dtype == HPCZ_DTYPE_FLOAT && s->dtype == HPCZ_DTYPE_FLOAT &&
           s->numel == 1 && rt_attr_i(c, "block_size", 0) <= 0 &&
           (qdt == HPCZ_DTYPE_UINT8 || qdt == HPCZ_DTYPE_INT8) && (!zp || zp->numel == 1);
}

#ifdef Q_X86
/* Running min and max from 0 (NaN skipped, as the scalar comparisons skip
 * it: vminps returns its second operand when one is NaN) over whole groups
 * of 8; returns how many it covered. */
__attribute__((target("avx2"))) static int64_t minmax_avx2(const float *x, int64_t n, float *mn,
                                                           float *mx)
{
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        lo = _mm256_min_ps(v, lo);
        hi = _mm256_max_ps(v, hi);
    }
    float l[8], h[8];
    _mm256_storeu_ps(l, lo);
    _mm256_storeu_ps(h, hi);
    for (int k = 0; k < 8; k++) {
        *mn = l[k] < *mn ? l[k] : *mn;
        *mx = h[k] > *mx ? h[k] : *mx;
    }
    return i;
}
#endif

static void qfast_run(const qfast *j, rt_task_fn fn)
{
    int64_t nt = (j->n + QF_CHUNK - 1) / QF_CHUNK;
    rt_parallel_for_work(nt, fn, (void *)j, (double)j->n * 4);
}

static bool qrange(int dt, double *lo, double *hi)
{
    switch (dt) {
    case HPCZ_DTYPE_INT8: *lo = -128; *hi = 127; return true;
    case HPCZ_DTYPE_UINT8: *lo = 0; *hi = 255; return true;
    case HPCZ_DTYPE_INT16: *lo = -32768; *hi = 32767; return true;
    case HPCZ_DTYPE_UINT16: *lo = 0; *hi = 65535; return true;
    case HPCZ_DTYPE_INT32: *lo = -2147483648.0; *hi = 2147483647.0; return true;
    case HPCZ_DTYPE_INT4: *lo = -8; *hi = 7; return true;
    case HPCZ_DTYPE_UINT4: *lo = 0; *hi = 15; return true;
    default: return false;
    }
}

/* Index into scale/zero point for element i of x: per tensor, per axis or
 * per block along axis. */
typedef struct qmap {
    int mode; /* 0 tensor, 1 axis, 2 blocked */
    int64_t inner, len, block, nblk;
} qmap;

static bool qmap_init(rt_ctx *c, const hpcz_array *x, const hpcz_array *s, qmap *m)
{
    memset(m, 0, sizeof *m);
    if (s->numel == 1 && rt_attr_i(c, "block_size", 0) <= 0)
        return true; /* per tensor (a per-axis [1] scale is the same thing) */
    int axis = rt_axis(rt_attr_i(c, "axis", 1), x->ndim);
    if (axis < 0)
        return false;
    m->len = x->dims[axis];
    m->inner = 1;
    for (int d = axis + 1; d < x->ndim; d++)
        m->inner *= x->dims[d];
    int64_t bs = rt_attr_i(c, "block_size", 0);
    if (bs > 0) {
        if (s->ndim != x->ndim)
            return false;
        m->mode = 2;
        m->block = bs;
        m->nblk = s->dims[axis];
        if (m->nblk != (m->len + bs - 1) / bs)
            return false;
        for (int d = 0; d < x->ndim; d++)
            if (d != axis && s->dims[d] != x->dims[d])
                return false;
        return true;
    }
    if (s->ndim != 1 || s->dims[0] != m->len)
        return false;
    m->mode = 1;
    return true;
}

static inline int64_t qidx(const qmap *m, int64_t i)
{
    if (m->mode == 0)
        return 0;
    int64_t a = (i / m->inner) % m->len;
    if (m->mode == 1)
        return a;
    int64_t outer = i / (m->inner * m->len), in = i % m->inner;
    return (outer * m->nblk + a / m->block) * m->inner + in;
}

static hpcz_status k_quantize(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *s = rt_in(c, 1), *zp = rt_in(c, 2);
    if (!hpcz_dtype_is_float(x->dtype) || x->dtype == HPCZ_DTYPE_BFLOAT16 || !s)
        return rt_unsupported(c);
    int odt = zp ? zp->dtype : (int)rt_attr_i(c, "output_dtype", HPCZ_DTYPE_UINT8);
    if (!odt)
        odt = HPCZ_DTYPE_UINT8;
    double lo, hi;
    if (!qrange(odt, &lo, &hi) || odt == HPCZ_DTYPE_INT32 || odt == HPCZ_DTYPE_INT4 ||
        odt == HPCZ_DTYPE_UINT4)
        return rt_unsupported(c); /* packed 4-bit outputs: not written by this kernel */
    qmap m;
    if (!qmap_init(c, x, s, &m))
        return rt_bad(c, "scale shape does not match axis/block_size");
    hpcz_array *y = rt_out(c, 0, odt, x->ndim, x->dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    if (qfast_ok(c, x, s, zp, odt)) {
        qfast j = {x->data, y->data, x->numel, *(const float *)s->data,
                   zp ? (int32_t)rt_load_i(zp->data, zp->dtype, 0) : 0,
                   odt == HPCZ_DTYPE_UINT8};
        qfast_run(&j, quant_task);
        return HPCZ_OK;
    }
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t q = qidx(&m, i);
        /* the reference divides in the input's precision */
        double sc = rt_load_d(s->data, s->dtype, q);
        double v;
        if (x->dtype == HPCZ_DTYPE_FLOAT || x->dtype == HPCZ_DTYPE_FLOAT16)
            v = nearbyintf((float)rt_load_d(x->data, x->dtype, i) / (float)sc);
        else
            v = nearbyint(rt_load_d(x->data, x->dtype, i) / sc);
        v += zp ? (double)rt_load_i(zp->data, zp->dtype, q) : 0;
        v = v < lo ? lo : v > hi ? hi : v;
        rt_store_i(y->data, odt, i, (int64_t)v);
    }
    return HPCZ_OK;
}

/* Integer element i, including packed 4-bit types (element 0 in the low nibble). */
static inline int64_t load_q(const void *buf, int dtype, int64_t i)
{
    if (dtype == HPCZ_DTYPE_INT4 || dtype == HPCZ_DTYPE_UINT4) {
        int v = (((const uint8_t *)buf)[i / 2] >> (4 * (i & 1))) & 0xf;
        return dtype == HPCZ_DTYPE_INT4 && v >= 8 ? v - 16 : v;
    }
    return rt_load_i(buf, dtype, i);
}

static hpcz_status k_dequantize(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *s = rt_in(c, 1), *zp = rt_in(c, 2);
    double lo, hi;
    if (!qrange(x->dtype, &lo, &hi) || !s || !hpcz_dtype_is_float(s->dtype) ||
        s->dtype == HPCZ_DTYPE_BFLOAT16)
        return rt_unsupported(c);
    int odt = (int)rt_attr_i(c, "output_dtype", 0);
    if (!odt)
        odt = s->dtype;
    qmap m;
    if (!qmap_init(c, x, s, &m))
        return rt_bad(c, "scale shape does not match axis/block_size");
    hpcz_array *y = rt_out(c, 0, odt, x->ndim, x->dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    if (qfast_ok(c, y, s, zp, x->dtype) && (!zp || zp->dtype == x->dtype)) {
        qfast j = {x->data, y->data, x->numel, *(const float *)s->data,
                   zp ? (int32_t)rt_load_i(zp->data, zp->dtype, 0) : 0,
                   x->dtype == HPCZ_DTYPE_UINT8};
        qfast_run(&j, dequant_task);
        return HPCZ_OK;
    }
    if (m.mode == 1 && odt == HPCZ_DTYPE_FLOAT && s->dtype == HPCZ_DTYPE_FLOAT &&
        (x->dtype == HPCZ_DTYPE_INT8 || x->dtype == HPCZ_DTYPE_UINT8) &&
        (!zp || zp->dtype == x->dtype)) {
        /* per axis, 8-bit (the weights of per-channel models): runs of
         * `inner` elements share a scale and zero point */
        const float *sd = s->data;
        float *yd = y->data;
        bool u8 = x->dtype == HPCZ_DTYPE_UINT8;
        for (int64_t i0 = 0, run = 0; i0 < x->numel; i0 += m.inner, run++) {
            int64_t a = run % m.len;
            float sc = sd[a];
            int32_t z = zp ? (u8 ? ((const uint8_t *)zp->data)[a] : ((const int8_t *)zp->data)[a]) : 0;
            if (u8) {
                const uint8_t *xs = (const uint8_t *)x->data + i0;
                for (int64_t i = 0; i < m.inner; i++)
                    yd[i0 + i] = (float)((int32_t)xs[i] - z) * sc;
            } else {
                const int8_t *xs = (const int8_t *)x->data + i0;
                for (int64_t i = 0; i < m.inner; i++)
                    yd[i0 + i] = (float)((int32_t)xs[i] - z) * sc;
            }
        }
        return HPCZ_OK;
    }
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t q = qidx(&m, i);
        int64_t v = load_q(x->data, x->dtype, i) - (zp ? load_q(zp->data, zp->dtype, q) : 0);
        float r = (float)v * (float)rt_load_d(s->data, s->dtype, q);
        rt_store_d(y->data, odt, i, r);
    }
    return HPCZ_OK;
}

static hpcz_status k_dynquant(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (x->dtype != HPCZ_DTYPE_FLOAT)
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_UINT8, x->ndim, x->dims);
    hpcz_array *ys = rt_out(c, 1, HPCZ_DTYPE_FLOAT, 0, NULL);
    hpcz_array *yz = rt_out(c, 2, HPCZ_DTYPE_UINT8, 0, NULL);
    if ((!y && c->out[0]) || (!ys && c->n_out > 1 && c->out[1]) ||
        (!yz && c->n_out > 2 && c->out[2]))
        return c->err->status;
    if (c->infer)
        return HPCZ_OK;
    const float *xd = x->data;
    float mn = 0, mx = 0;
    int64_t i0 = 0;
#ifdef Q_X86
    if (!c->reference && __builtin_cpu_supports("avx2"))
        i0 = minmax_avx2(xd, x->numel, &mn, &mx);
#endif
    for (int64_t i = i0; i < x->numel; i++) {
        mn = xd[i] < mn ? xd[i] : mn;
        mx = xd[i] > mx ? xd[i] : mx;
    }
    float scale = (mx - mn) / 255.0f;
    float zpf = scale == 0 ? 0 : nearbyintf(-mn / scale);
    zpf = zpf < 0 ? 0 : zpf > 255 ? 255 : zpf;
    if (ys)
        *(float *)ys->data = scale;
    if (yz)
        *(uint8_t *)yz->data = (uint8_t)zpf;
    if (y && scale > 0 && !c->reference) { /* QuantizeLinear's arithmetic exactly */
        qfast j = {xd, y->data, x->numel, scale, (int32_t)zpf, true};
        qfast_run(&j, quant_task);
    } else if (y)
        for (int64_t i = 0; i < x->numel; i++) {
            float v = scale == 0 ? zpf : nearbyintf(xd[i] / scale) + zpf;
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            ((uint8_t *)y->data)[i] = (uint8_t)v;
        }
    return HPCZ_OK;
}

static const rt_op ops[] = {
    {"", "QuantizeLinear", 10, 0, 0, k_quantize, NULL},
    {"", "DequantizeLinear", 10, 0, 0, k_dequantize, NULL},
    {"", "DynamicQuantizeLinear", 11, 0, 0, k_dynquant, NULL},
};

const rt_op_table rt_ops_quant = {ops, HPCZ_ARRAY_SIZE(ops)};
