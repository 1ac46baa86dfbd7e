/*
 * matmulnbits.c - int4 weights in the form ONNX Runtime (and its GenAI
 * runtime) runs fastest: a MatMul whose weight is a blocked int4/uint4
 * DequantizeLinear (what quantize-int4 and quantize-gptq write: axis 0, the
 * reduction axis) becomes com.microsoft::MatMulNBits with
 *
 *   B            uint8 [N, ceil(K / block), block / 2]: column n of the
 *                weight, two 4-bit codes per byte, low nibble first, the
 *                last block of a column padded with its zero point;
 *   scales       float [N * ceil(K / block)];
 *   zero_points  uint8 [N * ceil(ceil(K / block) / 2)], packed like B, for
 *                uint4 weights; none for int4 (codes q + 8, MatMulNBits'
 *                default zero point 8).
 *
 * The codes and scales are the DequantizeLinear's: the two forms compute the
 * same weights. Gemm and Conv keep their DequantizeLinear.
 */
#include "passes.h"
#include "qmath.h"

#include <stdio.h>

/* The int4 DequantizeLinear behind v, in the layout MatMulNBits can take:
 * [K, N] codes, scales (and zero points) [ceil(K / block), N], axis 0. */
typedef struct nb_src {
    hpcz_tensor *q, *scale, *zp;
    int64_t K, N, block;
} nb_src;

static bool int4_weight(const hpcz_value *v, nb_src *s)
{
    const hpcz_node *dq = v ? v->producer : NULL;
    if (!dq || strcmp(dq->op_type, "DequantizeLinear") || (dq->domain && *dq->domain && strcmp(dq->domain, "ai.onnx")) ||
        dq->n_inputs < 2 || !dq->inputs[0] || !dq->inputs[1])
        return false;
    s->q = hpcz_value_const(dq->inputs[0]);
    s->scale = hpcz_value_const(dq->inputs[1]);
    s->zp = dq->n_inputs > 2 && dq->inputs[2] ? hpcz_value_const(dq->inputs[2]) : NULL;
    if (!s->q || !s->scale || (dq->n_inputs > 2 && dq->inputs[2] && !s->zp))
        return false;
    if ((s->q->dtype != HPCZ_DTYPE_INT4 && s->q->dtype != HPCZ_DTYPE_UINT4) || s->q->ndim != 2 ||
        s->scale->dtype != HPCZ_DTYPE_FLOAT || (s->zp && s->zp->dtype != s->q->dtype))
        return false;
    s->K = s->q->dims[0];
    s->N = s->q->dims[1];
    s->block = hpcz_node_attr_int(dq, "block_size", 0);
    int64_t axis = hpcz_node_attr_int(dq, "axis", 1);
    if ((axis != 0 && axis != -2) || s->block < 16 || (s->block & (s->block - 1)))
        return false;
    int64_t nblk = (s->K + s->block - 1) / s->block;
    if (s->scale->ndim != 2 || s->scale->dims[0] != nblk || s->scale->dims[1] != s->N)
        return false;
    return !s->zp || (s->zp->ndim == 2 && s->zp->dims[0] == nblk && s->zp->dims[1] == s->N);
}

typedef struct nb_pass {
    hpcz_pass_ctx *ctx;
    hpcz_error *err;
    hpcz_status st;
    size_t done;
} nb_pass;

