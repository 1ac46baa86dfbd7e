/*
 * ir.c - model, graph, node, value and tensor objects.
 */
#include "internal.h"

#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

static bool track(void **arr, size_t *n, size_t *cap, void *item)
{
    if (!hpcz_grow(arr, cap, *n + 1, sizeof(void *)))
        return false;
    ((void **)*arr)[(*n)++] = item;
    return true;
}

void *hpcz_model_alloc(hpcz_model *m, size_t size)
{
    return hpcz_arena_alloc(&m->priv->arena, size);
}

const char *hpcz_model_strdup(hpcz_model *m, const char *s)
{
    return s ? hpcz_arena_strndup(&m->priv->arena, s, strlen(s)) : NULL;
}

hpcz_graph *hpcz_graph_new_internal(hpcz_model *m, hpcz_graph *parent)
{
    hpcz_graph *g = hpcz_model_alloc(m, sizeof *g);
    hpcz_valmap *vm = hpcz_model_alloc(m, sizeof *vm);
    if (!g || !vm)
        return NULL;
    struct hpcz_model_priv *p = m->priv;
    if (!track((void **)&p->graphs, &p->n_graphs, &p->cap_graphs, g))
        return NULL;
    g->model = m;
    g->parent = parent;
    g->values = vm;
    return g;
}

hpcz_model *hpcz_model_new(void)
{
    hpcz_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->priv = calloc(1, sizeof *m->priv);
    if (!m->priv) {
        free(m);
        return NULL;
    }
    m->ir_version = 10;
    m->graph = hpcz_graph_new_internal(m, NULL);
    m->opsets = hpcz_model_alloc(m, sizeof *m->opsets);
    if (!m->graph || !m->opsets) {
        hpcz_model_free(m);
        return NULL;
    }
    m->n_opsets = 1;
    m->opsets[0].domain = "";
    m->opsets[0].version = 21;
    m->producer_name = "hpcz";
    m->producer_version = HPCZ_VERSION_STRING;
    return m;
}

void hpcz_model_free(hpcz_model *m)
{
    if (!m)
        return;
    struct hpcz_model_priv *p = m->priv;
    if (p) {
        for (size_t i = 0; i < p->n_tensors; i++) {
            hpcz_tensor *t = p->tensors[i];
            if (t->owns_data)
                free(t->data);
        }
        free(p->tensors);
        for (size_t i = 0; i < p->n_graphs; i++) {
            hpcz_valmap_release(p->graphs[i]->values);
            hpcz_name_index_free(p->graphs[i]->node_names);
            free(p->graphs[i]->nodes);
            free(p->graphs[i]->inits);
        }
        free(p->graphs);
        if (p->proto && p->proto_free)
            p->proto_free(p->proto);
        for (size_t i = 0; i < p->n_maps; i++) {
            if (p->maps[i].addr)
                munmap(p->maps[i].addr, p->maps[i].len);
            free(p->maps[i].path);
        }
        free(p->maps);
        free(p->base_dir);
        hpcz_arena_release(&p->arena);
        free(p);
    }
    free(m);
}

int64_t hpcz_model_opset(const hpcz_model *m, const char *domain)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain ? m->opsets[i].domain : "";
        if (strcmp(d, "ai.onnx") == 0)
            d = "";
        if (strcmp(d, domain) == 0)
            return m->opsets[i].version;
    }
    return 0;
}

/* ------------------------------------------------------------ graph */

hpcz_value *hpcz_graph_find_value(const hpcz_graph *g, const char *name)
{
    for (; g; g = g->parent) {
        hpcz_value *v = hpcz_valmap_get(g->values, name);
        if (v)
            return v;
    }
    return NULL;
}

hpcz_value *hpcz_graph_value(hpcz_graph *g, const char *name)
{
    hpcz_value *v = hpcz_valmap_get(g->values, name);
    if (v)
        return v;
    v = hpcz_model_alloc(g->model, sizeof *v);
    if (!v)
        return NULL;
    v->name = hpcz_model_strdup(g->model, name);
    v->graph = g;
    v->ndim = -1;
    if (!v->name || !hpcz_valmap_put(g->values, v))
        return NULL;
    return v;
}

