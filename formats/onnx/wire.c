/*
 * wire.c - a bounded walk over protobuf wire format.
 */
#include "onnx_internal.h"

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* What a walk collects: with target set, the spans of the length-delimited
 * field `field` (at least min_len bytes) of messages of type target, which it
 * does not descend into. */
typedef struct find_ctx {
    const uint8_t *base;
    const ProtobufCMessageDescriptor *target;
    uint32_t field;
    size_t min_len;
    hpcz_wire_span *spans;
    size_t n, cap;
} find_ctx;

/* Checks the wire format of one message (and of every submessage field
 * desc knows), bounded by max_depth; collects spans into c when given. */
static hpcz_status walk(find_ctx *c, const uint8_t *p, const uint8_t *end,
                        const ProtobufCMessageDescriptor *desc, int depth, int max_depth,
                        hpcz_error *err)
{
    if (depth > max_depth)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "protobuf messages nested deeper than %d levels",
                         max_depth);
    while (p < end) {
        uint64_t key;
        if (!read_varint(&p, end, &key))
            return hpcz_fail(err, HPCZ_ERR_PARSE, "truncated or corrupt protobuf (bad field key)");
        unsigned wire = (unsigned)(key & 7);
        uint64_t field = key >> 3;
        if (field == 0)
            return hpcz_fail(err, HPCZ_ERR_PARSE, "corrupt protobuf (field number 0)");
        uint64_t v;
        switch (wire) {
        case 0:
            if (!read_varint(&p, end, &v))
                return hpcz_fail(err, HPCZ_ERR_PARSE, "truncated protobuf (varint)");
            break;
        case 1:
            if (end - p < 8)
                return hpcz_fail(err, HPCZ_ERR_PARSE, "truncated protobuf (fixed64)");
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return hpcz_fail(err, HPCZ_ERR_PARSE, "truncated protobuf (fixed32)");
            p += 4;
            break;
        case 2: {
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return hpcz_fail(err, HPCZ_ERR_PARSE,
                                 "truncated protobuf (a length runs past the end of the data)");
            if (c && c->target && desc == c->target && field == c->field && v >= c->min_len) {
                if (!hpcz_grow((void **)&c->spans, &c->cap, c->n + 1, sizeof *c->spans))
                    return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                c->spans[c->n++] = (hpcz_wire_span){(size_t)(p - c->base), (size_t)v};
            } else {
                const ProtobufCFieldDescriptor *fd =
                    desc && field <= UINT32_MAX
                        ? protobuf_c_message_descriptor_get_field(desc, (unsigned)field)
                        : NULL;
                if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                    hpcz_status st = walk(c, p, p + v, fd->descriptor, depth + 1, max_depth, err);
                    if (st)
                        return st;
                }
            }
            p += v;
            break;
        }
        default:
            return hpcz_fail(err, HPCZ_ERR_PARSE, "corrupt protobuf (wire type %u)", wire);
        }
    }
    return HPCZ_OK;
}

hpcz_status hpcz_wire_check(const uint8_t *buf, size_t len, const ProtobufCMessageDescriptor *desc,
                            int max_depth, hpcz_error *err)
{
    return walk(NULL, buf, buf + len, desc, 0, max_depth, err);
}

/* ------------------------------------------------------------ payloads in place */

hpcz_status hpcz_wire_find_payloads(const uint8_t *buf, size_t len,
                                    const ProtobufCMessageDescriptor *desc,
                                    const ProtobufCMessageDescriptor *target, uint32_t field,
                                    size_t min_len, int max_depth, hpcz_wire_span **spans,
                                    size_t *n, hpcz_error *err)
{
    find_ctx c = {.base = buf, .target = target, .field = field, .min_len = min_len};
    hpcz_status st = walk(&c, buf, buf + len, desc, 0, max_depth, err);
    if (st) {
        free(c.spans);
        return st;
    }
    *spans = c.spans;
    *n = c.n;
    return HPCZ_OK;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o = (uint8_t)v;
}

