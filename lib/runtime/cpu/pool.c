/*
 * pool.c - MaxPool, AveragePool, LpPool and their Global forms.
 * One (image, channel) plane per iteration: threads never share an output.
 */
#include "../rt.h"
#include "conv_geom.h"
#include "tr16.h"

enum { POOL_MAX, POOL_AVG, POOL_LP };

static bool pool_geom(rt_ctx *c, const hpcz_array *x, conv_geom *g)
{
    size_t nk;
    const int64_t *ks = rt_attr_ints(c, "kernel_shape", &nk);
    if (!ks || (int)nk != x->ndim - 2)
        return false;
    if (!rt_conv_geom(c, x, ks, false, g))
        return false;
    if (rt_attr_i(c, "ceil_mode", 0) && rt_attr_is(c, "auto_pad", "NOTSET", "NOTSET")) {
        for (int i = 0; i < 3; i++) {
            int64_t ek = (g->k[i] - 1) * g->dil[i] + 1;
            int64_t num = g->in[i] + g->pb[i] + g->pe[i] - ek;
            int64_t o = (num + g->stride[i] - 1) / g->stride[i] + 1;
            /* the last window must start inside the input or the left padding */
            if ((o - 1) * g->stride[i] >= g->in[i] + g->pb[i])
                o--;
            g->out[i] = o;
        }
        g->osize = g->out[0] * g->out[1] * g->out[2];
    }
    return true;
}

/* 2-D float pooling: window bounds clipped once per output row/column
 * instead of testing every tap. */
typedef struct pool_job {
    const float *x;
    float *y;
    const void *xi; /* 8-bit MaxPool */
    void *yi;
    const conv_geom *g;
    bool is_max, include_pad;
} pool_job;

/* Max pooling without dilation: the max over the window's rows first, as
 * one contiguous (vectorizable) pass per input row, then over columns. Max
 * is exact, so the order does not matter. */
RT_HOT static void maxpool2d_plane(const pool_job *j, int64_t pl)
{
    const conv_geom *g = j->g;
    int64_t IH = g->in[1], IW = g->in[2], OH = g->out[1], OW = g->out[2];
    const float *xp = j->x + pl * IH * IW;
    float *yp = j->y + pl * OH * OW;
    float rowmax[4096];
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t h0 = oh * g->stride[1] - g->pb[1];
        int64_t ha = h0 < 0 ? 0 : h0, hb = h0 + g->k[1] < IH ? h0 + g->k[1] : IH;
        for (int64_t iw = 0; iw < IW; iw++)
            rowmax[iw] = -INFINITY;
        for (int64_t ih = ha; ih < hb; ih++) {
            const float *row = xp + ih * IW;
            for (int64_t iw = 0; iw < IW; iw++)
                rowmax[iw] = row[iw] > rowmax[iw] ? row[iw] : rowmax[iw];
        }
        if (g->k[2] == 2 && g->stride[2] == 2 && !g->pb[2] && 2 * OW <= IW) {
            /* pairs of columns (oww_embedding's 2x2 and 1x2 pools): the
             * same comparisons as below, in a loop GCC vectorizes */
            float *yr = yp + oh * OW;
            for (int64_t ow = 0; ow < OW; ow++) {
                float a = rowmax[2 * ow] > -INFINITY ? rowmax[2 * ow] : -INFINITY;
                yr[ow] = rowmax[2 * ow + 1] > a ? rowmax[2 * ow + 1] : a;
            }
            continue;
        }
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w0 = ow * g->stride[2] - g->pb[2];
            int64_t wa = w0 < 0 ? 0 : w0, wb = w0 + g->k[2] < IW ? w0 + g->k[2] : IW;
            float acc = -INFINITY;
            for (int64_t iw = wa; iw < wb; iw++)
                acc = rowmax[iw] > acc ? rowmax[iw] : acc;
            yp[oh * OW + ow] = acc;
        }
    }
}

/* The same for 8-bit integers (max commutes with dequantization, so a
 * quantized MaxPool between DequantizeLinear and QuantizeLinear of the same
 * scale and zero point runs here on the integers; see fuse_qdq). */
