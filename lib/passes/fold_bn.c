/*
 * fold_bn.c - fold inference BatchNormalization into the preceding Conv,
 * Gemm or MatMul: y = (x*W + b - mean) * gamma/sqrt(var+eps) + beta
 * becomes x*(W*s) + ((b - mean)*s + beta) with s = gamma/sqrt(var+eps).
 */
#include "passes.h"

#include <math.h>

static bool is_op(const hpcz_node *n, const char *op)
{
    return n && !strcmp(n->op_type, op) && (!n->domain || !*n->domain);
}

/* Reads the 4 BN parameter tensors as float arrays of length c. */
static bool bn_params(const hpcz_node *bn, int64_t c, const float *p[4])
{
    for (int k = 0; k < 4; k++) {
        hpcz_tensor *t = bn->n_inputs > (size_t)(k + 1) ? hpcz_value_const(bn->inputs[k + 1]) : NULL;
        hpcz_error e;
        if (!t || t->dtype != HPCZ_DTYPE_FLOAT || t->numel != c)
            return false;
        p[k] = hpcz_tensor_data(t, &e);
        if (!p[k])
            return false;
    }
    return true;
}

typedef struct fold {
    hpcz_graph *g;
    hpcz_node *prod, *bn;
    int64_t c;      /* channels */
    float *scale;   /* s[c] */
    float *shift;   /* beta - mean*s */
    hpcz_error *err;
} fold;

/* The producer's bias as a writable float[c] tensor (created at zero if absent)
 * wired into input slot idx. */
static float *bias_slot(fold *f, size_t idx)
{
    hpcz_node *n = f->prod;
    if (n->n_inputs > idx && n->inputs[idx]) {
        hpcz_tensor *t = hpcz_writable_weight(f->g, n, idx, f->err);
        return t && t->numel == f->c ? t->data : NULL;
    }
    /* grow the input list: Conv takes B as its third input */
    hpcz_value **ni = hpcz_model_alloc(f->g->model, (idx + 1) * sizeof *ni);
    if (!ni)
        return NULL;
    for (size_t i = 0; i < n->n_inputs; i++)
        ni[i] = n->inputs[i];
    n->inputs = ni;
    n->n_inputs = idx + 1;
    const char *name = hpcz_unique_name(f->g, n->name && *n->name ? n->name : n->op_type, "bias");
    int64_t dims[1] = {f->c};
    hpcz_tensor *t = hpcz_new_float_init(f->g, name, 1, dims, f->err);
    if (!t)
        return NULL;
    n->inputs[idx] = hpcz_graph_find_value(f->g, name);
    return t->data;
}

static bool fold_conv(fold *f)
{
    hpcz_node *n = f->prod;
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim < 3 || w->dims[0] != f->c)
        return false;
    if (n->n_inputs > 2 && n->inputs[2]) {
        hpcz_tensor *b = hpcz_value_const(n->inputs[2]);
        if (!b || b->dtype != HPCZ_DTYPE_FLOAT || b->numel != f->c)
            return false;
    }
    w = hpcz_writable_weight(f->g, n, 1, f->err);
    if (!w)
        return false;
    float *wd = w->data;
    int64_t per = w->numel / f->c;
    for (int64_t o = 0; o < f->c; o++)
        for (int64_t k = 0; k < per; k++)
            wd[o * per + k] *= f->scale[o];
    float *b = bias_slot(f, 2);
    if (!b)
        return false;
    for (int64_t o = 0; o < f->c; o++)
        b[o] = b[o] * f->scale[o] + f->shift[o];
    return true;
}

