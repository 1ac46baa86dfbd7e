/*
 * gemm.c - Gemm, MatMul (batched, broadcast), MatMulInteger, QLinearMatMul, and
 * ONNX Runtime's FusedMatMul, DynamicQuantizeMatMul and MatMulIntegerToFloat
 * (com.microsoft). float32 products go through OpenBLAS sgemm, or rt_pgemm
 * (pgemm.c) against a constant B packed once.
 */
#include "../rt.h"

/* ---------------------------------------------------------------- Gemm */

static hpcz_status k_gemm(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1), *cc = rt_in(c, 2);
    if (a->dtype != HPCZ_DTYPE_FLOAT || b->dtype != HPCZ_DTYPE_FLOAT ||
        (cc && cc->dtype != HPCZ_DTYPE_FLOAT))
        return rt_unsupported(c);
    if (a->ndim != 2 || b->ndim != 2)
        return rt_bad(c, "A and B must be 2-D");
    bool ta = rt_attr_i(c, "transA", 0), tb = rt_attr_i(c, "transB", 0);
    float alpha = rt_attr_f(c, "alpha", 1.0f), beta = rt_attr_f(c, "beta", 1.0f);
    int64_t m = ta ? a->dims[1] : a->dims[0], k = ta ? a->dims[0] : a->dims[1];
    int64_t kb = tb ? b->dims[1] : b->dims[0], n = tb ? b->dims[0] : b->dims[1];
    if (k != kb)
        return rt_bad(c, "inner dimensions differ (%lld vs %lld)", (long long)k, (long long)kb);
    int64_t dims[2] = {m, n};
    if (cc) {
        hpcz_array fake = {.ndim = 2, .dims = {m, n}};
        const hpcz_array *ins[2] = {&fake, cc};
        int nd;
        int64_t bd[RT_MAX_RANK];
        if (cc->ndim > 2 || !rt_broadcast_shape(ins, 2, &nd, bd) || bd[0] != m || bd[1] != n)
            return rt_bad(c, "C does not broadcast to [M,N]");
    }
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, 2, dims);
    /* against an initializer B: packed once (at plan time, or at the first
     * run when the shapes were not known before) */
    bool bias_row = cc && beta == 1 && cc->numel == n &&
                    (cc->ndim == 1 || (cc->ndim == 2 && cc->dims[0] == 1));
    bool packable = alpha == 1 && (!cc || beta == 0 || bias_row) && !c->reference && c->state &&
                    rt_pgemm_wins(m, k, n);
    if (y && packable && (c->init_in >> 1 & 1) && b->data && !*c->state && !c->weights_change)
        *c->state = rt_pgemm_pack(b->data, tb, k, n, b->dims[1]);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    float *yd = y->data;
    if (packable && rt_pgemm_fits(*c->state, b->data, k, n)) {
        rt_pgemm(m, a->data, a->dims[1], ta, *c->state, bias_row ? cc->data : NULL, yd, n, c->act);
        return HPCZ_OK;
    }
    float bgemm = 0;
    if (bias_row) {
        /* the common case: a bias row, added in the GEMM epilogue */
        rt_sgemm_ex(ta, tb, m, n, k, alpha, a->data, a->dims[1], b->data, b->dims[1], 0.0f, yd, n,
                    NULL, cc->data, c->act);
        return HPCZ_OK;
    }
    if (cc && beta != 0 && cc->numel) {
        const float *cd = cc->data;
        int64_t cm = cc->ndim == 2 ? cc->dims[0] : 1;
        int64_t cn = cc->ndim >= 1 ? cc->dims[cc->ndim - 1] : 1;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                yd[i * n + j] = beta * cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
        bgemm = 1;
    }
    rt_sgemm_ex(ta, tb, m, n, k, alpha, a->data, a->dims[1], b->data, b->dims[1], bgemm, yd, n,
                NULL, NULL, c->act);
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- MatMul */

