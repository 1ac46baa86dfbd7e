/*
 * contrib.c - ONNX Runtime's contrib ops (domain com.microsoft) that its
 * quantizers and transformer optimizer write: MatMulNBits (block-quantized
 * weights), the Gelu variants (QuickGelu, FastGelu, BiasGelu; plain Gelu is
 * the ai.onnx kernel of elementwise.c) and SkipLayerNormalization /
 * SkipSimplifiedLayerNormalization, EmbedLayerNormalization. FusedMatMul, DynamicQuantizeMatMul and
 * MatMulIntegerToFloat live in gemm.c, SimplifiedLayerNormalization (ai.onnx
 * domain in ORT's graphs) in norm.c. Semantics follow ORT's CPU kernels.
 */
#include "../rt.h"

#include <cblas.h>
#include <float.h>

/* ================================================================ MatMulNBits */

/* Y = A dequant(B)^T (+ bias): B is N rows of K codes of `bits` bits, packed
 * low bits first into bytes, block_size codes per blob (the last block of a
 * row padded); code q of block b of row n stands for (q - zp[n][b]) * scale[n][b].
 * Zero points: absent (2^(bits-1)), packed uint8 like B (rows padded to whole
 * bytes), or unpacked floats. g_idx (deprecated, ORT: 4 bits) gives each k its
 * block instead of k / block_size. */
typedef struct nbits_w {
    int64_t K, N, bs, nblk, blob, zrow;
    int bits, plog; /* plog: log2 of codes per byte (8 / bits = 1 << plog) */
    const uint8_t *b;
    const float *scales;
    const uint8_t *zp8;   /* packed zero points, or NULL */
    const float *zpf;     /* float zero points, or NULL */
    const int32_t *gidx;  /* NULL: k / bs */
} nbits_w;

static inline float nb_zp(const nbits_w *w, int64_t n, int64_t blk)
{
    if (w->zpf)
        return w->zpf[n * w->nblk + blk];
    if (w->zp8) { /* shifts: a division per block was most of a 4-bit GEMV */
        uint8_t byte = w->zp8[n * w->zrow + (blk >> w->plog)];
        return (float)((byte >> ((blk & ((1 << w->plog) - 1)) * w->bits)) & ((1 << w->bits) - 1));
    }
    return (float)(1 << (w->bits - 1));
}

static inline int nb_code(const nbits_w *w, int64_t n, int64_t k)
{
    const uint8_t *row = w->b + n * w->nblk * w->blob;
    int64_t blk = k / w->bs, j = k % w->bs;
    int per = 8 / w->bits;
    uint8_t byte = row[blk * w->blob + j / per];
    return (byte >> ((j % per) * w->bits)) & ((1 << w->bits) - 1);
}

/* Row n of dequant(B) (K floats). The scale multiplies the exact difference
 * (q - zp): one rounding per weight. */
RT_HOT static void nb_dequant_row(const nbits_w *w, int64_t n, float *dst)
{
    if (w->gidx) {
        for (int64_t k = 0; k < w->K; k++) {
            int64_t blk = w->gidx[k];
            dst[k] = ((float)nb_code(w, n, k) - nb_zp(w, n, blk)) * w->scales[n * w->nblk + blk];
        }
        return;
    }
    const uint8_t *row = w->b + n * w->nblk * w->blob;
    for (int64_t blk = 0; blk < w->nblk; blk++) {
        float s = w->scales[n * w->nblk + blk], z = nb_zp(w, n, blk);
        const uint8_t *src = row + blk * w->blob;
        float *d = dst + blk * w->bs;
        int64_t len = w->K - blk * w->bs < w->bs ? w->K - blk * w->bs : w->bs;
        if (w->bits == 4 && len == w->bs) {
            for (int64_t i = 0; i < w->blob; i++) {
                d[2 * i] = ((float)(src[i] & 15) - z) * s;
                d[2 * i + 1] = ((float)(src[i] >> 4) - z) * s;
            }
        } else if (w->bits == 8) {
            for (int64_t i = 0; i < len; i++)
                d[i] = ((float)src[i] - z) * s;
        } else {
            int per = 8 / w->bits, mask = (1 << w->bits) - 1;
            for (int64_t i = 0; i < len; i++)
                d[i] = ((float)((src[i / per] >> ((i % per) * w->bits)) & mask) - z) * s;
        }
    }
}

/* Column blocks of nb_cols(K, N) weight rows, dequantized into a panel of
 * about 512 KiB (up to 1.5 times that; in L2) by the task that multiplies it
 * (smaller panels cost more than they save: OpenBLAS packs A again for every
 * call). The block count is a power of two, so that 2 or 4 threads get equal
 * shares (5 blocks on 2 threads cost 12%). Row blocks of NB_ROWS rows of A.
 * Both fixed by the shape: the same OpenBLAS calls for any thread count. */
#define NB_ROWS 256

/* A task's panel (the calling thread's, allocated before the tasks start, is
 * the one its own tasks use). */
static _Thread_local rt_scratch nb_panel;

static int64_t nb_cols(int64_t K, int64_t N)
{
    int64_t target = 131072 / (K > 0 ? K : 1), nblocks = 1;
    target = target < 16 ? 16 : target;
    while (N / nblocks > target * 3 / 2 && N / (nblocks * 2) >= 16)
        nblocks *= 2;
    int64_t c = ((N + nblocks - 1) / nblocks + 15) / 16 * 16;
    return c < 16 ? 16 : c;
}

typedef struct nbits_job {
    const nbits_w *w;
    const float *a, *bias;
    float *y;
    int64_t M, cols, ncb;
    /* GEMV path: A de-interleaved to match the packing, M rows of `lda`
     * floats, zero past K (4 bits: codes 2i in ae, 2i + 1 in ao; 8 bits: ae) */
    const float *ae, *ao;
    int64_t lda;
    const float *asum; /* GEMV path: sums of A per row and block (M x nblk) */
    bool avx2;
} nbits_job;

/* Up to NB_GEMV_ROWS rows of A against row n of dequant(B), B of 4 or 8 bits
 * without g_idx, each code decoded once for all rows. Per block b,
 * sum_k (q_k - z) s a_k = s (sum_k q_k a_k) - s z asum_b: the codes' dot with A
 * in 8 lanes (8-byte units: low codes, then high codes, each a fused
 * multiply-add), scaled into the row's lanes by one more, the zero-point term
 * kept apart; at the end the lanes are summed in a fixed order. The AVX2+FMA
 * kernel and the portable one (fmaf) compute the same values lane for lane. */
#define NB_GEMV_ROWS 4

