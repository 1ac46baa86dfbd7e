/*
 * test_gpu_models.c - whole models on the cuda backend against the cpu
 * backend: the same seeded random batch (uniform in [-1, 1)) through both, every float output compared by its error normalised by the cpu
 * output's magnitude: 1e-4 for float32 models, 1e-2 for float16 ones and
 * 5e-2 for int8 QDQ models (a value at a rounding boundary may land one
 * quantization step away). Then a min/max calibration table on each device:
 * every range within 1e-4 of the tensor's magnitude.
 *
 * Usage: test_gpu_models [--dim NAME=V]... [--samples N] MODEL|FOLDER...
 *        test_gpu_models --bench RUNS [--dim NAME=V]... [--batch B]... [--calib N
 *                        [--calib-data DIR]] MODEL...
 * The second form benchmarks instead (scripts/bench/gpu.sh): per batch size
 * the median latency of RUNS runs on cpu and cuda, alternating, and the
 * calibration throughput (min/max over N samples of random:N or of DIR, in
 * passes over DIR when it holds fewer) on each device, as lines
 * "latency MODEL BATCH CPU_MS CUDA_MS" and "calib MODEL N CPU_S CUDA_S".
 * (a folder: every .onnx file in it, not recursive). Exit 77 without a
 * CUDA device. HPCZ_GPU_SELFCHECK=1 runs the harness with "cpu" in place of
 * "cuda" (no device needed: checks the test itself); HPCZ_GPU_EMULATE=1 runs
 * the cuda backend with host emulations of its kernels (tests/gpu/emulation.h:
 * placement, residency, shapes and operand mapping on any machine, and the
 * calibration check with the device observers emulated).
 */
#include "hpcz.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../rng.h"
#include "emulation.h"

static int failures, checks;
static const char *gpu = "cuda"; /* "cpu" for HPCZ_GPU_SELFCHECK=1 */
static bool emulated;              /* HPCZ_GPU_EMULATE=1 */

static double h2f(uint16_t h)
{
    int e = (h >> 10) & 31, f = h & 1023;
    double v = e == 0 ? ldexp(f, -24) : e == 31 ? (f ? NAN : INFINITY) : ldexp(f + 1024, e - 25);
    return h >> 15 ? -v : v;
}

static double out_error(const hpcz_array *g, const hpcz_array *r)
{
    if (g->dtype != r->dtype || g->numel != r->numel)
        return INFINITY;
    if (g->dtype != HPCZ_DTYPE_FLOAT && g->dtype != HPCZ_DTYPE_FLOAT16)
        return memcmp(g->data, r->data, g->nbytes) ? INFINITY : 0;
    double maxref = 0, maxerr = 0;
    for (int64_t k = 0; k < g->numel; k++) {
        double x, y;
        if (g->dtype == HPCZ_DTYPE_FLOAT) {
            x = ((const float *)g->data)[k];
            y = ((const float *)r->data)[k];
        } else {
            x = h2f(((const uint16_t *)g->data)[k]);
            y = h2f(((const uint16_t *)r->data)[k]);
        }
        if (isnan(x) != isnan(y))
            return INFINITY;
        if (isnan(x))
            continue;
        maxref = fmax(maxref, fabs(y));
        maxerr = fmax(maxerr, fabs(x - y));
    }
    return maxerr / fmax(maxref, 1e-3);
}

static double model_bound(const hpcz_model *m, const char **kind)
{
    const hpcz_graph *g = m->graph;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, "QuantizeLinear") ||
            !strcmp(g->nodes[i]->op_type, "DequantizeLinear")) {
            *kind = "int8";
            return 5e-2;
        }
    for (size_t i = 0; i < g->n_inputs; i++)
        if (g->inputs[i]->dtype == HPCZ_DTYPE_FLOAT16) {
            *kind = "fp16";
            return 1e-2;
        }
    *kind = "fp32";
    return 1e-4;
}


/* Seeded uniform [-1, 1) inputs for float32 and float16 inputs (int64: token
 * ids in [0, 1000), 1 for names with "mask", 0 for "type"); an unknown
 * leading dimension is the batch, other unknown ones come from dims (--dim)
 * through the plan (hpcz_plan_dim). false (with a note in why) when an input
 * is of another type or a size is unknown. */
