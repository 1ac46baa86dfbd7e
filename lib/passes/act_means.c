/*
 * act_means.c - per-channel means and variances of a convolutional
 * network's activations, estimated from the weights alone (no data), for
 * rounding that has to know E[x] (quantize-int8{rounding=balanced}).
 *
 * Nagel et al. 2019 (DFQ) read E[x] off a BatchNorm's beta and gamma; most
 * exported nets have their BatchNorms folded already (paddle2onnx: ppocr_det
 * keeps 3 of 65), so the moments are carried through the graph instead: a
 * graph input is taken as zero mean and variance 1/3 per channel (data in
 * [-1, 1]), a Conv adds up its input means through the sums of its kernels
 * plus its bias (the variance halfway between independent and identical
 * taps), elementwise ops with constants are affine, x * f(x) (HardSwish,
 * SiLU written out) is an activation of x,
 * two tensors add or multiply as independent ones, and an activation maps a
 * Gaussian N(m, v) to the mean and variance of its output (a fixed
 * 97-point quadrature). Channel axis 1 of rank-3+ tensors only; anything
 * else (reshapes, matrix products, unknown ops) leaves its output unknown.
 * Deep in a net the means come mostly from the folded BatchNorms' betas;
 * near the input they are guesses (the caller treats an input read straight
 * from the graph input as of equal means). On ppocr_rec (unit input
 * variance) they tracked the means measured on data within about 30%.
 */
#include "passes.h"

#include <math.h>
#include <stdlib.h>

typedef struct moments {
    int64_t C;
    double *m, *v; /* NULL: unknown */
} moments;

struct hpcz_act_means {
    hpcz_graph *g;
    size_t n;
    moments *mo; /* by value->aux - 1 */
    hpcz_value **vals;
};

/* the moments of v; NULL when unknown */
static moments *of(hpcz_act_means *am, const hpcz_value *v)
{
    if (!v || v->aux <= 0 || (size_t)v->aux > am->n)
        return NULL;
    moments *mo = &am->mo[v->aux - 1];
    return mo->m ? mo : NULL;
}

static moments *make(hpcz_act_means *am, hpcz_value *v, int64_t C)
{
    if (!v || v->aux > 0 || C <= 0)
        return NULL;
    moments *mo = &am->mo[am->n];
    mo->C = C;
    mo->m = calloc((size_t)C, sizeof *mo->m);
    mo->v = calloc((size_t)C, sizeof *mo->v);
    if (!mo->m || !mo->v) {
        free(mo->m);
        free(mo->v);
        mo->m = mo->v = NULL;
        return NULL;
    }
    am->vals[am->n++] = v;
    v->aux = (int)am->n;
    return mo;
}

/* A constant float operand that broadcasts per channel against a rank-r
 * NCHW tensor of C channels: its value at channel c (scalar, [C], [C,1,1],
 * [1,C,1,1]). */
static const float *per_channel_const(const hpcz_value *v, int64_t C, int r, int64_t *step)
{
    hpcz_tensor *t = hpcz_value_const(v);
    if (!t || t->dtype != HPCZ_DTYPE_FLOAT)
        return NULL;
    const float *d = hpcz_tensor_data(t, NULL);
    if (!d)
        return NULL;
    if (t->numel == 1) {
        *step = 0;
        return d;
    }
    if (t->numel != C || t->ndim > r)
        return NULL;
    /* the one non-1 axis must be the channel axis, counted from the end */
    for (int k = 0; k < t->ndim; k++)
        if (t->dims[k] != 1 && t->ndim - k != r - 1)
            return NULL;
    *step = 1;
    return d;
}

typedef double (*act_fn)(double x, const void *p);

static double f_relu(double x, const void *p)
{
    (void)p;
    return x > 0 ? x : 0;
}

static double clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

static double f_clip(double x, const void *p)
{
    const double *b = p;
    return clamp(x, b[0], b[1]);
}

static double f_hardsigmoid(double x, const void *p)
{
    const double *ab = p;
    return clamp(ab[0] * x + ab[1], 0, 1);
}

