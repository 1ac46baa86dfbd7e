/*
 * report.c - `hpcz report ORIGINAL COMPRESSED --data DIR`: the accuracy
 * delta in text, JSON and Markdown (+SVG), and CI gates with exit status 3.
 * The gate and report code is shared with quantize and prune (--report).
 */
#include "cli.h"


#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ gates */

void cli_gates_init(cli_gates *g)
{
    memset(g, 0, sizeof *g);
}

static bool parse_gate(const cli_cmd_info *info, const char *arg, cli_gates *g, int kind)
{
    if (g->n >= CLI_MAX_GATES) {
        cli_usage_error(info, "--%s: too many gates", hpcz_gate_name(kind));
        return false;
    }
    hpcz_error err;
    if (hpcz_gate_parse(kind, arg, &g->g[g->n], &err)) {
        cli_usage_error(info, "--%s: %s", hpcz_gate_name(kind), err.msg);
        return false;
    }
    g->n++;
    return true;
}

bool cli_gates_option(const cli_cmd_info *info, cli_gates *g, int key, const char *arg)
{
    if (key < CLI_OPT_GATE_FIRST || key > CLI_OPT_GATE_LAST)
        return false;
    /* the option keys follow the library's gate kinds */
    return parse_gate(info, arg, g, HPCZ_GATE_MAX_TOP1_DROP + (key - CLI_OPT_GATE_FIRST));
}

int cli_check_gate_outputs(const cli_cmd_info *info, const cli_gates *g, const hpcz_model *m)
{
    const hpcz_gate *bad = hpcz_gates_unknown_output(g->g, g->n, m);
    if (!bad)
        return EXIT_OK;
    const hpcz_graph *gr = m->graph;
    const char *names[256];
    size_t n = 0;
    for (size_t i = 0; i < gr->n_outputs && n < 256; i++)
        if (gr->outputs[i])
            names[n++] = gr->outputs[i]->name;
    const char *near = cli_closest(bad->output, names, n, sizeof *names);
    char list[512];
    cli_list_names(list, sizeof list, names, n);
    if (near)
        return cli_usage_error(info, "--%s: the model has no output '%s'; did you mean '%s'?",
                               hpcz_gate_name(bad->kind), bad->output, near);
    return cli_usage_error(info, "--%s: the model has no output '%s' (outputs: %s)", hpcz_gate_name(bad->kind),
                           bad->output, list);
}

bool cli_gates_pass(const cli_gates *g, const hpcz_compare_result *r, double *worst_sqnr)
{
    bool ok = hpcz_gates_hold(g->g, g->n, r) == 1;
    if (worst_sqnr) {
        *worst_sqnr = INFINITY;
        for (size_t i = 0; i < r->n_outputs; i++)
            if (r->outputs[i].sqnr_db < *worst_sqnr)
                *worst_sqnr = r->outputs[i].sqnr_db;
    }
    return ok;
}

/* ------------------------------------------------------------ latency */

/* Latency of both models, alternated (hpcz_bench_pair), into their sizes. */
static hpcz_status bench(hpcz_model *a, hpcz_model *b, const char *data, int threads, int runs,
                         hpcz_model_sizes *sa, hpcz_model_sizes *sb, hpcz_error *err)
{
    hpcz_bench_result ra, rb;
    hpcz_status st = hpcz_bench_pair(a, b, data, threads, runs, &ra, &rb, err);
    if (st)
        return st;
    hpcz_model_sizes *ms[2] = {sa, sb};
    const hpcz_bench_result *br[2] = {&ra, &rb};
    for (int k = 0; k < 2; k++) {
        ms[k]->latency_ms = br[k]->median_ms;
        ms[k]->latency_min_ms = br[k]->min_ms;
        ms[k]->latency_ratio = br[k]->ratio;
        ms[k]->latency_runs = runs;
    }
    return HPCZ_OK;
}

/* ------------------------------------------------------------ shared driver */

