/*
 * quantize_gather.c - embedding tables: a Gather over a constant float table
 * with integer indices becomes
 *
 *     Gather(int8 table, ids) -> Cast(float) -> Mul(Gather(row scales, ids))
 *
 * int8, symmetric, one scale per row (the table's axis 0, the axis Gather
 * reads): only the gathered rows are widened, never the whole table (a
 * DequantizeLinear of MiniLM's 30522 x 384 table took 9-22 ms per run in ONNX
 * Runtime, the row form 0.05 ms for a 64-token sentence). ONNX Runtime and
 * hpcz run it with plain ops. Or, asked for (quantize-int4{gather-int4}),
 * symmetric int4 in blocks along the row read by
 * com.microsoft::GatherBlockQuantized. Called by every quantization pass
 * that quantizes weights, for the Gather nodes its filter selects.
 */
#include "passes.h"
#include "qmath.h"

#include <math.h>
#include <stdio.h>

enum { FEW_ROWS = 8 }; /* tables with at most this many rows stay float */

typedef struct gq {
    const hpcz_node_filter *f;
    int64_t min_size;
    int64_t block4;     /* > 0: int4 blocks of this length (GatherBlockQuantized) */
    bool mse;
    hpcz_pass_ctx *ctx;
    hpcz_error *err;
    hpcz_status st;
    size_t tables, kept, tables4;
    uint64_t before, after;
} gq;

static bool int_indices(const hpcz_value *v)
{
    return v && (v->dtype == HPCZ_DTYPE_INT64 || v->dtype == HPCZ_DTYPE_INT32);
}

