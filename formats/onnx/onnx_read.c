/*
 * onnx_read.c - ONNX ModelProto -> hpcz IR.
 *
 * The unpacked protobuf stays alive with the model: the IR borrows names and
 * payloads from it, and the writer re-emits the fields the IR does not model
 * (doc strings, metadata, functions, unknown fields, ...) from it, so an
 * unchanged model round-trips losslessly.
 */
#include "onnx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ------------------------------------------------------------ tensors */

static hpcz_status map_external(hpcz_model *m, const char *rel, const uint8_t **base, size_t *size,
                                hpcz_error *err)
{
    struct hpcz_model_priv *p = m->priv;
    if (!rel || !*rel)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "external data without a location");
    if (rel[0] == '/' || strstr(rel, "..") == rel || strstr(rel, "/../") || strstr(rel, "\\"))
        return hpcz_fail(err, HPCZ_ERR_INVALID,
                         "external data location '%s' leaves the model's folder", rel);
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", p->base_dir ? p->base_dir : ".", rel);
    if (n < 0 || (size_t)n >= sizeof path)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "external data path too long");
    for (size_t i = 0; i < p->n_maps; i++)
        if (strcmp(p->maps[i].path, path) == 0) {
            *base = p->maps[i].addr;
            *size = p->maps[i].len;
            return HPCZ_OK;
        }
    /* A link inside the folder may point anywhere (w.bin -> /etc/passwd):
     * the file's real path must still lie inside the model's real folder. */
    char real[PATH_MAX], real_base[PATH_MAX];
    if (!realpath(path, real))
        return hpcz_fail(err, HPCZ_ERR_IO, "external data file '%s': %s", path,
                         errno == ENOENT ? "no such file" : strerror(errno));
    if (!realpath(p->base_dir ? p->base_dir : ".", real_base))
        return hpcz_fail(err, HPCZ_ERR_IO, "model folder '%s': %s", p->base_dir ? p->base_dir : ".",
                         strerror(errno));
    size_t bl = strlen(real_base);
    if (bl > 1 && strncmp(real, real_base, bl) != 0)
        bl = 0;
    if (!(bl == 1 || (bl && real[bl] == '/')))
        return hpcz_fail(err, HPCZ_ERR_INVALID,
                         "external data file '%s' is a link to '%s', outside the model's folder",
                         path, real);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return hpcz_fail(err, HPCZ_ERR_IO, "external data file '%s': %s", path,
                         errno == ENOENT ? "no such file" : strerror(errno));
    struct stat stt;
    if (fstat(fd, &stt) != 0 || !S_ISREG(stt.st_mode)) {
        close(fd);
        return hpcz_fail(err, HPCZ_ERR_IO, "external data file '%s' is not a regular file", path);
    }
    void *addr = NULL;
    if (stt.st_size > 0) {
        addr = mmap(NULL, (size_t)stt.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            close(fd);
            return hpcz_fail(err, HPCZ_ERR_IO, "external data file '%s': mmap: %s", path,
                             strerror(errno));
        }
    }
    close(fd);
    hpcz_mapping *nm = realloc(p->maps, (p->n_maps + 1) * sizeof *nm);
    if (!nm) {
        if (addr)
            munmap(addr, (size_t)stt.st_size);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    p->maps = nm;
    p->maps[p->n_maps].addr = addr;
    p->maps[p->n_maps].len = (size_t)stt.st_size;
    p->maps[p->n_maps].path = strdup(path);
    p->n_maps++;
    *base = addr;
    *size = (size_t)stt.st_size;
    return HPCZ_OK;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static hpcz_status load_external(hpcz_model *m, hpcz_tensor *t, const Onnx__TensorProto *tp,
                                 hpcz_error *err)
{
    const char *loc = NULL;
    uint64_t off = 0, len = UINT64_MAX;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = tp->external_data[i];
        const char *k = nz(kv->key);
        if (strcmp(k, "location") == 0)
            loc = kv->value;
        else if (strcmp(k, "offset") == 0 && !parse_u64(kv->value, &off))
            return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s': bad external data offset '%s'",
                             nz(t->name), nz(kv->value));
        else if (strcmp(k, "length") == 0 && !parse_u64(kv->value, &len))
            return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s': bad external data length '%s'",
                             nz(t->name), nz(kv->value));
    }
    const uint8_t *base;
    size_t size;
    hpcz_status st = map_external(m, loc, &base, &size, err);
    if (st) {
        char pre[300];
        snprintf(pre, sizeof pre, "tensor '%.256s'", nz(t->name));
        hpcz_error_prefix(err, pre);
        return st;
    }
    size_t want = hpcz_dtype_nbytes(t->dtype, t->numel);
    if (len == UINT64_MAX)
        len = want;
    if (off > size || len > size - off)
        return hpcz_fail(err, HPCZ_ERR_INVALID,
                         "tensor '%s': external data [%llu, +%llu) is past the end of '%s' "
                         "(%zu bytes)",
                         nz(t->name), (unsigned long long)off, (unsigned long long)len, loc, size);
    if (t->dtype != HPCZ_DTYPE_STRING && len != want)
        return hpcz_fail(err, HPCZ_ERR_INVALID,
                         "tensor '%s': external data has %llu bytes, expected %zu", nz(t->name),
                         (unsigned long long)len, want);
    int bits = hpcz_dtype_bits(t->dtype);
    size_t align = bits >= 8 ? (size_t)bits / 8 : 1;
    const uint8_t *ptr = base + off;
    if (((uintptr_t)ptr % align) != 0) {
        /* Unaligned in the file: take a copy so kernels can load it as typed data. */
        void *copy = malloc(len ? len : 1);
        if (!copy)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        memcpy(copy, ptr, len);
        t->data = copy;
        t->owns_data = 1;
    } else {
        t->data = (void *)ptr;
    }
    t->nbytes = len;
    t->external = 1;
    return HPCZ_OK;
}

