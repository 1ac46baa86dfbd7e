/*
 * pgemm.c - C = A x B with B constant and packed once (at plan time) into
 * panels of 16 columns: batch-1 Gemm layers over a sequence (ddddocr_ocr's
 * 24 x 1024 x 8210 classifier), the LSTM's input projection and per-step
 * recurrent product, and the MatMuls of a transformer against its weights
 * (minilm's projections). OpenBLAS packs all of B again on every call,
 * which for few rows costs more than the multiply-adds (the classifier ran
 * at 21 GFLOP/s, half of it in sgemm_incopy), its GEMV read the LSTM's R
 * at 10 GB/s, and for minilm's 64 x 384 x 384 products it was a third of
 * the time.
 *
 * One or two rows (a GEMV) run as tiles over the whole of k with the sums
 * split into interleaved chains. More rows run blocked: A packed per tile
 * of rows on the stack, k in blocks of about PG_KC (a panel's block is
 * contiguous in the packed B), tiles of 8 rows x 2 panels (AVX-512) or 6
 * rows x 1 panel (AVX2), a tile's sums stored between k blocks and read
 * back. Each element is one sum over k in order, the bias added first
 * (GEMV) or last (blocked), whatever the tiling, so the thread count, the
 * blocking and the ISA leave the bytes unchanged.
 */
#include "../rt.h"

#define PG_NR 16
#define PG_MR 6
#define PG_PANELS 4 /* panels per task */
/* the blocked path (more than two rows) */
#define PG_KC 256   /* k per block, at most: a panel's block is 16 KiB */
#define PG_MR8 12   /* AVX-512 tile: 12 rows x 2 panels, 24 accumulators */
#define PG_MC 96    /* rows per task (a multiple of both tiles' rows) */
#define PG_GP 4     /* panels per task */

struct rt_pgemm_b {
    const void *src; /* the B it was packed from (a stale-copy check) */
    int64_t k, n;
    /* [ceil(n / 16)][k][16], columns past n zero; on a cache line (a
     * misaligned zmm load of B reads two lines: 15% of the time) */
    _Alignas(64) float p[];
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
    void *mem = aligned_alloc(64, (rt_pgemm_size(k, n) + 63) / 64 * 64);
    return mem ? rt_pgemm_pack_into(mem, b, tb, k, n, ldb) : NULL;
}

bool rt_pgemm_wins(int64_t m, int64_t k, int64_t n)
{
    /* measured at 1 thread against OpenBLAS 0.3.21 (SkylakeX and Haswell
     * kernels): faster from 3 x 384 x 384 to 1536 x 1536 x 384 and 2000 x
     * 27 x 300, slower at 1024 x 4096 x 1024 (k blocks stored and read
     * back 16 times); narrow B wastes most of a 16-column panel */
    return rt_pgemm_available() && n >= 16 && n * k >= 4096 && (m <= RT_PGEMM_MAXM || k <= 2048);
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
    int64_t kc, nkb; /* blocked path: k per block, blocks */
} pg_job;

/* The activation over rows [i0, i1) of panels [q0, q1). */
static void pg_act(const pg_job *j, int64_t i0, int64_t i1, int64_t q0, int64_t q1)
{
    if (rt_act_any(j->act)) {
        int64_t n = j->pb->n, c0 = q0 * PG_NR, c1 = q1 * PG_NR < n ? q1 * PG_NR : n;
        for (int64_t i = i0; i < i1; i++)
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
    pg_act(j, 0, j->m, q0, q1);
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
    pg_act(j, 0, j->m, q0, q1);
}
/* ---- the blocked path */

/* A task's rows and panels: row blocks of PG_MC x runs of PG_GP panels. */
static void pb_range(const pg_job *j, int64_t t, int64_t *i0, int64_t *i1, int64_t *q0,
                     int64_t *q1)
{
    int64_t np = (j->pb->n + PG_NR - 1) / PG_NR, ng = (np + PG_GP - 1) / PG_GP;
    *i0 = t / ng * PG_MC;
    *i1 = *i0 + PG_MC < j->m ? *i0 + PG_MC : j->m;
    *q0 = t % ng * PG_GP;
    *q1 = *q0 + PG_GP < np ? *q0 + PG_GP : np;
}

/* C rows [i0, i0 + MR) x panels q .. q + NP - 1 (nr[p] columns stored of
 * each) += A's rows from ap (= A + i0 rows; k contiguous) over the k block
 * [k0, k0 + kc); the first block starts from zero, the others from C, and
 * the last adds the bias (a MatMul and its bias Add fused give the bytes
 * of the two ops). A is read in place: packing it per tile cost a quarter of
 * the time (a tile's rows serve only PG_GP / 2 tiles). */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
pb_tile512(const pg_job *j, const float *ap, int64_t i0, int64_t q, const int *nr, int64_t k0,
           int64_t kc, const int MR, const int NP)
{
    int64_t K = j->pb->k;
    /* rows 3g + h at g3[g] + h * L: five registers for twelve rows */
    const char *g3[PG_MR8 / 3];
    int64_t L = j->ars * (int64_t)sizeof(float);
    for (int g = 0; g < (MR + 2) / 3; g++)
        g3[g] = (const char *)(ap + 3 * g * j->ars + k0);
    const float *bp = j->pb->p + q * K * PG_NR + k0 * PG_NR;
    __mmask16 keep[2];
    __m512 c[PG_MR8][2];
    for (int p = 0; p < NP; p++)
        keep[p] = nr[p] == PG_NR ? 0xffff : (__mmask16)((1u << nr[p]) - 1);
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) {
            float *y = j->c + (i0 + r) * j->ldc + (q + p) * PG_NR;
            c[r][p] = k0 ? _mm512_maskz_loadu_ps(keep[p], y) : _mm512_setzero_ps();
        }
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        __m512 x[2];
        for (int p = 0; p < NP; p++) {
            x[p] = _mm512_loadu_ps(bp + p * K * PG_NR + k * PG_NR);
            _mm_prefetch((const char *)(bp + p * K * PG_NR + (k + 16) * PG_NR), _MM_HINT_T0);
        }
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(*(const float *)(g3[r / 3] + (r % 3) * L + k * 4));
            for (int p = 0; p < NP; p++)
                c[r][p] = _mm512_fmadd_ps(av, x[p], c[r][p]);
        }
    }
    if (j->bias && k0 + kc == K)
        for (int p = 0; p < NP; p++) {
            __m512 bv = _mm512_maskz_loadu_ps(keep[p], j->bias + (q + p) * PG_NR);
            for (int r = 0; r < MR; r++)
                c[r][p] = _mm512_add_ps(c[r][p], bv);
        }
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++)
            _mm512_mask_storeu_ps(j->c + (i0 + r) * j->ldc + (q + p) * PG_NR, keep[p], c[r][p]);
}

