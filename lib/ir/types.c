/*
 * types.c - element type inference: fills in the dtype of every value whose
 * type the file does not state, from the op's typing rule. Shapes are the
 * runtime's business; passes that only need "is this float?" use this.
 */
#include "internal.h"

static int in_type(const hpcz_node *n, size_t i)
{
    return i < n->n_inputs && n->inputs[i] ? n->inputs[i]->dtype : HPCZ_DTYPE_UNDEFINED;
}

static bool is_op(const hpcz_node *n, const char *op)
{
    return !strcmp(n->op_type, op);
}

/* dtype of output k of n, or UNDEFINED when the rule needs more than types */
static int out_type(const hpcz_node *n, size_t k)
{
    if (n->domain && !strcmp(n->domain, "com.microsoft")) {
        /* the contrib ops the quantizers write: float outputs of the type of
         * the activations (MatMulNBits, DynamicQuantizeMatMul) or of the
         * activation scale (MatMulIntegerToFloat's A_scale) */
        if (is_op(n, "MatMulNBits") || is_op(n, "DynamicQuantizeMatMul"))
            return in_type(n, 0);
        if (is_op(n, "MatMulIntegerToFloat"))
            return in_type(n, 2);
        if (is_op(n, "GatherBlockQuantized"))
            return in_type(n, 2);
        return HPCZ_DTYPE_UNDEFINED;
    }
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return HPCZ_DTYPE_UNDEFINED;
    static const char *const to_bool[] = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                                          "Not", "And", "Or", "Xor", "IsNaN", "IsInf"};
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(to_bool); i++)
        if (is_op(n, to_bool[i]))
            return HPCZ_DTYPE_BOOL;
    static const char *const to_i64[] = {"Shape", "Size", "ArgMax", "ArgMin", "NonZero", "NonMaxSuppression"};
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(to_i64); i++)
        if (is_op(n, to_i64[i]))
            return HPCZ_DTYPE_INT64;
    if (is_op(n, "Cast"))
        return (int)hpcz_node_attr_int(n, "to", 0);
    if (is_op(n, "CastLike"))
        return in_type(n, 1);
    if (is_op(n, "Constant")) {
        const hpcz_attr *a = hpcz_node_attr(n, "value");
        if (a && a->t)
            return a->t->dtype;
        if (hpcz_node_attr(n, "value_float") || hpcz_node_attr(n, "value_floats"))
            return HPCZ_DTYPE_FLOAT;
        if (hpcz_node_attr(n, "value_int") || hpcz_node_attr(n, "value_ints"))
            return HPCZ_DTYPE_INT64;
        return HPCZ_DTYPE_UNDEFINED;
    }
    if (is_op(n, "ConstantOfShape")) {
        const hpcz_attr *a = hpcz_node_attr(n, "value");
        return a && a->t ? a->t->dtype : HPCZ_DTYPE_FLOAT;
    }
    if (is_op(n, "EyeLike") || is_op(n, "RandomNormalLike") || is_op(n, "RandomUniformLike")) {
        int64_t d = hpcz_node_attr_int(n, "dtype", 0);
        return d ? (int)d : in_type(n, 0);
    }
    if (is_op(n, "RandomNormal") || is_op(n, "RandomUniform"))
        return (int)hpcz_node_attr_int(n, "dtype", HPCZ_DTYPE_FLOAT);
    if (is_op(n, "QuantizeLinear"))
        return n->n_inputs > 2 && n->inputs[2] ? in_type(n, 2) : HPCZ_DTYPE_UINT8;
    if (is_op(n, "DequantizeLinear"))
        return in_type(n, 1);
    if (is_op(n, "DynamicQuantizeLinear"))
        return k == 1 ? HPCZ_DTYPE_FLOAT : HPCZ_DTYPE_UINT8;
    if (is_op(n, "MatMulInteger") || is_op(n, "ConvInteger"))
        return HPCZ_DTYPE_INT32;
    if (is_op(n, "QLinearConv") || is_op(n, "QLinearMatMul"))
        return in_type(n, 7);
    if (is_op(n, "TopK") || is_op(n, "MaxPool"))
        return k == 1 ? HPCZ_DTYPE_INT64 : in_type(n, 0);
    if (is_op(n, "Dropout"))
        return k == 1 ? HPCZ_DTYPE_BOOL : in_type(n, 0);
    if (is_op(n, "Unique"))
        return k == 0 ? in_type(n, 0) : HPCZ_DTYPE_INT64;
    if (is_op(n, "Where"))
        return in_type(n, 1);
    if (is_op(n, "OneHot"))
        return in_type(n, 2);
    if (is_op(n, "LayerNormalization"))
        return k == 0 ? in_type(n, 0) : (int)hpcz_node_attr_int(n, "stash_type", HPCZ_DTYPE_FLOAT);
    if (is_op(n, "If") || is_op(n, "Loop") || is_op(n, "Scan")) {
        const hpcz_attr *a = hpcz_node_attr(n, is_op(n, "If") ? "then_branch" : "body");
        if (!a || !a->g)
            return HPCZ_DTYPE_UNDEFINED;
        size_t off = is_op(n, "Loop") ? 1 : 0; /* Loop body output 0 is the condition */
        return k + off < a->g->n_outputs ? a->g->outputs[k + off]->dtype : HPCZ_DTYPE_UNDEFINED;
    }
    if (is_op(n, "SequenceConstruct") || is_op(n, "SplitToSequence") || is_op(n, "SequenceEmpty") ||
        is_op(n, "Optional") || is_op(n, "SequenceAt") || is_op(n, "OptionalGetElement"))
        return HPCZ_DTYPE_UNDEFINED;
    /* everything else: outputs have the type of the first typed input */
    for (size_t i = 0; i < n->n_inputs; i++)
        if (in_type(n, i) != HPCZ_DTYPE_UNDEFINED)
            return in_type(n, i);
    return HPCZ_DTYPE_UNDEFINED;
}

static int infer_graph(hpcz_graph *g, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < g->n_inits; i++) {
        hpcz_value *v = hpcz_valmap_get(g->values, g->inits[i]->name);
        if (v && v->dtype == HPCZ_DTYPE_UNDEFINED)
            v->dtype = g->inits[i]->dtype;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t k = 0; k < n->n_outputs; k++) {
            hpcz_value *v = n->outputs[k];
            if (v && v->dtype == HPCZ_DTYPE_UNDEFINED)
                v->dtype = out_type(n, k);
        }
    }
    return 0;
}

void hpcz_model_infer_dtypes(hpcz_model *m)
{
    /* Subgraph bodies are visited after the node that holds them, which is
     * what their outer reads need; If/Loop output types read the bodies, so
     * a second sweep settles those. */
    for (int round = 0; round < 2; round++)
        hpcz_model_foreach_graph(m, infer_graph, NULL);
}
