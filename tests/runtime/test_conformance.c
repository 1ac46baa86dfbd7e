/*
 * test_conformance.c - runs ONNX's node conformance tests through the CPU
 * runtime. For each test whose ops the backend supports: load model.onnx,
 * feed test_data_set_0/input_*.pb, compare with output_*.pb (rtol 1e-3,
 * atol 1e-7; shapes and dtypes exact; NaN matches NaN).
 *
 * Usage: test_conformance SUITE_DIR [NAME_SUBSTRING]
 * Prints one line per test, the skipped tests grouped by unsupported op,
 * then "N passed, N failed, N skipped". Exit 77 when SUITE_DIR is absent.
 */
#include "hpcz.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RTOL 1e-3
#define ATOL 1e-7

typedef struct reason {
    char op[192];
    int count;
} reason;

static reason reasons[512];
static int n_reasons;

static void skip_reason(const char *op)
{
    for (int i = 0; i < n_reasons; i++)
        if (!strcmp(reasons[i].op, op)) {
            reasons[i].count++;
            return;
        }
    if (n_reasons < (int)(sizeof reasons / sizeof reasons[0])) {
        snprintf(reasons[n_reasons].op, sizeof reasons[n_reasons].op, "%s", op);
        reasons[n_reasons++].count = 1;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_reason(const void *a, const void *b)
{
    const reason *x = a, *y = b;
    if (x->count != y->count)
        return y->count - x->count;
    return strcmp(x->op, y->op);
}

/* First unsupported node in g or its subgraphs ("Op" or "domain:Op"). */
static bool find_unsupported(const hpcz_graph *g, char *op, size_t cap)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        if (!hpcz_runtime_supports(NULL, n, NULL)) {
            if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
                snprintf(op, cap, "%s:%s", n->domain, n->op_type);
            else
                snprintf(op, cap, "%s", n->op_type);
            return true;
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const hpcz_attr *at = &n->attrs[a];
            if (at->type == HPCZ_ATTR_GRAPH && at->g && find_unsupported(at->g, op, cap))
                return true;
            if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < at->n; k++)
                    if (find_unsupported(at->graphs[k], op, cap))
                        return true;
        }
    }
    return false;
}

static double load_d(const hpcz_array *a, int64_t i)
{
    const void *p = a->data;
    switch (a->dtype) {
    case HPCZ_DTYPE_FLOAT: return ((const float *)p)[i];
    case HPCZ_DTYPE_DOUBLE: return ((const double *)p)[i];
    case HPCZ_DTYPE_FLOAT16: {
        uint16_t h = ((const uint16_t *)p)[i];
        uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 0)
            return (s ? -1.0 : 1.0) * ldexp((double)m, -24);
        if (e == 31)
            return m ? NAN : (s ? -INFINITY : INFINITY);
        return (s ? -1.0 : 1.0) * ldexp((double)(m | 0x400), (int)e - 25);
    }
    case HPCZ_DTYPE_BFLOAT16: {
        uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    default: return 0;
    }
}

static bool equal_arrays(const hpcz_array *got, const hpcz_array *want, char *why, size_t cap)
{
    char g[200], w[200];
    if (got->dtype != want->dtype || got->ndim != want->ndim ||
        memcmp(got->dims, want->dims, (size_t)got->ndim * sizeof got->dims[0]) != 0) {
        hpcz_array_describe(got, g, sizeof g);
        hpcz_array_describe(want, w, sizeof w);
        snprintf(why, cap, "got %s, expected %s", g, w);
        return false;
    }
    if (hpcz_dtype_is_float(want->dtype)) {
        for (int64_t i = 0; i < want->numel; i++) {
            double a = load_d(got, i), b = load_d(want, i);
            if (isnan(a) && isnan(b))
                continue;
            if (a == b)
                continue;
            if (!(fabs(a - b) <= ATOL + RTOL * fabs(b))) {
                snprintf(why, cap, "element %lld: got %.9g, expected %.9g", (long long)i, a, b);
                return false;
            }
        }
        return true;
    }
    if (got->nbytes != want->nbytes || memcmp(got->data, want->data, got->nbytes) != 0) {
        size_t es = got->numel ? got->nbytes / (size_t)got->numel : 1;
        for (int64_t i = 0; i < got->numel; i++)
            if (memcmp((const char *)got->data + (size_t)i * es,
                       (const char *)want->data + (size_t)i * es, es)) {
                long long gv = 0, wv = 0;
                memcpy(&gv, (const char *)got->data + (size_t)i * es, es < 8 ? es : 8);
                memcpy(&wv, (const char *)want->data + (size_t)i * es, es < 8 ? es : 8);
                snprintf(why, cap, "element %lld differs (got %lld, expected %lld)", (long long)i,
                         gv, wv);
                return false;
            }
        snprintf(why, cap, "payload differs");
        return false;
    }
    return true;
}

static bool load_pb(const char *path, hpcz_array *out, hpcz_error *err)
{
    hpcz_tensor *t = hpcz_tensorproto_load(path, err);
    if (!t)
        return false;
    hpcz_status st = hpcz_array_from_tensor(t, out, err);
    hpcz_model_free(t->model);
    return st == HPCZ_OK;
}

enum { R_PASS, R_FAIL, R_SKIP };

