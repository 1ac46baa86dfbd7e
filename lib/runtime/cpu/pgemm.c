/*
 * pgemm.c - C = A x B with B constant and packed once (at plan time) into
 * panels of 16 columns, for products with few rows of A: batch-1 Gemm
 * layers over a sequence (ddddocr_ocr's 24 x 1024 x 8210 classifier) and
 * the LSTM's input projection and per-step recurrent product. OpenBLAS
 * packs all of B again on every call, which for so few rows costs more
 * than the multiply-adds (the classifier ran at 21 GFLOP/s, half of it in
 * sgemm_incopy), and its GEMV read the LSTM's R at 10 GB/s.
 *
 * Tiles of up to PG_MR rows x 16 columns accumulate over k in registers,
 * bias first, then k in order; a task takes a run of panels and every row
 * block, so each element is the same sum for any thread count.
 */
#include "../rt.h"

#define PG_NR 16
#define PG_MR 6
#define PG_PANELS 4 /* panels per task */

struct rt_pgemm_b {
    const void *src; /* the B it was packed from (a stale-copy check) */
    int64_t k, n;
    float p[]; /* [ceil(n / 16)][k][16], columns past n zero */
};

bool rt_pgemm_available(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

size_t rt_pgemm_size(int64_t k, int64_t n)
{
    return sizeof(rt_pgemm_b) + (size_t)((n + PG_NR - 1) / PG_NR * k * PG_NR) * sizeof(float);
}

rt_pgemm_b *rt_pgemm_pack_into(void *mem, const float *b, bool tb, int64_t k, int64_t n,
                               int64_t ldb)
{
    rt_pgemm_b *pb = mem;
    memset(pb, 0, rt_pgemm_size(k, n));
    pb->src = b;
    pb->k = k;
    pb->n = n;
    for (int64_t j = 0; j < n; j++) {
        float *dst = pb->p + (j / PG_NR) * k * PG_NR + j % PG_NR;
        for (int64_t i = 0; i < k; i++)
            dst[i * PG_NR] = tb ? b[j * ldb + i] : b[i * ldb + j];
    }
    return pb;
}

rt_pgemm_b *rt_pgemm_pack(const float *b, bool tb, int64_t k, int64_t n, int64_t ldb)
{
    void *mem = malloc(rt_pgemm_size(k, n));
    return mem ? rt_pgemm_pack_into(mem, b, tb, k, n, ldb) : NULL;
}

bool rt_pgemm_fits(const rt_pgemm_b *pb, const float *b, int64_t k, int64_t n)
{
    return pb && pb->src == b && pb->k == k && pb->n == n;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

typedef struct pg_job {
    int64_t m;
    const float *a;
    int64_t ars, aks; /* a[i][k] at a[i * ars + k * aks] */
    const rt_pgemm_b *pb;
    const float *bias;
    float *c;
    int64_t ldc;
    const rt_act *act;
    int64_t panels; /* per task */
} pg_job;

/* The activation over every row of panels [q0, q1). */
static void pg_act(const pg_job *j, int64_t q0, int64_t q1)
{
    if (j->act && j->act->kind != RT_ACT_NONE) {
        int64_t n = j->pb->n, c0 = q0 * PG_NR, c1 = q1 * PG_NR < n ? q1 * PG_NR : n;
        for (int64_t i = 0; i < j->m; i++)
            rt_act_apply(j->act, j->c + i * j->ldc + c0, c1 - c0);
    }
}

/* Rows [i0, i0 + MR) x the 16 columns of panel q (nr of them stored).
 * With one or two rows the sums over k are split into KU interleaved
 * chains (k = u mod KU), added at the end: a single chain per register
 * would wait on the FMA latency at every k. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
pg_tile(const pg_job *j, int64_t i0, int64_t q, int nr, const int MR)
{
    enum { KU_MAX = 4 };
    const int KU = MR == 1 ? 4 : MR == 2 ? 2 : 1;
    int64_t K = j->pb->k;
    const float *bp = j->pb->p + q * K * PG_NR;
    __m256 b0 = _mm256_setzero_ps(), b1 = b0;
    if (j->bias) {
        float bias[PG_NR] = {0};
        memcpy(bias, j->bias + q * PG_NR, (size_t)nr * sizeof *bias);
        b0 = _mm256_loadu_ps(bias);
        b1 = _mm256_loadu_ps(bias + 8);
    }
    __m256 c[KU_MAX][PG_MR][2];
    const float *ar[PG_MR];
    for (int r = 0; r < MR; r++) {
        for (int u = 0; u < KU; u++)
            c[u][r][0] = c[u][r][1] = _mm256_setzero_ps();
        c[0][r][0] = b0;
        c[0][r][1] = b1;
        ar[r] = j->a + (i0 + r) * j->ars;
    }
    int64_t aks = j->aks, k = 0;
    for (; k + KU <= K; k += KU, bp += KU * PG_NR)
        for (int u = 0; u < KU; u++) {
            __m256 x0 = _mm256_loadu_ps(bp + u * PG_NR), x1 = _mm256_loadu_ps(bp + u * PG_NR + 8);
            for (int r = 0; r < MR; r++) {
                __m256 av = _mm256_broadcast_ss(ar[r] + (k + u) * aks);
                c[u][r][0] = _mm256_fmadd_ps(av, x0, c[u][r][0]);
                c[u][r][1] = _mm256_fmadd_ps(av, x1, c[u][r][1]);
            }
        }
    for (int u = 0; k < K; k++, u++, bp += PG_NR) {
        __m256 x0 = _mm256_loadu_ps(bp), x1 = _mm256_loadu_ps(bp + 8);
        for (int r = 0; r < MR; r++) {
            __m256 av = _mm256_broadcast_ss(ar[r] + k * aks);
            c[u][r][0] = _mm256_fmadd_ps(av, x0, c[u][r][0]);
            c[u][r][1] = _mm256_fmadd_ps(av, x1, c[u][r][1]);
        }
    }
    for (int r = 0; r < MR; r++) {
        for (int h = 0; h < 2; h++) {
            if (KU == 4) {
                c[0][r][h] = _mm256_add_ps(_mm256_add_ps(c[0][r][h], c[1][r][h]),
                                           _mm256_add_ps(c[2][r][h], c[3][r][h]));
            } else if (KU == 2) {
                c[0][r][h] = _mm256_add_ps(c[0][r][h], c[1][r][h]);
            }
        }
        float *y = j->c + (i0 + r) * j->ldc + q * PG_NR;
        if (nr == PG_NR) {
            _mm256_storeu_ps(y, c[0][r][0]);
            _mm256_storeu_ps(y + 8, c[0][r][1]);
        } else {
            float tmp[PG_NR];
            _mm256_storeu_ps(tmp, c[0][r][0]);
            _mm256_storeu_ps(tmp + 8, c[0][r][1]);
            memcpy(y, tmp, (size_t)nr * sizeof *tmp);
        }
    }
}

/* pg_tile on AVX-512 (rt_cpu_avx512): a row of the panel is one zmm; the
 * same chains (bias first, k = u mod KU) added the same way, so the same
 * bits as the AVX2 tile. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
pg_tile512(const pg_job *j, int64_t i0, int64_t q, int nr, const int MR)
{
    enum { KU_MAX = 4 };
    const int KU = MR == 1 ? 4 : MR == 2 ? 2 : 1;
    int64_t K = j->pb->k;
    const float *bp = j->pb->p + q * K * PG_NR;
    __mmask16 keep = nr == PG_NR ? 0xffff : (__mmask16)((1u << nr) - 1);
    __m512 b0 = j->bias ? _mm512_maskz_loadu_ps(keep, j->bias + q * PG_NR) : _mm512_setzero_ps();
    __m512 c[KU_MAX][PG_MR];
    const float *ar[PG_MR];
    for (int r = 0; r < MR; r++) {
        for (int u = 1; u < KU; u++)
            c[u][r] = _mm512_setzero_ps();
        c[0][r] = b0;
        ar[r] = j->a + (i0 + r) * j->ars;
    }
    int64_t aks = j->aks, k = 0;
    for (; k + KU <= K; k += KU, bp += KU * PG_NR)
        for (int u = 0; u < KU; u++) {
            __m512 x = _mm512_loadu_ps(bp + u * PG_NR);
            for (int r = 0; r < MR; r++)
                c[u][r] = _mm512_fmadd_ps(_mm512_set1_ps(ar[r][(k + u) * aks]), x, c[u][r]);
        }
    for (int u = 0; k < K; k++, u++, bp += PG_NR) {
        __m512 x = _mm512_loadu_ps(bp);
        for (int r = 0; r < MR; r++)
            c[u][r] = _mm512_fmadd_ps(_mm512_set1_ps(ar[r][k * aks]), x, c[u][r]);
    }
    for (int r = 0; r < MR; r++) {
        if (KU == 4)
            c[0][r] = _mm512_add_ps(_mm512_add_ps(c[0][r], c[1][r]),
                                    _mm512_add_ps(c[2][r], c[3][r]));
        else if (KU == 2)
            c[0][r] = _mm512_add_ps(c[0][r], c[1][r]);
        _mm512_mask_storeu_ps(j->c + (i0 + r) * j->ldc + q * PG_NR, keep, c[0][r]);
    }
}

__attribute__((target("avx512f,avx512vl,fma"))) static void pg_task512(void *ctx, int64_t t)
{
    const pg_job *j = ctx;
    int64_t n = j->pb->n, np = (n + PG_NR - 1) / PG_NR;
    int64_t q0 = t * j->panels, q1 = q0 + j->panels < np ? q0 + j->panels : np;
    for (int64_t q = q0; q < q1; q++) {
        int nr = (int)(n - q * PG_NR < PG_NR ? n - q * PG_NR : PG_NR);
        int64_t i = 0;
        for (; i + PG_MR <= j->m; i += PG_MR)
            pg_tile512(j, i, q, nr, PG_MR);
        switch (j->m - i) {
        case 5: pg_tile512(j, i, q, nr, 5); break;
        case 4: pg_tile512(j, i, q, nr, 4); break;
        case 3: pg_tile512(j, i, q, nr, 3); break;
        case 2: pg_tile512(j, i, q, nr, 2); break;
        case 1: pg_tile512(j, i, q, nr, 1); break;
        default: break;
        }
    }
    pg_act(j, q0, q1);
}

__attribute__((target("avx2,fma"))) static void pg_task(void *ctx, int64_t t)
{
    const pg_job *j = ctx;
    int64_t n = j->pb->n, np = (n + PG_NR - 1) / PG_NR;
    int64_t q0 = t * j->panels, q1 = q0 + j->panels < np ? q0 + j->panels : np;
    for (int64_t q = q0; q < q1; q++) {
        int nr = (int)(n - q * PG_NR < PG_NR ? n - q * PG_NR : PG_NR);
        int64_t i = 0;
        for (; i + PG_MR <= j->m; i += PG_MR)
            pg_tile(j, i, q, nr, PG_MR);
        switch (j->m - i) {
        case 5: pg_tile(j, i, q, nr, 5); break;
        case 4: pg_tile(j, i, q, nr, 4); break;
        case 3: pg_tile(j, i, q, nr, 3); break;
        case 2: pg_tile(j, i, q, nr, 2); break;
        case 1: pg_tile(j, i, q, nr, 1); break;
        default: break;
        }
    }
    pg_act(j, q0, q1);
}
#endif

void rt_pgemm(int64_t m, const float *a, int64_t lda, bool ta, const rt_pgemm_b *pb,
              const float *bias_n, float *c, int64_t ldc, const rt_act *act)
{
#if defined(__x86_64__) && defined(__GNUC__)
    int64_t np = (pb->n + PG_NR - 1) / PG_NR, panels = PG_PANELS;
    if (m <= 2) {
        /* a GEMV (an LSTM step): bound by reading B, so one run of panels
         * per thread. The caller and a worker mostly take the same task at
         * every call, so each keeps its part of B in its own cache (a
         * recurrent 2048 x 512 R: 2 MiB a core at 2 threads) */
        int t = rt_threads();
        panels = (np + t - 1) / t;
    }
    pg_job j = {m, a, ta ? 1 : lda, ta ? lda : 1, pb, bias_n, c, ldc, act, panels};
    rt_parallel_for_work((np + panels - 1) / panels, rt_cpu_avx512() ? pg_task512 : pg_task, &j,
                         (double)m * (double)pb->n * (double)pb->k);
#else
    (void)m, (void)a, (void)lda, (void)ta, (void)pb, (void)bias_n, (void)c, (void)ldc, (void)act;
#endif
}
