/*
 * util.c - helpers shared by passes.
 */
#include "passes.h"

#include <math.h>
#include <stdio.h>

hpcz_tensor *hpcz_value_const(const hpcz_value *v)
{
    if (!v)
        return NULL;
    if (v->init)
        return v->init;
    const hpcz_node *p = v->producer;
    if (p && !strcmp(p->op_type, "Constant") && (!p->domain || !*p->domain)) {
        const hpcz_attr *a = hpcz_node_attr(p, "value");
        if (a && a->type == HPCZ_ATTR_TENSOR)
            return a->t;
    }
    return NULL;
}

static void zero_aux(hpcz_graph *g)
{
    for (size_t i = 0; i < g->values->cap; i++)
        if (g->values->slots[i])
            g->values->slots[i]->aux = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j])
                n->inputs[j]->aux = 0;
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                zero_aux(n->attrs[a].g);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    zero_aux(n->attrs[a].graphs[k]);
        }
    }
}

static void count(hpcz_graph *g)
{
    for (size_t i = 0; i < g->n_outputs; i++)
        g->outputs[i]->aux++;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j])
                n->inputs[j]->aux++;
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                count(n->attrs[a].g);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    count(n->attrs[a].graphs[k]);
        }
    }
}

void hpcz_count_uses(hpcz_graph *g)
{
    zero_aux(g);
    count(g);
}

bool hpcz_bypass_node(hpcz_graph *g, hpcz_node *n, hpcz_value *in, hpcz_value *out)
{
    if (!in || !out || in == out)
        return false;
    if (!out->is_output) {
        int uses = out->aux;
        hpcz_graph_replace_uses(g, out, in);
        in->aux += uses - 1;
        out->aux = 0;
        n->aux = -1;
        return true;
    }
    /* out names a graph output: keep the name by renaming in's producer */
    hpcz_node *p = in->producer;
    if (!p || p->graph != g || in->is_output || in->is_input || in->init || in->aux != 1)
        return false;
    for (size_t j = 0; j < p->n_outputs; j++)
        if (p->outputs[j] == in) {
            p->outputs[j] = out;
            out->producer = p;
        }
    if (out->dtype == HPCZ_DTYPE_UNDEFINED)
        out->dtype = in->dtype;
    in->producer = NULL;
    in->aux = 0;
    n->aux = -1;
    return true;
}

const char *hpcz_unique_name(hpcz_graph *g, const char *base, const char *suffix)
{
    /* Sized from the names: a fixed buffer cut long names short, so the
     * numbered retries all looked alike and the loop never ended. */
    size_t need = strlen(base) + strlen(suffix) + 24;
    char *buf = malloc(need);
    if (!buf)
        return NULL;
    snprintf(buf, need, "%s_%s", base, suffix);
    for (unsigned long long k = 2; hpcz_graph_find_value(g, buf); k++)
        snprintf(buf, need, "%s_%s_%llu", base, suffix, k);
    const char *r = hpcz_model_strdup(g->model, buf);
    free(buf);
    return r;
}

hpcz_value *hpcz_add_init_value(hpcz_graph *g, hpcz_tensor *t, hpcz_error *err)
{
    if (hpcz_graph_add_initializer(g, t, err))
        return NULL;
    return hpcz_graph_find_value(g, t->name);
}

hpcz_tensor *hpcz_new_float_init(hpcz_graph *g, const char *name, int ndim, const int64_t *dims,
                                 hpcz_error *err)
{
    hpcz_tensor *t = hpcz_tensor_new(g->model, name, HPCZ_DTYPE_FLOAT, ndim, dims);
    if (!t || !hpcz_tensor_alloc(t)) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return hpcz_add_init_value(g, t, err) ? t : NULL;
}

static size_t ptr_hash(const void *p, size_t cap)
{
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (cap - 1);
}

int hpcz_ptrset_add(hpcz_ptrset *s, const void *p)
{
    if (2 * (s->n + 1) > s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 64;
        const void **nk = calloc(nc, sizeof *nk);
        if (!nk)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->k[i]) {
                size_t j = ptr_hash(s->k[i], nc);
                while (nk[j])
                    j = (j + 1) & (nc - 1);
                nk[j] = s->k[i];
            }
        free(s->k);
        s->k = nk;
        s->cap = nc;
    }
    size_t j = ptr_hash(p, s->cap);
    while (s->k[j] && s->k[j] != p)
        j = (j + 1) & (s->cap - 1);
    if (s->k[j])
        return 0;
    s->k[j] = p;
    s->n++;
    return 1;
}

