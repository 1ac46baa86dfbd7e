/*
 * fp16.c - float16 weights and compute, range-aware.
 *
 * Every ai.onnx node runs in float16 unless there is a reason not to, and the
 * reason is reported:
 *   - it reads a constant that float16 cannot hold: values beyond 65504
 *     (BatchNorm variances around 1e8, scale constants like 2^20), or nonzero
 *     values that float16 flushes to zero or keeps with >10% error (a Clip
 *     minimum of 1e-10 before a Log, STFT kernels around 1e-17);
 *   - its op is in the block list (ops that need float32 or have no float16
 *     meaning: Range, random generators, ...), or it holds subgraphs (If,
 *     Loop, Scan stay float32 at their boundary; their bodies are converted
 *     like the main graph, reading and returning float32);
 *   - it only computes shape arithmetic (its float inputs come from Casts of
 *     integers or from other such nodes), which float16 would round.
 * Casts go where a float16 value meets a float32 consumer or the other way,
 * one per value and direction; a Cast of a Cast back to the original type is
 * never made. Initializers read only by float16 nodes are stored as float16.
 */
#include "passes.h"
#include "qmath.h"

#include <math.h>
#include <stdio.h>

enum { P_UNSET = 0, P_HALF = 1, P_FLOAT = 2 };

static const char *const default_block =
    "Range,RandomNormal,RandomNormalLike,RandomUniform,RandomUniformLike,Multinomial,Bernoulli,"
    "EyeLike,STFT,DFT,MelWeightMatrix,Einsum,NonMaxSuppression,RoiAlign,TopK,ArgMax,ArgMin,"
    "CumSum,If,Loop,Scan,SequenceMap";

/* input slots that stay float32 whatever the node's precision */
static bool float32_slot(const hpcz_node *n, size_t i)
{
    const char *op = n->op_type;
    if (!strcmp(op, "Resize"))
        return i == 1 || i == 2; /* roi, scales */
    if (!strcmp(op, "Upsample"))
        return i == 1;
    /* a constant exponent (opset 12 on: its own type). ONNX Runtime has no
     * float16 Pow on CPU and casts a float16 exponent with a node of its own
     * (InsertedPrecisionFreeCast_NAME), which its SimplifiedLayerNormFusion
     * (ORT_ENABLE_ALL, 1.23) then loses when it fuses the second of two
     * LayerNorms: the session fails to load ("Attempting to get index by a
     * name which does not exist"). A float32 exponent needs no such Cast. */
    if (!strcmp(op, "Pow"))
        return i == 1 && n->inputs[1] && hpcz_value_const(n->inputs[1]) && n->graph && n->graph->model &&
               hpcz_model_opset(n->graph->model, "") >= 12;
    return false;
}

/* v is read only where float32 stays (a Pow's exponent), at least once */
static bool only_float32_reads(const hpcz_graph *g, const hpcz_value *v)
{
    bool any = false;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (size_t j = 0; j < g->nodes[i]->n_inputs; j++)
            if (g->nodes[i]->inputs[j] == v) {
                if (!float32_slot(g->nodes[i], j))
                    return false;
                any = true;
            }
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return false;
    return any;
}

/* ops whose float output type follows the float inputs (or a `to`/value we
 * rewrite); anything else keeps float32 outputs and is blocked */
static bool ok_domain(const hpcz_node *n)
{
    return !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx");
}

typedef struct fctx {
    hpcz_model *m;
    hpcz_graph *g;
    hpcz_pass_ctx *ctx;
    hpcz_node_filter filter;
    const char *block;
    bool keep_io;
    hpcz_ptrset before_log; /* without data: the nodes that compute what a Log reads */
    hpcz_error *err;
    size_t n_half, n_float, n_casts, n_tensors, n_subgraphs;
    /* float16 copies of float32 initializers, model-wide: two If branches
     * reading one weight share one copy */
    struct hconst {
        hpcz_value *from, *to;
    } *hc;
    size_t n_hc, cap_hc;
} fctx;