static bool make_inputs(const hpcz_plan *p, size_t batch, hpcz_array *in, char *why, size_t cap)
{
    for (size_t i = 0; i < hpcz_plan_n_inputs(p); i++) {
        const hpcz_value *v = hpcz_plan_input(p, i);
        int64_t dims[16];
        if (v->ndim < 0 || v->ndim > 16 ||
            (v->dtype != HPCZ_DTYPE_FLOAT && v->dtype != HPCZ_DTYPE_FLOAT16 &&
             v->dtype != HPCZ_DTYPE_INT64)) {
            snprintf(why, cap, "input '%s' is no float or int64 tensor", v->name);
            return false;
        }
        for (int d = 0; d < v->ndim; d++) {
            dims[d] = v->dims[d].size;
            if (dims[d] < 0 && v->dims[d].param)
                dims[d] = hpcz_plan_dim(p, v->dims[d].param);
            if (dims[d] < 0 && d == 0)
                dims[d] = (int64_t)batch;
            if (dims[d] < 0) {
                snprintf(why, cap, "input '%s': size of dimension %d unknown (--dim)", v->name, d);
                return false;
            }
        }
        hpcz_error err;
        if (hpcz_array_alloc(&in[i], v->dtype, v->ndim, dims, &err)) {
            snprintf(why, cap, "%s", err.msg);
            return false;
        }
        for (int64_t k = 0; k < in[i].numel; k++) {
            if (v->dtype == HPCZ_DTYPE_INT64) { /* token ids; masks all ones, types 0 */
                ((int64_t *)in[i].data)[k] = strstr(v->name, "mask")   ? 1
                                             : strstr(v->name, "type") ? 0
                                                                       : (int64_t)((frand() + 1) * 500);
            } else if (v->dtype == HPCZ_DTYPE_FLOAT) {
                ((float *)in[i].data)[k] = frand();
            } else {
                _Float16 h = (_Float16)frand();
                memcpy((uint16_t *)in[i].data + k, &h, 2);
            }
        }
    }
    return true;
}

/* Runs the batch through m on `backend`; outputs into out (n entries). */
static hpcz_status run_on(hpcz_model *m, const char *backend, hpcz_array *in, hpcz_array *out,
                          size_t *n_out, hpcz_plan_stats *stats, hpcz_error *err)
{
    hpcz_plan_opts po = {.backend = backend};
    hpcz_plan *p = hpcz_plan_new(m, &po, err);
    if (!p)
        return err->status;
    *n_out = hpcz_plan_n_outputs(p);
    hpcz_status st = hpcz_plan_run(p, in, out, err);
    hpcz_plan_get_stats(p, stats);
    hpcz_plan_free(p);
    return st;
}

static void check_calibration(hpcz_model *m, const char *path, size_t samples)
{
    hpcz_calib_table *t[2] = {NULL, NULL};
    const char *const dev[2] = {"cpu", gpu};
    hpcz_error err = {0};
    for (int d = 0; d < 2; d++) {
        char spec[32];
        snprintf(spec, sizeof spec, "random:%zu", samples);
        hpcz_plan_opts po = {0};
        hpcz_dataset *ds = NULL;
        hpcz_plan *p = NULL;
        hpcz_calib_opts co = {.method = HPCZ_CALIB_MINMAX, .bits = 8};
        if (!hpcz_set_default_device(dev[d], &err) && (p = hpcz_plan_new(m, &po, &err)) &&
            !(ds = hpcz_dataset_open(spec, p, samples, &err))) {
            printf("note: %s: no calibration check: %s\n", path, err.msg); /* no random data */
            hpcz_plan_free(p);
            goto done;
        }
        if (!ds || hpcz_calibrate(m, ds, &co, &t[d], &err)) {
            checks++;
            failures++;
            printf("FAIL %s: calibration on %s: %s\n", path, dev[d], err.msg);
        }
        hpcz_dataset_free(ds);
        hpcz_plan_free(p);
    }
    hpcz_set_default_device("cpu", &err);
    if (!t[0] || !t[1])
        goto done;
    checks++;
    size_t bad = 0;
    const char *first = NULL;
    for (size_t i = 0; i < t[0]->n; i++) {
        const hpcz_calib_range *a = &t[0]->r[i], *b = hpcz_calib_find(t[1], a->name);
        double mag = fmax(fmax(fabs(a->min), fabs(a->max)), 1e-6);
        if (!b || fabs(a->min - b->min) > 1e-4 * mag || fabs(a->max - b->max) > 1e-4 * mag) {
            if (!bad++)
                first = a->name;
        }
    }
    if (bad || t[0]->n != t[1]->n) {
        failures++;
        printf("FAIL %s: calibration tables differ: %zu of %zu ranges (first '%s')\n", path, bad,
               t[0]->n, first ? first : "?");
    } else {
        printf("PASS %s: calibration tables agree (%zu ranges, %zu samples)\n", path, t[0]->n,
               samples);
    }
done:
    hpcz_calib_table_free(t[0]);
    hpcz_calib_table_free(t[1]);
}

