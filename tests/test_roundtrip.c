/*
 * test_roundtrip.c - every model and TensorProto of ONNX's node conformance
 * suite is read into the IR and written back; the output must be
 * semantically equal to the input (equal bytes after canonical
 * re-serialization). A second pass rebuilds every proto object from the IR
 * (regenerate mode) and compares the IR read back from it with the original.
 *
 * Usage: test_roundtrip SUITE_DIR   (exit 77 = skipped when SUITE_DIR is absent)
 */
#include "hpcz.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int n_models, n_models_ok, n_tensors, n_tensors_ok, n_regen_ok;

static bool canon_equal_model(const uint8_t *a, size_t al, const uint8_t *b, size_t bl,
                              hpcz_error *err)
{
    uint8_t *ca = NULL, *cb = NULL;
    size_t cal = 0, cbl = 0;
    bool eq = false;
    if (!hpcz_onnx_canonicalize(a, al, &ca, &cal, err) &&
        !hpcz_onnx_canonicalize(b, bl, &cb, &cbl, err))
        eq = cal == cbl && memcmp(ca, cb, cal) == 0;
    free(ca);
    free(cb);
    return eq;
}

static bool canon_equal_tensor(const uint8_t *a, size_t al, const uint8_t *b, size_t bl,
                               hpcz_error *err)
{
    uint8_t *ca = NULL, *cb = NULL;
    size_t cal = 0, cbl = 0;
    bool eq = false;
    if (!hpcz_tensorproto_canonicalize(a, al, &ca, &cal, err) &&
        !hpcz_tensorproto_canonicalize(b, bl, &cb, &cbl, err))
        eq = cal == cbl && memcmp(ca, cb, cal) == 0;
    free(ca);
    free(cb);
    return eq;
}

/* IR-level equality of two graphs (regenerate mode check). */
static bool tensors_equal(hpcz_tensor *a, hpcz_tensor *b)
{
    if (!a || !b)
        return a == b;
    if (a->dtype != b->dtype || a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    if (a->dtype == HPCZ_DTYPE_STRING || hpcz_dtype_bits(a->dtype) == 0)
        return true;
    hpcz_error e;
    const void *da = hpcz_tensor_data(a, &e), *db = hpcz_tensor_data(b, &e);
    if (!da || !db)
        return false;
    return memcmp(da, db, hpcz_dtype_nbytes(a->dtype, a->numel)) == 0;
}

static bool graphs_equal(const hpcz_graph *a, const hpcz_graph *b, char *why, size_t cap);

static bool attrs_equal(const hpcz_attr *x, const hpcz_attr *y, char *why, size_t cap)
{
    if (x->type != y->type || strcmp(x->name, y->name)) {
        snprintf(why, cap, "attribute %s type", x->name);
        return false;
    }
    switch (x->type) {
    case HPCZ_ATTR_FLOAT:
        return memcmp(&x->f, &y->f, sizeof x->f) == 0;
    case HPCZ_ATTR_INT:
        return x->i == y->i;
    case HPCZ_ATTR_STRING:
        return x->s.len == y->s.len && (!x->s.len || !memcmp(x->s.data, y->s.data, x->s.len));
    case HPCZ_ATTR_INTS:
        return x->n == y->n && (!x->n || !memcmp(x->ints, y->ints, x->n * sizeof *x->ints));
    case HPCZ_ATTR_FLOATS:
        return x->n == y->n && (!x->n || !memcmp(x->floats, y->floats, x->n * sizeof *x->floats));
    case HPCZ_ATTR_TENSOR:
        if (!tensors_equal(x->t, y->t)) {
            snprintf(why, cap, "attribute %s tensor", x->name);
            return false;
        }
        return true;
    case HPCZ_ATTR_GRAPH:
        return graphs_equal(x->g, y->g, why, cap);
    case HPCZ_ATTR_GRAPHS:
        if (x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++)
            if (!graphs_equal(x->graphs[i], y->graphs[i], why, cap))
                return false;
        return true;
    case HPCZ_ATTR_TENSORS:
        if (x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++)
            if (!tensors_equal(x->tensors[i], y->tensors[i]))
                return false;
        return true;
    default:
        return true;
    }
}

static bool values_equal(const hpcz_value *a, const hpcz_value *b)
{
    if (!a || !b)
        return a == b;
    if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++) {
        if (a->dims[i].size != b->dims[i].size)
            return false;
        if (!a->dims[i].param != !b->dims[i].param ||
            (a->dims[i].param && strcmp(a->dims[i].param, b->dims[i].param)))
            return false;
    }
    return true;
}