/* Why constant t cannot be float16, or NULL. */
static const char *range_problem(hpcz_tensor *t, char *buf, size_t cap)
{
    hpcz_error e;
    const float *d = t->dtype == HPCZ_DTYPE_FLOAT ? hpcz_tensor_data(t, &e) : NULL;
    if (!d)
        return NULL;
    int64_t bad = 0, nonzero = 0;
    float maxabs = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        float a = fabsf(d[i]);
        if (a > maxabs)
            maxabs = a;
        if (a == 0 || !isfinite(a))
            continue;
        nonzero++;
        float back = hpcz_f16_to_f32(hpcz_f32_to_f16(d[i]));
        if (fabsf(back - d[i]) > 0.1f * a)
            bad++;
    }
    if (maxabs > 65504.0f) {
        snprintf(buf, cap, "'%s' holds %g, beyond float16's 65504", t->name ? t->name : "", maxabs);
        return buf;
    }
    if (nonzero && bad * 100 > nonzero) {
        snprintf(buf, cap, "'%s' holds values float16 cannot represent (%lld of %lld below 6e-5)",
                 t->name ? t->name : "", (long long)bad, (long long)nonzero);
        return buf;
    }
    return NULL;
}

static bool is_float_value(const hpcz_value *v)
{
    return v && v->dtype == HPCZ_DTYPE_FLOAT;
}

/* Shape arithmetic: float values derived only from integer casts (aux == 1,
 * set while deciding). */
static bool shape_float(const hpcz_value *v)
{
    return v && v->aux == 1;
}

/* Ranges measured on data (a calibration table) that float16 cannot carry:
 * a float input or output beyond 65504 overflows to Inf (a log-mel front
 * end's power spectrum), one whose values mostly lie below float16's
 * smallest normal (6.1e-5) loses its precision. */
static bool observed_problem(const hpcz_calib_table *t, const hpcz_node *n, char *why, size_t cap)
{
    for (int side = 0; side < 2; side++) {
        size_t cnt = side ? n->n_outputs : n->n_inputs;
        hpcz_value *const *vs = side ? n->outputs : n->inputs;
        for (size_t i = 0; i < cnt; i++) {
            const hpcz_value *v = vs[i];
            if (!v || (!side && float32_slot(n, i)))
                continue;
            const hpcz_calib_range *r = hpcz_calib_find(t, v->name);
            if (!r)
                continue;
            double amax = fmax(fabs(r->seen_min), fabs(r->seen_max));
            if (amax > 65504.0) {
                snprintf(why, cap, "'%s' reaches %g on the data, beyond float16's 65504", v->name, amax);
                return true;
            }
            if (side && r->abs_p99 > 0 && r->abs_p99 < 6.1e-5) {
                snprintf(why, cap, "99%% of '%s' lies below %g on the data, under float16's smallest "
                         "normal number", v->name, (double)r->abs_p99);
                return true;
            }
        }
    }
    return false;
}

