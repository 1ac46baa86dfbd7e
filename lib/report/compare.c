/*
 * compare.c - how much a compressed model differs from its original, per
 * output and per intermediate tensor, on the same inputs.
 *
 * Statistics accumulate in double over batches, so memory holds one batch of
 * activations of model A (for the per-layer comparison) and nothing grows
 * with the number of samples.
 */
#include "internal.h"
#include "qmath.h"

#include <math.h>
#include <stdio.h>

typedef struct acc {
    double ref2, err2, dot, a2, b2, abs_sum, max_abs;
    uint64_t count;
} acc;

static void acc_add(acc *s, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        if (!isfinite(x) || !isfinite(y)) {
            /* a NaN or inf in only one of them is the worst error there is */
            if (isfinite(x) != isfinite(y) || (isnan(x) != isnan(y))) {
                s->max_abs = INFINITY;
                s->err2 = INFINITY;
            }
            s->count++;
            continue;
        }
        double d = x - y;
        s->ref2 += x * x;
        s->err2 += d * d;
        s->dot += x * y;
        s->a2 += x * x;
        s->b2 += y * y;
        s->abs_sum += fabs(d);
        if (fabs(d) > s->max_abs)
            s->max_abs = fabs(d);
        s->count++;
    }
}

static double acc_sqnr(const acc *s)
{
    if (s->err2 == 0)
        return s->count ? INFINITY : 0.0; /* identical (all zeros too): no noise at all */
    if (!isfinite(s->err2))
        return -200.0;
    if (s->ref2 == 0)
        return -200.0;
    return 10.0 * log10(s->ref2 / s->err2);
}

static double acc_cos(const acc *s)
{
    if (s->err2 == 0 && s->count)
        return 1.0; /* identical: exactly, not 1 - 2e-16 from the square roots */
    if (s->a2 == 0 && s->b2 == 0)
        return 1.0;
    if (s->a2 == 0 || s->b2 == 0)
        return 0.0;
    return s->dot / (sqrt(s->a2) * sqrt(s->b2));
}

/* float32 view of an output (float16 converted) in buf, or NULL; with
 * ints, integer and bool tensors too (model outputs: token ids, masks,
 * class indices compare as numbers) */
static const float *as_float_of(const hpcz_array *x, float **tmp, bool ints)
{
    if (x->dtype == HPCZ_DTYPE_FLOAT)
        return x->data;
    bool is_int = x->dtype == HPCZ_DTYPE_INT64 || x->dtype == HPCZ_DTYPE_INT32 ||
                  x->dtype == HPCZ_DTYPE_INT16 || x->dtype == HPCZ_DTYPE_INT8 ||
                  x->dtype == HPCZ_DTYPE_UINT8 || x->dtype == HPCZ_DTYPE_UINT16 ||
                  x->dtype == HPCZ_DTYPE_UINT32 || x->dtype == HPCZ_DTYPE_UINT64 ||
                  x->dtype == HPCZ_DTYPE_BOOL;
    if (x->dtype != HPCZ_DTYPE_FLOAT16 && x->dtype != HPCZ_DTYPE_DOUBLE && !(ints && is_int))
        return NULL;
    float *f = malloc((size_t)(x->numel ? x->numel : 1) * sizeof *f);
    if (!f)
        return NULL;
    for (int64_t i = 0; i < x->numel; i++) {
        switch (x->dtype) {
        case HPCZ_DTYPE_FLOAT16: f[i] = hpcz_f16_to_f32(((const uint16_t *)x->data)[i]); break;
        case HPCZ_DTYPE_DOUBLE: f[i] = (float)((const double *)x->data)[i]; break;
        case HPCZ_DTYPE_INT64: f[i] = (float)((const int64_t *)x->data)[i]; break;
        case HPCZ_DTYPE_UINT64: f[i] = (float)((const uint64_t *)x->data)[i]; break;
        case HPCZ_DTYPE_INT32: f[i] = (float)((const int32_t *)x->data)[i]; break;
        case HPCZ_DTYPE_UINT32: f[i] = (float)((const uint32_t *)x->data)[i]; break;
        case HPCZ_DTYPE_INT16: f[i] = ((const int16_t *)x->data)[i]; break;
        case HPCZ_DTYPE_UINT16: f[i] = ((const uint16_t *)x->data)[i]; break;
        case HPCZ_DTYPE_INT8: f[i] = ((const int8_t *)x->data)[i]; break;
        default: f[i] = ((const uint8_t *)x->data)[i]; break; /* uint8, bool */
        }
    }
    *tmp = f;
    return f;
}

