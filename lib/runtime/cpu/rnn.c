/*
 * rnn.c - LSTM, GRU and RNN (forward, reverse, bidirectional; layout 0/1;
 * sequence_lens; peepholes; clip). The input projection of all time steps
 * is one sgemm; each step adds H x R^T with another.
 */
#include "../rt.h"

enum { K_RNN, K_GRU, K_LSTM };

typedef struct actfn {
    const char *name;
    float (*f)(float x, float a, float b);
    float da, db; /* default alpha, beta */
} actfn;

static float a_sigmoid(float x, float a, float b) { (void)a, (void)b; return 1.0f / (1.0f + expf(-x)); }
static float a_tanh(float x, float a, float b) { (void)a, (void)b; return tanhf(x); }
static float a_relu(float x, float a, float b) { (void)a, (void)b; return x > 0 ? x : 0; }
static float a_leaky(float x, float a, float b) { (void)b; return x >= 0 ? x : a * x; }
static float a_thr(float x, float a, float b) { (void)b; return x > a ? x : 0; }
static float a_hsig(float x, float a, float b) { float v = a * x + b; return v < 0 ? 0 : v > 1 ? 1 : v; }
static float a_affine(float x, float a, float b) { return a * x + b; }
static float a_stanh(float x, float a, float b) { return a * tanhf(b * x); }
static float a_elu(float x, float a, float b) { (void)b; return x >= 0 ? x : a * (expf(x) - 1); }
static float a_softsign(float x, float a, float b) { (void)a, (void)b; return x / (1 + fabsf(x)); }
static float a_softplus(float x, float a, float b) { (void)a, (void)b; return log1pf(expf(x)); }

static const actfn acts[] = {
    {"Sigmoid", a_sigmoid, 0, 0},       {"Tanh", a_tanh, 0, 0},
    {"Relu", a_relu, 0, 0},             {"LeakyRelu", a_leaky, 0.01f, 0},
    {"ThresholdedRelu", a_thr, 1, 0},   {"HardSigmoid", a_hsig, 0.2f, 0.5f},
    {"Affine", a_affine, 1, 0},         {"ScaledTanh", a_stanh, 1, 1},
    {"Elu", a_elu, 1, 0},               {"Softsign", a_softsign, 0, 0},
    {"Softplus", a_softplus, 0, 0},
};

typedef struct act {
    float (*f)(float, float, float);
    float a, b;
} act;

static bool acts_ok(const hpcz_node *n)
{
    const hpcz_attr *a = hpcz_node_attr(n, "activations");
    if (!a)
        return true;
    if (a->type != HPCZ_ATTR_STRINGS)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        bool found = false;
        for (size_t k = 0; k < HPCZ_ARRAY_SIZE(acts); k++)
            if (a->strings[i].len == strlen(acts[k].name) &&
                !strncasecmp((const char *)a->strings[i].data, acts[k].name, a->strings[i].len))
                found = true;
        if (!found)
            return false;
    }
    return true;
}