/* The same on AVX2: 6 rows x 1 panel (two ymm a row). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
pb_tile(const pg_job *j, const float *ap, int64_t i0, int64_t q, int nr, int64_t k0, int64_t kc,
        const int MR)
{
    int64_t K = j->pb->k;
    const float *ar[PG_MR];
    for (int r = 0; r < MR; r++)
        ar[r] = ap + r * j->ars + k0;
    const float *bp = j->pb->p + q * K * PG_NR + k0 * PG_NR;
    __m256 c[PG_MR][2];
    for (int r = 0; r < MR; r++) {
        const float *from = k0 ? j->c + (i0 + r) * j->ldc + q * PG_NR : NULL;
        float part[PG_NR] = {0};
        if (from && nr < PG_NR)
            from = memcpy(part, from, (size_t)nr * sizeof *part);
        c[r][0] = from ? _mm256_loadu_ps(from) : _mm256_setzero_ps();
        c[r][1] = from ? _mm256_loadu_ps(from + 8) : _mm256_setzero_ps();
    }
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        __m256 x0 = _mm256_loadu_ps(bp + k * PG_NR), x1 = _mm256_loadu_ps(bp + k * PG_NR + 8);
        for (int r = 0; r < MR; r++) {
            __m256 av = _mm256_broadcast_ss(ar[r] + k);
            c[r][0] = _mm256_fmadd_ps(av, x0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(av, x1, c[r][1]);
        }
    }
    if (j->bias && k0 + kc == K) {
        float bias[PG_NR] = {0};
        memcpy(bias, j->bias + q * PG_NR, (size_t)nr * sizeof *bias);
        __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
        for (int r = 0; r < MR; r++) {
            c[r][0] = _mm256_add_ps(c[r][0], b0);
            c[r][1] = _mm256_add_ps(c[r][1], b1);
        }
    }
    for (int r = 0; r < MR; r++) {
        float *y = j->c + (i0 + r) * j->ldc + q * PG_NR;
        if (nr == PG_NR) {
            _mm256_storeu_ps(y, c[r][0]);
            _mm256_storeu_ps(y + 8, c[r][1]);
        } else {
            float tmp[PG_NR];
            _mm256_storeu_ps(tmp, c[r][0]);
            _mm256_storeu_ps(tmp + 8, c[r][1]);
            memcpy(y, tmp, (size_t)nr * sizeof *tmp);
        }
    }
}

#define PB_ROWS512(MR)                                                                             \
    (np2 == 2 ? pb_tile512(j, ap, i, q, nr, k0, kc, MR, 2) : pb_tile512(j, ap, i, q, nr, k0, kc, MR, 1))

__attribute__((target("avx512f,avx512vl,fma"))) static void pb_task512(void *ctx, int64_t t)
{
    const pg_job *j = ctx;
    int64_t i0, i1, q0, q1, n = j->pb->n;
    pb_range(j, t, &i0, &i1, &q0, &q1);
    for (int64_t kb = 0; kb < j->nkb; kb++) {
        int64_t k0 = kb * j->kc, kc = j->pb->k - k0 < j->kc ? j->pb->k - k0 : j->kc;
        for (int64_t i = i0; i < i1; i += PG_MR8) {
            int mr = (int)(i1 - i < PG_MR8 ? i1 - i : PG_MR8);
            const float *ap = j->a + i * j->ars;
            for (int64_t q = q0; q < q1; q += 2) {
                int np2 = q + 1 < q1 ? 2 : 1, nr[2];
                for (int p = 0; p < np2; p++)
                    nr[p] = (int)(n - (q + p) * PG_NR < PG_NR ? n - (q + p) * PG_NR : PG_NR);
                switch (mr) {
                case 12: PB_ROWS512(12); break;
                case 11: PB_ROWS512(11); break;
                case 10: PB_ROWS512(10); break;
                case 9: PB_ROWS512(9); break;
                case 8: PB_ROWS512(8); break;
                case 7: PB_ROWS512(7); break;
                case 6: PB_ROWS512(6); break;
                case 5: PB_ROWS512(5); break;
                case 4: PB_ROWS512(4); break;
                case 3: PB_ROWS512(3); break;
                case 2: PB_ROWS512(2); break;
                default: PB_ROWS512(1); break;
                }
            }
        }
    }
    pg_act(j, i0, i1, q0, q1);
}

__attribute__((target("avx2,fma"))) static void pb_task(void *ctx, int64_t t)
{
    const pg_job *j = ctx;
    int64_t i0, i1, q0, q1, n = j->pb->n;
    pb_range(j, t, &i0, &i1, &q0, &q1);
    for (int64_t kb = 0; kb < j->nkb; kb++) {
        int64_t k0 = kb * j->kc, kc = j->pb->k - k0 < j->kc ? j->pb->k - k0 : j->kc;
        for (int64_t i = i0; i < i1; i += PG_MR) {
            int mr = (int)(i1 - i < PG_MR ? i1 - i : PG_MR);
            const float *ap = j->a + i * j->ars;
            for (int64_t q = q0; q < q1; q++) {
                int nr = (int)(n - q * PG_NR < PG_NR ? n - q * PG_NR : PG_NR);
                switch (mr) {
                case 6: pb_tile(j, ap, i, q, nr, k0, kc, 6); break;
                case 5: pb_tile(j, ap, i, q, nr, k0, kc, 5); break;
                case 4: pb_tile(j, ap, i, q, nr, k0, kc, 4); break;
                case 3: pb_tile(j, ap, i, q, nr, k0, kc, 3); break;
                case 2: pb_tile(j, ap, i, q, nr, k0, kc, 2); break;
                default: pb_tile(j, ap, i, q, nr, k0, kc, 1); break;
                }
            }
        }
    }
    pg_act(j, i0, i1, q0, q1);
}
#endif

void rt_pgemm(int64_t m, const float *a, int64_t lda, bool ta, const rt_pgemm_b *pb,
              const float *bias_n, float *c, int64_t ldc, const rt_act *act)
{
#if defined(__x86_64__) && defined(__GNUC__)
    int64_t np = (pb->n + PG_NR - 1) / PG_NR, panels = PG_PANELS;
    double work = (double)m * (double)pb->n * (double)pb->k;
    pg_job j = {m, a, ta ? 1 : lda, ta ? lda : 1, pb, bias_n, c, ldc, act, panels, 0, 1};
    bool avx512 = rt_cpu_avx512();
    float *at = NULL;
    if (m > 2 && ta) {
        /* the blocked tiles read rows of A with k contiguous */
        static _Thread_local rt_scratch tr;
        if ((at = rt_scratch_get(&tr, (size_t)(m * pb->k) * sizeof *at))) {
            for (int64_t i = 0; i < m; i++)
                for (int64_t k = 0; k < pb->k; k++)
                    at[i * pb->k + k] = a[k * lda + i];
            j.a = at;
            j.ars = pb->k;
            j.aks = 1;
        }
    }
    if (m > 2 && j.aks == 1) {
        /* k in blocks of at most PG_KC, as even as they come */
        j.nkb = pb->k > PG_KC ? (pb->k + PG_KC - 1) / PG_KC : 1;
        j.kc = (pb->k + j.nkb - 1) / j.nkb;
        int64_t tasks = (m + PG_MC - 1) / PG_MC * ((np + PG_GP - 1) / PG_GP);
        rt_parallel_for_work(tasks, avx512 ? pb_task512 : pb_task, &j, work);
        return;
    }
    /* a GEMV (an LSTM step): bound by reading B, so one run of panels per
     * thread. The caller and a worker mostly take the same task at every
     * call, so each keeps its part of B in its own cache (a recurrent 2048 x
     * 512 R: 2 MiB a core at 2 threads) */
    int t = rt_threads();
    if (m <= 2)
        j.panels = (np + t - 1) / t;
    rt_parallel_for_work((np + j.panels - 1) / j.panels, avx512 ? pg_task512 : pg_task, &j, work);
#else
    (void)m, (void)a, (void)lda, (void)ta, (void)pb, (void)bias_n, (void)c, (void)ldc, (void)act;
#endif
}