hpcz_status hpcz_onnx_tensor_from_proto(hpcz_model *m, const Onnx__TensorProto *tp,
                                        hpcz_tensor **out, hpcz_error *err)
{
    hpcz_tensor *t = hpcz_tensor_new_empty(m);
    if (!t)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    t->name = tp->name;
    t->dtype = tp->has_data_type ? tp->data_type : HPCZ_DTYPE_UNDEFINED;
    t->src = tp;
    if (tp->n_dims > HPCZ_MAX_RANK)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s': rank %zu is beyond %d", nz(t->name),
                         tp->n_dims, HPCZ_MAX_RANK);
    t->ndim = (int)tp->n_dims;
    t->dims = tp->dims; /* borrowed: int64_t array in the proto */
    int64_t numel = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0)
            return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s': negative dimension %lld",
                             nz(t->name), (long long)d);
        if (d && numel > HPCZ_MAX_NUMEL / d)
            return hpcz_fail(err, HPCZ_ERR_INVALID,
                             "tensor '%s': dimensions claim more than 2^40 elements", nz(t->name));
        numel *= d;
    }
    t->numel = numel;
    *out = t;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return load_external(m, t, tp, err);
    if (tp->has_raw_data) {
        size_t want = hpcz_dtype_nbytes(t->dtype, numel);
        if (t->dtype != HPCZ_DTYPE_STRING && hpcz_dtype_bits(t->dtype) > 0 &&
            tp->raw_data.len != want)
            return hpcz_fail(err, HPCZ_ERR_INVALID,
                             "tensor '%s': raw_data has %zu bytes, expected %zu for %s%s",
                             nz(t->name), tp->raw_data.len, want, hpcz_dtype_name(t->dtype),
                             numel ? "" : " (empty)");
        int bits = hpcz_dtype_bits(t->dtype);
        size_t align = bits >= 8 ? (size_t)bits / 8 : 1;
        /* A payload used in place in the file may sit at any offset: typed
         * access then takes an aligned copy, on first use (decode below). */
        if ((uintptr_t)tp->raw_data.data % align == 0)
            t->data = tp->raw_data.data;
        t->nbytes = tp->raw_data.len;
    }
    return HPCZ_OK;
}

/* raw_data used in place: no copy for reading (it may be unaligned) */
static const void *onnx_bytes_in_place(const hpcz_tensor *t)
{
    const Onnx__TensorProto *tp = t->src;
    if (tp && !t->external && tp->has_raw_data && hpcz_dtype_bits(t->dtype) > 0 &&
        tp->raw_data.len == hpcz_dtype_nbytes(t->dtype, t->numel))
        return tp->raw_data.data;
    return NULL;
}

/* Decodes typed repeated fields (float_data, int32_data, ...) into a dense
 * payload. Called lazily: round trips never pay for it. */
