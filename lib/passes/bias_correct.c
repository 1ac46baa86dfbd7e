/*
 * bias_correct.c - bias correction (Nagel et al. 2019, "Data-Free
 * Quantization Through Weight Equalization and Bias Correction").
 *
 * Rounding a weight W to W + dW shifts the layer's output by dW x, and
 * that error has a mean, dW E[x], whenever the input's channels have a
 * mean (after ReLU, HardSwish or a folded BatchNorm they always do). In a
 * depthwise/pointwise net those shifts are most of the error of per-channel
 * int8 weights and they add up layer after layer (ppocr_det: 50-100% of each
 * layer's output error). The pass runs before quantization: it rounds each
 * weight exactly as quantize-int8 with the same options will
 * (hpcz_int8_weights_each), measures E[x] per input channel on the
 * calibration data (without data, on random inputs when random=N asks), and
 * subtracts dW E[x] from the bias (Conv, Gemm, MatMul followed by an Add of
 * a constant vector); a Conv's kernel taps count E[x] by the share of
 * positions where they read the input, not padding. The weights themselves
 * are left as they are, so the quantization pass that follows rounds them
 * to the same integers. quantize-static{bias-correct} instead compares with
 * a copy it quantized (hpcz_bias_correct_like), since its placement decides
 * per layer which weights become int8.
 *
 * Measured (README, quantize section): ppocr_rec and oww_embedding gain
 * 10-11 dB weight-only, ppocr_det 4; ddddocr_det loses 5 dB (not understood;
 * each layer's correction is right in isolation), so it is off by default,
 * and check=true (weight-only --bias-correction) keeps it only where the
 * quantized model's worst output SQNR on the calibration data does not drop.
 */
#include "passes.h"
#include "qmath.h"

#include <math.h>
#include <stdio.h>

static const hpcz_pass_opt opts[] = {
    {"per-channel", HPCZ_OPT_BOOL, "true", "the quantizer that follows: one scale per output channel", NULL, 0, 0},
    {"weight-dtype", HPCZ_OPT_ENUM, "int8", "the quantizer that follows: integer type of the weights", "int8|uint8", 0, 0},
    {"symmetric", HPCZ_OPT_BOOL, "true", "the quantizer that follows: zero point 0", NULL, 0, 0},
    {"reduce-range", HPCZ_OPT_BOOL, "false", "the quantizer that follows: weights within [-64, 64]", NULL, 0, 0},
    {"clip", HPCZ_OPT_ENUM, "mse", "the quantizer that follows: weight range", "minmax|mse", 0, 0},
    {"rounding", HPCZ_OPT_ENUM, "nearest", "the quantizer that follows: rounding", "nearest|balanced", 0, 0},
    {"early-fp16", HPCZ_OPT_FLOAT, "0", "the quantizer that follows: early-fp16 (those layers are not corrected)", NULL, 0, 100},
    {"op-types", HPCZ_OPT_STRING, "Conv,Gemm,MatMul", "ops whose biases are corrected", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"min-size", HPCZ_OPT_INT, "16", "the quantizer that follows: weights with fewer elements stay float", NULL, 0, 1e12},
    {"check", HPCZ_OPT_BOOL, "false",
     "keep the correction only when the model quantized by quantize-int8 with these options has at least "
     "the worst output SQNR on the calibration data that it has uncorrected", NULL, 0, 0},
    {"random", HPCZ_OPT_INT, "0",
     "without calibration data: measure the input means on this many random samples (0: do nothing without "
     "data)", NULL, 0, 1024},
    {0},
};

/* A layer whose output shift can go into a bias. */
typedef struct bc_site {
    hpcz_node *n;
    hpcz_node *add; /* MatMul: the Add of a constant vector after it */
    int add_k;      /* its constant input */
    hpcz_value *x;
    int axis; /* x's channel axis */
    int64_t C;
} bc_site;

/* The Add reading a MatMul's output as its only reader, with a constant
 * [N] (or [1, ..., N]) float vector as its other input. */