bool hpcz_ptrset_has(const hpcz_ptrset *s, const void *p)
{
    if (!s->cap)
        return false;
    size_t j = ptr_hash(p, s->cap);
    while (s->k[j] && s->k[j] != p)
        j = (j + 1) & (s->cap - 1);
    return s->k[j] != NULL;
}

void hpcz_ptrset_free(hpcz_ptrset *s)
{
    free(s->k);
    memset(s, 0, sizeof *s);
}

typedef struct hpcz_uses {
    const hpcz_value **key;
    size_t *count;
    size_t cap, depth; /* cap a power of two */
} hpcz_uses;

static size_t uses_slot(const hpcz_uses *u, const hpcz_value *v)
{
    size_t i = ptr_hash(v, u->cap);
    while (u->key[i] && u->key[i] != v)
        i = (i + 1) & (u->cap - 1);
    return i;
}

static void uses_count_graph(hpcz_uses *u, const hpcz_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j]) {
                size_t s = uses_slot(u, n->inputs[j]);
                u->key[s] = n->inputs[j];
                u->count[s]++;
            }
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                uses_count_graph(u, n->attrs[a].g);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    if (n->attrs[a].graphs[k])
                        uses_count_graph(u, n->attrs[a].graphs[k]);
        }
    }
}

static size_t uses_inputs(const hpcz_graph *g)
{
    size_t t = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        t += n->n_inputs;
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                t += uses_inputs(n->attrs[a].g);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    if (n->attrs[a].graphs[k])
                        t += uses_inputs(n->attrs[a].graphs[k]);
        }
    }
    return t;
}

hpcz_status hpcz_uses_begin(hpcz_model *m, hpcz_error *err)
{
    if (m->priv->uses) {
        m->priv->uses->depth++;
        return HPCZ_OK;
    }
    hpcz_uses *u = calloc(1, sizeof *u);
    size_t need = 2 * uses_inputs(m->graph) + 64; /* room for the copies made later */
    size_t cap = 64;
    while (cap < 2 * need)
        cap <<= 1;
    if (u) {
        u->cap = cap;
        u->key = calloc(cap, sizeof *u->key);
        u->count = calloc(cap, sizeof *u->count);
    }
    if (!u || !u->key || !u->count) {
        if (u) {
            free(u->key);
            free(u->count);
        }
        free(u);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    u->depth = 1;
    uses_count_graph(u, m->graph);
    m->priv->uses = u;
    return HPCZ_OK;
}

void hpcz_uses_end(hpcz_model *m)
{
    hpcz_uses *u = m->priv->uses;
    if (!u || --u->depth)
        return;
    free(u->key);
    free(u->count);
    free(u);
    m->priv->uses = NULL;
}

/* readers of v: from the held counts, else by scanning the model */
static size_t reader_count(hpcz_graph *top, const hpcz_value *v)
{
    hpcz_uses *u = top->model->priv->uses;
    if (!u)
        return hpcz_graph_count_uses(top, v);
    size_t s = uses_slot(u, v);
    return u->key[s] ? u->count[s] : 0;
}

/* one reader moved from v to nv (a fresh copy) */
static void reader_moved(hpcz_graph *top, const hpcz_value *v, const hpcz_value *nv)
{
    hpcz_uses *u = top->model->priv->uses;
    if (!u)
        return;
    size_t s = uses_slot(u, v);
    if (u->key[s] && u->count[s])
        u->count[s]--;
    /* room: the table holds 4x the reads counted at begin, and a reader moves
     * to a copy at most once (the copy has one reader, so it is not shared) */
    s = uses_slot(u, nv);
    u->key[s] = nv;
    u->count[s]++;
}

hpcz_tensor *hpcz_writable_weight(hpcz_graph *g, hpcz_node *user, size_t idx, hpcz_error *err)
{
    hpcz_value *v = user->inputs[idx];
    hpcz_tensor *t = hpcz_value_const(v);
    if (!t) {
        hpcz_fail(err, HPCZ_ERR_INVALID, "input '%s' is not constant", v ? v->name : "");
        return NULL;
    }
    const void *src = hpcz_tensor_data(t, err);
    if (!src && t->numel)
        return NULL;
    size_t nb = hpcz_dtype_nbytes(t->dtype, t->numel);
    hpcz_graph *top = g;
    while (top->parent)
        top = top->parent;
    bool shared = v->is_output || v->is_input || reader_count(top, v) > 1;
    if (shared) {
        /* another node reads it: give this node its own copy */
        const char *name = hpcz_unique_name(g, v->name, "copy");
        hpcz_tensor *c = hpcz_tensor_new(g->model, name, t->dtype, t->ndim, t->dims);
        void *d = c ? hpcz_tensor_alloc(c) : NULL;
        if (!d) {
            hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            return NULL;
        }
        if (nb)
            memcpy(d, src, nb);
        hpcz_value *nv = hpcz_add_init_value(g, c, err);
        if (!nv)
            return NULL;
        user->inputs[idx] = nv;
        reader_moved(top, v, nv);
        return c;
    }
    if (!t->owns_data) {
        /* borrowed from the file (possibly a read-only mmap): own a copy */
        void *d = malloc(nb ? nb : 1);
        if (!d) {
            hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            return NULL;
        }
        if (nb)
            memcpy(d, src, nb);
        hpcz_tensor_set_data(t, d, nb, 1);
    }
    t->dirty = 1;
    return t;
}

hpcz_value *hpcz_new_const(hpcz_graph *g, const char *base, int dtype, int ndim,
                           const int64_t *dims, const void *data, hpcz_error *err)
{
    const char *name = hpcz_unique_name(g, base, "const");
    hpcz_tensor *t = hpcz_tensor_new(g->model, name, dtype, ndim, dims);
    void *d = t ? hpcz_tensor_alloc(t) : NULL;
    if (!d) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t nb = hpcz_dtype_nbytes(dtype, t->numel);
    if (nb && data)
        memcpy(d, data, nb);
    return hpcz_add_init_value(g, t, err);
}

bool hpcz_node_set_input(hpcz_node *n, size_t idx, hpcz_value *v)
{
    if (idx >= n->n_inputs) {
        hpcz_value **ni = hpcz_model_alloc(n->graph->model, (idx + 1) * sizeof *ni);
        if (!ni)
            return false;
        for (size_t i = 0; i < n->n_inputs; i++)
            ni[i] = n->inputs[i];
        n->inputs = ni;
        n->n_inputs = idx + 1;
    }
    n->inputs[idx] = v;
    return true;
}

void hpcz_node_remove_attr(hpcz_node *n, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name))
            n->attrs[k++] = n->attrs[i];
    n->n_attrs = k;
}