/* e[j] = s[2 j], o[j] = s[2 j + 1] for j < n (bytes). */
#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"))) static void split_even_odd_avx2(const uint8_t *s, uint8_t *e,
                                                                uint8_t *o, int64_t n)
{
    const __m256i sh = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                        0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(s + 2 * j)), sh);
        v = _mm256_permute4x64_epi64(v, 0xd8); /* even 16 bytes, then odd 16 */
        _mm_storeu_si128((__m128i *)(e + j), _mm256_castsi256_si128(v));
        _mm_storeu_si128((__m128i *)(o + j), _mm256_extracti128_si256(v, 1));
    }
    for (; j < n; j++) {
        e[j] = s[2 * j];
        o[j] = s[2 * j + 1];
    }
}
#endif

static void split_even_odd(const uint8_t *s, uint8_t *e, uint8_t *o, int64_t n)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        split_even_odd_avx2(s, e, o, n);
        return;
    }
#endif
    for (int64_t j = 0; j < n; j++) {
        e[j] = s[2 * j];
        o[j] = s[2 * j + 1];
    }
}

#define MAXPOOL_ROW 8704

/* Length of the 8-bit MaxPool's padded row (see MAXPOOL2D_INT). */
static int64_t maxpool_row_len(const conv_geom *g)
{
    return g->stride[2] * g->out[2] + g->k[2] + g->stride[2];
}
#define MAXPOOL2D_INT(NAME, T, TMIN)                                                         \
    RT_HOT static void NAME(void *ctx, int64_t pl)                                           \
    {                                                                                        \
        const pool_job *j = ctx;                                                             \
        const conv_geom *g = j->g;                                                           \
        int64_t IH = g->in[1], IW = g->in[2], OH = g->out[1], OW = g->out[2];                \
        const T *xp = (const T *)j->xi + pl * IH * IW;                                       \
        T *yp = (T *)j->yi + pl * OH * OW;                                                   \
        if (g->k[1] == 2 && g->k[2] == 2 && g->stride[1] == 2 && g->stride[2] == 2 &&        \
            !g->pb[1] && !g->pb[2] && 2 * OH <= IH && 2 * OW <= IW) {                        \
            /* 2x2, stride 2, windows inside the plane: four loads per output */             \
            for (int64_t oh = 0; oh < OH; oh++) {                                            \
                const T *r0 = xp + 2 * oh * IW, *r1 = r0 + IW;                               \
                T *yr = yp + oh * OW;                                                        \
                for (int64_t ow = 0; ow < OW; ow++) {                                        \
                    T a = r0[2 * ow] > r0[2 * ow + 1] ? r0[2 * ow] : r0[2 * ow + 1];         \
                    T b = r1[2 * ow] > r1[2 * ow + 1] ? r1[2 * ow] : r1[2 * ow + 1];         \
                    yr[ow] = a > b ? a : b;                                                  \
                }                                                                            \
            }                                                                                \
            return;                                                                          \
        }                                                                                    \
        int64_t sw = g->stride[2], KW = g->k[2], pw = g->pb[2];                              \
        int64_t L = sw * OW + KW + sw; /* padded row: [0, pw) and [pw + IW, L) are TMIN */  \
        /* rows max over the window's rows into a padded row, then the max over kw:        \
         * stride 1 as shifted runs, stride 2 on its even and odd columns split, so        \
         * every loop is contiguous (vectorised); larger strides column by column.         \
         * pool() checks that L fits MAXPOOL_ROW. */                                        \
        T rp[MAXPOOL_ROW], ph[2][MAXPOOL_ROW / 2 + 1], acc[MAXPOOL_ROW];                     \
        for (int64_t oh = 0; oh < OH; oh++) {                                                \
            int64_t h0 = oh * g->stride[1] - g->pb[1];                                       \
            int64_t ha = h0 < 0 ? 0 : h0, hb = h0 + g->k[1] < IH ? h0 + g->k[1] : IH;        \
            for (int64_t i = 0; i < L; i++)                                                  \
                rp[i] = TMIN;                                                                \
            for (int64_t ih = ha; ih < hb; ih++) {                                           \
                const T *row = xp + ih * IW;                                                 \
                T *d = rp + pw;                                                              \
                for (int64_t iw = 0; iw < IW; iw++)                                          \
                    d[iw] = row[iw] > d[iw] ? row[iw] : d[iw];                               \
            }                                                                                \
            T *yr = yp + oh * OW;                                                            \
            if (sw > 2) {                                                                    \
                for (int64_t ow = 0; ow < OW; ow++) {                                        \
                    T m = TMIN;                                                              \
                    for (int64_t kw = 0; kw < KW; kw++)                                      \
                        m = rp[ow * sw + kw] > m ? rp[ow * sw + kw] : m;                     \
                    yr[ow] = m;                                                              \
                }                                                                            \
                continue;                                                                    \
            }                                                                                \
            const T *s0 = rp, *s1 = rp;                                                      \
            if (sw == 2) {                                                                   \
                split_even_odd((const uint8_t *)rp, (uint8_t *)ph[0], (uint8_t *)ph[1],      \
                               L / 2);                                                       \
                s0 = ph[0];                                                                  \
                s1 = ph[1];                                                                  \
            }                                                                                \
            for (int64_t ow = 0; ow < OW; ow++)                                              \
                acc[ow] = s0[ow];                                                            \
            for (int64_t kw = 1; kw < KW; kw++) {                                            \
                const T *src = sw == 2 ? (kw & 1 ? s1 : s0) + kw / 2 : rp + kw;              \
                for (int64_t ow = 0; ow < OW; ow++)                                          \
                    acc[ow] = src[ow] > acc[ow] ? src[ow] : acc[ow];                         \
            }                                                                                \
            memcpy(yr, acc, (size_t)OW * sizeof(T));                                         \
        }                                                                                    \
    }
