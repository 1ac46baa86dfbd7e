/*
 * rnn.c - LSTM, GRU and RNN (forward, reverse, bidirectional; layout 0/1;
 * sequence_lens; peepholes; clip). The input projection of all time steps
 * is one GEMM (its bias Wb + Rb folded in); each step adds H x R^T with
 * another. Constant W and R are packed once at plan time (rt_pgemm).
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

/* W and R of every direction packed for rt_pgemm, in one allocation (the
 * node's state, freed with free()). */
typedef struct rnn_pack {
    const void *w, *r; /* the W and R they were packed from */
    int dirs;
    int64_t GH, I, hs;
    rt_pgemm_b *pw[2], *pr[2];
} rnn_pack;

static size_t up64(size_t n) { return (n + 63) / 64 * 64; }

static rnn_pack *rnn_pack_new(const hpcz_array *W, const hpcz_array *R, int dirs, int64_t GH,
                              int64_t I, int64_t hs)
{
    size_t sw = up64(rt_pgemm_size(I, GH)), sr = up64(rt_pgemm_size(hs, GH));
    size_t head = up64(sizeof(rnn_pack));
    char *mem = aligned_alloc(64, head + (size_t)dirs * (sw + sr));
    if (!mem)
        return NULL;
    rnn_pack *pk = (rnn_pack *)mem;
    *pk = (rnn_pack){W->data, R->data, dirs, GH, I, hs, {NULL}, {NULL}};
    for (int d = 0; d < dirs; d++) {
        char *at = mem + head + (size_t)d * (sw + sr);
        pk->pw[d] = rt_pgemm_pack_into(at, (const float *)W->data + d * GH * I, true, I, GH, I);
        pk->pr[d] = rt_pgemm_pack_into(at + sw, (const float *)R->data + d * GH * hs, true, hs, GH, hs);
    }
    return pk;
}

typedef struct rnn_job {
    int kind, G, nper;
    int64_t S, Bn, I, hs, GH;
    int layout, dirs;
    bool reverse;
    const hpcz_array *W, *R, *B, *SL, *H0, *C0, *P;
    hpcz_array *Y, *Yh, *Yc;
    const act *fns;
    float clip;
    bool input_forget, lbr;
    const float *xs;
    const rnn_pack *pk;
    float *buf;
    int64_t per; /* floats of buf per direction */
    bool fast;
} rnn_job;