static hpcz_status onnx_tensor_decode(hpcz_tensor *t, hpcz_error *err)
{
    const Onnx__TensorProto *tp = t->src;
    if (!tp)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s' has no data", nz(t->name));
    if (tp->segment)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "tensor '%s': segmented tensors",
                         nz(t->name));
    int bits = hpcz_dtype_bits(t->dtype);
    if (bits == 0)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "tensor '%s': no dense form for %s",
                         nz(t->name), hpcz_dtype_name(t->dtype));
    size_t nb = hpcz_dtype_nbytes(t->dtype, t->numel);
    size_t n = (size_t)t->numel;
    if (tp->has_raw_data && !t->external) {
        /* raw_data at an offset that does not suit the type (used in place) */
        if (tp->raw_data.len != nb)
            return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s': raw_data has %zu bytes, expected %zu",
                             nz(t->name), tp->raw_data.len, nb);
        void *d = malloc(nb ? nb : 1);
        if (!d)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        memcpy(d, tp->raw_data.data, nb);
        t->data = d;
        t->owns_data = 1;
        t->nbytes = nb;
        return HPCZ_OK;
    }
#define COUNT_CHECK(field, count)                                                                  \
    if (tp->n_##field != (count))                                                                  \
        return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s': %s has %zu values, expected %zu",    \
                         nz(t->name), #field, tp->n_##field, (size_t)(count));
    switch (t->dtype) {
    case HPCZ_DTYPE_FLOAT:
        COUNT_CHECK(float_data, n);
        t->data = tp->float_data;
        break;
    case HPCZ_DTYPE_COMPLEX64:
        COUNT_CHECK(float_data, 2 * n);
        t->data = tp->float_data;
        break;
    case HPCZ_DTYPE_DOUBLE:
        COUNT_CHECK(double_data, n);
        t->data = tp->double_data;
        break;
    case HPCZ_DTYPE_COMPLEX128:
        COUNT_CHECK(double_data, 2 * n);
        t->data = tp->double_data;
        break;
    case HPCZ_DTYPE_INT64:
        COUNT_CHECK(int64_data, n);
        t->data = tp->int64_data;
        break;
    case HPCZ_DTYPE_UINT64:
        COUNT_CHECK(uint64_data, n);
        t->data = tp->uint64_data;
        break;
    case HPCZ_DTYPE_UINT32: {
        COUNT_CHECK(uint64_data, n);
        uint32_t *d = malloc(nb ? nb : 1);
        if (!d)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            d[i] = (uint32_t)tp->uint64_data[i];
        t->data = d;
        t->owns_data = 1;
        break;
    }
    default: {
        /* int32_data carries every other type: one element per entry for
         * 8/16/32-bit types, one packed byte per entry for sub-byte types. */
        size_t count = bits >= 8 ? n : nb;
        COUNT_CHECK(int32_data, count);
        uint8_t *d = malloc(nb ? nb : 1);
        if (!d)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < count; i++) {
            uint32_t v = (uint32_t)tp->int32_data[i];
            switch (bits) {
            case 32:
                memcpy(d + 4 * i, &v, 4);
                break;
            case 16: {
                uint16_t h = (uint16_t)v;
                memcpy(d + 2 * i, &h, 2);
                break;
            }
            default:
                d[i] = (uint8_t)v;
            }
        }
        t->data = d;
        t->owns_data = 1;
    }
    }
#undef COUNT_CHECK
    t->nbytes = nb;
    return HPCZ_OK;
}

const hpcz_payload_reader hpcz_onnx_payloads = {onnx_tensor_decode, onnx_bytes_in_place};

/* ------------------------------------------------------------ graphs */

typedef struct reader {
    hpcz_model *m;
    hpcz_error *err;
} reader;

static void type_from_proto(hpcz_value *v, const Onnx__TypeProto *tp)
{
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    v->dtype = tt->has_elem_type ? tt->elem_type : HPCZ_DTYPE_UNDEFINED;
    if (!tt->shape) {
        v->ndim = -1;
        return;
    }
    size_t nd = tt->shape->n_dim;
    if (nd > HPCZ_MAX_RANK) {
        v->ndim = -1;
        return;
    }
    v->ndim = (int)nd;
    v->dims = nd ? hpcz_model_alloc(v->graph->model, nd * sizeof *v->dims) : NULL;
    if (nd && !v->dims) {
        v->ndim = -1;
        return;
    }
    for (size_t i = 0; i < nd; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->dims[i].size = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            v->dims[i].size = d->dim_value;
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            v->dims[i].param = d->dim_param;
    }
}