MAXPOOL2D_INT(maxpool2d_plane_u8, uint8_t, 0)
MAXPOOL2D_INT(maxpool2d_plane_s8, int8_t, INT8_MIN)

RT_HOT static void pool2d_plane(void *ctx, int64_t pl)
{
    const pool_job *j = ctx;
    const conv_geom *g = j->g;
    bool is_max = j->is_max, include_pad = j->include_pad;
    if (is_max && g->dil[1] == 1 && g->dil[2] == 1 && g->in[2] <= 4096) {
        maxpool2d_plane(j, pl);
        return;
    }
    int64_t IH = g->in[1], IW = g->in[2], OH = g->out[1], OW = g->out[2];
    {
        const float *xp = j->x + pl * IH * IW;
        float *yp = j->y + pl * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * g->stride[1] - g->pb[1];
            int64_t kh0 = 0, kh1 = g->k[1];
            while (kh0 < kh1 && h0 + kh0 * g->dil[1] < 0)
                kh0++;
            while (kh1 > kh0 && h0 + (kh1 - 1) * g->dil[1] >= IH)
                kh1--;
            /* taps inside the padded extent, for count_include_pad */
            int64_t ph0 = 0, ph1 = g->k[1];
            while (ph0 < ph1 && h0 + ph0 * g->dil[1] < -g->pb[1])
                ph0++;
            while (ph1 > ph0 && h0 + (ph1 - 1) * g->dil[1] >= IH + g->pe[1])
                ph1--;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * g->stride[2] - g->pb[2];
                int64_t kw0 = 0, kw1 = g->k[2];
                while (kw0 < kw1 && w0 + kw0 * g->dil[2] < 0)
                    kw0++;
                while (kw1 > kw0 && w0 + (kw1 - 1) * g->dil[2] >= IW)
                    kw1--;
                float acc = is_max ? -INFINITY : 0;
                for (int64_t kh = kh0; kh < kh1; kh++) {
                    const float *row = xp + (h0 + kh * g->dil[1]) * IW + w0;
                    if (is_max)
                        for (int64_t kw = kw0; kw < kw1; kw++) {
                            float v = row[kw * g->dil[2]];
                            acc = v > acc ? v : acc;
                        }
                    else
                        for (int64_t kw = kw0; kw < kw1; kw++)
                            acc += row[kw * g->dil[2]];
                }
                if (!is_max) {
                    int64_t cnt;
                    if (include_pad) {
                        int64_t pw0 = 0, pw1 = g->k[2];
                        while (pw0 < pw1 && w0 + pw0 * g->dil[2] < -g->pb[2])
                            pw0++;
                        while (pw1 > pw0 && w0 + (pw1 - 1) * g->dil[2] >= IW + g->pe[2])
                            pw1--;
                        cnt = (ph1 - ph0) * (pw1 - pw0);
                    } else {
                        cnt = (kh1 - kh0) * (kw1 - kw0);
                    }
                    acc = (float)((double)acc / (double)cnt);
                }
                yp[oh * OW + ow] = acc;
            }
        }
    }
}