/* Decide node precision: P_HALF or P_FLOAT, with the reason for float. */
static int decide(fctx *f, hpcz_node *n, char *why, size_t cap)
{
    const char *op = n->op_type;
    if (!ok_domain(n)) {
        snprintf(why, cap, "op in domain '%s'", n->domain);
        return P_FLOAT;
    }
    if (hpcz_list_contains(f->block, op)) {
        snprintf(why, cap, "%s is in the float32 block list", op);
        return P_FLOAT;
    }
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == HPCZ_ATTR_GRAPH || n->attrs[a].type == HPCZ_ATTR_GRAPHS) {
            snprintf(why, cap, "holds subgraphs");
            return P_FLOAT;
        }
    if (!hpcz_filter_match(&f->filter, n)) {
        snprintf(why, cap, "excluded");
        return P_FLOAT;
    }
    if (f->ctx && f->ctx->keep_float && f->ctx->keep_float(f->ctx->keep_float_user, n)) {
        snprintf(why, cap, "its values turned NaN or Inf in float16 on the data");
        return P_FLOAT;
    }
    if (f->ctx && f->ctx->calib && observed_problem(f->ctx->calib, n, why, cap))
        return P_FLOAT;
    if (hpcz_ptrset_has(&f->before_log, n)) {
        snprintf(why, cap, "%s: a power or energy there spans decades and overflows float16 on real "
                 "inputs (with --calib the data decides)", strcmp(op, "Log") ? "computes what a Log reads" : "a Log");
        return P_FLOAT;
    }
    if (!strcmp(op, "Cast")) {
        /* a Cast from an integer type starts shape arithmetic unless it feeds float math */
        int64_t to = hpcz_node_attr_int(n, "to", 0);
        const hpcz_value *x = n->inputs[0];
        if (to == HPCZ_DTYPE_FLOAT && x && x->dtype != HPCZ_DTYPE_UNDEFINED &&
            !hpcz_dtype_is_float(x->dtype)) {
            snprintf(why, cap, "casts integers (shape arithmetic)");
            return P_FLOAT;
        }
        return to == HPCZ_DTYPE_FLOAT ? P_HALF : P_FLOAT;
    }
    bool any_float_in = false, all_shape = true;
    for (size_t i = 0; i < n->n_inputs; i++) {
        hpcz_value *v = n->inputs[i];
        if (!v || float32_slot(n, i))
            continue;
        hpcz_tensor *t = hpcz_value_const(v);
        if (t && t->dtype == HPCZ_DTYPE_FLOAT) {
            const char *p = range_problem(t, why, cap);
            if (p)
                return P_FLOAT;
            continue;
        }
        if (!is_float_value(v))
            continue;
        any_float_in = true;
        if (!shape_float(v))
            all_shape = false;
    }
    if (any_float_in && all_shape) {
        snprintf(why, cap, "shape arithmetic (float inputs come from integer casts)");
        return P_FLOAT;
    }
    if (!strcmp(op, "Constant")) {
        const hpcz_attr *a = hpcz_node_attr(n, "value");
        if (!a || !a->t || a->t->dtype != HPCZ_DTYPE_FLOAT)
            return P_FLOAT;
        if (n->n_outputs && n->outputs[0] && only_float32_reads(f->g, n->outputs[0])) {
            snprintf(why, cap, "a Pow's exponent (a float16 one trips ONNX Runtime's SimplifiedLayerNormFusion)");
            return P_FLOAT;
        }
        const char *p = range_problem(a->t, why, cap);
        return p ? P_FLOAT : P_HALF;
    }
    if (!strcmp(op, "ConstantOfShape")) {
        const hpcz_attr *a = hpcz_node_attr(n, "value");
        return a && a->t && a->t->dtype == HPCZ_DTYPE_FLOAT ? P_HALF : P_FLOAT;
    }
    return P_HALF;
}

hpcz_tensor *hpcz_tensor_to_half(hpcz_model *m, hpcz_tensor *t, const char *name, hpcz_error *err)
{
    const float *d = hpcz_tensor_data(t, err);
    if (!d && t->numel)
        return NULL;
    hpcz_tensor *h = hpcz_tensor_new(m, name, HPCZ_DTYPE_FLOAT16, t->ndim, t->dims);
    uint16_t *hd = h ? hpcz_tensor_alloc(h) : NULL;
    if (!hd) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < t->numel; i++)
        hd[i] = hpcz_f32_to_f16(d[i]);
    return h;
}

typedef struct cast_cache {
    hpcz_value *from;
    int to;
    hpcz_value *out;
} cast_cache;

typedef struct casts {
    cast_cache *c;
    size_t n, cap;
} casts;

/* v converted to dtype `to` (FLOAT or FLOAT16), made once per value. */
static hpcz_value *cast_of(fctx *f, casts *cc, hpcz_value *v, int to)
{
    if (v->dtype == to)
        return v;
    for (size_t i = 0; i < cc->n; i++)
        if (cc->c[i].from == v && cc->c[i].to == to)
            return cc->c[i].out;
    /* v = Cast(u) with u already of type `to`: use u, never a Cast pair */
    hpcz_node *p = v->producer;
    if (p && !strcmp(p->op_type, "Cast") && p->inputs[0] && p->inputs[0]->dtype == to)
        return p->inputs[0];
    hpcz_graph *g = f->g;
    const char *name = hpcz_unique_name(g, v->name, to == HPCZ_DTYPE_FLOAT16 ? "fp16" : "fp32");
    hpcz_node *cn = hpcz_graph_add_node(g, "Cast", name, 1, 1);
    hpcz_attr *a = cn ? hpcz_node_add_attr(cn, "to", HPCZ_ATTR_INT) : NULL;
    if (!a || !hpcz_grow((void **)&cc->c, &cc->cap, cc->n + 1, sizeof *cc->c))
        return NULL;
    a->i = to;
    cn->aux = to == HPCZ_DTYPE_FLOAT16 ? P_HALF : P_FLOAT;
    cn->inputs[0] = v;
    hpcz_value *out = hpcz_graph_value(g, name);
    out->dtype = to;
    out->ndim = v->ndim;
    out->dims = v->dims;
    hpcz_node_set_output(cn, 0, out);
    cc->c[cc->n++] = (cast_cache){v, to, out};
    f->n_casts++;
    return out;
}

