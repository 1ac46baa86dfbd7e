/*
 * prune.c - `hpcz prune IN -o OUT`: magnitude or N:M pruning as a preset
 * pipeline, with parameters, non-zeros and per-layer sparsity before/after.
 */
#include "cli.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    OPT_OUTPUT = 'o',
    OPT_METHOD = 256,
    OPT_SPARSITY,
    OPT_SCOPE,
    OPT_PATTERN,
    OPT_MIN_PARAMS,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_OP_TYPES,
    OPT_KEEP_FIRST_LAST,
    OPT_FOLD_BN,
    OPT_PASSES,
    OPT_JSON,
    OPT_IN_PLACE,
    OPT_DRY_RUN,
    OPT_RATIO,
    OPT_CRITERION,
    OPT_DATA,
    OPT_LABELS,
    OPT_REPORT,
    OPT_THREADS,
    OPT_RECONSTRUCT,
    OPT_NO_RECONSTRUCT,
    OPT_CALIB,
    OPT_CALIB_SAMPLES,
    OPT_CALIB_MASK,
    OPT_RECAL_BN,
    OPT_SENSITIVITY,
    OPT_TARGET_PARAMS,
    OPT_TARGET_MACS,
    OPT_JSON_FILE,
    OPT_FORCE = 'f',
};

