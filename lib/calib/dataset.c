/*
 * dataset.c - calibration and evaluation data: .npy folders, per-sample .npy
 * files, ONNX test_data_set_* folders, or seeded random samples.
 *
 * A data set is a list of chunks; a chunk holds one array per model input
 * with the same leading (batch) length. Batches are stacked across chunks.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

/* A chunk's arrays are .npy files mapped (hpcz_npy_map: only the rows a
 * batch copies are read, so memory follows the samples used, not the file
 * size) or arrays held whole (small files, .pb, random data). */
typedef struct chunk {
    hpcz_npy_mapped *m; /* [n_inputs] */
    size_t rows;
} chunk;

/* How an input's files hold its samples. */
enum {
    LAY_BATCH = 0, /* the leading axis is the model's batch axis: sample i is a[i:i+1] */
    LAY_SLICE = 1, /* one axis more than the input: sample i is a[i], fed whole (scalars,
                      recurrent state, a batch dim fixed inside each sample) */
    LAY_SAME = 2,  /* a scalar given once: every sample gets it */
};

struct hpcz_dataset {
    hpcz_plan *plan;
    size_t n_inputs;
    int *layout;        /* [n_inputs], from the first chunk; every chunk agrees */
    chunk *chunks;
    size_t n_chunks, cap_chunks;
    size_t total;
    size_t want;        /* samples wanted (0: all): loading stops there */
    int random;
    size_t fixed_batch; /* > 0 when the model's batch dim is a number */
};

static const char *nz(const char *s)
{
    return s ? s : "";
}

static void describe_input(const hpcz_value *v, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "%s [", v->dtype ? hpcz_dtype_name(v->dtype) : "?");
    for (int i = 0; i < v->ndim && k < cap; i++) {
        if (v->dims[i].size >= 0)
            k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)v->dims[i].size);
        else
            k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? "," : "", v->dims[i].param ? v->dims[i].param : "?");
    }
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* Checks a (possibly batch-less) array against input i; adds the batch axis
 * when the array is one sample without it. */
static hpcz_status fit_input(hpcz_dataset *d, size_t i, hpcz_array *a, const char *file,
                             hpcz_error *err)
{
    const hpcz_value *v = hpcz_plan_input(d->plan, i);
    char want[256], got[256];
    describe_input(v, want, sizeof want);
    hpcz_array_describe(a, got, sizeof got);
    if (v->dtype && a->dtype != v->dtype)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "%s: input '%s' expects %s, got %s", file, v->name,
                         want, got);
    int lay = LAY_BATCH;
    if (v->ndim == 0 && a->ndim == 0) {
        lay = LAY_SAME; /* one scalar for every sample */
    } else if (v->ndim >= 0 && a->ndim == v->ndim + 1) {
        lay = LAY_SLICE; /* samples along an extra leading axis, each fed as it is */
    } else if (v->ndim >= 1 && a->ndim == v->ndim - 1) {
        /* one sample without its batch axis */
        for (int k = a->ndim; k > 0; k--)
            a->dims[k] = a->dims[k - 1];
        a->dims[0] = 1;
        a->ndim++;
    }
    if (lay == LAY_BATCH && v->ndim >= 0 && a->ndim != v->ndim)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "%s: input '%s' expects %s, got %s", file, v->name,
                         want, got);
    int off = lay == LAY_SLICE ? 1 : 0, first = lay == LAY_SLICE ? 0 : 1;
    for (int k = first; lay != LAY_SAME && k < v->ndim; k++)
        if (v->dims[k].size >= 0 && v->dims[k].size != a->dims[k + off])
            return hpcz_fail(err, HPCZ_ERR_INVALID, "%s: input '%s' expects %s, got %s (%s)", file,
                             v->name, want, got,
                             lay == LAY_SLICE ? "one axis more than the input: samples along it"
                                              : "the first axis is the batch");
    if (d->n_chunks == 0 && d->layout) {
        d->layout[i] = lay;
    } else if (d->layout && d->layout[i] != lay) {
        return hpcz_fail(err, HPCZ_ERR_INVALID, "%s: input '%s': its files hold samples in different layouts",
                         file, v->name);
    }
    return HPCZ_OK;
}