typedef struct mm_shape {
    int64_t m, k, n;
    int nd;                       /* output rank */
    int64_t dims[RT_MAX_RANK];    /* output dims */
    int nb;                       /* batch rank */
    int64_t bdims[RT_MAX_RANK], astr[RT_MAX_RANK], bstr[RT_MAX_RANK];
    int64_t batches;
} mm_shape;

static bool mm_infer(const hpcz_array *a, const hpcz_array *b, mm_shape *s)
{
    if (a->ndim < 1 || b->ndim < 1)
        return false;
    int ar = a->ndim, br = b->ndim;
    s->m = ar == 1 ? 1 : a->dims[ar - 2];
    s->k = a->dims[ar - 1];
    int64_t kb = br == 1 ? b->dims[0] : b->dims[br - 2];
    s->n = br == 1 ? 1 : b->dims[br - 1];
    if (s->k != kb)
        return false;
    int abat = ar > 2 ? ar - 2 : 0, bbat = br > 2 ? br - 2 : 0;
    s->nb = abat > bbat ? abat : bbat;
    s->batches = 1;
    int64_t as = s->m * s->k, bs = s->k * s->n;
    for (int d = s->nb - 1; d >= 0; d--) {
        int ai = d - (s->nb - abat), bi = d - (s->nb - bbat);
        int64_t ad = ai >= 0 ? a->dims[ai] : 1, bd = bi >= 0 ? b->dims[bi] : 1;
        if (ad != bd && ad != 1 && bd != 1)
            return false;
        s->bdims[d] = ad > bd ? ad : bd;
        if (ad == 0 || bd == 0)
            s->bdims[d] = 0;
        s->astr[d] = ad == 1 ? 0 : as;
        s->bstr[d] = bd == 1 ? 0 : bs;
        as *= ad;
        bs *= bd;
        s->batches *= s->bdims[d];
    }
    s->nd = 0;
    for (int d = 0; d < s->nb; d++)
        s->dims[s->nd++] = s->bdims[d];
    if (ar > 1)
        s->dims[s->nd++] = s->m;
    if (br > 1)
        s->dims[s->nd++] = s->n;
    return true;
}

static void mm_offsets(const mm_shape *s, int64_t bi, int64_t *ao, int64_t *bo)
{
    *ao = *bo = 0;
    for (int d = s->nb - 1; d >= 0; d--) {
        int64_t i = bi % s->bdims[d];
        bi /= s->bdims[d];
        *ao += i * s->astr[d];
        *bo += i * s->bstr[d];
    }
}

typedef struct mm_batch_job {
    const mm_shape *s;
    const float *a, *b;
    float *y;
    float alpha;
} mm_batch_job;

/* One product of a batch (attention's per-head QK^T and PV: small GEMMs,
 * one task each, run single-threaded; the same bytes as run in turn). */
static void mm_batch_task(void *ctx, int64_t bi)
{
    const mm_batch_job *j = ctx;
    const mm_shape *s = j->s;
    int64_t ao, bo;
    mm_offsets(s, bi, &ao, &bo);
    rt_sgemm(false, false, s->m, s->n, s->k, j->alpha, j->a + ao, s->k, j->b + bo, s->n, 0.0f,
             j->y + bi * s->m * s->n, s->n);
}

/* Whether a float32 MatMul reads one B [k][n] for every batch entry, with
 * A's entries back to back: one tall GEMM of s->m * s->batches rows. */
static bool mm_tall(const mm_shape *s)
{
    bool b_shared = true, a_contig = true;
    for (int d = 0; d < s->nb; d++) {
        b_shared &= s->bstr[d] == 0 || s->bdims[d] == 1;
        a_contig &= s->astr[d] != 0 || s->bdims[d] == 1;
    }
    return b_shared && a_contig;
}

/* A tall MatMul against an initializer B (input 1): B packed once for
 * rt_pgemm (at plan time, or at the first run when the shapes were not
 * known before), where that beats OpenBLAS. The packed B, or NULL. */
