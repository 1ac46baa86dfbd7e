/*
 * obc.c - data-aware weight compression in the style of Optimal Brain
 * Compression / SparseGPT / GPTQ, shared by pruning and quantization.
 *
 * For one layer with weight W (rows = outputs, K = reduction) and the Gram
 * matrix H = X^T X of its inputs on calibration data, columns are processed
 * in order: each column is pruned (or quantized), and the error it makes is
 * spread over the columns not yet processed through the inverse Hessian,
 * which minimises ||X W^T - X W'^T||^2 for the kept weights. The inverse is
 * taken once (one Cholesky factorisation and one triangular inverse through
 * OpenBLAS's LAPACK) as in SparseGPT.
 */
#include "obc.h"

#include <cblas.h>
#include <math.h>

/* LAPACK (bundled in OpenBLAS) */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dtrtri_(const char *uplo, const char *diag, const int *n, double *a, const int *lda, int *info);

/* ------------------------------------------------------------ Gram matrices */

hpcz_status hpcz_gram_init(hpcz_gram *g, int64_t K, hpcz_error *err)
{
    memset(g, 0, sizeof *g);
    if (K <= 0 || K > 32768)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "reduction length %lld is beyond 32768", (long long)K);
    g->K = K;
    g->H = calloc((size_t)(K * K), sizeof *g->H);
    g->sum = calloc((size_t)K, sizeof *g->sum);
    if (!g->H || !g->sum) {
        hpcz_gram_release(g);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory for a %lld x %lld Gram matrix", (long long)K,
                         (long long)K);
    }
    return HPCZ_OK;
}

void hpcz_gram_release(hpcz_gram *g)
{
    free(g->H);
    free(g->sum);
    memset(g, 0, sizeof *g);
}

void hpcz_gram_add_rows(hpcz_gram *g, const float *x, int64_t rows)
{
    /* H += X^T X in double, in chunks so the double copy stays small */
    const int64_t K = g->K, chunk = 256;
    double *buf = malloc((size_t)(chunk * K) * sizeof *buf);
    if (!buf)
        return;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t n = rows - r0 < chunk ? rows - r0 : chunk;
        for (int64_t i = 0; i < n * K; i++)
            buf[i] = x[r0 * K + i];
        for (int64_t r = 0; r < n; r++)
            for (int64_t k = 0; k < K; k++)
                g->sum[k] += buf[r * K + k];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)K, (int)n, 1.0, buf, (int)K, 1.0, g->H,
                    (int)K);
    }
    g->rows += (uint64_t)rows;
    free(buf);
}

double hpcz_gram_shrinkage(const double *H, int64_t K, uint64_t rows)
{
    /* rho = (tr(S^2) + tr(S)^2) / ((n + 1) (tr(S^2) - tr(S)^2 / K)), with
     * the correction scikit-learn's OAS makes; S = H / n, and the ratio
     * does not depend on the scale of S. H: upper triangle. */
    double tr = 0, tr2 = 0;
    for (int64_t i = 0; i < K; i++) {
        tr += H[i * K + i];
        tr2 += H[i * K + i] * H[i * K + i];
        for (int64_t j = i + 1; j < K; j++)
            tr2 += 2 * H[i * K + j] * H[i * K + j];
    }
    double den = ((double)rows + 1) * (tr2 - tr * tr / (double)K);
    if (!(den > 0))
        return 1.0;
    double rho = (tr2 + tr * tr) / den;
    return rho < 1 ? rho : 1.0;
}

double hpcz_gram_ridge(double damp, double rho)
{
    if (rho > 0.999)
        rho = 0.999;
    return (damp > 0 ? damp : 0.01) + rho / (1 - rho);
}

/* ------------------------------------------------------------ OBC */

static void symmetrize_from_upper(double *a, int64_t K)
{
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < i; j++)
            a[i * K + j] = a[j * K + i];
}

typedef struct sal {
    double s;
    int64_t i;
} sal;