static float nb_lanes_sum(const float *acc)
{
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static void nb_gemv_scalar(const nbits_w *w, int64_t n, const nbits_job *j, float *out)
{
    float acc[NB_GEMV_ROWS][8] = {{0}}, corr[NB_GEMV_ROWS] = {0};
    const uint8_t *row = w->b + n * w->nblk * w->blob;
    for (int64_t blk = 0; blk < w->nblk; blk++) {
        float s = w->scales[n * w->nblk + blk], sz = s * nb_zp(w, n, blk);
        const uint8_t *src = row + blk * w->blob;
        for (int64_t m = 0; m < j->M; m++) {
            const float *e = j->ae + m * j->lda + blk * w->blob;
            const float *o = j->ao ? j->ao + m * j->lda + blk * w->blob : NULL;
            float d[8] = {0};
            for (int64_t i = 0; i < w->blob; i += 8) {
                if (w->bits == 4) {
                    for (int l = 0; l < 8; l++)
                        d[l] = fmaf((float)(src[i + l] & 15), e[i + l], d[l]);
                    for (int l = 0; l < 8; l++)
                        d[l] = fmaf((float)(src[i + l] >> 4), o[i + l], d[l]);
                } else {
                    for (int l = 0; l < 8; l++)
                        d[l] = fmaf((float)src[i + l], e[i + l], d[l]);
                }
            }
            for (int l = 0; l < 8; l++)
                acc[m][l] = fmaf(d[l], s, acc[m][l]);
            corr[m] = corr[m] + sz * j->asum[m * w->nblk + blk];
        }
    }
    for (int64_t m = 0; m < j->M; m++)
        out[m] = nb_lanes_sum(acc[m]) - corr[m];
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((always_inline, target("avx2,fma"))) static inline void
nb_gemv_avx2_m(const nbits_w *w, int64_t n, const nbits_job *j, float *out, const int M)
{
    __m256 acc[NB_GEMV_ROWS];
    float corr[NB_GEMV_ROWS];
    for (int m = 0; m < M; m++) {
        acc[m] = _mm256_setzero_ps();
        corr[m] = 0;
    }
    const __m128i mask = _mm_set1_epi8(15);
    const uint8_t *row = w->b + n * w->nblk * w->blob;
    for (int64_t blk = 0; blk < w->nblk; blk++) {
        float s = w->scales[n * w->nblk + blk], sz = s * nb_zp(w, n, blk);
        const uint8_t *src = row + blk * w->blob;
        __m256 d[NB_GEMV_ROWS];
        for (int m = 0; m < M; m++)
            d[m] = _mm256_setzero_ps();
        int64_t off = blk * w->blob;
        for (int64_t i = 0; i < w->blob; i += 8) {
            __m128i b = _mm_loadl_epi64((const __m128i *)(src + i));
            if (w->bits == 4) {
                __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_and_si128(b, mask)));
                __m256 hi = _mm256_cvtepi32_ps(
                    _mm256_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(b, 4), mask)));
                for (int m = 0; m < M; m++) {
                    d[m] = _mm256_fmadd_ps(lo, _mm256_loadu_ps(j->ae + m * j->lda + off + i), d[m]);
                    d[m] = _mm256_fmadd_ps(hi, _mm256_loadu_ps(j->ao + m * j->lda + off + i), d[m]);
                }
            } else {
                __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
                for (int m = 0; m < M; m++)
                    d[m] = _mm256_fmadd_ps(q, _mm256_loadu_ps(j->ae + m * j->lda + off + i), d[m]);
            }
        }
        __m256 vs = _mm256_set1_ps(s);
        for (int m = 0; m < M; m++) {
            acc[m] = _mm256_fmadd_ps(d[m], vs, acc[m]);
            corr[m] = corr[m] + sz * j->asum[m * w->nblk + blk];
        }
    }
    for (int m = 0; m < M; m++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc[m]);
        out[m] = nb_lanes_sum(lanes) - corr[m];
    }
}

/* One row of A (decoding) against 4 weight rows at once: 4 independent
 * chains share the loads of A. Per column exactly the arithmetic above. */
__attribute__((always_inline, target("avx2,fma"))) static inline void
nb_gemv4_avx2_b(const nbits_w *w, int64_t n0, const nbits_job *j, float *out, const bool four)
{
    __m256 acc[4];
    float corr[4] = {0};
    const uint8_t *rows[4];
    for (int c = 0; c < 4; c++) {
        acc[c] = _mm256_setzero_ps();
        rows[c] = w->b + (n0 + c) * w->nblk * w->blob;
    }
    const __m128i mask = _mm_set1_epi8(15);
    for (int64_t blk = 0; blk < w->nblk; blk++) {
        __m256 d[4];
        for (int c = 0; c < 4; c++)
            d[c] = _mm256_setzero_ps();
        int64_t off = blk * w->blob;
        for (int64_t i = 0; i < w->blob; i += 8) {
            __m256 e = _mm256_loadu_ps(j->ae + off + i);
            if (four) {
                __m256 o = _mm256_loadu_ps(j->ao + off + i);
                for (int c = 0; c < 4; c++) {
                    __m128i b = _mm_loadl_epi64((const __m128i *)(rows[c] + off + i));
                    __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_and_si128(b, mask)));
                    __m256 hi = _mm256_cvtepi32_ps(
                        _mm256_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(b, 4), mask)));
                    d[c] = _mm256_fmadd_ps(lo, e, d[c]);
                    d[c] = _mm256_fmadd_ps(hi, o, d[c]);
                }
            } else {
                for (int c = 0; c < 4; c++) {
                    __m128i b = _mm_loadl_epi64((const __m128i *)(rows[c] + off + i));
                    d[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)), e, d[c]);
                }
            }
        }
        float as = j->asum[blk];
        for (int c = 0; c < 4; c++) {
            float sc = w->scales[(n0 + c) * w->nblk + blk], sz = sc * nb_zp(w, n0 + c, blk);
            acc[c] = _mm256_fmadd_ps(d[c], _mm256_set1_ps(sc), acc[c]);
            corr[c] = corr[c] + sz * as;
        }
    }
    for (int c = 0; c < 4; c++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc[c]);
        out[c] = nb_lanes_sum(lanes) - corr[c];
    }
}

__attribute__((target("avx2,fma"))) static void nb_gemv4_avx2(const nbits_w *w, int64_t n0,
                                                              const nbits_job *j, float *out)
{
    if (w->bits == 4)
        nb_gemv4_avx2_b(w, n0, j, out, true);
    else
        nb_gemv4_avx2_b(w, n0, j, out, false);
}

__attribute__((target("avx2,fma"))) static void nb_gemv_avx2(const nbits_w *w, int64_t n,
                                                             const nbits_job *j, float *out)
{
    switch (j->M) {
    case 1:
        nb_gemv_avx2_m(w, n, j, out, 1);
        break;
    case 2:
        nb_gemv_avx2_m(w, n, j, out, 2);
        break;
    case 3:
        nb_gemv_avx2_m(w, n, j, out, 3);
        break;
    default:
        nb_gemv_avx2_m(w, n, j, out, 4);
        break;
    }
}