static hpcz_status read_graph(reader *r, const Onnx__GraphProto *gp, hpcz_graph *parent,
                              hpcz_node *owner, hpcz_graph **out);

static hpcz_attr_type infer_attr_type(const Onnx__AttributeProto *a)
{
    /* IR version 1 files have no type field: infer it from the payload. */
    if (a->n_floats)
        return HPCZ_ATTR_FLOATS;
    if (a->n_ints)
        return HPCZ_ATTR_INTS;
    if (a->n_strings)
        return HPCZ_ATTR_STRINGS;
    if (a->n_tensors)
        return HPCZ_ATTR_TENSORS;
    if (a->n_graphs)
        return HPCZ_ATTR_GRAPHS;
    if (a->t)
        return HPCZ_ATTR_TENSOR;
    if (a->g)
        return HPCZ_ATTR_GRAPH;
    if (a->has_s)
        return HPCZ_ATTR_STRING;
    if (a->has_f)
        return HPCZ_ATTR_FLOAT;
    if (a->has_i)
        return HPCZ_ATTR_INT;
    return HPCZ_ATTR_UNDEFINED;
}

static hpcz_status read_attr(reader *r, hpcz_node *n, const Onnx__AttributeProto *ap, hpcz_attr *a)
{
    hpcz_model *m = r->m;
    a->src = ap;
    a->name = ap->name;
    a->type = ap->has_type ? (hpcz_attr_type)ap->type : infer_attr_type(ap);
    a->f = ap->f;
    a->i = ap->i;
    a->s.data = ap->s.data;
    a->s.len = ap->s.len;
    hpcz_status st;
    if (ap->t && (st = hpcz_onnx_tensor_from_proto(m, ap->t, &a->t, r->err)))
        return st;
    if (ap->g && (st = read_graph(r, ap->g, n->graph, n, &a->g)))
        return st;
    switch (a->type) {
    case HPCZ_ATTR_FLOATS:
        a->n = ap->n_floats;
        a->floats = ap->floats;
        break;
    case HPCZ_ATTR_INTS:
        a->n = ap->n_ints;
        a->ints = ap->ints;
        break;
    case HPCZ_ATTR_STRINGS:
        a->n = ap->n_strings;
        break;
    case HPCZ_ATTR_TENSORS:
        a->n = ap->n_tensors;
        break;
    case HPCZ_ATTR_GRAPHS:
        a->n = ap->n_graphs;
        break;
    default:
        break;
    }
    if (ap->n_strings) {
        a->strings = hpcz_model_alloc(m, ap->n_strings * sizeof *a->strings);
        if (!a->strings)
            return hpcz_fail(r->err, HPCZ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < ap->n_strings; i++) {
            a->strings[i].data = ap->strings[i].data;
            a->strings[i].len = ap->strings[i].len;
        }
    }
    if (ap->n_tensors) {
        a->tensors = hpcz_model_alloc(m, ap->n_tensors * sizeof *a->tensors);
        if (!a->tensors)
            return hpcz_fail(r->err, HPCZ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < ap->n_tensors; i++)
            if ((st = hpcz_onnx_tensor_from_proto(m, ap->tensors[i], &a->tensors[i], r->err)))
                return st;
    }
    if (ap->n_graphs) {
        a->graphs = hpcz_model_alloc(m, ap->n_graphs * sizeof *a->graphs);
        if (!a->graphs)
            return hpcz_fail(r->err, HPCZ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < ap->n_graphs; i++)
            if ((st = read_graph(r, ap->graphs[i], n->graph, n, &a->graphs[i])))
                return st;
    }
    return HPCZ_OK;
}

/* A value referenced by name: in scope if defined, else created in g (the
 * verifier reports it if nothing ever defines it). */
static hpcz_value *use_value(hpcz_graph *g, const char *name)
{
    hpcz_value *v = hpcz_graph_find_value(g, name);
    return v ? v : hpcz_graph_value(g, name);
}