static const rt_pgemm_b *mm_packed(rt_ctx *c, const mm_shape *s, const hpcz_array *b)
{
    if (b->dtype != HPCZ_DTYPE_FLOAT || c->reference || !c->state || !(c->init_in >> 1 & 1) ||
        !b->data || !mm_tall(s) || !rt_pgemm_wins(s->m * s->batches, s->k, s->n))
        return NULL;
    if (!*c->state)
        *c->state = rt_pgemm_pack(b->data, false, s->k, s->n, s->n);
    return rt_pgemm_fits(*c->state, b->data, s->k, s->n) ? *c->state : NULL;
}

/* y = alpha * a b (numpy matmul broadcasting); a and b of one dtype. With
 * const_b, B is the node's input 1 as the graph gives it (not a copy): it
 * may be packed (mm_packed). */
static hpcz_status matmul_run(rt_ctx *c, const hpcz_array *a, const hpcz_array *b, float alpha,
                              bool const_b)
{
    mm_shape s;
    if (!mm_infer(a, b, &s))
        return rt_bad(c, "shapes do not multiply");
    hpcz_array *y = rt_out(c, 0, a->dtype, s.nd, s.dims);
    const rt_pgemm_b *pb = y && const_b && alpha == 1 ? mm_packed(c, &s, b) : NULL;
    if (!y || c->infer || y->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    int64_t mn = s.m * s.n;
    if (a->dtype == HPCZ_DTYPE_FLOAT && !c->reference) {
        const float *ad = a->data, *bd = b->data;
        float *yd = y->data;
        if (pb) {
            rt_pgemm(s.m * s.batches, ad, s.k, false, pb, NULL, yd, s.n, NULL);
            return HPCZ_OK;
        }
        /* B shared by every batch and A contiguous: one tall GEMM */
        if (mm_tall(&s)) {
            rt_sgemm(false, false, s.m * s.batches, s.n, s.k, alpha, ad, s.k, bd, s.n, 0.0f, yd, s.n);
            return HPCZ_OK;
        }
        /* one GEMM per batch entry: small ones (no blocks of their own) are
         * spread over the threads, large ones cut themselves into blocks */
        double work = (double)s.m * (double)s.n * (double)s.k;
        mm_batch_job j = {&s, ad, bd, yd, alpha};
        if (work <= 4e6) {
            rt_parallel_for_work(s.batches, mm_batch_task, &j, work * (double)s.batches / 16);
            return HPCZ_OK;
        }
        for (int64_t bi = 0; bi < s.batches; bi++)
            mm_batch_task(&j, bi);
        return HPCZ_OK;
    }
    bool ints = rt_is_int(a->dtype);
    for (int64_t bi = 0; bi < s.batches; bi++) {
        int64_t ao, bo;
        mm_offsets(&s, bi, &ao, &bo);
        for (int64_t i = 0; i < s.m; i++)
            for (int64_t j = 0; j < s.n; j++) {
                int64_t yo = bi * mn + i * s.n + j;
                if (ints) {
                    int64_t acc = 0;
                    for (int64_t q = 0; q < s.k; q++)
                        acc += rt_load_i(a->data, a->dtype, ao + i * s.k + q) *
                               rt_load_i(b->data, b->dtype, bo + q * s.n + j);
                    rt_store_i(y->data, y->dtype, yo, acc);
                } else {
                    double acc = 0;
                    for (int64_t q = 0; q < s.k; q++)
                        acc += rt_load_d(a->data, a->dtype, ao + i * s.k + q) *
                               rt_load_d(b->data, b->dtype, bo + q * s.n + j);
                    acc *= alpha;
                    rt_store_d(y->data, y->dtype, yo, acc);
                }
            }
    }
    return HPCZ_OK;
}

static hpcz_status k_matmul(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1);
    if (a->dtype != b->dtype || !(RT_TNUM & RT_T(a->dtype)) || rt_f16_widen(c))
        return rt_unsupported(c);
    return matmul_run(c, a, b, 1.0f, true);
}