static const float *as_float(const hpcz_array *x, float **tmp)
{
    return as_float_of(x, tmp, false);
}

/* ------------------------------------------------------------ per layer */

typedef struct captured {
    char *name;
    const hpcz_node *node;
    hpcz_array a;       /* float32 copy */
    size_t order;
} captured;

typedef struct layer_acc {
    char *name;         /* A's tensor */
    const char *op;
    size_t order;
    acc plain, dq;      /* B's tensor of the same name, and its DequantizeLinear output */
    char *plain_name, *dq_name;
} layer_acc;

typedef struct lctx {
    captured *cap;
    size_t n_cap, cap_cap;
    hpcz_valmap cap_index;  /* name -> captured index (key values) */
    hpcz_value *keys;
    layer_acc *lay;
    size_t n_lay, cap_lay;
    hpcz_valmap lay_index;
    size_t order;
    int failed;
} lctx;

static hpcz_value *mkkey(const char *name, int idx)
{
    hpcz_value *k = calloc(1, sizeof *k);
    if (k) {
        k->name = strdup(name);
        k->aux = idx;
    }
    return k;
}

static void on_a(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *x)
{
    lctx *c = ctx;
    if (!name || (x->dtype != HPCZ_DTYPE_FLOAT && x->dtype != HPCZ_DTYPE_FLOAT16))
        return;
    hpcz_value *k = hpcz_valmap_get(&c->cap_index, name);
    captured *cp;
    if (k) {
        cp = &c->cap[k->aux];
        hpcz_array_release(&cp->a);
    } else {
        if (!hpcz_grow((void **)&c->cap, &c->cap_cap, c->n_cap + 1, sizeof *c->cap)) {
            c->failed = 1;
            return;
        }
        cp = &c->cap[c->n_cap];
        memset(cp, 0, sizeof *cp);
        cp->name = strdup(name);
        cp->order = c->order++;
        hpcz_value *nk = mkkey(name, (int)c->n_cap);
        if (!nk || !cp->name || !hpcz_valmap_put(&c->cap_index, nk)) {
            c->failed = 1;
            return;
        }
        c->n_cap++;
    }
    cp->node = node;
    hpcz_error e;
    if (hpcz_array_alloc(&cp->a, HPCZ_DTYPE_FLOAT, x->ndim, x->dims, &e)) {
        c->failed = 1;
        return;
    }
    if (x->dtype == HPCZ_DTYPE_FLOAT) {
        memcpy(cp->a.data, x->data, (size_t)x->numel * sizeof(float));
    } else {
        const uint16_t *h = x->data;
        float *f = cp->a.data;
        for (int64_t i = 0; i < x->numel; i++)
            f[i] = hpcz_f16_to_f32(h[i]);
    }
}

static layer_acc *layer_for(lctx *c, const captured *cp)
{
    hpcz_value *k = hpcz_valmap_get(&c->lay_index, cp->name);
    if (k)
        return &c->lay[k->aux];
    if (!hpcz_grow((void **)&c->lay, &c->cap_lay, c->n_lay + 1, sizeof *c->lay)) {
        c->failed = 1;
        return NULL;
    }
    layer_acc *l = &c->lay[c->n_lay];
    memset(l, 0, sizeof *l);
    l->name = strdup(cp->name);
    l->op = cp->node ? cp->node->op_type : "";
    l->order = cp->order;
    hpcz_value *nk = mkkey(cp->name, (int)c->n_lay);
    if (!nk || !l->name || !hpcz_valmap_put(&c->lay_index, nk)) {
        c->failed = 1;
        return NULL;
    }
    c->n_lay++;
    return l;
}

