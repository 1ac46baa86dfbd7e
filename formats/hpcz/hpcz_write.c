/*
 * hpcz_write.c - hpcz IR -> .hpcz container (FORMAT.md).
 *
 * The skeleton is the model as the ONNX writer emits it, with every movable
 * tensor payload replaced by a reference into the tensor table. To get it,
 * each movable tensor's source proto is swapped for a payload-free copy that
 * carries the reference, the ONNX writer runs (and emits the copies
 * verbatim), and the sources are put back: everything the ONNX writer keeps
 * (unknown fields, doc strings, functions, ...) the skeleton keeps too.
 */
#include "hpcz_internal.h"

#include <errno.h>
#include <inttypes.h>

/* A tensor whose payload goes to the table. */
typedef struct mover {
    hpcz_tensor *t;
    const void *saved_src;
    unsigned saved_dirty : 1;
    const uint8_t *payload;
    size_t len;
    int field;
    unsigned unit;
} mover;

/* One table entry, in skeleton order. */
typedef struct entry {
    const mover *mv;
    int dtype;
    int ndim;
    const int64_t *dims;
    uint8_t *stored; /* malloc'd encoding, or NULL: the payload itself */
    size_t stored_len;
    int encoding;
    uint64_t offset;
    uint64_t checksum;
    hpcz_error err;
    hpcz_status st;
} entry;

typedef struct build {
    hpcz_arena arena;
    mover *movers;
    size_t n_movers, cap_movers;
    entry *entries;
    uint32_t n_entries;
    uint8_t *skel;
    size_t skel_len;
    uint8_t *meta; /* header + skeleton + table, padded to the first payload */
    size_t meta_len;
    uint64_t file_size;
} build;

static void build_release(build *b)
{
    for (uint32_t i = 0; i < b->n_entries; i++)
        free(b->entries[i].stored);
    free(b->entries);
    free(b->movers);
    free(b->skel);
    free(b->meta);
    hpcz_arena_release(&b->arena);
}

static bool src_is_external(const Onnx__TensorProto *tp)
{
    return tp && tp->has_data_location &&
           tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

/* The payload of a clean tensor as its source proto holds it: one field with
 * the right count, or nothing (the tensor then stays inline). */
static bool proto_payload(const Onnx__TensorProto *tp, int dtype, int64_t numel, mover *mv)
{
    if (tp->segment || tp->n_string_data || tp->n_external_data)
        return false;
    struct {
        int field;
        size_t count;
        const void *data;
        size_t elem;
    } f[] = {
        {HZ_FIELD_FLOAT, tp->n_float_data, tp->float_data, 4},
        {HZ_FIELD_INT32, tp->n_int32_data, tp->int32_data, 4},
        {HZ_FIELD_INT64, tp->n_int64_data, tp->int64_data, 8},
        {HZ_FIELD_DOUBLE, tp->n_double_data, tp->double_data, 8},
        {HZ_FIELD_UINT64, tp->n_uint64_data, tp->uint64_data, 8},
    };
    int found = -1;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(f); i++)
        if (f[i].count) {
            if (found >= 0)
                return false;
            found = (int)i;
        }
    uint64_t want;
    unsigned unit;
    if (tp->has_raw_data) {
        if (found >= 0 || !hz_field_layout(HZ_FIELD_RAW, dtype, numel, &want, &unit) ||
            want != tp->raw_data.len)
            return false;
        mv->field = HZ_FIELD_RAW;
        mv->payload = tp->raw_data.data;
        mv->len = tp->raw_data.len;
        mv->unit = unit;
        return true;
    }
    if (found < 0 || !hz_field_layout(f[found].field, dtype, numel, &want, &unit) ||
        want != (uint64_t)f[found].count * f[found].elem)
        return false;
    mv->field = f[found].field;
    mv->payload = f[found].data;
    mv->len = (size_t)want;
    mv->unit = unit;
    return true;
}