static void set_half(hpcz_value *v)
{
    v->dtype = HPCZ_DTYPE_FLOAT16;
    v->type_dirty = 1;
}

static bool reads_float(const hpcz_node *n)
{
    for (size_t j = 0; j < n->n_inputs; j++)
        if (is_float_value(n->inputs[j]))
            return true;
    for (size_t j = 0; j < n->n_outputs; j++)
        if (is_float_value(n->outputs[j]))
            return true;
    return false;
}

/* Without data, a Log and the chain of magnitude ops that feeds it (a log-mel
 * front end: STFT convolutions, squares, sums, mel filter MatMul, a Clip
 * floor) stays float32: its values are powers of the input, which float16
 * cannot hold for real audio or images (oww_melspec: every output NaN).
 * The walk stops at graph inputs, constants and any other op. */
static bool magnitude_op(const hpcz_node *n)
{
    static const char *const ops = "Conv,MatMul,Gemm,Mul,Pow,Add,Sub,Div,ReduceSum,ReduceSumSquare,ReduceMean,"
                                   "Sqrt,Abs,Clip,Max,Min,Reshape,Transpose,Squeeze,Unsqueeze,Slice,Concat,"
                                   "Flatten,Identity,Pad";
    return ok_domain(n) && hpcz_list_contains(ops, n->op_type);
}

static hpcz_status mark_before_log(fctx *f)
{
    hpcz_graph *g = f->g;
    size_t cap = 0, top = 0;
    const hpcz_node **stack = NULL;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *lg = g->nodes[i];
        if (strcmp(lg->op_type, "Log") || !ok_domain(lg) || !lg->n_inputs || !lg->inputs[0])
            continue;
        /* the Log too: its input is the large value; its output is small */
        if (hpcz_ptrset_add(&f->before_log, lg) < 0)
            goto oom;
        const hpcz_node *p = lg->inputs[0]->producer;
        if (p && p->graph == g && magnitude_op(p) && hpcz_ptrset_add(&f->before_log, p) == 1) {
            if (!hpcz_grow((void **)&stack, &cap, top + 1, sizeof *stack))
                goto oom;
            stack[top++] = p;
        }
        while (top) {
            const hpcz_node *n = stack[--top];
            for (size_t j = 0; j < n->n_inputs; j++) {
                const hpcz_value *v = n->inputs[j];
                const hpcz_node *q = v && !hpcz_value_const(v) ? v->producer : NULL;
                if (!q || q->graph != g || !magnitude_op(q) || !is_float_value(v))
                    continue;
                int added = hpcz_ptrset_add(&f->before_log, q);
                if (added < 0)
                    goto oom;
                if (added) {
                    if (!hpcz_grow((void **)&stack, &cap, top + 1, sizeof *stack))
                        goto oom;
                    stack[top++] = q;
                }
            }
        }
    }
    free(stack);
    return HPCZ_OK;
oom:
    free(stack);
    return hpcz_fail(f->err, HPCZ_ERR_NOMEM, "out of memory");
}

