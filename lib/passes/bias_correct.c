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
 * calibration data (or, without data, on a few random inputs), and
 * subtracts dW E[x] from the bias (Conv, Gemm, MatMul followed by an Add of
 * a constant vector). The weights themselves are left as they are, so the
 * quantization pass that follows rounds them to the same integers.
 */
#include "passes.h"

#include <math.h>
#include <stdio.h>

static const hpcz_pass_opt opts[] = {
    {"per-channel", HPCZ_OPT_BOOL, "true", "the quantizer that follows: one scale per output channel", NULL, 0, 0},
    {"weight-dtype", HPCZ_OPT_ENUM, "int8", "the quantizer that follows: integer type of the weights", "int8|uint8", 0, 0},
    {"symmetric", HPCZ_OPT_BOOL, "true", "the quantizer that follows: zero point 0", NULL, 0, 0},
    {"reduce-range", HPCZ_OPT_BOOL, "false", "the quantizer that follows: weights within [-64, 64]", NULL, 0, 0},
    {"clip", HPCZ_OPT_ENUM, "mse", "the quantizer that follows: weight range", "minmax|mse", 0, 0},
    {"op-types", HPCZ_OPT_STRING, "Conv,Gemm,MatMul", "ops whose biases are corrected", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"min-size", HPCZ_OPT_INT, "16", "the quantizer that follows: weights with fewer elements stay float", NULL, 0, 1e12},
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

typedef struct bc_run {
    hpcz_graph *g;
    bc_site *sites;
    double **mean;
    size_t corrected;
} bc_run;

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
        int64_t cg = wt->dims[1], per = numel / N, ng = N / (s->C / cg);
        for (int64_t o = 0; o < N; o++) {
            const double *m = mu + (o / ng) * cg;
            double acc = 0;
            for (int64_t j = 0; j < per; j++)
                acc += ((double)wq[o * per + j] - w[o * per + j]) * m[j / (per / cg)];
            shift[o] = acc;
        }
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
    for (int64_t o = 0; o < N; o++)
        b[o] = (float)(b[o] - shift[o]);
    r->corrected++;
    free(shift);
    return HPCZ_OK;
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
    bc_site *sites = NULL;
    size_t ns = 0, cap = 0;
    hpcz_status st = HPCZ_OK;
    for (size_t i = 0; i < g->n_nodes; i++)
        g->nodes[i]->aux = 0;
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        bc_site s;
        if (!site_of(g, g->nodes[i], &s))
            continue;
        if (!hpcz_grow((void **)&sites, &cap, ns + 1, sizeof *sites))
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        else
            sites[ns++] = s;
    }
    const char **names = calloc(ns + 1, sizeof *names);
    int *axes = calloc(ns + 1, sizeof *axes);
    int64_t *chans = calloc(ns + 1, sizeof *chans);
    double **mean = calloc(ns + 1, sizeof *mean);
    if (!st && (!names || !axes || !chans || !mean))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < ns && !st; i++) {
        names[i] = sites[i].x->name;
        axes[i] = sites[i].axis;
        chans[i] = sites[i].C;
        if (!(mean[i] = calloc((size_t)sites[i].C, sizeof **mean)))
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    bool measured = ns > 0;
    if (!st && measured) {
        hpcz_error e2 = {0};
        hpcz_status ms = hpcz_channel_mean(m, data, ctx && ctx->data ? ctx->data_samples : 0,
                                           ctx ? ctx->threads : 0, ns, names, axes, chans, mean, &e2);
        if (ms && !(ctx && ctx->data)) {
            /* random inputs are a proxy; a model they cannot feed (integer
             * inputs, unknown sizes) is left as it is */
            hpcz_pass_note(ctx, "bias-correct", "no calibration data and random inputs do not fit (%s): nothing "
                           "corrected", e2.msg);
            measured = false;
        } else if (ms) {
            *err = e2;
            st = ms;
        }
    }
    bc_run r = {g, sites, mean, 0};
    if (!st && measured && !(st = hpcz_uses_begin(m, err))) {
        for (size_t i = 0; i < ns; i++)
            sites[i].n->aux = (int)i + 1;
        st = hpcz_int8_weights_each(m, a, ctx, correct, &r, err);
        hpcz_uses_end(m);
        for (size_t i = 0; i < g->n_nodes; i++)
            g->nodes[i]->aux = 0;
    }
    for (size_t i = 0; i < ns + 1 && mean; i++)
        free(mean[i]);
    free(mean);
    free(names);
    free(axes);
    free(chans);
    free(sites);
    if (!st && measured)
        hpcz_pass_note(ctx, "bias-correct", "corrected the biases of %zu layers for their weights' rounding "
                       "(input means from %s)", r.corrected, ctx && ctx->data ? "the calibration data" : rspec);
    return st;
}

const hpcz_pass hpcz_pass_bias_correct = {
    "bias-correct",
    "bias correction: subtract the mean output shift that rounding the weights (as quantize-int8 with the "
    "same options will) causes, from input means measured on the calibration data; weights unchanged",
    opts,
    run,
};