/* Samples an input's array holds in layout lay (LAY_SAME: any number). */
static size_t rows_of(const hpcz_array *a, int lay)
{
    return lay == LAY_SAME ? SIZE_MAX : (size_t)a->dims[0];
}

static void release_arrays(hpcz_npy_mapped *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        hpcz_npy_unmap(&m[i]);
    free(m);
}

/* Takes the arrays (freed on failure too). */
static hpcz_status add_chunk(hpcz_dataset *d, hpcz_npy_mapped *arrays, hpcz_error *err)
{
    size_t rows = SIZE_MAX, first = 0;
    for (size_t i = 0; i < d->n_inputs; i++) {
        size_t r = rows_of(&arrays[i].a, d->layout[i]);
        if (r == SIZE_MAX)
            continue;
        if (rows == SIZE_MAX) {
            rows = r;
            first = i;
        } else if (r != rows) {
            hpcz_fail(err, HPCZ_ERR_INVALID,
                      "inputs '%s' and '%s' hold different sample counts (%zu and %zu)",
                      hpcz_plan_input(d->plan, first)->name, hpcz_plan_input(d->plan, i)->name, rows, r);
            release_arrays(arrays, d->n_inputs);
            return err->status;
        }
    }
    if (rows == SIZE_MAX) /* only scalars given once: one sample */
        rows = d->n_inputs ? 1 : 0;
    if (!hpcz_grow((void **)&d->chunks, &d->cap_chunks, d->n_chunks + 1, sizeof *d->chunks)) {
        release_arrays(arrays, d->n_inputs);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    d->chunks[d->n_chunks].m = arrays;
    d->chunks[d->n_chunks].rows = rows;
    d->n_chunks++;
    d->total += rows;
    return HPCZ_OK;
}

static bool have_enough(const hpcz_dataset *d)
{
    return d->want && d->total >= d->want;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of a folder (no dot files). */
static char **list_dir(const char *dir, size_t *n, hpcz_error *err)
{
    DIR *dd = opendir(dir);
    if (!dd) {
        hpcz_fail(err, HPCZ_ERR_IO, "%s: %s", dir, errno == ENOENT ? "no such file or folder" : strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(dd))) {
        if (e->d_name[0] == '.')
            continue;
        if (!hpcz_grow((void **)&names, &cap, *n + 1, sizeof *names))
            break;
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(dd);
    if (*n)
        qsort(names, *n, sizeof *names, cmp_str);
    return names ? names : calloc(1, sizeof *names);
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* One ONNX test_data_set folder: input_<i>.pb for each model input. */
static hpcz_status load_pb_set(hpcz_dataset *d, const char *set, hpcz_error *err)
{
    hpcz_npy_mapped *arrays = calloc(d->n_inputs ? d->n_inputs : 1, sizeof *arrays);
    if (!arrays)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < d->n_inputs; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/input_%zu.pb", set, i);
        hpcz_tensor *t = hpcz_tensorproto_load(path, err);
        if (!t) {
            hpcz_error_prefix(err, path);
            release_arrays(arrays, d->n_inputs);
            return err->status;
        }
        hpcz_status st = hpcz_array_from_tensor(t, &arrays[i].a, err);
        hpcz_model_free(t->model);
        if (!st)
            st = fit_input(d, i, &arrays[i].a, path, err);
        if (st) {
            release_arrays(arrays, d->n_inputs);
            return st;
        }
    }
    return add_chunk(d, arrays, err);
}

/* A folder of test_data_set_* folders, in name order (up to the samples
 * wanted). */
static hpcz_status load_pb_sets(hpcz_dataset *d, const char *dir, char **names, size_t n,
                                hpcz_error *err)
{
    for (size_t k = 0; k < n && !have_enough(d); k++) {
        if (strncmp(names[k], "test_data_set_", 14))
            continue;
        char set[4096];
        snprintf(set, sizeof set, "%s/%s", dir, names[k]);
        hpcz_status st = load_pb_set(d, set, err);
        if (st)
            return st;
    }
    return HPCZ_OK;
}

/* <input>.npy (k < 0) or <input>_<k>.npy of every input in dir, mapped, as
 * one chunk. */
static hpcz_status load_npy_chunk(hpcz_dataset *d, const char *dir, long k, hpcz_error *err)
{
    hpcz_npy_mapped *arrays = calloc(d->n_inputs ? d->n_inputs : 1, sizeof *arrays);
    if (!arrays)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < d->n_inputs; i++) {
        char path[4096];
        const char *name = hpcz_plan_input(d->plan, i)->name;
        if (k < 0)
            snprintf(path, sizeof path, "%s/%s.npy", dir, name);
        else
            snprintf(path, sizeof path, "%s/%s_%ld.npy", dir, name, k);
        hpcz_status st = hpcz_npy_map(path, &arrays[i], err);
        if (st)
            hpcz_error_prefix(err, path);
        else
            st = fit_input(d, i, &arrays[i].a, path, err);
        if (st) {
            release_arrays(arrays, d->n_inputs);
            return st;
        }
    }
    return add_chunk(d, arrays, err);
}

static hpcz_status load_npy_dir(hpcz_dataset *d, const char *dir, char **names, size_t n,
                                hpcz_error *err)
{
    /* layout 1: <input>.npy per input, batch axis first */
    bool all_whole = d->n_inputs > 0;
    char path[4096];
    for (size_t i = 0; i < d->n_inputs && all_whole; i++) {
        snprintf(path, sizeof path, "%s.npy", hpcz_plan_input(d->plan, i)->name);
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = !strcmp(names[k], path);
        all_whole = found;
    }
    if (all_whole)
        return load_npy_chunk(d, dir, -1, err);
    /* layout 2: <input>_<k>.npy per sample (up to the samples wanted) */
    for (size_t k = 0; !have_enough(d); k++) {
        bool have = true;
        for (size_t i = 0; i < d->n_inputs && have; i++) {
            snprintf(path, sizeof path, "%s/%s_%zu.npy", dir, hpcz_plan_input(d->plan, i)->name, k);
            struct stat st;
            have = stat(path, &st) == 0;
        }
        if (!have) {
            if (k == 0) {
                const char *in0 = d->n_inputs ? hpcz_plan_input(d->plan, 0)->name : "input";
                return hpcz_fail(err, HPCZ_ERR_INVALID,
                                 "%s: no data for the model's inputs: expected %s.npy (batch axis "
                                 "first), %s_0.npy, ..., input_0.pb or test_data_set_*/input_0.pb",
                                 dir, in0, in0);
            }
            break;
        }
        hpcz_status st = load_npy_chunk(d, dir, (long)k, err);
        if (st)
            return st;
    }
    return HPCZ_OK;
}

/* splitmix64: small, seeded, reproducible */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static hpcz_status make_random(hpcz_dataset *d, size_t n, hpcz_error *err)
{
    hpcz_npy_mapped *arrays = calloc(d->n_inputs ? d->n_inputs : 1, sizeof *arrays);
    if (!arrays)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    uint64_t seed = 0x68706378u; /* "hpcz" */
    for (size_t i = 0; i < d->n_inputs; i++) {
        const hpcz_value *v = hpcz_plan_input(d->plan, i);
        if (v->dtype != HPCZ_DTYPE_FLOAT || v->ndim < 1) {
            release_arrays(arrays, d->n_inputs);
            return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED,
                             "random calibration data is only made for float inputs with a batch "
                             "axis; input '%s' (%s%s) is not one: give --calib DIR with real data",
                             v->name, v->dtype ? hpcz_dtype_name(v->dtype) : "?",
                             v->ndim == 0 ? ", a scalar" : "");
        }
        d->layout[i] = LAY_BATCH;
        int64_t dims[HPCZ_ARRAY_MAX_RANK];
        dims[0] = (int64_t)n;
        for (int k = 1; k < v->ndim; k++) {
            dims[k] = v->dims[k].size >= 0 ? v->dims[k].size
                      : v->dims[k].param ? hpcz_plan_dim(d->plan, v->dims[k].param) : -1;
            if (dims[k] < 0) {
                release_arrays(arrays, d->n_inputs);
                return hpcz_fail(err, HPCZ_ERR_USAGE,
                                 "input '%s': random data needs the size of its dimension '%s': "
                                 "give --dim %s=N",
                                 v->name, v->dims[k].param ? v->dims[k].param : "?",
                                 v->dims[k].param ? v->dims[k].param : "NAME");
            }
        }
        hpcz_status st = hpcz_array_alloc(&arrays[i].a, HPCZ_DTYPE_FLOAT, v->ndim, dims, err);
        if (st) {
            release_arrays(arrays, d->n_inputs);
            return st;
        }
        float *f = arrays[i].a.data;
        for (int64_t k = 0; k < arrays[i].a.numel; k += 2) {
            /* Box-Muller from two uniforms */
            double u1 = ((double)(mix(&seed) >> 11) + 1.0) / 9007199254740993.0;
            double u2 = (double)(mix(&seed) >> 11) / 9007199254740992.0;
            double r = sqrt(-2.0 * log(u1));
            f[k] = (float)(r * cos(2 * M_PI * u2));
            if (k + 1 < arrays[i].a.numel)
                f[k + 1] = (float)(r * sin(2 * M_PI * u2));
        }
    }
    d->random = 1;
    return add_chunk(d, arrays, err);
}

hpcz_dataset *hpcz_dataset_open(const char *spec, hpcz_plan *plan, size_t max_samples,
                                hpcz_error *err)
{
    hpcz_dataset *d = calloc(1, sizeof *d);
    if (!d) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    d->plan = plan;
    d->want = max_samples;
    d->n_inputs = hpcz_plan_n_inputs(plan);
    d->layout = calloc(d->n_inputs + 1, sizeof *d->layout);
    if (!d->layout) {
        free(d);
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (d->n_inputs > 0) {
        const hpcz_value *v0 = hpcz_plan_input(plan, 0);
        if (v0->ndim >= 1 && v0->dims[0].size > 0)
            d->fixed_batch = (size_t)v0->dims[0].size;
    }
    hpcz_status st = HPCZ_OK;
    if (!strncmp(spec, "random:", 7)) {
        char *end;
        unsigned long long n = strtoull(spec + 7, &end, 10);
        if (end == spec + 7 || *end || n == 0 || n > 1000000)
            st = hpcz_fail(err, HPCZ_ERR_USAGE, "'%s': random:N needs N in [1, 1000000]", spec);
        else
            st = make_random(d, (size_t)n, err);
    } else {
        struct stat sst;
        if (stat(spec, &sst) != 0) {
            st = hpcz_fail(err, HPCZ_ERR_IO, "%s: no such file or folder", spec);
        } else if (S_ISDIR(sst.st_mode)) {
            size_t n;
            char **names = list_dir(spec, &n, err);
            if (!names) {
                st = err->status;
            } else {
                bool pb = false, one_set = false;
                for (size_t k = 0; k < n; k++) {
                    pb |= !strncmp(names[k], "test_data_set_", 14);
                    one_set |= !strcmp(names[k], "input_0.pb");
                }
                st = pb        ? load_pb_sets(d, spec, names, n, err)
                     : one_set ? load_pb_set(d, spec, err) /* a test_data_set folder itself */
                               : load_npy_dir(d, spec, names, n, err);
                free_list(names, n);
            }
        } else if (d->n_inputs == 1) {
            /* mapped: a large file costs only the samples used */
            hpcz_npy_mapped *arrays = calloc(1, sizeof *arrays);
            if (!arrays)
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            else if ((st = hpcz_npy_map(spec, &arrays[0], err)))
                hpcz_error_prefix(err, spec);
            else if (!(st = fit_input(d, 0, &arrays[0].a, spec, err))) {
                st = add_chunk(d, arrays, err); /* takes the arrays */
                arrays = NULL;
            }
            if (st && arrays)
                release_arrays(arrays, 1);
        } else {
            st = hpcz_fail(err, HPCZ_ERR_USAGE,
                           "%s: the model has %zu inputs: give a folder with one .npy per input",
                           spec, d->n_inputs);
        }
    }
    if (!st && d->total == 0)
        st = hpcz_fail(err, HPCZ_ERR_INVALID, "%s: no samples", spec);
    if (st) {
        hpcz_dataset_free(d);
        return NULL;
    }
    if (max_samples && d->total > max_samples)
        d->total = max_samples;
    return d;
}

size_t hpcz_dataset_size(const hpcz_dataset *d)
{
    return d->total;
}

int hpcz_dataset_is_random(const hpcz_dataset *d)
{
    return d->random;
}

size_t hpcz_dataset_batch_size(const hpcz_dataset *d)
{
    /* a sample fed whole (LAY_SLICE) is one run */
    for (size_t i = 0; i < d->n_inputs; i++)
        if (d->layout[i] == LAY_SLICE)
            return 1;
    return d->fixed_batch ? d->fixed_batch : 32;
}

hpcz_status hpcz_dataset_batch(hpcz_dataset *d, size_t start, size_t n, hpcz_array *inputs,
                               hpcz_error *err)
{
    if (start + n > d->total)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "batch past the end of the data set");
    memset(inputs, 0, d->n_inputs * sizeof *inputs);
    for (size_t i = 0; i < d->n_inputs; i++) {
        const hpcz_array *proto = &d->chunks[0].m[i].a;
        int lay = d->layout[i];
        if (lay == LAY_SAME) {
            hpcz_status st = hpcz_array_alloc(&inputs[i], proto->dtype, 0, proto->dims, err);
            if (st) {
                for (size_t j = 0; j < i; j++)
                    hpcz_array_release(&inputs[j]);
                return st;
            }
            memcpy(inputs[i].data, proto->data, proto->nbytes);
            continue;
        }
        if (lay == LAY_SLICE && n != 1) {
            for (size_t j = 0; j < i; j++)
                hpcz_array_release(&inputs[j]);
            return hpcz_fail(err, HPCZ_ERR_USAGE, "input '%s': its samples run one at a time",
                             nz(hpcz_plan_input(d->plan, i)->name));
        }
        int64_t dims[HPCZ_ARRAY_MAX_RANK];
        memcpy(dims, proto->dims, sizeof dims);
        dims[0] = (int64_t)n;
        hpcz_status st = lay == LAY_SLICE
                             ? hpcz_array_alloc(&inputs[i], proto->dtype, proto->ndim - 1, proto->dims + 1, err)
                             : hpcz_array_alloc(&inputs[i], proto->dtype, proto->ndim, dims, err);
        if (st) {
            for (size_t j = 0; j < i; j++)
                hpcz_array_release(&inputs[j]);
            return st;
        }
        size_t row_bytes = proto->dims[0] ? proto->nbytes / (size_t)proto->dims[0] : 0;
        size_t done = 0, skip = start;
        for (size_t c = 0; c < d->n_chunks && done < n; c++) {
            hpcz_npy_mapped *m = &d->chunks[c].m[i];
            const hpcz_array *a = &m->a;
            size_t rows = d->chunks[c].rows;
            if (skip >= rows) {
                skip -= rows;
                continue;
            }
            size_t rb = rows ? a->nbytes / rows : 0;
            if (rb != row_bytes) {
                for (size_t j = 0; j <= i; j++)
                    hpcz_array_release(&inputs[j]);
                return hpcz_fail(err, HPCZ_ERR_INVALID,
                                 "input '%s': samples of different shapes cannot share a batch",
                                 nz(hpcz_plan_input(d->plan, i)->name));
            }
            size_t take = rows - skip < n - done ? rows - skip : n - done;
            const uint8_t *from = (const uint8_t *)a->data + skip * rb;
            memcpy((uint8_t *)inputs[i].data + done * row_bytes, from, take * rb);
            /* rows copied out of a mapping are not kept resident */
            hpcz_npy_mapped_drop(m, from, take * rb);
            done += take;
            skip = 0;
        }
    }
    return HPCZ_OK;
}

void hpcz_dataset_free(hpcz_dataset *d)
{
    if (!d)
        return;
    for (size_t c = 0; c < d->n_chunks; c++)
        release_arrays(d->chunks[c].m, d->n_inputs);
    free(d->chunks);
    free(d->layout);
    free(d);
}