static hpcz_status read_graph(reader *r, const Onnx__GraphProto *gp, hpcz_graph *parent,
                              hpcz_node *owner, hpcz_graph **out)
{
    hpcz_model *m = r->m;
    hpcz_graph *g = hpcz_graph_new_internal(m, parent);
    if (!g)
        return hpcz_fail(r->err, HPCZ_ERR_NOMEM, "out of memory");
    *out = g;
    g->src = gp;
    g->owner = owner;
    g->name = gp->name;
    hpcz_status st;
#define NOMEM() return hpcz_fail(r->err, HPCZ_ERR_NOMEM, "out of memory")

    for (size_t i = 0; i < gp->n_initializer; i++) {
        hpcz_tensor *t;
        if ((st = hpcz_onnx_tensor_from_proto(m, gp->initializer[i], &t, r->err)))
            return st;
        if (!t->name)
            return hpcz_fail(r->err, HPCZ_ERR_INVALID, "initializer %zu has no name", i);
        if ((st = hpcz_graph_add_initializer(g, t, r->err)))
            return st;
    }
    for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
        const Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
        const char *name = sp->values ? sp->values->name : NULL;
        if (!name)
            return hpcz_fail(r->err, HPCZ_ERR_INVALID, "sparse initializer %zu has no name", i);
        hpcz_value *v = hpcz_graph_value(g, name);
        if (!v)
            NOMEM();
        v->is_sparse_init = 1;
        if (sp->values->has_data_type)
            v->dtype = sp->values->data_type;
    }
    g->n_inputs = gp->n_input;
    g->inputs = gp->n_input ? hpcz_model_alloc(m, gp->n_input * sizeof *g->inputs) : NULL;
    if (gp->n_input && !g->inputs)
        NOMEM();
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        hpcz_value *v = hpcz_graph_value(g, nz(vi->name));
        if (!v)
            NOMEM();
        v->is_input = 1;
        if (!v->src) {
            v->src = vi;
            int init_dtype = v->dtype;
            type_from_proto(v, vi->type);
            if (v->dtype == HPCZ_DTYPE_UNDEFINED)
                v->dtype = init_dtype;
        }
        g->inputs[i] = v;
    }
    g->n_nodes = gp->n_node;
    g->cap_nodes = gp->n_node;
    g->nodes = gp->n_node ? calloc(gp->n_node, sizeof *g->nodes) : NULL;
    if (gp->n_node && !g->nodes)
        NOMEM();
    /* g->nodes is malloc'd (it grows); free it with the model. */
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        hpcz_node *n = hpcz_model_alloc(m, sizeof *n);
        if (!n)
            NOMEM();
        g->nodes[i] = n;
        n->src = np;
        n->graph = g;
        n->name = np->name;
        n->op_type = np->op_type ? np->op_type : "";
        n->domain = np->domain;
        n->n_inputs = np->n_input;
        n->n_outputs = np->n_output;
        n->inputs = np->n_input ? hpcz_model_alloc(m, np->n_input * sizeof *n->inputs) : NULL;
        n->outputs = np->n_output ? hpcz_model_alloc(m, np->n_output * sizeof *n->outputs) : NULL;
        if ((np->n_input && !n->inputs) || (np->n_output && !n->outputs))
            NOMEM();
        for (size_t j = 0; j < np->n_input; j++) {
            const char *nm = nz(np->input[j]);
            if (*nm && !(n->inputs[j] = use_value(g, nm)))
                NOMEM();
        }
        n->n_attrs = np->n_attribute;
        n->attrs = np->n_attribute ? hpcz_model_alloc(m, np->n_attribute * sizeof *n->attrs) : NULL;
        if (np->n_attribute && !n->attrs)
            NOMEM();
        for (size_t a = 0; a < np->n_attribute; a++)
            if ((st = read_attr(r, n, np->attribute[a], &n->attrs[a])))
                return st;
        for (size_t j = 0; j < np->n_output; j++) {
            const char *nm = nz(np->output[j]);
            if (!*nm)
                continue;
            hpcz_value *v = hpcz_graph_value(g, nm);
            if (!v)
                NOMEM();
            if (!v->producer)
                v->producer = n;
            n->outputs[j] = v;
        }
    }
    g->n_outputs = gp->n_output;
    g->outputs = gp->n_output ? hpcz_model_alloc(m, gp->n_output * sizeof *g->outputs) : NULL;
    if (gp->n_output && !g->outputs)
        NOMEM();
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        hpcz_value *v = use_value(g, nz(vi->name));
        if (!v)
            NOMEM();
        v->is_output = 1;
        if (!v->src) {
            v->src = vi;
            type_from_proto(v, vi->type);
        }
        g->outputs[i] = v;
    }
    g->n_value_info = gp->n_value_info;
    g->value_info =
        gp->n_value_info ? hpcz_model_alloc(m, gp->n_value_info * sizeof *g->value_info) : NULL;
    if (gp->n_value_info && !g->value_info)
        NOMEM();
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        hpcz_value *v = use_value(g, nz(vi->name));
        if (!v)
            NOMEM();
        if (!v->src) {
            v->src = vi;
            type_from_proto(v, vi->type);
        }
        g->value_info[i] = v;
    }
