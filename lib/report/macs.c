/*
 * macs.c - multiply-accumulates per sample, from the shapes a real run
 * produces (so symbolic and data-dependent shapes are handled).
 */
#include "internal.h"

typedef struct macs_ctx {
    uint64_t macs;
} macs_ctx;

static hpcz_tensor *weight_behind(const hpcz_value *v)
{
    for (int hops = 0; v && hops < 3; hops++) {
        if (v->init)
            return v->init;
        const hpcz_node *p = v->producer;
        if (!p)
            return NULL;
        if (!strcmp(p->op_type, "Constant")) {
            const hpcz_attr *a = hpcz_node_attr(p, "value");
            return a ? a->t : NULL;
        }
        if (strcmp(p->op_type, "DequantizeLinear") || !p->n_inputs)
            return NULL;
        v = p->inputs[0];
    }
    return NULL;
}

static void on_tensor(void *ctx, const hpcz_node *n, const char *name, const hpcz_array *a)
{
    macs_ctx *c = ctx;
    if (!n || !n->n_outputs || !n->outputs[0] || strcmp(name, n->outputs[0]->name))
        return;
    const char *op = n->op_type;
    bool conv = !strcmp(op, "Conv") || !strcmp(op, "ConvInteger") || !strcmp(op, "QLinearConv");
    bool mm = !strcmp(op, "Gemm") || !strcmp(op, "MatMul") || !strcmp(op, "MatMulInteger") ||
              !strcmp(op, "QLinearMatMul");
    if (!conv && !mm)
        return;
    size_t wi = !strcmp(op, "QLinearConv") || !strcmp(op, "QLinearMatMul") ? 3 : 1;
    hpcz_tensor *w = n->n_inputs > wi ? weight_behind(n->inputs[wi]) : NULL;
    uint64_t k = 0;
    if (conv && w && w->ndim >= 3 && w->dims[0] > 0)
        k = (uint64_t)(w->numel / w->dims[0]);
    else if (mm && w && w->ndim >= 2) {
        bool tb = !strcmp(op, "Gemm") && hpcz_node_attr_int(n, "transB", 0);
        k = (uint64_t)w->dims[tb ? w->ndim - 1 : w->ndim - 2];
    }
    c->macs += (uint64_t)a->numel * k;
}

hpcz_status hpcz_model_macs(hpcz_model *m, const char *data, int threads, uint64_t *out, hpcz_error *err)
{
    macs_ctx c = {0};
    hpcz_plan_opts po = {0};
    po.threads = threads;
    po.observer = on_tensor;
    po.observer_ctx = &c;
    hpcz_plan *p = hpcz_plan_new(m, &po, err);
    if (!p)
        return err->status;
    hpcz_dataset *d = hpcz_dataset_open(data ? data : "random:1", p, 1, err);
    hpcz_status st = d ? HPCZ_OK : err->status;
    size_t ni = hpcz_plan_n_inputs(p), no = hpcz_plan_n_outputs(p);
    hpcz_array *in = calloc(ni ? ni : 1, sizeof *in), *o = calloc(no ? no : 1, sizeof *o);
    if (!st && (!in || !o))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (!st)
        st = hpcz_dataset_batch(d, 0, 1, in, err);
    if (!st)
        st = hpcz_plan_run(p, in, o, err);
    for (size_t i = 0; in && i < ni; i++)
        hpcz_array_release(&in[i]);
    for (size_t i = 0; o && i < no; i++)
        hpcz_array_release(&o[i]);
    free(in);
    free(o);
    hpcz_dataset_free(d);
    hpcz_plan_free(p);
    if (!st)
        *out = c.macs;
    return st;
}