static int cmp_sal(const void *x, const void *y)
{
    const sal *a = x, *b = y;
    if (a->s != b->s)
        return a->s < b->s ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

static double quant_value(double w, double scale, int zp, int qmin, int qmax)
{
    double q = nearbyint(w / scale) + zp;
    if (q < qmin)
        q = qmin;
    if (q > qmax)
        q = qmax;
    return scale * (q - zp);
}

static void range_params(double lo, double hi, const hpcz_obc_opts *o, double *scale, int *zp)
{
    if (o->symmetric) {
        double m = fmax(-lo, hi);
        *scale = m / o->qmax;
        *zp = 0;
    } else {
        *scale = (hi - lo) / (o->qmax - o->qmin);
        *zp = *scale > 0 ? (int)nearbyint(o->qmin - lo / *scale) : 0;
        if (*zp < o->qmin)
            *zp = o->qmin;
        if (*zp > o->qmax)
            *zp = o->qmax;
    }
    if (!(*scale > 0))
        *scale = 1.0;
}

/* Scale and zero point of n weights (stride apart): their min/max range, or
 * with o->clip the shrunk range (1.0, 0.98, ... 0.5 of it) whose rounding
 * error, weighted by the inputs' energy hd (the Gram matrix's diagonal), is
 * least. */
static void group_params(const double *w, int64_t n, int64_t stride, const double *hd, const hpcz_obc_opts *o,
                         double *scale, int *zp)
{
    double lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = w[i * stride];
        if (v < lo)
            lo = v;
        if (v > hi)
            hi = v;
    }
    range_params(lo, hi, o, scale, zp);
    if (!o->clip || !hd)
        return;
    double best = INFINITY;
    for (int k = 0; k <= 25; k++) {
        double f = 1.0 - 0.02 * k, s;
        int z;
        range_params(lo * f, hi * f, o, &s, &z);
        double e = 0;
        for (int64_t i = 0; i < n && e < best; i++) {
            double v = w[i * stride], d = v - quant_value(v, s, z, o->qmin, o->qmax);
            e += hd[i] * d * d;
        }
        if (e < best) {
            best = e;
            *scale = s;
            *zp = z;
        }
    }
}

/* tr((A - B) H (A - B)^T): the output error of weights A against B on the
 * rows whose Gram matrix (full, symmetric) is H; -1 out of memory */
static double output_error(const double *A, const double *B, const double *H, int64_t rows, int64_t K)
{
    size_t n = (size_t)(rows * K);
    double *D = calloc(n ? n : 1, sizeof *D), *DH = malloc((n ? n : 1) * sizeof *DH);
    if (!D || !DH) {
        free(D);
        free(DH);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        D[i] = A[i] - B[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)K, (int)K, 1.0, D, (int)K, H, (int)K, 0.0,
                DH, (int)K);
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e += D[i] * DH[i];
    free(D);
    free(DH);
    return e;
}

double hpcz_obc_output_error(const double *A, const double *B, const double *H, int64_t rows, int64_t K)
{
    return output_error(A, B, H, rows, K);
}

void hpcz_obc_rtn_scales(const double *W0, int64_t rows, int64_t K, const double *hd, const hpcz_obc_opts *o,
                         float *sc, int *zp)
{
    int64_t gl = o->group > 0 ? o->group : K, ng = (K + gl - 1) / gl;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t q = 0; q < ng; q++) {
            int64_t i = q * gl, n = i + gl < K ? gl : K - i;
            double s;
            group_params(W0 + r * K + i, n, 1, hd ? hd + i : NULL, o, &s, &zp[r * ng + q]);
            sc[r * ng + q] = (float)s;
        }
}

/* GPTQ's W against round-to-nearest of the original W0 (same grid, scales
 * from W0's own ranges, the layer's zeros kept): the one with the smaller
 * output error on the rows of H0 stays in W (and its scales in
 * o->scales_out). GPTQ minimises that error column by column, but its
 * updates can push weights past the range the scales were taken from,
 * where they clip; and fitted on fewer rows than inputs (silero_vad_v4's
 * 1x64 decoder Conv: 32 rows) it fits those rows and little else, which
 * only rows it did not see (H0 = o->H_check) tell. */
