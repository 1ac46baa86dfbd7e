/*
 * hpcz_read.c - .hpcz container -> hpcz IR (FORMAT.md), and the loader that
 * tells .hpcz and ONNX files apart.
 *
 * The file is mmap'd (or read whole, for stdin and pipes). Everything before
 * the payloads is validated and checksummed first; then the skeleton is
 * unpacked and each reference in it is patched with its payload: raw
 * payloads point straight into the file, encoded ones into buffers decoded
 * once. The ONNX reader builds the IR over the patched skeleton, so the
 * IR borrows payloads exactly as it does for ONNX files, and the ONNX writer
 * re-emits each tensor in the field it came in.
 */
#include "hpcz_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { BASE_BORROWED, BASE_MALLOC, BASE_MMAP };

/* One table entry, parsed, and what was patched into its TensorProto. */
typedef struct hz_slot {
    uint64_t offset, stored_len, raw_len, checksum;
    int dtype;
    int encoding;
    int field;
    int ndim;
    const uint8_t *dims; /* ndim little-endian int64 in the table */
    int64_t numel;
    unsigned unit;
    Onnx__TensorProto *tp;
    Onnx__StringStringEntryProto **saved_ext;
    size_t saved_n_ext;
    int patched;
    uint8_t *decoded;   /* owned buffer of raw_len bytes, or NULL (borrowed from the file) */
    int decoded_mmap;
    const uint8_t *data;
    hpcz_error err;
    hpcz_status st;
} hz_slot;

typedef struct hz_file {
    const uint8_t *base;
    size_t len;
    int base_kind;
    int major, minor;
    uint64_t skel_len;
    Onnx__ModelProto *mp;
    uint32_t n;
    hz_slot *slots;
    hz_slot **by_tp; /* slots sorted by TensorProto address, for hpcz_hpcz_tensor_storage */
} hz_file;

static void release_buffer(uint8_t *p, size_t len, int is_mmap)
{
    if (!p)
        return;
    if (is_mmap)
        munmap(p, len);
    else
        free(p);
}

static void hz_file_free(void *arg)
{
    hz_file *f = arg;
    if (!f)
        return;
    for (uint32_t i = 0; f->slots && i < f->n; i++) {
        hz_slot *s = &f->slots[i];
        Onnx__TensorProto *tp = s->tp;
        if (tp && s->patched) {
            /* give protobuf-c back what it allocated, nothing of ours */
            tp->has_raw_data = 0;
            tp->raw_data.data = NULL;
            tp->raw_data.len = 0;
            tp->n_float_data = tp->n_int32_data = tp->n_int64_data = 0;
            tp->n_double_data = tp->n_uint64_data = 0;
            tp->float_data = NULL;
            tp->int32_data = NULL;
            tp->int64_data = NULL;
            tp->double_data = NULL;
            tp->uint64_data = NULL;
            tp->external_data = s->saved_ext;
            tp->n_external_data = s->saved_n_ext;
        }
        release_buffer(s->decoded, (size_t)s->raw_len, s->decoded_mmap);
    }
    if (f->mp)
        onnx__model_proto__free_unpacked(f->mp, NULL);
    free(f->slots);
    free(f->by_tp);
    if (f->base_kind == BASE_MMAP && f->len)
        munmap((void *)f->base, f->len);
    else if (f->base_kind == BASE_MALLOC)
        free((void *)f->base);
    free(f);
}

/* ------------------------------------------------------------ validation */

#define CORRUPT(...) hpcz_fail(err, HPCZ_ERR_PARSE, "corrupt .hpcz file: " __VA_ARGS__)