static double f_hardswish(double x, const void *p)
{
    (void)p;
    return x * clamp(x / 6 + 0.5, 0, 1);
}

static double f_sigmoid(double x, const void *p)
{
    (void)p;
    return 1 / (1 + exp(-x));
}

static double f_leaky(double x, const void *p)
{
    return x > 0 ? x : *(const double *)p * x;
}

/* E[f(Y)], Var[f(Y)] for Y ~ N(m, v): the trapezoid rule on +-6 sd */
static void gauss_moments(act_fn f, const void *p, double m, double v, double *om, double *ov)
{
    enum { K = 97 };
    double sd = sqrt(v > 0 ? v : 0);
    if (sd == 0) {
        *om = f(m, p);
        *ov = 0;
        return;
    }
    double s0 = 0, s1 = 0, s2 = 0;
    for (int k = 0; k < K; k++) {
        double z = -6 + 12.0 * k / (K - 1), w = exp(-0.5 * z * z) * (k == 0 || k == K - 1 ? 0.5 : 1);
        double y = f(m + sd * z, p);
        s0 += w;
        s1 += w * y;
        s2 += w * y * y;
    }
    *om = s1 / s0;
    *ov = s2 / s0 - *om * *om;
    if (*ov < 0)
        *ov = 0;
}

/* the scalar constant input k of n, or dflt when absent */
static double scalar_input(const hpcz_node *n, size_t k, double dflt, bool *ok)
{
    if (k >= n->n_inputs || !n->inputs[k])
        return dflt;
    hpcz_tensor *t = hpcz_value_const(n->inputs[k]);
    const float *d = t && t->dtype == HPCZ_DTYPE_FLOAT && t->numel == 1 ? hpcz_tensor_data(t, NULL) : NULL;
    if (!d) {
        *ok = false;
        return dflt;
    }
    return d[0];
}

static bool is_op(const hpcz_node *n, const char *op)
{
    return !strcmp(n->op_type, op);
}

/* y as an elementwise function of x through scalar constants and
 * activations (HardSwish written as x * Clip(x + 3, 0, 6) / 6, SiLU as
 * x * Sigmoid(x)): its value at x = t; NAN when y is not one. */
