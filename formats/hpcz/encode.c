/*
 * encode.c - .hpcz payload encodings (raw, zstd, sparse, sparse-zstd), the
 * format's checksum, and the field table (FORMAT.md).
 */
#include "hpcz_internal.h"

#include <zstd.h>

/* ------------------------------------------------------------ checksum */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t ck_round(uint64_t acc, uint64_t w)
{
    return rotl64(acc + w * P2, 31) * P1;
}

/* Four independent lanes over 32-byte stripes keep the multiplier busy: about
 * 4 bytes per cycle, so verifying every payload costs less than reading it. */
uint64_t hpcz_hpcz_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t v[4] = {P3, 2 * P3, 3 * P3, 4 * P3};
    size_t full = len / 32;
    for (size_t s = 0; s < full; s++, p += 32) {
        v[0] = ck_round(v[0], hz_rd64(p));
        v[1] = ck_round(v[1], hz_rd64(p + 8));
        v[2] = ck_round(v[2], hz_rd64(p + 16));
        v[3] = ck_round(v[3], hz_rd64(p + 24));
    }
    size_t rest = len % 32;
    if (rest) {
        uint8_t last[32] = {0};
        memcpy(last, p, rest);
        for (int k = 0; k < 4; k++)
            v[k] = ck_round(v[k], hz_rd64(last + 8 * k));
    }
    uint64_t h = (uint64_t)len;
    for (int k = 0; k < 4; k++)
        h = (h ^ ck_round(0, v[k])) * P1;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

uint64_t hz_meta_checksum(const uint8_t *file, uint64_t meta_end)
{
    uint8_t two[16];
    hz_wr64(two, hpcz_hpcz_checksum(file, HZ_H_CHECKSUM));
    hz_wr64(two + 8, hpcz_hpcz_checksum(file + HZ_HEADER_SIZE, (size_t)(meta_end - HZ_HEADER_SIZE)));
    return hpcz_hpcz_checksum(two, sizeof two);
}

/* ------------------------------------------------------------ fields */