static hpcz_node *bias_add(hpcz_graph *g, hpcz_node *mm, int64_t N, int *k_out)
{
    hpcz_value *y = mm->outputs[0];
    if (!y || y->is_output || hpcz_graph_count_uses(g, y) != 1)
        return NULL;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *a = g->nodes[i];
        if (strcmp(a->op_type, "Add") || (a->domain && *a->domain) || a->n_inputs != 2)
            continue;
        for (int k = 0; k < 2; k++) {
            hpcz_tensor *b = a->inputs[1 - k] == y ? hpcz_value_const(a->inputs[k]) : NULL;
            if (b && b->dtype == HPCZ_DTYPE_FLOAT && b->numel == N && b->ndim >= 1 && b->dims[b->ndim - 1] == N) {
                *k_out = k;
                return a;
            }
        }
    }
    return NULL;
}

/* Conv, Gemm (no transA) and 2-D MatMul with a constant float weight whose
 * bias is constant float, absent, or (MatMul) an Add after it. */
static bool site_of(hpcz_graph *g, hpcz_node *n, bc_site *s)
{
    if ((n->domain && *n->domain) || n->n_inputs < 2 || !n->inputs[0] || n->n_outputs < 1 || !n->outputs[0])
        return false;
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim < 2 || hpcz_value_const(n->inputs[0]))
        return false;
    memset(s, 0, sizeof *s);
    s->n = n;
    s->x = n->inputs[0];
    int64_t N;
    if (!strcmp(n->op_type, "Conv")) {
        s->axis = 1;
        s->C = w->dims[1] * hpcz_node_attr_int(n, "group", 1);
        N = w->dims[0];
    } else if (!strcmp(n->op_type, "Gemm")) {
        if (hpcz_node_attr_int(n, "transA", 0) || hpcz_node_attr_float(n, "beta", 1.0f) == 0)
            return false;
        bool tb = hpcz_node_attr_int(n, "transB", 0) != 0;
        s->axis = -1;
        s->C = w->dims[tb ? 1 : 0];
        N = w->dims[tb ? 0 : 1];
    } else if (!strcmp(n->op_type, "MatMul") && w->ndim == 2) {
        s->axis = -1;
        s->C = w->dims[0];
        N = w->dims[1];
        return (s->add = bias_add(g, n, N, &s->add_k)) != NULL;
    } else {
        return false;
    }
    if (n->n_inputs > 2 && n->inputs[2]) {
        hpcz_tensor *b = hpcz_value_const(n->inputs[2]);
        return b && b->dtype == HPCZ_DTYPE_FLOAT && b->numel == N;
    }
    return true;
}

/* The biases as they were before a correction, to put back. */
struct hpcz_bias_undo {
    size_t n, cap;
    struct {
        float *b, *old;
        int64_t len;
    } *e;
};

void hpcz_bias_undo_apply(hpcz_bias_undo *u)
{
    for (size_t i = 0; u && i < u->n; i++)
        memcpy(u->e[i].b, u->e[i].old, (size_t)u->e[i].len * sizeof *u->e[i].b);
}

void hpcz_bias_undo_free(hpcz_bias_undo *u)
{
    for (size_t i = 0; u && i < u->n; i++)
        free(u->e[i].old);
    if (u)
        free(u->e);
    free(u);
}

typedef struct bc_run {
    hpcz_graph *g;
    bc_site *sites;
    double **mean;
    const int64_t *dims; /* the shape each site's input was seen with */
    size_t corrected;
    hpcz_bias_undo *undo; /* NULL: not recorded */
} bc_run;

/* For each tap of a Conv's kernel, the share of the output positions where
 * it reads the input rather than padding (a 3x3 kernel on a 13x13 map with
 * pad 1 reads padding at a quarter of its edge taps): E[x] at that tap is
 * E[x_c] times it. x: the input's shape (N, C, spatial...); false when it
 * is not known. */