static bool fold_gemm(fold *f)
{
    hpcz_node *n = f->prod;
    int64_t trans_b = hpcz_node_attr_int(n, "transB", 0);
    float alpha = hpcz_node_attr_float(n, "alpha", 1.0f);
    float beta = hpcz_node_attr_float(n, "beta", 1.0f);
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim != 2 || w->dims[trans_b ? 0 : 1] != f->c)
        return false;
    hpcz_tensor *ct = n->n_inputs > 2 && n->inputs[2] ? hpcz_value_const(n->inputs[2]) : NULL;
    if (n->n_inputs > 2 && n->inputs[2] && !ct)
        return false;
    /* C must broadcast per output column: scalar, [N] or [1,N] */
    float cvals_scalar = 0;
    const float *cvals = NULL;
    bool c_scalar = false;
    if (ct) {
        hpcz_error e;
        if (ct->dtype != HPCZ_DTYPE_FLOAT)
            return false;
        cvals = hpcz_tensor_data(ct, &e);
        if (!cvals)
            return false;
        if (ct->numel == 1) {
            c_scalar = true;
            cvals_scalar = cvals[0];
        } else if (!(ct->numel == f->c && (ct->ndim == 1 || (ct->ndim == 2 && ct->dims[0] == 1)))) {
            return false;
        }
    }
    w = hpcz_writable_weight(f->g, n, 1, f->err);
    if (!w)
        return false;
    float *wd = w->data;
    int64_t k_dim = w->numel / f->c;
    for (int64_t o = 0; o < f->c; o++)
        for (int64_t k = 0; k < k_dim; k++) {
            int64_t idx = trans_b ? o * k_dim + k : k * f->c + o;
            wd[idx] *= f->scale[o];
        }
    /* new C = (beta*C - mean)*s + beta_bn, with Gemm's beta set to 1 */
    float *old = NULL;
    if (cvals && !c_scalar) {
        old = malloc((size_t)f->c * sizeof *old);
        if (!old)
            return false;
        memcpy(old, cvals, (size_t)f->c * sizeof *old);
    }
    if (ct && (c_scalar || ct->ndim != 1)) {
        /* replace by a fresh [N] tensor */
        const char *name = hpcz_unique_name(f->g, n->name && *n->name ? n->name : "gemm", "bias");
        int64_t dims[1] = {f->c};
        hpcz_tensor *t = hpcz_new_float_init(f->g, name, 1, dims, f->err);
        if (!t) {
            free(old);
            return false;
        }
        n->inputs[2] = hpcz_graph_find_value(f->g, name);
    }
    float *b = bias_slot(f, 2);
    if (!b) {
        free(old);
        return false;
    }
    for (int64_t o = 0; o < f->c; o++) {
        float c0 = ct ? (c_scalar ? cvals_scalar : old[o]) : 0.0f;
        b[o] = beta * c0 * f->scale[o] + f->shift[o];
    }
    free(old);
    (void)alpha; /* alpha multiplies A*B only: scaling B's columns commutes with it */
    for (size_t a = 0; a < n->n_attrs; a++)
        if (!strcmp(n->attrs[a].name, "beta")) {
            n->attrs[a].f = 1.0f;
            n->attrs[a].src = NULL;
        }
    return true;
}

/* MatMul with a constant [K,N] weight and a 2-D output: BN channels are the
 * columns. The bias becomes an Add that replaces the BN node. */
static bool fold_matmul(fold *f)
{
    hpcz_node *n = f->prod;
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    hpcz_value *x = n->inputs[0];
    if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim != 2 || w->dims[1] != f->c || !x ||
        x->ndim != 2)
        return false;
    w = hpcz_writable_weight(f->g, n, 1, f->err);
    if (!w)
        return false;
    float *wd = w->data;
    for (int64_t k = 0; k < w->dims[0]; k++)
        for (int64_t o = 0; o < f->c; o++)
            wd[k * f->c + o] *= f->scale[o];
    const char *name = hpcz_unique_name(f->g, n->name && *n->name ? n->name : "matmul", "bias");
    int64_t dims[1] = {f->c};
    hpcz_tensor *t = hpcz_new_float_init(f->g, name, 1, dims, f->err);
    if (!t)
        return false;
    memcpy(t->data, f->shift, (size_t)f->c * sizeof(float));
    /* the BN node becomes Add(matmul_out, bias) in place */
    hpcz_node *bn = f->bn;
    bn->op_type = "Add";
    bn->n_attrs = 0;
    bn->n_inputs = 2;
    bn->inputs[1] = hpcz_graph_find_value(f->g, name);
    bn->n_outputs = 1;
    bn->src = NULL;
    return true;
}