static void on_b(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *x)
{
    (void)node;
    lctx *c = ctx;
    if (!name || (x->dtype != HPCZ_DTYPE_FLOAT && x->dtype != HPCZ_DTYPE_FLOAT16))
        return;
    /* "X_dequantized" (what consumers of X read in a QDQ model) or "X" */
    char base[512];
    bool dq = false;
    size_t nl = strlen(name);
    const char *suf = "_dequantized";
    size_t sl = strlen(suf);
    if (nl > sl && nl - sl < sizeof base && !strcmp(name + nl - sl, suf)) {
        memcpy(base, name, nl - sl);
        base[nl - sl] = 0;
        dq = true;
    } else if (nl < sizeof base) {
        memcpy(base, name, nl + 1);
    } else {
        return;
    }
    hpcz_value *k = hpcz_valmap_get(&c->cap_index, base);
    if (!k)
        return;
    captured *cp = &c->cap[k->aux];
    if (cp->a.numel != x->numel)
        return; /* shapes differ (pruned channels): not comparable element-wise */
    layer_acc *l = layer_for(c, cp);
    if (!l)
        return;
    float *tmp = NULL;
    const float *bf = as_float(x, &tmp);
    if (!bf)
        return;
    acc *dst = dq ? &l->dq : &l->plain;
    acc_add(dst, cp->a.data, bf, x->numel);
    char **nm = dq ? &l->dq_name : &l->plain_name;
    if (!*nm)
        *nm = strdup(name);
    free(tmp);
}

/* ------------------------------------------------------------ what was done */

/* The op behind a value, looking through QuantizeLinear/DequantizeLinear. */
hpcz_status hpcz_plan_map_inputs(const hpcz_plan *a, const hpcz_plan *b, int *b_in, hpcz_error *err)
{
    for (size_t i = 0; i < hpcz_plan_n_inputs(a); i++) {
        const hpcz_value *va = hpcz_plan_input(a, i);
        int k = hpcz_plan_input_index(b, va->name);
        if (k < 0)
            return hpcz_fail(err, HPCZ_ERR_INVALID,
                             "the models have different inputs: '%s' is not an input of the compressed model",
                             va->name);
        const hpcz_value *vb = hpcz_plan_input(b, (size_t)k);
        if (vb->dtype != va->dtype && !(va->dtype == HPCZ_DTYPE_FLOAT && vb->dtype == HPCZ_DTYPE_FLOAT16))
            return hpcz_fail(err, HPCZ_ERR_INVALID, "input '%s' is %s in one model and %s in the other",
                             va->name, hpcz_dtype_name(va->dtype), hpcz_dtype_name(vb->dtype));
        b_in[i] = k;
    }
    return HPCZ_OK;
}

hpcz_status hpcz_plan_feed_b(const hpcz_plan *b, const int *b_in, size_t n_in, const hpcz_array *ins,
                             hpcz_array *ins_b, hpcz_error *err)
{
    for (size_t i = 0; i < n_in; i++)
        ins_b[b_in[i]] = ins[i];
    for (size_t i = 0; i < n_in; i++) {
        if (hpcz_plan_input(b, (size_t)b_in[i])->dtype != HPCZ_DTYPE_FLOAT16 ||
            ins[i].dtype != HPCZ_DTYPE_FLOAT)
            continue;
        hpcz_array h;
        hpcz_status st = hpcz_array_alloc(&h, HPCZ_DTYPE_FLOAT16, ins[i].ndim, ins[i].dims, err);
        if (st)
            return st;
        const float *f = ins[i].data;
        uint16_t *hd = h.data;
        for (int64_t k = 0; k < h.numel; k++)
            hd[k] = hpcz_f32_to_f16(f[k]);
        ins_b[b_in[i]] = h;
    }
    return HPCZ_OK;
}

void hpcz_plan_fed_release(const int *b_in, size_t n_in, hpcz_array *ins, hpcz_array *ins_b)
{
    for (size_t i = 0; i < n_in; i++) {
        if (ins_b[b_in[i]].data != ins[i].data)
            hpcz_array_release(&ins_b[b_in[i]]);
        hpcz_array_release(&ins[i]);
    }
}

const hpcz_node *hpcz_op_behind_qdq(const hpcz_value *v)
{
    for (int hops = 0; v && v->producer && hops < 4; hops++) {
        const hpcz_node *p = v->producer;
        if (strcmp(p->op_type, "DequantizeLinear") && strcmp(p->op_type, "QuantizeLinear"))
            return p;
        v = p->n_inputs ? p->inputs[0] : NULL;
    }
    return v ? v->producer : NULL;
}

static bool has_weight(const hpcz_node *n)
{
    static const char *const ops[] = {"Conv", "ConvTranspose", "Gemm", "MatMul"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(n->op_type, ops[i]))
            return n->n_inputs > 1;
    return false;
}