/* nb_dequant_row for 4 and 8 bits without g_idx: the same values. */
__attribute__((target("avx2"))) static void nb_dequant_row_avx2(const nbits_w *w, int64_t n,
                                                                float *dst)
{
    const __m128i mask = _mm_set1_epi8(15);
    const uint8_t *row = w->b + n * w->nblk * w->blob;
    for (int64_t blk = 0; blk < w->nblk; blk++) {
        float s = w->scales[n * w->nblk + blk], z = nb_zp(w, n, blk);
        __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z);
        const uint8_t *src = row + blk * w->blob;
        float *d = dst + blk * w->bs;
        int64_t len = w->K - blk * w->bs < w->bs ? w->K - blk * w->bs : w->bs, i = 0;
        if (w->bits == 4) {
            for (; 2 * i + 16 <= len; i += 8) { /* 8 bytes: 16 codes in order */
                __m128i b = _mm_loadl_epi64((const __m128i *)(src + i));
                __m128i codes = _mm_unpacklo_epi8(_mm_and_si128(b, mask),
                                                  _mm_and_si128(_mm_srli_epi16(b, 4), mask));
                __m256 q0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes));
                __m256 q1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(codes, 8)));
                _mm256_storeu_ps(d + 2 * i, _mm256_mul_ps(_mm256_sub_ps(q0, vz), vs));
                _mm256_storeu_ps(d + 2 * i + 8, _mm256_mul_ps(_mm256_sub_ps(q1, vz), vs));
            }
            for (int64_t k = 2 * i; k < len; k++)
                d[k] = ((float)((src[k / 2] >> ((k & 1) * 4)) & 15) - z) * s;
        } else {
            for (; i + 8 <= len; i += 8) {
                __m128i b = _mm_loadl_epi64((const __m128i *)(src + i));
                __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
                _mm256_storeu_ps(d + i, _mm256_mul_ps(_mm256_sub_ps(q, vz), vs));
            }
            for (; i < len; i++)
                d[i] = ((float)src[i] - z) * s;
        }
    }
}
#endif

/* HPCZ_NBITS_NO_AVX2 (set, not "0"): the portable kernels (tests: same bytes). */
static bool nb_use_avx2(void)
{
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !rt_env_on("HPCZ_NBITS_NO_AVX2");
#else
    return false;
#endif
}

#define NB_GEMV_COLS 64

static void nbits_gemv_task(void *ctx, int64_t q)
{
    const nbits_job *j = ctx;
    const nbits_w *w = j->w;
    int64_t c0 = q * NB_GEMV_COLS, nc = w->N - c0 < NB_GEMV_COLS ? w->N - c0 : NB_GEMV_COLS;
    int64_t n = c0;
#if defined(__x86_64__)
    if (j->avx2 && j->M == 1)
        for (; n + 4 <= c0 + nc; n += 4) {
            float v[4];
            nb_gemv4_avx2(w, n, j, v);
            for (int c = 0; c < 4; c++)
                j->y[n + c] = j->bias ? v[c] + j->bias[n + c] : v[c];
        }
#endif
    for (; n < c0 + nc; n++) {
        float v[NB_GEMV_ROWS];
#if defined(__x86_64__)
        if (j->avx2)
            nb_gemv_avx2(w, n, j, v);
        else
#endif
            nb_gemv_scalar(w, n, j, v);
        for (int64_t m = 0; m < j->M; m++)
            j->y[m * w->N + n] = j->bias ? v[m] + j->bias[n] : v[m];
    }
}

static void nbits_task(void *ctx, int64_t q)
{
    const nbits_job *j = ctx;
    const nbits_w *w = j->w;
    int64_t rb = q / j->ncb, cb = q % j->ncb;
    int64_t r0 = rb * NB_ROWS, c0 = cb * j->cols;
    int64_t m = j->M - r0 < NB_ROWS ? j->M - r0 : NB_ROWS;
    int64_t nc = w->N - c0 < j->cols ? w->N - c0 : j->cols;
    float *panel = rt_scratch_get(&nb_panel, (size_t)(nc * w->K) * sizeof(float));
    if (!panel)
        return; /* checked by the caller beforehand (same size for every task) */
    for (int64_t n = 0; n < nc; n++) {
#if defined(__x86_64__)
        if (j->avx2) {
            nb_dequant_row_avx2(w, c0 + n, panel + n * w->K);
            continue;
        }
#endif
        nb_dequant_row(w, c0 + n, panel + n * w->K);
    }
    const float *a = j->a + r0 * w->K;
    float *y = j->y + r0 * w->N + c0;
    if (m == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)nc, (blasint)w->K, 1.0f, panel,
                    (blasint)w->K, a, 1, 0.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)nc,
                    (blasint)w->K, 1.0f, a, (blasint)w->K, panel, (blasint)w->K, 0.0f, y,
                    (blasint)w->N);
    if (j->bias)
        for (int64_t i = 0; i < m; i++)
            for (int64_t n = 0; n < nc; n++)
                y[i * w->N + n] += j->bias[c0 + n];
}

static bool nbits_ok(const hpcz_node *n)
{
    int64_t bits = hpcz_node_attr_int(n, "bits", 4), bs = hpcz_node_attr_int(n, "block_size", 0);
    return (bits == 2 || bits == 4 || bits == 8) && bs >= 16 && (bs & (bs - 1)) == 0 &&
           hpcz_node_attr_int(n, "K", 0) > 0 && hpcz_node_attr_int(n, "N", 0) > 0;
}