#undef NOMEM
    return HPCZ_OK;
}

static void free_model_proto(void *p)
{
    onnx__model_proto__free_unpacked(p, NULL);
}

/* ------------------------------------------------------------ payloads in place
 *
 * protobuf-c copies every bytes field it unpacks. For a model read from a
 * buffer that outlives it (the mmap'd file), large raw_data payloads are used
 * where they lie instead: protobuf-c unpacks a copy of the wire in which each
 * of them is replaced by a 16-byte marker (a nonce of this load and the
 * payload's index), and the TensorProtos holding a marker are then pointed at
 * the payload in the buffer. The writer re-emits such a proto as it is, so
 * the payload goes from the input mapping to the output file untouched. */

#define MARKER_LEN 16
#define BORROW_MIN_DEFAULT 4096

typedef struct borrowed_proto {
    Onnx__ModelProto *mp;
    ProtobufCBinaryData **fix; /* raw_data fields that point into the buffer */
    size_t n_fix, cap_fix;
} borrowed_proto;

static void free_borrowed_proto(void *p)
{
    borrowed_proto *b = p;
    for (size_t i = 0; i < b->n_fix; i++) {
        /* not protobuf-c's to free */
        b->fix[i]->data = NULL;
        b->fix[i]->len = 0;
    }
    onnx__model_proto__free_unpacked(b->mp, NULL);
    free(b->fix);
    free(b);
}

typedef struct fixer {
    borrowed_proto *b;
    const uint8_t *buf;
    const hpcz_wire_span *spans;
    size_t n;
    uint8_t *used;
    uint8_t nonce[8];
    bool nomem;
} fixer;

static void fix_tensor(fixer *f, Onnx__TensorProto *tp)
{
    ProtobufCBinaryData *bd = &tp->raw_data;
    if (!tp->has_raw_data || bd->len != MARKER_LEN || memcmp(bd->data, f->nonce, 8) != 0)
        return;
    uint64_t idx = 0;
    for (int i = 0; i < 8; i++)
        idx |= (uint64_t)bd->data[8 + i] << (8 * i);
    if (idx >= f->n || f->used[idx])
        return;
    if (!hpcz_grow((void **)&f->b->fix, &f->b->cap_fix, f->b->n_fix + 1, sizeof *f->b->fix)) {
        f->nomem = true;
        return;
    }
    f->used[idx] = 1;
    f->b->fix[f->b->n_fix++] = bd;
    free(bd->data); /* the marker (protobuf-c allocates with malloc) */
    bd->data = (uint8_t *)f->buf + f->spans[idx].off;
    bd->len = f->spans[idx].len;
}

/* Every message under msg, through the descriptors (nesting is bounded by
 * hpcz_wire_check). */
static void fix_message(fixer *f, ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    if (d == &onnx__tensor_proto__descriptor)
        fix_tensor(f, (Onnx__TensorProto *)msg);
    char *base = (char *)msg;
    for (unsigned i = 0; i < d->n_fields && !f->nomem; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t cnt = *(size_t *)(base + fd->quantifier_offset);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)(base + fd->offset);
            for (size_t j = 0; j < cnt && arr; j++)
                if (arr[j])
                    fix_message(f, arr[j]);
        } else {
            if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                *(uint32_t *)(base + fd->quantifier_offset) != fd->id)
                continue;
            ProtobufCMessage *sub = *(ProtobufCMessage **)(base + fd->offset);
            if (sub)
                fix_message(f, sub);
        }
    }
}

static void make_nonce(uint8_t nonce[8])
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)nonce ^
            (uint64_t)ts.tv_sec;
    }
    memcpy(nonce, &v, 8);
}

/* Unpacks buf with raw_data payloads of at least min_len bytes left in buf:
 * *owner (with (*owner)->mp) on success, *owner NULL when there is nothing to
 * leave in place (the caller unpacks as usual). */
