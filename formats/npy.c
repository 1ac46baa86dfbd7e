/*
 * npy.c - NumPy .npy files (format 1.0, 2.0, 3.0), little-endian, C order.
 * The header is untrusted: the shape times the item size must match the
 * bytes that follow it exactly, and every size is bounded.
 */
#include "internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct npy_type {
    const char *descr; /* without the byte-order character */
    int dtype;
} npy_type;

static const npy_type npy_types[] = {
    {"f4", HPCZ_DTYPE_FLOAT},  {"f2", HPCZ_DTYPE_FLOAT16}, {"f8", HPCZ_DTYPE_DOUBLE},
    {"i1", HPCZ_DTYPE_INT8},   {"u1", HPCZ_DTYPE_UINT8},   {"i2", HPCZ_DTYPE_INT16},
    {"u2", HPCZ_DTYPE_UINT16}, {"i4", HPCZ_DTYPE_INT32},   {"u4", HPCZ_DTYPE_UINT32},
    {"i8", HPCZ_DTYPE_INT64},  {"u8", HPCZ_DTYPE_UINT64},  {"b1", HPCZ_DTYPE_BOOL},
};

#define NPY_MAX_FILE ((uint64_t)1 << 40)

/* Finds 'key': in a Python dict literal and returns the text after the colon. */
static const char *dict_value(const char *h, size_t len, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 < len; i++) {
        if ((h[i] == '\'' || h[i] == '"') && !strncmp(h + i + 1, key, kl) && h[i + 1 + kl] == h[i]) {
            const char *p = h + i + kl + 2;
            while (*p == ' ')
                p++;
            if (*p != ':')
                return NULL;
            p++;
            while (*p == ' ')
                p++;
            return p;
        }
    }
    return NULL;
}

/* Parses and checks the header of the .npy bytes b[0, len): out gets dtype
 * and shape (no data), *data_off where the data starts. */
static hpcz_status npy_header(const uint8_t *b, size_t len, hpcz_array *out, size_t *data_off,
                              hpcz_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "not a .npy file (bad magic)");
    int major = b[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return hpcz_fail(err, HPCZ_ERR_PARSE, "truncated .npy header");
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hoff = 12;
    } else {
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, ".npy format version %d is not supported", major);
    }
    if (hlen > 65536 || hoff + hlen > len)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "truncated or oversized .npy header");
    char *h = malloc(hlen + 1);
    if (!h)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    memcpy(h, b + hoff, hlen);
    h[hlen] = 0;
    hpcz_status st = HPCZ_OK;
    const char *d = dict_value(h, hlen, "descr");
    const char *fo = dict_value(h, hlen, "fortran_order");
    const char *sh = dict_value(h, hlen, "shape");
    if (!d || !fo || !sh || (*d != '\'' && *d != '"') || *sh != '(') {
        st = hpcz_fail(err, HPCZ_ERR_PARSE, "malformed .npy header");
        goto out;
    }
    if (!strncmp(fo, "True", 4)) {
        st = hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "fortran-order .npy arrays are not supported");
        goto out;
    }
    if (strncmp(fo, "False", 5)) {
        st = hpcz_fail(err, HPCZ_ERR_PARSE, "malformed .npy header (fortran_order)");
        goto out;
    }
    char q = *d;
    const char *de = strchr(d + 1, q);
    if (!de || de - d - 1 < 2 || de - d - 1 > 4) {
        st = hpcz_fail(err, HPCZ_ERR_PARSE, "malformed .npy dtype");
        goto out;
    }
    char order = d[1];
    const char *code = d + 2;
    size_t codelen = (size_t)(de - code);
    if (order == '>') {
        st = hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "big-endian .npy arrays are not supported");
        goto out;
    }
    if (order != '<' && order != '|' && order != '=') {
        st = hpcz_fail(err, HPCZ_ERR_PARSE, "malformed .npy dtype");
        goto out;
    }
    int dtype = 0;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(npy_types); i++)
        if (strlen(npy_types[i].descr) == codelen && !strncmp(npy_types[i].descr, code, codelen))
            dtype = npy_types[i].dtype;
    if (!dtype) {
        st = hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, ".npy dtype '%.*s' is not supported",
                       (int)(de - d - 1), d + 1);
        goto out;
    }
    int64_t dims[HPCZ_ARRAY_MAX_RANK];
    int nd = 0;
    const char *p = sh + 1;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        if (!isdigit((unsigned char)*p) || nd >= HPCZ_ARRAY_MAX_RANK) {
            st = hpcz_fail(err, HPCZ_ERR_PARSE, "malformed or too deep .npy shape");
            goto out;
        }
        int64_t v = 0;
        while (isdigit((unsigned char)*p)) {
            if (v > HPCZ_MAX_NUMEL) {
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, ".npy shape too large");
                goto out;
            }
            v = v * 10 + (*p++ - '0');
        }
        while (*p == 'L')
            p++;
        dims[nd++] = v;
    }
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] && n > HPCZ_MAX_NUMEL / dims[i]) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, ".npy shape too large");
            goto out;
        }
        n *= dims[i];
    }
    size_t need = hpcz_dtype_nbytes(dtype, n);
    if (len - hoff - hlen != need) {
        st = hpcz_fail(err, HPCZ_ERR_PARSE,
                       ".npy data size %zu does not match its shape (%zu bytes expected)",
                       len - hoff - hlen, need);
        goto out;
    }
    out->dtype = dtype;
    out->ndim = nd;
    memcpy(out->dims, dims, (size_t)nd * sizeof *dims);
    out->numel = n;
    out->nbytes = need;
    *data_off = hoff + hlen;