static hpcz_status convert_graph(fctx *f)
{
    hpcz_graph *g = f->g;
    hpcz_model *m = f->m;
    hpcz_error *err = f->err;
    hpcz_status st;
    if ((st = hpcz_graph_toposort(g, err)))
        return st;
    size_t n0 = g->n_nodes;
    if (!(f->ctx && f->ctx->calib) && (st = mark_before_log(f)))
        return st;
    /* 1. precision of every node, in order (value aux = 1 marks shape floats) */
    for (size_t i = 0; i < g->n_inputs; i++)
        g->inputs[i]->aux = 0;
    for (size_t i = 0; i < n0; i++)
        for (size_t j = 0; j < g->nodes[i]->n_outputs; j++)
            if (g->nodes[i]->outputs[j])
                g->nodes[i]->outputs[j]->aux = 0;
    for (size_t i = 0; i < n0; i++) {
        hpcz_node *n = g->nodes[i];
        char why[256] = "";
        n->aux = decide(f, n, why, sizeof why);
        bool shapeish = n->aux == P_FLOAT && (strstr(why, "integer") || strstr(why, "shape"));
        for (size_t j = 0; j < n->n_outputs; j++)
            if (n->outputs[j])
                n->outputs[j]->aux = shapeish ? 1 : 0;
        if (n->aux == P_HALF) {
            f->n_half++;
        } else if (reads_float(n)) {
            f->n_float++;
            hpcz_pass_note(f->ctx, "to-fp16", "kept float32: '%s' (%s): %s", n->name ? n->name : "",
                           n->op_type, *why ? why : "no float16 form");
        }
    }
    /* 2. float16 constants for half readers; half outputs become float16 */
    for (size_t i = 0; i < n0; i++) {
        hpcz_node *n = g->nodes[i];
        if (n->aux != P_HALF)
            continue;
        if (!strcmp(n->op_type, "Constant") || !strcmp(n->op_type, "ConstantOfShape")) {
            hpcz_attr *a = (hpcz_attr *)hpcz_node_attr(n, "value");
            if (a && a->t && a->t->dtype == HPCZ_DTYPE_FLOAT) {
                hpcz_tensor *h = hpcz_tensor_to_half(m, a->t, a->t->name, err);
                if (!h)
                    return err->status;
                a->t = h;
                a->src = NULL;
                f->n_tensors++;
            } else if (!a) {
                /* ConstantOfShape without value: float 0 by default */
                a = hpcz_node_add_attr(n, "value", HPCZ_ATTR_TENSOR);
                int64_t one = 1;
                hpcz_tensor *h = a ? hpcz_tensor_new(m, NULL, HPCZ_DTYPE_FLOAT16, 1, &one) : NULL;
                if (!h || !hpcz_tensor_alloc(h))
                    return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                a->t = h;
            }
        }
        if (!strcmp(n->op_type, "Cast")) {
            hpcz_attr *a = (hpcz_attr *)hpcz_node_attr(n, "to");
            a->i = HPCZ_DTYPE_FLOAT16;
            a->src = NULL;
        }
        for (size_t j = 0; j < n->n_inputs; j++) {
            hpcz_value *v = n->inputs[j];
            if (!v || float32_slot(n, j) || !v->init || v->init->dtype != HPCZ_DTYPE_FLOAT)
                continue;
            hpcz_value *hv = NULL;
            for (size_t k = 0; k < f->n_hc && !hv; k++)
                if (f->hc[k].from == v)
                    hv = f->hc[k].to;
            if (!hv) {
                /* unique where the copy lives and where it is read */
                const char *name = hpcz_unique_name(g, v->name, "fp16");
                if (name && hpcz_graph_find_value(v->graph, name))
                    name = hpcz_unique_name(v->graph, name, "fp16");
                hpcz_tensor *h = name ? hpcz_tensor_to_half(m, v->init, name, err) : NULL;
                if (!name)
                    hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                if (!h || hpcz_graph_add_initializer(v->graph, h, err))
                    return err->status;
                hv = hpcz_graph_find_value(v->graph, name);
                hv->ndim = v->ndim;
                hv->dims = v->dims;
                if (!hpcz_grow((void **)&f->hc, &f->cap_hc, f->n_hc + 1, sizeof *f->hc))
                    return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                f->hc[f->n_hc++] = (struct hconst){v, hv};
                f->n_tensors++;
            }
            n->inputs[j] = hv;
        }
        for (size_t j = 0; j < n->n_outputs; j++)
            if (is_float_value(n->outputs[j]))
                set_half(n->outputs[j]);
    }
    if (!f->keep_io && !g->parent)
        for (size_t i = 0; i < g->n_inputs; i++)
            if (!g->inputs[i]->init && is_float_value(g->inputs[i]))
                set_half(g->inputs[i]);
    /* 3. Casts where a node reads the other precision */
    casts cc = {0};
    for (size_t i = 0; i < n0; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++) {
            hpcz_value *v = n->inputs[j];
            if (!v || (v->dtype != HPCZ_DTYPE_FLOAT && v->dtype != HPCZ_DTYPE_FLOAT16))
                continue;
            int want = n->aux == P_HALF && !float32_slot(n, j) ? HPCZ_DTYPE_FLOAT16 : HPCZ_DTYPE_FLOAT;
            if (v->dtype == want)
                continue;
            hpcz_value *cv = cast_of(f, &cc, v, want);
            if (!cv) {
                free(cc.c);
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            }
            n->inputs[j] = cv;
        }
    }
    /* 4. graph outputs stay float32 with keep-io-types, and always in a
     * subgraph: the If/Loop/Scan around it keeps its float32 types */
    for (size_t i = 0; i < g->n_outputs && (f->keep_io || g->parent); i++) {
        hpcz_value *v = g->outputs[i];
        hpcz_node *p = v->producer;
        if (v->dtype != HPCZ_DTYPE_FLOAT16)
            continue;
        if (!p || p->graph != g) {
            /* a subgraph passing on an outer (now float16) value: a Cast here */
            hpcz_value *cv = cast_of(f, &cc, v, HPCZ_DTYPE_FLOAT);
            if (!cv) {
                free(cc.c);
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            }
            g->outputs[i] = cv;
            cv->is_output = 1;
            continue;
        }
        const char *name = hpcz_unique_name(g, v->name, "fp16");
        hpcz_value *hv = hpcz_graph_value(g, name);
        hv->dtype = HPCZ_DTYPE_FLOAT16;
        hv->ndim = v->ndim;
        hv->dims = v->dims;
        for (size_t j = 0; j < p->n_outputs; j++)
            if (p->outputs[j] == v)
                hpcz_node_set_output(p, j, hv);
        hpcz_graph_replace_uses(g, v, hv);
        g->outputs[i] = v; /* replace_uses also rewired the output list: restore */
        hpcz_node *cn = hpcz_graph_add_node(g, "Cast", hpcz_unique_name(g, v->name, "to_fp32"), 1, 1);
        hpcz_attr *a = cn ? hpcz_node_add_attr(cn, "to", HPCZ_ATTR_INT) : NULL;
        if (!a) {
            free(cc.c);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
        a->i = HPCZ_DTYPE_FLOAT;
        cn->inputs[0] = hv;
        hpcz_node_set_output(cn, 0, v);
        v->dtype = HPCZ_DTYPE_FLOAT;
        v->type_dirty = 1;
        f->n_casts++;
    }
    free(cc.c);
    for (size_t i = 0; i < g->n_nodes; i++)
        g->nodes[i]->aux = 0;
    if ((st = hpcz_graph_toposort(g, err)))
        return st;
    /* 5. the subgraphs (If branches, Loop and Scan bodies), after the graph
     * around them, so their reads of outer values see the final types: each
     * converts on its own, reading and returning float32 at its boundary */
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            hpcz_graph **subs = n->attrs[a].type == HPCZ_ATTR_GRAPH ? &n->attrs[a].g
                                : n->attrs[a].type == HPCZ_ATTR_GRAPHS ? n->attrs[a].graphs
                                                                       : NULL;
            size_t ns = n->attrs[a].type == HPCZ_ATTR_GRAPH ? 1 : n->attrs[a].n;
            for (size_t k = 0; subs && k < ns; k++) {
                if (!subs[k])
                    continue;
                f->g = subs[k];
                f->n_subgraphs++;
                st = convert_graph(f);
                f->g = g;
                if (st)
                    return st;
            }
        }
    }
    return HPCZ_OK;
}