static int run_test(const char *dir, const char *name, char *why, size_t cap)
{
    char path[9000];
    hpcz_error err = {0};
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    hpcz_model *m = hpcz_onnx_load(path, NULL, &err);
    if (!m) {
        snprintf(why, cap, "load: %s", err.msg);
        return R_FAIL;
    }
    int res = R_PASS;
    hpcz_plan *p = NULL;
    hpcz_array ins[64], outs[64], want[64];
    size_t n_in = 0, n_out = 0, n_want = 0;
    memset(ins, 0, sizeof ins);
    memset(outs, 0, sizeof outs);
    memset(want, 0, sizeof want);
    (void)name;
    char op[160];
    const hpcz_graph *g = m->graph;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (g->inputs[i]->dtype == HPCZ_DTYPE_UNDEFINED || g->inputs[i]->dtype == HPCZ_DTYPE_STRING) {
            snprintf(why, cap, "non-tensor or string input");
            skip_reason("(sequence/optional/string values)");
            res = R_SKIP;
            goto out;
        }
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i]->dtype == HPCZ_DTYPE_UNDEFINED ||
            g->outputs[i]->dtype == HPCZ_DTYPE_STRING) {
            snprintf(why, cap, "non-tensor or string output");
            skip_reason("(sequence/optional/string values)");
            res = R_SKIP;
            goto out;
        }
    if (find_unsupported(g, op, sizeof op)) {
        snprintf(why, cap, "unsupported op %s", op);
        skip_reason(op);
        res = R_SKIP;
        goto out;
    }
    hpcz_plan_opts po = {0};
    p = hpcz_plan_new(m, &po, &err);
    if (!p)
        goto plan_error;
    n_in = hpcz_plan_n_inputs(p);
    n_out = hpcz_plan_n_outputs(p);
    if (n_in > 64 || n_out > 64) {
        snprintf(why, cap, "too many inputs/outputs");
        res = R_FAIL;
        goto out;
    }
    /* input_<i>.pb follow graph.input order (initializer inputs included) */
    for (size_t i = 0, k = 0; i < g->n_inputs; i++) {
        if (g->inputs[i]->init)
            continue;
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%zu.pb", dir, i);
        if (!load_pb(path, &ins[k], &err)) {
            snprintf(why, cap, "input %zu: %s", i, err.msg);
            skip_reason("(input dtype not representable)");
            res = R_SKIP;
            goto out;
        }
        k++;
    }
    for (size_t i = 0; i < n_out; i++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/output_%zu.pb", dir, i);
        if (!load_pb(path, &want[i], &err)) {
            snprintf(why, cap, "output %zu: %s", i, err.msg);
            skip_reason("(output dtype not representable)");
            res = R_SKIP;
            goto out;
        }
        n_want++;
    }
    if (hpcz_plan_run(p, ins, outs, &err))
        goto plan_error;
    for (size_t i = 0; i < n_out; i++) {
        char w[600];
        if (!equal_arrays(&outs[i], &want[i], w, sizeof w)) {
            snprintf(why, cap, "output %zu (%s): %s", i, hpcz_plan_output(p, i)->name, w);
            res = R_FAIL;
            break;
        }
    }
    goto out;
plan_error:
    if (err.status == HPCZ_ERR_UNSUPPORTED) {
        /* "node 'x' (Op, opset N): not supported" -> Op */
        const char *a = strstr(err.msg, "' (");
        char opn[128] = "(other)";
        if (a) {
            a += 3;
            const char *b = strchr(a, ',');
            if (b && (size_t)(b - a) < sizeof opn) {
                memcpy(opn, a, (size_t)(b - a));
                opn[b - a] = 0;
                strncat(opn, " (dtype/attributes)", sizeof opn - strlen(opn) - 1);
            }
        }
        skip_reason(opn);
        snprintf(why, cap, "%s", err.msg);
        res = R_SKIP;
    } else {
        snprintf(why, cap, "%s", err.msg);
        res = R_FAIL;
    }
out:
    for (size_t i = 0; i < 64; i++) {
        hpcz_array_release(&ins[i]);
        hpcz_array_release(&outs[i]);
        hpcz_array_release(&want[i]);
    }
    hpcz_plan_free(p);
    hpcz_model_free(m);
    return res;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_conformance SUITE_DIR [FILTER]\n");
        return 2;
    }
    char node_dir[4096];
    snprintf(node_dir, sizeof node_dir, "%s/node", argv[1]);
    DIR *d = opendir(node_dir);
    if (!d) {
        printf("SKIP: %s not found\n", node_dir);
        return 77;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "test_", 5))
            continue;
        if (argc > 2 && !strstr(de->d_name, argv[2]))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int pass = 0, fail = 0, skip = 0;
    for (size_t i = 0; i < n; i++) {
        char dir[8192], why[1200] = "";
        snprintf(dir, sizeof dir, "%s/%s", node_dir, names[i]);
        int r = run_test(dir, names[i], why, sizeof why);
        if (r == R_PASS) {
            printf("PASS %s\n", names[i]);
            pass++;
        } else if (r == R_FAIL) {
            printf("FAIL %s: %s\n", names[i], why);
            fail++;
        } else {
            printf("SKIP %s: %s\n", names[i], why);
            skip++;
        }
        fflush(stdout);
        free(names[i]);
    }
    free(names);
    qsort(reasons, (size_t)n_reasons, sizeof reasons[0], cmp_reason);
    printf("\nskipped tests by unsupported op:\n");
    for (int i = 0; i < n_reasons; i++)
        printf("  %s: %d\n", reasons[i].op, reasons[i].count);
    printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
    return fail ? 1 : 0;
}