static void pool2d_f32(const float *x, float *y, int64_t planes, const conv_geom *g, bool is_max,
                       bool include_pad)
{
    pool_job j = {x, y, NULL, NULL, g, is_max, include_pad};
    rt_parallel_for_work(planes, pool2d_plane, &j, (double)planes * (double)g->osize * (double)g->ksize);
}

static hpcz_status pool(rt_ctx *c, int kind)
{
    hpcz_array *x = rt_in(c, 0);
    if (!hpcz_dtype_is_float(x->dtype) && !(kind == POOL_MAX && (x->dtype == HPCZ_DTYPE_INT8 ||
                                                                  x->dtype == HPCZ_DTYPE_UINT8)))
        return rt_unsupported(c);
    /* float16: the float32 kernels on a widened copy (the generic loop
     * converts per element; MaxPool gives the same bits) */
    if (rt_f16_widen(c))
        return rt_unsupported(c);
    if (x->ndim < 3 || x->ndim > 5)
        return rt_unsupported(c);
    conv_geom g;
    if (!pool_geom(c, x, &g))
        return rt_bad(c, "invalid kernel_shape, strides, pads or dilations");
    int64_t dims[5] = {x->dims[0], x->dims[1]};
    for (int s = 0; s < g.nsp; s++)
        dims[2 + s] = g.out[3 - g.nsp + s];
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, dims);
    if (!y)
        return c->err->status;
    hpcz_array *ind = c->n_out > 1 ? rt_out(c, 1, HPCZ_DTYPE_INT64, x->ndim, dims) : NULL;
    if (c->n_out > 1 && c->out[1] && !ind)
        return c->err->status;
    if (c->infer)
        return HPCZ_OK;
    bool include_pad = rt_attr_i(c, "count_include_pad", 0) != 0;
    bool col_major = rt_attr_i(c, "storage_order", 0) != 0;
    double p = kind == POOL_LP ? (double)rt_attr_i(c, "p", 2) : 0;
    int64_t planes = x->dims[0] * x->dims[1];
    bool f32 = x->dtype == HPCZ_DTYPE_FLOAT;
    if (f32 && !ind && kind != POOL_LP && g.in[0] == 1 && g.k[0] == 1 && !c->reference) {
        pool2d_f32(x->data, y->data, planes, &g, kind == POOL_MAX, include_pad);
        return HPCZ_OK;
    }
    if ((x->dtype == HPCZ_DTYPE_UINT8 || x->dtype == HPCZ_DTYPE_INT8) && !ind &&
        kind == POOL_MAX && g.in[0] == 1 && g.k[0] == 1 && g.dil[1] == 1 &&
        g.dil[2] == 1 && !c->reference && g.pb[2] + g.in[2] <= maxpool_row_len(&g) &&
        maxpool_row_len(&g) <= MAXPOOL_ROW) {
        pool_job j = {NULL, NULL, x->data, y->data, &g, true, false};
        rt_parallel_for_work(planes,
                             x->dtype == HPCZ_DTYPE_UINT8 ? maxpool2d_plane_u8
                                                          : maxpool2d_plane_s8,
                             &j, (double)planes * (double)g.osize * (double)g.ksize);
        return HPCZ_OK;
    }
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t ibase = pl * g.isize, obase = pl * g.osize;
        const float *xf = (const float *)x->data + ibase;
        for (int64_t od = 0; od < g.out[0]; od++)
            for (int64_t oh = 0; oh < g.out[1]; oh++)
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    double acc = kind == POOL_MAX ? -INFINITY : 0;
                    int64_t best = -1, cnt = 0, cnt_pad = 0;
                    for (int64_t kd = 0; kd < g.k[0]; kd++) {
                        int64_t id = od * g.stride[0] - g.pb[0] + kd * g.dil[0];
                        for (int64_t kh = 0; kh < g.k[1]; kh++) {
                            int64_t ih = oh * g.stride[1] - g.pb[1] + kh * g.dil[1];
                            for (int64_t kw = 0; kw < g.k[2]; kw++) {
                                int64_t iw = ow * g.stride[2] - g.pb[2] + kw * g.dil[2];
                                bool in_pad = id >= -g.pb[0] && id < g.in[0] + g.pe[0] &&
                                              ih >= -g.pb[1] && ih < g.in[1] + g.pe[1] &&
                                              iw >= -g.pb[2] && iw < g.in[2] + g.pe[2];
                                cnt_pad += in_pad;
                                if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1] || iw < 0 ||
                                    iw >= g.in[2])
                                    continue;
                                int64_t off = (id * g.in[1] + ih) * g.in[2] + iw;
                                double v = f32 ? xf[off] : rt_load_d(x->data, x->dtype, ibase + off);
                                cnt++;
                                if (kind == POOL_MAX) {
                                    if (v > acc || best < 0) {
                                        acc = v;
                                        best = off;
                                    }
                                } else if (kind == POOL_AVG) {
                                    acc += v;
                                } else {
                                    acc += pow(fabs(v), p);
                                }
                            }
                        }
                    }
                    int64_t o = obase + (od * g.out[1] + oh) * g.out[2] + ow;
                    double r = acc;
                    if (kind == POOL_AVG)
                        r = acc / (double)(include_pad ? cnt_pad : cnt);
                    else if (kind == POOL_LP)
                        r = pow(acc, 1.0 / p);
                    if (f32)
                        ((float *)y->data)[o] = (float)r;
                    else
                        rt_store_d(y->data, y->dtype, o, r);
                    if (ind) {
                        int64_t bi = best < 0 ? 0 : best;
                        int64_t idx = ibase + bi;
                        if (col_major) {
                            /* column-major index within the plane, planes stay row-major */
                            int64_t iw2 = bi % g.in[2], ih2 = (bi / g.in[2]) % g.in[1],
                                    id2 = bi / (g.in[2] * g.in[1]);
                            idx = ibase + (iw2 * g.in[1] + ih2) * g.in[0] + id2;
                        }
                        ((int64_t *)ind->data)[o] = idx;
                    }
                }
    }
    return HPCZ_OK;
}