/* ---------------------------------------------------------------- FusedMatMul */

/* com.microsoft FusedMatMul: y = alpha * A' B', where X' is X with its first
 * dimension moved behind the batch dimensions (transBatchX: [d1..d(r-2), d0,
 * d(r-1)], both inputs of one rank >= 3) and then its last two dimensions
 * swapped (transX). Transposed operands are copied contiguous first. */
static void fm_perm(int r, bool tbatch, bool t, int *perm)
{
    for (int d = 0; d < r; d++)
        perm[d] = d;
    if (tbatch && r >= 3) {
        for (int d = 0; d < r - 2; d++)
            perm[d] = d + 1;
        perm[r - 2] = 0;
    }
    if (t && r >= 2) {
        int x = perm[r - 1];
        perm[r - 1] = perm[r - 2];
        perm[r - 2] = x;
    }
}

static bool fm_identity(int r, const int *perm)
{
    for (int d = 0; d < r; d++)
        if (perm[d] != d)
            return false;
    return true;
}

/* dst = src permuted (float32): dims[d] = src->dims[perm[d]]. */
static void fm_transpose(const hpcz_array *src, const int *perm, hpcz_array *dst)
{
    int r = src->ndim;
    int64_t sstr[RT_MAX_RANK], idx[RT_MAX_RANK] = {0};
    sstr[r - 1] = 1;
    for (int d = r - 2; d >= 0; d--)
        sstr[d] = sstr[d + 1] * src->dims[d + 1];
    const float *s = src->data;
    float *o = dst->data;
    for (int64_t i = 0; i < dst->numel; i++) {
        int64_t off = 0;
        for (int d = 0; d < r; d++)
            off += idx[d] * sstr[perm[d]];
        o[i] = s[off];
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < dst->dims[d])
                break;
            idx[d] = 0;
        }
    }
}

static hpcz_status k_fusedmatmul(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1);
    if (a->dtype != HPCZ_DTYPE_FLOAT || b->dtype != HPCZ_DTYPE_FLOAT)
        return rt_unsupported(c);
    bool ta = rt_attr_i(c, "transA", 0), tb = rt_attr_i(c, "transB", 0);
    bool tba = rt_attr_i(c, "transBatchA", 0), tbb = rt_attr_i(c, "transBatchB", 0);
    float alpha = rt_attr_f(c, "alpha", 1.0f);
    if ((tba || tbb) && (a->ndim < 3 || a->ndim != b->ndim))
        return rt_bad(c, "transBatchA/transBatchB need A and B of one rank >= 3");
    int pa[RT_MAX_RANK], pb[RT_MAX_RANK];
    fm_perm(a->ndim, tba, ta, pa);
    fm_perm(b->ndim, tbb, tb, pb);
    hpcz_array ap = *a, bp = *b;
    for (int d = 0; d < a->ndim; d++)
        ap.dims[d] = a->dims[pa[d]];
    for (int d = 0; d < b->ndim; d++)
        bp.dims[d] = b->dims[pb[d]];
    bool copy_a = !fm_identity(a->ndim, pa), copy_b = !fm_identity(b->ndim, pb);
    if (c->infer || (!copy_a && !copy_b))
        return matmul_run(c, &ap, &bp, alpha, false);
    ap.data = copy_a ? rt_alloc(a->nbytes ? a->nbytes : 1) : a->data;
    bp.data = copy_b ? rt_alloc(b->nbytes ? b->nbytes : 1) : b->data;
    hpcz_status st;
    if (!ap.data || !bp.data)
        st = hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    else {
        if (copy_a)
            fm_transpose(a, pa, &ap);
        if (copy_b)
            fm_transpose(b, pb, &bp);
        st = matmul_run(c, &ap, &bp, alpha, false);
    }
    if (copy_a)
        rt_free(ap.data);
    if (copy_b)
        rt_free(bp.data);
    return st;
}

/* ------------------------------------------------ integer and quantized MatMul */