static bool tap_shares(const hpcz_node *n, const hpcz_tensor *w, const int64_t *x, double *share)
{
    int r = w->ndim - 2;
    int64_t ksz = 1;
    for (int d = 0; d < r; d++)
        ksz *= w->dims[2 + d];
    for (int64_t t = 0; t < ksz; t++)
        share[t] = 1;
    const hpcz_attr *pads = hpcz_node_attr(n, "pads"), *strides = hpcz_node_attr(n, "strides");
    const hpcz_attr *dil = hpcz_node_attr(n, "dilations");
    const char *autopad = hpcz_node_attr_string(n, "auto_pad", "NOTSET");
    int64_t inner = ksz;
    for (int d = 0; d < r; d++) {
        int64_t in = x[2 + d], k = w->dims[2 + d];
        int64_t st = strides && strides->n > (size_t)d ? strides->ints[d] : 1;
        int64_t dl = dil && dil->n > (size_t)d ? dil->ints[d] : 1;
        int64_t pb = pads && pads->n == (size_t)(2 * r) ? pads->ints[d] : 0;
        int64_t pe = pads && pads->n == (size_t)(2 * r) ? pads->ints[r + d] : 0;
        if (in <= 0 || st <= 0 || dl <= 0)
            return false;
        if (!strcmp(autopad, "SAME_UPPER") || !strcmp(autopad, "SAME_LOWER")) {
            int64_t out = (in + st - 1) / st, total = (out - 1) * st + (k - 1) * dl + 1 - in;
            total = total > 0 ? total : 0;
            pb = !strcmp(autopad, "SAME_UPPER") ? total / 2 : total - total / 2;
            pe = total - pb;
        } else if (!strcmp(autopad, "VALID")) {
            pb = pe = 0;
        }
        int64_t span = (k - 1) * dl + 1, out = (in + pb + pe - span) / st + 1;
        if (out <= 0)
            return false;
        inner /= k;
        for (int64_t t = 0; t < k; t++) {
            int64_t inside = 0;
            for (int64_t o = 0; o < out; o++) {
                int64_t p = o * st - pb + t * dl;
                inside += p >= 0 && p < in;
            }
            double f = (double)inside / (double)out;
            /* every tap index whose coordinate along d is t */
            for (int64_t i = 0; i < ksz; i++)
                if ((i / inner) % k == t)
                    share[i] *= f;
        }
    }
    return true;
}

/* The bias the shift goes into, made when the node has none. */
static float *bias_of(bc_run *r, bc_site *s, int64_t N, hpcz_error *err)
{
    hpcz_node *n = s->add ? s->add : s->n;
    size_t k = s->add ? (size_t)s->add_k : 2;
    if (!s->add && (n->n_inputs <= 2 || !n->inputs[2])) {
        const char *base = n->name && *n->name ? n->name : s->n->outputs[0]->name;
        const char *name = hpcz_unique_name(r->g, base, "bias");
        hpcz_tensor *t = hpcz_new_float_init(r->g, name, 1, &N, err);
        if (!t)
            return NULL;
        if (!hpcz_node_set_input(n, 2, hpcz_graph_find_value(r->g, name))) {
            hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            return NULL;
        }
        return t->data;
    }
    hpcz_tensor *t = hpcz_writable_weight(r->g, n, k, err);
    return t ? hpcz_tensor_data(t, err) : NULL;
}