static void progress_bar(void *ctx, size_t done, size_t total)
{
    (void)ctx;
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    dprintf(STDERR_FILENO, "\rcomparing [%.*s%*s] %zu/%zu", fill, "##############################",
            width - fill, "", done, total);
    if (done >= total)
        dprintf(STDERR_FILENO, "\r\033[K");
}

int cli_report(hpcz_model *a, hpcz_model *b, const cli_report_opts *o)
{
    hpcz_error err = {0};
    hpcz_array labels = {0};
    if (o->labels) {
        if (hpcz_npy_load(o->labels, &labels, &err))
            return cli_file_error(o->labels, &err);
        if ((labels.dtype != HPCZ_DTYPE_INT64 && labels.dtype != HPCZ_DTYPE_INT32) || labels.ndim != 1) {
            hpcz_array_release(&labels);
            return cli_error("%s: labels must be a 1-D int64 or int32 array of class indices", o->labels);
        }
        if (labels.dtype == HPCZ_DTYPE_INT32) {
            hpcz_array l64;
            if (hpcz_array_alloc(&l64, HPCZ_DTYPE_INT64, 1, labels.dims, &err)) {
                hpcz_array_release(&labels);
                return cli_error("%s", err.msg);
            }
            for (int64_t i = 0; i < labels.numel; i++)
                ((int64_t *)l64.data)[i] = ((int32_t *)labels.data)[i];
            hpcz_array_release(&labels);
            labels = l64;
        }
    }
    hpcz_compare_opts co = {0};
    co.threads = o->threads;
    co.per_layer = !o->no_layers;
    co.max_samples = o->max_samples;
    if (o->labels) {
        co.labels = labels.data;
        co.n_labels = (size_t)labels.numel;
        if (o->max_samples && co.n_labels > o->max_samples)
            co.n_labels = o->max_samples;
    }
    if (isatty(STDERR_FILENO) && cli_verbosity >= 0)
        co.progress = progress_bar;
    hpcz_compare_result *r = NULL;
    hpcz_status st = hpcz_compare(a, b, o->data, &co, &r, &err);
    if (st) {
        hpcz_array_release(&labels);
        /* a model the runtime cannot plan is named by its file (the
         * compressed one may only exist in memory) */
        static const char *const pre[2] = {"original model: ", "compressed model: "};
        for (int k = 0; k < 2; k++)
            if (!strncmp(err.msg, pre[k], strlen(pre[k]))) {
                const char *path = k ? o->b_path : o->a_path;
                const char *rest = err.msg + strlen(pre[k]);
                return path ? cli_error("%s: %s", path, rest) : cli_error("%s%s", pre[k], rest);
            }
        const char *what = o->labels && (strstr(err.msg, "labels") || !strncmp(err.msg, "label ", 6)) ? o->labels : o->data;
        return cli_file_error(what, &err);
    }
    hpcz_model_sizes sa, sb;
    hpcz_model_sizes_of(a, &sa);
    hpcz_model_sizes_of(b, &sb);
    if (o->bench > 0) {
        if ((st = bench(a, b, o->data, o->threads, o->bench, &sa, &sb, &err))) {
            hpcz_compare_result_free(r);
            hpcz_array_release(&labels);
            return cli_error("benchmark: %s", err.msg);
        }
    }
    hpcz_gate_result gr[CLI_MAX_GATES * 8];
    size_t ng = hpcz_gates_check(o->gates->g, o->gates->n, r, gr, sizeof gr / sizeof gr[0]);
    int rc = EXIT_OK;
    for (size_t i = 0; i < ng; i++)
        if (gr[i].broken)
            rc = EXIT_THRESHOLD;
    hpcz_report rep = {.a_path = o->a_path,
                       .b_path = o->b_path,
                       .data = o->data,
                       .labels = o->labels,
                       .result = r,
                       .a = sa,
                       .b = sb,
                       .gates = gr,
                       .n_gates = ng};
    if (o->text && cli_verbosity >= 0)
        hpcz_report_write_text(o->text, &rep, o->all_layers ? (size_t)-1 : 20);
    if (o->json) {
        if (!strcmp(o->json, "-")) {
            hpcz_report_write_json(stdout, &rep);
        } else {
            hpcz_outfile *of = hpcz_outfile_open(o->json, &err);
            if (!of) {
                rc = cli_file_error(o->json, &err);
            } else {
                hpcz_report_write_json(hpcz_outfile_stream(of), &rep);
                if (hpcz_outfile_commit(of, &err))
                    rc = cli_file_error(o->json, &err);
            }
        }
    }
    if (o->md) {
        if (hpcz_report_write_md(o->md, &rep, &err))
            rc = cli_error("%s", err.msg);
    }
    for (size_t i = 0; i < ng; i++)
        if (gr[i].broken)
            fprintf(stderr, "hpcz: threshold broken: %s %g on '%s' (measured %.6g)\n",
                    hpcz_gate_name(gr[i].gate->kind), gr[i].gate->value, gr[i].output, gr[i].measured);
    hpcz_compare_result_free(r);
    hpcz_array_release(&labels);
    return rc;
}