static hpcz_status fold_graph(hpcz_graph *g, hpcz_pass_ctx *ctx, size_t *folded, hpcz_error *err)
{
    /* subgraphs first: counting uses below covers them as they end up */
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            hpcz_attr *at = &n->attrs[a];
            hpcz_status st;
            if (at->type == HPCZ_ATTR_GRAPH && at->g && (st = fold_graph(at->g, ctx, folded, err)))
                return st;
            if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < at->n; k++)
                    if ((st = fold_graph(at->graphs[k], ctx, folded, err)))
                        return st;
        }
    }
    hpcz_count_uses(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *bn = g->nodes[i];
        if (!is_op(bn, "BatchNormalization") || bn->n_inputs < 5 || !bn->inputs[0])
            continue;
        /* inference form only: one output (or unused training outputs) */
        bool training = hpcz_node_attr_int(bn, "training_mode", 0) != 0;
        for (size_t j = 1; j < bn->n_outputs; j++)
            if (bn->outputs[j] && (bn->outputs[j]->aux > 0 || bn->outputs[j]->is_output))
                training = true;
        if (training)
            continue;
        hpcz_value *x = bn->inputs[0];
        hpcz_node *p = x->producer;
        if (!p || p->graph != g || x->aux != 1 || x->is_output || p->aux == -1)
            continue;
        bool conv = is_op(p, "Conv"), gemm = is_op(p, "Gemm"), mm = is_op(p, "MatMul");
        if (!conv && !gemm && !mm)
            continue;
        if (p->n_inputs < 2 || !hpcz_value_const(p->inputs[1]))
            continue;
        /* channel count from the BN scale */
        hpcz_tensor *gamma = hpcz_value_const(bn->inputs[1]);
        if (!gamma || gamma->ndim != 1)
            continue;
        int64_t c = gamma->numel;
        const float *prm[4];
        if (!bn_params(bn, c, prm))
            continue;
        double eps = hpcz_node_attr_float(bn, "epsilon", 1e-5f);
        float *scale = malloc((size_t)c * sizeof *scale), *shift = malloc((size_t)c * sizeof *shift);
        if (!scale || !shift) {
            free(scale);
            free(shift);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
        for (int64_t k = 0; k < c; k++) {
            /* double for the rsqrt: var can be tiny or huge */
            double s = (double)prm[0][k] / sqrt((double)prm[3][k] + eps);
            scale[k] = (float)s;
            shift[k] = (float)((double)prm[1][k] - (double)prm[2][k] * s);
        }
        fold f = {g, p, bn, c, scale, shift, err};
        bool ok = conv ? fold_conv(&f) : gemm ? fold_gemm(&f) : fold_matmul(&f);
        free(scale);
        free(shift);
        if (!ok) {
            if (err->status == HPCZ_ERR_NOMEM)
                return HPCZ_ERR_NOMEM;
            continue;
        }
        if (!mm) {
            /* the producer now writes BN's output (its name survives) */
            hpcz_value *y = bn->outputs[0];
            x->producer = NULL;
            p->outputs[0] = y;
            y->producer = p;
            bn->aux = -1;
            ctx->nodes_removed++;
        }
        (*folded)++;
        hpcz_pass_note(ctx, "fold-bn", "folded '%s' into %s '%s'", bn->name ? bn->name : "",
                       p->op_type, p->name ? p->name : "");
    }
    hpcz_graph_sweep(g);
    return HPCZ_OK;
}

/* The c per-channel values of a constant that broadcasts over the channels
 * of a 2-D convolution's [N, c, H, W] output without changing its shape: a
 * scalar, [c, 1, 1] or [1, c, 1, 1] (false otherwise). */
static bool channel_values(const hpcz_value *v, int64_t c, float *out)
{
    hpcz_tensor *t = v ? hpcz_value_const(v) : NULL;
    if (!t || t->dtype != HPCZ_DTYPE_FLOAT || t->ndim > 4)
        return false;
    if (t->numel != 1 && !(t->numel == c && t->ndim >= 3 && t->dims[t->ndim - 3] == c &&
                           (t->ndim == 3 || t->dims[0] == 1)))
        return false;
    hpcz_error e;
    const float *d = hpcz_tensor_data(t, &e);
    if (!d)
        return false;
    for (int64_t o = 0; o < c; o++)
        out[o] = d[t->numel == 1 ? 0 : o];
    return true;
}

/* The node that reads v, when it is v's only reader, an op of type op with
 * one constant operand that channel_values accepts (stored in vals). */
