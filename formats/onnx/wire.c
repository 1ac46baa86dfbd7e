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

static hpcz_status walk(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *desc,
                        int depth, int max_depth, hpcz_error *err)
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
            const ProtobufCFieldDescriptor *fd =
                desc && field <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(desc, (unsigned)field)
                    : NULL;
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                hpcz_status st = walk(p, p + v, fd->descriptor, depth + 1, max_depth, err);
                if (st)
                    return st;
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
    return walk(buf, buf + len, desc, 0, max_depth, err);
}
