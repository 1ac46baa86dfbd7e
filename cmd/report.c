/*
 * report.c - `hpcz report ORIGINAL COMPRESSED --data DIR`: the accuracy
 * delta in text, JSON and Markdown (+SVG), and CI gates with exit status 3.
 * The gate and report code is shared with quantize and prune (--report).
 */
#include "jobs.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ gates */

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
    const hpcz_gate *bad;
    hpcz_error err;
    if (hpcz_gates_check_outputs(g->g, g->n, m, &bad, &err))
        return cli_usage_error(info, "--%s: %s", hpcz_gate_name(bad->kind), err.msg);
    return EXIT_OK;
}

/* ------------------------------------------------------------ shared driver */

/* A failed comparison, named by the file it is about. */
static int compare_error(const cli_report_opts *o, const hpcz_error *err)
{
    /* a model the runtime cannot plan is named by its file (the compressed
     * one may only exist in memory) */
    static const char *const pre[2] = {"original model: ", "compressed model: "};
    for (int k = 0; k < 2; k++)
        if (!strncmp(err->msg, pre[k], strlen(pre[k]))) {
            const char *path = k ? o->b_path : o->a_path;
            const char *rest = err->msg + strlen(pre[k]);
            return path ? cli_error("%s: %s", path, rest) : cli_error("%s%s", pre[k], rest);
        }
    bool about_labels = o->labels && (strstr(err->msg, "labels") || !strncmp(err->msg, "label ", 6));
    return cli_file_error(about_labels ? o->labels : o->data, err);
}

static int write_json(const char *path, const hpcz_report *rep)
{
    hpcz_outfile *of;
    FILE *f = cli_out_open(path, &of);
    if (!f)
        return EXIT_FAIL;
    hpcz_report_write_json(f, rep);
    return cli_out_commit(path, of);
}

int cli_report(hpcz_model *a, hpcz_model *b, const cli_report_opts *o)
{
    hpcz_error err = {0};
    hpcz_array labels = {0};
    if (o->labels && hpcz_labels_load(o->labels, &labels, &err))
        return cli_file_error(o->labels, &err);
    hpcz_report_opts ro = {.data = o->data, .labels = labels.data, .n_labels = (size_t)labels.numel,
                           .threads = o->threads, .per_layer = !o->no_layers, .max_samples = o->max_samples,
                           .bench = o->bench, .gates = o->gates->g, .n_gates = o->gates->n};
    if (isatty(STDERR_FILENO) && cli_verbosity >= 0)
        ro.progress = cli_progress_bar, ro.progress_ctx = (void *)"comparing";
    hpcz_report rep = {.a_path = o->a_path, .b_path = o->b_path, .data = o->data, .labels = o->labels};
    int rc = EXIT_OK;
    if (hpcz_report_make(a, b, &ro, &rep, &err)) {
        rc = rep.result ? cli_error("%s", err.msg) : compare_error(o, &err);
        goto done;
    }
    rc = hpcz_report_broken(&rep) ? EXIT_THRESHOLD : EXIT_OK;
    if (o->text && cli_verbosity >= 0)
        hpcz_report_write_text(o->text, &rep, o->all_layers ? (size_t)-1 : 20);
    int jrc = o->json ? write_json(o->json, &rep) : EXIT_OK;
    if (jrc)
        rc = jrc;
    if (o->md && hpcz_report_write_md(o->md, &rep, &err))
        rc = cli_error("%s", err.msg);
    for (size_t i = 0; i < rep.n_gates; i++)
        if (rep.gates[i].broken)
            fprintf(stderr, "hpcz: threshold broken: %s %g on '%s' (measured %.6g)\n",
                    hpcz_gate_name(rep.gates[i].gate->kind), rep.gates[i].gate->value, rep.gates[i].output,
                    rep.gates[i].measured);
done:
    hpcz_report_release(&rep);
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
    cli_gates gates = {0};
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