static const cli_opt opts[] = {
    {"output", OPT_OUTPUT, required_argument, "FILE", "write the pruned model to FILE ('-': stdout)",
     NULL, CLI_FILES_MODEL},
    {"force", OPT_FORCE, no_argument, NULL, "write the model to standard output even when it is a terminal"},
    {"method", OPT_METHOD, required_argument, "M",
     "magnitude (default: zero the smallest weights), nm (N:M groups, see --pattern) or channel "
     "(remove whole output channels and everything that reads them)",
     "magnitude|nm|channel"},
    {"sparsity", OPT_SPARSITY, required_argument, "S", "magnitude: share of weights to zero, in [0, 1) (default 0.5)"},
    {"scope", OPT_SCOPE, required_argument, "SCOPE",
     "magnitude: 'layer' (each layer to S, default) or 'global' (one threshold across layers)",
     "layer|global"},
    {"pattern", OPT_PATTERN, required_argument, "N:M",
     "nm: keep N of every M weights along the reduction axis (default 2:4)"},
    {"ratio", OPT_RATIO, required_argument, "R",
     "channel: share of the prunable output channels removed, in [0, 1) (default 0.25); without "
     "--calib the same share from each group, with --calib one ranking across groups (each loses "
     "at most min(R + 0.1, 0.9))"},
    {"criterion", OPT_CRITERION, required_argument, "C",
     "channel: importance by filter l1 (default without --calib) or l2 norm, bn-gamma (|BatchNorm "
     "scale|), or energy (default with --calib: each channel's share of the output variance of the "
     "layers reading it, measured on the data)",
     "l1|l2|bn-gamma|energy"},
    {"reconstruct", OPT_RECONSTRUCT, no_argument, NULL,
     "magnitude/nm: choose what to remove by OBS saliency and update the remaining weights of "
     "each layer to reproduce its output on --calib data (least squares with the layer's input "
     "Gram matrix, SparseGPT-style), then restore each output's mean through the bias, and put "
     "magnitude pruning back on layers where the model's output on the data is closer with it; channel "
     "(the default with --calib): re-solve the weights and bias of every layer reading pruned "
     "channels by least squares so its output on --calib data matches the original"},
    {"no-reconstruct", OPT_NO_RECONSTRUCT, no_argument, NULL,
     "channel: with --calib, only choose channels on the data; leave the remaining weights as they are"},
    {"recalibrate-bn", OPT_RECAL_BN, no_argument, NULL,
     "channel: re-estimate every BatchNorm's mean and variance on --calib data after pruning (the "
     "default reconstruction already keeps them right; on top of it this does harm: ppocr_cls top-1 "
     "agreement 0.98 -> 0.83)"},
    {"calib", OPT_CALIB, required_argument, "DATA",
     "calibration data for --reconstruct and --recalibrate-bn: a folder of .npy, test_data_set_* folders, a .npy file, or random:N",
     NULL, "npy"},
    {"calib-samples", OPT_CALIB_SAMPLES, required_argument, "N", "use at most N calibration samples"},
    CLI_CALIB_MASK_OPTION(OPT_CALIB_MASK),
    CLI_DIM_OPTION,
    {"sensitivity", OPT_SENSITIVITY, no_argument, NULL,
     "prune each layer alone at 25/50/75/90% (magnitude or channel) on --calib data and print "
     "the output SQNR and top-1 agreement per layer and ratio; writes no model"},
    {"target-params", OPT_TARGET_PARAMS, required_argument, "N",
     "choose per-layer ratios from the measured sensitivity so that at most N non-zero "
     "parameters (magnitude) or parameters (channel) remain, with the smallest output change"},
    {"target-macs", OPT_TARGET_MACS, required_argument, "N",
     "channel: choose per-layer ratios so that at most N MACs per sample remain"},
    {"min-params", OPT_MIN_PARAMS, required_argument, "N", "skip weights with fewer than N elements"},
    {"op-types", OPT_OP_TYPES, required_argument, "LIST",
     "ops whose weights are pruned (default Conv,ConvTranspose,Gemm,MatMul)"},
    {"include", OPT_INCLUDE, required_argument, "REGEX",
     "only nodes whose name or op type matches (POSIX extended regex)"},
    {"exclude", OPT_EXCLUDE, required_argument, "REGEX", "skip nodes whose name or op type matches"},
    {"keep-first-last", OPT_KEEP_FIRST_LAST, no_argument, NULL, "leave the first and last layers dense"},
    {"fold-bn", OPT_FOLD_BN, no_argument, NULL, "fold BatchNormalization into convolutions first"},
    {"passes", OPT_PASSES, required_argument, "PIPELINE", "run this pipeline instead of the preset"},
    {"json", OPT_JSON, no_argument, NULL,
     "print the report as JSON (schema hpcz.prune 1; with --sensitivity hpcz.sensitivity 1, "
     "instead of the table) on stdout"},
    {"json-file", OPT_JSON_FILE, required_argument, "FILE", "write the JSON report to FILE instead",
     NULL, "json"},
    {"dry-run", OPT_DRY_RUN, no_argument, NULL, "report what would be pruned; write nothing"},
    {"data", OPT_DATA, required_argument, "DATA",
     "inputs for --report and the gates: a folder of .npy, test_data_set_* folders, a .npy file",
     NULL, "npy"},
    {"labels", OPT_LABELS, required_argument, "FILE", "class index per --data sample (.npy): accuracy and its drop",
     NULL, "npy"},
    {"report", OPT_REPORT, required_argument, "FILE",
     "compare with the original on --data and write the report (JSON, schema hpcz.report 1) to "
     "FILE ('-': stdout)", NULL, "json"},
    {"threads", OPT_THREADS, required_argument, "N", "threads for the comparison (default: all cores)"},
    CLI_DEVICE_OPTION,
    CLI_GATE_OPTIONS,
    {"in-place", OPT_IN_PLACE, no_argument, NULL, "allow OUT to be IN"},
    {"verbose", 'v', no_argument, NULL, "print what every pass did"},
    {"quiet", 'q', no_argument, NULL, "no report on stderr"},
    {0},
};

const cli_cmd_info cmd_prune_info = {
    "prune", "IN -o OUT [options]",
    "Prune a model's weights: unstructured magnitude pruning per layer or with one global "
    "threshold, N:M semi-structured sparsity (the 2:4 pattern sparse tensor cores run), or "
    "structured channel pruning that really removes channels: smaller tensors, fewer MACs.",
    "Weights are the constant inputs of Conv, ConvTranspose, Gemm and MatMul, whether "
    "initializers or Constant nodes, subgraphs included. '-' reads standard input and writes "
    "standard output, so prune sits in pipes: hpcz prune - -o - < a.onnx | hpcz quantize - -o b.onnx. "
    "The report goes to stderr. Zeros shrink the file once it is stored sparse (.hpcz).",
    opts,
    .exits = cli_exits_gates,
    .max_operands = 1,
    .operand_files = CLI_FILES_MODEL,
    .legacy = CLI_LEGACY_JSON_FILE,
};

typedef struct layer {
    const hpcz_node *node;
    int64_t numel, numel_after;
    int64_t zeros_before, zeros_after;
} layer;

typedef struct layers {
    layer *l;
    size_t n, cap;
    const char *op_types;
    int after;
    size_t hint; /* where the next layer of the second scan probably is */
} layers;