static void check_model(const char *path, size_t samples)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path, NULL, &err);
    checks++;
    if (!m) {
        failures++;
        printf("FAIL %s: %s\n", path, err.msg);
        return;
    }
    const char *kind;
    double bound = model_bound(m, &kind);
    hpcz_plan_opts po = {.backend = "cpu"};
    hpcz_plan *p = hpcz_plan_new(m, &po, &err);
    char why[1100];
    size_t n_in = p ? hpcz_plan_n_inputs(p) : 0;
    hpcz_array in[16] = {{0}}, a[64] = {{0}}, b[64] = {{0}};
    size_t na = 0, nb = 0, batch = 0;
    hpcz_plan_stats ps = {0};
    bool ran = false;
    if (!p || n_in > 16 || hpcz_plan_n_outputs(p) > 64) {
        failures++;
        printf("FAIL %s: %s\n", path, p ? "too many inputs or outputs" : err.msg);
    } else if (!make_inputs(p, (batch = samples), in, why, sizeof why)) {
        checks--;
        printf("note: %s skipped: %s\n", path, why);
    } else if (run_on(m, "cpu", in, a, &na, &ps, &err) || run_on(m, gpu, in, b, &nb, &ps, &err)) {
        failures++;
        printf("FAIL %s: %s\n", path, err.msg);
    } else {
        double worst = 0;
        for (size_t i = 0; i < na; i++)
            worst = fmax(worst, out_error(&b[i], &a[i]));
        bool ok = worst <= bound;
        failures += !ok;
        ran = true;
        printf("%s %s (%s, batch %zu): normalized error %.2e (bound %.0e); %zu of %zu nodes on "
               "the device, %zu copies per run\n", ok ? "PASS" : "FAIL", path, kind, batch, worst,
               bound, ps.n_device, ps.n_nodes, ps.n_copies);
    }
    for (size_t i = 0; i < 16; i++)
        hpcz_array_release(&in[i]);
    for (size_t i = 0; i < 64; i++) {
        hpcz_array_release(&a[i]);
        hpcz_array_release(&b[i]);
    }
    hpcz_plan_free(p);
    if (ran && !strcmp(kind, "fp32"))
        check_calibration(m, path, samples);
    hpcz_model_free(m);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_model(const char *path, int runs, const size_t *batches, size_t nb, size_t calib,
                        const char *calib_data)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path, NULL, &err);
    if (!m) {
        printf("error %s: %s\n", path, err.msg);
        return;
    }
    for (size_t bi = 0; bi < nb; bi++) {
        hpcz_plan *p[2] = {NULL, NULL};
        hpcz_array in[16] = {{0}}, out[64] = {{0}};
        char why[1100] = "";
        double *t[2] = {calloc((size_t)runs, sizeof(double)), calloc((size_t)runs, sizeof(double))};
        for (int d = 0; d < 2; d++) {
            hpcz_plan_opts po = {.backend = d ? gpu : "cpu"};
            if (!(p[d] = hpcz_plan_new(m, &po, &err)))
                snprintf(why, sizeof why, "%s", err.msg);
        }
        bool ok = p[0] && p[1] && hpcz_plan_n_inputs(p[0]) <= 16 &&
                  hpcz_plan_n_outputs(p[0]) <= 64 && make_inputs(p[0], batches[bi], in, why, sizeof why);
        for (int r = -1; ok && r < runs; r++) /* run -1: warm-up */
            for (int d = 0; ok && d < 2; d++) {
                double t0 = now_s();
                if (hpcz_plan_run(p[d], in, out, &err)) {
                    snprintf(why, sizeof why, "%s", err.msg);
                    ok = false;
                }
                if (r >= 0)
                    t[d][r] = (now_s() - t0) * 1e3;
                for (size_t i = 0; i < 64; i++)
                    hpcz_array_release(&out[i]);
            }
        if (ok) {
            qsort(t[0], (size_t)runs, sizeof(double), cmp_double);
            qsort(t[1], (size_t)runs, sizeof(double), cmp_double);
            printf("latency %s %zu %.3f %.3f\n", path, batches[bi], t[0][runs / 2], t[1][runs / 2]);
        } else {
            printf("error %s batch %zu: %s\n", path, batches[bi], why);
        }
        for (size_t i = 0; i < 16; i++)
            hpcz_array_release(&in[i]);
        free(t[0]);
        free(t[1]);
        hpcz_plan_free(p[0]);
        hpcz_plan_free(p[1]);
    }
    if (calib) {
        double secs[2] = {0, 0};
        const char *const dev[2] = {"cpu", gpu};
        size_t done = 0;
        for (int d = 0; d < 2; d++) {
            char spec[4096];
            snprintf(spec, sizeof spec, "random:%zu", calib);
            if (calib_data)
                snprintf(spec, sizeof spec, "%s", calib_data);
            hpcz_plan_opts po = {0};
            hpcz_dataset *ds = NULL;
            hpcz_plan *p = NULL;
            hpcz_calib_opts co = {.method = HPCZ_CALIB_MINMAX, .bits = 8};
            double t0 = now_s();
            done = 0;
            if (hpcz_set_default_device(dev[d], &err) || !(p = hpcz_plan_new(m, &po, &err)) ||
                !(ds = hpcz_dataset_open(spec, p, calib, &err)))
                secs[d] = -1;
            /* a data folder smaller than N: passes over it until N samples */
            while (secs[d] >= 0 && done < calib) {
                hpcz_calib_table *tab = NULL;
                if (hpcz_calibrate(m, ds, &co, &tab, &err))
                    secs[d] = -1;
                hpcz_calib_table_free(tab);
                done += hpcz_dataset_size(ds) ? hpcz_dataset_size(ds) : calib;
            }
            if (secs[d] >= 0)
                secs[d] = now_s() - t0;
            hpcz_dataset_free(ds);
            hpcz_plan_free(p);
        }
        hpcz_set_default_device("cpu", &err);
        if (secs[0] < 0 || secs[1] < 0)
            printf("error %s calibration: %s\n", path, err.msg);
        else
            printf("calib %s %zu %.3f %.3f\n", path, done, secs[0], secs[1]);
    }
    hpcz_model_free(m);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_path(const char *path, size_t samples)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("note: %s not found, skipped\n", path);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        check_model(path, samples);
        return;
    }
    DIR *d = opendir(path);
    char *names[512];
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d)) && n < 512;) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".onnx"))
            names[n++] = strdup(e->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        check_model(full, samples);
        free(names[i]);
    }
}