static const char *describe(hpcz_model *a, hpcz_model *b, const char *name, char *buf, size_t cap)
{
    hpcz_value *vb = hpcz_graph_find_value(b->graph, name);
    hpcz_value *va = hpcz_graph_find_value(a->graph, name);
    const hpcz_node *pb = hpcz_op_behind_qdq(vb);
    const hpcz_node *pa = va ? va->producer : NULL;
    char dqname[600];
    snprintf(dqname, sizeof dqname, "%s_dequantized", name);
    bool act_q = hpcz_graph_find_value(b->graph, dqname) != NULL ||
                 (vb && vb->producer && !strcmp(vb->producer->op_type, "DequantizeLinear"));
    const char *act = act_q ? ", int8 activations" : "";
    if (pb && has_weight(pb) && pb->inputs[1]) {
        const hpcz_value *w = pb->inputs[1];
        hpcz_tensor *wa = pa && has_weight(pa) ? hpcz_value_const(pa->inputs[1]) : NULL;
        if (w->producer && !strcmp(w->producer->op_type, "DequantizeLinear") && w->producer->inputs[0]) {
            hpcz_tensor *qt = hpcz_value_const(w->producer->inputs[0]);
            if (qt) {
                snprintf(buf, cap, "%s weights%s", hpcz_dtype_name(qt->dtype), act);
                return buf;
            }
        }
        hpcz_tensor *wt = hpcz_value_const(w);
        if (wt && wt->dtype == HPCZ_DTYPE_FLOAT16)
            return "fp16";
        if (wt && wt->dtype == HPCZ_DTYPE_FLOAT) {
            if (wa && wa->numel != wt->numel) {
                snprintf(buf, cap, "channels pruned (%lld -> %lld weights)", (long long)wa->numel,
                         (long long)wt->numel);
                return buf;
            }
            hpcz_error e;
            const float *d = hpcz_tensor_data(wt, &e);
            int64_t z = 0;
            for (int64_t i = 0; d && i < wt->numel; i++)
                z += d[i] == 0.0f;
            if (z > 0) {
                snprintf(buf, cap, "pruned %.0f%%%s", 100.0 * (double)z / (double)wt->numel, act);
                return buf;
            }
        }
    }
    if (vb && vb->dtype == HPCZ_DTYPE_FLOAT16)
        return "fp16";
    if (act_q)
        return "int8 activations";
    return "kept float";
}

/* ------------------------------------------------------------ main */

typedef struct out_acc {
    acc a;
    double cos_sum, cos_sum2, cos_worst; /* per sample */
    uint64_t cos_n;
    uint64_t top1, top5, samples, correct_a, correct_b;
    double d_sum, d_sq; /* paired per-sample differences for the CI */
    bool scores;
} out_acc;

