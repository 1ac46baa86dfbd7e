/*
 * summary.c - what is in a model: op histogram, parameters, sparsity.
 */
#include "internal.h"

typedef struct collect {
    hpcz_model_summary *s;
    bool sizes_only;
    size_t cap_ops, cap_dtypes, cap_weights;
    hpcz_error *err;
    hpcz_status st;
} collect;

static int64_t count_zeros(hpcz_tensor *t, hpcz_error *err)
{
    const uint8_t *d = hpcz_tensor_data(t, err);
    if (!d)
        return t->numel == 0 ? 0 : -1;
    int bits = hpcz_dtype_bits(t->dtype);
    int64_t z = 0, n = t->numel;
    switch (t->dtype) {
    case HPCZ_DTYPE_FLOAT: {
        const uint32_t *p = (const uint32_t *)d;
        for (int64_t i = 0; i < n; i++)
            z += (p[i] & 0x7fffffffu) == 0;
        return z;
    }
    case HPCZ_DTYPE_DOUBLE: {
        const uint64_t *p = (const uint64_t *)d;
        for (int64_t i = 0; i < n; i++)
            z += (p[i] & 0x7fffffffffffffffull) == 0;
        return z;
    }
    case HPCZ_DTYPE_FLOAT16:
    case HPCZ_DTYPE_BFLOAT16: {
        const uint16_t *p = (const uint16_t *)d;
        for (int64_t i = 0; i < n; i++)
            z += (p[i] & 0x7fffu) == 0;
        return z;
    }
    default:
        break;
    }
    if (bits == 4) {
        for (int64_t i = 0; i < n; i++)
            z += ((d[i / 2] >> (4 * (i & 1))) & 0xf) == 0;
        return z;
    }
    if (bits == 0 || bits % 8)
        return -1;
    size_t es = (size_t)bits / 8;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *e = d + (size_t)i * es;
        bool zero = true;
        for (size_t k = 0; k < es && zero; k++)
            zero = e[k] == 0;
        z += zero;
    }
    return z;
}

/* Weights stored packed in uint8 bytes of 8 / bits codes each: the B of a
 * com.microsoft::MatMulNBits, the table of a GatherBlockQuantized. Found once
 * per graph and looked up by tensor address (a scan of the nodes per weight
 * was quadratic). */
typedef struct packed {
    const hpcz_tensor *t;
    int bits;
} packed;

static int cmp_packed(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const packed *)a)->t, y = (uintptr_t)((const packed *)b)->t;
    return x < y ? -1 : x > y;
}

/* The packed weights of g, sorted by address (*n of them; NULL when none or
 * out of memory: then counted as plain bytes). */
static packed *find_packed(const hpcz_graph *g, size_t *n)
{
    packed *p = NULL;
    size_t cap = 0;
    *n = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *nd = g->nodes[i];
        if (!nd->domain || strcmp(nd->domain, "com.microsoft"))
            continue;
        size_t w = !strcmp(nd->op_type, "MatMulNBits") ? 1 : !strcmp(nd->op_type, "GatherBlockQuantized") ? 0 : 9;
        int64_t bits = hpcz_node_attr_int(nd, "bits", 4);
        if (w >= nd->n_inputs || !nd->inputs[w] || !nd->inputs[w]->init ||
            nd->inputs[w]->init->dtype != HPCZ_DTYPE_UINT8 || (bits != 2 && bits != 4))
            continue;
        if (!hpcz_grow((void **)&p, &cap, *n + 1, sizeof *p)) {
            free(p);
            *n = 0;
            return NULL;
        }
        p[(*n)++] = (packed){nd->inputs[w]->init, (int)bits};
    }
    if (p)
        qsort(p, *n, sizeof *p, cmp_packed);
    return p;
}

static int packed_bits(const packed *p, size_t n, const hpcz_tensor *t)
{
    packed key = {t, 0};
    const packed *f = n ? bsearch(&key, p, n, sizeof *p, cmp_packed) : NULL;
    return f ? f->bits : 0;
}