static hpcz_status k_matmulnbits(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1), *sc = rt_in(c, 2), *zp = rt_in(c, 3),
               *gi = rt_in(c, 4), *bias = rt_in(c, 5);
    if (a->dtype != HPCZ_DTYPE_FLOAT || !b || b->dtype != HPCZ_DTYPE_UINT8 || !sc ||
        sc->dtype != HPCZ_DTYPE_FLOAT || (bias && bias->dtype != HPCZ_DTYPE_FLOAT) ||
        (zp && zp->dtype != HPCZ_DTYPE_UINT8 && zp->dtype != HPCZ_DTYPE_FLOAT) ||
        (gi && gi->dtype != HPCZ_DTYPE_INT32))
        return rt_unsupported(c);
    nbits_w w = {.K = rt_attr_i(c, "K", 0), .N = rt_attr_i(c, "N", 0),
                 .bs = rt_attr_i(c, "block_size", 0), .bits = (int)rt_attr_i(c, "bits", 4)};
    w.nblk = (w.K + w.bs - 1) / w.bs;
    w.plog = w.bits == 8 ? 0 : w.bits == 4 ? 1 : 2;
    w.blob = w.bs * w.bits / 8;
    w.zrow = (w.nblk * w.bits + 7) / 8;
    if (a->ndim < 1 || a->dims[a->ndim - 1] != w.K)
        return rt_bad(c, "A's last dimension is not K = %lld", (long long)w.K);
    if (b->numel != w.N * w.nblk * w.blob)
        return rt_bad(c, "B has %lld bytes, not N x ceil(K / block_size) x blob = %lld",
                      (long long)b->numel, (long long)(w.N * w.nblk * w.blob));
    if (sc->numel != w.N * w.nblk)
        return rt_bad(c, "scales has %lld entries, not N x ceil(K / block_size) = %lld",
                      (long long)sc->numel, (long long)(w.N * w.nblk));
    if (zp && zp->numel != w.N * (zp->dtype == HPCZ_DTYPE_UINT8 ? w.zrow : w.nblk))
        return rt_bad(c, "zero_points has %lld entries, not %lld", (long long)zp->numel,
                      (long long)(w.N * (zp->dtype == HPCZ_DTYPE_UINT8 ? w.zrow : w.nblk)));
    if (bias && bias->numel != w.N)
        return rt_bad(c, "bias has %lld entries, not N = %lld", (long long)bias->numel,
                      (long long)w.N);
    if (gi && gi->numel != w.K)
        return rt_bad(c, "g_idx has %lld entries, not K = %lld", (long long)gi->numel,
                      (long long)w.K);
    /* ORT ignores packed zero points when g_idx is given (it uses 2^(bits-1)):
     * no result to match that the weights meant */
    if (gi && zp && zp->dtype == HPCZ_DTYPE_UINT8)
        return rt_unsupported(c);
    int64_t dims[RT_MAX_RANK];
    memcpy(dims, a->dims, sizeof dims);
    dims[a->ndim - 1] = w.N;
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, a->ndim, dims);
    if (!y || c->infer || y->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    w.b = b->data;
    w.scales = sc->data;
    if (zp && zp->dtype == HPCZ_DTYPE_UINT8)
        w.zp8 = zp->data;
    else if (zp)
        w.zpf = zp->data;
    if (gi) {
        w.gidx = gi->data;
        for (int64_t k = 0; k < w.K; k++)
            if (w.gidx[k] < 0 || w.gidx[k] >= w.nblk)
                return rt_bad(c, "g_idx[%lld] = %d is not a block index", (long long)k,
                              (int)w.gidx[k]);
    }
    int64_t M = a->numel / w.K;
    const float *ad = a->data, *bd = bias ? bias->data : NULL;
    float *yd = y->data;
    if (c->reference) {
        float *row = malloc((size_t)w.K * sizeof *row);
        if (!row)
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        for (int64_t n = 0; n < w.N; n++) {
            for (int64_t k = 0; k < w.K; k++) {
                int64_t blk = w.gidx ? w.gidx[k] : k / w.bs;
                row[k] = ((float)nb_code(&w, n, k) - nb_zp(&w, n, blk)) * w.scales[n * w.nblk + blk];
            }
            for (int64_t m = 0; m < M; m++) {
                double acc = 0;
                for (int64_t k = 0; k < w.K; k++)
                    acc += (double)ad[m * w.K + k] * row[k];
                yd[m * w.N + n] = (float)acc + (bd ? bd[n] : 0.0f);
            }
        }
        free(row);
        return HPCZ_OK;
    }
    if (M <= NB_GEMV_ROWS && !w.gidx && (w.bits == 4 || w.bits == 8)) {
        int64_t lda = w.nblk * w.blob; /* bytes of a weight row: one A value per byte (and lane) */
        size_t nf = (size_t)(M * lda * (w.bits == 4 ? 2 : 1) + M * w.nblk);
        float *buf = calloc(nf, sizeof *buf);
        if (!buf)
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        float *ae = buf, *ao = w.bits == 4 ? buf + M * lda : NULL;
        float *asum = buf + M * lda * (w.bits == 4 ? 2 : 1);
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < w.K; k++) {
                float v = ad[m * w.K + k];
                if (w.bits == 4)
                    (k & 1 ? ao : ae)[m * lda + k / 2] = v;
                else
                    ae[m * lda + k] = v;
                asum[m * w.nblk + k / w.bs] += v;
            }
        nbits_job j = {&w, ad, bd, yd, M, 0, 0, ae, ao, lda, asum, nb_use_avx2()};
        rt_parallel_for_work((w.N + NB_GEMV_COLS - 1) / NB_GEMV_COLS, nbits_gemv_task, &j,
                             (double)M * (double)w.N * (double)w.K / 4);
        free(buf);
        return HPCZ_OK;
    }
    nbits_job j = {&w, ad, bd, yd, M, nb_cols(w.K, w.N), 0, NULL, NULL, 0, NULL,
                   !w.gidx && (w.bits == 4 || w.bits == 8) && nb_use_avx2()};
    j.ncb = (w.N + j.cols - 1) / j.cols;
    /* every task needs the same panel: fail here rather than in a task */
    if (!rt_scratch_get(&nb_panel, (size_t)(j.cols * w.K) * sizeof(float)))
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    int64_t nrb = (M + NB_ROWS - 1) / NB_ROWS;
    rt_parallel_for_work(nrb * j.ncb, nbits_task, &j, (double)M * (double)w.N * (double)w.K / 16);
    return HPCZ_OK;
}

/* ================================================================ Gelu variants */

typedef enum { G_QUICK, G_FAST, G_BIAS } gelu_kind;

/* ORT's constants: sqrt(2/pi) and 0.044715 * sqrt(2/pi) */
#define FG_B 0.7978845608028654f
#define FG_C 0.035677408136300125f

static inline double gelu_d(gelu_kind k, double v, double alpha)
{
    switch (k) {
    case G_QUICK:
        return v / (1.0 + exp(-(alpha * v)));
    case G_FAST:
        return 0.5 * v * (tanh(v * ((double)FG_C * v * v + (double)FG_B)) + 1.0);
    default:
        return 0.5 * v * (1.0 + erf(v * M_SQRT1_2));
    }
}

typedef struct gelu_job {
    gelu_kind k;
    float alpha;
    const float *x, *bias;
    float *y;
    int64_t n, h;
} gelu_job;

#define GELU_CHUNK 16384

/* In tiles: x (+ bias) gathered, then the vectorised kernels of vmath.c
 * (within a few ulp of the libm forms; the ref backend keeps libm). */
#define GELU_TILE 512
static void gelu_task(void *ctx, int64_t q)
{
    const gelu_job *j = ctx;
    int64_t lo = q * GELU_CHUNK, hi = lo + GELU_CHUNK < j->n ? lo + GELU_CHUNK : j->n;
    float v[GELU_TILE], s[GELU_TILE];
    for (int64_t t0 = lo; t0 < hi; t0 += GELU_TILE) {
        int64_t m = hi - t0 < GELU_TILE ? hi - t0 : GELU_TILE;
        const float *xv = j->x + t0;
        if (j->bias) {
            for (int64_t i = 0; i < m; i++)
                v[i] = j->x[t0 + i] + j->bias[(t0 + i) % j->h];
            xv = v;
        }
        float *y = j->y + t0;
        if (j->k == G_QUICK) {
            for (int64_t i = 0; i < m; i++)
                s[i] = j->alpha * xv[i];
            rt_vsigmoid(s, s, m);
            for (int64_t i = 0; i < m; i++)
                y[i] = xv[i] * s[i];
        } else if (j->k == G_FAST) {
            rt_vgelu_tanh(xv, y, m);
        } else {
            rt_vgelu(xv, y, m);
        }
    }
}