/* Decides whether t moves to the table and swaps in its placeholder. */
static hpcz_status prepare_tensor(build *b, hpcz_tensor *t, size_t inline_max, hpcz_error *err)
{
    const Onnx__TensorProto *src = t->src;
    int bits = hpcz_dtype_bits(t->dtype);
    if (bits <= 0 || t->dtype == HPCZ_DTYPE_STRING)
        return HPCZ_OK;
    mover mv = {.t = t, .saved_src = t->src, .saved_dirty = t->dirty};
    bool rebuilt = !src || t->dirty || src_is_external(src);
    if (rebuilt) {
        /* what the ONNX writer would write: the dense payload as raw_data */
        uint64_t want;
        if (!hz_field_layout(HZ_FIELD_RAW, t->dtype, t->numel, &want, &mv.unit))
            return HPCZ_OK;
        if (want < inline_max)
            return HPCZ_OK;
        const void *data = hpcz_tensor_data(t, err);
        if (!data)
            return err->status;
        if (t->nbytes < want)
            return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s': payload of %zu bytes, expected %" PRIu64,
                             t->name ? t->name : "", t->nbytes, want);
        mv.field = HZ_FIELD_RAW;
        mv.payload = data;
        mv.len = (size_t)want;
    } else if (!proto_payload(src, t->dtype, t->numel, &mv) || mv.len < inline_max || !mv.len) {
        return HPCZ_OK;
    }
    Onnx__TensorProto *ph = hpcz_arena_alloc(&b->arena, sizeof *ph);
    Onnx__StringStringEntryProto *ref = hpcz_arena_alloc(&b->arena, sizeof *ref);
    Onnx__StringStringEntryProto **refs = hpcz_arena_alloc(&b->arena, sizeof *refs);
    char *num = hpcz_arena_alloc(&b->arena, 24);
    if (!ph || !ref || !refs || !num ||
        !hpcz_grow((void **)&b->movers, &b->cap_movers, b->n_movers + 1, sizeof *b->movers))
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (src)
        *ph = *src;
    else
        onnx__tensor_proto__init(ph);
    ph->n_float_data = ph->n_int32_data = ph->n_int64_data = 0;
    ph->n_double_data = ph->n_uint64_data = ph->n_string_data = 0;
    ph->float_data = NULL;
    ph->int32_data = NULL;
    ph->int64_data = NULL;
    ph->double_data = NULL;
    ph->uint64_data = NULL;
    ph->string_data = NULL;
    ph->has_raw_data = 0;
    ph->raw_data.data = NULL;
    ph->raw_data.len = 0;
    if (rebuilt) {
        if (t->name)
            ph->name = (char *)t->name;
        ph->has_data_type = 1;
        ph->data_type = t->dtype;
        ph->n_dims = (size_t)t->ndim;
        ph->dims = t->dims;
        ph->has_data_location = 0;
        ph->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
    }
    /* the reference: index into b->movers for now, renumbered in skeleton order */
    snprintf(num, 24, "%zu", b->n_movers);
    onnx__string_string_entry_proto__init(ref);
    ref->key = (char *)HZ_MARKER_KEY;
    ref->value = num;
    refs[0] = ref;
    ph->n_external_data = 1;
    ph->external_data = refs;
    b->movers[b->n_movers++] = mv;
    t->src = ph;
    t->dirty = 0;
    return HPCZ_OK;
}

static void restore_tensors(build *b)
{
    for (size_t i = 0; i < b->n_movers; i++) {
        b->movers[i].t->src = b->movers[i].saved_src;
        b->movers[i].t->dirty = b->movers[i].saved_dirty;
    }
}

/* ------------------------------------------------------------ skeleton order */

typedef struct walker {
    build *b;
    Onnx__StringStringEntryProto **refs; /* per entry, for renumbering */
    char **saved_values;
    size_t cap, cap_refs, cap_values;
    hpcz_error *err;
    hpcz_status st;
} walker;

static void walk_tensor(walker *w, Onnx__TensorProto *tp)
{
    if (w->st || !tp || tp->n_external_data != 1 || !tp->external_data[0]->key ||
        strcmp(tp->external_data[0]->key, HZ_MARKER_KEY) != 0)
        return;
    build *b = w->b;
    char *end;
    unsigned long long k = strtoull(tp->external_data[0]->value, &end, 10);
    HPCZ_ASSERT(*end == 0 && k < b->n_movers);
    if (b->n_entries == UINT32_MAX) {
        w->st = hpcz_fail(w->err, HPCZ_ERR_UNSUPPORTED, "more than 2^32 tensors");
        return;
    }
    size_t need = (size_t)b->n_entries + 1;
    if (!hpcz_grow((void **)&b->entries, &w->cap, need, sizeof *b->entries) ||
        !hpcz_grow((void **)&w->refs, &w->cap_refs, need, sizeof *w->refs) ||
        !hpcz_grow((void **)&w->saved_values, &w->cap_values, need, sizeof *w->saved_values)) {
        w->st = hpcz_fail(w->err, HPCZ_ERR_NOMEM, "out of memory");
        return;
    }
    const mover *mv = &b->movers[k];
    entry *e = &b->entries[b->n_entries];
    memset(e, 0, sizeof *e);
    e->mv = mv;
    e->dtype = tp->data_type;
    e->ndim = (int)tp->n_dims;
    e->dims = mv->t->dims;
    w->refs[b->n_entries] = tp->external_data[0];
    w->saved_values[b->n_entries] = tp->external_data[0]->value;
    b->n_entries++;
}

