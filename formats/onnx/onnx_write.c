/*
 * onnx_write.c - hpcz IR -> ONNX ModelProto.
 *
 * Every proto object is rebuilt from the IR, starting from a shallow copy of
 * the object it was read from (when there is one) so that fields the IR does
 * not model - doc strings, metadata, overloads, fields newer than the schema
 * hpcz was built with (kept by protobuf-c as unknown fields) - travel through
 * unchanged. Tensors and value infos that nothing touched are re-emitted
 * verbatim, so their encoding (raw_data vs float_data, ...) is preserved too.
 */
#include "onnx_internal.h"

#include <errno.h>
#include <limits.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROTOBUF_LIMIT ((uint64_t)2 << 30)

typedef struct writer {
    hpcz_arena arena;
    const hpcz_save_opts *opts;
    hpcz_error *err;
    hpcz_status st;
    /* external data */
    FILE *data_f;
    const char *data_name;
    uint64_t data_off;
    uint64_t inline_bytes;
} writer;

static void *w_alloc(writer *w, size_t n)
{
    void *p = hpcz_arena_alloc(&w->arena, n ? n : 1);
    if (!p && !w->st)
        w->st = hpcz_fail(w->err, HPCZ_ERR_NOMEM, "out of memory");
    return p;
}

static char *w_strdup(writer *w, const char *s)
{
    size_t n = strlen(s);
    char *p = w_alloc(w, n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

/* ------------------------------------------------------------ tensors */

static void clear_payload(Onnx__TensorProto *tp)
{
    tp->n_float_data = 0;
    tp->float_data = NULL;
    tp->n_int32_data = 0;
    tp->int32_data = NULL;
    tp->n_string_data = 0;
    tp->string_data = NULL;
    tp->n_int64_data = 0;
    tp->int64_data = NULL;
    tp->n_double_data = 0;
    tp->double_data = NULL;
    tp->n_uint64_data = 0;
    tp->uint64_data = NULL;
    tp->has_raw_data = 0;
    tp->raw_data.data = NULL;
    tp->raw_data.len = 0;
    tp->n_external_data = 0;
    tp->external_data = NULL;
    tp->has_data_location = 0;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
}

static bool src_is_external(const Onnx__TensorProto *tp)
{
    return tp && tp->has_data_location &&
           tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

static Onnx__StringStringEntryProto *kv(writer *w, const char *k, const char *v)
{
    Onnx__StringStringEntryProto *e = w_alloc(w, sizeof *e);
    if (!e)
        return NULL;
    onnx__string_string_entry_proto__init(e);
    e->key = w_strdup(w, k);
    e->value = w_strdup(w, v);
    return e;
}

static hpcz_status write_external(writer *w, hpcz_tensor *t, const void *data, size_t nb,
                                  Onnx__TensorProto *tp)
{
    /* 64-byte aligned payloads: SIMD loads straight from an mmap */
    uint64_t pad = (64 - (w->data_off % 64)) % 64;
    static const uint8_t zeros[64];
    if (pad && fwrite(zeros, 1, pad, w->data_f) != pad)
        return hpcz_fail(w->err, HPCZ_ERR_IO, "writing external data: %s", strerror(errno));
    w->data_off += pad;
    if (nb && fwrite(data, 1, nb, w->data_f) != nb)
        return hpcz_fail(w->err, HPCZ_ERR_IO, "writing external data: %s", strerror(errno));
    char off[32], len[32];
    snprintf(off, sizeof off, "%llu", (unsigned long long)w->data_off);
    snprintf(len, sizeof len, "%zu", nb);
    w->data_off += nb;
    tp->n_external_data = 3;
    tp->external_data = w_alloc(w, 3 * sizeof *tp->external_data);
    if (!tp->external_data)
        return w->st;
    tp->external_data[0] = kv(w, "location", w->data_name);
    tp->external_data[1] = kv(w, "offset", off);
    tp->external_data[2] = kv(w, "length", len);
    tp->has_data_location = 1;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    (void)t;
    return w->st;
}

static Onnx__TensorProto *w_tensor(writer *w, hpcz_tensor *t)
{
    if (w->st)
        return NULL;
    const Onnx__TensorProto *src = t->src;
    bool regen = w->opts && w->opts->regenerate;
    size_t nb = hpcz_dtype_nbytes(t->dtype, t->numel);
    bool dense = t->dtype != HPCZ_DTYPE_STRING && hpcz_dtype_bits(t->dtype) > 0;
    bool want_ext = w->data_f && dense && nb >= w->opts->external_threshold && t->name;
    if (src && !t->dirty && !regen && !want_ext && !src_is_external(src)) {
        w->inline_bytes += nb;
        return (Onnx__TensorProto *)src; /* untouched: verbatim */
    }
    if (!dense) {
        if (src && !t->dirty)
            return (Onnx__TensorProto *)src;
        w->st = hpcz_fail(w->err, HPCZ_ERR_UNSUPPORTED, "tensor '%s': cannot write %s data",
                          t->name ? t->name : "", hpcz_dtype_name(t->dtype));
        return NULL;
    }
    Onnx__TensorProto *tp = w_alloc(w, sizeof *tp);
    if (!tp)
        return NULL;
    if (src) {
        *tp = *src;
        clear_payload(tp);
    } else {
        onnx__tensor_proto__init(tp);
    }
    if (t->name)
        tp->name = (char *)t->name;
    tp->has_data_type = 1;
    tp->data_type = t->dtype;
    tp->n_dims = (size_t)t->ndim;
    tp->dims = t->dims;
    const void *data = hpcz_tensor_data(t, w->err);
    if (!data && t->numel) {
        w->st = w->err->status;
        return NULL;
    }
    if (want_ext) {
        if (write_external(w, t, data, nb, tp))
            w->st = w->err->status;
        return tp;
    }
    tp->has_raw_data = 1;
    tp->raw_data.data = (uint8_t *)data;
    tp->raw_data.len = nb;
    w->inline_bytes += nb;
    return tp;
}

/* ------------------------------------------------------------ values */

static Onnx__ValueInfoProto *w_value_info(writer *w, const hpcz_value *v,
                                          const Onnx__ValueInfoProto *orig)
{
    bool regen = w->opts && w->opts->regenerate;
    if (!regen && !v->type_dirty) {
        if (orig && orig->name && strcmp(orig->name, v->name) == 0)
            return (Onnx__ValueInfoProto *)orig;
        const Onnx__ValueInfoProto *vs = v->src;
        if (vs && vs->name && strcmp(vs->name, v->name) == 0)
            return (Onnx__ValueInfoProto *)vs;
    }
    const Onnx__ValueInfoProto *src = orig && orig->name && strcmp(orig->name, v->name) == 0
                                          ? orig
                                          : (const Onnx__ValueInfoProto *)v->src;
    Onnx__ValueInfoProto *vi = w_alloc(w, sizeof *vi);
    if (!vi)
        return NULL;
    if (src)
        *vi = *src;
    else
        onnx__value_info_proto__init(vi);
    vi->name = (char *)v->name;
    /* Non-tensor types (sequence, map, optional) are kept as they were. */
    if (src && src->type && src->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return vi;
    if (v->dtype == HPCZ_DTYPE_UNDEFINED && v->ndim < 0 && !(src && src->type)) {
        vi->type = NULL;
        return vi;
    }
    Onnx__TypeProto *ty = w_alloc(w, sizeof *ty);
    Onnx__TypeProto__Tensor *tt = w_alloc(w, sizeof *tt);
    if (!ty || !tt)
        return NULL;
    if (src && src->type)
        *ty = *src->type;
    else
        onnx__type_proto__init(ty);
    if (src && src->type && src->type->tensor_type)
        *tt = *src->type->tensor_type;
    else
        onnx__type_proto__tensor__init(tt);
    ty->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    ty->tensor_type = tt;
    tt->has_elem_type = v->dtype != HPCZ_DTYPE_UNDEFINED ||
                        (src && src->type && src->type->tensor_type &&
                         src->type->tensor_type->has_elem_type);
    tt->elem_type = v->dtype;
    if (v->ndim < 0) {
        tt->shape = NULL;
    } else {
        const Onnx__TensorShapeProto *oshape =
            src && src->type && src->type->tensor_type ? src->type->tensor_type->shape : NULL;
        Onnx__TensorShapeProto *sh = w_alloc(w, sizeof *sh);
        if (!sh)
            return NULL;
        if (oshape)
            *sh = *oshape;
        else
            onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)v->ndim;
        sh->dim = v->ndim ? w_alloc(w, (size_t)v->ndim * sizeof *sh->dim) : NULL;
        for (int i = 0; i < v->ndim && sh->dim; i++) {
            Onnx__TensorShapeProto__Dimension *d = w_alloc(w, sizeof *d);
            if (!d)
                return NULL;
            if (oshape && (size_t)i < oshape->n_dim)
                *d = *oshape->dim[i];
            else
                onnx__tensor_shape_proto__dimension__init(d);
            if (v->dims[i].size >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = v->dims[i].size;
            } else if (v->dims[i].param) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = (char *)v->dims[i].param;
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE__NOT_SET;
            }
            sh->dim[i] = d;
        }
        tt->shape = sh;
    }
    vi->type = ty;
    return vi;
}

/* ------------------------------------------------------------ graphs */

static Onnx__GraphProto *w_graph(writer *w, hpcz_graph *g);

static Onnx__AttributeProto *w_attr(writer *w, hpcz_attr *a)
{
    const Onnx__AttributeProto *src = a->src;
    Onnx__AttributeProto *ap = w_alloc(w, sizeof *ap);
    if (!ap)
        return NULL;
    if (src) {
        *ap = *src;
    } else {
        onnx__attribute_proto__init(ap);
        ap->has_type = 1;
    }
    ap->name = (char *)a->name;
    if (ap->has_type || a->type != HPCZ_ATTR_UNDEFINED)
        ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    switch (a->type) {
    case HPCZ_ATTR_FLOAT:
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case HPCZ_ATTR_INT:
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case HPCZ_ATTR_STRING:
        ap->has_s = 1;
        ap->s.data = (uint8_t *)a->s.data;
        ap->s.len = a->s.len;
        break;
    case HPCZ_ATTR_FLOATS:
        ap->n_floats = a->n;
        ap->floats = a->floats;
        break;
    case HPCZ_ATTR_INTS:
        ap->n_ints = a->n;
        ap->ints = a->ints;
        break;
    case HPCZ_ATTR_STRINGS:
        ap->n_strings = a->n;
        ap->strings = w_alloc(w, (a->n ? a->n : 1) * sizeof *ap->strings);
        for (size_t i = 0; i < a->n && ap->strings; i++) {
            ap->strings[i].data = (uint8_t *)a->strings[i].data;
            ap->strings[i].len = a->strings[i].len;
        }
        break;
    default:
        break;
    }
    if (a->t)
        ap->t = w_tensor(w, a->t);
    if (a->g)
        ap->g = w_graph(w, a->g);
    size_t nt = a->type == HPCZ_ATTR_TENSORS ? a->n : (src ? src->n_tensors : 0);
    if (a->tensors && nt) {
        ap->n_tensors = nt;
        ap->tensors = w_alloc(w, nt * sizeof *ap->tensors);
        for (size_t i = 0; i < nt && ap->tensors; i++)
            ap->tensors[i] = w_tensor(w, a->tensors[i]);
    }
    size_t ng = a->type == HPCZ_ATTR_GRAPHS ? a->n : (src ? src->n_graphs : 0);
    if (a->graphs && ng) {
        ap->n_graphs = ng;
        ap->graphs = w_alloc(w, ng * sizeof *ap->graphs);
        for (size_t i = 0; i < ng && ap->graphs; i++)
            ap->graphs[i] = w_graph(w, a->graphs[i]);
    }
    return ap;
}

static char **w_names(writer *w, hpcz_value **vals, size_t n)
{
    char **names = w_alloc(w, (n ? n : 1) * sizeof *names);
    for (size_t i = 0; i < n && names; i++)
        names[i] = vals[i] ? (char *)vals[i]->name : (char *)"";
    return names;
}

static Onnx__NodeProto *w_node(writer *w, hpcz_node *n)
{
    Onnx__NodeProto *np = w_alloc(w, sizeof *np);
    if (!np)
        return NULL;
    if (n->src)
        *np = *(const Onnx__NodeProto *)n->src;
    else
        onnx__node_proto__init(np);
    np->name = (char *)n->name;
    np->op_type = (char *)n->op_type;
    np->domain = (char *)n->domain;
    np->n_input = n->n_inputs;
    np->input = w_names(w, n->inputs, n->n_inputs);
    np->n_output = n->n_outputs;
    np->output = w_names(w, n->outputs, n->n_outputs);
    np->n_attribute = n->n_attrs;
    np->attribute = w_alloc(w, (n->n_attrs ? n->n_attrs : 1) * sizeof *np->attribute);
    for (size_t i = 0; i < n->n_attrs && np->attribute; i++)
        np->attribute[i] = w_attr(w, &n->attrs[i]);
    return np;
}

static Onnx__ValueInfoProto **w_value_list(writer *w, hpcz_value **vals, size_t n,
                                           Onnx__ValueInfoProto *const *orig, size_t n_orig)
{
    Onnx__ValueInfoProto **out = w_alloc(w, (n ? n : 1) * sizeof *out);
    for (size_t i = 0; i < n && out; i++)
        out[i] = w_value_info(w, vals[i], i < n_orig ? orig[i] : NULL);
    return out;
}

static Onnx__GraphProto *w_graph(writer *w, hpcz_graph *g)
{
    if (w->st)
        return NULL;
    const Onnx__GraphProto *src = g->src;
    Onnx__GraphProto *gp = w_alloc(w, sizeof *gp);
    if (!gp)
        return NULL;
    if (src)
        *gp = *src;
    else
        onnx__graph_proto__init(gp);
    gp->name = (char *)g->name;
    gp->n_node = g->n_nodes;
    gp->node = w_alloc(w, (g->n_nodes ? g->n_nodes : 1) * sizeof *gp->node);
    for (size_t i = 0; i < g->n_nodes && gp->node; i++)
        gp->node[i] = w_node(w, g->nodes[i]);
    gp->n_initializer = g->n_inits;
    gp->initializer = w_alloc(w, (g->n_inits ? g->n_inits : 1) * sizeof *gp->initializer);
    for (size_t i = 0; i < g->n_inits && gp->initializer; i++)
        gp->initializer[i] = w_tensor(w, g->inits[i]);
    gp->n_input = g->n_inputs;
    gp->input = w_value_list(w, g->inputs, g->n_inputs, src ? src->input : NULL,
                             src ? src->n_input : 0);
    gp->n_output = g->n_outputs;
    gp->output = w_value_list(w, g->outputs, g->n_outputs, src ? src->output : NULL,
                              src ? src->n_output : 0);
    gp->n_value_info = g->n_value_info;
    gp->value_info = w_value_list(w, g->value_info, g->n_value_info, src ? src->value_info : NULL,
                                  src ? src->n_value_info : 0);
    return w->st ? NULL : gp;
}

static Onnx__ModelProto *w_model(writer *w, const hpcz_model *m)
{
    const Onnx__ModelProto *src = m->src;
    Onnx__ModelProto *mp = w_alloc(w, sizeof *mp);
    if (!mp)
        return NULL;
    if (src)
        *mp = *src;
    else
        onnx__model_proto__init(mp);
    mp->has_ir_version = 1;
    mp->ir_version = m->ir_version;
    mp->producer_name = (char *)m->producer_name;
    mp->producer_version = (char *)m->producer_version;
    mp->domain = (char *)m->domain;
    mp->has_model_version = (src && src->has_model_version) || m->model_version != 0;
    mp->model_version = m->model_version;
    mp->doc_string = (char *)m->doc_string;
    mp->n_opset_import = m->n_opsets;
    mp->opset_import = w_alloc(w, (m->n_opsets ? m->n_opsets : 1) * sizeof *mp->opset_import);
    for (size_t i = 0; i < m->n_opsets && mp->opset_import; i++) {
        const Onnx__OperatorSetIdProto *o =
            src && i < src->n_opset_import ? src->opset_import[i] : NULL;
        if (o && o->version == m->opsets[i].version &&
            strcmp(o->domain ? o->domain : "", m->opsets[i].domain) == 0) {
            mp->opset_import[i] = (Onnx__OperatorSetIdProto *)o;
            continue;
        }
        Onnx__OperatorSetIdProto *no = w_alloc(w, sizeof *no);
        if (!no)
            return NULL;
        onnx__operator_set_id_proto__init(no);
        no->domain = (char *)m->opsets[i].domain;
        no->has_version = 1;
        no->version = m->opsets[i].version;
        mp->opset_import[i] = no;
    }
    mp->n_metadata_props = m->n_meta;
    mp->metadata_props = w_alloc(w, (m->n_meta ? m->n_meta : 1) * sizeof *mp->metadata_props);
    for (size_t i = 0; i < m->n_meta && mp->metadata_props; i++) {
        const Onnx__StringStringEntryProto *o =
            src && i < src->n_metadata_props ? src->metadata_props[i] : NULL;
        if (o && o->key == m->meta[i].key && o->value == m->meta[i].value) {
            mp->metadata_props[i] = (Onnx__StringStringEntryProto *)o;
            continue;
        }
        Onnx__StringStringEntryProto *e = w_alloc(w, sizeof *e);
        if (!e)
            return NULL;
        onnx__string_string_entry_proto__init(e);
        e->key = (char *)m->meta[i].key;
        e->value = (char *)m->meta[i].value;
        mp->metadata_props[i] = e;
    }
    mp->graph = w_graph(w, m->graph);
    return w->st ? NULL : mp;
}

/* ------------------------------------------------------------ output */

typedef struct file_buffer {
    ProtobufCBuffer base;
    FILE *f;
    int failed;
} file_buffer;

static void file_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_buffer *fb = (file_buffer *)b;
    if (!fb->failed && len && fwrite(data, 1, len, fb->f) != len)
        fb->failed = errno ? errno : EIO;
}

static hpcz_status check_limit(writer *w, const Onnx__ModelProto *mp, size_t *size_out)
{
    size_t size = onnx__model_proto__get_packed_size(mp);
    if (size >= PROTOBUF_LIMIT)
        return hpcz_fail(w->err, HPCZ_ERR_UNSUPPORTED,
                         "the model is %.2f GB, above protobuf's 2 GB limit: write it with "
                         "--external-data",
                         (double)size / 1e9);
    *size_out = size;
    return HPCZ_OK;
}

/* The ModelProto of m with every tensor inline, and its serialized size
 * (checked against protobuf's limit); w's arena holds it. */
static Onnx__ModelProto *inline_proto(writer *w, const hpcz_model *m, size_t *size)
{
    Onnx__ModelProto *mp = w_model(w, m);
    *size = 0;
    if (!w->st && mp)
        w->st = check_limit(w, mp, size);
    return mp;
}

hpcz_status hpcz_onnx_serialize(const hpcz_model *m, const hpcz_save_opts *opts, uint8_t **out,
                                size_t *out_len, hpcz_error *err)
{
    hpcz_save_opts local = opts ? *opts : (hpcz_save_opts){0};
    local.external = 0;
    writer w = {.opts = &local, .err = err};
    size_t size;
    Onnx__ModelProto *mp = inline_proto(&w, m, &size);
    if (!w.st) {
        *out = malloc(size ? size : 1);
        if (!*out)
            w.st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        else
            *out_len = onnx__model_proto__pack(mp, *out);
    }
    hpcz_arena_release(&w.arena);
    return w.st;
}

hpcz_status hpcz_onnx_serialized_size(const hpcz_model *m, const hpcz_save_opts *opts,
                                      size_t *out_len, hpcz_error *err)
{
    hpcz_save_opts local = opts ? *opts : (hpcz_save_opts){0};
    local.external = 0;
    writer w = {.opts = &local, .err = err};
    size_t size;
    inline_proto(&w, m, &size);
    if (!w.st)
        *out_len = size;
    hpcz_arena_release(&w.arena);
    return w.st;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* After an in-place rewrite with external data: the input's data files
 * named like the new one plus a suffix (what an earlier in-place write
 * made: "m.onnx.data.1a2b3c") belong to no model any more. Others are left
 * alone: another model may share them. */
static void retire_old_data(const hpcz_model *m, const char *new_data)
{
    const char *s = strrchr(new_data, '.');
    size_t stem = strlen(new_data);
    /* new_data is "D" or "D.XXXXXX": the stem D */
    if (s && strlen(s) == 7 && strspn(s + 1, "0123456789abcdef") == 6)
        stem = (size_t)(s - new_data);
    for (size_t i = 0; i < m->priv->n_maps; i++) {
        const char *old = m->priv->maps[i].path;
        const char *os = strrchr(old, '/'), *ns = strrchr(new_data, '/');
        const char *ob = os ? os + 1 : old, *nb = ns ? ns + 1 : new_data;
        size_t nstem = stem - (size_t)(nb - new_data);
        struct stat a, b;
        if (stat(old, &a) == 0 && stat(new_data, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            continue;
        if (!strncmp(ob, nb, nstem) && ob[nstem] == '.' && strlen(ob + nstem) == 7 &&
            strspn(ob + nstem + 1, "0123456789abcdef") == 6)
            unlink(old);
    }
}

hpcz_status hpcz_onnx_save(const hpcz_model *m, const char *path, const hpcz_save_opts *opts,
                           hpcz_error *err)
{
    hpcz_save_opts local = opts ? *opts : (hpcz_save_opts){0};
    if (local.external && local.external_threshold == 0)
        local.external_threshold = 1024;
    writer w = {.opts = &local, .err = err};
    hpcz_outfile *data_out = NULL, *model_out = NULL;
    char data_name[PATH_MAX], data_path[PATH_MAX];
    char *replaced_data = NULL; /* the input's data file an in-place write retires */
    bool in_place_model = false;
    {
        struct stat a, b;
        in_place_model = local.overwrite_inputs && m->path && strcmp(path, "-") &&
                         stat(path, &a) == 0 && stat(m->path, &b) == 0 && a.st_dev == b.st_dev &&
                         a.st_ino == b.st_ino;
    }
    if (local.external) {
        if (strcmp(path, "-") == 0)
            return hpcz_fail(err, HPCZ_ERR_USAGE,
                             "external data needs a model file, not standard output");
        const char *dn = local.external_name ? local.external_name : base_name(path);
        if (strlen(dn) + 6 > sizeof data_name)
            return hpcz_fail(err, HPCZ_ERR_USAGE, "output path too long");
        strcpy(data_name, dn);
        if (!local.external_name)
            strcat(data_name, ".data");
        if (strchr(data_name, '/'))
            return hpcz_fail(err, HPCZ_ERR_USAGE, "external data name '%s' must be a plain file name",
                             data_name);
        size_t dir_len = (size_t)(base_name(path) - path);
        if (dir_len + strlen(data_name) + 1 > sizeof data_path)
            return hpcz_fail(err, HPCZ_ERR_USAGE, "output path too long");
        memcpy(data_path, path, dir_len);
        strcpy(data_path + dir_len, data_name);
        const char *src = hpcz_model_source_file(m, data_path);
        if (src && !local.overwrite_inputs)
            return hpcz_fail(err, HPCZ_ERR_USAGE,
                             "refusing to write external data over the input's '%s' "
                             "(use --in-place or another --external-name)", src);
        if (src) {
            /* In place: two renames one after the other would pair the old
             * model with the new data if the process died between them. The
             * new data goes under a name of its own; renaming the model is
             * then the one step that switches both, and the old data file is
             * removed after it. */
            if (strlen(data_path) + 8 > sizeof data_path)
                return hpcz_fail(err, HPCZ_ERR_USAGE, "output path too long");
            struct stat st;
            size_t base = strlen(data_name), pbase = strlen(data_path);
            for (unsigned k = 0;; k++) {
                uint32_t r = 0;
                if (getrandom(&r, sizeof r, 0) != sizeof r)
                    r = (uint32_t)getpid() * 2654435761u + k;
                snprintf(data_name + base, 8, ".%06x", r & 0xffffff);
                strcpy(data_path + pbase, data_name + base);
                if (lstat(data_path, &st) != 0 || k == 64)
                    break;
            }
            if (!(replaced_data = strdup(src)))
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
        data_out = hpcz_outfile_open(data_path, err);
        if (!data_out) {
            free(replaced_data);
            return err->status;
        }
        w.data_f = hpcz_outfile_stream(data_out);
        w.data_name = data_name;
    }
    Onnx__ModelProto *mp = w_model(&w, m);
    size_t size = 0;
    if (!w.st && mp)
        w.st = check_limit(&w, mp, &size);
    if (!w.st) {
        model_out = hpcz_outfile_open(path, err);
        if (!model_out)
            w.st = err->status;
    }
    if (!w.st) {
        file_buffer fb = {{file_append}, hpcz_outfile_stream(model_out), 0};
        onnx__model_proto__pack_to_buffer(mp, &fb.base);
        if (fb.failed)
            w.st = hpcz_fail(err, HPCZ_ERR_IO, "writing the model: %s", strerror(fb.failed));
    }
    if (!w.st && data_out)
        w.st = hpcz_outfile_commit(data_out, err);
    else if (data_out)
        hpcz_outfile_abort(data_out);
    if (!w.st && model_out)
        w.st = hpcz_outfile_commit(model_out, err);
    else if (model_out)
        hpcz_outfile_abort(model_out);
    if (!w.st && replaced_data)
        unlink(replaced_data);
    if (!w.st && in_place_model && data_out)
        retire_old_data(m, data_path);
    else if (w.st && replaced_data && data_out)
        unlink(data_path); /* committed, but its model was not */
    free(replaced_data);
    hpcz_arena_release(&w.arena);
    return w.st;
}

/* ------------------------------------------------------------ canonical */

hpcz_status hpcz_onnx_canonicalize(const void *buf, size_t len, uint8_t **out, size_t *out_len,
                                   hpcz_error *err)
{
    if (hpcz_wire_check(buf, len, &onnx__model_proto__descriptor, HPCZ_PROTO_MAX_DEPTH, err))
        return err->status;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "not an ONNX model (protobuf decoding failed)");
    size_t n = onnx__model_proto__get_packed_size(mp);
    *out = malloc(n ? n : 1);
    if (!*out) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    *out_len = onnx__model_proto__pack(mp, *out);
    onnx__model_proto__free_unpacked(mp, NULL);
    return HPCZ_OK;
}

hpcz_model *hpcz_model_clone(const hpcz_model *m, hpcz_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (hpcz_onnx_serialize(m, NULL, &buf, &len, err))
        return NULL;
    hpcz_load_opts lo = {.skip_verify = 1};
    hpcz_model *c = hpcz_onnx_load_buffer(buf, len, &lo, err);
    free(buf);
    if (c) {
        c->file_size = m->file_size;
        c->path = m->path ? hpcz_model_strdup(c, m->path) : NULL;
    }
    return c;
}