static hpcz_status correct(void *user, hpcz_node *n, size_t idx, int channel_axis, const float *w, const float *wq,
                           hpcz_error *err)
{
    (void)idx;
    bc_run *r = user;
    if (n->aux <= 0)
        return HPCZ_OK;
    bc_site *s = &r->sites[n->aux - 1];
    const double *mu = r->mean[n->aux - 1];
    hpcz_tensor *wt = hpcz_value_const(n->inputs[1]);
    int64_t N = wt->dims[channel_axis], numel = wt->numel;
    double *shift = calloc((size_t)N, sizeof *shift);
    if (!shift)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (!strcmp(n->op_type, "Conv")) {
        /* [N, C/group, k...]: output channel o reads input channels of its group */
        int64_t cg = wt->dims[1], per = numel / N, ng = N / (s->C / cg), ksz = per / cg;
        double *share = malloc((size_t)ksz * sizeof *share);
        if (!share) {
            free(shift);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
        if (!tap_shares(n, wt, r->dims + (size_t)(n->aux - 1) * HPCZ_ARRAY_MAX_RANK, share))
            for (int64_t t = 0; t < ksz; t++)
                share[t] = 1;
        for (int64_t o = 0; o < N; o++) {
            const double *m = mu + (o / ng) * cg;
            double acc = 0;
            for (int64_t j = 0; j < per; j++)
                acc += ((double)wq[o * per + j] - w[o * per + j]) * m[j / ksz] * share[j % ksz];
            shift[o] = acc;
        }
        free(share);
    } else {
        /* [C, N] or (channel axis 0: Gemm transB) [N, C] */
        int64_t C = s->C;
        for (int64_t c = 0; c < C; c++)
            for (int64_t o = 0; o < N; o++) {
                int64_t i = channel_axis == 0 ? o * C + c : c * N + o;
                shift[o] += ((double)wq[i] - w[i]) * mu[c];
            }
        if (!strcmp(n->op_type, "Gemm")) {
            double alpha = hpcz_node_attr_float(n, "alpha", 1.0f), beta = hpcz_node_attr_float(n, "beta", 1.0f);
            for (int64_t o = 0; o < N; o++)
                shift[o] *= alpha / beta;
        }
    }
    float *b = bias_of(r, s, N, err);
    if (!b) {
        free(shift);
        return err->status;
    }
    if (r->undo) {
        hpcz_bias_undo *u = r->undo;
        float *old = malloc((size_t)N * sizeof *old);
        if (!old || !hpcz_grow((void **)&u->e, &u->cap, u->n + 1, sizeof *u->e)) {
            free(old);
            free(shift);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
        memcpy(old, b, (size_t)N * sizeof *old);
        u->e[u->n].b = b;
        u->e[u->n].old = old;
        u->e[u->n++].len = N;
    }
    for (int64_t o = 0; o < N; o++)
        b[o] = (float)(b[o] - shift[o]);
    r->corrected++;
    free(shift);
    return HPCZ_OK;
}

/* The layers of m whose bias can take a correction, with the per-channel
 * means of their inputs measured on `data`; *measured false (a note said
 * why) when random inputs were asked for and do not fit the model. */
typedef struct bc_prep {
    bc_site *sites;
    size_t ns;
    double **mean;
    int64_t *dims; /* ns rows of HPCZ_ARRAY_MAX_RANK: the shapes the inputs were seen with */
    bool measured;
} bc_prep;

static void prep_release(bc_prep *p)
{
    for (size_t i = 0; p->mean && i < p->ns; i++)
        free(p->mean[i]);
    free(p->mean);
    free(p->dims);
    free(p->sites);
    memset(p, 0, sizeof *p);
}

static hpcz_status prepare(hpcz_model *m, hpcz_pass_ctx *ctx, const char *data, bc_prep *p, hpcz_error *err)
{
    hpcz_graph *g = m->graph;
    size_t cap = 0;
    hpcz_status st = HPCZ_OK;
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        bc_site s;
        if (!site_of(g, g->nodes[i], &s))
            continue;
        if (!hpcz_grow((void **)&p->sites, &cap, p->ns + 1, sizeof *p->sites))
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        else
            p->sites[p->ns++] = s;
    }
    const char **names = calloc(p->ns + 1, sizeof *names);
    int *axes = calloc(p->ns + 1, sizeof *axes);
    int64_t *chans = calloc(p->ns + 1, sizeof *chans);
    p->mean = calloc(p->ns + 1, sizeof *p->mean);
    p->dims = calloc((p->ns + 1) * HPCZ_ARRAY_MAX_RANK, sizeof *p->dims);
    if (!st && (!names || !axes || !chans || !p->mean || !p->dims))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->ns && !st; i++) {
        names[i] = p->sites[i].x->name;
        axes[i] = p->sites[i].axis;
        chans[i] = p->sites[i].C;
        if (!(p->mean[i] = calloc((size_t)p->sites[i].C, sizeof **p->mean)))
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    p->measured = !st && p->ns > 0;
    if (p->measured) {
        hpcz_error e2 = {0};
        bool real = ctx && ctx->data && !strcmp(data, ctx->data);
        hpcz_status ms = hpcz_channel_mean(m, data, real ? ctx->data_samples : 0, real ? ctx->data_mask : NULL,
                                           ctx ? ctx->threads : 0, p->ns, names, axes, chans, p->mean, p->dims, &e2);
        if (ms && !real) {
            /* random inputs are a proxy; a model they cannot feed (integer
             * inputs, unknown sizes) is left as it is */
            hpcz_pass_note(ctx, "bias-correct", "no calibration data and random inputs do not fit (%s): nothing "
                           "corrected", e2.msg);
            p->measured = false;
        } else if (ms) {
            *err = e2;
            st = ms;
        }
    }
    free(names);
    free(axes);
    free(chans);
    if (st)
        prep_release(p);
    return st;
}

/* check: the worst output SQNR on the calibration data of the uncorrected
 * model `ref` and of the corrected `m`, each quantized as quantize-int8
 * with a's options will (ddddocr_det: every layer's correction is right
 * alone, the model as a whole loses 5 dB with it). */
static hpcz_status check_gain(hpcz_model *ref, hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                              double *before, double *after, hpcz_error *err)
{
    char spec[1400];
    const char *inc = hpcz_pass_arg(a, "include").s, *exc = hpcz_pass_arg(a, "exclude").s;
    snprintf(spec, sizeof spec,
             "quantize-int8{per-channel=%s,weight-dtype=%s,symmetric=%s,reduce-range=%s,clip=%s,rounding=%s,"
             "early-fp16=%g,min-size=%lld%s%s%s%s}",
             hpcz_pass_arg(a, "per-channel").b ? "true" : "false", hpcz_pass_arg(a, "weight-dtype").s,
             hpcz_pass_arg(a, "symmetric").b ? "true" : "false", hpcz_pass_arg(a, "reduce-range").b ? "true" : "false",
             hpcz_pass_arg(a, "clip").s, hpcz_pass_arg(a, "rounding").s, hpcz_pass_arg(a, "early-fp16").f,
             (long long)hpcz_pass_arg(a, "min-size").i,
             inc ? ",include=" : "", inc ? inc : "", exc ? ",exclude=" : "", exc ? exc : "");
    hpcz_pipeline *pl = hpcz_pipeline_parse(spec, err);
    if (!pl)
        return err->status;
    hpcz_pass_ctx quiet = *ctx;
    quiet.log = NULL;
    quiet.verify = 0;
    hpcz_status st = HPCZ_OK;
    for (int k = 0; k < 2 && !st; k++) {
        hpcz_model *q = hpcz_model_clone(k ? m : ref, err);
        if (!q)
            st = err->status;
        else if (!(st = hpcz_pipeline_run(pl, q, &quiet, err)))
            st = hpcz_worst_sqnr(ref, q, &quiet, k ? after : before, err);
        hpcz_model_free(q);
    }
    hpcz_pipeline_free(pl);
    return st;
}

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    hpcz_graph *g = m->graph;
    int64_t nrand = hpcz_pass_arg(a, "random").i;
    char rspec[32];
    snprintf(rspec, sizeof rspec, "random:%lld", (long long)nrand);
    const char *data = ctx && ctx->data ? ctx->data : nrand > 0 ? rspec : NULL;
    if (!data) {
        hpcz_pass_note(ctx, "bias-correct", "no calibration data: nothing corrected");
        return HPCZ_OK;
    }
    bc_prep p;
    hpcz_status st = prepare(m, ctx, data, &p, err);
    bc_run r = {g, p.sites, p.mean, p.dims, 0, NULL};
    /* check: the model as it was, to compare with and to put back */
    bool check = hpcz_pass_arg(a, "check").b && ctx && ctx->data && p.measured;
    hpcz_model *ref = NULL;
    if (!st && check && !(ref = hpcz_model_clone(m, err)))
        st = err->status;
    if (!st && check && !(r.undo = calloc(1, sizeof *r.undo)))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (!st && p.measured && !(st = hpcz_uses_begin(m, err))) {
        for (size_t i = 0; i < g->n_nodes; i++)
            g->nodes[i]->aux = 0;
        for (size_t i = 0; i < p.ns; i++)
            p.sites[i].n->aux = (int)i + 1;
        st = hpcz_int8_weights_each(m, a, ctx, correct, &r, err);
        hpcz_uses_end(m);
        for (size_t i = 0; i < g->n_nodes; i++)
            g->nodes[i]->aux = 0;
    }
    double before = 0, after = 0;
    if (!st && check && r.corrected)
        st = check_gain(ref, m, a, ctx, &before, &after, err);
    if (!st && check && r.corrected && !(after >= before)) {
        hpcz_bias_undo_apply(r.undo);
        hpcz_pass_note(ctx, "bias-correct", "biases left as they were: correcting %zu layers for their weights' "
                       "rounding would lower the worst output SQNR on the calibration data (%.1f -> %.1f dB)",
                       r.corrected, before, after);
    } else if (!st && check && r.corrected) {
        hpcz_pass_note(ctx, "bias-correct", "corrected the biases of %zu layers for their weights' rounding "
                       "(input means from the calibration data; worst output SQNR there %.1f -> %.1f dB)",
                       r.corrected, before, after);
    } else if (!st && p.measured) {
        hpcz_pass_note(ctx, "bias-correct", "corrected the biases of %zu layers for their weights' rounding "
                       "(input means from %s)", r.corrected, ctx && ctx->data ? "the calibration data" : rspec);
    }
    hpcz_bias_undo_free(r.undo);
    hpcz_model_free(ref);
    prep_release(&p);
    return st;
}

