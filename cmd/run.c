/*
 * run.c - `hpcz run MODEL`: run a model on inputs, write its outputs,
 * optionally benchmark it.
 */
#include "cli.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum {
    OPT_INPUT = 'i',
    OPT_OUTPUT = 'o',
    OPT_THREADS = 't',
    OPT_INPUTS = 256,
    OPT_JSON,
    OPT_DIM,
    OPT_BENCH,
    OPT_PROFILE,
};

static const cli_opt opts[] = {
    {"input", OPT_INPUT, required_argument, "NAME=FILE",
     "feed input NAME from FILE (.npy, or a TensorProto .pb); repeatable"},
    {"inputs", OPT_INPUTS, required_argument, "DIR",
     "feed every input from DIR: <input name>.npy files, or an ONNX test_data_set_N folder "
     "(input_<i>.pb in graph input order)", NULL, CLI_FILES_DIR},
    {"output", OPT_OUTPUT, required_argument, "OUTDIR",
     "write each output as OUTDIR/<output name>.npy ('/' in names becomes '_')", NULL, CLI_FILES_DIR},
    {"dim", OPT_DIM, required_argument, "NAME=VALUE", "fix the symbolic dimension NAME; repeatable"},
    {"threads", OPT_THREADS, required_argument, "N", "threads (default: all cores)"},
    CLI_DEVICE_OPTION,
    {"bench", OPT_BENCH, required_argument, "N",
     "run N times after a warm-up run; print median and min latency and peak activation memory"},
    {"profile", OPT_PROFILE, no_argument, NULL,
     "with --bench: time per op type and of the slowest nodes (every node with --json), "
     "and GFLOP/s of Conv/Gemm/MatMul"},
    {"json", OPT_JSON, no_argument, NULL,
     "print a JSON summary (schema hpcz.run version 1) on stdout and nothing else there"},
    {"quiet", 'q', no_argument, NULL, "no notes on stderr"},
    {0},
};

const cli_cmd_info cmd_run_info = {
    "run", "MODEL (--input NAME=FILE ... | --inputs DIR) [-o OUTDIR] [options]",
    "Run a model with hpcz's CPU runtime.",
    "Inputs must match the model's declared dtype and shape (symbolic dimensions take their "
    "value from the input or from --dim). Without -o, each output's shape and value range is "
    "printed. Results do not depend on --threads.",
    opts,
    .exits = cli_exits_basic,
    .max_operands = 1,
    .operand_files = CLI_FILES_MODEL,
    .legacy = CLI_LEGACY_J_JSON,
};

typedef struct kv {
    char *name;
    char *val;
} kv;

static bool split_kv(const char *s, kv *out)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || !eq[1])
        return false;
    out->name = strndup(s, (size_t)(eq - s));
    out->val = strdup(eq + 1);
    return out->name && out->val;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static void sanitize(char *s)
{
    for (; *s; s++)
        if (*s == '/' || *s == '\\')
            *s = '_';
}

/* Loads FILE (.npy or .pb) into a. */
static hpcz_status load_input(const char *path, hpcz_array *a, hpcz_error *err)
{
    if (ends_with(path, ".pb")) {
        hpcz_tensor *t = hpcz_tensorproto_load(path, err);
        if (!t)
            return err->status;
        hpcz_status st = hpcz_array_from_tensor(t, a, err);
        hpcz_model_free(t->model);
        return st;
    }
    return hpcz_npy_load(path, a, err);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void describe_value(const hpcz_value *v, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "%s [", v->dtype ? hpcz_dtype_name(v->dtype) : "?");
    for (int d = 0; d < v->ndim && k < cap; d++) {
        if (v->dims[d].size >= 0)
            k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? "," : "", (long long)v->dims[d].size);
        else
            k += (size_t)snprintf(buf + k, cap - k, "%s%s", d ? "," : "",
                                  v->dims[d].param ? v->dims[d].param : "?");
    }
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

typedef struct op_prof {
    const char *op;
    uint64_t ns, flops;
    size_t count;
} op_prof;

static int cmp_prof(const void *a, const void *b)
{
    const op_prof *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : strcmp(x->op, y->op);
}

typedef struct node_prof {
    size_t k;
    uint64_t ns;
} node_prof;

