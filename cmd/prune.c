/*
 * prune.c - `hpcz prune IN -o OUT`: magnitude or N:M pruning as a preset
 * pipeline, with parameters, non-zeros and per-layer sparsity before/after.
 */
#include "jobs.h"

#include <stdlib.h>
#include <string.h>

enum {
    OPT_OUTPUT = 'o', OPT_METHOD = 256, OPT_SPARSITY, OPT_SCOPE, OPT_PATTERN, OPT_MIN_PARAMS, OPT_INCLUDE,
    OPT_EXCLUDE, OPT_OP_TYPES, OPT_KEEP_FIRST_LAST, OPT_FOLD_BN, OPT_PASSES, OPT_JSON, OPT_IN_PLACE,
    OPT_DRY_RUN, OPT_RATIO, OPT_CRITERION, OPT_DATA, OPT_LABELS, OPT_REPORT, OPT_THREADS, OPT_RECONSTRUCT,
    OPT_NO_RECONSTRUCT, OPT_CALIB, OPT_CALIB_SAMPLES, OPT_CALIB_MASK, OPT_RECAL_BN, OPT_SENSITIVITY,
    OPT_TARGET_PARAMS, OPT_TARGET_MACS, OPT_JSON_FILE, OPT_FORCE = 'f',
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
     "each layer to reproduce its output on the first three quarters of the --calib samples (least "
     "squares with the layer's input Gram matrix, SparseGPT-style, damped more where a layer has few "
     "rows for its inputs), then restore each output's mean through the bias, and put magnitude "
     "pruning back on layers where the model's output on the last quarter, held out, is closer with "
     "it (below 8 samples nothing is held out); channel "
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

/* --sensitivity: the table and/or its JSON; no model written. */
static int sensitivity(hpcz_model *m, const char *in, const char *data, const hpcz_prune_opts *o, const char *json)
{
    hpcz_error err = {0};
    const hpcz_prune_recipe *rp = &o->recipe;
    hpcz_sensitivity_opts so = {.method = rp->method, .op_types = rp->op_types, .include = rp->include,
                                .exclude = rp->exclude, .threads = o->threads};
    hpcz_sensitivity *s = NULL;
    if (hpcz_sensitivity_run(m, data, &so, &s, &err))
        return cli_file_error(err.status == HPCZ_ERR_IO || err.status == HPCZ_ERR_PARSE ? data : in, &err);
    int rc = EXIT_OK;
    if (!json || strcmp(json, "-")) /* --json: the JSON instead of the table */
        hpcz_sensitivity_write_text(stdout, s, data);
    hpcz_outfile *of;
    FILE *jf = json ? cli_out_open(json, &of) : NULL;
    if (jf) {
        hpcz_sensitivity_write_json(jf, s, rp->method);
        rc = cli_out_commit(json, of);
    } else if (json) {
        rc = EXIT_FAIL;
    }
    hpcz_sensitivity_free(s);
    return rc;
}

int cmd_prune(int argc, char **argv)
{
    cli_dims dims = {0};
    hpcz_prune_opts o;
    hpcz_prune_opts_init(&o);
    hpcz_prune_recipe *rp = &o.recipe;
    const char *out = NULL, *json = NULL, *json_file = NULL, *labels = NULL, *report = NULL;
    int dry_run = 0, force = 0, json_flag = 0, reconstruct = 0, no_reconstruct = 0, sens = 0;
    long long n;
    cli_gates gates = {0};
    const cli_store store[] = {
        CLI_TEXT(OPT_OUTPUT, &out), CLI_TEXT(OPT_METHOD, &rp->method), CLI_TEXT(OPT_CRITERION, &rp->criterion),
        CLI_TEXT(OPT_SCOPE, &rp->scope), CLI_TEXT(OPT_PATTERN, &rp->pattern), CLI_TEXT(OPT_INCLUDE, &rp->include),
        CLI_TEXT(OPT_EXCLUDE, &rp->exclude), CLI_TEXT(OPT_OP_TYPES, &rp->op_types), CLI_TEXT(OPT_PASSES, &o.passes),
        CLI_TEXT(OPT_JSON_FILE, &json_file), CLI_TEXT(OPT_DATA, &o.data), CLI_TEXT(OPT_CALIB, &o.calib),
        CLI_TEXT(OPT_CALIB_MASK, &o.calib_mask), CLI_TEXT(OPT_LABELS, &labels), CLI_TEXT(OPT_REPORT, &report),
        CLI_FLAG(OPT_KEEP_FIRST_LAST, &rp->keep_first_last, 1), CLI_FLAG(OPT_FOLD_BN, &rp->fold, 1),
        CLI_FLAG(OPT_JSON, &json_flag, 1), CLI_FLAG(OPT_FORCE, &force, 1), CLI_FLAG(OPT_DRY_RUN, &dry_run, 1),
        CLI_FLAG(OPT_IN_PLACE, &o.in_place, 1), CLI_FLAG(OPT_RECONSTRUCT, &reconstruct, 1),
        CLI_FLAG(OPT_NO_RECONSTRUCT, &no_reconstruct, 1), CLI_FLAG(OPT_RECAL_BN, &rp->recalibrate_bn, 1),
        CLI_FLAG(OPT_SENSITIVITY, &sens, 1), CLI_FLAG('v', &cli_verbosity, 1), CLI_FLAG('q', &cli_verbosity, -1),
    };
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_prune_info)) != -1) {
        if (cli_store_option(store, sizeof store / sizeof store[0], c, optarg))
            continue;
        switch (c) {
        case 'h':
            return EXIT_OK;
        case OPT_SPARSITY:
        case OPT_RATIO: {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v >= 0 && v < 1))
                return cli_usage_error(&cmd_prune_info, "--%s: '%s' is not a number in [0, 1)",
                                       c == OPT_SPARSITY ? "sparsity" : "ratio", optarg);
            *(c == OPT_SPARSITY ? &rp->sparsity : &rp->ratio) = v;
            break;
        }
        case OPT_MIN_PARAMS:
            if (!cli_parse_int(&cmd_prune_info, "min-params", optarg, 0, 1000000000000LL, &n))
                return EXIT_USAGE;
            rp->min_params = n;
            break;
        case OPT_TARGET_PARAMS:
            if (!cli_parse_int(&cmd_prune_info, "target-params", optarg, 0, (long long)1 << 50, &n))
                return EXIT_USAGE;
            o.target_params = n;
            break;
        case OPT_TARGET_MACS:
            if (!cli_parse_int(&cmd_prune_info, "target-macs", optarg, 0, (long long)1 << 60, &n))
                return EXIT_USAGE;
            o.target_macs = n;
            break;
        case CLI_OPT_DIM:
            if (!cli_dims_option(&cmd_prune_info, &dims, optarg))
                return EXIT_USAGE;
            break;
        case OPT_CALIB_SAMPLES:
            if (!cli_parse_int(&cmd_prune_info, "calib-samples", optarg, 1, 100000000, &n))
                return EXIT_USAGE;
            o.calib_samples = (size_t)n;
            break;
        case OPT_THREADS:
            if (!cli_parse_int(&cmd_prune_info, "threads", optarg, 0, 1024, &n))
                return EXIT_USAGE;
            o.threads = (int)n;
            break;
        case CLI_OPT_DEVICE: {
            int rc = cli_device_option(&cmd_prune_info, optarg);
            if (rc)
                return rc;
            break;
        }
        default:
            if (c >= CLI_OPT_GATE_FIRST && c <= CLI_OPT_GATE_LAST) {
                if (!cli_gates_option(&cmd_prune_info, &gates, c, optarg))
                    return EXIT_USAGE;
                break;
            }
            return EXIT_USAGE;
        }
    }
    const char *calib = o.calib, *method = rp->method;
    if (!o.data && calib && strncmp(calib, "random:", 7))
        o.data = calib;
    if (o.calib_mask && !calib)
        return cli_usage_error(&cmd_prune_info, "--calib-mask selects tokens of the calibration data: give --calib DATA");
    if (reconstruct && no_reconstruct)
        return cli_usage_error(&cmd_prune_info, "--reconstruct and --no-reconstruct: give one");
    bool targeted = o.target_params >= 0 || o.target_macs >= 0;
    /* what the options mean: the library's recipe (lib/passes/recipe.c) */
    rp->reconstruct = reconstruct ? 1 : no_reconstruct ? 0 : -1;
    hpcz_error err = {0};
    if (hpcz_prune_check(&o, &err))
        return cli_usage_error(&cmd_prune_info, "%s", err.msg);
    bool evaluate = report || gates.n;
    if (evaluate && !o.data)
        return cli_usage_error(&cmd_prune_info, "--report and the gates need --data DATA");
    const char *in = cli_operand(&cmd_prune_info, argc, argv, "IN");
    if (!in)
        return EXIT_USAGE;
    if (!out && !dry_run && !sens)
        return cli_usage_error(&cmd_prune_info, "missing -o OUT (or --dry-run)");
    if ((sens || targeted) && !calib && !o.data)
        return cli_usage_error(&cmd_prune_info, "--sensitivity and --target-* measure on data: --calib DIR");
    if (o.target_macs >= 0 && strcmp(method, "channel"))
        return cli_usage_error(&cmd_prune_info, "--target-macs needs --method channel (zeros do not remove MACs)");
    if ((sens || targeted) && strcmp(method, "magnitude") && strcmp(method, "channel"))
        return cli_usage_error(&cmd_prune_info, "--sensitivity and --target-* work with --method magnitude or channel");
    if ((rp->include && !cli_check_regex(&cmd_prune_info, "include", rp->include)) ||
        (rp->exclude && !cli_check_regex(&cmd_prune_info, "exclude", rp->exclude)))
        return EXIT_USAGE;
    cli_outputs co = {.in = in, .out = out, .json_file = json_file, .report = report, .model_out = !dry_run && !sens,
                      .json_flag = json_flag, .force = force, .in_place = o.in_place};
    int rc = cli_check_outputs(&cmd_prune_info, &co, &json);
    hpcz_model *m = rc ? NULL : cli_job_load(&cmd_prune_info, in, &gates, &dims, calib, o.calib_mask, NULL, &rc);
    if (!m)
        return rc;
    if (sens) {
        rc = sensitivity(m, in, calib ? calib : o.data, &o, json);
        hpcz_model_free(m);
        return rc;
    }
    o.keep_original = evaluate;
    /* with data, every run says how much the outputs moved */
    o.measure_delta = !evaluate && cli_verbosity >= 0;
    o.output = dry_run ? NULL : out;
    o.hooks = cli_job_hooks(false);
    hpcz_prune_result res;
    if (hpcz_prune_run(m, &o, &res, &err))
        rc = cli_job_error(&err);
    if (!rc && cli_verbosity >= 0)
        hpcz_prune_write_text(stderr, &res, dry_run);
    hpcz_outfile *of;
    FILE *jf = !rc && json ? cli_out_open(json, &of) : NULL;
    if (jf) {
        hpcz_prune_write_json(jf, in, o.output, &res);
        rc = cli_out_commit(json, of);
    } else if (!rc && json) {
        rc = EXIT_FAIL;
    }
    if (!rc && res.delta)
        hpcz_prune_write_delta(stderr, res.delta, o.data);
    else if (!rc && res.delta_error[0])
        cli_warn("output delta not measured: %s", res.delta_error);
    if (!rc && evaluate) {
        cli_report_opts ro = {.a_path = in, .b_path = dry_run ? "(not written)" : out, .data = o.data,
                              .labels = labels, .json = report, .threads = o.threads, .gates = &gates};
        rc = cli_report(res.orig, m, &ro);
    }
    hpcz_prune_result_release(&res);
    hpcz_model_free(m);
    return rc;
}