/* ------------------------------------------------------------ command */

enum {
    OPT_DATA = 'd',
    OPT_LABELS = 256,
    OPT_JSON,
    OPT_MD,
    OPT_BENCH,
    OPT_THREADS,
    OPT_SAMPLES,
    OPT_NO_LAYERS,
    OPT_ALL_LAYERS,
    OPT_JSON_FILE,
};

static const cli_opt opts[] = {
    {"data", OPT_DATA, required_argument, "DATA",
     "inputs: a folder of .npy (INPUT.npy with a batch axis, or INPUT_K.npy), test_data_set_* "
     "folders, a .npy file, or random:N", NULL, "npy"},
    {"labels", OPT_LABELS, required_argument, "FILE", "class index per sample (.npy, int64): accuracy and its drop",
     NULL, "npy"},
    {"samples", OPT_SAMPLES, required_argument, "N", "use the first N samples"},
    {"json", OPT_JSON, no_argument, NULL,
     "print the report as JSON (schema hpcz.report 1, see docs/json.md) on stdout instead of text"},
    {"json-file", OPT_JSON_FILE, required_argument, "FILE", "write the JSON report to FILE (the text still goes to stdout)",
     NULL, "json"},
    {"md", OPT_MD, required_argument, "FILE", "write a Markdown report, with its SVG chart next to it",
     NULL, "md"},
    {"bench", OPT_BENCH, required_argument, "N", "also time both models with hpcz's runtime on one sample, N runs each, alternating: both medians and their ratio (compressed / original)"},
    {"threads", OPT_THREADS, required_argument, "N", "threads (default: all cores)"},
    CLI_DEVICE_OPTION,
    {"no-layers", OPT_NO_LAYERS, no_argument, NULL, "compare outputs only"},
    {"all-layers", OPT_ALL_LAYERS, no_argument, NULL, "list every layer in the text report (default: 20 worst)"},
    CLI_GATE_OPTIONS,
    {"quiet", 'q', no_argument, NULL, "no text report"},
    {0},
};

const cli_cmd_info cmd_report_info = {
    "report", "ORIGINAL COMPRESSED --data DATA [options]",
    "Run both models on the same inputs with hpcz's runtime and report how the compressed one "
    "differs: per output (max/mean abs error, RMSE, cosine, SQNR, top-1/top-5 agreement, accuracy "
    "against labels with a 95% interval), per layer (every intermediate tensor matched by name, "
    "through QDQ pairs, worst first), sizes and latency.",
    "Gates take NUMBER or OUTPUT=NUMBER; a broken gate is named on stderr and gives exit status 3.",
    opts,
    .exits = cli_exits_gates,
    .max_operands = 2,
    .operand_files = CLI_FILES_MODEL,
    .legacy = CLI_LEGACY_JSON_FILE,
};