static int64_t zeros_of(hpcz_tensor *t)
{
    hpcz_error e;
    const float *d = hpcz_tensor_data(t, &e);
    int64_t z = 0;
    for (int64_t i = 0; d && i < t->numel; i++)
        z += d[i] == 0.0f;
    return z;
}

static int scan_layers(hpcz_graph *g, void *ctx)
{
    layers *L = ctx;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        if (!hpcz_list_contains(L->op_types, n->op_type) || n->n_inputs < 2)
            continue;
        hpcz_tensor *t = hpcz_value_const(n->inputs[1]);
        if (!t || t->dtype != HPCZ_DTYPE_FLOAT)
            continue;
        /* the second scan meets the layers in the first scan's order: look
         * where the last one was found first (a search from the start per
         * layer was quadratic: 20k layers, seconds) */
        layer *e = NULL;
        if (L->after && L->hint < L->n && L->l[L->hint].node == n)
            e = &L->l[L->hint];
        for (size_t k = 0; k < L->n && !e && L->after; k++)
            if (L->l[k].node == n)
                e = &L->l[k];
        if (e)
            L->hint = (size_t)(e - L->l) + 1;
        if (!e) {
            if (L->after || !hpcz_grow_cli(&L->l, &L->cap, L->n + 1))
                continue;
            e = &L->l[L->n++];
            e->node = n;
            e->numel = t->numel;
            e->zeros_before = zeros_of(t);
            e->zeros_after = e->zeros_before;
            e->numel_after = t->numel;
        }
        if (L->after) {
            e->zeros_after = zeros_of(t);
            e->numel_after = t->numel;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ sensitivity */

static void print_sensitivity(const hpcz_sensitivity *s, const char *data)
{
    printf("sensitivity: %s pruning of one layer at a time, output SQNR dB (top-1 agreement) on %s\n",
           s->channel ? "channel" : "magnitude", data);
    printf("  %-32s %10s", "layer", "weights");
    for (int k = 0; k < HPCZ_SENS_RATIOS; k++)
        printf("   %13.0f%%", 100 * hpcz_sensitivity_ratios[k]);
    printf("\n");
    for (size_t i = 0; i < s->n; i++) {
        const hpcz_sens_layer *r = &s->layers[i];
        printf("  %-32.32s %10s", r->node, cli_count((uint64_t)r->weights));
        for (int k = 0; k < HPCZ_SENS_RATIOS; k++) {
            if (isnan(r->sqnr[k]))
                printf("   %14s", "-");
            else
                printf("   %6.1f (%5.1f%%)", r->sqnr[k], 100 * r->agree[k]);
        }
        printf("\n");
    }
    printf("  (%zu evaluations; '-': not prunable alone)\n", s->evals);
}

static void write_sensitivity_json(FILE *f, const hpcz_sensitivity *s, const char *method)
{
    hpcz_json j;
    hpcz_json_init(&j, f);
    hpcz_json_object_begin(&j, NULL);
    hpcz_json_string(&j, "schema", "hpcz.sensitivity");
    hpcz_json_int(&j, "version", 1);
    hpcz_json_string(&j, "method", method);
    hpcz_json_array_begin(&j, "ratios");
    for (int k = 0; k < HPCZ_SENS_RATIOS; k++)
        hpcz_json_double(&j, NULL, hpcz_sensitivity_ratios[k]);
    hpcz_json_array_end(&j);
    hpcz_json_array_begin(&j, "layers");
    for (size_t i = 0; i < s->n; i++) {
        const hpcz_sens_layer *r = &s->layers[i];
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "node", r->node);
        hpcz_json_int(&j, "weights", r->weights);
        hpcz_json_array_begin(&j, "sqnr_db");
        for (int k = 0; k < HPCZ_SENS_RATIOS; k++)
            hpcz_json_double(&j, NULL, r->sqnr[k]);
        hpcz_json_array_end(&j);
        hpcz_json_array_begin(&j, "top1_agreement");
        for (int k = 0; k < HPCZ_SENS_RATIOS; k++)
            hpcz_json_double(&j, NULL, isnan(r->sqnr[k]) ? NAN : r->agree[k]);
        hpcz_json_array_end(&j);
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    hpcz_json_object_end(&j);
    hpcz_json_finish(&j);
}

/* --sensitivity (print: the table and/or JSON) or --target-params/--target-macs
 * (*spec_out: the pipeline that meets the budget). */
static int run_sensitivity(hpcz_model *m, const char *in, const char *data, const char *method, int threads,
                           const char *op_types, const char *include, const char *exclude, int print,
                           long long target_params, long long target_macs, const char *json, char **spec_out)
{
    hpcz_error err = {0};
    hpcz_sensitivity_opts so = {.method = method, .op_types = op_types, .include = include, .exclude = exclude,
                                .threads = threads};
    hpcz_sensitivity *s = NULL;
    if (hpcz_sensitivity_run(m, data, &so, &s, &err))
        return cli_file_error(err.status == HPCZ_ERR_IO || err.status == HPCZ_ERR_PARSE ? data : in, &err);
    int rc = EXIT_OK;
    if (print) {
        if (!json || strcmp(json, "-")) /* --json: the JSON instead of the table */
            print_sensitivity(s, data);
        if (json) {
            hpcz_outfile *of = strcmp(json, "-") ? hpcz_outfile_open(json, &err) : NULL;
            if (strcmp(json, "-") && !of) {
                rc = cli_file_error(json, &err);
            } else {
                write_sensitivity_json(of ? hpcz_outfile_stream(of) : stdout, s, method);
                if (of && hpcz_outfile_commit(of, &err))
                    rc = cli_file_error(json, &err);
            }
        }
    } else {
        hpcz_sens_step *steps = NULL;
        size_t ns = 0;
        if (hpcz_sensitivity_plan(s, target_params, target_macs, spec_out, &steps, &ns, &err)) {
            rc = cli_error("%s: %s", in, err.msg);
        } else {
            for (size_t i = 0; i < ns; i++)
                cli_note("prune: '%s' at %.0f%% (alone: %.1f dB output SQNR)", s->layers[steps[i].layer].node,
                         100 * steps[i].ratio, steps[i].sqnr_alone);
        }
        free(steps);
    }
    hpcz_sensitivity_free(s);
    return rc;
}


int cmd_prune(int argc, char **argv)
{
    cli_dims dims = {0};
    const char *out = NULL, *method = "magnitude", *scope = "layer", *pattern = "2:4";
    const char *include = NULL, *exclude = NULL, *op_types = NULL, *passes = NULL, *json = NULL;
    double sparsity = 0.5, ratio = 0.25;
    const char *criterion = NULL;
    long long min_params = 0;
    int keep_fl = 0, fold = 0, in_place = 0, dry_run = 0, threads = 0, force = 0, json_flag = 0;
    const char *json_file = NULL;
    const char *data = NULL, *labels = NULL, *report = NULL, *calib = NULL, *calib_mask = NULL;
    int reconstruct = 0, no_reconstruct = 0, recal_bn = 0, sensitivity = 0;
    long long target_params = -1, target_macs = -1;
    long long calib_samples = 0;
    cli_gates gates;
    cli_gates_init(&gates);
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_prune_info)) != -1) {
        switch (c) {
        case 'h':
            return EXIT_OK;
        case OPT_OUTPUT:
            out = optarg;
            break;
        case OPT_METHOD:
            method = optarg;
            break;
        case OPT_SPARSITY: {
            char *end;
            sparsity = strtod(optarg, &end);
            if (end == optarg || *end || !(sparsity >= 0 && sparsity < 1))
                return cli_usage_error(&cmd_prune_info, "--sparsity: '%s' is not a number in [0, 1)", optarg);
            break;
        }
        case OPT_RATIO: {
            char *end;
            ratio = strtod(optarg, &end);
            if (end == optarg || *end || !(ratio >= 0 && ratio < 1))
                return cli_usage_error(&cmd_prune_info, "--ratio: '%s' is not a number in [0, 1)", optarg);
            break;
        }
        case OPT_CRITERION:
            criterion = optarg;
            break;
        case OPT_SCOPE:
            scope = optarg;
            break;
        case OPT_PATTERN:
            pattern = optarg;
            break;
        case OPT_MIN_PARAMS:
            if (!cli_parse_int(&cmd_prune_info, "min-params", optarg, 0, 1000000000000LL, &min_params))
                return EXIT_USAGE;
            break;
        case OPT_INCLUDE:
            include = optarg;
            break;
        case OPT_EXCLUDE:
            exclude = optarg;
            break;
        case OPT_OP_TYPES:
            op_types = optarg;
            break;
        case OPT_KEEP_FIRST_LAST:
            keep_fl = 1;
            break;
        case OPT_FOLD_BN:
            fold = 1;
            break;
        case OPT_PASSES:
            passes = optarg;
            break;
        case OPT_JSON:
            json_flag = 1;
            break;
        case OPT_JSON_FILE:
            json_file = optarg;
            break;
        case OPT_FORCE:
            force = 1;
            break;
        case OPT_DRY_RUN:
            dry_run = 1;
            break;
        case OPT_IN_PLACE:
            in_place = 1;
            break;
        case OPT_DATA:
            data = optarg;
            break;
        case OPT_RECONSTRUCT:
            reconstruct = 1;
            break;
        case OPT_NO_RECONSTRUCT:
            no_reconstruct = 1;
            break;
        case OPT_RECAL_BN:
            recal_bn = 1;
            break;
        case OPT_SENSITIVITY:
            sensitivity = 1;
            break;
        case OPT_TARGET_PARAMS:
            if (!cli_parse_int(&cmd_prune_info, "target-params", optarg, 0, (long long)1 << 50, &target_params))
                return EXIT_USAGE;
            break;
        case OPT_TARGET_MACS:
            if (!cli_parse_int(&cmd_prune_info, "target-macs", optarg, 0, (long long)1 << 60, &target_macs))
                return EXIT_USAGE;
            break;
        case OPT_CALIB:
            calib = optarg;
            break;
        case CLI_OPT_DIM:
            if (!cli_dims_option(&cmd_prune_info, &dims, optarg))
                return EXIT_USAGE;
            break;
        case OPT_CALIB_MASK:
            calib_mask = optarg;
            break;
        case OPT_CALIB_SAMPLES:
            if (!cli_parse_int(&cmd_prune_info, "calib-samples", optarg, 1, 100000000, &calib_samples))
                return EXIT_USAGE;
            break;
        case OPT_LABELS:
            labels = optarg;
            break;
        case OPT_REPORT:
            report = optarg;
            break;
        case OPT_THREADS: {
            long long t;
            if (!cli_parse_int(&cmd_prune_info, "threads", optarg, 0, 1024, &t))
                return EXIT_USAGE;
            threads = (int)t;
            break;
        }
        case CLI_OPT_DEVICE: {
            int rc = cli_device_option(&cmd_prune_info, optarg);
            if (rc)
                return rc;
            break;
        }
        case 'v':
            cli_verbosity = 1;
            break;
        case 'q':
            cli_verbosity = -1;
            break;
        default:
            if (c >= CLI_OPT_GATE_FIRST && c <= CLI_OPT_GATE_LAST) {
                if (!cli_gates_option(&cmd_prune_info, &gates, c, optarg))
                    return EXIT_USAGE;
                break;
            }
            return EXIT_USAGE;
        }
    }
    if (!data && calib && strncmp(calib, "random:", 7))
        data = calib;
    if (calib_mask && !calib)
        return cli_usage_error(&cmd_prune_info, "--calib-mask selects tokens of the calibration data: give --calib DATA");
    if (reconstruct && no_reconstruct)
        return cli_usage_error(&cmd_prune_info, "--reconstruct and --no-reconstruct: give one");
    bool targeted = target_params >= 0 || target_macs >= 0;
    /* what the options mean: the library's recipe (lib/passes/recipe.c) */
    hpcz_prune_recipe rp;
    hpcz_prune_recipe_init(&rp);
    rp.method = method;
    rp.sparsity = sparsity;
    rp.ratio = ratio;
    rp.criterion = criterion;
    rp.scope = scope;
    rp.pattern = pattern;
    rp.min_params = min_params;
    rp.keep_first_last = keep_fl;
    rp.op_types = op_types;
    rp.include = include;
    rp.exclude = exclude;
    rp.fold = fold;
    rp.reconstruct = reconstruct ? 1 : no_reconstruct ? 0 : -1;
    rp.recalibrate_bn = recal_bn;
    rp.have_calib = calib != NULL;
    rp.targeted = targeted;
    {
        hpcz_error rerr;
        if (hpcz_prune_recipe_resolve(&rp, &rerr))
            return cli_usage_error(&cmd_prune_info, "%s", rerr.msg);
    }
    bool evaluate = report || gates.n;
    if (evaluate && !data)
        return cli_usage_error(&cmd_prune_info, "--report and the gates need --data DATA");
    const char *in = cli_operand(&cmd_prune_info, argc, argv, "IN");
    if (!in)
        return EXIT_USAGE;
    if (!out && !dry_run && !sensitivity)
        return cli_usage_error(&cmd_prune_info, "missing -o OUT (or --dry-run)");
    if ((sensitivity || targeted) && !calib && !data)
        return cli_usage_error(&cmd_prune_info, "--sensitivity and --target-* measure on data: --calib DIR");
    if (target_macs >= 0 && strcmp(method, "channel"))
        return cli_usage_error(&cmd_prune_info, "--target-macs needs --method channel (zeros do not remove MACs)");
    if ((sensitivity || targeted) && strcmp(method, "magnitude") && strcmp(method, "channel"))
        return cli_usage_error(&cmd_prune_info, "--sensitivity and --target-* work with --method magnitude or channel");
    if ((include && !cli_check_regex(&cmd_prune_info, "include", include)) ||
        (exclude && !cli_check_regex(&cmd_prune_info, "exclude", exclude)))
        return EXIT_USAGE;
    if (out && !in_place && cli_same_file(in, out))
        return cli_error("%s: refusing to overwrite the input (use --in-place)", out);
    if (json_flag && json_file)
        return cli_usage_error(&cmd_prune_info, "--json and --json-file: give one");
    json = json_flag ? "-" : json_file;
    bool model_out = out && !dry_run && !sensitivity && !strcmp(out, "-");
    if ((model_out && !cli_claim_stdout(&cmd_prune_info, "-o -")) ||
        (json_flag && !cli_claim_stdout(&cmd_prune_info, "--json")) ||
        (json_file && !strcmp(json_file, "-") && !cli_claim_stdout(&cmd_prune_info, "--json-file -")) ||
        (report && !strcmp(report, "-") && !cli_claim_stdout(&cmd_prune_info, "--report -")))
        return EXIT_USAGE;
    if (model_out && !cli_binary_stdout_ok(&cmd_prune_info, force))
        return EXIT_USAGE;
    {
        const char *outs[] = {out, json, report};
        for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
            int orc = cli_check_output(outs[i]);
            if (orc)
                return orc;
        }
    }

    char spec[2048];
    if (passes) {
        snprintf(spec, sizeof spec, "%s", passes);
    } else {
        hpcz_error rerr;
        if (hpcz_prune_recipe_pipeline(&rp, spec, sizeof spec, &rerr))
            return cli_usage_error(&cmd_prune_info, "%s", rerr.msg);
    }
    hpcz_error err = {0};
    hpcz_pipeline *pl = hpcz_pipeline_parse(spec, &err);
    if (!pl)
        return cli_usage_error(&cmd_prune_info, "%s", err.msg);
    hpcz_model *m = hpcz_model_load(in, NULL, &err);
    if (!m) {
        hpcz_pipeline_free(pl);
        return cli_file_error(in, &err);
    }
    const char *mask_input = NULL;
    int grc = cli_check_gate_outputs(&cmd_prune_info, &gates, m);
    if (!grc)
        grc = cli_dims_apply(&cmd_prune_info, &dims, m);
    if (!grc && calib)
        grc = cli_calib_mask(&cmd_prune_info, m, calib_mask, &mask_input);
    if (grc) {
        hpcz_pipeline_free(pl);
        hpcz_model_free(m);
        return grc;
    }
    if (sensitivity || targeted) {
        const char *sdata = calib ? calib : data;
        char *tspec = NULL;
        int src = run_sensitivity(m, in, sdata, method, threads, op_types, include, exclude, sensitivity,
                                  target_params, target_macs, json, &tspec);
        if (src || sensitivity) {
            hpcz_pipeline_free(pl);
            hpcz_model_free(m);
            free(tspec);
            return src;
        }
        hpcz_pipeline_free(pl);
        snprintf(spec, sizeof spec, "%s%s", tspec, recal_bn ? ",recalibrate-bn" : "");
        free(tspec);
        pl = hpcz_pipeline_parse(spec, &err);
        if (!pl) {
            hpcz_model_free(m);
            return cli_error("internal: %s", err.msg);
        }
    }
    layers L = {.op_types = op_types ? op_types : "Conv,ConvTranspose,Gemm,MatMul"};
    hpcz_model *orig = NULL;
    /* with data, every run says how much the outputs moved */
    const char *delta_data = data ? data : calib && strncmp(calib, "random:", 7) ? calib : NULL;
    if ((evaluate || delta_data) && !(orig = hpcz_model_clone(m, &err))) {
        hpcz_pipeline_free(pl);
        hpcz_model_free(m);
        return cli_file_error(in, &err);
    }
    hpcz_model_summary before, after;
    memset(&after, 0, sizeof after);
    int rc = EXIT_OK;
    if (hpcz_model_summarize(m, &before, &err)) {
        hpcz_pipeline_free(pl);
        hpcz_model_free(m);
        return cli_file_error(in, &err);
    }
    hpcz_model_foreach_graph(m, scan_layers, &L);
    /* MACs per sample, counted from shapes (symbolic dimensions from the
     * data when given); the model is not run */
    hpcz_macs macs_before = {0}, macs_after = {0};
    bool have_macs = false;
    {
        hpcz_error merr;
        const char *md = data ? data : calib && strncmp(calib, "random:", 7) ? calib : NULL;
        have_macs = hpcz_model_macs(m, md, threads, &macs_before, &merr) == HPCZ_OK;
    }
    hpcz_pass_ctx ctx;
    hpcz_pass_ctx_init(&ctx);
    ctx.log = cli_log_note;
    ctx.data = calib;
    ctx.data_samples = (size_t)calib_samples;
    ctx.data_mask = mask_input;
    ctx.threads = threads;
    hpcz_status st = hpcz_pipeline_run(pl, m, &ctx, &err);
    hpcz_pipeline_free(pl);
    if (st) {
        rc = cli_file_error(in, &err);
        goto done;
    }
    L.after = 1;
    hpcz_model_foreach_graph(m, scan_layers, &L);
    if (hpcz_model_summarize(m, &after, &err)) {
        rc = cli_file_error(in, &err);
        goto done;
    }
    if (have_macs) {
        hpcz_error merr;
        const char *md = data ? data : calib && strncmp(calib, "random:", 7) ? calib : NULL;
        have_macs = hpcz_model_macs(m, md, threads, &macs_after, &merr) == HPCZ_OK;
    }
    bool macs_estimate = have_macs && (macs_before.estimate || macs_after.estimate);
    if (!dry_run && (st = hpcz_model_save(m, out, HPCZ_FORMAT_AUTO, &(hpcz_save_opts){.overwrite_inputs = in_place}, NULL, &err))) {
        rc = cli_file_error(out, &err);
        goto done;
    }
    if (cli_verbosity >= 0) {
        uint64_t nz_b = before.params - (uint64_t)before.zeros, nz_a = after.params - (uint64_t)after.zeros;
        fprintf(stderr, "hpcz prune: %s\n", spec);
        fprintf(stderr, "  parameters  %s -> %s\n", cli_count(before.params), cli_count(after.params));
        fprintf(stderr, "  non-zeros   %s -> %s (%.1f%% of the parameters are zero)\n", cli_count(nz_b),
                cli_count(nz_a), after.params ? 100.0 * (double)after.zeros / (double)after.params : 0.0);
        if (have_macs)
            fprintf(stderr, "  MACs        %s -> %s per sample (%.1f%%)%s\n", cli_count(macs_before.macs),
                    cli_count(macs_after.macs),
                    macs_before.macs ? 100.0 * (double)macs_after.macs / (double)macs_before.macs : 0.0,
                    macs_estimate ? " (estimate: Loop/If bodies counted once, or shapes known only at run time)" : "");
        fprintf(stderr, "  %-32s %-10s %10s %10s %8s %8s\n", "layer", "op", "weights", "after",
                "zeros", "after");
        for (size_t i = 0; i < L.n; i++) {
            const layer *l = &L.l[i];
            const char *nm = l->node->name && *l->node->name ? l->node->name : l->node->outputs[0]->name;
            fprintf(stderr, "  %-32.32s %-10s %10s %10s %7.1f%% %7.1f%%\n", nm, l->node->op_type,
                    cli_count((uint64_t)l->numel), cli_count((uint64_t)l->numel_after),
                    100.0 * (double)l->zeros_before / (double)l->numel,
                    l->numel_after ? 100.0 * (double)l->zeros_after / (double)l->numel_after : 0.0);
        }
        if (dry_run)
            fprintf(stderr, "  (not written: --dry-run)\n");
    }
    if (json) {
        FILE *jf = !strcmp(json, "-") ? stdout : NULL;
        hpcz_outfile *of = NULL;
        if (!jf) {
            if (!(of = hpcz_outfile_open(json, &err))) {
                rc = cli_file_error(json, &err);
                goto done;
            }
            jf = hpcz_outfile_stream(of);
        }
        hpcz_json j;
        hpcz_json_init(&j, jf);
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "schema", "hpcz.prune");
        hpcz_json_int(&j, "version", 1);
        hpcz_json_string(&j, "input", in);
        hpcz_json_string(&j, "output", dry_run ? NULL : out);
        hpcz_json_string(&j, "pipeline", spec);
        hpcz_json_object_begin(&j, "parameters");
        hpcz_json_uint(&j, "before", before.params);
        hpcz_json_uint(&j, "after", after.params);
        hpcz_json_object_end(&j);
        hpcz_json_object_begin(&j, "nonzeros");
        hpcz_json_uint(&j, "before", before.params - (uint64_t)before.zeros);
        hpcz_json_uint(&j, "after", after.params - (uint64_t)after.zeros);
        hpcz_json_object_end(&j);
        if (have_macs) {
            hpcz_json_object_begin(&j, "macs_per_sample");
            hpcz_json_uint(&j, "before", macs_before.macs);
            hpcz_json_uint(&j, "after", macs_after.macs);
            hpcz_json_bool(&j, "estimate", macs_estimate);
            hpcz_json_object_end(&j);
        } else {
            hpcz_json_null(&j, "macs_per_sample");
        }
        hpcz_json_array_begin(&j, "layers");
        for (size_t i = 0; i < L.n; i++) {
            const layer *l = &L.l[i];
            hpcz_json_object_begin(&j, NULL);
            hpcz_json_string(&j, "node", l->node->name);
            hpcz_json_string(&j, "op_type", l->node->op_type);
            hpcz_json_int(&j, "weights", l->numel);
            hpcz_json_int(&j, "weights_after", l->numel_after);
            hpcz_json_double(&j, "sparsity_before", (double)l->zeros_before / (double)l->numel);
            hpcz_json_double(&j, "sparsity_after",
                             l->numel_after ? (double)l->zeros_after / (double)l->numel_after : 0.0);
            hpcz_json_object_end(&j);
        }
        hpcz_json_array_end(&j);
        hpcz_json_object_end(&j);
        hpcz_json_finish(&j);
        if (of && hpcz_outfile_commit(of, &err))
            rc = cli_file_error(json, &err);
    }
    if (!evaluate && delta_data && !rc && cli_verbosity >= 0) {
        hpcz_compare_opts co = {0};
        co.threads = threads;
        hpcz_compare_result *cr = NULL;
        hpcz_error cerr;
        if (hpcz_compare(orig, m, delta_data, &co, &cr, &cerr) == HPCZ_OK) {
            for (size_t i = 0; i < cr->n_outputs; i++) {
                const hpcz_output_metrics *om = &cr->outputs[i];
                fprintf(stderr, "  output '%s' on %s (%zu samples): cosine %.6f, SQNR %.2f dB", om->name, delta_data,
                        cr->samples, om->cosine, om->sqnr_db);
                if (om->is_scores)
                    fprintf(stderr, ", top-1 agreement %.2f%%", 100 * om->top1_agreement);
                fputc('\n', stderr);
            }
            hpcz_compare_result_free(cr);
        } else {
            cli_warn("output delta not measured: %s", cerr.msg);
        }
    }
    if (evaluate && !rc) {
        cli_report_opts ro = {0};
        ro.a_path = in;
        ro.b_path = dry_run ? "(not written)" : out;
        ro.data = data;
        ro.labels = labels;
        ro.json = report;
        ro.threads = threads;
        ro.gates = &gates;
        rc = cli_report(orig, m, &ro);
    }
done:
    hpcz_model_free(orig);
    free(L.l);
    hpcz_model_summary_release(&before);
    hpcz_model_summary_release(&after);
    hpcz_model_free(m);
    return rc;
}