static int cmp_layers(const void *x, const void *y)
{
    const hpcz_layer_metrics *a = x, *b = y;
    if (a->sqnr_db != b->sqnr_db)
        return a->sqnr_db < b->sqnr_db ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static void topk(const float *row, int64_t c, int k, int64_t *idx)
{
    for (int j = 0; j < k; j++)
        idx[j] = -1;
    for (int64_t i = 0; i < c; i++) {
        for (int j = 0; j < k; j++) {
            if (idx[j] < 0 || row[i] > row[idx[j]]) {
                for (int t = k - 1; t > j; t--)
                    idx[t] = idx[t - 1];
                idx[j] = i;
                break;
            }
        }
    }
}

hpcz_status hpcz_compare(hpcz_model *ma, hpcz_model *mb, const char *data, const hpcz_compare_opts *o,
                         hpcz_compare_result **out, hpcz_error *err)
{
    hpcz_status st = HPCZ_OK;
    hpcz_compare_opts dflt = {0};
    if (!o)
        o = &dflt;
    lctx lc = {0};
    hpcz_plan_opts pa = {0}, pb = {0};
    pa.threads = pb.threads = o->threads;
    if (o->per_layer) {
        pa.observer = on_a;
        pa.observer_ctx = &lc;
        pb.observer = on_b;
        pb.observer_ctx = &lc;
    }
    hpcz_plan *plan_a = hpcz_plan_new(ma, &pa, err);
    if (!plan_a) {
        hpcz_error_prefix(err, "original model");
        return err->status;
    }
    hpcz_plan *plan_b = hpcz_plan_new(mb, &pb, err);
    if (!plan_b) {
        hpcz_plan_free(plan_a);
        hpcz_error_prefix(err, "compressed model");
        return err->status;
    }
    size_t n_in = hpcz_plan_n_inputs(plan_a), n_out = hpcz_plan_n_outputs(plan_a);
    int *b_in = NULL;
    hpcz_dataset *d = NULL;
    hpcz_array *ins = NULL, *ins_b = NULL, *oa = NULL, *ob = NULL;
    out_acc *oacc = NULL;
    int *b_out = NULL;
    /* inputs: same names; B may take float16 */
    if (hpcz_plan_n_inputs(plan_b) != n_in) {
        st = hpcz_fail(err, HPCZ_ERR_INVALID, "the models have different inputs (%zu and %zu)", n_in,
                       hpcz_plan_n_inputs(plan_b));
        goto done;
    }
    b_in = calloc(n_in ? n_in : 1, sizeof *b_in);
    b_out = calloc(n_out ? n_out : 1, sizeof *b_out);
    if (!b_in || !b_out) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hpcz_plan_map_inputs(plan_a, plan_b, b_in, err)))
        goto done;
    for (size_t i = 0; i < n_out; i++) {
        const hpcz_value *va = hpcz_plan_output(plan_a, i);
        b_out[i] = -1;
        for (size_t k = 0; k < hpcz_plan_n_outputs(plan_b); k++)
            if (!strcmp(hpcz_plan_output(plan_b, k)->name, va->name))
                b_out[i] = (int)k;
        if (b_out[i] < 0) {
            st = hpcz_fail(err, HPCZ_ERR_INVALID, "output '%s' is missing from the compressed model",
                           va->name);
            goto done;
        }
    }
    d = hpcz_dataset_open(data, plan_a, o->max_samples, err);
    if (!d) {
        st = err->status;
        goto done;
    }
    size_t total = hpcz_dataset_size(d);
    if (o->labels && o->n_labels != total) {
        st = hpcz_fail(err, HPCZ_ERR_INVALID, "the labels hold %zu entries for %zu samples",
                       o->n_labels, total);
        goto done;
    }
    size_t n_out_b = hpcz_plan_n_outputs(plan_b);
    ins = calloc(n_in ? n_in : 1, sizeof *ins);
    ins_b = calloc(n_in ? n_in : 1, sizeof *ins_b);
    oa = calloc(n_out ? n_out : 1, sizeof *oa);
    ob = calloc(n_out_b ? n_out_b : 1, sizeof *ob);
    oacc = calloc(n_out ? n_out : 1, sizeof *oacc);
    if (!ins || !ins_b || !oa || !ob || !oacc) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t bs = hpcz_dataset_batch_size(d);
    if (o->per_layer && bs > 8 && bs == 32)
        bs = 8; /* one batch of A's activations is held for the per-layer comparison */
    if (o->first_sample >= total) {
        st = hpcz_fail(err, HPCZ_ERR_INVALID, "the data holds %zu samples: none from sample %zu on", total,
                       o->first_sample);
        goto done;
    }
    for (size_t start = o->first_sample; start < total && !st; start += bs) {
        size_t n = total - start < bs ? total - start : bs;
        if ((st = hpcz_dataset_batch(d, start, n, ins, err)))
            break;
        st = hpcz_plan_feed_b(plan_b, b_in, n_in, ins, ins_b, err);
        if (!st)
            st = hpcz_plan_run(plan_a, ins, oa, err);
        if (!st && (st = hpcz_plan_run(plan_b, ins_b, ob, err)))
            hpcz_error_prefix(err, "compressed model");
        if (!st && lc.failed)
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n_out && !st; i++) {
            hpcz_array *x = &oa[i], *y = &ob[b_out[i]];
            float *tx = NULL, *ty = NULL;
            const float *fx = as_float_of(x, &tx, true), *fy = as_float_of(y, &ty, true);
            if (fx && fy && x->numel == y->numel) {
                out_acc *A = &oacc[i];
                acc_add(&A->a, fx, fy, x->numel);
                /* cosine per sample (an embedding's row, a map): the worst and
                 * the mean; the whole batch as one sample without a batch axis */
                size_t rows = x->ndim >= 1 && (size_t)x->dims[0] == n && n ? n : 1;
                int64_t per = x->numel / (int64_t)rows;
                for (size_t r = 0; r < rows && per > 0; r++) {
                    acc one = {0};
                    acc_add(&one, fx + r * (size_t)per, fy + r * (size_t)per, per);
                    double cs = isfinite(one.err2) ? acc_cos(&one) : 0.0;
                    if (!A->cos_n || cs < A->cos_worst)
                        A->cos_worst = cs;
                    A->cos_sum += cs;
                    A->cos_sum2 += cs * cs;
                    A->cos_n++;
                }
                bool float_out = x->dtype == HPCZ_DTYPE_FLOAT || x->dtype == HPCZ_DTYPE_FLOAT16 ||
                                 x->dtype == HPCZ_DTYPE_DOUBLE;
                if (float_out && x->ndim == 2 && x->dims[1] >= 2 && (size_t)x->dims[0] == n) {
                    A->scores = true;
                    int64_t c = x->dims[1];
                    int k = c >= 5 ? 5 : (int)c;
                    for (size_t r = 0; r < n; r++) {
                        int64_t ia[5], ib[5];
                        topk(fx + r * (size_t)c, c, k, ia);
                        topk(fy + r * (size_t)c, c, k, ib);
                        A->top1 += ia[0] == ib[0];
                        bool in5 = false;
                        for (int j = 0; j < k; j++)
                            in5 |= ib[j] == ia[0];
                        A->top5 += in5;
                        A->samples++;
                        if (o->labels) {
                            int64_t lab = o->labels[start + r];
                            if (lab < 0 || lab >= c) {
                                /* a label no class can match would count as a miss
                                 * for both models: an accuracy of nothing */
                                if (!st)
                                    st = hpcz_fail(err, HPCZ_ERR_INVALID,
                                                   "label %lld of sample %zu is not a class of output "
                                                   "'%s' (0 to %lld)",
                                                   (long long)lab, start + r,
                                                   hpcz_plan_output(plan_a, i)->name, (long long)(c - 1));
                                break;
                            }
                            int ca = ia[0] == lab, cb = ib[0] == lab;
                            A->correct_a += (uint64_t)ca;
                            A->correct_b += (uint64_t)cb;
                            double dd = ca - cb;
                            A->d_sum += dd;
                            A->d_sq += dd * dd;
                        }
                    }
                }
            } else if (!fx || !fy) {
                /* integer outputs: exact match share */
                oacc[i].a.count += (uint64_t)x->numel;
            }
            free(tx);
            free(ty);
        }
        hpcz_plan_fed_release(b_in, n_in, ins, ins_b);
        for (size_t i = 0; i < n_out; i++)
            hpcz_array_release(&oa[i]);
        for (size_t i = 0; i < n_out_b; i++)
            hpcz_array_release(&ob[i]);
        if (o->progress)
            o->progress(o->progress_ctx, start + n, total);
    }
    if (st)
        goto done;
    hpcz_compare_result *r = calloc(1, sizeof *r);
    if (!r) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    r->samples = total - o->first_sample;
    r->n_outputs = n_out;
    r->outputs = calloc(n_out ? n_out : 1, sizeof *r->outputs);
    r->layers = calloc(lc.n_lay ? lc.n_lay : 1, sizeof *r->layers);
    hpcz_arena *ar = calloc(1, sizeof *ar);
    r->storage = ar;
    if (!r->outputs || !r->layers || !ar) {
        hpcz_compare_result_free(r);
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_out; i++) {
        const char *nm = hpcz_plan_output(plan_a, i)->name;
        hpcz_output_metrics *m = &r->outputs[i];
        out_acc *A = &oacc[i];
        m->name = hpcz_arena_strndup(ar, nm, strlen(nm));
        m->count = A->a.count;
        m->max_abs = A->a.max_abs;
        m->mean_abs = A->a.count ? A->a.abs_sum / (double)A->a.count : 0;
        m->rmse = A->a.count ? sqrt(A->a.err2 / (double)A->a.count) : 0;
        m->cosine = acc_cos(&A->a);
        m->sqnr_db = acc_sqnr(&A->a);
        m->cos_worst = A->cos_n ? A->cos_worst : m->cosine;
        m->cos_mean = A->cos_n ? A->cos_sum / (double)A->cos_n : m->cosine;
        m->cos_n = A->cos_n;
        if (A->cos_n > 1) {
            double var = (A->cos_sum2 - A->cos_sum * m->cos_mean) / (double)(A->cos_n - 1);
            m->cos_sd = var > 0 ? sqrt(var) : 0;
        }
        m->is_scores = A->scores;
        m->samples = A->samples;
        if (A->samples) {
            m->top1_agreement = (double)A->top1 / (double)A->samples;
            m->top5_agreement = (double)A->top5 / (double)A->samples;
        }
        if (o->labels && A->samples) {
            double ns = (double)A->samples;
            m->has_labels = 1;
            m->acc_a = (double)A->correct_a / ns;
            m->acc_b = (double)A->correct_b / ns;
            double mean = A->d_sum / ns;
            double var = ns > 1 ? (A->d_sq - ns * mean * mean) / (ns - 1) : 0;
            m->drop_points = 100.0 * mean;
            m->drop_ci95 = 100.0 * 1.96 * sqrt(var > 0 ? var : 0) / sqrt(ns);
        }
    }
    size_t nl = 0;
    for (size_t i = 0; i < lc.n_lay; i++) {
        layer_acc *l = &lc.lay[i];
        const acc *use = l->dq.count ? &l->dq : &l->plain;
        const char *mn = l->dq.count ? l->dq_name : l->plain_name;
        hpcz_layer_metrics *m = &r->layers[nl++];
        m->name = hpcz_arena_strndup(ar, l->name, strlen(l->name));
        m->op_type = hpcz_arena_strndup(ar, l->op, strlen(l->op));
        m->matched = mn ? hpcz_arena_strndup(ar, mn, strlen(mn)) : m->name;
        char wb[128];
        const char *w = describe(ma, mb, l->name, wb, sizeof wb);
        m->what = hpcz_arena_strndup(ar, w, strlen(w));
        m->sqnr_db = acc_sqnr(use);
        m->cosine = acc_cos(use);
        m->max_abs = use->max_abs;
        m->count = use->count;
        m->order = l->order;
    }
    r->n_layers = nl;
    qsort(r->layers, nl, sizeof *r->layers, cmp_layers);
    /* A's float tensors nothing in B matched */
    for (size_t i = 0; i < lc.n_cap; i++)
        if (!hpcz_valmap_get(&lc.lay_index, lc.cap[i].name)) {
            char **nu = realloc(r->unmatched, (r->n_unmatched + 1) * sizeof *nu);
            if (!nu)
                break;
            r->unmatched = nu;
            r->unmatched[r->n_unmatched++] = hpcz_arena_strndup(ar, lc.cap[i].name, strlen(lc.cap[i].name));
        }
    *out = r;