hpcz_attr *hpcz_node_add_attr(hpcz_node *n, const char *name, hpcz_attr_type type)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) {
            hpcz_attr *a = &n->attrs[i];
            memset(a, 0, sizeof *a);
            a->name = hpcz_model_strdup(n->graph->model, name);
            a->type = type;
            return a;
        }
    hpcz_attr *na = hpcz_model_alloc(n->graph->model, (n->n_attrs + 1) * sizeof *na);
    if (!na)
        return NULL;
    if (n->n_attrs)
        memcpy(na, n->attrs, n->n_attrs * sizeof *na);
    n->attrs = na;
    hpcz_attr *a = &n->attrs[n->n_attrs++];
    a->name = hpcz_model_strdup(n->graph->model, name);
    a->type = type;
    return a;
}

hpcz_status hpcz_import_opset(hpcz_model *m, const char *domain, int64_t version, hpcz_error *err)
{
    if (hpcz_model_opset(m, domain))
        return HPCZ_OK;
    hpcz_opset *no = hpcz_model_alloc(m, (m->n_opsets + 1) * sizeof *no);
    if (!no)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (m->n_opsets)
        memcpy(no, m->opsets, m->n_opsets * sizeof *no);
    no[m->n_opsets].domain = domain;
    no[m->n_opsets].version = version;
    m->opsets = no;
    m->n_opsets++;
    return HPCZ_OK;
}

hpcz_status hpcz_worst_sqnr(hpcz_model *a, hpcz_model *b, const hpcz_pass_ctx *ctx, double *out, hpcz_error *err)
{
    hpcz_compare_opts co = {0};
    co.threads = ctx->threads;
    co.max_samples = ctx->data_samples;
    hpcz_compare_result *r = NULL;
    hpcz_status st = hpcz_compare(a, b, ctx->data, &co, &r, err);
    *out = INFINITY;
    for (size_t i = 0; !st && i < r->n_outputs; i++)
        *out = r->outputs[i].sqnr_db < *out ? r->outputs[i].sqnr_db : *out;
    hpcz_compare_result_free(r);
    return st;
}