static hpcz_node *affine_reader(hpcz_graph *g, const hpcz_value *v, const char *op, int64_t c, float *vals)
{
    if (!v || v->aux != 1 || v->is_output)
        return NULL;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *r = g->nodes[i];
        if (r->aux == -1 || r->n_inputs != 2 || (r->inputs[0] != v && r->inputs[1] != v))
            continue;
        if (!is_op(r, op) || r->n_outputs != 1 || !r->outputs[0] || r->inputs[0] == r->inputs[1])
            return NULL;
        return channel_values(r->inputs[r->inputs[0] == v ? 1 : 0], c, vals) ? r : NULL;
    }
    return NULL;
}

/* The Mul and/or Add just folded into a Conv: marked for the sweep and
 * counted. */
static void drop_folded(hpcz_pass_ctx *ctx, hpcz_node *mul, hpcz_node *add, size_t *folded)
{
    if (mul)
        mul->aux = -1;
    if (add)
        add->aux = -1;
    ctx->nodes_removed += (mul != NULL) + (add != NULL);
    (*folded)++;
}

/* A 2-D Conv followed by Mul and/or Add of per-channel (or scalar)
 * constants, each the only reader of the value before it: BatchNormalization
 * as PaddleOCR exports it (Conv -> Mul -> Add: 38 in ppocr_rec). ONNX
 * Runtime folds these into the Conv in float, but not once static
 * quantization has put them in int8 (QLinearMul and QLinearAdd, two more
 * passes and roundings per layer), so quantize-static folds them first, as
 * fold-bn does a BatchNormalization. */
hpcz_status hpcz_fold_conv_affine(hpcz_graph *g, hpcz_pass_ctx *ctx, size_t *folded, hpcz_error *err)
{
    hpcz_status st = hpcz_uses_begin(g->model, err);
    if (st)
        return st;
    hpcz_count_uses(g);
    size_t n0 = g->n_nodes;
    for (size_t i = 0; i < n0 && !st; i++) {
        hpcz_node *p = g->nodes[i];
        hpcz_tensor *w = is_op(p, "Conv") && p->n_inputs >= 2 && p->n_outputs == 1 && p->aux != -1
                             ? hpcz_value_const(p->inputs[1])
                             : NULL;
        if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim != 4)
            continue;
        int64_t c = w->dims[0];
        float *scale = malloc((size_t)c * sizeof *scale), *shift = malloc((size_t)c * sizeof *shift);
        if (!scale || !shift) {
            free(scale);
            free(shift);
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        hpcz_node *mul = affine_reader(g, p->outputs[0], "Mul", c, scale);
        hpcz_node *add = affine_reader(g, mul ? mul->outputs[0] : p->outputs[0], "Add", c, shift);
        for (int64_t o = 0; o < c; o++) {
            if (!mul)
                scale[o] = 1;
            if (!add)
                shift[o] = 0;
        }
        fold f = {g, p, NULL, c, scale, shift, err};
        if ((mul || add) && fold_conv(&f)) {
            hpcz_node *last = add ? add : mul;
            hpcz_value *y = last->outputs[0];
            p->outputs[0]->producer = NULL;
            p->outputs[0] = y;
            y->producer = p;
            drop_folded(ctx, mul, add, folded);
        } else if (err->status == HPCZ_ERR_NOMEM) {
            st = HPCZ_ERR_NOMEM;
        }
        free(scale);
        free(shift);
    }
    hpcz_graph_sweep(g);
    hpcz_uses_end(g->model);
    return st;
}

/* The Mul or Add (op) of a scalar constant that produces v, when v has no
 * other reader (its value in *k; NULL otherwise). */
static hpcz_node *scalar_producer(const hpcz_value *v, const char *op, float *k)
{
    hpcz_node *p = v ? v->producer : NULL;
    if (!p || p->aux == -1 || v->aux != 1 || v->is_output || !is_op(p, op) || p->n_inputs != 2 ||
        p->n_outputs != 1)
        return NULL;
    for (int j = 0; j < 2; j++) {
        hpcz_tensor *t = p->inputs[j] ? hpcz_value_const(p->inputs[j]) : NULL;
        hpcz_error e;
        const float *d = t && t->dtype == HPCZ_DTYPE_FLOAT && t->numel == 1 ? hpcz_tensor_data(t, &e) : NULL;
        if (d && p->inputs[1 - j] && !hpcz_value_const(p->inputs[1 - j])) {
            *k = *d;
            return p;
        }
    }
    return NULL;
}