static int cmp_node_prof(const void *a, const void *b)
{
    const node_prof *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : (x->k > y->k) - (x->k < y->k);
}

enum { SLOWEST_NODES = 10 };

static double value_at(const hpcz_array *a, int64_t i)
{
    switch (a->dtype) {
    case HPCZ_DTYPE_FLOAT: return ((const float *)a->data)[i];
    case HPCZ_DTYPE_DOUBLE: return ((const double *)a->data)[i];
    case HPCZ_DTYPE_INT64: return (double)((const int64_t *)a->data)[i];
    case HPCZ_DTYPE_INT32: return ((const int32_t *)a->data)[i];
    case HPCZ_DTYPE_INT8: return ((const int8_t *)a->data)[i];
    case HPCZ_DTYPE_UINT8:
    case HPCZ_DTYPE_BOOL: return ((const uint8_t *)a->data)[i];
    default: return NAN;
    }
}

static void free_kvs(kv *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].name);
        free(a[i].val);
    }
}

/* Buffers allocated while a plan runs (dynamic values, the outputs of
 * If/Loop bodies) are freed and allocated again at every run. glibc serves
 * blocks of 128 KiB and more with mmap and returns freed heap tops to the
 * system, so each run paid page faults again: silero_vad (its graph is one
 * If) spent a quarter of its run in them, and ran 2.5x faster with this.
 * Only `hpcz run` keeps the memory (the other commands' RSS stays low). */