static void drop_unused_everywhere(hpcz_graph *g)
{
    hpcz_drop_unused_inits(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                drop_unused_everywhere(n->attrs[a].g);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    if (n->attrs[a].graphs[k])
                        drop_unused_everywhere(n->attrs[a].graphs[k]);
        }
    }
}

/* Before converting, in float32 (fold_bn.c's folds, as quantize-static
 * does them): every float16 op rounds its result, so each Mul or Add left
 * beside a Conv, and each of the four ops of a written-out HardSwish, is a
 * rounding the float32 model does not have, and a pass over the tensor.
 * ppocr_rec (PP-OCRv4's MobileOne blocks: Conv, Mul, Add, HardSwish
 * written out, Mul, Add) had eight roundings per value after each Conv;
 * ppocr_cls four. The folded model is the float32 one up to float32
 * rounding, and its float16 form is closer to it. */
static hpcz_status fold_first(hpcz_model *m, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    size_t n = 0;
    hpcz_status st = hpcz_fold_conv_affine(m->graph, ctx, &n, err);
    if (st)
        return st;
    if (n)
        hpcz_pass_note(ctx, "to-fp16", "%zu Mul/Add of per-channel constants folded into the Conv before them", n);
    n = 0;
    if ((st = hpcz_fold_affine_into_conv(m->graph, ctx, &n, err)))
        return st;
    if (n)
        hpcz_pass_note(ctx, "to-fp16", "%zu scalar Mul/Add folded into the unpadded Conv after them", n);
    hpcz_fuse_hardswish(m, m->graph, ctx, "to-fp16", err);
    if (err->status)
        return err->status;
    /* (no second hpcz_model_infer_dtypes: the folds keep every value's
     * type, and a second pass types the outputs of nested If nodes the
     * first left open, which changes what convert_graph does with them) */
    return HPCZ_OK;
}