static bool is_q8(int dt)
{
    return dt == HPCZ_DTYPE_INT8 || dt == HPCZ_DTYPE_UINT8;
}

/* Zero point of A for row i (per-row allowed by MatMulInteger) or B column j. */
static int32_t zp_at(const hpcz_array *zp, int64_t idx)
{
    if (!zp || zp->numel == 0)
        return 0;
    return (int32_t)rt_load_i(zp->data, zp->dtype, zp->numel == 1 ? 0 : idx);
}

/* acc[bi][i][j] = sum_k (A - azp) * (B - bzp), in int32 (wrapping like the
 * reference's int32 arithmetic). */
static void int_matmul(const mm_shape *s, const hpcz_array *a, const hpcz_array *b,
                       const hpcz_array *azp, const hpcz_array *bzp, int32_t *acc)
{
    int64_t mn = s->m * s->n;
    for (int64_t bi = 0; bi < s->batches; bi++) {
        int64_t ao, bo;
        mm_offsets(s, bi, &ao, &bo);
        for (int64_t i = 0; i < s->m; i++) {
            int32_t za = zp_at(azp, i);
            int32_t *row = acc + bi * mn + i * s->n;
            for (int64_t j = 0; j < s->n; j++)
                row[j] = 0;
            for (int64_t q = 0; q < s->k; q++) {
                int32_t av = (int32_t)rt_load_i(a->data, a->dtype, ao + i * s->k + q) - za;
                if (!av)
                    continue;
                for (int64_t j = 0; j < s->n; j++) {
                    int32_t bv = (int32_t)rt_load_i(b->data, b->dtype, bo + q * s->n + j) -
                                 zp_at(bzp, j);
                    row[j] = (int32_t)((uint32_t)row[j] + (uint32_t)(av * bv));
                }
            }
        }
    }
}

static inline int32_t q8_at(const hpcz_array *x, int64_t i)
{
    return x->dtype == HPCZ_DTYPE_UINT8 ? (int32_t)((const uint8_t *)x->data)[i]
                                        : (int32_t)((const int8_t *)x->data)[i];
}

/* The same through a float or double GEMM of the zero-point-shifted values
 * (|a - azp|, |b - bzp| <= 255): every product and partial sum is an
 * integer the type holds exactly (float while k * 255 * 255 < 2^24, double
 * below 2^53), so the result is exact whatever the summation order, then
 * wrapped to int32 like the reference. False when out of memory. */
static bool int_matmul_blas(const mm_shape *s, const hpcz_array *a, const hpcz_array *b,
                            const hpcz_array *azp, const hpcz_array *bzp, int32_t *acc)
{
    bool f32 = (double)s->k * 65025.0 < 16777216.0;
    size_t es = f32 ? sizeof(float) : sizeof(double);
    size_t na = (size_t)(s->m * s->k), nb = (size_t)(s->k * s->n), nc = (size_t)(s->m * s->n);
    void *ab = rt_alloc((na ? na : 1) * es), *bb = rt_alloc((nb ? nb : 1) * es);
    void *cb = rt_alloc((nc ? nc : 1) * es);
    bool ok = ab && bb && cb;
    int32_t *bz = ok ? malloc((size_t)(s->n ? s->n : 1) * sizeof *bz) : NULL;
    ok = ok && bz;
    for (int64_t j = 0; ok && j < s->n; j++)
        bz[j] = zp_at(bzp, j);
    for (int64_t bi = 0; ok && bi < s->batches; bi++) {
        int64_t ao, bo;
        mm_offsets(s, bi, &ao, &bo);
        for (int64_t i = 0; i < s->m; i++) {
            int32_t za = zp_at(azp, i);
            for (int64_t q = 0; q < s->k; q++) {
                int32_t v = q8_at(a, ao + i * s->k + q) - za;
                if (f32)
                    ((float *)ab)[i * s->k + q] = (float)v;
                else
                    ((double *)ab)[i * s->k + q] = v;
            }
        }
        for (int64_t q = 0; q < s->k; q++)
            for (int64_t j = 0; j < s->n; j++) {
                int32_t v = q8_at(b, bo + q * s->n + j) - bz[j];
                if (f32)
                    ((float *)bb)[q * s->n + j] = (float)v;
                else
                    ((double *)bb)[q * s->n + j] = v;
            }
        int32_t *out = acc + bi * (int64_t)nc;
        if (f32) {
            rt_sgemm(false, false, s->m, s->n, s->k, 1.0f, ab, s->k, bb, s->n, 0.0f, cb, s->n);
            for (size_t i = 0; i < nc; i++)
                out[i] = (int32_t)((const float *)cb)[i];
        } else {
            rt_dgemm(s->m, s->n, s->k, ab, bb, cb);
            for (size_t i = 0; i < nc; i++)
                out[i] = (int32_t)(uint32_t)(int64_t)((const double *)cb)[i];
        }
    }
    free(bz);
    rt_free(ab);
    rt_free(bb);
    rt_free(cb);
    return ok;
}