/* The names of a graph's nodes, for unique names in hpcz_graph_add_node
 * (a scan of every node per added node made every pass that adds nodes
 * quadratic: 20k weights quantized in 18 s). Valid while the graph has the
 * node count and last node it had when the index last saw it; passes that
 * remove or reorder nodes make it rebuild on the next add. */
typedef struct hpcz_name_index {
    const char **k;
    size_t n, cap;     /* cap a power of two */
    size_t n_nodes;    /* g->n_nodes when last in step */
    const hpcz_node *last;
} hpcz_name_index;

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

void hpcz_name_index_free(hpcz_name_index *x)
{
    if (x) {
        free(x->k);
        free(x);
    }
}

static bool name_index_put(hpcz_name_index *x, const char *name)
{
    if (2 * (x->n + 1) > x->cap) {
        size_t nc = x->cap ? 2 * x->cap : 256;
        const char **nk = calloc(nc, sizeof *nk);
        if (!nk)
            return false;
        for (size_t i = 0; i < x->cap; i++)
            if (x->k[i]) {
                size_t j = (size_t)name_hash(x->k[i]) & (nc - 1);
                while (nk[j])
                    j = (j + 1) & (nc - 1);
                nk[j] = x->k[i];
            }
        free(x->k);
        x->k = nk;
        x->cap = nc;
    }
    size_t j = (size_t)name_hash(name) & (x->cap - 1);
    while (x->k[j]) {
        if (!strcmp(x->k[j], name))
            return true;
        j = (j + 1) & (x->cap - 1);
    }
    x->k[j] = name;
    x->n++;
    return true;
}

/* the graph's name index, rebuilt when the graph changed behind its back;
 * NULL when out of memory (callers scan instead) */
static hpcz_name_index *name_index(hpcz_graph *g)
{
    hpcz_name_index *x = g->node_names;
    const hpcz_node *last = g->n_nodes ? g->nodes[g->n_nodes - 1] : NULL;
    if (x && x->n_nodes == g->n_nodes && x->last == last)
        return x;
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x)
            return NULL;
        g->node_names = x;
    }
    if (x->cap)
        memset(x->k, 0, x->cap * sizeof *x->k);
    x->n = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->name && *g->nodes[i]->name && !name_index_put(x, g->nodes[i]->name)) {
            x->n_nodes = (size_t)-1; /* out of memory: rebuild next time */
            return NULL;
        }
    x->n_nodes = g->n_nodes;
    x->last = last;
    return x;
}

static bool node_name_taken(hpcz_graph *g, const char *name)
{
    if (g->n_nodes < 64) {
        for (size_t i = 0; i < g->n_nodes; i++)
            if (g->nodes[i]->name && !strcmp(g->nodes[i]->name, name))
                return true;
        return false;
    }
    hpcz_name_index *x = name_index(g);
    if (!x) {
        for (size_t i = 0; i < g->n_nodes; i++)
            if (g->nodes[i]->name && !strcmp(g->nodes[i]->name, name))
                return true;
        return false;
    }
    size_t j = (size_t)name_hash(name) & (x->cap - 1);
    while (x->k[j]) {
        if (!strcmp(x->k[j], name))
            return true;
        j = (j + 1) & (x->cap - 1);
    }
    return false;
}

hpcz_node *hpcz_graph_add_node(hpcz_graph *g, const char *op_type, const char *name,
                               size_t n_inputs, size_t n_outputs)
{
    hpcz_model *m = g->model;
    hpcz_node *n = hpcz_model_alloc(m, sizeof *n);
    if (!n)
        return NULL;
    n->op_type = hpcz_model_strdup(m, op_type);
    if (name && *name && node_name_taken(g, name)) {
        /* node names must be unique (ONNX Runtime refuses duplicates) */
        char buf[512];
        for (int k = 2;; k++) {
            snprintf(buf, sizeof buf, "%s_%d", name, k);
            if (!node_name_taken(g, buf))
                break;
        }
        n->name = hpcz_model_strdup(m, buf);
    } else {
        n->name = hpcz_model_strdup(m, name);
    }
    n->graph = g;
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    n->inputs = n_inputs ? hpcz_model_alloc(m, n_inputs * sizeof *n->inputs) : NULL;
    n->outputs = n_outputs ? hpcz_model_alloc(m, n_outputs * sizeof *n->outputs) : NULL;
    if ((n_inputs && !n->inputs) || (n_outputs && !n->outputs))
        return NULL;
    if (!hpcz_grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes))
        return NULL;
    hpcz_name_index *x = g->node_names;
    bool in_step = x && x->n_nodes == g->n_nodes &&
                   x->last == (g->n_nodes ? g->nodes[g->n_nodes - 1] : NULL);
    g->nodes[g->n_nodes++] = n;
    if (in_step) {
        /* keep the index in step with the node just added */
        if (n->name && *n->name && !name_index_put(x, n->name))
            x->n_nodes = (size_t)-1;
        else {
            x->n_nodes = g->n_nodes;
            x->last = n;
        }
    }
    return n;
}