static hpcz_status k_maxpool(rt_ctx *c) { return pool(c, POOL_MAX); }
static hpcz_status k_avgpool(rt_ctx *c) { return pool(c, POOL_AVG); }
static hpcz_status k_lppool(rt_ctx *c) { return pool(c, POOL_LP); }

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* Global average / max pooling of 16 float planes at a time (AVX-512):
 * 16 values of each plane, one 16 x 16 register transpose, then the 16
 * columns added (or compared) in order into one vector whose lane k is
 * plane k. Each plane's sum is the scalar loop's, element after element
 * from 0 (its bits), but the 16 chains run side by side: the scalar loop
 * was one dependent add per element (ppocr_cls's ten GlobalAveragePools
 * took 14% of its run). Planes [0, planes / 16 * 16) of x (S values each)
 * into y; returns how many it did. max: the scalar loop's acc = s > acc ? s : acc (a NaN never
 * replaces acc). */
__attribute__((target("avx512f"))) static int64_t gp16_512(const float *x, int64_t planes, int64_t S,
                                                         bool max, float *y)
{
    int64_t done = planes / 16 * 16;
    for (int64_t p0 = 0; p0 < done; p0 += 16) {
        const float *b = x + p0 * S;
        __m512 acc = _mm512_set1_ps(max ? -INFINITY : 0.0f);
        for (int64_t i0 = 0; i0 < S; i0 += 16) {
            int64_t n = S - i0 < 16 ? S - i0 : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int k = 0; k < 16; k++)
                r[k] = _mm512_maskz_loadu_ps(m, b + k * S + i0);
            rt_tr16_512(r); /* r[i]: element i0 + i of the 16 planes */
            for (int64_t i = 0; i < n; i++)
                acc = max ? _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r[i], acc, _CMP_GT_OQ), acc, r[i])
                          : _mm512_add_ps(acc, r[i]);
        }
        if (!max)
            acc = _mm512_div_ps(acc, _mm512_set1_ps((float)S));
        _mm512_storeu_ps(y + p0, acc);
    }
    return done;
}
#endif

/* Float32 GlobalAverage/MaxPool of planes [p0, p1): gp16_512 sixteen at a
 * time, the rest one by one, each the scalar loop's sum (so the same bits
 * however the planes are split into tasks). */
typedef struct gpool_job {
    const float *x;
    float *y;
    int64_t S, planes, per; /* per: planes a task, a multiple of 16 */
    bool max, z;
} gpool_job;