/* The MatMulNBits initializers of the weight s, in g. */
static hpcz_status pack(hpcz_graph *g, const char *base, const nb_src *s, hpcz_value **bv, hpcz_value **sv,
                        hpcz_value **zv, hpcz_error *err)
{
    const void *q = hpcz_tensor_data(s->q, err);
    const float *sc = q ? hpcz_tensor_data(s->scale, err) : NULL;
    const void *zp = sc && s->zp ? hpcz_tensor_data(s->zp, err) : NULL;
    if (!q || !sc || (s->zp && !zp))
        return err->status;
    bool u4 = s->q->dtype == HPCZ_DTYPE_UINT4;
    int64_t nblk = (s->K + s->block - 1) / s->block, blob = s->block / 2, zrow = (nblk + 1) / 2;
    int64_t bdims[3] = {s->N, nblk, blob}, sdims[1] = {s->N * nblk}, zdims[1] = {s->N * zrow};
    hpcz_model *m = g->model;
    hpcz_tensor *bt = hpcz_tensor_new(m, hpcz_unique_name(g, base, "B"), HPCZ_DTYPE_UINT8, 3, bdims);
    hpcz_tensor *st = hpcz_tensor_new(m, hpcz_unique_name(g, base, "scales"), HPCZ_DTYPE_FLOAT, 1, sdims);
    hpcz_tensor *zt = u4 ? hpcz_tensor_new(m, hpcz_unique_name(g, base, "zero_points"), HPCZ_DTYPE_UINT8, 1, zdims) : NULL;
    if (!bt || !st || (u4 && !zt) || !hpcz_tensor_alloc(bt) || !hpcz_tensor_alloc(st) || (zt && !hpcz_tensor_alloc(zt)))
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    uint8_t *b = bt->data, *z = zt ? zt->data : NULL;
    float *sd = st->data;
    for (int64_t n = 0; n < s->N; n++)
        for (int64_t k = 0; k < nblk; k++) {
            int zq = u4 ? (zp ? hpcz_qload(zp, HPCZ_DTYPE_UINT4, (size_t)(k * s->N + n)) : 0) : 8;
            sd[n * nblk + k] = sc[k * s->N + n];
            if (z)
                z[n * zrow + k / 2] |= (uint8_t)(zq << (4 * (k & 1)));
            uint8_t *blk = b + (n * nblk + k) * blob;
            for (int64_t j = 0; j < s->block; j++) {
                int64_t kk = k * s->block + j;
                int code = kk >= s->K ? zq /* padding: weight 0 */
                           : u4 ? hpcz_qload(q, HPCZ_DTYPE_UINT4, (size_t)(kk * s->N + n))
                                : hpcz_qload(q, HPCZ_DTYPE_INT4, (size_t)(kk * s->N + n)) + 8;
                blk[j / 2] |= (uint8_t)(code << (4 * (j & 1)));
            }
        }
    *bv = hpcz_add_init_value(g, bt, err);
    *sv = *bv ? hpcz_add_init_value(g, st, err) : NULL;
    *zv = NULL;
    if (*sv && zt)
        *zv = hpcz_add_init_value(g, zt, err);
    return *sv && (!zt || *zv) ? HPCZ_OK : err->status;
}

static hpcz_status to_nbits(nb_pass *p, hpcz_graph *g, hpcz_node *n, const nb_src *s)
{
    hpcz_error *err = p->err;
    /* named after the float weight: "W_dequantized" -> "W_B", "W_scales" */
    char wname[512];
    snprintf(wname, sizeof wname, "%s", n->inputs[1]->name);
    size_t wl = strlen(wname), sl = strlen("_dequantized");
    if (wl > sl && !strcmp(wname + wl - sl, "_dequantized"))
        wname[wl - sl] = 0;
    hpcz_value *bv, *sv, *zv;
    hpcz_status st = pack(g, wname, s, &bv, &sv, &zv, err);
    if (st)
        return st;
    const char *base = n->name && *n->name ? n->name : n->outputs[0]->name;
    hpcz_node *nb = hpcz_graph_add_node(g, "MatMulNBits", hpcz_unique_name(g, base, "MatMulNBits"), zv ? 4 : 3, 1);
    if (!nb)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    nb->domain = "com.microsoft";
    nb->inputs[0] = n->inputs[0];
    nb->inputs[1] = bv;
    nb->inputs[2] = sv;
    if (zv)
        nb->inputs[3] = zv;
    const char *names[4] = {"K", "N", "bits", "block_size"};
    int64_t vals[4] = {s->K, s->N, 4, s->block};
    for (int i = 0; i < 4; i++) {
        hpcz_attr *a = hpcz_node_add_attr(nb, names[i], HPCZ_ATTR_INT);
        if (!a)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        a->i = vals[i];
    }
    hpcz_node_set_output(nb, 0, n->outputs[0]);
    n->aux = -1;
    p->done++;
    hpcz_pass_note(p->ctx, "quantize", "%s: MatMulNBits, %s [%lld x %lld] in blocks of %lld", base,
                   s->q->dtype == HPCZ_DTYPE_UINT4 ? "uint4" : "int4", (long long)s->K, (long long)s->N,
                   (long long)s->block);
    return HPCZ_OK;
}

