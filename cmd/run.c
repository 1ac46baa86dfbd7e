/*
 * run.c - `hpcz run MODEL`: run a model on inputs, write its outputs,
 * optionally benchmark it.
 */
#include "cli.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

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

/* --input NAME=FILE, as given */
typedef struct inputs {
    const char *name[256];
    const char *file[256];
    size_t n;
} inputs;

static bool inputs_add(inputs *a, const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || !eq[1] || !(a->name[a->n] = strndup(s, (size_t)(eq - s))))
        return false;
    a->file[a->n++] = eq + 1;
    return true;
}

static void inputs_release(inputs *a)
{
    for (size_t i = 0; i < a->n; i++)
        free((char *)a->name[i]);
}

enum { SLOWEST_NODES = 10 };

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

static void print_output_stats(const hpcz_run_result *r)
{
    for (size_t i = 0; i < r->n_outputs; i++) {
        const hpcz_array *a = &r->outputs[i];
        const char *name = hpcz_plan_output(r->plan, i)->name;
        char d[512], nf[96] = "";
        hpcz_array_describe(a, d, sizeof d);
        hpcz_array_stat s;
        hpcz_array_stats(a, &s);
        if (s.nan || s.inf)
            snprintf(nf, sizeof nf, "  NaN %lld  Inf %lld", (long long)s.nan, (long long)s.inf);
        if (s.nan + s.inf < a->numel || s.inf)
            printf("%s  %s  min %.6g  max %.6g  mean %.6g%s\n", name, d, s.min, s.max, s.mean, nf);
        else
            printf("%s  %s%s\n", name, d, nf);
        if (s.nan || s.inf)
            cli_warn("output '%s' holds %lld NaN and %lld Inf of %lld values", name, (long long)s.nan,
                     (long long)s.inf, (long long)a->numel);
    }
}

static void print_profile(const hpcz_run_result *r)
{
    double runs = (double)r->runs, total = (double)r->total_ns;
    printf("\n%-24s %6s %10s %7s %9s\n", "op", "nodes", "ms/run", "share", "GFLOP/s");
    for (size_t q = 0; q < r->n_ops; q++) {
        const hpcz_op_time *o = &r->ops[q];
        char gf[32] = "";
        if (o->flops && o->ns)
            snprintf(gf, sizeof gf, "%.1f", (double)o->flops / (double)o->ns);
        printf("%-24s %6zu %10.3f %6.1f%% %9s\n", o->op_type, o->nodes, (double)o->ns / 1e6 / runs,
               total ? 100.0 * (double)o->ns / total : 0.0, gf);
    }
    printf("\nslowest nodes%*s %10s %7s %9s\n", 33, "", "ms/run", "share", "GFLOP/s");
    for (size_t q = 0; q < r->n_nodes && q < SLOWEST_NODES; q++) {
        const hpcz_node_time *t = &r->nodes[q];
        char gf[32] = "", nm[64];
        if (t->flops)
            snprintf(gf, sizeof gf, "%.1f", (double)t->flops / (double)t->ns);
        const char *name = t->node->name && *t->node->name ? t->node->name : "?";
        size_t len = strlen(name), keep = 44 - strlen(t->node->op_type) - 3;
        if (len > keep) /* the end of a long name says most */
            snprintf(nm, sizeof nm, "...%s (%s)", name + len - (keep - 3), t->node->op_type);
        else
            snprintf(nm, sizeof nm, "%s (%s)", name, t->node->op_type);
        printf("%-46s %10.3f %6.1f%% %9s\n", nm, (double)t->ns / 1e6 / runs,
               total ? 100.0 * (double)t->ns / total : 0.0, gf);
    }
}

static void print_text(const hpcz_run_result *r, const hpcz_run_opts *o)
{
    const hpcz_plan_stats *s = &r->stats;
    if (!o->outdir && !o->bench)
        print_output_stats(r);
    for (size_t i = 0; o->outdir && cli_verbosity >= 0 && i < r->n_outputs; i++)
        fprintf(stderr, "wrote %s\n", r->files[i]);
    if (o->bench) {
        printf("latency  median %.3f ms  min %.3f ms  (%d runs, %d thread%s)\n", r->median_ms, r->min_ms,
               r->runs, s->threads, s->threads == 1 ? "" : "s");
        printf("memory   peak activations %s (arena %s, dynamic %s), constants %s\n",
               cli_bytes(s->arena_bytes + s->dynamic_peak), cli_bytes(s->arena_bytes),
               cli_bytes(s->dynamic_peak), cli_bytes(s->const_bytes));
    }
    if (r->ops)
        print_profile(r);
}

int cmd_run(int argc, char **argv)
{
    inputs in = {0};
    cli_dims dims = {0};
    hpcz_run_opts ro = {0};
    long long n;
    bool json = false;
    int rc = EXIT_OK, c;
    keep_freed_memory();
#define USAGE_RC(code)                                                                             \
    do {                                                                                           \
        inputs_release(&in);                                                                       \
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
            if (in.n == 256)
                USAGE("too many --input options");
            if (!inputs_add(&in, optarg))
                USAGE("--input expects NAME=FILE, got '%s'", optarg);
            break;
        case OPT_INPUTS:
            ro.inputs_dir = optarg;
            break;
        case OPT_OUTPUT:
            ro.outdir = optarg;
            break;
        case OPT_DIM:
            if (!cli_dims_option(&cmd_run_info, &dims, optarg))
                USAGE_RC(EXIT_USAGE);
            break;
        case OPT_THREADS:
            if (!cli_parse_int(&cmd_run_info, "threads", optarg, 1, 1024, &n))
                USAGE_RC(EXIT_USAGE);
            ro.threads = (int)n;
            break;
        case CLI_OPT_DEVICE:
            if ((rc = cli_device_option(&cmd_run_info, optarg)))
                USAGE_RC(rc);
            break;
        case OPT_BENCH:
            if (!cli_parse_int(&cmd_run_info, "bench", optarg, 1, 1000000, &n))
                USAGE_RC(EXIT_USAGE);
            ro.bench = (int)n;
            break;
        case OPT_PROFILE:
            ro.profile = 1;
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
    if (in.n && ro.inputs_dir)
        USAGE("--input and --inputs cannot be combined");
    if (ro.profile && !ro.bench)
        USAGE("--profile needs --bench");
    if (ro.outdir && !strcmp(ro.outdir, "-"))
        USAGE("-o takes a folder for the outputs' .npy files, not '-'");
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path, NULL, &err);
    if (!m)
        USAGE_RC(cli_file_error(path, &err));
    ro.n_inputs = in.n;
    ro.input_names = in.name;
    ro.input_files = in.file;
    ro.n_dims = dims.n;
    ro.dim_names = dims.names;
    ro.dim_values = dims.values;
    hpcz_run_result r = {0};
    if (!(rc = cli_check_dims(&cmd_run_info, m, dims.names, dims.n))) {
        if (hpcz_run(m, &ro, &r, &err))
            rc = r.about ? cli_file_error(r.about == m->path ? path : r.about, &err) : cli_error("%s", err.msg);
        else if (json)
            hpcz_run_write_json(stdout, path, &r);
        else
            print_text(&r, &ro);
    }
    if (rc == EXIT_OK && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_error("writing standard output failed");
    hpcz_run_result_release(&r);
    hpcz_model_free(m);
    USAGE_RC(rc);
}