static hpcz_status check_header(hz_file *f, uint64_t *table_off, uint32_t *table_len,
                                uint32_t *entry_size, hpcz_error *err)
{
    const uint8_t *h = f->base;
    if (f->len < 4 || memcmp(h, HZ_MAGIC, 4) != 0)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "not a .hpcz file (bad magic)");
    if (f->len < HZ_HEADER_SIZE)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "truncated .hpcz file (%zu bytes, the header is %d)",
                         f->len, HZ_HEADER_SIZE);
    f->major = hz_rd16(h + HZ_H_MAJOR);
    f->minor = hz_rd16(h + HZ_H_MINOR);
    if (f->major != HZ_MAJOR)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED,
                         "unsupported .hpcz version %d.%d (this hpcz reads %d.x)", f->major,
                         f->minor, HZ_MAJOR);
    uint32_t flags = hz_rd32(h + HZ_H_FLAGS);
    if (flags & HZ_FLAGS_REQUIRED)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED,
                         "unsupported .hpcz features (required flags 0x%04" PRIx32 ")",
                         flags & HZ_FLAGS_REQUIRED);
    uint64_t file_size = hz_rd64(h + HZ_H_FILE_SIZE);
    if (file_size > f->len)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "truncated .hpcz file (%zu of %" PRIu64 " bytes)",
                         f->len, file_size);
    if (file_size < f->len)
        return CORRUPT("%zu bytes, the header says %" PRIu64, f->len, file_size);
    unsigned header_size = hz_rd16(h + HZ_H_HEADER_SIZE);
    *entry_size = hz_rd16(h + HZ_H_ENTRY_SIZE);
    if (header_size < HZ_HEADER_SIZE || *entry_size < HZ_ENTRY_SIZE || *entry_size % 8)
        return CORRUPT("header size %u, entry size %" PRIu32, header_size, *entry_size);
    uint64_t skel_off = hz_rd64(h + HZ_H_SKEL_OFF);
    f->skel_len = hz_rd64(h + HZ_H_SKEL_LEN);
    *table_off = hz_rd64(h + HZ_H_TABLE_OFF);
    f->n = hz_rd32(h + HZ_H_TABLE_COUNT);
    *table_len = hz_rd32(h + HZ_H_TABLE_LEN);
    if (skel_off < header_size || skel_off > file_size || f->skel_len > file_size - skel_off)
        return CORRUPT("skeleton [%" PRIu64 ", +%" PRIu64 ") outside the file", skel_off,
                       f->skel_len);
    if (*table_off % 8 || *table_off < skel_off + f->skel_len || *table_off > file_size ||
        *table_len > file_size - *table_off)
        return CORRUPT("tensor table [%" PRIu64 ", +%" PRIu32 ") misplaced", *table_off,
                       *table_len);
    if ((uint64_t)f->n * *entry_size > *table_len)
        return CORRUPT("%" PRIu32 " table entries do not fit in %" PRIu32 " bytes", f->n,
                       *table_len);
    uint64_t meta_end = *table_off + *table_len;
    if (hz_meta_checksum(h, meta_end) != hz_rd64(h + HZ_H_CHECKSUM))
        return CORRUPT("header checksum mismatch");
    return HPCZ_OK;
}

typedef struct hz_span {
    uint64_t offset, end;
    uint32_t idx;
    int enc;
} hz_span;

static int cmp_span(const void *a, const void *b)
{
    const hz_span *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Raw payloads may share bytes (they are read in place), but an encoded one
 * may not: 64 entries over one zstd frame would each pass the ratio check and
 * together decode to 64 times what the file can hold. With encoded payloads
 * disjoint, all that is decoded is bounded by the file's size times the
 * ratio limit. */
static hpcz_status check_overlaps(hz_file *f, hpcz_error *err)
{
    if (f->n < 2)
        return HPCZ_OK;
    hz_span *sp = malloc(f->n * sizeof *sp);
    if (!sp)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < f->n; i++)
        sp[i] = (hz_span){f->slots[i].offset, f->slots[i].offset + f->slots[i].stored_len, i,
                          f->slots[i].encoding != HPCZ_HPCZ_ENC_RAW};
    qsort(sp, f->n, sizeof *sp, cmp_span);
    const hz_span *far = &sp[0], *far_enc = sp[0].enc ? &sp[0] : NULL; /* furthest reaching so far */
    hpcz_status st = HPCZ_OK;
    for (uint32_t k = 1; k < f->n && !st; k++) {
        const hz_span *s = &sp[k];
        if (s->enc && s->offset < far->end)
            st = CORRUPT("tensor table entry %" PRIu32 ": its %s payload shares bytes with entry %" PRIu32,
                         s->idx, hpcz_hpcz_encoding_name(f->slots[s->idx].encoding), far->idx);
        else if (far_enc && s->offset < far_enc->end)
            st = CORRUPT("tensor table entry %" PRIu32 ": its payload shares bytes with entry %" PRIu32
                         "'s %s payload",
                         s->idx, far_enc->idx, hpcz_hpcz_encoding_name(f->slots[far_enc->idx].encoding));
        if (s->end > far->end)
            far = s;
        if (s->enc && (!far_enc || s->end > far_enc->end))
            far_enc = s;
    }
    free(sp);
    return st;
}