/* QuickGelu x sigmoid(alpha x); FastGelu (tanh form) and BiasGelu (erf form)
 * of x + bias, bias 1-D over the last dimension. */
static hpcz_status gelu_family(rt_ctx *c, gelu_kind k)
{
    hpcz_array *x = rt_in(c, 0), *bias = k == G_QUICK ? NULL : rt_in(c, 1);
    int dt = x->dtype;
    if ((dt != HPCZ_DTYPE_FLOAT && dt != HPCZ_DTYPE_DOUBLE) || (bias && bias->dtype != dt))
        return rt_unsupported(c);
    if (k == G_BIAS && !bias)
        return rt_bad(c, "BiasGelu needs its bias input");
    int64_t h = x->ndim ? x->dims[x->ndim - 1] : 1;
    if (bias && (bias->ndim != 1 || bias->numel != h))
        return rt_bad(c, "bias must be 1-D with the last dimension of the input (%lld)",
                      (long long)h);
    hpcz_array *y = rt_out(c, 0, dt, x->ndim, x->dims);
    if (!y || c->infer || x->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    float alpha = k == G_QUICK ? rt_attr_f(c, "alpha", 1.702f) : 0.0f;
    if (dt == HPCZ_DTYPE_FLOAT && !c->reference) {
        gelu_job j = {k, alpha, x->data, bias ? bias->data : NULL, y->data, x->numel, h};
        rt_parallel_for_work((x->numel + GELU_CHUNK - 1) / GELU_CHUNK, gelu_task, &j,
                             (double)x->numel * 8);
        return HPCZ_OK;
    }
    for (int64_t i = 0; i < x->numel; i++) {
        double v = rt_load_d(x->data, dt, i);
        if (bias)
            v = dt == HPCZ_DTYPE_FLOAT ? (double)((float)v + ((const float *)bias->data)[i % h])
                                       : v + rt_load_d(bias->data, dt, i % h);
        rt_store_d(y->data, dt, i, gelu_d(k, v, alpha));
    }
    return HPCZ_OK;
}

static hpcz_status k_quickgelu(rt_ctx *c) { return gelu_family(c, G_QUICK); }
static hpcz_status k_fastgelu(rt_ctx *c) { return gelu_family(c, G_FAST); }
static hpcz_status k_biasgelu(rt_ctx *c) { return gelu_family(c, G_BIAS); }

/* ================================================ SkipLayerNormalization */

/* s = input + skip (+ bias), then LayerNorm (or RMSNorm: simplified) of s over
 * the last dimension with gamma (and beta). skip is the input's shape or
 * broadcasts over its leading dimensions ((1, S, H) or (S, H)). Outputs:
 * output, mean, inv_std_var (shape [.., 1]; ORT's CPU kernel leaves these two
 * unwritten: hpcz writes the statistics, mean 0 for the simplified form) and
 * input_skip_bias_sum. */
static hpcz_status skip_norm(rt_ctx *c, bool simplified)
{
    hpcz_array *x = rt_in(c, 0), *sk = rt_in(c, 1), *g = rt_in(c, 2);
    hpcz_array *be = simplified ? NULL : rt_in(c, 3), *bias = rt_in(c, simplified ? 3 : 4);
    int dt = x->dtype;
    if ((dt != HPCZ_DTYPE_FLOAT && dt != HPCZ_DTYPE_DOUBLE) || !sk || !g || sk->dtype != dt ||
        g->dtype != dt || (be && be->dtype != dt) || (bias && bias->dtype != dt))
        return rt_unsupported(c);
    if (x->ndim < 1)
        return rt_bad(c, "input must have a hidden dimension");
    int64_t H = x->dims[x->ndim - 1];
    if (g->numel != H || (be && be->numel != H) || (bias && bias->numel != H))
        return rt_bad(c, "gamma, beta and bias must have the hidden size (%lld) entries",
                      (long long)H);
    /* skip: the input's trailing dimensions, after leading 1s */
    int s0 = 0;
    while (s0 < sk->ndim - 1 && sk->dims[s0] == 1)
        s0++;
    int sr = sk->ndim - s0;
    bool skip_ok = sr >= 1 && sr <= x->ndim && sk->numel > 0;
    for (int d = 0; skip_ok && d < sr; d++)
        skip_ok = sk->dims[s0 + d] == x->dims[x->ndim - sr + d];
    if (!skip_ok)
        return rt_bad(c, "skip does not match the input (same shape, or broadcast over batch)");
    int64_t sdims[RT_MAX_RANK];
    memcpy(sdims, x->dims, sizeof sdims);
    sdims[x->ndim - 1] = 1;
    hpcz_array *y = rt_out(c, 0, dt, x->ndim, x->dims), *mo = NULL, *io = NULL, *so = NULL;
    if (!y)
        return c->err->status;
    if (c->n_out > 1 && c->out[1] && !(mo = rt_out(c, 1, HPCZ_DTYPE_FLOAT, x->ndim, sdims)))
        return c->err->status;
    if (c->n_out > 2 && c->out[2] && !(io = rt_out(c, 2, HPCZ_DTYPE_FLOAT, x->ndim, sdims)))
        return c->err->status;
    if (c->n_out > 3 && c->out[3] && !(so = rt_out(c, 3, dt, x->ndim, x->dims)))
        return c->err->status;
    if (c->infer || x->numel == 0)
        return HPCZ_OK;
    double eps = rt_attr_f(c, "epsilon", 1e-12f);
    int64_t rows = x->numel / H, srows = sk->numel / H;
    bool f32 = dt == HPCZ_DTYPE_FLOAT && !c->reference;
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = r * H, sbase = (r % srows) * H;
        if (f32) {
            const float *xs = (const float *)x->data + base, *ss = (const float *)sk->data + sbase;
            const float *bv = bias ? bias->data : NULL, *gv = g->data, *bev = be ? be->data : NULL;
            float *d = (float *)y->data + base;
            for (int64_t i = 0; i < H; i++) {
                float v = xs[i] + ss[i];
                d[i] = bv ? v + bv[i] : v;
            }
            if (so)
                memcpy((float *)so->data + base, d, (size_t)H * sizeof(float));
            float mean = 0, var = 0;
            if (!simplified) {
                for (int64_t i = 0; i < H; i++)
                    mean += d[i];
                mean /= (float)H;
            }
            for (int64_t i = 0; i < H; i++) {
                float t = d[i] - mean;
                var += t * t;
            }
            var /= (float)H;
            float inv = 1.0f / sqrtf(var + (float)eps);
            for (int64_t i = 0; i < H; i++)
                d[i] = (d[i] - mean) * inv * gv[i] + (bev ? bev[i] : 0.0f);
            if (mo)
                ((float *)mo->data)[r] = mean;
            if (io)
                ((float *)io->data)[r] = inv;
            continue;
        }
        double mean = 0, var = 0;
        for (int64_t i = 0; i < H; i++) {
            double v = rt_load_d(x->data, dt, base + i) + rt_load_d(sk->data, dt, sbase + i);
            if (dt == HPCZ_DTYPE_FLOAT)
                v = (float)v;
            if (bias)
                v += rt_load_d(bias->data, dt, i);
            rt_store_d(y->data, dt, base + i, v); /* rounded to the type, as ORT keeps it */
            if (so)
                rt_store_d(so->data, dt, base + i, v);
            mean += rt_load_d(y->data, dt, base + i);
        }
        mean = simplified ? 0 : mean / (double)H;
        for (int64_t i = 0; i < H; i++) {
            double t = rt_load_d(y->data, dt, base + i) - mean;
            var += t * t;
        }
        var /= (double)H;
        double inv = 1.0 / sqrt(var + eps);
        for (int64_t i = 0; i < H; i++)
            rt_store_d(y->data, dt, base + i,
                       (rt_load_d(y->data, dt, base + i) - mean) * inv * rt_load_d(g->data, dt, i) +
                           (be ? rt_load_d(be->data, dt, i) : 0.0));
        if (mo)
            ((float *)mo->data)[r] = (float)mean;
        if (io)
            ((float *)io->data)[r] = (float)inv;
    }
    return HPCZ_OK;
}