/* Whether a Conv reads no padding (pads all 0, auto_pad NOTSET or VALID). */
static bool conv_unpadded(const hpcz_node *n)
{
    const char *ap = hpcz_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))
        return false;
    const hpcz_attr *pads = hpcz_node_attr(n, "pads");
    for (size_t i = 0; pads && i < pads->n; i++)
        if (pads->ints[i])
            return false;
    return true;
}

/* A 2-D Conv without padding that reads a * h + b, a and b scalar constants
 * (the Mul, the Add or both, each read only by the next): PaddleOCR's
 * learnable affine after every HardSwish (28 in ppocr_rec). The Conv reads h
 * instead, with weights a * W and bias + b * sum(W) per output channel
 * (exact: every tap reads a value, none a zero of padding). ONNX Runtime
 * does not fold these; they were two float passes over the tensor before
 * each pointwise Conv. */
hpcz_status hpcz_fold_affine_into_conv(hpcz_graph *g, hpcz_pass_ctx *ctx, size_t *folded, hpcz_error *err)
{
    hpcz_status st = hpcz_uses_begin(g->model, err);
    if (st)
        return st;
    hpcz_count_uses(g);
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        hpcz_node *n = g->nodes[i];
        hpcz_tensor *w = is_op(n, "Conv") && n->n_inputs >= 2 && n->inputs[0] ? hpcz_value_const(n->inputs[1]) : NULL;
        if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim != 4 || !conv_unpadded(n))
            continue;
        if (n->n_inputs > 2 && n->inputs[2]) {
            hpcz_tensor *b = hpcz_value_const(n->inputs[2]);
            if (!b || b->dtype != HPCZ_DTYPE_FLOAT || b->numel != w->dims[0])
                continue;
        }
        float a = 1, b = 0;
        hpcz_node *add = scalar_producer(n->inputs[0], "Add", &b);
        hpcz_node *mul = scalar_producer(add ? (add->inputs[0] && !hpcz_value_const(add->inputs[0]) ? add->inputs[0]
                                                                                                   : add->inputs[1])
                                             : n->inputs[0],
                                         "Mul", &a);
        if ((!add && !mul) || !isfinite(a) || !isfinite(b))
            continue;
        hpcz_node *first = mul ? mul : add;
        hpcz_value *h = first->inputs[0] && !hpcz_value_const(first->inputs[0]) ? first->inputs[0] : first->inputs[1];
        int64_t c = w->dims[0], per = w->numel / c;
        double *sum = calloc((size_t)c, sizeof *sum);
        if (!sum) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        const float *wd0 = hpcz_tensor_data(w, err);
        for (int64_t o = 0; wd0 && o < c; o++)
            for (int64_t k = 0; k < per; k++)
                sum[o] += wd0[o * per + k];
        fold f = {g, n, NULL, c, NULL, NULL, err};
        w = wd0 ? hpcz_writable_weight(g, n, 1, err) : NULL;
        float *bias = w ? bias_slot(&f, 2) : NULL;
        if (!bias) {
            free(sum);
            st = err->status ? err->status : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        float *wd = w->data;
        for (int64_t o = 0; o < c; o++) {
            for (int64_t k = 0; k < per; k++)
                wd[o * per + k] *= a;
            bias[o] = (float)((double)bias[o] + (double)b * sum[o]);
        }
        free(sum);
        n->inputs[0] = h;
        drop_folded(ctx, mul, add, folded);
    }
    hpcz_graph_sweep(g);
    hpcz_uses_end(g->model);
    return st;
}


/* The float scalar constant v holds (NAN: none). */
static float hs_scalar(hpcz_error *err, const hpcz_value *v)
{
    hpcz_tensor *t = v ? hpcz_value_const(v) : NULL;
    const float *d = t && t->dtype == HPCZ_DTYPE_FLOAT && t->numel == 1 ? hpcz_tensor_data(t, err) : NULL;
    return d ? *d : NAN;
}

/* v's only reader, when v is no graph output and that reader's op is op
 * (value aux: use counts of hpcz_count_uses). */
static hpcz_node *hs_reader(hpcz_graph *g, const hpcz_value *v, const char *op)
{
    if (!v || v->is_output || v->aux != 1)
        return NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (size_t j = 0; j < g->nodes[i]->n_inputs; j++)
            if (g->nodes[i]->inputs[j] == v)
                return strcmp(g->nodes[i]->op_type, op) ? NULL : g->nodes[i];
    return NULL;
}