/* ------------------------------------------------ against a quantized copy */

/* The dequantized constant weight behind a DequantizeLinear (per tensor or
 * per channel along its axis); NULL when v is not one. Allocated. */
static float *dequantized(const hpcz_value *v, int64_t numel, hpcz_error *err)
{
    const hpcz_node *dq = v ? v->producer : NULL;
    if (!dq || strcmp(dq->op_type, "DequantizeLinear") || (dq->domain && *dq->domain) || dq->n_inputs < 2 ||
        hpcz_node_attr(dq, "block_size"))
        return NULL;
    hpcz_tensor *q = hpcz_value_const(dq->inputs[0]), *sc = hpcz_value_const(dq->inputs[1]);
    hpcz_tensor *zp = dq->n_inputs > 2 && dq->inputs[2] ? hpcz_value_const(dq->inputs[2]) : NULL;
    if (!q || !sc || q->numel != numel || sc->dtype != HPCZ_DTYPE_FLOAT || sc->ndim > 1 ||
        (q->dtype != HPCZ_DTYPE_INT8 && q->dtype != HPCZ_DTYPE_UINT8) || (zp && zp->numel != sc->numel))
        return NULL;
    int axis = (int)hpcz_node_attr_int(dq, "axis", 1);
    axis = axis < 0 ? axis + q->ndim : axis;
    if (sc->numel > 1 && (axis < 0 || axis >= q->ndim || q->dims[axis] != sc->numel))
        return NULL;
    const void *qd = hpcz_tensor_data(q, err);
    const float *sd = hpcz_tensor_data(sc, err);
    const void *zd = zp ? hpcz_tensor_data(zp, err) : NULL;
    float *out = qd && sd && (!zp || zd) ? malloc((size_t)numel * sizeof *out) : NULL;
    if (!out)
        return NULL;
    int64_t inner = 1;
    for (int k = axis + 1; sc->numel > 1 && k < q->ndim; k++)
        inner *= q->dims[k];
    for (int64_t k = 0; k < numel; k++) {
        int64_t c = sc->numel > 1 ? (k / inner) % sc->numel : 0;
        int z = zd ? hpcz_qload(zd, zp->dtype, (size_t)c) : 0;
        out[k] = sd[c] * (float)(hpcz_qload(qd, q->dtype, (size_t)k) - z);
    }
    return out;
}