static void walk_graph(walker *w, Onnx__GraphProto *g);

static void walk_attr(walker *w, Onnx__AttributeProto *a)
{
    walk_tensor(w, a->t);
    for (size_t i = 0; i < a->n_tensors; i++)
        walk_tensor(w, a->tensors[i]);
    if (a->g)
        walk_graph(w, a->g);
    for (size_t i = 0; i < a->n_graphs; i++)
        walk_graph(w, a->graphs[i]);
}

static void walk_graph(walker *w, Onnx__GraphProto *g)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        walk_tensor(w, g->initializer[i]);
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t a = 0; a < g->node[i]->n_attribute; a++)
            walk_attr(w, g->node[i]->attribute[a]);
}

/* Renumbers the references in skeleton order (entry i is "i") and packs the
 * final skeleton. */
static hpcz_status final_skeleton(build *b, const uint8_t *draft, size_t draft_len,
                                  hpcz_error *err)
{
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, draft_len, draft);
    if (!mp)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "the skeleton does not read back");
    walker w = {.b = b, .err = err};
    if (mp->graph)
        walk_graph(&w, mp->graph);
    char *nums = NULL;
    if (!w.st && b->n_entries) {
        nums = malloc((size_t)b->n_entries * 12);
        if (!nums)
            w.st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    if (!w.st) {
        for (uint32_t i = 0; i < b->n_entries; i++) {
            snprintf(nums + 12 * (size_t)i, 12, "%" PRIu32, i);
            w.refs[i]->value = nums + 12 * (size_t)i;
        }
        b->skel_len = onnx__model_proto__get_packed_size(mp);
        b->skel = malloc(b->skel_len ? b->skel_len : 1);
        if (!b->skel)
            w.st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        else
            onnx__model_proto__pack(mp, b->skel);
        for (uint32_t i = 0; i < b->n_entries; i++)
            w.refs[i]->value = w.saved_values[i];
    }
    free(nums);
    free(w.refs);
    free(w.saved_values);
    onnx__model_proto__free_unpacked(mp, NULL);
    return w.st;
}

/* ------------------------------------------------------------ build */

static int parse_encoding(const char *s)
{
    if (!s || !strcmp(s, "auto"))
        return -1;
    for (int e = 0; e < HPCZ_HPCZ_ENC_COUNT; e++)
        if (!strcmp(s, hpcz_hpcz_encoding_name(e)))
            return e;
    return -2;
}