static hpcz_status keep_better(double *W, const double *W0, const double *H0, int64_t rows, int64_t K,
                               const double *hd, const hpcz_obc_opts *o)
{
    int64_t gl = o->group > 0 ? o->group : K, ng = (K + gl - 1) / gl;
    double *R = malloc((size_t)(rows * K) * sizeof *R);
    double *sc = malloc((size_t)(rows * ng) * sizeof *sc);
    int *zp = malloc((size_t)(rows * ng) * sizeof *zp);
    if (!R || !sc || !zp) {
        free(R);
        free(sc);
        free(zp);
        return HPCZ_ERR_NOMEM;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t q = 0; q < ng; q++) {
            int64_t i = q * gl, n = i + gl < K ? gl : K - i;
            group_params(W0 + r * K + i, n, 1, hd ? hd + i : NULL, o, &sc[r * ng + q], &zp[r * ng + q]);
            for (int64_t k = i; k < i + n; k++)
                R[r * K + k] = o->zero && o->zero[r * K + k]
                                   ? 0.0
                                   : quant_value(W0[r * K + k], sc[r * ng + q], zp[r * ng + q], o->qmin, o->qmax);
        }
    double eg = output_error(W, W0, H0, rows, K), er = output_error(R, W0, H0, rows, K);
    hpcz_status st = eg < 0 || er < 0 ? HPCZ_ERR_NOMEM : HPCZ_OK;
    if (o->check_out) {
        o->check_out[0] = eg;
        o->check_out[1] = er;
    }
    *o->rtn_out = !st && er <= eg;
    if (*o->rtn_out) {
        memcpy(W, R, (size_t)(rows * K) * sizeof *W);
        for (int64_t i = 0; o->scales_out && i < rows * ng; i++) {
            o->scales_out[i] = (float)sc[i];
            o->zps_out[i] = zp[i];
        }
    }
    free(R);
    free(sc);
    free(zp);
    return st;
}

/* Per block of B columns: how many of its weights are among the
 * floor(sparsity * rows * K) lowest saliencies w^2 / U_ii^2 of the layer
 * (the layer's own zeros first). U: the upper factor of H^-1. */
static int64_t *block_quotas(const double *W, int64_t rows, int64_t K, int64_t B, const double *U,
                             const hpcz_obc_opts *o)
{
    int64_t nb = (K + B - 1) / B, total = rows * K;
    int64_t *quota = calloc((size_t)nb, sizeof *quota);
    sal *sv = malloc((size_t)total * sizeof *sv);
    if (!quota || !sv) {
        free(quota);
        free(sv);
        return NULL;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < K; i++) {
            double d = U[i * K + i], w = W[r * K + i];
            bool z = o->zero && o->zero[r * K + i];
            sv[r * K + i] = (sal){z ? -1.0 : w * w / (d * d), r * K + i};
        }
    int64_t k = (int64_t)floor(o->sparsity * (double)total);
    qsort(sv, (size_t)total, sizeof *sv, cmp_sal);
    for (int64_t q = 0; q < k; q++)
        quota[sv[q].i % K / B]++;
    free(sv);
    return quota;
}