out:
    free(h);
    return st;
}

hpcz_status hpcz_npy_load_buffer(const void *buf, size_t len, hpcz_array *out, hpcz_error *err)
{
    hpcz_array hdr;
    size_t off;
    memset(out, 0, sizeof *out);
    hpcz_status st = npy_header(buf, len, &hdr, &off, err);
    if (st)
        return st;
    st = hpcz_array_alloc(out, hdr.dtype, hdr.ndim, hdr.dims, err);
    if (st)
        return st;
    if (hdr.nbytes)
        memcpy(out->data, (const uint8_t *)buf + off, hdr.nbytes);
    return HPCZ_OK;
}

/* Below this size a file is read, not mapped: a folder of thousands of
 * one-sample files must not use up the process's mappings. */
#define NPY_MAP_MIN ((size_t)1 << 20)

hpcz_status hpcz_npy_map(const char *path, hpcz_npy_mapped *out, hpcz_error *err)
{
    memset(out, 0, sizeof *out);
    int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat sst;
    if (fd < 0 || fstat(fd, &sst) != 0 || !S_ISREG(sst.st_mode) ||
        (uint64_t)sst.st_size < NPY_MAP_MIN || (uint64_t)sst.st_size > NPY_MAX_FILE) {
        if (fd >= 0)
            close(fd);
        return hpcz_npy_load(path, &out->a, err);
    }
    size_t len = (size_t)sst.st_size;
    void *addr = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (addr == MAP_FAILED)
        return hpcz_npy_load(path, &out->a, err);
    size_t off;
    hpcz_status st = npy_header(addr, len, &out->a, &off, err);
    if (st) {
        munmap(addr, len);
        return st;
    }
    out->a.data = out->a.nbytes ? (uint8_t *)addr + off : NULL;
    out->addr = addr;
    out->len = len;
    return HPCZ_OK;
}

void hpcz_npy_mapped_drop(hpcz_npy_mapped *m, const void *p, size_t n)
{
    if (!m->addr || !n)
        return;
    /* whole pages inside [p, p + n) only: neighbours may still be wanted */
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + pg - 1) / pg * pg, hi = ((uintptr_t)p + n) / pg * pg;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void hpcz_npy_unmap(hpcz_npy_mapped *m)
{
    if (m->addr)
        munmap(m->addr, m->len);
    else
        hpcz_array_release(&m->a);
    memset(m, 0, sizeof *m);
}

hpcz_status hpcz_npy_load(const char *path, hpcz_array *out, hpcz_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    hpcz_status st = hpcz_file_read(path, NPY_MAX_FILE, &buf, &len, err);
    if (st)
        return st;
    st = hpcz_npy_load_buffer(buf, len, out, err);
    free(buf);
    return st;
}

hpcz_status hpcz_npy_save(const char *path, const hpcz_array *a, hpcz_error *err)
{
    const char *descr = NULL;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(npy_types); i++)
        if (npy_types[i].dtype == a->dtype)
            descr = npy_types[i].descr;
    if (!descr)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "dtype %s cannot be written to .npy",
                         hpcz_dtype_name(a->dtype));
    char shape[HPCZ_ARRAY_MAX_RANK * 24 + 8];
    size_t k = 0;
    shape[0] = 0;
    for (int i = 0; i < a->ndim; i++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", i ? ", " : "",
                              (long long)a->dims[i]);
    if (a->ndim == 1)
        snprintf(shape + k, sizeof shape - k, ","); /* Python's one-element tuple */
    char hdr[512];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '%c%s', 'fortran_order': False, 'shape': (%s), }",
                      descr[0] == 'b' || descr[1] == '1' ? '|' : '<', descr, shape);
    if (hl < 0 || (size_t)hl >= sizeof hdr - 64)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "shape too long for a .npy header");
    /* pad with spaces so that data starts at a multiple of 64, end with \n */
    size_t total = 10 + (size_t)hl + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(hdr + hl, ' ', pad);
    hdr[(size_t)hl + pad] = '\n';
    size_t hlen = (size_t)hl + pad + 1;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xff),
                       (uint8_t)(hlen >> 8)};
    hpcz_outfile *f = hpcz_outfile_open(path, err);
    if (!f)
        return err ? err->status : HPCZ_ERR_IO;
    FILE *s = hpcz_outfile_stream(f);
    if (fwrite(pre, 1, 10, s) != 10 || fwrite(hdr, 1, hlen, s) != hlen ||
        (a->nbytes && fwrite(a->data, 1, a->nbytes, s) != a->nbytes)) {
        hpcz_outfile_abort(f);
        return hpcz_fail(err, HPCZ_ERR_IO, "write failed");
    }
    return hpcz_outfile_commit(f, err);
}