static hpcz_status build_file(const hpcz_model *m, const hpcz_hpcz_opts *opts, build *b,
                              hpcz_error *err)
{
    int level = opts && opts->zstd_level ? opts->zstd_level : HZ_DEFAULT_LEVEL;
    size_t inline_max = opts && opts->inline_max ? opts->inline_max : HZ_DEFAULT_INLINE_MAX;
    int force = parse_encoding(opts ? opts->encoding : NULL);
    if (force == -2)
        return hpcz_fail(err, HPCZ_ERR_USAGE,
                         "unknown encoding '%s' (auto, raw, zstd, sparse, sparse-zstd)",
                         opts->encoding);
    if (level < -1 || level > 19 || (level == 0))
        return hpcz_fail(err, HPCZ_ERR_USAGE, "zstd level %d is not in 1..19 (or -1: no zstd)",
                         level);
    if (level < 0 && (force == HPCZ_HPCZ_ENC_ZSTD || force == HPCZ_HPCZ_ENC_SPARSE_ZSTD))
        return hpcz_fail(err, HPCZ_ERR_USAGE, "encoding '%s' needs zstd", opts->encoding);

    /* 1. placeholders, the ONNX writer, sources back */
    struct hpcz_model_priv *p = m->priv;
    hpcz_status st = HPCZ_OK;
    for (size_t i = 0; i < p->n_tensors && !st; i++)
        st = prepare_tensor(b, p->tensors[i], inline_max, err);
    uint8_t *draft = NULL;
    size_t draft_len = 0;
    if (!st)
        st = hpcz_onnx_serialize(m, NULL, &draft, &draft_len, err);
    restore_tensors(b);
    if (!st)
        st = final_skeleton(b, draft, draft_len, err);
    free(draft);
    if (st)
        return st;

    /* 2. encode every payload (independent: in parallel, same bytes) */
    uint64_t total = 0;
    for (uint32_t i = 0; i < b->n_entries; i++)
        total += b->entries[i].mv->len;
    long n = (long)b->n_entries;
#pragma omp parallel for schedule(dynamic, 1) if (n > 1 && total > ((uint64_t)1 << 20))
    for (long i = 0; i < n; i++) {
        entry *e = &b->entries[i];
        const mover *mv = e->mv;
        e->st = hz_encode(mv->payload, mv->len, mv->unit, force, level, &e->stored,
                          &e->stored_len, &e->encoding, &e->err);
        if (!e->st)
            e->checksum = hpcz_hpcz_checksum(e->stored ? e->stored : mv->payload, e->stored_len);
    }
    for (uint32_t i = 0; i < b->n_entries; i++)
        if (b->entries[i].st) {
            *err = b->entries[i].err;
            return b->entries[i].st;
        }

    /* 3. layout: header, skeleton, table (8-aligned), payloads (64-aligned) */
    uint64_t table_off = hz_align(HZ_HEADER_SIZE + (uint64_t)b->skel_len, 8);
    uint64_t table_len = 0;
    for (uint32_t i = 0; i < b->n_entries; i++)
        table_len += HZ_ENTRY_SIZE + 8 * (uint64_t)b->entries[i].ndim;
    if (table_len > UINT32_MAX)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "tensor table above 4 GiB");
    uint64_t meta_end = table_off + table_len;
    uint64_t off = hz_align(meta_end, HZ_ALIGN);
    for (uint32_t i = 0; i < b->n_entries; i++) {
        off = hz_align(off, HZ_ALIGN);
        b->entries[i].offset = off;
        off += b->entries[i].stored_len;
    }
    b->file_size = b->n_entries ? off : meta_end;
    b->meta_len = (size_t)(b->n_entries ? hz_align(meta_end, HZ_ALIGN) : meta_end);
    b->meta = calloc(1, b->meta_len);
    if (!b->meta)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    uint8_t *h = b->meta;
    memcpy(h + HZ_H_MAGIC, HZ_MAGIC, 4);
    hz_wr16(h + HZ_H_MAJOR, HZ_MAJOR);
    hz_wr16(h + HZ_H_MINOR, HZ_MINOR);
    hz_wr32(h + HZ_H_FLAGS, 0);
    hz_wr16(h + HZ_H_HEADER_SIZE, HZ_HEADER_SIZE);
    hz_wr16(h + HZ_H_ENTRY_SIZE, HZ_ENTRY_SIZE);
    hz_wr64(h + HZ_H_FILE_SIZE, b->file_size);
    hz_wr64(h + HZ_H_SKEL_OFF, HZ_HEADER_SIZE);
    hz_wr64(h + HZ_H_SKEL_LEN, b->skel_len);
    hz_wr64(h + HZ_H_TABLE_OFF, table_off);
    hz_wr32(h + HZ_H_TABLE_COUNT, b->n_entries);
    hz_wr32(h + HZ_H_TABLE_LEN, (uint32_t)table_len);
    if (b->skel_len)
        memcpy(h + HZ_HEADER_SIZE, b->skel, b->skel_len);
    uint8_t *q = h + table_off;
    for (uint32_t i = 0; i < b->n_entries; i++) {
        const entry *e = &b->entries[i];
        hz_wr64(q + HZ_E_OFFSET, e->offset);
        hz_wr64(q + HZ_E_STORED, e->stored_len);
        hz_wr64(q + HZ_E_RAW, e->mv->len);
        hz_wr64(q + HZ_E_CHECKSUM, e->checksum);
        hz_wr32(q + HZ_E_DTYPE, (uint32_t)e->dtype);
        q[HZ_E_ENCODING] = (uint8_t)e->encoding;
        q[HZ_E_FIELD] = (uint8_t)e->mv->field;
        hz_wr16(q + HZ_E_NDIM, (uint16_t)e->ndim);
        q += HZ_ENTRY_SIZE;
        for (int d = 0; d < e->ndim; d++, q += 8)
            hz_wr64(q, (uint64_t)e->dims[d]);
    }
    hz_wr64(h + HZ_H_CHECKSUM, hz_meta_checksum(h, meta_end));
    return HPCZ_OK;
}