static hpcz_status append_value(hpcz_graph *g, hpcz_value ***arr, size_t *n, hpcz_value *v,
                                hpcz_error *err)
{
    /* arena arrays: copy on growth (graph IO lists are short) */
    hpcz_value **na = hpcz_model_alloc(g->model, (*n + 1) * sizeof *na);
    if (!na)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (*n)
        memcpy(na, *arr, *n * sizeof *na);
    na[(*n)++] = v;
    *arr = na;
    return HPCZ_OK;
}

hpcz_status hpcz_graph_add_input(hpcz_graph *g, hpcz_value *v, hpcz_error *err)
{
    v->is_input = 1;
    return append_value(g, &g->inputs, &g->n_inputs, v, err);
}

hpcz_status hpcz_graph_add_output(hpcz_graph *g, hpcz_value *v, hpcz_error *err)
{
    v->is_output = 1;
    return append_value(g, &g->outputs, &g->n_outputs, v, err);
}

void hpcz_node_set_output(hpcz_node *n, size_t i, hpcz_value *v)
{
    HPCZ_ASSERT(i < n->n_outputs);
    n->outputs[i] = v;
    if (v)
        v->producer = n;
}

void hpcz_graph_sweep(hpcz_graph *g)
{
    size_t k = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        if (n->aux != -1) {
            g->nodes[k++] = n;
            continue;
        }
        for (size_t j = 0; j < n->n_outputs; j++)
            if (n->outputs[j] && n->outputs[j]->producer == n)
                n->outputs[j]->producer = NULL;
    }
    g->n_nodes = k;
    /* value_info of values nothing defines any more goes too */
    size_t kv = 0;
    for (size_t i = 0; i < g->n_value_info; i++) {
        hpcz_value *v = g->value_info[i];
        if (v->producer || v->init || v->is_input || v->is_sparse_init)
            g->value_info[kv++] = v;
    }
    g->n_value_info = kv;
}

static size_t rewire(hpcz_graph *g, hpcz_value *from, hpcz_value *to, bool count_only)
{
    size_t count = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == from) {
                count++;
                if (!count_only)
                    n->inputs[j] = to;
            }
        for (size_t a = 0; a < n->n_attrs; a++) {
            hpcz_attr *at = &n->attrs[a];
            if (at->type == HPCZ_ATTR_GRAPH && at->g)
                count += rewire(at->g, from, to, count_only);
            if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < at->n; k++)
                    count += rewire(at->graphs[k], from, to, count_only);
        }
    }
    return count;
}

size_t hpcz_graph_replace_uses(hpcz_graph *g, hpcz_value *from, hpcz_value *to)
{
    size_t c = rewire(g, from, to, false);
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == from) {
            g->outputs[i] = to;
            to->is_output = 1;
            c++;
        }
    return c;
}

size_t hpcz_graph_count_uses(const hpcz_graph *g, const hpcz_value *v)
{
    return rewire((hpcz_graph *)g, (hpcz_value *)v, NULL, true);
}