static hpcz_status k_matmulinteger(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1), *azp = rt_in(c, 2), *bzp = rt_in(c, 3);
    if (!is_q8(a->dtype) || !is_q8(b->dtype))
        return rt_unsupported(c);
    mm_shape s;
    if (!mm_infer(a, b, &s))
        return rt_bad(c, "shapes do not multiply");
    if ((azp && azp->numel > 1 && azp->numel != s.m) || (bzp && bzp->numel > 1 && bzp->numel != s.n))
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_INT32, s.nd, s.dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    /* the naive loop for the reference backend and for products too small to gain */
    if (c->reference || s.m * s.n * s.k < 4096 || !int_matmul_blas(&s, a, b, azp, bzp, y->data))
        int_matmul(&s, a, b, azp, bzp, y->data);
    return HPCZ_OK;
}

static int64_t sat(int dt, double v)
{
    double r = nearbyint(v);
    double lo = dt == HPCZ_DTYPE_INT8 ? -128 : 0, hi = dt == HPCZ_DTYPE_INT8 ? 127 : 255;
    if (r < lo)
        r = lo;
    if (r > hi)
        r = hi;
    return (int64_t)r;
}

static hpcz_status k_qlinearmatmul(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *as = rt_in(c, 1), *azp = rt_in(c, 2), *b = rt_in(c, 3),
               *bs = rt_in(c, 4), *bzp = rt_in(c, 5), *ys = rt_in(c, 6), *yzp = rt_in(c, 7);
    if (!is_q8(a->dtype) || !is_q8(b->dtype) || !as || !bs || !ys)
        return rt_unsupported(c);
    mm_shape s;
    if (!mm_infer(a, b, &s))
        return rt_bad(c, "shapes do not multiply");
    if (as->numel != 1 || ys->numel != 1 || (bs->numel != 1 && bs->numel != s.n) ||
        (azp && azp->numel > 1) || (yzp && yzp->numel > 1))
        return rt_unsupported(c);
    int odt = yzp ? yzp->dtype : HPCZ_DTYPE_UINT8;
    hpcz_array *y = rt_out(c, 0, odt, s.nd, s.dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    int32_t *acc = malloc((size_t)(y->numel ? y->numel : 1) * sizeof *acc);
    if (!acc)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    int_matmul(&s, a, b, azp, bzp, acc);
    double sa = rt_load_d(as->data, as->dtype, 0), sy = rt_load_d(ys->data, ys->dtype, 0);
    int64_t zy = yzp ? rt_load_i(yzp->data, yzp->dtype, 0) : 0;
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t j = i % s.n;
        /* the reference multiplies in float32 */
        float scale = (float)sa * (float)rt_load_d(bs->data, bs->dtype, bs->numel == 1 ? 0 : j) /
                      (float)sy;
        rt_store_i(y->data, odt, i, sat(odt, (double)((float)acc[i] * scale) + (double)zy));
    }
    free(acc);
    return HPCZ_OK;
}