done:
    for (size_t i = 0; i < lc.n_cap; i++) {
        free(lc.cap[i].name);
        hpcz_array_release(&lc.cap[i].a);
    }
    free(lc.cap);
    for (size_t i = 0; i < lc.n_lay; i++) {
        free(lc.lay[i].name);
        free(lc.lay[i].plain_name);
        free(lc.lay[i].dq_name);
    }
    free(lc.lay);
    for (size_t i = 0; i < lc.cap_index.cap; i++)
        if (lc.cap_index.slots && lc.cap_index.slots[i]) {
            free((char *)lc.cap_index.slots[i]->name);
            free(lc.cap_index.slots[i]);
        }
    for (size_t i = 0; i < lc.lay_index.cap; i++)
        if (lc.lay_index.slots && lc.lay_index.slots[i]) {
            free((char *)lc.lay_index.slots[i]->name);
            free(lc.lay_index.slots[i]);
        }
    hpcz_valmap_release(&lc.cap_index);
    hpcz_valmap_release(&lc.lay_index);
    free(b_in);
    free(b_out);
    free(ins);
    free(ins_b);
    free(oa);
    free(ob);
    free(oacc);
    hpcz_dataset_free(d);
    hpcz_plan_free(plan_a);
    hpcz_plan_free(plan_b);
    return st;
}

void hpcz_compare_result_free(hpcz_compare_result *r)
{
    if (!r)
        return;
    if (r->storage) {
        hpcz_arena_release(r->storage);
        free(r->storage);
    }
    free(r->outputs);
    free(r->layers);
    free(r->unmatched);
    free(r);
}