int main(int argc, char **argv)
{
    hpcz_error err = {0};
    const char *self = getenv("HPCZ_GPU_SELFCHECK");
    if (self && !strcmp(self, "1"))
        gpu = "cpu";
    const char *emu = getenv("HPCZ_GPU_EMULATE");
    if (emu && !strcmp(emu, "1")) {
        emulated = true;
        hpcz_cuda_set_impl(&emulation);
    } else if (hpcz_set_default_device(gpu, &err)) {
        printf("SKIP: %s\n", err.msg);
        return 77;
    }
    hpcz_set_default_device("cpu", &err);
    const char *names[16];
    int64_t values[16];
    size_t n_dims = 0, samples = 2, batches[8], n_batches = 0, calib = 0;
    int bench = 0;
    const char *calib_data = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dim") && i + 1 < argc && n_dims < 16) {
            char *eq = strchr(argv[++i], '=');
            if (!eq)
                continue;
            *eq = 0;
            names[n_dims] = argv[i];
            values[n_dims++] = strtoll(eq + 1, NULL, 10);
            if (hpcz_set_default_dims(n_dims, names, values, &err))
                printf("FAIL --dim: %s\n", err.msg);
        } else if (!strcmp(argv[i], "--samples") && i + 1 < argc) {
            samples = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--bench") && i + 1 < argc) {
            bench = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc && n_batches < 8) {
            batches[n_batches++] = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--calib") && i + 1 < argc) {
            calib = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--calib-data") && i + 1 < argc) {
            calib_data = argv[++i];
        } else if (bench > 0) {
            bench_model(argv[i], bench, batches, n_batches, calib, calib_data);
        } else {
            check_path(argv[i], samples ? samples : 1);
        }
    }
    if (emulated)
        hpcz_cuda_set_impl(NULL); /* frees what the emulation holds (device scratch) */
    if (bench > 0)
        return 0;
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