static int cmp_out_name(const void *a, const void *b)
{
    const hpcz_node *x = *(const hpcz_node *const *)a, *y = *(const hpcz_node *const *)b;
    return strcmp(x->outputs[0]->name, y->outputs[0]->name);
}

static int cmp_name_key(const void *key, const void *e)
{
    return strcmp(key, (*(const hpcz_node *const *)e)->outputs[0]->name);
}

hpcz_status hpcz_bias_correct_like(hpcz_model *m, const hpcz_model *q, hpcz_pass_ctx *ctx, size_t *corrected,
                                   hpcz_bias_undo **undo, hpcz_error *err)
{
    hpcz_graph *g = m->graph;
    *corrected = 0;
    if (undo)
        *undo = NULL;
    if (!ctx || !ctx->data)
        return HPCZ_OK;
    /* q's nodes by their first output's name, the name they keep through quantization */
    const hpcz_graph *qg = q->graph;
    hpcz_node **byname = malloc((qg->n_nodes + 1) * sizeof *byname);
    if (!byname)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    size_t nq = 0;
    for (size_t i = 0; i < qg->n_nodes; i++)
        if (qg->nodes[i]->n_outputs && qg->nodes[i]->outputs[0] && qg->nodes[i]->outputs[0]->name)
            byname[nq++] = qg->nodes[i];
    qsort(byname, nq, sizeof *byname, cmp_out_name);
    bc_prep p;
    hpcz_status st = prepare(m, ctx, ctx->data, &p, err);
    bc_run r = {g, p.sites, p.mean, p.dims, 0, NULL};
    if (undo && !st && !(r.undo = *undo = calloc(1, sizeof **undo)))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    bool began = !st && p.measured && !(st = hpcz_uses_begin(m, err));
    for (size_t i = 0; i < p.ns && began && !st; i++) {
        hpcz_node *n = p.sites[i].n;
        if (!n->outputs[0]->name)
            continue;
        hpcz_node **hit = bsearch(n->outputs[0]->name, byname, nq, sizeof *byname, cmp_name_key);
        hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
        float *wq = hit && (*hit)->n_inputs > 1 && !strcmp((*hit)->op_type, n->op_type)
                        ? dequantized((*hit)->inputs[1], w->numel, err) : NULL;
        const float *wf = wq ? hpcz_tensor_data(w, err) : NULL;
        if (!wf) {
            free(wq);
            continue;
        }
        int channel_axis = !strcmp(n->op_type, "Conv") ? 0
                           : !strcmp(n->op_type, "Gemm") && hpcz_node_attr_int(n, "transB", 0) ? 0 : 1;
        n->aux = (int)i + 1;
        st = correct(&r, n, 1, channel_axis, wf, wq, err);
        n->aux = 0;
        free(wq);
    }
    if (began)
        hpcz_uses_end(m);
    *corrected = r.corrected;
    prep_release(&p);
    free(byname);
    return st;
}

const hpcz_pass hpcz_pass_bias_correct = {
    "bias-correct",
    "bias correction: subtract the mean output shift that rounding the weights (as quantize-int8 with the "
    "same options will) causes, from input means measured on the calibration data; weights unchanged",
    opts,
    run,
};