static hpcz_status k_skipln(rt_ctx *c) { return skip_norm(c, false); }
static hpcz_status k_skipsln(rt_ctx *c) { return skip_norm(c, true); }

/* ================================================ EmbedLayerNormalization */

/* BERT's embeddings (ORT's transformer optimizer): per token s = word[id] +
 * position[p] (+ segment[seg]), p = position_ids (rows [B, S] or [1, S]) or the
 * token's index, then LayerNorm over the hidden size with gamma and beta.
 * Outputs: output [B, S, H], mask_index [B] (the number of ones in each mask
 * row, 0 without a mask: what ORT's CPU kernel writes) and embedding_sum (s). */
static hpcz_status k_embedln(rt_ctx *c)
{
    hpcz_array *ids = rt_in(c, 0), *seg = rt_in(c, 1), *we = rt_in(c, 2), *pe = rt_in(c, 3),
               *se = rt_in(c, 4), *g = rt_in(c, 5), *be = rt_in(c, 6), *mask = rt_in(c, 7),
               *pos = rt_in(c, 8);
    if (ids->dtype != HPCZ_DTYPE_INT32 || !we || !pe || !g || !be ||
        we->dtype != HPCZ_DTYPE_FLOAT || pe->dtype != HPCZ_DTYPE_FLOAT ||
        g->dtype != HPCZ_DTYPE_FLOAT || be->dtype != HPCZ_DTYPE_FLOAT ||
        (se && se->dtype != HPCZ_DTYPE_FLOAT) || (seg && seg->dtype != HPCZ_DTYPE_INT32) ||
        (mask && mask->dtype != HPCZ_DTYPE_INT32) || (pos && pos->dtype != HPCZ_DTYPE_INT32))
        return rt_unsupported(c);
    if (ids->ndim != 2 || we->ndim != 2 || pe->ndim != 2 || (se && se->ndim != 2))
        return rt_bad(c, "input_ids must be 2-D and the embeddings 2-D");
    int64_t B = ids->dims[0], S = ids->dims[1], H = we->dims[1];
    if (pe->dims[1] != H || (se && se->dims[1] != H) || g->numel != H || be->numel != H)
        return rt_bad(c, "the embeddings, gamma and beta must have one hidden size (%lld)",
                      (long long)H);
    if ((!seg) != (!se) || (seg && !rt_same_shape(seg, ids)) || (mask && !rt_same_shape(mask, ids)))
        return rt_bad(c, "segment_ids (with segment_embedding) and mask must have input_ids' shape");
    if (pos && (pos->ndim != 2 || pos->dims[1] != S || (pos->dims[0] != B && pos->dims[0] != 1)))
        return rt_bad(c, "position_ids must be [batch, sequence] or [1, sequence]");
    if (!pos && S > pe->dims[0])
        return rt_bad(c, "sequence length %lld exceeds the %lld position embeddings", (long long)S,
                      (long long)pe->dims[0]);
    int64_t dims[3] = {B, S, H};
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, 3, dims), *mi = NULL, *es = NULL;
    if (!y)
        return c->err->status;
    if (c->n_out > 1 && c->out[1] && !(mi = rt_out(c, 1, HPCZ_DTYPE_INT32, 1, dims)))
        return c->err->status;
    if (c->n_out > 2 && c->out[2] && !(es = rt_out(c, 2, HPCZ_DTYPE_FLOAT, 3, dims)))
        return c->err->status;
    if (c->infer)
        return HPCZ_OK;
    const int32_t *idd = ids->data, *sgd = seg ? seg->data : NULL, *pd = pos ? pos->data : NULL;
    const float *gd = g->data, *bd = be->data;
    double eps = rt_attr_f(c, "epsilon", 1e-12f);
    for (int64_t t = 0; t < B * S; t++) {
        int64_t w = idd[t], p = pd ? pd[(pos->dims[0] == 1 ? 0 : t / S) * S + t % S] : t % S;
        int64_t sg = sgd ? sgd[t] : 0;
        if (w < 0 || w >= we->dims[0] || p < 0 || p >= pe->dims[0] || (se && (sg < 0 || sg >= se->dims[0])))
            return rt_bad(c, "token %lld: an id is out of its embedding's range", (long long)t);
        const float *wr = (const float *)we->data + w * H, *pr = (const float *)pe->data + p * H;
        const float *sr = se ? (const float *)se->data + sg * H : NULL;
        float *d = (float *)y->data + t * H;
        for (int64_t i = 0; i < H; i++) {
            float v = wr[i] + pr[i];
            d[i] = sr ? v + sr[i] : v;
        }
        if (es)
            memcpy((float *)es->data + t * H, d, (size_t)H * sizeof(float));
        if (c->reference) {
            double mean = 0, var = 0;
            for (int64_t i = 0; i < H; i++)
                mean += d[i];
            mean /= (double)H;
            for (int64_t i = 0; i < H; i++)
                var += (d[i] - mean) * (d[i] - mean);
            double inv = 1.0 / sqrt(var / (double)H + eps);
            for (int64_t i = 0; i < H; i++)
                d[i] = (float)((d[i] - mean) * inv * gd[i] + bd[i]);
            continue;
        }
        float mean = 0, var = 0;
        for (int64_t i = 0; i < H; i++)
            mean += d[i];
        mean /= (float)H;
        for (int64_t i = 0; i < H; i++)
            var += (d[i] - mean) * (d[i] - mean);
        float inv = 1.0f / sqrtf(var / (float)H + (float)eps);
        for (int64_t i = 0; i < H; i++)
            d[i] = (d[i] - mean) * inv * gd[i] + bd[i];
    }
    if (mi)
        for (int64_t b = 0; b < B; b++) {
            int32_t n = 0;
            for (int64_t i = 0; mask && i < S; i++)
                n += ((const int32_t *)mask->data)[b * S + i] == 1;
            ((int32_t *)mi->data)[b] = n;
        }
    return HPCZ_OK;
}