static double chain_eval(const hpcz_value *y, const hpcz_value *x, double t, int depth)
{
    if (y == x)
        return t;
    const hpcz_node *n = y ? y->producer : NULL;
    if (!n || depth > 6 || n->n_inputs < 1 || (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")))
        return NAN;
    bool ok = true;
    if (is_op(n, "Relu"))
        return f_relu(chain_eval(n->inputs[0], x, t, depth + 1), NULL);
    if (is_op(n, "Sigmoid"))
        return f_sigmoid(chain_eval(n->inputs[0], x, t, depth + 1), NULL);
    if (is_op(n, "HardSigmoid")) {
        double ab[2] = {hpcz_node_attr_float(n, "alpha", 0.2f), hpcz_node_attr_float(n, "beta", 0.5f)};
        return f_hardsigmoid(chain_eval(n->inputs[0], x, t, depth + 1), ab);
    }
    if (is_op(n, "Clip")) {
        double lo = n->n_inputs > 1 ? scalar_input(n, 1, -INFINITY, &ok) : hpcz_node_attr_float(n, "min", -INFINITY);
        double hi = n->n_inputs > 2 ? scalar_input(n, 2, INFINITY, &ok) : hpcz_node_attr_float(n, "max", INFINITY);
        return ok ? clamp(chain_eval(n->inputs[0], x, t, depth + 1), lo, hi) : NAN;
    }
    bool add = is_op(n, "Add"), sub = is_op(n, "Sub"), mul = is_op(n, "Mul"), div = is_op(n, "Div");
    if (!(add || sub || mul || div) || n->n_inputs != 2)
        return NAN;
    for (int k = 0; k < 2; k++) {
        double q = scalar_input(n, (size_t)k, NAN, &ok);
        if (!ok || isnan(q)) {
            ok = true;
            continue;
        }
        double a = chain_eval(n->inputs[1 - k], x, t, depth + 1);
        if (add || mul)
            return add ? a + q : a * q;
        if (div)
            return k == 1 ? a / q : q / a;
        return k == 1 ? a - q : q - a;
    }
    return NAN;
}

typedef struct gated {
    const hpcz_value *gate, *x;
} gated;

static double f_gated(double t, const void *p)
{
    const gated *gd = p;
    return t * chain_eval(gd->gate, gd->x, t, 0);
}

/* Conv / ConvTranspose with a constant float weight: out channel o gets the
 * sum over its input channels c of E[x_c] times the sum of its kernel taps
 * (ConvTranspose: per output position, taps / prod(strides) of them on
 * average) plus the bias; the variance as for independent inputs. */
static void conv_moments(hpcz_act_means *am, hpcz_node *n, const moments *x)
{
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    const float *wd = w && w->dtype == HPCZ_DTYPE_FLOAT && w->ndim >= 3 ? hpcz_tensor_data(w, NULL) : NULL;
    if (!wd)
        return;
    bool tr = is_op(n, "ConvTranspose");
    int64_t group = hpcz_node_attr_int(n, "group", 1), ksz = 1;
    for (int k = 2; k < w->ndim; k++)
        ksz *= w->dims[k];
    int64_t cin = tr ? w->dims[0] : w->dims[1] * group, og = tr ? w->dims[1] : w->dims[0] / group;
    int64_t cg = cin / group, N = og * group;
    if (group <= 0 || cin != x->C || w->dims[0] % group)
        return;
    double per_pos = 1;
    if (tr) {
        const hpcz_attr *st = hpcz_node_attr(n, "strides");
        double s = 1;
        for (size_t k = 0; st && k < st->n; k++)
            s *= (double)st->ints[k];
        per_pos = s > 0 ? 1.0 / s : 1;
    }
    const float *b = NULL;
    if (n->n_inputs > 2 && n->inputs[2]) {
        hpcz_tensor *bt = hpcz_value_const(n->inputs[2]);
        b = bt && bt->dtype == HPCZ_DTYPE_FLOAT && bt->numel == N ? hpcz_tensor_data(bt, NULL) : NULL;
        if (!b)
            return;
    }
    moments *y = make(am, n->outputs[0], N);
    if (!y)
        return;
    for (int64_t o = 0; o < N; o++) {
        int64_t gi = o / og, ol = o % og;
        double m = b ? b[o] : 0, v = 0;
        for (int64_t cl = 0; cl < cg; cl++) {
            int64_t c = gi * cg + cl;
            const float *k = tr ? wd + (c * og + ol) * ksz : wd + (o * cg + cl) * ksz;
            double s = 0, s2 = 0;
            for (int64_t t = 0; t < ksz; t++) {
                s += k[t];
                s2 += (double)k[t] * k[t];
            }
            m += x->m[c] * s * per_pos;
            /* neighbouring positions are correlated: halfway between
             * independent taps (s2, the variance collapses over a deep
             * net; ppocr_rec 24.8 dB) and identical ones (s^2, it blows
             * up; 15.9 dB), 30.5 dB */
            v += x->v[c] * (s * s + s2) / 2 * per_pos;
        }
        y->m[o] = m;
        y->v[o] = v;
    }
}

static void node_moments(hpcz_act_means *am, hpcz_node *n)
{
    if ((n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) || n->n_inputs < 1 || n->n_outputs < 1 ||
        !n->outputs[0])
        return;
    moments *x = of(am, n->inputs[0]);
    int r = n->inputs[0] && n->inputs[0]->ndim >= 3 ? n->inputs[0]->ndim : 4;
    if ((is_op(n, "Conv") || is_op(n, "ConvTranspose")) && x && n->n_inputs >= 2) {
        conv_moments(am, n, x);
        return;
    }
    static const char *const same[] = {"Identity", "Dropout", "MaxPool", "AveragePool", "GlobalAveragePool",
                                       "GlobalMaxPool", "Resize", "Upsample", NULL};
    for (const char *const *s = same; *s; s++)
        if (x && is_op(n, *s)) {
            moments *y = make(am, n->outputs[0], x->C);
            if (y) {
                memcpy(y->m, x->m, (size_t)x->C * sizeof *y->m);
                memcpy(y->v, x->v, (size_t)x->C * sizeof *y->v);
            }
            return;
        }
    if (is_op(n, "BatchNormalization") && x && n->n_inputs >= 5) {
        const float *sc, *bi, *mu, *va;
        int64_t s1, s2, s3, s4;
        if (!(sc = per_channel_const(n->inputs[1], x->C, 2, &s1)) ||
            !(bi = per_channel_const(n->inputs[2], x->C, 2, &s2)) ||
            !(mu = per_channel_const(n->inputs[3], x->C, 2, &s3)) ||
            !(va = per_channel_const(n->inputs[4], x->C, 2, &s4)))
            return;
        double eps = hpcz_node_attr_float(n, "epsilon", 1e-5f);
        moments *y = make(am, n->outputs[0], x->C);
        for (int64_t c = 0; y && c < x->C; c++) {
            double a = sc[c * s1] / sqrt(va[c * s4] + eps);
            y->m[c] = (x->m[c] - mu[c * s3]) * a + bi[c * s2];
            y->v[c] = x->v[c] * a * a;
        }
        return;
    }
    act_fn f = NULL;
    double p[2] = {0, 0};
    bool ok = true;
    if (is_op(n, "Relu")) {
        f = f_relu;
    } else if (is_op(n, "Clip")) {
        f = f_clip;
        p[0] = n->n_inputs > 1 ? scalar_input(n, 1, -INFINITY, &ok) : hpcz_node_attr_float(n, "min", -INFINITY);
        p[1] = n->n_inputs > 2 ? scalar_input(n, 2, INFINITY, &ok) : hpcz_node_attr_float(n, "max", INFINITY);
    } else if (is_op(n, "HardSigmoid")) {
        f = f_hardsigmoid;
        p[0] = hpcz_node_attr_float(n, "alpha", 0.2f);
        p[1] = hpcz_node_attr_float(n, "beta", 0.5f);
    } else if (is_op(n, "HardSwish")) {
        f = f_hardswish;
    } else if (is_op(n, "Sigmoid")) {
        f = f_sigmoid;
    } else if (is_op(n, "LeakyRelu")) {
        f = f_leaky;
        p[0] = hpcz_node_attr_float(n, "alpha", 0.01f);
    }
    if (f) {
        moments *y = x && ok ? make(am, n->outputs[0], x->C) : NULL;
        for (int64_t c = 0; y && c < x->C; c++)
            gauss_moments(f, p, x->m[c], x->v[c], &y->m[c], &y->v[c]);
        return;
    }
    bool add = is_op(n, "Add"), sub = is_op(n, "Sub"), mul = is_op(n, "Mul"), div = is_op(n, "Div");
    if ((add || sub || mul || div) && n->n_inputs == 2) {
        moments *a = x, *b = of(am, n->inputs[1]);
        for (int k = 0; mul && k < 2; k++) {
            /* x * g(x): a gated activation of one tensor, not two independent ones */
            gated gd = {n->inputs[1 - k], n->inputs[k]};
            moments *t = of(am, n->inputs[k]);
            if (!t || isnan(chain_eval(gd.gate, gd.x, 0.5, 0)) || n->inputs[1 - k] == n->inputs[k])
                continue;
            moments *y = make(am, n->outputs[0], t->C);
            for (int64_t c = 0; y && c < t->C; c++)
                gauss_moments(f_gated, &gd, t->m[c], t->v[c], &y->m[c], &y->v[c]);
            return;
        }
        if (a && b && a->C == b->C && !div) {
            /* two independent tensors */
            moments *y = make(am, n->outputs[0], a->C);
            for (int64_t c = 0; y && c < a->C; c++) {
                double ma = a->m[c], mb = b->m[c], va = a->v[c], vb = b->v[c];
                y->m[c] = mul ? ma * mb : add ? ma + mb : ma - mb;
                y->v[c] = mul ? va * vb + va * mb * mb + vb * ma * ma : va + vb;
            }
            return;
        }
        /* one tensor and a constant per channel or scalar */
        int k = a ? 1 : 0;
        moments *t = a ? a : b;
        int64_t step;
        const float *cst = t ? per_channel_const(n->inputs[k], t->C, r, &step) : NULL;
        if (!cst || (div && k == 0))
            return;
        moments *y = make(am, n->outputs[0], t->C);
        for (int64_t c = 0; y && c < t->C; c++) {
            double q = cst[c * step];
            if (mul || div) {
                double s = mul ? q : 1 / q;
                y->m[c] = t->m[c] * s;
                y->v[c] = t->v[c] * s * s;
            } else {
                y->m[c] = add ? t->m[c] + q : k == 1 ? t->m[c] - q : q - t->m[c];
                y->v[c] = t->v[c];
            }
        }
        return;
    }
    if (is_op(n, "Concat") && hpcz_node_attr_int(n, "axis", 0) == 1) {
        int64_t C = 0;
        for (size_t k = 0; k < n->n_inputs; k++) {
            moments *t = of(am, n->inputs[k]);
            if (!t)
                return;
            C += t->C;
        }
        moments *y = make(am, n->outputs[0], C);
        for (size_t k = 0, o = 0; y && k < n->n_inputs; k++) {
            moments *t = of(am, n->inputs[k]);
            memcpy(y->m + o, t->m, (size_t)t->C * sizeof *y->m);
            memcpy(y->v + o, t->v, (size_t)t->C * sizeof *y->v);
            o += (size_t)t->C;
        }
    }
}

hpcz_act_means *hpcz_act_means_estimate(hpcz_graph *g)
{
    hpcz_act_means *am = calloc(1, sizeof *am);
    size_t cap = g->n_nodes + g->n_inputs + 1;
    if (!am || !(am->mo = calloc(cap, sizeof *am->mo)) || !(am->vals = calloc(cap, sizeof *am->vals))) {
        hpcz_act_means_free(am);
        return NULL;
    }
    am->g = g;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k])
                n->inputs[k]->aux = 0;
        for (size_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k])
                n->outputs[k]->aux = 0;
    }
    for (size_t i = 0; i < g->n_inputs; i++)
        g->inputs[i]->aux = 0;
    /* graph inputs: zero mean, the variance of data spread evenly over
     * [-1, 1] (1/3): the zoo's image inputs have 0.04-0.7 (ppocr_rec 0.27);
     * unit variance cost ppocr_rec 7 dB (30.5 against 37.4), ppocr_det's
     * worst image 0.9955 against 0.9963 */
    for (size_t i = 0; i < g->n_inputs; i++) {
        hpcz_value *v = g->inputs[i];
        if (v->dtype == HPCZ_DTYPE_FLOAT && v->ndim >= 3 && v->dims[1].size > 0 && !v->init) {
            moments *mo = make(am, v, v->dims[1].size);
            for (int64_t c = 0; mo && c < mo->C; c++)
                mo->v[c] = 1.0 / 3;
        }
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        node_moments(am, g->nodes[i]);
    return am;
}

const double *hpcz_act_means_of(const hpcz_act_means *am, const hpcz_value *v, int64_t C, const double **var)
{
    if (!am || !v || v->graph != am->g || v->is_input)
        return NULL;
    moments *mo = of((hpcz_act_means *)am, v);
    if (!mo || mo->C != C)
        return NULL;
    for (int64_t c = 0; c < C; c++)
        if (!isfinite(mo->m[c]) || !isfinite(mo->v[c]))
            return NULL;
    if (var)
        *var = mo->v;
    return mo->m;
}

void hpcz_act_means_free(hpcz_act_means *am)
{
    if (!am)
        return;
    for (size_t i = 0; i < am->n; i++) {
        free(am->mo[i].m);
        free(am->mo[i].v);
        am->vals[i]->aux = 0;
    }
    free(am->mo);
    free(am->vals);
    free(am);
}