static hpcz_status parse_table(hz_file *f, uint64_t table_off, uint32_t table_len,
                               uint32_t entry_size, hpcz_error *err)
{
    f->slots = f->n ? calloc(f->n, sizeof *f->slots) : NULL;
    if (f->n && !f->slots)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    const uint8_t *q = f->base + table_off, *end = q + table_len;
    uint64_t meta_end = table_off + table_len;
    for (uint32_t i = 0; i < f->n; i++) {
        hz_slot *s = &f->slots[i];
        if ((size_t)(end - q) < entry_size)
            return CORRUPT("tensor table entry %" PRIu32 " is past the end of the table", i);
        s->offset = hz_rd64(q + HZ_E_OFFSET);
        s->stored_len = hz_rd64(q + HZ_E_STORED);
        s->raw_len = hz_rd64(q + HZ_E_RAW);
        s->checksum = hz_rd64(q + HZ_E_CHECKSUM);
        uint32_t dtype = hz_rd32(q + HZ_E_DTYPE);
        s->encoding = q[HZ_E_ENCODING];
        s->field = q[HZ_E_FIELD];
        s->ndim = hz_rd16(q + HZ_E_NDIM);
        q += entry_size;
        if (s->ndim > HPCZ_MAX_RANK)
            return CORRUPT("tensor table entry %" PRIu32 ": rank %d is beyond %d", i, s->ndim,
                           HPCZ_MAX_RANK);
        if ((size_t)(end - q) < 8 * (size_t)s->ndim)
            return CORRUPT("tensor table entry %" PRIu32 " is past the end of the table", i);
        s->dims = q;
        q += 8 * (size_t)s->ndim;
        int64_t numel = 1;
        for (int d = 0; d < s->ndim; d++) {
            int64_t v = (int64_t)hz_rd64(s->dims + 8 * d);
            if (v < 0 || (v && numel > HPCZ_MAX_NUMEL / v))
                return CORRUPT("tensor table entry %" PRIu32 ": bad dimension %" PRId64, i, v);
            numel *= v;
        }
        s->numel = numel;
        if (dtype > INT32_MAX)
            return CORRUPT("tensor table entry %" PRIu32 ": dtype %" PRIu32, i, dtype);
        s->dtype = (int)dtype;
        uint64_t want;
        if (s->field >= HZ_FIELD_COUNT ||
            !hz_field_layout(s->field, s->dtype, numel, &want, &s->unit))
            return CORRUPT("tensor table entry %" PRIu32 ": field %d cannot hold %s", i,
                           s->field, hpcz_dtype_name(s->dtype));
        if (s->raw_len != want || !want)
            return CORRUPT("tensor table entry %" PRIu32 ": raw length %" PRIu64
                           " does not match %s x %" PRId64 " (%" PRIu64 " bytes)",
                           i, s->raw_len, hpcz_dtype_name(s->dtype), numel, want);
        if (s->encoding >= HPCZ_HPCZ_ENC_COUNT)
            return CORRUPT("tensor table entry %" PRIu32 ": unknown encoding %d", i,
                           s->encoding);
        if (s->offset % HZ_ALIGN || s->offset < meta_end || s->offset > f->len ||
            s->stored_len > f->len - s->offset)
            return CORRUPT("tensor table entry %" PRIu32 ": payload [%" PRIu64 ", +%" PRIu64
                           ") is outside the file",
                           i, s->offset, s->stored_len);
        /* claims no payload of this size can make */
        uint64_t n_units = s->raw_len / s->unit, mask = (n_units + 7) / 8;
        bool bad;
        switch (s->encoding) {
        case HPCZ_HPCZ_ENC_RAW:
            bad = s->stored_len != s->raw_len;
            break;
        case HPCZ_HPCZ_ENC_ZSTD:
            bad = s->raw_len / HZ_ZSTD_MAX_RATIO > s->stored_len;
            break;
        case HPCZ_HPCZ_ENC_SPARSE:
            bad = s->stored_len < mask || s->stored_len > mask + s->raw_len;
            break;
        default:
            bad = mask / HZ_ZSTD_MAX_RATIO > s->stored_len;
            break;
        }
        if (bad)
            return CORRUPT("tensor table entry %" PRIu32 ": %s payload of %" PRIu64
                           " bytes cannot hold %" PRIu64,
                           i, hpcz_hpcz_encoding_name(s->encoding), s->stored_len, s->raw_len);
    }
    return check_overlaps(f, err);
}

