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