bool hz_field_layout(int field, int dtype, int64_t numel, uint64_t *raw_len, unsigned *unit)
{
    int bits = hpcz_dtype_bits(dtype);
    if (bits <= 0 || dtype == HPCZ_DTYPE_STRING || numel < 0 || numel > HPCZ_MAX_NUMEL)
        return false;
    uint64_t n = (uint64_t)numel;
    switch (field) {
    case HZ_FIELD_RAW:
        *raw_len = hpcz_dtype_nbytes(dtype, numel);
        *unit = bits >= 8 ? (unsigned)bits / 8 : 1;
        return true;
    case HZ_FIELD_FLOAT:
        if (dtype != HPCZ_DTYPE_FLOAT && dtype != HPCZ_DTYPE_COMPLEX64)
            return false;
        *raw_len = 4 * n * (dtype == HPCZ_DTYPE_COMPLEX64 ? 2 : 1);
        *unit = 4;
        return true;
    case HZ_FIELD_DOUBLE:
        if (dtype != HPCZ_DTYPE_DOUBLE && dtype != HPCZ_DTYPE_COMPLEX128)
            return false;
        *raw_len = 8 * n * (dtype == HPCZ_DTYPE_COMPLEX128 ? 2 : 1);
        *unit = 8;
        return true;
    case HZ_FIELD_INT64:
        if (dtype != HPCZ_DTYPE_INT64)
            return false;
        *raw_len = 8 * n;
        *unit = 8;
        return true;
    case HZ_FIELD_UINT64:
        if (dtype != HPCZ_DTYPE_UINT64 && dtype != HPCZ_DTYPE_UINT32)
            return false;
        *raw_len = 8 * n;
        *unit = 8;
        return true;
    case HZ_FIELD_INT32:
        /* every other fixed-size type: one entry per element, or per packed
         * byte for sub-byte types (as hpcz_tensor_data decodes them) */
        switch (dtype) {
        case HPCZ_DTYPE_FLOAT:
        case HPCZ_DTYPE_DOUBLE:
        case HPCZ_DTYPE_INT64:
        case HPCZ_DTYPE_UINT64:
        case HPCZ_DTYPE_UINT32:
        case HPCZ_DTYPE_COMPLEX64:
        case HPCZ_DTYPE_COMPLEX128:
            return false;
        default:
            break;
        }
        if (bits > 32)
            return false;
        *raw_len = 4 * (bits >= 8 ? n : (uint64_t)hpcz_dtype_nbytes(dtype, numel));
        *unit = 4;
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------ sparse */

static inline bool unit_zero(const uint8_t *p, unsigned unit)
{
    switch (unit) {
    case 1:
        return p[0] == 0;
    case 2:
        return hz_rd16(p) == 0;
    case 4:
        return hz_rd32(p) == 0;
    case 8:
        return hz_rd64(p) == 0;
    default:
        return (hz_rd64(p) | hz_rd64(p + 8)) == 0;
    }
}

/* Elements with a nonzero bit (so -0.0 is kept: bit-exact). */
static size_t count_nonzero(const uint8_t *raw, size_t n, unsigned unit)
{
    size_t nnz = 0;
    switch (unit) {
#define COUNT_LOOP(U)                                                                              \
    case U:                                                                                        \
        for (size_t i = 0; i < n; i++)                                                             \
            nnz += !unit_zero(raw + (size_t)(U)*i, U);                                             \
        break;
        COUNT_LOOP(1)
        COUNT_LOOP(2)
        COUNT_LOOP(4)
        COUNT_LOOP(8)
        COUNT_LOOP(16)
#undef COUNT_LOOP
    }
    return nnz;
}

static void sparse_fill(const uint8_t *raw, size_t n, unsigned unit, uint8_t *out)
{
    size_t mask_len = (n + 7) / 8;
    uint8_t *vals = out + mask_len;
    memset(out, 0, mask_len);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = raw + (size_t)unit * i;
        if (unit_zero(e, unit))
            continue;
        out[i / 8] |= (uint8_t)(1u << (i % 8));
        memcpy(vals, e, unit);
        vals += unit;
    }
}

/* ------------------------------------------------------------ encode */

static hpcz_status zstd_frame(const uint8_t *src, size_t len, int level, uint8_t **out,
                              size_t *out_len, hpcz_error *err)
{
    size_t cap = ZSTD_compressBound(len);
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    size_t r = ZSTD_compress(buf, cap, src, len, level);
    if (ZSTD_isError(r)) {
        free(buf);
        return hpcz_fail(err, HPCZ_ERR_INVALID, "zstd: %s", ZSTD_getErrorName(r));
    }
    uint8_t *shrunk = realloc(buf, r ? r : 1);
    *out = shrunk ? shrunk : buf;
    *out_len = r;
    return HPCZ_OK;
}

hpcz_status hz_encode(const uint8_t *raw, size_t len, unsigned unit, int enc, int level,
                      uint8_t **out, size_t *out_len, int *enc_out, hpcz_error *err)
{
    *out = NULL;
    *out_len = len;
    *enc_out = HPCZ_HPCZ_ENC_RAW;
    HPCZ_ASSERT(unit && len % unit == 0);
    if (enc == HPCZ_HPCZ_ENC_RAW)
        return HPCZ_OK;
    if (enc == HPCZ_HPCZ_ENC_ZSTD) {
        *enc_out = enc;
        return zstd_frame(raw, len, level, out, out_len, err);
    }
    size_t n = len / unit;
    size_t mask_len = (n + 7) / 8;
    size_t nnz = enc < 0 || enc == HPCZ_HPCZ_ENC_SPARSE || enc == HPCZ_HPCZ_ENC_SPARSE_ZSTD
                     ? count_nonzero(raw, n, unit)
                     : 0;
    size_t sparse_len = mask_len + nnz * unit;
    if (enc >= 0) {
        uint8_t *sp = malloc(sparse_len ? sparse_len : 1);
        if (!sp)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        sparse_fill(raw, n, unit, sp);
        *enc_out = enc;
        if (enc == HPCZ_HPCZ_ENC_SPARSE) {
            *out = sp;
            *out_len = sparse_len;
            return HPCZ_OK;
        }
        hpcz_status st = zstd_frame(sp, sparse_len, level, out, out_len, err);
        free(sp);
        return st;
    }
    /* automatic: the smallest, if it saves at least 1/8 of raw. Dense float
     * weights compress by a few percent only, and stored raw they load
     * straight from the mmap (measured: 4-5x faster than decoding them);
     * sparse, quantized and constant payloads shrink far more than 1/8. */
    size_t limit = len - len / 8;
    uint8_t *best = NULL;
    size_t best_len = len;
    int best_enc = HPCZ_HPCZ_ENC_RAW;
    hpcz_status st;
#define CONSIDER(buf, blen, e)                                                                     \
    do {                                                                                           \
        if ((blen) <= limit && (blen) < best_len) {                                                \
            free(best);                                                                            \
            best = (buf);                                                                          \
            best_len = (blen);                                                                     \
            best_enc = (e);                                                                        \
        } else {                                                                                   \
            free(buf);                                                                             \
        }                                                                                          \
    } while (0)
    if (level >= 0) {
        uint8_t *z;
        size_t zl;
        if ((st = zstd_frame(raw, len, level, &z, &zl, err)))
            return st;
        CONSIDER(z, zl, HPCZ_HPCZ_ENC_ZSTD);
    }
    if (sparse_len < len) {
        uint8_t *sp = malloc(sparse_len ? sparse_len : 1);
        if (!sp) {
            free(best);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
        sparse_fill(raw, n, unit, sp);
        if (level >= 0) {
            uint8_t *z;
            size_t zl;
            if ((st = zstd_frame(sp, sparse_len, level, &z, &zl, err))) {
                free(sp);
                free(best);
                return st;
            }
            CONSIDER(sp, sparse_len, HPCZ_HPCZ_ENC_SPARSE);
            CONSIDER(z, zl, HPCZ_HPCZ_ENC_SPARSE_ZSTD);
        } else {
            CONSIDER(sp, sparse_len, HPCZ_HPCZ_ENC_SPARSE);
        }
    }
#undef CONSIDER
    *out = best;
    *out_len = best_len;
    *enc_out = best_enc;
    return HPCZ_OK;
}

/* ------------------------------------------------------------ decode */

static hpcz_status unzstd(const uint8_t *src, size_t len, uint8_t *dst, size_t want,
                          hpcz_error *err)
{
    unsigned long long cs = ZSTD_getFrameContentSize(src, len);
    if (cs == ZSTD_CONTENTSIZE_ERROR || cs == ZSTD_CONTENTSIZE_UNKNOWN)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "not a zstd frame with its size");
    if (cs != want)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "zstd frame holds %llu bytes, expected %zu", cs,
                         want);
    size_t fl = ZSTD_findFrameCompressedSize(src, len);
    if (ZSTD_isError(fl) || fl != len)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "zstd frame does not fill the payload");
    size_t r = ZSTD_decompress(dst, want, src, len);
    if (ZSTD_isError(r))
        return hpcz_fail(err, HPCZ_ERR_PARSE, "zstd: %s", ZSTD_getErrorName(r));
    if (r != want)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "zstd frame decoded to %zu bytes, expected %zu", r,
                         want);
    return HPCZ_OK;
}