/* ------------------------------------------------------------ references */

typedef struct linker {
    hz_file *f;
    hpcz_error *err;
    hpcz_status st;
} linker;

static void link_tensor(linker *l, Onnx__TensorProto *tp)
{
    if (l->st || !tp)
        return;
    bool marked = false;
    for (size_t i = 0; i < tp->n_external_data; i++)
        if (tp->external_data[i]->key && !strcmp(tp->external_data[i]->key, HZ_MARKER_KEY))
            marked = true;
    if (!marked)
        return;
    hpcz_error *err = l->err;
    const char *name = tp->name ? tp->name : "";
    const char *v = tp->external_data[0]->value;
    char *end = NULL;
    errno = 0;
    unsigned long long k = v && *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : ULLONG_MAX;
    if (tp->n_external_data != 1 || !end || *end || errno || k >= l->f->n) {
        l->st = CORRUPT("tensor '%.200s': bad table reference", name);
        return;
    }
    hz_slot *s = &l->f->slots[k];
    if (s->tp) {
        l->st = CORRUPT("tensor '%.200s': table entry %llu is referenced twice", name, k);
        return;
    }
    if (tp->has_raw_data || tp->n_float_data || tp->n_int32_data || tp->n_int64_data ||
        tp->n_double_data || tp->n_uint64_data || tp->n_string_data ||
        (tp->has_data_location &&
         tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)) {
        l->st = CORRUPT("tensor '%.200s': payload both inline and in the table", name);
        return;
    }
    bool same = (tp->has_data_type ? tp->data_type : 0) == s->dtype && tp->n_dims == (size_t)s->ndim;
    for (int d = 0; same && d < s->ndim; d++)
        same = (uint64_t)tp->dims[d] == hz_rd64(s->dims + 8 * d);
    if (!same) {
        l->st = CORRUPT("tensor '%.200s': type or shape differs from table entry %llu", name, k);
        return;
    }
    s->tp = tp;
}

static void link_graph(linker *l, Onnx__GraphProto *g);

static void link_attr(linker *l, Onnx__AttributeProto *a)
{
    link_tensor(l, a->t);
    for (size_t i = 0; i < a->n_tensors; i++)
        link_tensor(l, a->tensors[i]);
    if (a->g)
        link_graph(l, a->g);
    for (size_t i = 0; i < a->n_graphs; i++)
        link_graph(l, a->graphs[i]);
}

static void link_graph(linker *l, Onnx__GraphProto *g)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        link_tensor(l, g->initializer[i]);
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t a = 0; a < g->node[i]->n_attribute; a++)
            link_attr(l, g->node[i]->attribute[a]);
}

/* ------------------------------------------------------------ payloads */

#define MMAP_MIN ((uint64_t)256 << 10)