static hpcz_status unpack_in_place(const uint8_t *buf, size_t len, size_t min_len,
                                   borrowed_proto **owner, hpcz_error *err)
{
    *owner = NULL;
    const ProtobufCFieldDescriptor *raw =
        protobuf_c_message_descriptor_get_field_by_name(&onnx__tensor_proto__descriptor, "raw_data");
    if (!raw)
        return HPCZ_OK;
    hpcz_wire_span *spans = NULL;
    size_t n = 0;
    hpcz_status st = hpcz_wire_find_payloads(buf, len, &onnx__model_proto__descriptor,
                                             &onnx__tensor_proto__descriptor, raw->id, min_len,
                                             HPCZ_PROTO_MAX_DEPTH, &spans, &n, err);
    if (st || n == 0) {
        free(spans);
        return st;
    }
    fixer f = {.buf = buf, .spans = spans, .n = n};
    make_nonce(f.nonce);
    uint8_t *markers = malloc(n * MARKER_LEN);
    f.used = calloc(n, 1);
    f.b = calloc(1, sizeof *f.b);
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    Onnx__ModelProto *mp = NULL;
    if (!markers || !f.used || !f.b) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(markers + i * MARKER_LEN, f.nonce, 8);
        for (int k = 0; k < 8; k++)
            markers[i * MARKER_LEN + 8 + k] = (uint8_t)((uint64_t)i >> (8 * k));
    }
    if ((st = hpcz_wire_replace_payloads(buf, len, &onnx__model_proto__descriptor, spans, n,
                                         markers, MARKER_LEN, &wire, &wire_len, err)))
        goto out;
    mp = onnx__model_proto__unpack(NULL, wire_len, wire);
    if (!mp) {
        st = hpcz_fail(err, HPCZ_ERR_PARSE, "not an ONNX model (protobuf decoding failed)");
        goto out;
    }
    f.b->mp = mp;
    fix_message(&f, &mp->base);
    if (f.nomem) {
        free_borrowed_proto(f.b);
        f.b = NULL;
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto out;
    }
    *owner = f.b;
    f.b = NULL;
out:
    free(f.b);
    free(wire);
    free(markers);
    free(f.used);
    free(spans);
    return st;
}

/* borrow: buf stays valid and unchanged until the model is freed; *borrowed
 * then says whether the model uses it. */
static hpcz_model *model_from_buffer(const void *buf, size_t len, const hpcz_load_opts *opts,
                                     const char *base_dir, bool borrow, size_t borrow_min,
                                     bool *borrowed, hpcz_error *err)
{
    if (borrowed)
        *borrowed = false;
    if (len == 0) {
        hpcz_fail(err, HPCZ_ERR_PARSE, "empty file");
        return NULL;
    }
    if (hpcz_wire_check(buf, len, &onnx__model_proto__descriptor, HPCZ_PROTO_MAX_DEPTH, err)) {
        hpcz_error_prefix(err, "not an ONNX model");
        err->status = HPCZ_ERR_PARSE;
        return NULL;
    }
    if (borrow) {
        borrowed_proto *owner;
        if (unpack_in_place(buf, len, borrow_min ? borrow_min : BORROW_MIN_DEFAULT, &owner, err))
            return NULL;
        if (owner) {
            if (borrowed)
                *borrowed = true;
            return hpcz_onnx_model_from_proto(owner->mp, owner, free_borrowed_proto, opts, base_dir,
                                              err);
        }
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp) {
        hpcz_fail(err, HPCZ_ERR_PARSE, "not an ONNX model (protobuf decoding failed)");
        return NULL;
    }
    return hpcz_onnx_model_from_proto(mp, mp, free_model_proto, opts, base_dir, err);
}