/* HardSwish written out, x * Clip(x + 3, 0, 6) / 6 (PaddleOCR's exports: 15
 * in ppocr_cls, 24 in ppocr_det), becomes the HardSwish op of opset 14 (the
 * Div node turned in place, so it keeps its name and its output with the
 * calibrated range). ONNX Runtime 1.23 has no int8 kernel for any of the
 * four ops: in float it ran Add, Clip, Mul and Div as four passes over the
 * tensor (38% of ppocr_cls's fp32 time, more than its convolutions), where
 * it runs HardSwish as two (HardSigmoid, Mul); inside an int8 region the
 * chain was QLinearAdd, QLinearMul, DequantizeLinear, Div with three
 * roundings, where DQ -> HardSwish -> Q rounds once. hpcz run fuses
 * HardSwish into the Conv before it, as it did the written-out form, or
 * runs DQ -> HardSwish -> Q as one table. Returns the number rewritten. */
size_t hpcz_fuse_hardswish(hpcz_model *m, hpcz_graph *g, hpcz_pass_ctx *ctx, const char *pass,
                           hpcz_error *err)
{
    size_t done = 0;
    bool opset_ok = hpcz_model_opset(m, "") >= 14;
    hpcz_count_uses(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *add = g->nodes[i];
        if (strcmp(add->op_type, "Add") || (add->domain && *add->domain && strcmp(add->domain, "ai.onnx")) ||
            add->n_inputs != 2 || !add->inputs[0] || !add->inputs[1] || add->n_outputs != 1)
            continue;
        int xi = hs_scalar(err, add->inputs[1]) == 3.0f ? 0 : hs_scalar(err, add->inputs[0]) == 3.0f ? 1 : -1;
        hpcz_value *x = xi >= 0 ? add->inputs[xi] : NULL;
        if (!x || hpcz_value_const(x) || x->dtype != HPCZ_DTYPE_FLOAT)
            continue;
        hpcz_node *clip = hs_reader(g, add->outputs[0], "Clip");
        if (!clip || clip->n_inputs != 3 || clip->inputs[0] != add->outputs[0] || clip->n_outputs != 1 ||
            hs_scalar(err, clip->inputs[1]) != 0.0f || hs_scalar(err, clip->inputs[2]) != 6.0f)
            continue;
        hpcz_node *mul = hs_reader(g, clip->outputs[0], "Mul");
        if (!mul || mul->n_inputs != 2 || mul->n_outputs != 1 ||
            !((mul->inputs[0] == x && mul->inputs[1] == clip->outputs[0]) ||
              (mul->inputs[1] == x && mul->inputs[0] == clip->outputs[0])))
            continue;
        hpcz_node *div = hs_reader(g, mul->outputs[0], "Div");
        if (!div || div->n_inputs != 2 || div->inputs[0] != mul->outputs[0] || div->n_outputs != 1 ||
            hs_scalar(err, div->inputs[1]) != 6.0f)
            continue;
        if (!opset_ok) {
            if (hpcz_model_upgrade_opset(m, 14, ctx, err)) {
                err->status = HPCZ_OK; /* an op that cannot move to 14: keep the written-out form */
                break;
            }
            opset_ok = true;
        }
        div->op_type = "HardSwish";
        div->n_attrs = 0;
        div->n_inputs = 1;
        div->inputs[0] = x;
        div->src = NULL;
        add->aux = clip->aux = mul->aux = -1;
        done++;
    }
    if (done) {
        hpcz_graph_sweep(g);
        hpcz_pass_note(ctx, pass, "%zu written-out HardSwish (x*Clip(x+3,0,6)/6) made HardSwish ops", done);
    }
    return done;
}

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    (void)a;
    size_t folded = 0;
    hpcz_status st = hpcz_uses_begin(m, err);
    if (st)
        return st;
    st = fold_graph(m->graph, ctx, &folded, err);
    hpcz_uses_end(m);
    if (!st)
        hpcz_pass_note(ctx, "fold-bn", "%zu BatchNormalization node%s folded", folded,
                       folded == 1 ? "" : "s");
    return st;
}

const hpcz_pass hpcz_pass_fold_bn = {
    "fold-bn",
    "fold inference BatchNormalization into the preceding Conv, Gemm or MatMul",
    NULL,
    run,
};