static const uint8_t *entry_bytes(const entry *e)
{
    return e->stored ? e->stored : e->mv->payload;
}

/* ------------------------------------------------------------ output */

hpcz_status hpcz_hpcz_serialize(const hpcz_model *m, const hpcz_hpcz_opts *opts, uint8_t **out,
                                size_t *out_len, hpcz_error *err)
{
    build b = {0};
    hpcz_status st = build_file(m, opts, &b, err);
    if (!st && b.file_size > SIZE_MAX)
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "the file does not fit in memory");
    if (!st) {
        *out = calloc(1, b.file_size ? (size_t)b.file_size : 1);
        if (!*out) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        } else {
            memcpy(*out, b.meta, b.meta_len);
            for (uint32_t i = 0; i < b.n_entries; i++)
                if (b.entries[i].stored_len)
                    memcpy(*out + b.entries[i].offset, entry_bytes(&b.entries[i]),
                           b.entries[i].stored_len);
            *out_len = (size_t)b.file_size;
        }
    }
    build_release(&b);
    return st;
}

hpcz_status hpcz_hpcz_save(const hpcz_model *m, const char *path, const hpcz_hpcz_opts *opts,
                           hpcz_error *err)
{
    build b = {0};
    hpcz_status st = build_file(m, opts, &b, err);
    hpcz_outfile *of = NULL;
    if (!st && !(of = hpcz_outfile_open(path, err)))
        st = err->status;
    if (!st) {
        FILE *f = hpcz_outfile_stream(of);
        static const uint8_t zeros[HZ_ALIGN];
        uint64_t pos = b.meta_len;
        bool ok = fwrite(b.meta, 1, b.meta_len, f) == b.meta_len;
        for (uint32_t i = 0; i < b.n_entries && ok; i++) {
            const entry *e = &b.entries[i];
            size_t pad = (size_t)(e->offset - pos);
            ok = (!pad || fwrite(zeros, 1, pad, f) == pad) &&
                 (!e->stored_len || fwrite(entry_bytes(e), 1, e->stored_len, f) == e->stored_len);
            pos = e->offset + e->stored_len;
        }
        if (!ok) {
            st = hpcz_fail(err, HPCZ_ERR_IO, "writing the model: %s", strerror(errno));
            hpcz_outfile_abort(of);
        } else {
            st = hpcz_outfile_commit(of, err);
        }
    }
    build_release(&b);
    return st;
}

/* ------------------------------------------------------------ either format */

hpcz_format hpcz_format_from_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n >= 5 && strcmp(path + n - 5, ".hpcz") == 0 ? HPCZ_FORMAT_HPCZ : HPCZ_FORMAT_ONNX;
}

hpcz_status hpcz_model_save(const hpcz_model *m, const char *path, hpcz_format format,
                            const hpcz_save_opts *onnx_opts, const hpcz_hpcz_opts *hpcz_opts,
                            hpcz_error *err)
{
    if (format == HPCZ_FORMAT_AUTO)
        format = hpcz_format_from_path(path);
    const char *src = hpcz_model_source_file(m, path);
    if (src && !(onnx_opts && onnx_opts->overwrite_inputs))
        return hpcz_fail(err, HPCZ_ERR_USAGE,
                         "refusing to overwrite the input's external data (use --in-place)");
    if (format == HPCZ_FORMAT_HPCZ) {
        if (onnx_opts && onnx_opts->external)
            return hpcz_fail(err, HPCZ_ERR_USAGE,
                             "external data is for ONNX output: a .hpcz file holds every tensor");
        return hpcz_hpcz_save(m, path, hpcz_opts, err);
    }
    return hpcz_onnx_save(m, path, onnx_opts, err);
}