static hpcz_status unsparse(const uint8_t *sp, size_t sp_len, uint8_t *raw, size_t raw_len,
                            unsigned unit, int raw_zeroed, hpcz_error *err)
{
    size_t n = raw_len / unit;
    size_t mask_len = (n + 7) / 8;
    if (sp_len < mask_len)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "sparse payload shorter than its bitmask");
    size_t pop = 0;
    for (size_t i = 0; i < mask_len; i++)
        pop += (size_t)__builtin_popcount(sp[i]);
    if (n % 8 && (sp[mask_len - 1] >> (n % 8)))
        return hpcz_fail(err, HPCZ_ERR_PARSE, "sparse bitmask has bits past the last element");
    if (sp_len - mask_len != pop * unit)
        return hpcz_fail(err, HPCZ_ERR_PARSE,
                         "sparse payload has %zu value bytes, its bitmask says %zu",
                         sp_len - mask_len, pop * unit);
    if (!raw_zeroed)
        memset(raw, 0, raw_len);
    const uint8_t *vals = sp + mask_len;
    for (size_t b = 0; b < mask_len; b++) {
        unsigned bits = sp[b];
        while (bits) {
            unsigned k = (unsigned)__builtin_ctz(bits);
            bits &= bits - 1;
            memcpy(raw + (b * 8 + k) * unit, vals, unit);
            vals += unit;
        }
    }
    return HPCZ_OK;
}