/* A Gather on axis 0 of a constant float table of rank >= 2, integer indices. */
static bool table_gather(const hpcz_node *n)
{
    if (strcmp(n->op_type, "Gather") || (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")))
        return false;
    if (n->n_inputs != 2 || !n->inputs[0] || !int_indices(n->inputs[1]) || n->n_outputs != 1 ||
        !n->outputs[0])
        return false;
    hpcz_tensor *t = hpcz_value_const(n->inputs[0]);
    if (!t || t->dtype != HPCZ_DTYPE_FLOAT || t->ndim < 2)
        return false;
    int64_t axis = hpcz_node_attr_int(n, "axis", 0);
    return axis == 0 || axis == -t->ndim;
}

static hpcz_value *out_value(hpcz_graph *g, hpcz_node *n, const char *base, const char *suffix, int dtype)
{
    hpcz_value *v = hpcz_graph_value(g, hpcz_unique_name(g, base, suffix));
    if (v) {
        v->dtype = dtype;
        hpcz_node_set_output(n, 0, v);
    }
    return v;
}

/* The int8 table and its row scales, as initializers of g. */
static hpcz_status quantize_table(gq *q, hpcz_graph *g, hpcz_value *tv, hpcz_value **qv, hpcz_value **sv)
{
    hpcz_tensor *t = hpcz_value_const(tv);
    const float *x = hpcz_tensor_data(t, q->err);
    if (!x)
        return q->err->status;
    int64_t rows = t->dims[0], len = t->numel / (rows > 0 ? rows : 1);
    int64_t sdims[HPCZ_MAX_RANK];
    sdims[0] = rows;
    for (int i = 1; i < t->ndim; i++)
        sdims[i] = 1;
    hpcz_model *m = g->model;
    hpcz_tensor *qt = hpcz_tensor_new(m, hpcz_unique_name(g, tv->name, "quantized"), HPCZ_DTYPE_INT8, t->ndim, t->dims);
    hpcz_tensor *st = hpcz_tensor_new(m, hpcz_unique_name(g, tv->name, "scale"), HPCZ_DTYPE_FLOAT, t->ndim, sdims);
    int *qrow = malloc((size_t)(len > 0 ? len : 1) * sizeof *qrow);
    if (!qt || !st || !qrow || !hpcz_tensor_alloc(qt) || !hpcz_tensor_alloc(st)) {
        free(qrow);
        return hpcz_fail(q->err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (int64_t k = 0; k < t->numel; k++)
        if (!isfinite(x[k])) {
            free(qrow);
            return hpcz_fail(q->err, HPCZ_ERR_INVALID,
                             "embedding table '%s' holds NaN or Inf (first at element %lld): it cannot "
                             "be quantized; fix the model or leave its Gather out with --exclude",
                             tv->name, (long long)k);
        }
    hpcz_qrange r = hpcz_qrange_of(HPCZ_DTYPE_INT8, 1, 0);
    int8_t *qd = qt->data;
    float *sd = st->data;
    for (int64_t i = 0; i < rows; i++) {
        float s;
        int z;
        hpcz_choose_qparams(x + i * len, (size_t)len, 1, r, 1, q->mse, &s, &z);
        hpcz_quantize_span(x + i * len, (size_t)len, 1, s, 0, r, qrow);
        sd[i] = s;
        for (int64_t k = 0; k < len; k++)
            qd[i * len + k] = (int8_t)qrow[k];
    }
    free(qrow);
    *qv = hpcz_add_init_value(g, qt, q->err);
    *sv = *qv ? hpcz_add_init_value(g, st, q->err) : NULL;
    if (!*sv)
        return q->err->status;
    uint64_t before = hpcz_dtype_nbytes(HPCZ_DTYPE_FLOAT, t->numel);
    uint64_t after = (uint64_t)t->numel + 4 * (uint64_t)rows;
    q->tables++;
    q->before += before;
    q->after += after;
    char shape[128];
    size_t k = (size_t)snprintf(shape, sizeof shape, "[");
    for (int i = 0; i < t->ndim && k < sizeof shape; i++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (k < sizeof shape)
        snprintf(shape + k, sizeof shape - k, "]");
    hpcz_pass_note(q->ctx, "quantize", "%s: float %s %llu B -> int8 per row (Gather), %llu B "
                   "(%.2f bits/weight)", tv->name, shape,
                   (unsigned long long)before, (unsigned long long)after,
                   8.0 * (double)after / (double)(t->numel ? t->numel : 1));
    return HPCZ_OK;
}

/* n reads the quantized table: Gather(q, ids) -> Cast -> Mul(Gather(s, ids)). */
static hpcz_status rewrite_gather(gq *q, hpcz_graph *g, hpcz_node *n, hpcz_value *qv, hpcz_value *sv)
{
    const char *base = n->name && *n->name ? n->name : n->outputs[0]->name;
    hpcz_value *ids = n->inputs[1], *y = n->outputs[0];
    hpcz_node *gq8 = hpcz_graph_add_node(g, "Gather", hpcz_unique_name(g, base, "int8"), 2, 1);
    hpcz_node *gs = gq8 ? hpcz_graph_add_node(g, "Gather", hpcz_unique_name(g, base, "scale"), 2, 1) : NULL;
    hpcz_node *cast = gs ? hpcz_graph_add_node(g, "Cast", hpcz_unique_name(g, base, "Cast"), 1, 1) : NULL;
    hpcz_node *mul = cast ? hpcz_graph_add_node(g, "Mul", hpcz_unique_name(g, base, "rescale"), 2, 1) : NULL;
    hpcz_attr *to = mul ? hpcz_node_add_attr(cast, "to", HPCZ_ATTR_INT) : NULL;
    if (!to)
        return hpcz_fail(q->err, HPCZ_ERR_NOMEM, "out of memory");
    to->i = HPCZ_DTYPE_FLOAT;
    gq8->inputs[0] = qv;
    gq8->inputs[1] = ids;
    gs->inputs[0] = sv;
    gs->inputs[1] = ids;
    hpcz_value *rows = out_value(g, gq8, base, "int8_rows", HPCZ_DTYPE_INT8);
    hpcz_value *scales = out_value(g, gs, base, "row_scales", HPCZ_DTYPE_FLOAT);
    cast->inputs[0] = rows;
    hpcz_value *wide = out_value(g, cast, base, "float_rows", HPCZ_DTYPE_FLOAT);
    if (!rows || !scales || !wide)
        return hpcz_fail(q->err, HPCZ_ERR_NOMEM, "out of memory");
    mul->inputs[0] = wide;
    mul->inputs[1] = scales;
    hpcz_node_set_output(mul, 0, y);
    n->aux = -1;
    return HPCZ_OK;
}

/* 4-bit: symmetric int4 codes + 8 in blocks of q->block4 along the row, two
 * per byte (low nibble first), scales [V, D / block]: the data and scales of
 * com.microsoft::GatherBlockQuantized (bits 4, default zero point 8). */
static hpcz_status quantize_table4(gq *q, hpcz_graph *g, hpcz_value *tv, hpcz_value **qv, hpcz_value **sv)
{
    hpcz_tensor *t = hpcz_value_const(tv);
    const float *x = hpcz_tensor_data(t, q->err);
    if (!x)
        return q->err->status;
    int64_t V = t->dims[0], D = t->dims[1], bs = q->block4, nblk = D / bs;
    int64_t qdims[2] = {V, D / 2}, sdims[2] = {V, nblk};
    hpcz_model *m = g->model;
    hpcz_tensor *qt = hpcz_tensor_new(m, hpcz_unique_name(g, tv->name, "quantized"), HPCZ_DTYPE_UINT8, 2, qdims);
    hpcz_tensor *st = hpcz_tensor_new(m, hpcz_unique_name(g, tv->name, "scale"), HPCZ_DTYPE_FLOAT, 2, sdims);
    int *qb = malloc((size_t)bs * sizeof *qb);
    if (!qt || !st || !qb || !hpcz_tensor_alloc(qt) || !hpcz_tensor_alloc(st)) {
        free(qb);
        return hpcz_fail(q->err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (int64_t k = 0; k < t->numel; k++)
        if (!isfinite(x[k])) {
            free(qb);
            return hpcz_fail(q->err, HPCZ_ERR_INVALID,
                             "embedding table '%s' holds NaN or Inf (first at element %lld): it cannot "
                             "be quantized; fix the model or leave its Gather out with --exclude",
                             tv->name, (long long)k);
        }
    hpcz_qrange r = hpcz_qrange_of(HPCZ_DTYPE_INT4, 1, 0);
    uint8_t *qd = qt->data;
    float *sd = st->data;
    for (int64_t i = 0; i < V; i++)
        for (int64_t b = 0; b < nblk; b++) {
            const float *blk = x + i * D + b * bs;
            float s;
            int z;
            hpcz_choose_qparams(blk, (size_t)bs, 1, r, 1, q->mse, &s, &z);
            hpcz_quantize_span(blk, (size_t)bs, 1, s, 0, r, qb);
            sd[i * nblk + b] = s;
            for (int64_t e = 0; e < bs; e++) {
                int64_t k = i * D + b * bs + e;
                qd[k / 2] |= (uint8_t)((qb[e] + 8) << (4 * (k & 1)));
            }
        }
    free(qb);
    *qv = hpcz_add_init_value(g, qt, q->err);
    *sv = *qv ? hpcz_add_init_value(g, st, q->err) : NULL;
    if (!*sv)
        return q->err->status;
    uint64_t before = hpcz_dtype_nbytes(HPCZ_DTYPE_FLOAT, t->numel);
    uint64_t after = (uint64_t)qt->numel + 4 * (uint64_t)st->numel;
    q->tables++;
    q->tables4++;
    q->before += before;
    q->after += after;
    hpcz_pass_note(q->ctx, "quantize", "%s: float [%lld,%lld] %llu B -> int4 in blocks of %lld "
                   "(GatherBlockQuantized), %llu B (%.2f bits/weight)", tv->name, (long long)V,
                   (long long)D, (unsigned long long)before, (long long)bs, (unsigned long long)after,
                   8.0 * (double)after / (double)(t->numel ? t->numel : 1));
    return HPCZ_OK;
}

static hpcz_status rewrite_gather4(gq *q, hpcz_graph *g, hpcz_node *n, hpcz_value *qv, hpcz_value *sv)
{
    const char *base = n->name && *n->name ? n->name : n->outputs[0]->name;
    hpcz_node *gb = hpcz_graph_add_node(g, "GatherBlockQuantized", hpcz_unique_name(g, base, "int4"), 3, 1);
    if (!gb)
        return hpcz_fail(q->err, HPCZ_ERR_NOMEM, "out of memory");
    gb->domain = "com.microsoft";
    gb->inputs[0] = qv;
    gb->inputs[1] = n->inputs[1];
    gb->inputs[2] = sv;
    const char *names[4] = {"bits", "block_size", "gather_axis", "quantize_axis"};
    int64_t vals[4] = {4, q->block4, 0, 1};
    for (int i = 0; i < 4; i++) {
        hpcz_attr *a = hpcz_node_add_attr(gb, names[i], HPCZ_ATTR_INT);
        if (!a)
            return hpcz_fail(q->err, HPCZ_ERR_NOMEM, "out of memory");
        a->i = vals[i];
    }
    hpcz_node_set_output(gb, 0, n->outputs[0]);
    n->aux = -1;
    return HPCZ_OK;
}

/* a selected Gather and its table */
typedef struct gsel {
    hpcz_value *table;
    hpcz_node *n;
    size_t order;
} gsel;

static int cmp_gsel(const void *a, const void *b)
{
    const gsel *x = a, *y = b;
    uintptr_t p = (uintptr_t)x->table, q = (uintptr_t)y->table;
    if (p != q)
        return p < q ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int visit(hpcz_graph *g, void *ctx)
{
    gq *q = ctx;
    /* the selected Gathers, grouped by table (sorted: one pass whatever the
     * number of tables) */
    gsel *sel = NULL;
    size_t ns = 0, cap = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        if (!table_gather(n) || !hpcz_filter_match(q->f, n))
            continue;
        if ((q->ctx && q->ctx->keep_float && q->ctx->keep_float(q->ctx->keep_float_user, n)) ||
            hpcz_value_const(n->inputs[0])->numel < q->min_size) {
            q->kept++;
            continue;
        }
        /* a table of a few rows (BERT's token types: 2 x 384) is read by
         * every token, so each row's rounding error is one shift of them all
         * (minilm_l3: 26.0 dB of output SQNR with it in int8, 33.4 float),
         * for a saving of a few KiB */
        if (hpcz_value_const(n->inputs[0])->dims[0] <= FEW_ROWS) {
            q->kept++;
            hpcz_pass_note(q->ctx, "quantize", "%s: kept float (%lld rows, each read by many tokens)",
                           n->inputs[0]->name, (long long)hpcz_value_const(n->inputs[0])->dims[0]);
            continue;
        }
        if (!hpcz_grow((void **)&sel, &cap, ns + 1, sizeof *sel)) {
            free(sel);
            q->st = hpcz_fail(q->err, HPCZ_ERR_NOMEM, "out of memory");
            return 1;
        }
        sel[ns++] = (gsel){n->inputs[0], n, i};
    }
    if (!ns)
        return 0;
    qsort(sel, ns, sizeof *sel, cmp_gsel);
    hpcz_graph *top = g;
    while (top->parent)
        top = top->parent;
    hpcz_count_uses(top); /* reads of every value, in value->aux */
    bool changed = false;
    for (size_t i = 0, j; i < ns && !q->st; i = j) {
        hpcz_value *tv = sel[i].table;
        for (j = i; j < ns && sel[j].table == tv; j++)
            ;
        /* every reader of the table must be one of these Gathers: a table a
         * MatMul also reads (tied embeddings) stays with that */
        if (tv->is_output || (size_t)tv->aux != j - i) {
            q->kept += j - i;
            hpcz_pass_note(q->ctx, "quantize", "%s: kept float (read by other nodes than Gather)", tv->name);
            continue;
        }
        hpcz_tensor *t = hpcz_value_const(tv);
        hpcz_value *qv, *sv;
        /* int4 where the rows are whole blocks; else int8 rows */
        bool four = q->block4 > 0 && t->ndim == 2 && t->dims[1] % q->block4 == 0;
        if ((q->st = four ? quantize_table4(q, g, tv, &qv, &sv) : quantize_table(q, g, tv, &qv, &sv)))
            break;
        for (size_t k = i; k < j && !q->st; k++)
            q->st = four ? rewrite_gather4(q, g, sel[k].n, qv, sv) : rewrite_gather(q, g, sel[k].n, qv, sv);
        changed = true;
    }
    free(sel);
    if (changed && !q->st) {
        hpcz_graph_sweep(g);
        hpcz_drop_unused_inits(g);
        q->st = hpcz_graph_toposort(g, q->err);
    }
    return q->st != HPCZ_OK;
}

hpcz_status hpcz_quantize_gather(hpcz_model *m, const hpcz_node_filter *f, int64_t min_size, bool mse,
                                 int64_t block4, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    if (!hpcz_filter_op_allowed(f, "Gather"))
        return HPCZ_OK;
    hpcz_model_infer_dtypes(m);
    gq q = {f, min_size, block4, mse, ctx, err, HPCZ_OK, 0, 0, 0, 0, 0};
    hpcz_model_foreach_graph(m, visit, &q);
    if (!q.st && q.tables4)
        q.st = hpcz_import_opset(m, "com.microsoft", 1, err);
    if (q.st)
        return q.st;
    if (q.tables || q.kept)
        hpcz_pass_note(ctx, "quantize", "%zu embedding table%s quantized (%zu int4, %zu int8 per row; "
                       "%.1f KiB -> %.1f KiB), %zu kept float", q.tables, q.tables == 1 ? "" : "s",
                       q.tables4, q.tables - q.tables4, (double)q.before / 1024.0,
                       (double)q.after / 1024.0, q.kept);
    return HPCZ_OK;
}