/* Direction d over the whole sequence. */
static void rnn_dir(const rnn_job *j, int d)
{
    int kind = j->kind;
    int64_t S = j->S, Bn = j->Bn, I = j->I, hs = j->hs, GH = j->GH, dirs = j->dirs;
    int layout = j->layout;
    const hpcz_array *B = j->B, *SL = j->SL, *H0 = j->H0, *C0 = j->C0, *P = j->P;
    hpcz_array *Y = j->Y, *Yh = j->Yh, *Yc = j->Yc;
    float clip = j->clip;
    bool input_forget = j->input_forget, lbr = j->lbr;
    float *xw = j->buf + d * j->per, *hr = xw + S * Bn * GH, *h = hr + Bn * GH;
    float *cst = h + Bn * hs, *tmp = cst + Bn * hs, *bias = tmp + 2 * Bn * hs;
    bool rev = j->reverse || d == 1;
    const float *r = (const float *)j->R->data + d * GH * hs;
    const float *wb = B ? (const float *)B->data + d * 2 * GH : NULL;
    const float *rb = wb ? wb + GH : NULL;
    const float *p = P ? (const float *)P->data + d * 3 * hs : NULL;
    const act *fa = &j->fns[d * j->nper];
    /* Wb + Rb go into the input projection, but for GRU's h gate, whose
     * Rb is inside the reset product */
    for (int64_t k = 0; k < GH; k++)
        bias[k] = wb ? wb[k] + (kind == K_GRU && k >= 2 * hs ? 0 : rb[k]) : 0;
    if (j->pk)
        rt_pgemm(S * Bn, j->xs, I, false, j->pk->pw[d], bias, xw, GH, NULL);
    else
        rt_sgemm_ex(false, true, S * Bn, GH, I, 1.0f, j->xs, I, (const float *)j->W->data + d * GH * I,
                    I, 0.0f, xw, GH, NULL, bias, NULL);
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t k = 0; k < hs; k++) {
            int64_t o = layout ? (b * dirs + d) * hs + k : (d * Bn + b) * hs + k;
            h[b * hs + k] = H0 ? ((const float *)H0->data)[o] : 0;
            cst[b * hs + k] = C0 ? ((const float *)C0->data)[o] : 0;
        }
    for (int64_t step = 0; step < S; step++) {
        int64_t t = rev ? S - 1 - step : step;
        /* hr = H x R^T (for GRU's h gate with reset after: only z, r parts used) */
        if (j->pk)
            rt_pgemm(Bn, h, hs, false, j->pk->pr[d], NULL, hr, GH, NULL);
        else
            rt_sgemm(false, true, Bn, GH, hs, 1.0f, h, hs, r, hs, 0.0f, hr, GH);
        for (int64_t b = 0; b < Bn; b++) {
            int64_t len = SL ? rt_int_at(SL, b) : S;
            if (t >= len)
                continue; /* past this sequence's end: state holds, Y stays 0 */
            const float *g = xw + (t * Bn + b) * GH;
            float *q = hr + b * GH;
            float *hb = h + b * hs, *cb = cst + b * hs, *nb = tmp + b * hs;
#define PRE(gate, k) (g[(gate) * hs + (k)] + q[(gate) * hs + (k)])
#define CLIP(v) (clip > 0 ? ((v) < -clip ? -clip : (v) > clip ? clip : (v)) : (v))
            if (j->fast) {
                /* gates i, o, f then c: sigmoid over the first three */
                for (int64_t k = 0; k < GH; k++)
                    q[k] += g[k];
                rt_vsigmoid(q, q, 3 * hs);
                rt_vtanh(q + 3 * hs, q + 3 * hs, hs);
                for (int64_t k = 0; k < hs; k++)
                    cb[k] = q[2 * hs + k] * cb[k] + q[k] * q[3 * hs + k];
                rt_vtanh(cb, nb, hs);
                for (int64_t k = 0; k < hs; k++)
                    nb[k] *= q[hs + k];
            } else if (kind == K_RNN) {
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
                for (int64_t k = 0; k < hs; k++) {
                    float rbh = rb ? rb[2 * hs + k] : 0;
                    if (lbr) {
                        hpre[k] = g[2 * hs + k] + rg[k] * (q[2 * hs + k] + rbh);
                    } else {
                        /* (r . H) x Rh^T: r must be known for every j first */
                        const float *rh = r + (2 * hs + k) * hs;
                        float acc = 0;
                        for (int64_t i = 0; i < hs; i++)
                            acc += rg[i] * hb[i] * rh[i];
                        hpre[k] = g[2 * hs + k] + rbh + acc;
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
    /* W and R initializers: packed once for rt_pgemm (at plan time, or at
     * the first run when the shapes were not known before) */
    if (c->state && !*c->state && !c->reference && !c->weights_change && (c->init_in & 6) == 6 &&
        W->data && R->data && Bn <= RT_PGEMM_MAXM && rt_pgemm_available())
        *c->state = rnn_pack_new(W, R, dirs, GH, I, hs);
    if (c->infer)
        return HPCZ_OK;
    const rnn_pack *pk = c->state ? *c->state : NULL;
    if (pk && (pk->w != W->data || pk->r != R->data || pk->dirs != dirs || pk->GH != GH ||
               pk->I != I || pk->hs != hs || Bn > RT_PGEMM_MAXM || c->reference))
        pk = NULL;
    /* per direction: xw [S*Bn, GH], hr [Bn, GH], h, c and two scratch rows
     * [Bn, hs] each, the folded bias [GH] */
    int64_t per = S * Bn * GH + Bn * GH + 4 * Bn * hs + GH + 1;
    float *xs = rt_alloc((size_t)(S * Bn * I + 1) * sizeof(float));
    float *buf = rt_alloc((size_t)(dirs * per) * sizeof(float));
    if (!xs || !buf) {
        rt_free(xs);
        rt_free(buf);
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    }
    /* X as [S, B, I] */
    const float *xd = X->data;
    for (int64_t t = 0; t < S; t++)
        for (int64_t b = 0; b < Bn; b++)
            memcpy(xs + (t * Bn + b) * I, xd + (layout ? (b * S + t) : (t * Bn + b)) * I,
                   (size_t)I * sizeof(float));
    if (Y)
        memset(Y->data, 0, Y->nbytes);
    rnn_job j = {kind, G, nper, S, Bn, I, hs, GH, layout, dirs, reverse, W, R, B, SL, H0, C0, P,
                 Y, Yh, Yc, fns, clip, input_forget, lbr, xs, pk, buf, per, false};
    /* LSTM with the default activations, no clip, peepholes or coupled
     * gates: the gates through the vectorised sigmoid and tanh */
    j.fast = kind == K_LSTM && !P && clip <= 0 && !input_forget && !c->reference;
    for (int d = 0; d < dirs && j.fast; d++)
        j.fast = fns[d * 3].f == a_sigmoid && fns[d * 3 + 1].f == a_tanh && fns[d * 3 + 2].f == a_tanh;
    /* one direction after the other, each product shared by the threads
     * (two directions at once, one per thread, ran slower: each core then
     * needs all of its R in its cache, instead of its share of one R) */
    for (int d = 0; d < dirs; d++)
        rnn_dir(&j, d);
    rt_free(xs);
    rt_free(buf);
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