static void add_weight(collect *c, hpcz_tensor *t, const char *name, const char *source,
                       const hpcz_graph *g, int bits)
{
    hpcz_model_summary *s = c->s;
    if (!hpcz_grow((void **)&s->weights, &c->cap_weights, s->n_weights + 1, sizeof *s->weights)) {
        c->st = hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        return;
    }
    hpcz_weight_stat *w = &s->weights[s->n_weights++];
    w->tensor = t;
    w->name = name ? name : "";
    w->source = source;
    w->graph = g->parent ? (g->name ? g->name : "") : NULL;
    w->bytes = hpcz_dtype_nbytes(t->dtype, t->numel);
    hpcz_error e2;
    w->zeros = c->sizes_only ? -1 : count_zeros(t, &e2);
    /* packed weights: 8 / bits weights per byte, counted as 4- (2-) bit weights */
    int dtype = bits == 4 ? HPCZ_DTYPE_UINT4 : t->dtype;
    uint64_t params = (uint64_t)t->numel * (bits ? 8 / (unsigned)bits : 1);
    s->params += params;
    s->param_bytes += w->bytes;
    if (w->zeros > 0)
        s->zeros += w->zeros;
    hpcz_dtype_stat *ds = NULL;
    for (size_t i = 0; i < s->n_dtypes; i++)
        if (s->dtypes[i].dtype == dtype)
            ds = &s->dtypes[i];
    if (!ds) {
        if (!hpcz_grow((void **)&s->dtypes, &c->cap_dtypes, s->n_dtypes + 1, sizeof *s->dtypes)) {
            c->st = hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
            return;
        }
        ds = &s->dtypes[s->n_dtypes++];
        memset(ds, 0, sizeof *ds);
        ds->dtype = dtype;
    }
    ds->tensors++;
    ds->params += params;
    ds->bytes += w->bytes;
}

static int visit(hpcz_graph *g, void *ctx)
{
    collect *c = ctx;
    hpcz_model_summary *s = c->s;
    if (g->parent)
        s->n_subgraphs++;
    else
        s->n_nodes = g->n_nodes;
    s->n_nodes_total += g->n_nodes;
    size_t np;
    packed *pk = find_packed(g, &np);
    for (size_t i = 0; i < g->n_inits; i++)
        add_weight(c, g->inits[i], g->inits[i]->name, "initializer", g, packed_bits(pk, np, g->inits[i]));
    free(pk);
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        const char *dom = n->domain && strcmp(n->domain, "ai.onnx") ? n->domain : "";
        hpcz_op_count *oc = NULL;
        for (size_t k = 0; k < s->n_ops && !oc; k++)
            if (strcmp(s->ops[k].op_type, n->op_type) == 0 && strcmp(s->ops[k].domain, dom) == 0)
                oc = &s->ops[k];
        if (!oc) {
            if (!hpcz_grow((void **)&s->ops, &c->cap_ops, s->n_ops + 1, sizeof *s->ops)) {
                c->st = hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
                return 1;
            }
            oc = &s->ops[s->n_ops++];
            oc->op_type = n->op_type;
            oc->domain = dom;
            oc->count = 0;
        }
        oc->count++;
        if (strcmp(n->op_type, "Constant") == 0 && !*dom) {
            const hpcz_attr *a = hpcz_node_attr(n, "value");
            if (a && a->type == HPCZ_ATTR_TENSOR && a->t) {
                /* named after the node's output: that is how the graph refers to it */
                const char *nm = n->n_outputs && n->outputs[0] ? n->outputs[0]->name : a->t->name;
                add_weight(c, a->t, nm, "constant", g, 0);
            }
        }
    }
    return c->st != HPCZ_OK;
}

static int cmp_ops(const void *a, const void *b)
{
    const hpcz_op_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    int r = strcmp(x->op_type, y->op_type);
    return r ? r : strcmp(x->domain, y->domain);
}

static int cmp_dtypes(const void *a, const void *b)
{
    const hpcz_dtype_stat *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x->dtype - y->dtype;
}

static int cmp_weights(const void *a, const void *b)
{
    const hpcz_weight_stat *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return strcmp(x->name, y->name);
}

static hpcz_status summarize(hpcz_model *m, hpcz_model_summary *out, bool sizes_only, hpcz_error *err)
{
    memset(out, 0, sizeof *out);
    collect c = {.s = out, .sizes_only = sizes_only, .err = err};
    hpcz_model_foreach_graph(m, visit, &c);
    if (c.st) {
        hpcz_model_summary_release(out);
        return c.st;
    }
    if (out->n_ops)
        qsort(out->ops, out->n_ops, sizeof *out->ops, cmp_ops);
    if (out->n_dtypes)
        qsort(out->dtypes, out->n_dtypes, sizeof *out->dtypes, cmp_dtypes);
    if (out->n_weights)
        qsort(out->weights, out->n_weights, sizeof *out->weights, cmp_weights);
    return HPCZ_OK;
}

hpcz_status hpcz_model_summarize(hpcz_model *m, hpcz_model_summary *out, hpcz_error *err)
{
    return summarize(m, out, false, err);
}

hpcz_status hpcz_model_summarize_sizes(hpcz_model *m, hpcz_model_summary *out, hpcz_error *err)
{
    return summarize(m, out, true, err);
}

void hpcz_model_summary_release(hpcz_model_summary *s)
{
    free(s->ops);
    free(s->dtypes);
    free(s->weights);
    memset(s, 0, sizeof *s);
}