static const hpcz_pass_opt opts[] = {
    {"keep-io-types", HPCZ_OPT_BOOL, "false", "graph inputs and outputs stay float32 (Casts inside)", NULL, 0, 0},
    {"block", HPCZ_OPT_STRING, NULL, "extra op types that stay float32, comma-separated", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "nodes whose name or op type matches this regex stay float32", NULL, 0, 0},
    {"fold", HPCZ_OPT_BOOL, "true",
     "first, in float32: Mul/Add of per-channel constants after a Conv into it, scalar Mul/Add into the "
     "unpadded Conv after them, x*Clip(x+3,0,6)/6 as the HardSwish op (fewer float16 ops, each of "
     "which rounds)",
     NULL, 0, 0},
    {0},
};

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    fctx f = {0};
    f.m = m;
    f.g = m->graph;
    f.ctx = ctx;
    f.err = err;
    f.keep_io = hpcz_pass_arg(a, "keep-io-types").b;
    const char *extra = hpcz_pass_arg(a, "block").s;
    char *block = NULL;
    if (extra && *extra) {
        size_t l = strlen(default_block) + strlen(extra) + 2;
        block = malloc(l);
        if (!block)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        snprintf(block, l, "%s,%s", default_block, extra);
    }
    f.block = block ? block : default_block;
    hpcz_model_infer_dtypes(m);
    hpcz_status st = hpcz_pass_arg(a, "fold").b ? fold_first(m, ctx, err) : HPCZ_OK;
    if (st) {
        free(block);
        return st;
    }
    st = hpcz_filter_init(&f.filter, hpcz_pass_arg(a, "include").s, hpcz_pass_arg(a, "exclude").s,
                          NULL, err);
    if (!st)
        st = convert_graph(&f);
    if (!st)
        drop_unused_everywhere(m->graph); /* the float32 originals of converted weights */
    hpcz_filter_release(&f.filter);
    hpcz_ptrset_free(&f.before_log);
    free(f.hc);
    free(block);
    if (st)
        return st;
    if (f.n_subgraphs)
        hpcz_pass_note(ctx, "to-fp16", "%zu nodes in float16, %zu kept float32 (%zu subgraphs "
                       "included), %zu float tensors converted, %zu Casts", f.n_half, f.n_float,
                       f.n_subgraphs, f.n_tensors, f.n_casts);
    else
        hpcz_pass_note(ctx, "to-fp16", "%zu nodes in float16, %zu kept float32, %zu float tensors "
                       "converted, %zu Casts", f.n_half, f.n_float, f.n_tensors, f.n_casts);
    return HPCZ_OK;
}

const hpcz_pass hpcz_pass_to_fp16 = {
    "to-fp16",
    "float16 weights and compute; ops that float16 would break stay float32, with the reason",
    opts,
    run,
};