static void keep_freed_memory(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

int cmd_run(int argc, char **argv)
{
    kv inputs[256], dims[64];
    size_t n_inputs = 0, n_dims = 0;
    const char *inputs_dir = NULL, *outdir = NULL;
    long long threads = 0, bench = 0;
    bool json = false, profile = false;
    int rc = EXIT_OK, c;
    keep_freed_memory();
#define USAGE_RC(code)                                                                             \
    do {                                                                                           \
        free_kvs(inputs, n_inputs);                                                                \
        free_kvs(dims, n_dims);                                                                    \
        return (code);                                                                             \
    } while (0)
#define USAGE(...) USAGE_RC(cli_usage_error(&cmd_run_info, __VA_ARGS__))
    while ((c = cli_getopt(argc, argv, &cmd_run_info)) != -1) {
        switch (c) {
        case 'h':
            USAGE_RC(EXIT_OK);
        case '?':
            USAGE_RC(EXIT_USAGE);
        case OPT_INPUT:
            if (n_inputs == 256)
                USAGE( "too many --input options");
            if (!split_kv(optarg, &inputs[n_inputs]))
                USAGE( "--input expects NAME=FILE, got '%s'", optarg);
            n_inputs++;
            break;
        case OPT_INPUTS:
            inputs_dir = optarg;
            break;
        case OPT_OUTPUT:
            outdir = optarg;
            break;
        case OPT_DIM: {
            if (n_dims == 64)
                USAGE( "too many --dim options");
            if (!split_kv(optarg, &dims[n_dims]))
                USAGE( "--dim expects NAME=VALUE, got '%s'", optarg);
            char *end;
            errno = 0;
            long long v = strtoll(dims[n_dims].val, &end, 10);
            if (errno || *end || v < 0)
                USAGE( "--dim %s: '%s' is not a non-negative integer",
                                       dims[n_dims].name, dims[n_dims].val);
            n_dims++;
            break;
        }
        case OPT_THREADS:
            if (!cli_parse_int(&cmd_run_info, "threads", optarg, 1, 1024, &threads))
                USAGE_RC(EXIT_USAGE);
            break;
        case CLI_OPT_DEVICE: {
            int rc = cli_device_option(&cmd_run_info, optarg);
            if (rc)
                USAGE_RC(rc);
            break;
        }
        case OPT_BENCH:
            if (!cli_parse_int(&cmd_run_info, "bench", optarg, 1, 1000000, &bench))
                USAGE_RC(EXIT_USAGE);
            break;
        case OPT_PROFILE:
            profile = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'q':
            cli_verbosity = -1;
            break;
        default:
            USAGE_RC(EXIT_USAGE);
        }
    }
    const char *path = cli_operand(&cmd_run_info, argc, argv, "MODEL");
    if (!path)
        USAGE_RC(EXIT_USAGE);
    if (n_inputs && inputs_dir)
        USAGE( "--input and --inputs cannot be combined");
    if (profile && !bench)
        USAGE( "--profile needs --bench");
    hpcz_error err = {0};
    if (outdir && !strcmp(outdir, "-"))
        USAGE("-o takes a folder for the outputs' .npy files, not '-'");
    hpcz_model *m = hpcz_model_load(path, NULL, &err);
    if (!m)
        USAGE_RC(cli_file_error(path, &err));
    const char *dnames[64];
    int64_t dvals[64];
    for (size_t i = 0; i < n_dims; i++) {
        dnames[i] = dims[i].name;
        dvals[i] = strtoll(dims[i].val, NULL, 10);
    }
    hpcz_plan_opts po = {.threads = (int)threads, .n_dims = n_dims, .dim_names = dnames,
                         .dim_values = dvals};
    hpcz_plan *p = NULL;
    hpcz_array *in = NULL, *out = NULL;
    double *times = NULL;
    uint64_t *prof = NULL;
    size_t ni = 0, no = 0;
    if ((rc = cli_check_dims(&cmd_run_info, m, dnames, n_dims)))
        goto done;
    p = hpcz_plan_new(m, &po, &err);
    if (!p) {
        rc = cli_file_error(path, &err);
        goto done;
    }
    ni = hpcz_plan_n_inputs(p);
    no = hpcz_plan_n_outputs(p);
    in = calloc(ni + 1, sizeof *in);
    out = calloc(no + 1, sizeof *out);
    if (!in || !out) {
        rc = cli_error("out of memory");
        goto done;
    }
    /* --input NAME=FILE */
    for (size_t k = 0; k < n_inputs; k++) {
        int i = hpcz_plan_input_index(p, inputs[k].name);
        if (i < 0) {
            char names[1024] = "";
            size_t len = 0;
            for (size_t q = 0; q < ni && len < sizeof names; q++)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", q ? ", " : "",
                                        hpcz_plan_input(p, q)->name);
            rc = cli_error("model has no input '%s' (inputs: %s)", inputs[k].name,
                           ni ? names : "none");
            goto done;
        }
        if (in[i].data || in[i].ndim) {
            rc = cli_error("input '%s' given twice", inputs[k].name);
            goto done;
        }
        if (load_input(inputs[k].val, &in[i], &err)) {
            rc = cli_file_error(inputs[k].val, &err);
            goto done;
        }
    }
    /* --inputs DIR */
    if (inputs_dir) {
        const hpcz_graph *g = m->graph;
        for (size_t i = 0; i < ni; i++) {
            const hpcz_value *v = hpcz_plan_input(p, i);
            char file[4096], name[1024];
            snprintf(name, sizeof name, "%s", v->name);
            sanitize(name);
            snprintf(file, sizeof file, "%s/%s.npy", inputs_dir, name);
            if (!file_exists(file)) {
                size_t gi = 0;
                for (size_t q = 0; q < g->n_inputs; q++)
                    if (g->inputs[q] == v)
                        gi = q;
                snprintf(file, sizeof file, "%s/input_%zu.pb", inputs_dir, gi);
            }
            if (!file_exists(file))
                continue; /* reported as missing below */
            if (load_input(file, &in[i], &err)) {
                rc = cli_file_error(file, &err);
                goto done;
            }
        }
    }
    for (size_t i = 0; i < ni; i++) {
        const hpcz_value *v = hpcz_plan_input(p, i);
        if (!in[i].data && !in[i].ndim && !in[i].dtype) {
            char want[512];
            describe_value(v, want, sizeof want);
            rc = cli_error("missing input '%s' (%s)%s", v->name, want,
                           inputs_dir ? " in the --inputs folder" : "; pass --input NAME=FILE");
            goto done;
        }
        if (hpcz_plan_check_input(p, i, &in[i], &err)) {
            rc = cli_file_error(path, &err);
            goto done;
        }
    }
    size_t n_nodes = hpcz_plan_n_nodes(p);
    if (hpcz_plan_run(p, in, out, &err)) {
        rc = cli_file_error(path, &err);
        goto done;
    }
    double median = 0, best = 0;
    if (bench) {
        times = calloc((size_t)bench, sizeof *times);
        prof = profile ? calloc(n_nodes + 1, sizeof *prof) : NULL;
        if (!times || (profile && !prof)) {
            rc = cli_error("out of memory");
            goto done;
        }
        if (prof)
            hpcz_plan_set_profile(p, prof);
        for (long long r = 0; r < bench; r++) {
            hpcz_array tmp[64];
            hpcz_array *o2 = no <= 64 ? tmp : calloc(no, sizeof *o2);
            if (!o2) {
                rc = cli_error("out of memory");
                goto done;
            }
            memset(o2, 0, no * sizeof *o2);
            double t0 = now_ms();
            hpcz_status st = hpcz_plan_run(p, in, o2, &err);
            times[r] = now_ms() - t0;
            for (size_t i = 0; i < no; i++)
                hpcz_array_release(&o2[i]);
            if (o2 != tmp)
                free(o2);
            if (st) {
                rc = cli_file_error(path, &err);
                goto done;
            }
        }
        hpcz_plan_set_profile(p, NULL);
        qsort(times, (size_t)bench, sizeof *times, cmp_double);
        median = bench % 2 ? times[bench / 2] : 0.5 * (times[bench / 2 - 1] + times[bench / 2]);
        best = times[0];
    }
    hpcz_plan_stats stats;
    hpcz_plan_get_stats(p, &stats);
    /* outputs */
    char **files = calloc(no + 1, sizeof *files);
    if (!files) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (outdir) {
        if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
            rc = cli_error("%s: cannot create folder: %s", outdir, strerror(errno));
            free(files);
            goto done;
        }
        for (size_t i = 0; i < no && rc == EXIT_OK; i++) {
            char name[1024];
            snprintf(name, sizeof name, "%s", hpcz_plan_output(p, i)->name);
            sanitize(name);
            size_t len = strlen(outdir) + strlen(name) + 8;
            files[i] = malloc(len);
            if (!files[i]) {
                rc = cli_error("out of memory");
                break;
            }
            snprintf(files[i], len, "%s/%s.npy", outdir, name);
            if (hpcz_npy_save(files[i], &out[i], &err))
                rc = cli_file_error(files[i], &err);
        }
    }
    /* per-op-type profile */
    op_prof *ops = NULL;
    node_prof *slow = NULL;
    size_t n_ops = 0, n_slow = 0;
    uint64_t total_ns = 0;
    if (prof) {
        ops = calloc(n_nodes + 1, sizeof *ops);
        for (size_t k = 0; ops && k < n_nodes; k++) {
            const hpcz_node *nd = hpcz_plan_node(p, k);
            size_t q = 0;
            while (q < n_ops && strcmp(ops[q].op, nd->op_type))
                q++;
            if (q == n_ops)
                ops[n_ops++].op = nd->op_type;
            ops[q].ns += prof[k];
            ops[q].flops += hpcz_plan_node_flops(p, k) * (uint64_t)bench;
            ops[q].count++;
            total_ns += prof[k];
        }
        if (ops)
            qsort(ops, n_ops, sizeof *ops, cmp_prof);
        slow = calloc(n_nodes + 1, sizeof *slow);
        for (size_t k = 0; slow && k < n_nodes; k++)
            if (prof[k])
                slow[n_slow++] = (node_prof){k, prof[k]};
        if (slow)
            qsort(slow, n_slow, sizeof *slow, cmp_node_prof);
        /* JSON lists every node that ran, the text the slowest few */
        if (!json)
            n_slow = n_slow < SLOWEST_NODES ? n_slow : SLOWEST_NODES;
    }
    uint64_t peak = stats.arena_bytes + stats.dynamic_peak;
    if (rc == EXIT_OK && json) {
        hpcz_json j;
        hpcz_json_init(&j, stdout);
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "schema", "hpcz.run");
        hpcz_json_int(&j, "version", 1);
        hpcz_json_string(&j, "model", path);
        hpcz_json_int(&j, "threads", stats.threads);
        hpcz_json_array_begin(&j, "inputs");
        for (size_t i = 0; i < ni; i++) {
            hpcz_json_object_begin(&j, NULL);
            hpcz_json_string(&j, "name", hpcz_plan_input(p, i)->name);
            hpcz_json_string(&j, "dtype", hpcz_dtype_name(in[i].dtype));
            hpcz_json_array_begin(&j, "shape");
            for (int d = 0; d < in[i].ndim; d++)
                hpcz_json_int(&j, NULL, in[i].dims[d]);
            hpcz_json_array_end(&j);
            hpcz_json_object_end(&j);
        }
        hpcz_json_array_end(&j);
        hpcz_json_array_begin(&j, "outputs");
        for (size_t i = 0; i < no; i++) {
            hpcz_json_object_begin(&j, NULL);
            hpcz_json_string(&j, "name", hpcz_plan_output(p, i)->name);
            hpcz_json_string(&j, "dtype", hpcz_dtype_name(out[i].dtype));
            hpcz_json_array_begin(&j, "shape");
            for (int d = 0; d < out[i].ndim; d++)
                hpcz_json_int(&j, NULL, out[i].dims[d]);
            hpcz_json_array_end(&j);
            hpcz_json_string(&j, "file", files[i]);
            hpcz_json_object_end(&j);
        }
        hpcz_json_array_end(&j);
        hpcz_json_object_begin(&j, "memory");
        hpcz_json_uint(&j, "peak_activation_bytes", peak);
        hpcz_json_uint(&j, "arena_bytes", stats.arena_bytes);
        hpcz_json_uint(&j, "dynamic_peak_bytes", stats.dynamic_peak);
        hpcz_json_uint(&j, "constant_bytes", stats.const_bytes);
        hpcz_json_object_end(&j);
        hpcz_json_object_begin(&j, "nodes");
        hpcz_json_uint(&j, "run", stats.n_nodes);
        hpcz_json_uint(&j, "folded", stats.n_folded);
        hpcz_json_uint(&j, "dynamic", stats.n_dynamic);
        hpcz_json_object_end(&j);
        if (bench) {
            hpcz_json_object_begin(&j, "bench");
            hpcz_json_int(&j, "runs", bench);
            hpcz_json_double(&j, "median_ms", median);
            hpcz_json_double(&j, "min_ms", best);
            hpcz_json_object_end(&j);
        }
        if (ops) {
            hpcz_json_array_begin(&j, "profile");
            for (size_t q = 0; q < n_ops; q++) {
                hpcz_json_object_begin(&j, NULL);
                hpcz_json_string(&j, "op_type", ops[q].op);
                hpcz_json_uint(&j, "nodes", ops[q].count);
                hpcz_json_double(&j, "ms_per_run", (double)ops[q].ns / 1e6 / (double)bench);
                if (ops[q].flops)
                    hpcz_json_double(&j, "gflops", (double)ops[q].flops / (double)ops[q].ns);
                hpcz_json_object_end(&j);
            }
            hpcz_json_array_end(&j);
            hpcz_json_array_begin(&j, "nodes_by_time");
            for (size_t q = 0; q < n_slow; q++) {
                const hpcz_node *nd = hpcz_plan_node(p, slow[q].k);
                uint64_t fl = hpcz_plan_node_flops(p, slow[q].k) * (uint64_t)bench;
                hpcz_json_object_begin(&j, NULL);
                hpcz_json_string(&j, "name", nd->name ? nd->name : "");
                hpcz_json_string(&j, "op_type", nd->op_type);
                hpcz_json_double(&j, "ms_per_run", (double)slow[q].ns / 1e6 / (double)bench);
                if (fl)
                    hpcz_json_double(&j, "gflops", (double)fl / (double)slow[q].ns);
                hpcz_json_object_end(&j);
            }
            hpcz_json_array_end(&j);
        }
        hpcz_json_object_end(&j);
        hpcz_json_finish(&j);
    } else if (rc == EXIT_OK) {
        if (!outdir && !bench)
            for (size_t i = 0; i < no; i++) {
                char d[512];
                hpcz_array_describe(&out[i], d, sizeof d);
                double mn = INFINITY, mx = -INFINITY, sum = 0;
                int64_t nan = 0, inf = 0, fin = 0;
                for (int64_t e = 0; e < out[i].numel; e++) {
                    double v = value_at(&out[i], e);
                    if (isnan(v)) {
                        nan++;
                        continue;
                    }
                    if (isinf(v))
                        inf++;
                    else
                        fin++, sum += v;
                    mn = v < mn ? v : mn;
                    mx = v > mx ? v : mx;
                }
                char nf[96] = "";
                if (nan || inf)
                    snprintf(nf, sizeof nf, "  NaN %lld  Inf %lld", (long long)nan, (long long)inf);
                if (nan + inf < out[i].numel || inf)
                    printf("%s  %s  min %.6g  max %.6g  mean %.6g%s\n", hpcz_plan_output(p, i)->name,
                           d, mn, mx, fin ? sum / (double)fin : NAN, nf);
                else
                    printf("%s  %s%s\n", hpcz_plan_output(p, i)->name, d, nf);
                if (nan || inf)
                    cli_warn("output '%s' holds %lld NaN and %lld Inf of %lld values",
                             hpcz_plan_output(p, i)->name, (long long)nan, (long long)inf,
                             (long long)out[i].numel);
            }
        if (outdir && cli_verbosity >= 0)
            for (size_t i = 0; i < no; i++)
                fprintf(stderr, "wrote %s\n", files[i]);
        if (bench) {
            printf("latency  median %.3f ms  min %.3f ms  (%lld runs, %d thread%s)\n", median, best,
                   bench, stats.threads, stats.threads == 1 ? "" : "s");
            printf("memory   peak activations %s (arena %s, dynamic %s), constants %s\n",
                   cli_bytes(peak), cli_bytes(stats.arena_bytes), cli_bytes(stats.dynamic_peak),
                   cli_bytes(stats.const_bytes));
        }
        if (ops) {
            printf("\n%-24s %6s %10s %7s %9s\n", "op", "nodes", "ms/run", "share", "GFLOP/s");
            for (size_t q = 0; q < n_ops; q++) {
                char gf[32] = "";
                if (ops[q].flops && ops[q].ns)
                    snprintf(gf, sizeof gf, "%.1f", (double)ops[q].flops / (double)ops[q].ns);
                printf("%-24s %6zu %10.3f %6.1f%% %9s\n", ops[q].op, ops[q].count,
                       (double)ops[q].ns / 1e6 / (double)bench,
                       total_ns ? 100.0 * (double)ops[q].ns / (double)total_ns : 0.0, gf);
            }
            printf("\nslowest nodes%*s %10s %7s %9s\n", 33, "", "ms/run", "share", "GFLOP/s");
            for (size_t q = 0; q < n_slow; q++) {
                const hpcz_node *nd = hpcz_plan_node(p, slow[q].k);
                uint64_t fl = hpcz_plan_node_flops(p, slow[q].k) * (uint64_t)bench;
                char gf[32] = "", nm[64];
                if (fl)
                    snprintf(gf, sizeof gf, "%.1f", (double)fl / (double)slow[q].ns);
                const char *name = nd->name && *nd->name ? nd->name : "?";
                size_t len = strlen(name), keep = 44 - strlen(nd->op_type) - 3;
                if (len > keep) /* the end of a long name says most */
                    snprintf(nm, sizeof nm, "...%s (%s)", name + len - (keep - 3), nd->op_type);
                else
                    snprintf(nm, sizeof nm, "%s (%s)", name, nd->op_type);
                printf("%-46s %10.3f %6.1f%% %9s\n", nm, (double)slow[q].ns / 1e6 / (double)bench,
                       total_ns ? 100.0 * (double)slow[q].ns / (double)total_ns : 0.0, gf);
            }
        }
    }
    free(ops);
    free(slow);
    for (size_t i = 0; i < no; i++)
        free(files[i]);
    free(files);
    if (rc == EXIT_OK && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_error("writing standard output failed");
done:
    for (size_t i = 0; in && i < ni; i++)
        hpcz_array_release(&in[i]);
    for (size_t i = 0; out && i < no; i++)
        hpcz_array_release(&out[i]);
    free(in);
    free(out);
    free(times);
    free(prof);
    hpcz_plan_free(p);
    hpcz_model_free(m);
    free_kvs(inputs, n_inputs);
    free_kvs(dims, n_dims);
    return rc;
}