static void load_payload(hz_slot *s, const uint8_t *base)
{
    hpcz_error *err = &s->err;
    const uint8_t *stored = base + s->offset;
    const char *name = s->tp->name ? s->tp->name : "";
    if (hpcz_hpcz_checksum(stored, (size_t)s->stored_len) != s->checksum) {
        s->st = CORRUPT("tensor '%.200s': payload checksum mismatch", name);
        return;
    }
    if (s->encoding == HPCZ_HPCZ_ENC_RAW && (uintptr_t)stored % 8 == 0) {
        s->data = stored; /* zero copy */
        return;
    }
    size_t n = (size_t)s->raw_len;
    int zeroed = 0;
    if (s->raw_len >= MMAP_MIN) {
        /* fresh pages are zero and cost nothing until written: a sparse
         * payload only touches the pages of its nonzeros */
        void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            s->decoded = p;
            s->decoded_mmap = 1;
            zeroed = 1;
        }
    }
    if (!s->decoded)
        s->decoded = aligned_alloc(HZ_ALIGN, hz_align(n, HZ_ALIGN));
    if (!s->decoded) {
        s->st = hpcz_fail(err, HPCZ_ERR_NOMEM, "tensor '%.200s': out of memory (%zu bytes)", name,
                          n);
        return;
    }
    hpcz_error e;
    if (hz_decode(s->encoding, stored, (size_t)s->stored_len, s->decoded, n, s->unit, zeroed, &e)) {
        s->st = CORRUPT("tensor '%.200s': %s", name, e.msg);
        return;
    }
    s->data = s->decoded;
}

static void patch(hz_slot *s)
{
    Onnx__TensorProto *tp = s->tp;
    s->saved_ext = tp->external_data;
    s->saved_n_ext = tp->n_external_data;
    tp->external_data = NULL;
    tp->n_external_data = 0;
    s->patched = 1;
    void *d = (void *)s->data;
    switch (s->field) {
    case HZ_FIELD_RAW:
        tp->has_raw_data = 1;
        tp->raw_data.data = d;
        tp->raw_data.len = (size_t)s->raw_len;
        break;
    case HZ_FIELD_FLOAT:
        tp->float_data = d;
        tp->n_float_data = (size_t)s->raw_len / 4;
        break;
    case HZ_FIELD_INT32:
        tp->int32_data = d;
        tp->n_int32_data = (size_t)s->raw_len / 4;
        break;
    case HZ_FIELD_INT64:
        tp->int64_data = d;
        tp->n_int64_data = (size_t)s->raw_len / 8;
        break;
    case HZ_FIELD_DOUBLE:
        tp->double_data = d;
        tp->n_double_data = (size_t)s->raw_len / 8;
        break;
    default:
        tp->uint64_data = d;
        tp->n_uint64_data = (size_t)s->raw_len / 8;
        break;
    }
}

static int cmp_slot_tp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(hz_slot *const *)a)->tp, y = (uintptr_t)(*(hz_slot *const *)b)->tp;
    return x < y ? -1 : x > y;
}

/* Validates f (whose base/len/base_kind are set; owned from here on) and
 * builds the model. */