uint64_t hz_decode_scratch(int enc, const uint8_t *stored, size_t stored_len)
{
    if (enc != HPCZ_HPCZ_ENC_SPARSE_ZSTD)
        return 0;
    unsigned long long cs = ZSTD_getFrameContentSize(stored, stored_len);
    if (cs == ZSTD_CONTENTSIZE_ERROR || cs == ZSTD_CONTENTSIZE_UNKNOWN)
        return 0;
    return cs;
}

hpcz_status hz_decode(int enc, const uint8_t *stored, size_t stored_len, uint8_t *raw,
                      size_t raw_len, unsigned unit, int raw_zeroed, hpcz_error *err)
{
    switch (enc) {
    case HPCZ_HPCZ_ENC_RAW:
        if (stored_len != raw_len)
            return hpcz_fail(err, HPCZ_ERR_PARSE, "raw payload of %zu bytes, expected %zu",
                             stored_len, raw_len);
        memcpy(raw, stored, raw_len);
        return HPCZ_OK;
    case HPCZ_HPCZ_ENC_ZSTD:
        return unzstd(stored, stored_len, raw, raw_len, err);
    case HPCZ_HPCZ_ENC_SPARSE:
        return unsparse(stored, stored_len, raw, raw_len, unit, raw_zeroed, err);
    case HPCZ_HPCZ_ENC_SPARSE_ZSTD: {
        /* the sparse form is between its bitmask and a full copy in size */
        size_t n = raw_len / unit, mask_len = (n + 7) / 8;
        unsigned long long cs = ZSTD_getFrameContentSize(stored, stored_len);
        if (cs == ZSTD_CONTENTSIZE_ERROR || cs == ZSTD_CONTENTSIZE_UNKNOWN)
            return hpcz_fail(err, HPCZ_ERR_PARSE, "not a zstd frame with its size");
        if (cs < mask_len || cs > (unsigned long long)mask_len + raw_len)
            return hpcz_fail(err, HPCZ_ERR_PARSE,
                             "sparse form of %llu bytes cannot hold %zu elements", cs, n);
        uint8_t *sp = malloc(cs ? (size_t)cs : 1);
        if (!sp)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        hpcz_status st = unzstd(stored, stored_len, sp, (size_t)cs, err);
        if (!st)
            st = unsparse(sp, (size_t)cs, raw, raw_len, unit, raw_zeroed, err);
        free(sp);
        return st;
    }
    default:
        return hpcz_fail(err, HPCZ_ERR_PARSE, "unknown encoding %d", enc);
    }
}

const char *hpcz_hpcz_encoding_name(int encoding)
{
    static const char *const names[HPCZ_HPCZ_ENC_COUNT] = {
        [HPCZ_HPCZ_ENC_RAW] = "raw",
        [HPCZ_HPCZ_ENC_ZSTD] = "zstd",
        [HPCZ_HPCZ_ENC_SPARSE] = "sparse",
        [HPCZ_HPCZ_ENC_SPARSE_ZSTD] = "sparse-zstd",
    };
    _Static_assert(HPCZ_ARRAY_SIZE(names) == HPCZ_HPCZ_ENC_COUNT, "encoding names");
    return encoding >= 0 && encoding < HPCZ_HPCZ_ENC_COUNT ? names[encoding] : "?";
}