/* ================================================================ Attention */

/* ORT's fused BERT self-attention, without a KV cache: QKV = input weights
 * (+ bias), split into num_heads heads (Q and K of hidden_size / num_heads,
 * V of v_hidden_size / num_heads: qkv_hidden_sizes), per head
 * softmax(scale Q K^T + mask (+ attention_bias)) V. The mask is additive
 * (mask_filter_value, default -10000, where a key is masked): mask_index [B]
 * (keys at or past the length), [2B] (and before the start), [B, T] or
 * [B, S, T] raw (0 masks; ORT's CPU kernel has no 4-D form); unidirectional gives keys after
 * the query the lowest float instead (ORT: so a query whose earlier keys are
 * all masked still attends to none of the later ones). past/present, rotary and past_sequence_length: declined. */
static bool attention_ok(const hpcz_node *n)
{
    for (size_t i = 4; i < n->n_inputs; i++)
        if (n->inputs[i] && i != 5)
            return false; /* past, past_sequence_length */
    for (size_t i = 1; i < n->n_outputs; i++)
        if (n->outputs[i])
            return false; /* present */
    return hpcz_node_attr_int(n, "do_rotary", 0) == 0 && hpcz_node_attr_int(n, "num_heads", 0) > 0;
}

static hpcz_status k_msattention(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *wt = rt_in(c, 1), *bias = rt_in(c, 2), *mask = rt_in(c, 3),
               *ab = rt_in(c, 5);
    if (x->dtype != HPCZ_DTYPE_FLOAT || !wt || wt->dtype != HPCZ_DTYPE_FLOAT ||
        (bias && bias->dtype != HPCZ_DTYPE_FLOAT) || (ab && ab->dtype != HPCZ_DTYPE_FLOAT) ||
        (mask && mask->dtype != HPCZ_DTYPE_INT32))
        return rt_unsupported(c);
    int64_t nh = rt_attr_i(c, "num_heads", 0);
    if (x->ndim != 3 || wt->ndim != 2 || wt->dims[0] != x->dims[2])
        return rt_bad(c, "input must be [batch, sequence, hidden] and weights [hidden, 3 x hidden]");
    int64_t B = x->dims[0], S = x->dims[1], Hin = x->dims[2], W3 = wt->dims[1], Hq, Hv;
    size_t nq;
    const int64_t *qkv = rt_attr_ints(c, "qkv_hidden_sizes", &nq);
    if (qkv) {
        if (nq != 3 || qkv[0] != qkv[1] || qkv[0] + qkv[1] + qkv[2] != W3)
            return rt_bad(c, "qkv_hidden_sizes must be 3 sizes, Q's and K's equal, summing to the weights' columns");
        Hq = qkv[0];
        Hv = qkv[2];
    } else {
        if (W3 % 3)
            return rt_bad(c, "the weights' columns are not 3 x hidden");
        Hq = Hv = W3 / 3;
    }
    if (Hq % nh || Hv % nh)
        return rt_bad(c, "num_heads does not divide the hidden sizes");
    if (bias && bias->numel != W3)
        return rt_bad(c, "bias must have %lld entries", (long long)W3);
    int64_t T = S, hq = Hq / nh, hv = Hv / nh;
    int mk = 0; /* 1: lengths [B], 2: [2B], 3: raw [B, T], 4: raw [B, S, T] */
    if (mask) {
        if (mask->ndim == 1 && mask->dims[0] == B)
            mk = 1;
        else if (mask->ndim == 1 && mask->dims[0] == 2 * B)
            mk = 2;
        else if (mask->ndim == 2 && mask->dims[0] == B && mask->dims[1] == T)
            mk = 3;
        else if (mask->ndim == 3 && mask->dims[0] == B && mask->dims[1] == S && mask->dims[2] == T)
            mk = 4;
        else /* ORT's CPU kernel has no 4-D masks either */
            return rt_unsupported(c);
    }
    if (ab && (ab->ndim != 4 || (ab->dims[0] != B && ab->dims[0] != 1) ||
               (ab->dims[1] != nh && ab->dims[1] != 1) || ab->dims[2] != S || ab->dims[3] != T))
        return rt_bad(c, "attention_bias must be [batch or 1, heads or 1, sequence, sequence]");
    int64_t dims[3] = {B, S, Hv};
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, 3, dims);
    if (!y || c->infer || y->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    float scale = rt_attr_f(c, "scale", 0.0f);
    if (scale <= 0)
        scale = 1.0f / sqrtf((float)hq);
    float filt = rt_attr_f(c, "mask_filter_value", -10000.0f);
    bool uni = rt_attr_i(c, "unidirectional", 0) != 0;
    float *qkvb = malloc((size_t)(B * S * W3 + S * T) * sizeof(float));
    if (!qkvb)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    float *sc = qkvb + B * S * W3;
    const float *xd = x->data, *wd = wt->data, *bd = bias ? bias->data : NULL;
    const int32_t *md = mask ? mask->data : NULL;
    if (c->reference) {
        for (int64_t r = 0; r < B * S; r++)
            for (int64_t j = 0; j < W3; j++) {
                double acc = 0;
                for (int64_t k = 0; k < Hin; k++)
                    acc += (double)xd[r * Hin + k] * wd[k * W3 + j];
                qkvb[r * W3 + j] = (float)acc + (bd ? bd[j] : 0.0f);
            }
    } else {
        rt_sgemm_ex(false, false, B * S, W3, Hin, 1.0f, xd, Hin, wd, W3, 0.0f, qkvb, W3, NULL, bd, NULL);
    }
    float *yd = y->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < nh; h++) {
            const float *q = qkvb + b * S * W3 + h * hq, *k = qkvb + b * S * W3 + Hq + h * hq;
            const float *v = qkvb + b * S * W3 + 2 * Hq + h * hv;
            if (c->reference) {
                for (int64_t i = 0; i < S; i++)
                    for (int64_t t = 0; t < T; t++) {
                        double acc = 0;
                        for (int64_t d = 0; d < hq; d++)
                            acc += (double)q[i * W3 + d] * k[t * W3 + d];
                        sc[i * T + t] = (float)acc * scale;
                    }
            } else {
                rt_sgemm(false, true, S, T, hq, scale, q, W3, k, W3, 0.0f, sc, T);
            }
            for (int64_t i = 0; i < S; i++) {
                float *row = sc + i * T;
                for (int64_t t = 0; t < T; t++) {
                    bool masked = false;
                    if (mk == 1)
                        masked = t >= md[b];
                    else if (mk == 2)
                        masked = t >= md[b] || t < md[B + b];
                    else if (mk == 3)
                        masked = md[b * T + t] <= 0;
                    else if (mk == 4)
                        masked = md[(b * S + i) * T + t] <= 0;
                    if (masked)
                        row[t] += filt;
                    if (uni && t > i) { /* ORT: the lowest float, not the filter value */
                        row[t] = -FLT_MAX;
                        continue;
                    }
                    if (ab)
                        row[t] += ((const float *)ab->data)[(((ab->dims[0] == 1 ? 0 : b) * ab->dims[1] +
                                                             (ab->dims[1] == 1 ? 0 : h)) * S + i) * T + t];
                }
                float mx = row[0], sum = 0;
                for (int64_t t = 1; t < T; t++)
                    mx = row[t] > mx ? row[t] : mx;
                for (int64_t t = 0; t < T; t++)
                    row[t] -= mx;
                if (c->reference)
                    for (int64_t t = 0; t < T; t++)
                        row[t] = expf(row[t]);
                else
                    rt_vexp(row, row, T);
                for (int64_t t = 0; t < T; t++)
                    sum += row[t];
                for (int64_t t = 0; t < T; t++)
                    row[t] /= sum;
            }
            float *o = yd + b * S * Hv + h * hv;
            if (c->reference) {
                for (int64_t i = 0; i < S; i++)
                    for (int64_t d = 0; d < hv; d++) {
                        double acc = 0;
                        for (int64_t t = 0; t < T; t++)
                            acc += (double)sc[i * T + t] * v[t * W3 + d];
                        o[i * Hv + d] = (float)acc;
                    }
            } else {
                rt_sgemm(false, false, S, hv, T, 1.0f, sc, T, v, W3, 0.0f, o, Hv);
            }
        }
    free(qkvb);
    return HPCZ_OK;
}