static hpcz_model *load_file(hz_file *f, uint64_t max_decoded, const hpcz_load_opts *opts,
                             const char *base_dir, hpcz_error *err)
{
    uint64_t table_off = 0;
    uint32_t table_len = 0, entry_size = 0;
    if (check_header(f, &table_off, &table_len, &entry_size, err) ||
        parse_table(f, table_off, table_len, entry_size, err)) {
        hz_file_free(f);
        return NULL;
    }
    const uint8_t *skel = f->base + hz_rd64(f->base + HZ_H_SKEL_OFF);
    if (hpcz_wire_check(skel, (size_t)f->skel_len, &onnx__model_proto__descriptor,
                        HPCZ_PROTO_MAX_DEPTH, err)) {
        hpcz_error_prefix(err, "corrupt .hpcz file: skeleton");
        err->status = HPCZ_ERR_PARSE;
        hz_file_free(f);
        return NULL;
    }
    f->mp = onnx__model_proto__unpack(NULL, (size_t)f->skel_len, skel);
    if (!f->mp) {
        CORRUPT("skeleton is not an ONNX model");
        hz_file_free(f);
        return NULL;
    }
    linker l = {f, err, HPCZ_OK};
    if (f->mp->graph)
        link_graph(&l, f->mp->graph);
    uint64_t decoded = 0;
    for (uint32_t i = 0; i < f->n && !l.st; i++) {
        hz_slot *s = &f->slots[i];
        if (!s->tp)
            l.st = CORRUPT("tensor table entry %" PRIu32 " is not referenced", i);
        else if (s->encoding != HPCZ_HPCZ_ENC_RAW)
            decoded += s->raw_len;
    }
    if (!l.st && max_decoded && decoded > max_decoded)
        l.st = hpcz_fail(err, HPCZ_ERR_NOMEM,
                         "payloads decode to %" PRIu64 " bytes, above the limit of %" PRIu64,
                         decoded, max_decoded);
    if (l.st) {
        hz_file_free(f);
        return NULL;
    }
    long n = (long)f->n;
#pragma omp parallel for schedule(dynamic, 1) if (n > 1 && f->len > ((size_t)1 << 20))
    for (long i = 0; i < n; i++)
        load_payload(&f->slots[i], f->base);
    for (uint32_t i = 0; i < f->n; i++)
        if (f->slots[i].st) {
            *err = f->slots[i].err;
            hz_file_free(f);
            return NULL;
        }
    f->by_tp = f->n ? malloc(f->n * sizeof *f->by_tp) : NULL;
    if (f->n && !f->by_tp) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        hz_file_free(f);
        return NULL;
    }
    for (uint32_t i = 0; i < f->n; i++) {
        patch(&f->slots[i]);
        f->by_tp[i] = &f->slots[i];
    }
    if (f->n)
        qsort(f->by_tp, f->n, sizeof *f->by_tp, cmp_slot_tp);
    return hpcz_onnx_model_from_proto(f->mp, f, hz_file_free, opts, base_dir, err);
}

/* ------------------------------------------------------------ entry points */

static hpcz_model *load_owned(const uint8_t *buf, size_t len, int kind, uint64_t max_decoded,
                              const hpcz_load_opts *opts, const char *base_dir, hpcz_error *err)
{
    hz_file *f = calloc(1, sizeof *f);
    if (!f) {
        if (kind == BASE_MALLOC)
            free((void *)buf);
        else if (kind == BASE_MMAP && len)
            munmap((void *)buf, len);
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    f->base = buf;
    f->len = len;
    f->base_kind = kind;
    return load_file(f, max_decoded, opts, base_dir, err);
}

hpcz_model *hpcz_hpcz_load_buffer(const void *buf, size_t len, int copy, uint64_t max_decoded,
                                  const hpcz_load_opts *opts, hpcz_error *err)
{
    const uint8_t *b = buf;
    int kind = BASE_BORROWED;
    if (copy) {
        uint8_t *c = malloc(len ? len : 1);
        if (!c) {
            hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            return NULL;
        }
        if (len)
            memcpy(c, buf, len);
        b = c;
        kind = BASE_MALLOC;
    }
    return load_owned(b, len, kind, max_decoded, opts, opts ? opts->base_dir : NULL, err);
}

/* The folder of path (for external data references a skeleton might hold). */
static void dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, cap, ".");
        return;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0)
        n = 1;
    if (n >= cap)
        n = cap - 1;
    memcpy(dir, path, n);
    dir[n] = 0;
}

static hpcz_model *finish(hpcz_model *m, const char *path, uint64_t size)
{
    if (m) {
        m->path = hpcz_model_strdup(m, path);
        m->file_size = size;
    }
    return m;
}

/* Reads a non-regular file or stdin whole; *is_hpcz from its magic. */
static hpcz_status read_whole(const char *path, uint8_t **buf, size_t *len, hpcz_error *err)
{
    return hpcz_model_stream_read(path, 1, buf, len, err);
}

static bool has_magic(const uint8_t *b, size_t len)
{
    return len >= 4 && memcmp(b, HZ_MAGIC, 4) == 0;
}