hpcz_model *hpcz_onnx_model_from_proto(const Onnx__ModelProto *mp, void *owner,
                                       void (*owner_free)(void *), const hpcz_load_opts *opts,
                                       const char *base_dir, hpcz_error *err)
{
    if (!mp->graph) {
        owner_free(owner);
        hpcz_fail(err, HPCZ_ERR_PARSE, "not an ONNX model (no graph)");
        return NULL;
    }
    hpcz_model *m = hpcz_model_new();
    if (!m) {
        owner_free(owner);
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->priv->proto = owner;
    m->priv->proto_free = owner_free;
    m->priv->payloads = &hpcz_onnx_payloads;
    m->priv->base_dir = strdup(base_dir ? base_dir : ".");
    m->src = mp;
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    m->producer_name = mp->producer_name;
    m->producer_version = mp->producer_version;
    m->domain = mp->domain;
    m->model_version = mp->model_version;
    m->doc_string = mp->doc_string;
    m->n_opsets = mp->n_opset_import;
    m->opsets = mp->n_opset_import ? hpcz_model_alloc(m, mp->n_opset_import * sizeof *m->opsets)
                                   : NULL;
    for (size_t i = 0; i < mp->n_opset_import && m->opsets; i++) {
        m->opsets[i].domain = mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "";
        m->opsets[i].version = mp->opset_import[i]->version;
    }
    m->n_meta = mp->n_metadata_props;
    m->meta = mp->n_metadata_props ? hpcz_model_alloc(m, mp->n_metadata_props * sizeof *m->meta)
                                   : NULL;
    for (size_t i = 0; i < mp->n_metadata_props && m->meta; i++) {
        m->meta[i].key = mp->metadata_props[i]->key;
        m->meta[i].value = mp->metadata_props[i]->value;
    }
    reader r = {m, err};
    hpcz_graph *g;
    /* hpcz_model_new made an empty top graph; the file's replaces it. */
    if (read_graph(&r, mp->graph, NULL, NULL, &g) != HPCZ_OK) {
        hpcz_model_free(m);
        return NULL;
    }
    m->graph = g;
    if (!(opts && opts->skip_verify) && hpcz_model_verify(m, err) != HPCZ_OK) {
        hpcz_model_free(m);
        return NULL;
    }
    return m;
}

hpcz_model *hpcz_onnx_load_buffer(const void *buf, size_t len, const hpcz_load_opts *opts,
                                  hpcz_error *err)
{
    return model_from_buffer(buf, len, opts, opts ? opts->base_dir : NULL, opts && opts->borrow,
                             opts ? opts->borrow_min : 0, NULL, err);
}

hpcz_model *hpcz_onnx_load(const char *path, const hpcz_load_opts *opts, hpcz_error *err)
{
    if (strcmp(path, "-") == 0) {
        uint8_t *buf;
        size_t len;
        if (hpcz_model_stream_read(path, 0, &buf, &len, err))
            return NULL;
        hpcz_model *m = model_from_buffer(buf, len, opts, opts ? opts->base_dir : NULL, false, 0,
                                          NULL, err);
        free(buf);
        if (m) {
            m->path = hpcz_model_strdup(m, "-");
            m->file_size = len;
        }
        return m;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hpcz_fail(err, HPCZ_ERR_IO, "%s", errno == ENOENT ? "no such file" : strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        hpcz_fail(err, HPCZ_ERR_IO, "%s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        hpcz_fail(err, HPCZ_ERR_IO, "is a directory, expected a model file");
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        /* pipes and devices: read them whole */
        close(fd);
        uint8_t *buf;
        size_t len;
        if (hpcz_model_stream_read(path, 0, &buf, &len, err))
            return NULL;
        hpcz_model *m = model_from_buffer(buf, len, opts, ".", false, 0, NULL, err);
        free(buf);
        return m;
    }
    size_t len = (size_t)st.st_size;
    void *addr = NULL;
    if (len) {
        addr = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            hpcz_fail(err, HPCZ_ERR_IO, "mmap: %s", strerror(errno));
            close(fd);
            return NULL;
        }
        madvise(addr, len, MADV_SEQUENTIAL);
    }
    close(fd);
    /* External data lives next to the model. */
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            n = sizeof dir - 1;
        memcpy(dir, path, n ? n : 1);
        dir[n ? n : 1] = 0;
    } else {
        strcpy(dir, ".");
    }
    /* large payloads stay in the mapping, which then lives as long as the model */
    bool borrowed = false;
    hpcz_model *m = model_from_buffer(addr, len, opts, opts && opts->base_dir ? opts->base_dir : dir,
                                      true, opts ? opts->borrow_min : 0, &borrowed, err);
    if (m && borrowed) {
        struct hpcz_model_priv *p = m->priv;
        hpcz_mapping *nm = realloc(p->maps, (p->n_maps + 1) * sizeof *nm);
        char *tag = strdup(""); /* no external data path is empty */
        if (!nm || !tag) {
            free(tag);
            if (nm)
                p->maps = nm;
            hpcz_model_free(m);
            munmap(addr, len);
            hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            return NULL;
        }
        p->maps = nm;
        p->maps[p->n_maps++] = (hpcz_mapping){addr, len, tag};
    } else if (addr) {
        munmap(addr, len); /* protobuf-c copied what it needed */
    }
    if (m) {
        m->path = hpcz_model_strdup(m, path);
        m->file_size = len;
    }
    return m;
}