hpcz_status hpcz_graph_add_initializer(hpcz_graph *g, hpcz_tensor *t, hpcz_error *err)
{
    if (!t->name)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "initializer without a name");
    hpcz_value *v = hpcz_graph_value(g, t->name);
    if (!v || !hpcz_grow((void **)&g->inits, &g->cap_inits, g->n_inits + 1, sizeof *g->inits))
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    g->inits[g->n_inits++] = t;
    v->init = t;
    if (v->dtype == HPCZ_DTYPE_UNDEFINED)
        v->dtype = t->dtype;
    if (v->ndim < 0 && !v->src) {
        /* a new initializer: its value gets the tensor's shape */
        v->dims = t->ndim ? hpcz_model_alloc(g->model, (size_t)t->ndim * sizeof *v->dims) : NULL;
        if (t->ndim && !v->dims)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        for (int i = 0; i < t->ndim; i++)
            v->dims[i].size = t->dims[i];
        v->ndim = t->ndim;
    }
    return HPCZ_OK;
}

/* Kahn's algorithm over the nodes of g; producers outside g (graph inputs,
 * initializers, outer scopes) count as ready. Subgraph bodies that read a
 * value of g make their owner node depend on its producer. */
typedef struct dep_ctx {
    hpcz_graph *g;
    hpcz_node **deps;
    size_t n, cap;
} dep_ctx;

static void collect_deps(const hpcz_graph *top, const hpcz_graph *sub, dep_ctx *c)
{
    for (size_t i = 0; i < sub->n_nodes; i++) {
        hpcz_node *n = sub->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++) {
            hpcz_value *v = n->inputs[j];
            if (v && v->producer && v->producer->graph == top) {
                if (hpcz_grow((void **)&c->deps, &c->cap, c->n + 1, sizeof *c->deps))
                    c->deps[c->n++] = v->producer;
            }
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const hpcz_attr *at = &n->attrs[a];
            if (at->type == HPCZ_ATTR_GRAPH && at->g)
                collect_deps(top, at->g, c);
            else if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < at->n; k++)
                    collect_deps(top, at->graphs[k], c);
        }
    }
}

hpcz_status hpcz_graph_topo_order(const hpcz_graph *cg, hpcz_node **out, hpcz_error *err)
{
    hpcz_graph *g = (hpcz_graph *)cg;
    size_t n = g->n_nodes;
    if (n == 0)
        return HPCZ_OK;
    hpcz_status st = HPCZ_OK;
    int *indeg = calloc(n, sizeof *indeg);
    int *saved = malloc(n * sizeof *saved);
    size_t *off = calloc(n + 1, sizeof *off); /* CSR of edges producer -> consumer */
    size_t *edges = NULL, n_edges = 0, cap_edges = 0;
    size_t *src_of = NULL, cap_src = 0; /* parallel array: producer index of each edge */
    hpcz_node **order = malloc(n * sizeof *order);
    size_t *queue = malloc(n * sizeof *queue);
    dep_ctx dc = {0};
    if (!indeg || !saved || !off || !order || !queue) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        saved[i] = g->nodes[i]->aux;
        g->nodes[i]->aux = (int)i;
    }
    for (size_t i = 0; i < n; i++) {
        hpcz_node *nd = g->nodes[i];
        dc.n = 0;
        for (size_t j = 0; j < nd->n_inputs; j++) {
            hpcz_value *v = nd->inputs[j];
            if (v && v->producer && v->producer->graph == g &&
                hpcz_grow((void **)&dc.deps, &dc.cap, dc.n + 1, sizeof *dc.deps))
                dc.deps[dc.n++] = v->producer;
        }
        for (size_t a = 0; a < nd->n_attrs; a++) {
            const hpcz_attr *at = &nd->attrs[a];
            if (at->type == HPCZ_ATTR_GRAPH && at->g)
                collect_deps(g, at->g, &dc);
            else if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < at->n; k++)
                    collect_deps(g, at->graphs[k], &dc);
        }
        for (size_t k = 0; k < dc.n; k++) {
            if (!hpcz_grow((void **)&edges, &cap_edges, n_edges + 1, sizeof *edges) ||
                !hpcz_grow((void **)&src_of, &cap_src, n_edges + 1, sizeof *src_of)) {
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                goto restore;
            }
            edges[n_edges] = i;
            src_of[n_edges] = (size_t)dc.deps[k]->aux;
            n_edges++;
            indeg[i]++;
        }
    }
    /* Build CSR adjacency from (src_of -> edges). */
    for (size_t e = 0; e < n_edges; e++)
        off[src_of[e] + 1]++;
    for (size_t i = 0; i < n; i++)
        off[i + 1] += off[i];
    size_t *adj = malloc((n_edges ? n_edges : 1) * sizeof *adj);
    size_t *fill = calloc(n, sizeof *fill);
    if (!adj || !fill) {
        free(adj);
        free(fill);
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto restore;
    }
    for (size_t e = 0; e < n_edges; e++)
        adj[off[src_of[e]] + fill[src_of[e]]++] = edges[e];
    free(fill);
    /* A min-index ready set keeps already-sorted graphs in file order. Ready
     * nodes are taken in index order with a simple binary heap. */
    size_t qn = 0, done = 0;