static hpcz_model *load_path(const char *path, const hpcz_load_opts *opts, int sniff,
                             hpcz_error *err)
{
    const char *bd = opts ? opts->base_dir : NULL;
    int fd = strcmp(path, "-") == 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) != 0) {
        hpcz_fail(err, HPCZ_ERR_IO, "%s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (fd < 0 && strcmp(path, "-") != 0) {
        if (sniff)
            return hpcz_onnx_load(path, opts, err); /* its messages for missing files */
        hpcz_fail(err, HPCZ_ERR_IO, "%s", errno == ENOENT ? "no such file" : strerror(errno));
        return NULL;
    }
    if (fd >= 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        hpcz_fail(err, HPCZ_ERR_IO, "is a directory, expected a model file");
        return NULL;
    }
    if (fd < 0 || !S_ISREG(st.st_mode)) {
        /* stdin, pipes, devices: read whole, then tell the format */
        if (fd >= 0)
            close(fd);
        uint8_t *buf;
        size_t len;
        if (read_whole(path, &buf, &len, err))
            return NULL;
        if (sniff && !has_magic(buf, len)) {
            hpcz_model *m = hpcz_onnx_load_buffer(buf, len, opts, err);
            free(buf);
            return finish(m, path, len);
        }
        return finish(load_owned(buf, len, BASE_MALLOC, 0, opts, bd ? bd : ".", err), path, len);
    }
    size_t len = (size_t)st.st_size;
    if (sniff) {
        uint8_t magic[4];
        ssize_t r = len >= 4 ? pread(fd, magic, 4, 0) : 0;
        if (r != 4 || !has_magic(magic, 4)) {
            close(fd);
            return hpcz_onnx_load(path, opts, err);
        }
    }
    void *addr = NULL;
    if (len) {
        addr = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            hpcz_fail(err, HPCZ_ERR_IO, "mmap: %s", strerror(errno));
            close(fd);
            return NULL;
        }
    }
    close(fd);
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    return finish(load_owned(addr, len, BASE_MMAP, 0, opts, bd ? bd : dir, err), path, len);
}

hpcz_model *hpcz_hpcz_load(const char *path, const hpcz_load_opts *opts, hpcz_error *err)
{
    return load_path(path, opts, 0, err);
}

hpcz_model *hpcz_model_load(const char *path, const hpcz_load_opts *opts, hpcz_error *err)
{
    hpcz_model *m = load_path(path, opts, 1, err);
    /* the message names the file, as every bad-input error does */
    const char *shown = strcmp(path, "-") ? path : "<stdin>";
    size_t l = strlen(shown);
    if (!m && err && !(strncmp(err->msg, shown, l) == 0 && err->msg[l] == ':'))
        hpcz_error_prefix(err, shown);
    return m;
}

/* ------------------------------------------------------------ introspection */

static const hz_file *file_of(const hpcz_model *m)
{
    return m && m->priv && m->priv->proto_free == hz_file_free ? m->priv->proto : NULL;
}

const char *hpcz_model_format(const hpcz_model *m)
{
    return file_of(m) ? "hpcz" : "onnx";
}

int hpcz_hpcz_model_info(const hpcz_model *m, hpcz_hpcz_info *out)
{
    const hz_file *f = file_of(m);
    if (!f)
        return 0;
    memset(out, 0, sizeof *out);
    out->major = f->major;
    out->minor = f->minor;
    out->n_tensors = f->n;
    out->skeleton_bytes = f->skel_len;
    for (uint32_t i = 0; i < f->n; i++) {
        out->stored_bytes += f->slots[i].stored_len;
        out->raw_bytes += f->slots[i].raw_len;
        out->by_encoding[f->slots[i].encoding]++;
    }
    return 1;
}

int hpcz_hpcz_tensor_storage(const hpcz_tensor *t, hpcz_hpcz_tensor_info *out)
{
    const hz_file *f = t ? file_of(t->model) : NULL;
    if (!f || !t->src || t->dirty || !f->n)
        return 0;
    size_t lo = 0, hi = f->n;
    uintptr_t key = (uintptr_t)t->src;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uintptr_t v = (uintptr_t)f->by_tp[mid]->tp;
        if (v == key) {
            const hz_slot *s = f->by_tp[mid];
            out->encoding = s->encoding;
            out->field = s->field;
            out->index = (uint32_t)(s - f->slots);
            out->offset = s->offset;
            out->stored_bytes = s->stored_len;
            out->raw_bytes = s->raw_len;
            return 1;
        }
        if (v < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}