static int visit(hpcz_graph *g, void *ctx)
{
    nb_pass *p = ctx;
    size_t n0 = g->n_nodes, before = p->done;
    hpcz_ptrset dqs = {0};
    for (size_t i = 0; i < n0 && !p->st; i++) {
        hpcz_node *n = g->nodes[i];
        nb_src s;
        if (strcmp(n->op_type, "MatMul") || (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) ||
            n->n_inputs != 2 || !n->inputs[0] || n->inputs[0]->dtype != HPCZ_DTYPE_FLOAT ||
            !n->outputs[0] || !int4_weight(n->inputs[1], &s))
            continue;
        if (hpcz_ptrset_add(&dqs, n->inputs[1]->producer) < 0)
            p->st = hpcz_fail(p->err, HPCZ_ERR_NOMEM, "out of memory");
        else
            p->st = to_nbits(p, g, n, &s);
    }
    if (p->done > before && !p->st) {
        /* the DequantizeLinear nodes nothing reads any more go, then their inputs */
        hpcz_graph *top = g;
        while (top->parent)
            top = top->parent;
        hpcz_graph_sweep(g);
        hpcz_count_uses(top); /* reads of every value, in value->aux: once */
        hpcz_ptrset graphs = {0};
        for (size_t i = 0; i < dqs.cap && !p->st; i++) {
            hpcz_node *dq = (hpcz_node *)dqs.k[i];
            if (dq && !dq->outputs[0]->is_output && dq->outputs[0]->aux == 0) {
                dq->aux = -1;
                if (hpcz_ptrset_add(&graphs, dq->graph) < 0)
                    p->st = hpcz_fail(p->err, HPCZ_ERR_NOMEM, "out of memory");
            }
        }
        for (size_t i = 0; i < graphs.cap; i++)
            if (graphs.k[i])
                hpcz_graph_sweep((hpcz_graph *)graphs.k[i]);
        hpcz_ptrset_free(&graphs);
        hpcz_drop_unused_inits(g);
        if (!p->st)
            p->st = hpcz_graph_toposort(g, p->err);
    }
    hpcz_ptrset_free(&dqs);
    return p->st != HPCZ_OK;
}

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    (void)a;
    hpcz_model_infer_dtypes(m);
    nb_pass p = {ctx, err, HPCZ_OK, 0};
    hpcz_model_foreach_graph(m, visit, &p);
    if (p.st)
        return p.st;
    if (p.done && (p.st = hpcz_import_opset(m, "com.microsoft", 1, err)))
        return p.st;
    hpcz_pass_note(ctx, "quantize", "%zu MatMul node%s with int4 weights to com.microsoft::MatMulNBits", p.done,
                   p.done == 1 ? "" : "s");
    return HPCZ_OK;
}

const hpcz_pass hpcz_pass_int4_matmulnbits = {
    "int4-matmulnbits",
    "MatMul nodes with blocked int4 weights (quantize-int4, quantize-gptq) to com.microsoft::MatMulNBits, "
    "ONNX Runtime's 4-bit kernel",
    NULL,
    run,
};