#define HEAP_PUSH(x)                                                                               \
    do {                                                                                           \
        size_t _i = qn++;                                                                          \
        queue[_i] = (x);                                                                           \
        while (_i && queue[(_i - 1) / 2] > queue[_i]) {                                            \
            size_t _t = queue[_i];                                                                 \
            queue[_i] = queue[(_i - 1) / 2];                                                       \
            queue[(_i - 1) / 2] = _t;                                                              \
            _i = (_i - 1) / 2;                                                                     \
        }                                                                                          \
    } while (0)
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            HEAP_PUSH(i);
    while (qn) {
        size_t top = queue[0];
        queue[0] = queue[--qn];
        for (size_t i = 0;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < qn && queue[l] < queue[m])
                m = l;
            if (r < qn && queue[r] < queue[m])
                m = r;
            if (m == i)
                break;
            size_t t = queue[i];
            queue[i] = queue[m];
            queue[m] = t;
            i = m;
        }
        order[done++] = g->nodes[top];
        for (size_t e = off[top]; e < off[top + 1]; e++)
            if (--indeg[adj[e]] == 0)
                HEAP_PUSH(adj[e]);
    }
#undef HEAP_PUSH
    free(adj);
    if (done != n) {
        const hpcz_node *bad = NULL;
        for (size_t i = 0; i < n && !bad; i++)
            if (indeg[i] > 0)
                bad = g->nodes[i];
        st = hpcz_fail(err, HPCZ_ERR_INVALID, "graph has a cycle through node '%s' (%s)",
                       bad && bad->name ? bad->name : "", bad ? bad->op_type : "?");
        goto restore;
    }
restore:
    for (size_t i = 0; i < n; i++)
        g->nodes[i]->aux = saved[i];
    if (st == HPCZ_OK)
        memcpy(out, order, n * sizeof *order);
out:
    free(indeg);
    free(saved);
    free(off);
    free(edges);
    free(src_of);
    free(order);
    free(queue);
    free(dc.deps);
    return st;
}

hpcz_status hpcz_graph_toposort(hpcz_graph *g, hpcz_error *err)
{
    return hpcz_graph_topo_order(g, g->nodes, err);
}

/* ------------------------------------------------------------ attributes */

const hpcz_attr *hpcz_node_attr(const hpcz_node *n, const char *name)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].name && strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t hpcz_node_attr_int(const hpcz_node *n, const char *name, int64_t dflt)
{
    const hpcz_attr *a = hpcz_node_attr(n, name);
    return a && a->type == HPCZ_ATTR_INT ? a->i : dflt;
}

float hpcz_node_attr_float(const hpcz_node *n, const char *name, float dflt)
{
    const hpcz_attr *a = hpcz_node_attr(n, name);
    return a && a->type == HPCZ_ATTR_FLOAT ? a->f : dflt;
}

const char *hpcz_node_attr_string(const hpcz_node *n, const char *name, const char *dflt)
{
    const hpcz_attr *a = hpcz_node_attr(n, name);
    if (!a || a->type != HPCZ_ATTR_STRING)
        return dflt;
    return hpcz_arena_strndup(&n->graph->model->priv->arena, (const char *)a->s.data, a->s.len);
}

int64_t hpcz_node_opset(const hpcz_node *n)
{
    return hpcz_model_opset(n->graph->model, n->domain);
}

/* ------------------------------------------------------------ tensors */

hpcz_tensor *hpcz_tensor_new_empty(hpcz_model *m)
{
    hpcz_tensor *t = hpcz_model_alloc(m, sizeof *t);
    if (!t)
        return NULL;
    struct hpcz_model_priv *p = m->priv;
    if (!track((void **)&p->tensors, &p->n_tensors, &p->cap_tensors, t))
        return NULL;
    t->model = m;
    return t;
}