int cmd_report(int argc, char **argv)
{
    cli_gates gates;
    cli_gates_init(&gates);
    cli_report_opts ro = {0};
    ro.gates = &gates;
    ro.text = stdout;
    long long n;
    int c;
    bool json_flag = false;
    const char *json_file = NULL;
    while ((c = cli_getopt(argc, argv, &cmd_report_info)) != -1) {
        switch (c) {
        case 'h':
            return EXIT_OK;
        case OPT_DATA:
            ro.data = optarg;
            break;
        case OPT_LABELS:
            ro.labels = optarg;
            break;
        case OPT_JSON:
            json_flag = true;
            break;
        case OPT_JSON_FILE:
            json_file = optarg;
            break;
        case OPT_MD:
            ro.md = optarg;
            break;
        case OPT_BENCH:
            if (!cli_parse_int(&cmd_report_info, "bench", optarg, 1, 100000, &n))
                return EXIT_USAGE;
            ro.bench = (int)n;
            break;
        case OPT_THREADS:
            if (!cli_parse_int(&cmd_report_info, "threads", optarg, 0, 1024, &n))
                return EXIT_USAGE;
            ro.threads = (int)n;
            break;
        case CLI_OPT_DEVICE:
            if ((n = cli_device_option(&cmd_report_info, optarg)))
                return (int)n;
            break;
        case OPT_SAMPLES:
            if (!cli_parse_int(&cmd_report_info, "samples", optarg, 1, 1000000000, &n))
                return EXIT_USAGE;
            ro.max_samples = (size_t)n;
            break;
        case OPT_NO_LAYERS:
            ro.no_layers = 1;
            break;
        case OPT_ALL_LAYERS:
            ro.all_layers = 1;
            break;
        case 'q':
            cli_verbosity = -1;
            break;
        default:
            if (c >= CLI_OPT_GATE_FIRST && c <= CLI_OPT_GATE_LAST) {
                if (!cli_gates_option(&cmd_report_info, &gates, c, optarg))
                    return EXIT_USAGE;
                break;
            }
            return EXIT_USAGE;
        }
    }
    if (argc - optind < 2)
        return cli_usage_error(&cmd_report_info, "needs ORIGINAL and COMPRESSED");
    if (argc - optind > 2)
        return cli_usage_error(&cmd_report_info, "unexpected argument '%s'", argv[optind + 2]);
    if (!ro.data)
        return cli_usage_error(&cmd_report_info, "missing --data DATA");
    if (json_flag && json_file)
        return cli_usage_error(&cmd_report_info, "--json and --json-file: give one");
    ro.json = json_flag ? "-" : json_file;
    /* the text report is the default on stdout; an output asked for there
     * replaces it, two are an error */
    if ((json_flag && !cli_claim_stdout(&cmd_report_info, "--json")) ||
        (json_file && !strcmp(json_file, "-") && !cli_claim_stdout(&cmd_report_info, "--json-file -")) ||
        (ro.md && !strcmp(ro.md, "-") && !cli_claim_stdout(&cmd_report_info, "--md -")))
        return EXIT_USAGE;
    if ((ro.json && !strcmp(ro.json, "-")) || (ro.md && !strcmp(ro.md, "-")))
        ro.text = NULL;
    ro.a_path = argv[optind];
    ro.b_path = argv[optind + 1];
    if (!strcmp(ro.a_path, "-") && !strcmp(ro.b_path, "-"))
        return cli_usage_error(&cmd_report_info, "only one model can come from standard input");
    hpcz_error err = {0};
    hpcz_model *a = hpcz_model_load(ro.a_path, NULL, &err);
    if (!a)
        return cli_file_error(ro.a_path, &err);
    hpcz_model *b = hpcz_model_load(ro.b_path, NULL, &err);
    if (!b) {
        hpcz_model_free(a);
        return cli_file_error(ro.b_path, &err);
    }
    int rc = cli_check_gate_outputs(&cmd_report_info, &gates, a);
    if (!rc)
        rc = cli_report(a, b, &ro);
    hpcz_model_free(a);
    hpcz_model_free(b);
    return rc;
}