static bool get_acts(rt_ctx *c, int nper, int dirs, act *out)
{
    static const char *dflt[3][3] = {{"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}};
    int kind = nper == 1 ? K_RNN : nper == 2 ? K_GRU : K_LSTM;
    const hpcz_attr *a = hpcz_node_attr(c->node, "activations");
    size_t nal, nbl;
    const float *al = rt_attr_floats(c, "activation_alpha", &nal);
    const float *bl = rt_attr_floats(c, "activation_beta", &nbl);
    for (int i = 0; i < nper * dirs; i++) {
        const char *name = dflt[kind][i % nper];
        size_t len = strlen(name);
        if (a) {
            if ((size_t)i >= a->n) {
                if (a->n != (size_t)nper) /* one direction's list reused */
                    return false;
                name = (const char *)a->strings[i % nper].data;
                len = a->strings[i % nper].len;
            } else {
                name = (const char *)a->strings[i].data;
                len = a->strings[i].len;
            }
        }
        const actfn *f = NULL;
        for (size_t k = 0; k < HPCZ_ARRAY_SIZE(acts); k++)
            if (len == strlen(acts[k].name) && !strncasecmp(name, acts[k].name, len))
                f = &acts[k];
        if (!f)
            return false;
        out[i].f = f->f;
        out[i].a = al && (size_t)i < nal ? al[i] : f->da;
        out[i].b = bl && (size_t)i < nbl ? bl[i] : f->db;
    }
    return true;
}

static hpcz_status recurrent(rt_ctx *c, int kind)
{
    hpcz_array *X = rt_in(c, 0), *W = rt_in(c, 1), *R = rt_in(c, 2), *B = rt_in(c, 3),
               *SL = rt_in(c, 4), *H0 = rt_in(c, 5), *C0 = kind == K_LSTM ? rt_in(c, 6) : NULL,
               *P = kind == K_LSTM ? rt_in(c, 7) : NULL;
    if (X->dtype != HPCZ_DTYPE_FLOAT || W->dtype != HPCZ_DTYPE_FLOAT ||
        R->dtype != HPCZ_DTYPE_FLOAT)
        return rt_unsupported(c);
    int G = kind == K_LSTM ? 4 : kind == K_GRU ? 3 : 1;
    int nper = kind == K_LSTM ? 3 : kind == K_GRU ? 2 : 1;
    int64_t hs = rt_attr_i(c, "hidden_size", 0);
    int layout = (int)rt_attr_i(c, "layout", 0);
    char dir[32];
    rt_attr_s(c, "direction", "forward", dir, sizeof dir);
    int dirs = !strcmp(dir, "bidirectional") ? 2 : 1;
    bool reverse = !strcmp(dir, "reverse");
    if (X->ndim != 3 || W->ndim != 3 || R->ndim != 3)
        return rt_bad(c, "X, W and R must be 3-D");
    int64_t S = layout ? X->dims[1] : X->dims[0], Bn = layout ? X->dims[0] : X->dims[1],
            I = X->dims[2];
    if (hs <= 0)
        hs = R->dims[2];
    if (W->dims[0] != dirs || W->dims[1] != G * hs || W->dims[2] != I || R->dims[0] != dirs ||
        R->dims[1] != G * hs || R->dims[2] != hs)
        return rt_bad(c, "weight shapes do not match hidden_size/direction");
    if (B && (B->numel != dirs * 2 * G * hs))
        return rt_bad(c, "B has the wrong size");
    act fns[6];
    if (!get_acts(c, nper, dirs, fns))
        return rt_unsupported(c);
    float clip = rt_attr_f(c, "clip", 0);
    bool input_forget = rt_attr_i(c, "input_forget", 0) != 0;
    bool lbr = rt_attr_i(c, "linear_before_reset", 0) != 0;
    int64_t yd[4], hd[3];
    if (layout) {
        yd[0] = Bn, yd[1] = S, yd[2] = dirs, yd[3] = hs;
        hd[0] = Bn, hd[1] = dirs, hd[2] = hs;
    } else {
        yd[0] = S, yd[1] = dirs, yd[2] = Bn, yd[3] = hs;
        hd[0] = dirs, hd[1] = Bn, hd[2] = hs;
    }
    hpcz_array *Y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, 4, yd);
    hpcz_array *Yh = rt_out(c, 1, HPCZ_DTYPE_FLOAT, 3, hd);
    hpcz_array *Yc = kind == K_LSTM ? rt_out(c, 2, HPCZ_DTYPE_FLOAT, 3, hd) : NULL;
    for (size_t i = 0; i < c->n_out && i < 3; i++)
        if (c->out[i] && !(i == 0 ? Y : i == 1 ? Yh : Yc))
            return c->err->status;
    if (c->infer)
        return HPCZ_OK;
    int64_t GH = G * hs;
    float *xw = rt_alloc((size_t)(S * Bn * GH + 1) * sizeof(float));
    float *xs = rt_alloc((size_t)(S * Bn * I + 1) * sizeof(float));
    float *hr = rt_alloc((size_t)(Bn * GH + 1) * sizeof(float));
    float *h = rt_alloc((size_t)(Bn * hs * 4 + 1) * sizeof(float));
    if (!xw || !xs || !hr || !h) {
        rt_free(xw);
        rt_free(xs);
        rt_free(hr);
        rt_free(h);
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    }
    float *cst = h + Bn * hs, *tmp = cst + Bn * hs;
    /* X as [S, B, I] */
    const float *xd = X->data;
    for (int64_t t = 0; t < S; t++)
        for (int64_t b = 0; b < Bn; b++)
            memcpy(xs + (t * Bn + b) * I, xd + (layout ? (b * S + t) : (t * Bn + b)) * I,
                   (size_t)I * sizeof(float));
    if (Y)
        memset(Y->data, 0, Y->nbytes);
    for (int d = 0; d < dirs; d++) {
        bool rev = reverse || d == 1;
        const float *w = (const float *)W->data + d * GH * I;
        const float *r = (const float *)R->data + d * GH * hs;
        const float *wb = B ? (const float *)B->data + d * 2 * GH : NULL;
        const float *rb = wb ? wb + GH : NULL;
        const float *p = P ? (const float *)P->data + d * 3 * hs : NULL;
        act *fa = &fns[d * nper];
        rt_sgemm(false, true, S * Bn, GH, I, 1.0f, xs, I, w, I, 0.0f, xw, GH);
        for (int64_t b = 0; b < Bn; b++)
            for (int64_t k = 0; k < hs; k++) {
                h[b * hs + k] = H0 ? ((const float *)H0->data)[layout ? (b * dirs + d) * hs + k
                                                                      : (d * Bn + b) * hs + k]
                                   : 0;
                cst[b * hs + k] = C0 ? ((const float *)C0->data)[layout ? (b * dirs + d) * hs + k
                                                                        : (d * Bn + b) * hs + k]
                                     : 0;
            }
        for (int64_t step = 0; step < S; step++) {
            int64_t t = rev ? S - 1 - step : step;
            /* hr = H x R^T (for GRU's h gate with reset after: only z, r parts used) */
            rt_sgemm(false, true, Bn, GH, hs, 1.0f, h, hs, r, hs, 0.0f, hr, GH);
            for (int64_t b = 0; b < Bn; b++) {
                int64_t len = SL ? rt_int_at(SL, b) : S;
                if (rev ? t >= len : t >= len)
                    continue; /* past this sequence's end: state holds, Y stays 0 */
                const float *g = xw + (t * Bn + b) * GH;
                const float *q = hr + b * GH;
                float *hb = h + b * hs, *cb = cst + b * hs, *nb = tmp + b * hs;
#define PRE(gate, k)                                                                               \
    (g[(gate) * hs + (k)] + q[(gate) * hs + (k)] + (wb ? wb[(gate) * hs + (k)] + rb[(gate) * hs + (k)] : 0))
#define CLIP(v) (clip > 0 ? ((v) < -clip ? -clip : (v) > clip ? clip : (v)) : (v))
                if (kind == K_RNN) {
                    for (int64_t k = 0; k < hs; k++) {
                        float v = PRE(0, k);
                        nb[k] = fa[0].f(CLIP(v), fa[0].a, fa[0].b);
                    }
                } else if (kind == K_GRU) {
                    float *rg = cb; /* GRU has no cell state: cst is scratch */
                    float *hpre = tmp + Bn * hs + b * hs;
                    for (int64_t k = 0; k < hs; k++) {
                        nb[k] = fa[0].f(CLIP(PRE(0, k)), fa[0].a, fa[0].b);
                        rg[k] = fa[0].f(CLIP(PRE(1, k)), fa[0].a, fa[0].b);
                    }
                    float wbh, rbh;
                    for (int64_t k = 0; k < hs; k++) {
                        wbh = wb ? wb[2 * hs + k] : 0;
                        rbh = rb ? rb[2 * hs + k] : 0;
                        if (lbr) {
                            hpre[k] = g[2 * hs + k] + wbh + rg[k] * (q[2 * hs + k] + rbh);
                        } else {
                            /* (r . H) x Rh^T: r must be known for every j first */
                            const float *rh = r + (2 * hs + k) * hs;
                            float acc = 0;
                            for (int64_t j = 0; j < hs; j++)
                                acc += rg[j] * hb[j] * rh[j];
                            hpre[k] = g[2 * hs + k] + wbh + rbh + acc;
                        }
                    }
                    for (int64_t k = 0; k < hs; k++) {
                        float z = nb[k];
                        float hh = fa[1].f(CLIP(hpre[k]), fa[1].a, fa[1].b);
                        nb[k] = (1 - z) * hh + z * hb[k];
                    }
                } else {
                    for (int64_t k = 0; k < hs; k++) {
                        float ci = cb[k];
                        float iv = PRE(0, k) + (p ? p[k] * ci : 0);
                        float fv = PRE(2, k) + (p ? p[2 * hs + k] * ci : 0);
                        float cv = PRE(3, k);
                        float ig = fa[0].f(CLIP(iv), fa[0].a, fa[0].b);
                        float fg = input_forget ? 1 - ig : fa[0].f(CLIP(fv), fa[0].a, fa[0].b);
                        float cg = fa[1].f(CLIP(cv), fa[1].a, fa[1].b);
                        float cn = fg * ci + ig * cg;
                        float ov = PRE(1, k) + (p ? p[hs + k] * cn : 0);
                        float og = fa[0].f(CLIP(ov), fa[0].a, fa[0].b);
                        nb[k] = og * fa[2].f(cn, fa[2].a, fa[2].b);
                        cb[k] = cn;
                    }
                }
#undef PRE
#undef CLIP
                memcpy(hb, nb, (size_t)hs * sizeof(float));
                if (Y) {
                    float *yo = (float *)Y->data +
                                (layout ? ((b * S + t) * dirs + d) * hs : ((t * dirs + d) * Bn + b) * hs);
                    memcpy(yo, hb, (size_t)hs * sizeof(float));
                }
            }
        }
        for (int64_t b = 0; b < Bn; b++) {
            int64_t o = layout ? (b * dirs + d) * hs : (d * Bn + b) * hs;
            if (Yh)
                memcpy((float *)Yh->data + o, h + b * hs, (size_t)hs * sizeof(float));
            if (Yc)
                memcpy((float *)Yc->data + o, cst + b * hs, (size_t)hs * sizeof(float));
        }
    }
    rt_free(xw);
    rt_free(xs);
    rt_free(hr);
    rt_free(h);
    return HPCZ_OK;
}

static hpcz_status k_rnn(rt_ctx *c) { return recurrent(c, K_RNN); }
static hpcz_status k_gru(rt_ctx *c) { return recurrent(c, K_GRU); }
static hpcz_status k_lstm(rt_ctx *c) { return recurrent(c, K_LSTM); }

static const rt_op ops[] = {
    {"", "RNN", 7, RT_TF32, 0, k_rnn, acts_ok},
    {"", "GRU", 7, RT_TF32, 0, k_gru, acts_ok},
    {"", "LSTM", 7, RT_TF32, 0, k_lstm, acts_ok},
};

const rt_op_table rt_ops_rnn = {ops, HPCZ_ARRAY_SIZE(ops)};