hpcz_tensor *hpcz_tensor_new(hpcz_model *m, const char *name, int dtype, int ndim,
                             const int64_t *dims)
{
    if (ndim < 0 || ndim > HPCZ_MAX_RANK)
        return NULL;
    hpcz_tensor *t = hpcz_tensor_new_empty(m);
    if (!t)
        return NULL;
    t->name = hpcz_model_strdup(m, name);
    t->dtype = dtype;
    t->ndim = ndim;
    t->dims = ndim ? hpcz_model_alloc(m, (size_t)ndim * sizeof *t->dims) : NULL;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || (dims[i] && numel > HPCZ_MAX_NUMEL / dims[i]))
            return NULL;
        t->dims[i] = dims[i];
        numel *= dims[i];
    }
    t->numel = numel;
    t->dirty = 1;
    return t;
}

void hpcz_tensor_set_data(hpcz_tensor *t, void *data, size_t nbytes, int own)
{
    if (t->owns_data && t->data != data)
        free(t->data);
    t->data = data;
    t->nbytes = nbytes;
    t->owns_data = own ? 1 : 0;
    t->dirty = 1;
    t->external = 0;
}

void *hpcz_tensor_alloc(hpcz_tensor *t)
{
    size_t nb = hpcz_dtype_nbytes(t->dtype, t->numel);
    void *p = calloc(1, nb ? nb : 1);
    if (!p)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (nb >= ((size_t)4 << 20)) {
        /* large payloads (quantized weights, folded constants) are written
         * once, whole: 2 MiB pages where the kernel offers them on request
         * save a page fault per 4 KiB (a hint: failure changes nothing) */
        const uintptr_t huge = (uintptr_t)2 << 20;
        uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
        uintptr_t e = ((uintptr_t)p + nb) & ~(huge - 1);
        if (e > a)
            madvise((void *)a, e - a, MADV_HUGEPAGE);
    }
#endif
    hpcz_tensor_set_data(t, p, nb, 1);
    return p;
}

void *hpcz_tensor_data(hpcz_tensor *t, hpcz_error *err)
{
    if (t->data || t->numel == 0)
        return t->data ? t->data : (void *)"";
    if (!t->src) {
        hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s' has no data", t->name ? t->name : "");
        return NULL;
    }
    const hpcz_payload_reader *r = t->model && t->model->priv ? t->model->priv->payloads : NULL;
    if (!r) {
        hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s': no reader for its payload", t->name ? t->name : "");
        return NULL;
    }
    if (r->decode(t, err) != HPCZ_OK)
        return NULL;
    return t->data;
}

const void *hpcz_tensor_bytes(hpcz_tensor *t, hpcz_error *err)
{
    const hpcz_payload_reader *r = t->model && t->model->priv ? t->model->priv->payloads : NULL;
    if (!t->data && t->numel && t->src && r && r->bytes_in_place) {
        const void *b = r->bytes_in_place(t);
        if (b)
            return b;
    }
    return hpcz_tensor_data(t, err);
}

/* ------------------------------------------------------------ traversal */

static int foreach_graph(hpcz_graph *g, hpcz_graph_visit_fn fn, void *ctx)
{
    int r = fn(g, ctx);
    if (r)
        return r;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            hpcz_attr *at = &n->attrs[a];
            if (at->type == HPCZ_ATTR_GRAPH && at->g && (r = foreach_graph(at->g, fn, ctx)))
                return r;
            if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < at->n; k++)
                    if ((r = foreach_graph(at->graphs[k], fn, ctx)))
                        return r;
        }
    }
    return 0;
}

int hpcz_model_foreach_graph(hpcz_model *m, hpcz_graph_visit_fn fn, void *ctx)
{
    return m->graph ? foreach_graph(m->graph, fn, ctx) : 0;
}

const char *hpcz_model_source_file(const hpcz_model *m, const char *path)
{
    struct stat so, si;
    if (!m || !m->priv || !path || !strcmp(path, "-") || stat(path, &so) != 0)
        return NULL;
    for (size_t i = 0; i < m->priv->n_maps; i++)
        if (stat(m->priv->maps[i].path, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return m->priv->maps[i].path;
    return NULL;
}