/* ================================================================ GatherBlockQuantized */

/* Rows of a block-quantized table: data uint8 [V, D * bits / 8] (bits 4: two
 * codes per byte, low nibble first; bits 8: one), scales [V, ceil(D / block)],
 * zero points packed like the data, row by row: [V, ceil(nblk * bits / 8)],
 * a row's last byte padded (ONNX Runtime 1.32 reads them so; 1.23 read them
 * over the flattened [V, nblk], so a file whose zero points have exactly
 * ceil(V * nblk * bits / 8) entries, fewer than the row form, is read that
 * way) or absent (2^(bits-1)); gather_axis 0, quantize_axis the last. Row r,
 * element d: (q - zp[r][d / block]) * scale. */
static bool gbq_ok(const hpcz_node *n)
{
    int64_t bits = hpcz_node_attr_int(n, "bits", 4), bs = hpcz_node_attr_int(n, "block_size", 128);
    int64_t qa = hpcz_node_attr_int(n, "quantize_axis", 1);
    return (bits == 4 || bits == 8) && bs >= 16 && (bs & (bs - 1)) == 0 &&
           hpcz_node_attr_int(n, "gather_axis", 0) == 0 && (qa == 1 || qa == -1);
}

static hpcz_status k_gatherbq(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *idx = rt_in(c, 1), *sc = rt_in(c, 2), *zp = rt_in(c, 3);
    if (!idx || (idx->dtype != HPCZ_DTYPE_INT64 && idx->dtype != HPCZ_DTYPE_INT32) || !sc ||
        sc->dtype != HPCZ_DTYPE_FLOAT || (zp && zp->dtype != HPCZ_DTYPE_UINT8) || x->ndim != 2 ||
        sc->ndim != 2)
        return rt_unsupported(c);
    int bits = (int)rt_attr_i(c, "bits", 4);
    int64_t bs = rt_attr_i(c, "block_size", 128);
    int per = 8 / bits;
    int64_t V = x->dims[0], D = x->dims[1] * per, nblk = (D + bs - 1) / bs;
    int64_t zrow = (nblk + per - 1) / per, zflat = (V * nblk + per - 1) / per;
    if (sc->dims[0] != V || sc->dims[1] != nblk)
        return rt_bad(c, "scales are [%lld, %lld], not [%lld, %lld]", (long long)sc->dims[0],
                      (long long)sc->dims[1], (long long)V, (long long)nblk);
    if (zp && zp->numel != V * zrow && zp->numel != zflat)
        return rt_bad(c, "zero_points has %lld entries, not %lld", (long long)zp->numel,
                      (long long)(V * zrow));
    if (idx->ndim + 1 > RT_MAX_RANK)
        return rt_unsupported(c);
    int64_t d[RT_MAX_RANK];
    memcpy(d, idx->dims, sizeof(int64_t) * (size_t)idx->ndim);
    d[idx->ndim] = D;
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, idx->ndim + 1, d);
    if (!y || c->infer || !y->numel)
        return y ? HPCZ_OK : c->err->status;
    const uint8_t *q = x->data, *z = zp ? zp->data : NULL;
    bool zrows = zp && zp->numel == V * zrow;
    const float *s = sc->data;
    float *yd = y->data;
    int mask = (1 << bits) - 1;
    for (int64_t j = 0; j < idx->numel; j++) {
        int64_t r = rt_int_at(idx, j);
        if (r < -V || r >= V)
            return rt_bad(c, "index %lld out of range [-%lld, %lld)", (long long)r, (long long)V,
                          (long long)V);
        if (r < 0)
            r += V;
        const uint8_t *row = q + r * x->dims[1];
        float *o = yd + j * D;
        for (int64_t b = 0; b < nblk; b++) {
            float zf = (float)(1 << (bits - 1));
            int64_t zi = zrows ? r * zrow * per + b : r * nblk + b;
            if (z)
                zf = (float)((z[zi / per] >> ((zi % per) * bits)) & mask);
            float sb = s[r * nblk + b];
            int64_t hi = (b + 1) * bs < D ? (b + 1) * bs : D;
            for (int64_t e = b * bs; e < hi; e++)
                o[e] = ((float)((row[e / per] >> ((e % per) * bits)) & mask) - zf) * sb;
        }
    }
    return HPCZ_OK;
}

static const rt_op ops[] = {
    {"com.microsoft", "GatherBlockQuantized", 1, RT_T(HPCZ_DTYPE_UINT8), 0, k_gatherbq, gbq_ok},
    {"com.microsoft", "MatMulNBits", 1, RT_TF32, 0, k_matmulnbits, nbits_ok},
    {"com.microsoft", "QuickGelu", 1, RT_TFLOATS, 0, k_quickgelu, NULL},
    {"com.microsoft", "FastGelu", 1, RT_TFLOATS, 0, k_fastgelu, NULL},
    {"com.microsoft", "BiasGelu", 1, RT_TFLOATS, 0, k_biasgelu, NULL},
    {"com.microsoft", "SkipLayerNormalization", 1, RT_TFLOATS, 0, k_skipln, NULL},
    {"com.microsoft", "SkipSimplifiedLayerNormalization", 1, RT_TFLOATS, 0, k_skipsln, NULL},
    {"com.microsoft", "Attention", 1, RT_TF32, 0, k_msattention, attention_ok},
    {"com.microsoft", "EmbedLayerNormalization", 1, RT_T(HPCZ_DTYPE_INT32), 0, k_embedln, NULL},
};

const rt_op_table rt_ops_contrib = {ops, HPCZ_ARRAY_SIZE(ops)};