static bool graphs_equal(const hpcz_graph *a, const hpcz_graph *b, char *why, size_t cap)
{
    if (a->n_nodes != b->n_nodes || a->n_inits != b->n_inits || a->n_inputs != b->n_inputs ||
        a->n_outputs != b->n_outputs || a->n_value_info != b->n_value_info) {
        snprintf(why, cap, "graph counts differ");
        return false;
    }
    for (size_t i = 0; i < a->n_inputs; i++)
        if (!values_equal(a->inputs[i], b->inputs[i])) {
            snprintf(why, cap, "input %zu", i);
            return false;
        }
    for (size_t i = 0; i < a->n_outputs; i++)
        if (!values_equal(a->outputs[i], b->outputs[i])) {
            snprintf(why, cap, "output %zu", i);
            return false;
        }
    for (size_t i = 0; i < a->n_inits; i++)
        if (!tensors_equal(a->inits[i], b->inits[i]) || strcmp(a->inits[i]->name, b->inits[i]->name)) {
            snprintf(why, cap, "initializer %s", a->inits[i]->name);
            return false;
        }
    for (size_t i = 0; i < a->n_nodes; i++) {
        const hpcz_node *x = a->nodes[i], *y = b->nodes[i];
        if (strcmp(x->op_type, y->op_type) || x->n_inputs != y->n_inputs ||
            x->n_outputs != y->n_outputs || x->n_attrs != y->n_attrs) {
            snprintf(why, cap, "node %zu", i);
            return false;
        }
        for (size_t j = 0; j < x->n_inputs; j++)
            if (!x->inputs[j] != !y->inputs[j] ||
                (x->inputs[j] && strcmp(x->inputs[j]->name, y->inputs[j]->name))) {
                snprintf(why, cap, "node %zu input %zu", i, j);
                return false;
            }
        for (size_t k = 0; k < x->n_attrs; k++)
            if (!attrs_equal(&x->attrs[k], &y->attrs[k], why, cap))
                return false;
    }
    return true;
}

static bool check_model(const char *path, char *why, size_t cap)
{
    hpcz_error err = {0};
    uint8_t *orig;
    size_t orig_len;
    if (hpcz_file_read(path, UINT64_MAX, &orig, &orig_len, &err)) {
        snprintf(why, cap, "read: %s", err.msg);
        return false;
    }
    /* every raw_data payload used in place in the buffer (what reading a file
     * does for large ones): the writer must still give the same model back */
    hpcz_load_opts lo = {.borrow = 1, .borrow_min = 1};
    hpcz_model *m = hpcz_onnx_load_buffer(orig, orig_len, &lo, &err);
    if (!m) {
        snprintf(why, cap, "load: %s", err.msg);
        free(orig);
        return false;
    }
    uint8_t *out;
    size_t out_len;
    bool ok = false;
    if (hpcz_onnx_serialize(m, NULL, &out, &out_len, &err)) {
        snprintf(why, cap, "write: %s", err.msg);
    } else {
        ok = canon_equal_model(orig, orig_len, out, out_len, &err);
        if (!ok)
            snprintf(why, cap, "output differs from input after canonical serialization");
        free(out);
    }
    /* regenerate: every proto object rebuilt from the IR */
    if (ok) {
        hpcz_save_opts so = {.regenerate = 1};
        if (hpcz_onnx_serialize(m, &so, &out, &out_len, &err)) {
            snprintf(why, cap, "regenerate write: %s", err.msg);
            ok = false;
        } else {
            hpcz_model *m2 = hpcz_onnx_load_buffer(out, out_len, NULL, &err);
            if (!m2) {
                snprintf(why, cap, "regenerate reload: %s", err.msg);
                ok = false;
            } else {
                char w2[256] = "";
                if (!graphs_equal(m->graph, m2->graph, w2, sizeof w2)) {
                    snprintf(why, cap, "regenerated IR differs: %s", w2);
                    ok = false;
                } else {
                    n_regen_ok++;
                }
                hpcz_model_free(m2);
            }
            free(out);
        }
    }
    hpcz_model_free(m);
    free(orig);
    return ok;
}