typedef struct replace_ctx {
    const uint8_t *base;
    const hpcz_wire_span *spans;
    size_t n, k; /* spans[k]: the first one not passed yet */
    const uint8_t *markers;
    size_t marker_len;
} replace_ctx;

/* Emits the message [p, end) of type desc with the spans in it replaced by
 * their markers and every length on the way re-encoded; returns its size, and
 * writes it to out unless out is NULL. Messages without a span inside are
 * copied as they are. The input was checked by hpcz_wire_check: on anything
 * unexpected the rest is copied verbatim (and its spans left alone). */
static size_t replace(replace_ctx *c, const uint8_t *p, const uint8_t *end,
                      const ProtobufCMessageDescriptor *desc, uint8_t *out)
{
    size_t n = 0;
#define EMIT(src, len)                                                                             \
    do {                                                                                           \
        if (out)                                                                                   \
            memcpy(out + n, (src), (len));                                                         \
        n += (len);                                                                                \
    } while (0)
    while (p < end) {
        const uint8_t *field_start = p;
        uint64_t key, v;
        bool ok = read_varint(&p, end, &key);
        unsigned wire = (unsigned)(key & 7);
        if (ok && wire == 0)
            ok = read_varint(&p, end, &v);
        else if (ok && (wire == 1 || wire == 5)) {
            ok = end - p >= (wire == 1 ? 8 : 4);
            if (ok)
                p += wire == 1 ? 8 : 4;
        } else if (ok && wire != 2)
            ok = false;
        if (!ok) {
            EMIT(field_start, (size_t)(end - field_start));
            break;
        }
        if (wire != 2) {
            EMIT(field_start, (size_t)(p - field_start));
            continue;
        }
        const uint8_t *key_end = p;
        if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p)) {
            EMIT(field_start, (size_t)(end - field_start));
            break;
        }
        size_t off = (size_t)(p - c->base);
        const uint8_t *pend = p + v;
        uint64_t field = key >> 3;
        const ProtobufCFieldDescriptor *fd =
            desc && field <= UINT32_MAX
                ? protobuf_c_message_descriptor_get_field(desc, (unsigned)field)
                : NULL;
        uint8_t pre[10];
        if (c->k < c->n && c->spans[c->k].off == off && c->spans[c->k].len == v) {
            EMIT(field_start, (size_t)(key_end - field_start));
            put_varint(pre, c->marker_len);
            EMIT(pre, varint_size(c->marker_len));
            EMIT(c->markers + c->k * c->marker_len, c->marker_len);
            c->k++;
        } else if (c->k < c->n && c->spans[c->k].off < off + v && c->spans[c->k].off >= off &&
                   fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            /* sized first (its length prefix comes before it), then written */
            size_t k0 = c->k;
            size_t sub = replace(c, p, pend, fd->descriptor, NULL);
            EMIT(field_start, (size_t)(key_end - field_start));
            put_varint(pre, sub);
            EMIT(pre, varint_size(sub));
            if (out) {
                c->k = k0;
                replace(c, p, pend, fd->descriptor, out + n);
            }
            n += sub;
        } else {
            EMIT(field_start, (size_t)(pend - field_start));
        }
        while (c->k < c->n && c->spans[c->k].off < off + v)
            c->k++; /* spans inside a field copied verbatim stay as they are */
        p = pend;
    }
#undef EMIT
    return n;
}

hpcz_status hpcz_wire_replace_payloads(const uint8_t *buf, size_t len,
                                       const ProtobufCMessageDescriptor *desc,
                                       const hpcz_wire_span *spans, size_t n,
                                       const uint8_t *markers, size_t marker_len, uint8_t **out,
                                       size_t *out_len, hpcz_error *err)
{
    replace_ctx c = {buf, spans, n, 0, markers, marker_len};
    size_t size = replace(&c, buf, buf + len, desc, NULL);
    uint8_t *o = malloc(size ? size : 1);
    if (!o)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    c.k = 0;
    size_t wrote = replace(&c, buf, buf + len, desc, o);
    HPCZ_ASSERT(wrote == size);
    (void)wrote;
    *out = o;
    *out_len = size;
    return HPCZ_OK;
}