/* ---------------------------------------- com.microsoft integer MatMuls to float */

/* y[.., j] = (float)acc * (a_scale * b_scale[j]) + bias[j], ONNX Runtime's
 * output processor (the scale product rounded to float first). */
static hpcz_status int_to_float(rt_ctx *c, const mm_shape *s, const hpcz_array *a,
                                const hpcz_array *b, const hpcz_array *azp, const hpcz_array *bzp,
                                float as, const hpcz_array *bs, const hpcz_array *bias,
                                hpcz_array *y)
{
    int32_t *acc = malloc((size_t)(y->numel ? y->numel : 1) * sizeof *acc);
    float *scale = malloc((size_t)(s->n ? s->n : 1) * sizeof *scale);
    if (!acc || !scale) {
        free(acc);
        free(scale);
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    }
    if (c->reference || s->m * s->n * s->k < 4096 || !int_matmul_blas(s, a, b, azp, bzp, acc))
        int_matmul(s, a, b, azp, bzp, acc);
    for (int64_t j = 0; j < s->n; j++)
        scale[j] = as * (float)rt_load_d(bs->data, bs->dtype, bs->numel == 1 ? 0 : j);
    float *yd = y->data;
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t j = i % s->n;
        float v = (float)acc[i] * scale[j];
        if (bias)
            v += (float)rt_load_d(bias->data, bias->dtype, j);
        yd[i] = v;
    }
    free(acc);
    free(scale);
    return HPCZ_OK;
}

static bool per_column_ok(const hpcz_array *t, int64_t n)
{
    return !t || t->numel == 1 || (t->ndim == 1 && t->numel == n);
}

/* DynamicQuantizeMatMul: A (float) quantized to uint8 per tensor the way
 * DynamicQuantizeLinear does it, then the integer product with B (int8/uint8,
 * zero point and scale per tensor or per column), scaled to float, plus bias. */
static hpcz_status k_dynqmatmul(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1), *bs = rt_in(c, 2), *bzp = rt_in(c, 3),
               *bias = rt_in(c, 4);
    if (a->dtype != HPCZ_DTYPE_FLOAT || !is_q8(b->dtype) || !bs || bs->dtype != HPCZ_DTYPE_FLOAT ||
        (bzp && bzp->dtype != b->dtype) || (bias && bias->dtype != HPCZ_DTYPE_FLOAT))
        return rt_unsupported(c);
    mm_shape s;
    if (!mm_infer(a, b, &s))
        return rt_bad(c, "shapes do not multiply");
    if (!per_column_ok(bs, s.n) || !per_column_ok(bzp, s.n) || (bias && bias->numel != s.n))
        return rt_bad(c, "b_scale, b_zero_point and bias must have 1 or N = %lld entries",
                      (long long)s.n);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, s.nd, s.dims);
    if (!y || c->infer || y->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    const float *ad = a->data;
    float mn = 0, mx = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        mn = ad[i] < mn ? ad[i] : mn;
        mx = ad[i] > mx ? ad[i] : mx;
    }
    /* ONNX Runtime's GetQuantizationParameter: scale 1 when A is all zeros */
    float scale = mx == mn ? 1.0f : (mx - mn) / 255.0f;
    float zpf = nearbyintf(0.0f - mn / scale);
    zpf = zpf < 0 ? 0 : zpf > 255 ? 255 : zpf;
    uint8_t zp8 = (uint8_t)zpf;
    hpcz_array aq = *a, azp = {.dtype = HPCZ_DTYPE_UINT8, .numel = 1, .nbytes = 1, .data = &zp8};
    aq.dtype = HPCZ_DTYPE_UINT8;
    aq.nbytes = (size_t)a->numel;
    aq.data = malloc(aq.nbytes ? aq.nbytes : 1);
    if (!aq.data)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < a->numel; i++) {
        float v = nearbyintf(ad[i] / scale) + zpf;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        ((uint8_t *)aq.data)[i] = (uint8_t)v;
    }
    hpcz_status st = int_to_float(c, &s, &aq, b, &azp, bzp, scale, bs, bias, y);
    free(aq.data);
    return st;
}

