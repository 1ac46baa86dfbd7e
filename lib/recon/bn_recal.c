/*
 * bn_recal.c - re-estimate BatchNormalization statistics on calibration data.
 * After channels are pruned (or weights changed), the running mean and
 * variance the model was trained with no longer describe what reaches each
 * BatchNorm; measuring them again recovers much of the loss. BatchNorms are
 * visited in execution order, each measured with the ones before it already
 * updated.
 */
#include "passes.h"

#include <stdio.h>

typedef struct bn_acc {
    const char *name;
    int64_t c;
    double *sum, *sq;
    uint64_t count; /* per channel */
    int failed;
} bn_acc;

static void add(bn_acc *b, const hpcz_array *a)
{
    if (a->dtype != HPCZ_DTYPE_FLOAT || a->ndim < 2 || a->dims[1] != b->c) {
        b->failed = 1;
        return;
    }
    int64_t n = a->dims[0], c = a->dims[1], nc = n * c, inner = nc > 0 ? a->numel / nc : 0;
    const float *x = a->data;
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *p = x + (i * c + ch) * inner;
            double s = 0, q = 0;
            for (int64_t k = 0; k < inner; k++) {
                s += p[k];
                q += (double)p[k] * p[k];
            }
            b->sum[ch] += s;
            b->sq[ch] += q;
        }
    b->count += (uint64_t)(n * inner);
}

static void on_tensor(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)node;
    bn_acc *b = ctx;
    if (name && !strcmp(name, b->name))
        add(b, a);
}

static hpcz_status measure(hpcz_model *m, hpcz_pass_ctx *ctx, bn_acc *b, hpcz_error *err)
{
    hpcz_plan_opts po = {0};
    po.weights_change = 1; /* BatchNorm statistics are rewritten between runs */
    po.threads = ctx->threads;
    po.observer = on_tensor;
    po.observer_ctx = b;
    hpcz_plan *plan = hpcz_plan_new(m, &po, err);
    if (!plan)
        return err->status;
    hpcz_dataset *d = hpcz_dataset_open(ctx->data, plan, ctx->data_samples, err);
    hpcz_status st = d ? HPCZ_OK : err->status;
    size_t ni = hpcz_plan_n_inputs(plan), no = hpcz_plan_n_outputs(plan);
    hpcz_array *in = calloc(ni ? ni : 1, sizeof *in), *out = calloc(no ? no : 1, sizeof *out);
    if (!st && (!in || !out))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    int in_idx = hpcz_plan_input_index(plan, b->name);
    size_t total = d ? hpcz_dataset_size(d) : 0, bs = d ? hpcz_dataset_batch_size(d) : 1;
    for (size_t s0 = 0; s0 < total && !st; s0 += bs) {
        size_t n = total - s0 < bs ? total - s0 : bs;
        if ((st = hpcz_dataset_batch(d, s0, n, in, err)))
            break;
        if (in_idx >= 0)
            add(b, &in[in_idx]);
        else
            st = hpcz_plan_run(plan, in, out, err);
        for (size_t i = 0; i < ni; i++)
            hpcz_array_release(&in[i]);
        for (size_t i = 0; i < no; i++)
            hpcz_array_release(&out[i]);
    }
    free(in);
    free(out);
    hpcz_dataset_free(d);
    hpcz_plan_free(plan);
    if (!st && b->failed)
        st = hpcz_fail(err, HPCZ_ERR_INVALID, "'%s' is not [N, C, ...] with C matching its BatchNorm", b->name);
    return st;
}

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    (void)a;
    if (!ctx->data)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "BatchNorm re-estimation needs calibration data (--calib DIR)");
    hpcz_graph *g = m->graph;
    size_t nn = g->n_nodes, done = 0;
    hpcz_node **order = malloc((nn ? nn : 1) * sizeof *order);
    if (!order)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_status st = hpcz_graph_topo_order(g, order, err);
    for (size_t i = 0; i < nn && !st; i++) {
        hpcz_node *n = order[i];
        if (strcmp(n->op_type, "BatchNormalization") || n->n_inputs < 5 || !n->inputs[0])
            continue;
        hpcz_tensor *mean = hpcz_value_const(n->inputs[3]), *var = hpcz_value_const(n->inputs[4]);
        if (!mean || !var || mean->dtype != HPCZ_DTYPE_FLOAT || var->dtype != HPCZ_DTYPE_FLOAT ||
            mean->numel != var->numel)
            continue;
        int64_t c = mean->numel;
        bn_acc b = {n->inputs[0]->name, c, calloc((size_t)c, sizeof(double)), calloc((size_t)c, sizeof(double)), 0, 0};
        if (!b.sum || !b.sq) {
            free(b.sum);
            free(b.sq);
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        st = measure(m, ctx, &b, err);
        hpcz_tensor *mt = st ? NULL : hpcz_writable_weight(g, n, 3, err);
        hpcz_tensor *vt = mt ? hpcz_writable_weight(g, n, 4, err) : NULL;
        if (!st && (!mt || !vt))
            st = err->status;
        if (!st && b.count) {
            float *md = mt->data, *vd = vt->data;
            for (int64_t ch = 0; ch < c; ch++) {
                double mu = b.sum[ch] / (double)b.count;
                double v = b.sq[ch] / (double)b.count - mu * mu;
                md[ch] = (float)mu;
                vd[ch] = (float)(v > 0 ? v : 0);
            }
            done++;
            hpcz_pass_note(ctx, "recalibrate-bn", "'%s': mean and variance of %lld channels re-estimated over %llu values each",
                           n->name ? n->name : "", (long long)c, (unsigned long long)b.count);
        }
        free(b.sum);
        free(b.sq);
    }
    free(order);
    if (!st)
        hpcz_pass_note(ctx, "recalibrate-bn", "%zu BatchNormalization node%s re-estimated", done, done == 1 ? "" : "s");
    return st;
}

const hpcz_pass hpcz_pass_recalibrate_bn = {
    "recalibrate-bn",
    "re-estimate BatchNormalization running mean and variance on calibration data",
    NULL,
    run,
};