hpcz_status hpcz_obc_run(double *W, int64_t rows, int64_t K, hpcz_gram *g, const hpcz_obc_opts *o,
                         hpcz_error *err)
{
    double *H = g->H;
    double rho = hpcz_gram_shrinkage(H, K, g->rows);
    if (o->shrink_out)
        *o->shrink_out = rho;
    symmetrize_from_upper(H, K);
    /* for the comparison with round-to-nearest: the Gram matrix and weights as given */
    bool guard = o->mode == HPCZ_OBC_QUANT && o->rtn_out;
    double *H0 = guard ? malloc((size_t)(K * K) * sizeof *H0) : NULL;
    double *W0 = guard ? malloc((size_t)(rows * K) * sizeof *W0) : NULL;
    if (guard && (!H0 || !W0)) {
        free(H0);
        free(W0);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    if (guard) {
        memcpy(H0, o->H_check ? o->H_check : H, (size_t)(K * K) * sizeof *H0);
        if (o->H_check)
            symmetrize_from_upper(H0, K);
        memcpy(W0, W, (size_t)(rows * K) * sizeof *W0);
    }
    /* Inputs that were always zero carry no information: on at least as
     * many rows as the layer has inputs, their weights go (free sparsity).
     * On fewer, an input zero on all of them may well be alive on others (a
     * ReLU feature on 24 samples: oww_hey_jarvis lost 6 dB on its eval set to
     * that), so it counts as an input of average energy and its weights stay
     * to be pruned or quantized like the rest. */
    bool drop_dead = g->rows >= (uint64_t)K;
    double mean_diag = 0, avg = 0;
    int64_t alive = 0;
    for (int64_t i = 0; i < K; i++)
        if (H[i * K + i] != 0) {
            avg += H[i * K + i];
            alive++;
        }
    avg = alive ? avg / (double)alive : 1;
    for (int64_t i = 0; i < K; i++) {
        if (H[i * K + i] == 0) {
            H[i * K + i] = drop_dead ? 1 : avg;
            for (int64_t r = 0; drop_dead && r < rows; r++)
                W[r * K + i] = 0;
        }
        mean_diag += H[i * K + i];
    }
    mean_diag /= (double)K;
    double damp = hpcz_gram_ridge(o->damp, rho) * mean_diag;
    for (int64_t i = 0; i < K; i++)
        H[i * K + i] += damp;
    double *hd = o->mode == HPCZ_OBC_QUANT && o->clip ? malloc((size_t)K * sizeof *hd) : NULL;
    for (int64_t i = 0; hd && i < K; i++)
        hd[i] = H[i * K + i];
    /* U upper with H^-1 = U^T U, from one Cholesky factorisation and one
     * triangular inverse: with J the reversal, J H J = L L^T gives
     * H^-1 = (J L^-1 J)^T (J L^-1 J), and J L^-1 J is upper. LAPACK is
     * column-major: its 'U' is our lower triangle. */
    int n = (int)K, info = 0;
    double *A = malloc((size_t)(K * K) * sizeof *A);
    if (!A) {
        free(hd);
        free(H0);
        free(W0);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j <= i; j++)
            A[i * K + j] = H[(K - 1 - i) * K + (K - 1 - j)];
    dpotrf_("U", &n, A, &n, &info);
    if (!info)
        dtrtri_("U", "N", &n, A, &n, &info);
    if (info) {
        free(A);
        free(hd);
        free(H0);
        free(W0);
        return hpcz_fail(err, HPCZ_ERR_INVALID,
                         "the layer's input Gram matrix is not positive definite (LAPACK info %d)", info);
    }
    for (int64_t i = 0; i < K; i++) {
        for (int64_t j = 0; j < i; j++)
            H[i * K + j] = 0; /* U is upper */
        for (int64_t j = i; j < K; j++)
            H[i * K + j] = A[(K - 1 - i) * K + (K - 1 - j)];
    }
    free(A);
    const int64_t B = 128;
    /* unstructured: how many weights each block of columns loses, from the
     * saliencies before any update, over the whole layer. A share per block
     * (SparseGPT) forces the same sparsity on every block, whatever its
     * weights: an STFT's windowed rows, small at both ends, then lose half of
     * their large middle taps (oww_melspec: 7x the error of magnitude
     * pruning, 3x less than it with the layer's own quota). */
    int64_t *quota = NULL;
    if (o->mode == HPCZ_OBC_PRUNE && o->n == 0) {
        quota = block_quotas(W, rows, K, B, H, o);
        if (!quota) {
            free(hd);
            free(H0);
            free(W0);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
    }
    double *err1 = malloc((size_t)(rows * B) * sizeof *err1);
    unsigned char *mask = malloc((size_t)(rows * B));
    sal *sv = malloc((size_t)(rows * B) * sizeof *sv);
    double *gscale = malloc((size_t)rows * sizeof *gscale);
    int *gzp = malloc((size_t)rows * sizeof *gzp);
    if (!err1 || !mask || !sv || !gscale || !gzp) {
        free(err1);
        free(mask);
        free(sv);
        free(gscale);
        free(gzp);
        free(hd);
        free(H0);
        free(W0);
        free(quota);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    if (o->mode == HPCZ_OBC_QUANT && o->group <= 0)
        for (int64_t r = 0; r < rows; r++)
            group_params(W + r * K, K, 1, hd, o, &gscale[r], &gzp[r]);
    for (int64_t i1 = 0; i1 < K; i1 += B) {
        int64_t i2 = i1 + B < K ? i1 + B : K, cnt = i2 - i1;
        memset(mask, 0, (size_t)(rows * cnt));
        if (o->mode == HPCZ_OBC_PRUNE && o->n == 0) {
            /* unstructured: the block's lowest saliencies w^2 / U_ii^2 */
            int64_t m = 0, forced = 0;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cnt; c++) {
                    double d = H[(i1 + c) * K + i1 + c];
                    double w = W[r * K + i1 + c];
                    bool z = o->zero && o->zero[r * K + i1 + c];
                    forced += z;
                    sv[m++] = (sal){z ? -1.0 : w * w / (d * d), r * cnt + c};
                }
            int64_t k = quota[i1 / B];
            if (k < forced)
                k = forced;
            qsort(sv, (size_t)m, sizeof *sv, cmp_sal);
            for (int64_t q = 0; q < k; q++)
                mask[sv[q].i] = 1;
        }
        for (int64_t c = 0; c < cnt; c++) {
            int64_t i = i1 + c;
            double d = H[i * K + i];
            if (o->mode == HPCZ_OBC_PRUNE && o->n > 0 && (i % o->m) == 0) {
                /* N:M: per row, the m - n lowest saliencies of the group */
                for (int64_t r = 0; r < rows; r++) {
                    sal grp[64];
                    int64_t gl = o->m;
                    for (int64_t j = 0; j < gl && i + j < K; j++) {
                        double dj = H[(i + j) * K + i + j];
                        double w = W[r * K + i + j];
                        bool z = o->zero && o->zero[r * K + i + j];
                        grp[j] = (sal){z ? -1.0 : w * w / (dj * dj), j};
                    }
                    qsort(grp, (size_t)gl, sizeof *grp, cmp_sal);
                    /* groups never straddle blocks: the caller checks 128 % m == 0 and K % m == 0 */
                    for (int64_t j = 0; j < gl; j++)
                        if (j < gl - o->n || grp[j].s < 0)
                            mask[r * cnt + c + grp[j].i] = 1;
                }
            }
            if (o->mode == HPCZ_OBC_QUANT && o->group > 0 && (i % o->group) == 0) {
                int64_t gl = i + o->group < K ? o->group : K - i;
                for (int64_t r = 0; r < rows; r++)
                    group_params(W + r * K + i, gl, 1, hd ? hd + i : NULL, o, &gscale[r], &gzp[r]);
                if (o->scales_out)
                    for (int64_t r = 0; r < rows; r++) {
                        o->scales_out[r * o->n_groups + i / o->group] = (float)gscale[r];
                        o->zps_out[r * o->n_groups + i / o->group] = gzp[r];
                    }
            }
            for (int64_t r = 0; r < rows; r++) {
                double w = W[r * K + i], q;
                if (o->mode == HPCZ_OBC_PRUNE)
                    q = mask[r * cnt + c] ? 0.0 : w;
                else if (o->zero && o->zero[r * K + i])
                    q = 0.0;
                else
                    q = quant_value(w, gscale[r], gzp[r], o->qmin, o->qmax);
                double e = (w - q) / d;
                W[r * K + i] = q;
                err1[r * B + c] = e;
                for (int64_t j = i + 1; j < i2; j++)
                    W[r * K + j] -= e * H[i * K + j];
            }
        }
        /* the block's error on the columns after it */
        if (i2 < K)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)(K - i2), (int)cnt, -1.0,
                        err1, (int)B, H + i1 * K + i2, (int)K, 1.0, W + i2, (int)K);
    }
    if (o->mode == HPCZ_OBC_QUANT && o->group <= 0 && o->scales_out)
        for (int64_t r = 0; r < rows; r++) {
            o->scales_out[r] = (float)gscale[r];
            o->zps_out[r] = gzp[r];
        }
    hpcz_status st = guard ? keep_better(W, W0, H0, rows, K, hd, o) : HPCZ_OK;
    free(err1);
    free(mask);
    free(sv);
    free(gscale);
    free(gzp);
    free(hd);
    free(H0);
    free(W0);
    free(quota);
    return st ? hpcz_fail(err, st, "out of memory") : HPCZ_OK;
}