static bool check_tensor(const char *path, char *why, size_t cap)
{
    hpcz_error err = {0};
    uint8_t *orig;
    size_t orig_len;
    if (hpcz_file_read(path, UINT64_MAX, &orig, &orig_len, &err)) {
        snprintf(why, cap, "read: %s", err.msg);
        return false;
    }
    hpcz_tensor *t = hpcz_tensorproto_load_buffer(orig, orig_len, &err);
    bool ok = false;
    if (!t) {
        /* sequences/optionals (SequenceProto, OptionalProto) are not TensorProtos */
        snprintf(why, cap, "load: %s", err.msg);
    } else {
        uint8_t *out;
        size_t out_len;
        if (hpcz_tensorproto_serialize(t, &out, &out_len, &err)) {
            snprintf(why, cap, "write: %s", err.msg);
        } else {
            ok = canon_equal_tensor(orig, orig_len, out, out_len, &err);
            if (!ok)
                snprintf(why, cap, "tensor differs after canonical serialization");
            free(out);
        }
        hpcz_model_free(t->model);
    }
    free(orig);
    return ok;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SUITE_DIR\n", argv[0]);
        return 2;
    }
    char node_dir[4096];
    snprintf(node_dir, sizeof node_dir, "%s/node", argv[1]);
    DIR *d = opendir(node_dir);
    if (!d) {
        printf("SKIP: ONNX node conformance suite not found at %s\n", node_dir);
        return 77;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[8704], why[1200] = "";
        snprintf(path, sizeof path, "%s/%s/model.onnx", node_dir, names[i]);
        n_models++;
        if (check_model(path, why, sizeof why)) {
            n_models_ok++;
        } else {
            printf("FAIL model %s: %s\n", names[i], why);
            failed++;
        }
        /* test data: every .pb of every data set */
        char ddir[8192];
        for (int k = 0; k < 16; k++) {
            snprintf(ddir, sizeof ddir, "%s/%s/test_data_set_%d", node_dir, names[i], k);
            DIR *dd = opendir(ddir);
            if (!dd)
                break;
            struct dirent *f;
            while ((f = readdir(dd))) {
                size_t l = strlen(f->d_name);
                if (l < 4 || strcmp(f->d_name + l - 3, ".pb"))
                    continue;
                snprintf(path, sizeof path, "%s/%s", ddir, f->d_name);
                n_tensors++;
                if (check_tensor(path, why, sizeof why)) {
                    n_tensors_ok++;
                } else if (strstr(why, "load:")) {
                    /* SequenceProto/OptionalProto/MapProto data files: not tensors */
                    n_tensors--;
                } else {
                    printf("FAIL tensor %s/%s: %s\n", names[i], f->d_name, why);
                    failed++;
                }
            }
            closedir(dd);
        }
        free(names[i]);
    }
    free(names);
    printf("models: %d of %d round-tripped semantically equal (%d also equal when rebuilt "
           "from the IR)\n",
           n_models_ok, n_models, n_regen_ok);
    printf("test data: %d of %d TensorProto files round-tripped equal\n", n_tensors_ok, n_tensors);
    printf("%d passed, %d failed\n", n_models_ok + n_tensors_ok, failed);
    return failed ? 1 : 0;
}
