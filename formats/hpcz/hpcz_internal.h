/*
 * hpcz_internal.h - shared by the .hpcz reader, writer and encoders.
 * The format itself is specified in FORMAT.md next to this file.
 */
#ifndef HPCZ_HPCZ_INTERNAL_H
#define HPCZ_HPCZ_INTERNAL_H

#include "onnx/onnx_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error ".hpcz payloads are little-endian and borrowed in place: a big-endian port must byte-swap"
#endif

#define HZ_MAGIC "HPCZ"
#define HZ_MAJOR 1
#define HZ_MINOR 0
#define HZ_HEADER_SIZE 64   /* bytes of the 1.0 header */
#define HZ_ENTRY_SIZE 40    /* fixed part of a 1.0 table entry (dims follow) */
#define HZ_ALIGN 64         /* payload alignment */
#define HZ_FLAGS_REQUIRED 0x0000ffffu /* flag bits a reader must understand */
#define HZ_MARKER_KEY "hpcz.tensor"
#define HZ_ZSTD_MAX_RATIO 32768u /* a zstd frame never decodes to more than this many times its size */
#define HZ_DEFAULT_LEVEL 3
#define HZ_DEFAULT_INLINE_MAX 64

/* header offsets */
enum {
    HZ_H_MAGIC = 0,
    HZ_H_MAJOR = 4,
    HZ_H_MINOR = 6,
    HZ_H_FLAGS = 8,
    HZ_H_HEADER_SIZE = 12,
    HZ_H_ENTRY_SIZE = 14,
    HZ_H_FILE_SIZE = 16,
    HZ_H_SKEL_OFF = 24,
    HZ_H_SKEL_LEN = 32,
    HZ_H_TABLE_OFF = 40,
    HZ_H_TABLE_COUNT = 48,
    HZ_H_TABLE_LEN = 52,
    HZ_H_CHECKSUM = 56,
};
/* table entry offsets */
enum {
    HZ_E_OFFSET = 0,
    HZ_E_STORED = 8,
    HZ_E_RAW = 16,
    HZ_E_CHECKSUM = 24,
    HZ_E_DTYPE = 32,
    HZ_E_ENCODING = 36,
    HZ_E_FIELD = 37,
    HZ_E_NDIM = 38,
};

/* The TensorProto field a payload fills. */
typedef enum hz_field {
    HZ_FIELD_RAW = 0,    /* raw_data */
    HZ_FIELD_FLOAT = 1,  /* float_data */
    HZ_FIELD_INT32 = 2,  /* int32_data */
    HZ_FIELD_INT64 = 3,  /* int64_data */
    HZ_FIELD_DOUBLE = 4, /* double_data */
    HZ_FIELD_UINT64 = 5, /* uint64_data */
    HZ_FIELD_COUNT
} hz_field;

/* Payload bytes and sparse unit (element size in bytes) of `field` for a
 * tensor of dtype/numel; false when the field cannot carry that dtype. */
bool hz_field_layout(int field, int dtype, int64_t numel, uint64_t *raw_len, unsigned *unit);

static inline uint64_t hz_rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint32_t hz_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint16_t hz_rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline void hz_wr64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static inline void hz_wr32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static inline void hz_wr16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static inline uint64_t hz_align(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

/* Checksum of the header and metadata (FORMAT.md "Checksums"). */
uint64_t hz_meta_checksum(const uint8_t *file, uint64_t meta_end);

/* Encodes raw[len] (elements of `unit` bytes). enc < 0 chooses the smallest
 * encoding (raw unless another saves at least len/64), else forces one.
 * level < 0 disables zstd. On return *out is NULL for raw (store `raw`
 * itself) or a malloc'd buffer of *out_len bytes; *enc_out is the encoding. */
hpcz_status hz_encode(const uint8_t *raw, size_t len, unsigned unit, int enc, int level,
                      uint8_t **out, size_t *out_len, int *enc_out, hpcz_error *err);

/* Decodes a stored payload into raw[raw_len] (zero-filled beforehand when
 * raw_zeroed). Validates every length. */
hpcz_status hz_decode(int enc, const uint8_t *stored, size_t stored_len, uint8_t *raw,
                      size_t raw_len, unsigned unit, int raw_zeroed, hpcz_error *err);
/* Upper bound of the bytes decoding needs besides the output (the sparse
 * form inside a sparse-zstd frame); 0 when the frame header is bad. */
uint64_t hz_decode_scratch(int enc, const uint8_t *stored, size_t stored_len);

#endif