static void gpool_task(void *ctx, int64_t t)
{
    const gpool_job *j = ctx;
    int64_t p0 = t * j->per, p1 = p0 + j->per < j->planes ? p0 + j->per : j->planes, pl = p0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (j->z)
        pl += gp16_512(j->x + p0 * j->S, p1 - p0, j->S, j->max, j->y + p0);
#endif
    for (; pl < p1; pl++) {
        const float *s = j->x + pl * j->S;
        float acc = j->max ? -INFINITY : 0;
        if (j->max)
            for (int64_t i = 0; i < j->S; i++)
                acc = s[i] > acc ? s[i] : acc;
        else {
            for (int64_t i = 0; i < j->S; i++)
                acc += s[i];
            acc /= (float)j->S;
        }
        j->y[pl] = acc;
    }
}

static hpcz_status global_pool(rt_ctx *c, int kind)
{
    hpcz_array *x = rt_in(c, 0);
    if (!hpcz_dtype_is_float(x->dtype) || x->ndim < 2 || rt_f16_widen(c))
        return rt_unsupported(c);
    int64_t dims[RT_MAX_RANK];
    for (int d = 0; d < x->ndim; d++)
        dims[d] = d < 2 ? x->dims[d] : 1;
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    int64_t planes = x->dims[0] * x->dims[1], S = planes ? x->numel / planes : 0;
    double p = kind == POOL_LP ? (double)rt_attr_i(c, "p", 2) : 0;
    bool f32 = x->dtype == HPCZ_DTYPE_FLOAT;
    int64_t pl = 0;
    if (f32 && kind != POOL_LP && !c->reference && S > 0) {
        /* tasks of whole 16-plane groups, at least 64K values each
         * (ppocr_det's squeeze-excite pools ran on one thread) */
        int64_t per = (65536 / S + 15) / 16 * 16;
        if (per < 16)
            per = 16;
        gpool_job j = {x->data, y->data, S, planes, per, kind == POOL_MAX, false};
#if defined(__x86_64__) && defined(__GNUC__)
        j.z = rt_cpu_avx512();
#endif
        rt_parallel_for_work((planes + per - 1) / per, gpool_task, &j, (double)x->numel);
        return HPCZ_OK;
    }
    for (; pl < planes; pl++) {
        if (f32 && kind != POOL_LP && !c->reference) {
            const float *s = (const float *)x->data + pl * S;
            float acc = kind == POOL_MAX ? -INFINITY : 0;
            if (kind == POOL_MAX)
                for (int64_t i = 0; i < S; i++)
                    acc = s[i] > acc ? s[i] : acc;
            else {
                for (int64_t i = 0; i < S; i++)
                    acc += s[i];
                acc /= (float)S;
            }
            ((float *)y->data)[pl] = acc;
            continue;
        }
        double acc = kind == POOL_MAX ? -INFINITY : 0;
        for (int64_t i = 0; i < S; i++) {
            double v = rt_load_d(x->data, x->dtype, pl * S + i);
            if (kind == POOL_MAX)
                acc = v > acc ? v : acc;
            else if (kind == POOL_AVG)
                acc += v;
            else
                acc += pow(fabs(v), p);
        }
        if (kind == POOL_AVG)
            acc /= (double)S;
        else if (kind == POOL_LP)
            acc = pow(acc, 1.0 / p);
        rt_store_d(y->data, y->dtype, pl, acc);
    }
    return HPCZ_OK;
}

static hpcz_status k_gmaxpool(rt_ctx *c) { return global_pool(c, POOL_MAX); }
static hpcz_status k_gavgpool(rt_ctx *c) { return global_pool(c, POOL_AVG); }
static hpcz_status k_glppool(rt_ctx *c) { return global_pool(c, POOL_LP); }

static const rt_op ops[] = {
    {"", "MaxPool", 1, 0, 0, k_maxpool, NULL},
    {"", "AveragePool", 1, 0, 0, k_avgpool, NULL},
    {"", "LpPool", 2, 0, 0, k_lppool, NULL},
    {"", "GlobalMaxPool", 1, 0, 0, k_gmaxpool, NULL},
    {"", "GlobalAveragePool", 1, 0, 0, k_gavgpool, NULL},
    {"", "GlobalLpPool", 2, 0, 0, k_glppool, NULL},
};

const rt_op_table rt_ops_pool = {ops, HPCZ_ARRAY_SIZE(ops)};