/* MatMulIntegerToFloat: (A - a_zp)(B - b_zp) * a_scale * b_scale + bias. */
static hpcz_status k_mmint2float(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1), *as = rt_in(c, 2), *bs = rt_in(c, 3),
               *azp = rt_in(c, 4), *bzp = rt_in(c, 5), *bias = rt_in(c, 6);
    if (!is_q8(a->dtype) || !is_q8(b->dtype) || !as || !bs || as->dtype != HPCZ_DTYPE_FLOAT ||
        bs->dtype != HPCZ_DTYPE_FLOAT || (azp && azp->dtype != a->dtype) ||
        (bzp && bzp->dtype != b->dtype) || (bias && bias->dtype != HPCZ_DTYPE_FLOAT))
        return rt_unsupported(c);
    mm_shape s;
    if (!mm_infer(a, b, &s))
        return rt_bad(c, "shapes do not multiply");
    /* a per-tensor A quantization (what ONNX Runtime's kernel supports) */
    if (as->numel != 1 || (azp && azp->numel != 1))
        return rt_unsupported(c);
    if (!per_column_ok(bs, s.n) || !per_column_ok(bzp, s.n) || (bias && bias->numel != s.n))
        return rt_bad(c, "b_scale, b_zero_point and bias must have 1 or N = %lld entries",
                      (long long)s.n);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, s.nd, s.dims);
    if (!y || c->infer || y->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    return int_to_float(c, &s, a, b, azp, bzp, *(const float *)as->data, bs, bias, y);
}

/* MatMul(A, B 2-D) with a bias row [N] as input 2, put in place of MatMul ->
 * Add(bias) at plan time (engine.c, fuse_transformer): the bias is added in
 * the GEMM's epilogue, the same bytes as the two ops. */
static hpcz_status k_matmul_bias(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1), *bias = rt_in(c, 2);
    mm_shape s;
    if (!a || !b || !bias || a->dtype != HPCZ_DTYPE_FLOAT || b->ndim != 2 || !mm_infer(a, b, &s) ||
        bias->numel != s.n)
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, s.nd, s.dims);
    const rt_pgemm_b *pb = y ? mm_packed(c, &s, b) : NULL;
    if (!y || c->infer || y->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    if (pb) {
        rt_pgemm(s.m * s.batches, a->data, s.k, false, pb, bias->data, y->data, s.n, NULL);
        return HPCZ_OK;
    }
    /* B shared by every batch: one tall GEMM over A's rows */
    rt_sgemm_ex(false, false, s.m * s.batches, s.n, s.k, 1.0f, a->data, s.k, b->data, s.n, 0.0f,
                y->data, s.n, NULL, bias->data, NULL);
    return HPCZ_OK;
}

const rt_op rt_op_matmul_bias = {"", "MatMul", 1, RT_TF32, 0, k_matmul_bias, NULL};

static const rt_op ops[] = {
    {"", "Gemm", 7, RT_TF32, RT_FUSE_ACT, k_gemm, NULL},
    {"", "MatMul", 1, RT_TNUM, 0, k_matmul, NULL},
    {"", "MatMulInteger", 10, 0, 0, k_matmulinteger, NULL},
    {"", "QLinearMatMul", 10, 0, 0, k_qlinearmatmul, NULL},
    {"com.microsoft", "FusedMatMul", 1, RT_TF32, 0, k_fusedmatmul, NULL},
    {"com.microsoft", "DynamicQuantizeMatMul", 1, RT_TF32, 0, k_dynqmatmul, NULL},
    {"com.microsoft", "MatMulIntegerToFloat", 1, 0, 0, k_mmint2float, NULL},
};

const rt_op_table rt_ops_gemm = {ops, HPCZ_ARRAY_SIZE(ops)};
