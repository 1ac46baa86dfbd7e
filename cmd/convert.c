/*
 * convert.c - `hpcz convert IN -o OUT`: rewrite a model.
 */
#include "jobs.h"

#include <string.h>
#include <sys/stat.h>

enum {
    OPT_OUTPUT = 'o', OPT_EXTERNAL = 256, OPT_EXTERNAL_NAME, OPT_IN_PLACE, OPT_PASSES, OPT_FORMAT,
    OPT_ZSTD_LEVEL, OPT_FORCE = 'f',
};

static const cli_opt opts[] = {
    {"output", OPT_OUTPUT, required_argument, "FILE", "write the model to FILE ('-': stdout)", NULL,
     CLI_FILES_MODEL},
    {"force", OPT_FORCE, no_argument, NULL, "write the model to standard output even when it is a terminal"},
    {"external-data", OPT_EXTERNAL, optional_argument, "SIZE",
     "store tensors of at least SIZE bytes (default 1K) in an external data file next to the "
     "output, as models over 2 GB must be"},
    {"external-name", OPT_EXTERNAL_NAME, required_argument, "NAME",
     "name of the external data file (default: OUTPUT.data)"},
    {"format", OPT_FORMAT, required_argument, "onnx|hpcz",
     "output format (default: hpcz when OUT ends in .hpcz, else onnx; needed for -o - as hpcz)",
     "onnx|hpcz"},
    {"zstd-level", OPT_ZSTD_LEVEL, required_argument, "N",
     ".hpcz: zstd level 1..19 for compressed payloads (default 3, fast), 0: no zstd"},
    {"in-place", OPT_IN_PLACE, no_argument, NULL,
     "allow the output to replace the input (without -o: write back to IN)"},
    {"passes", OPT_PASSES, required_argument, "PIPELINE",
     "run passes on the model before writing it, e.g. 'fold-bn,eliminate,dce' (hpcz passes "
     "lists them)"},
    {"verbose", 'v', no_argument, NULL, "say what each pass did (on stderr)"},
    {"quiet", 'q', no_argument, NULL, "no notes or warnings on stderr"},
    {0},
};

const cli_cmd_info cmd_convert_info = {
    "convert", "IN -o OUT [options]",
    "Read a model and write it back out. An ONNX model that goes through unchanged keeps every "
    "field: ops, attributes, metadata, opsets, doc strings, functions, external data.",
    "IN and OUT are ONNX or .hpcz files (IN is told by its first bytes, OUT by its extension "
    "or --format); '-' reads standard input or writes standard output. A .hpcz file holds the "
    "ONNX model with each tensor stored raw, zstd-compressed or sparse, whichever is smallest "
    "(formats/hpcz/FORMAT.md); converting it back gives the same ONNX model. Tensors "
    "stored in external files are read through mmap and written inline unless --external-data "
    "is given. The output is written to a temporary file and renamed, so a failed run never "
    "leaves a partial file.",
    opts,
    .exits = cli_exits_basic,
    .max_operands = 1,
    .operand_files = CLI_FILES_MODEL,
    .legacy = 0,
};


int cmd_convert(int argc, char **argv)
{
    const char *out = NULL, *ext_name = NULL, *passes = NULL;
    int in_place = 0, force = 0;
    hpcz_save_opts so = {0};
    hpcz_hpcz_opts ho = {0};
    hpcz_format fmt = HPCZ_FORMAT_AUTO;
    const cli_store store[] = {
        CLI_TEXT(OPT_OUTPUT, &out), CLI_TEXT(OPT_EXTERNAL_NAME, &ext_name), CLI_TEXT(OPT_PASSES, &passes),
        CLI_FLAG(OPT_IN_PLACE, &in_place, 1), CLI_FLAG(OPT_FORCE, &force, 1), CLI_FLAG('v', &cli_verbosity, 1),
        CLI_FLAG('q', &cli_verbosity, -1),
    };
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_convert_info)) != -1) {
        if (cli_store_option(store, sizeof store / sizeof store[0], c, optarg))
            continue;
        switch (c) {
        case 'h':
            return EXIT_OK;
        case OPT_EXTERNAL: {
            unsigned long long sz = 1024;
            if (optarg && !cli_parse_size(&cmd_convert_info, "external-data", optarg, &sz))
                return EXIT_USAGE;
            so.external = 1;
            so.external_threshold = sz ? (size_t)sz : 1;
            break;
        }
        case OPT_FORMAT:
            if (!strcmp(optarg, "onnx"))
                fmt = HPCZ_FORMAT_ONNX;
            else if (!strcmp(optarg, "hpcz"))
                fmt = HPCZ_FORMAT_HPCZ;
            else
                return cli_usage_error(&cmd_convert_info, "--format: '%s' is not onnx or hpcz", optarg);
            break;
        case OPT_ZSTD_LEVEL: {
            long long lv;
            if (!cli_parse_int(&cmd_convert_info, "zstd-level", optarg, 0, 19, &lv))
                return EXIT_USAGE;
            ho.zstd_level = lv ? (int)lv : -1;
            break;
        }
        default:
            return EXIT_USAGE;
        }
    }
    const char *in = cli_operand(&cmd_convert_info, argc, argv, "IN");
    if (!in)
        return EXIT_USAGE;
    if (!out) {
        if (!in_place)
            return cli_usage_error(&cmd_convert_info, "missing -o OUT (or --in-place to rewrite IN)");
        if (!strcmp(in, "-"))
            return cli_usage_error(&cmd_convert_info, "--in-place needs a file, not standard input");
        out = in;
    }
    if (fmt == HPCZ_FORMAT_AUTO)
        fmt = hpcz_format_from_path(out);
    if (fmt == HPCZ_FORMAT_HPCZ && so.external)
        return cli_usage_error(&cmd_convert_info, "--external-data is for ONNX output: a .hpcz file holds "
                                      "every tensor");
    if (ext_name && !so.external)
        return cli_usage_error(&cmd_convert_info, "--external-name needs --external-data");
    if (so.external && !strcmp(out, "-"))
        return cli_usage_error(&cmd_convert_info, "--external-data needs an output file, not standard output");
    if (!strcmp(out, "-") && !cli_binary_stdout_ok(&cmd_convert_info, force))
        return EXIT_USAGE;
    if (ext_name && strchr(ext_name, '/'))
        return cli_usage_error(&cmd_convert_info, "--external-name: '%s' must be a plain file name", ext_name);
    so.external_name = ext_name;
    so.overwrite_inputs = in_place;
    if (!in_place && (hpcz_same_file(in, out) || (strcmp(in, "-") && !strcmp(in, out))))
        return cli_error("%s: refusing to overwrite the input (use --in-place)", out);

    if (passes) {
        /* a bad pipeline is a usage error: say so before reading anything */
        hpcz_error perr;
        hpcz_pipeline *pl = hpcz_pipeline_parse(passes, &perr);
        if (!pl)
            return cli_usage_error(&cmd_convert_info, "--passes: %s", perr.msg);
        hpcz_pipeline_free(pl);
    }
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(in, NULL, &err);
    if (!m)
        return cli_file_error(in, &err);
    if (passes) {
        int rc = cli_run_pipeline(m, passes, in);
        if (rc) {
            hpcz_model_free(m);
            return rc;
        }
    }
    hpcz_status st = hpcz_model_save(m, out, fmt, &so, &ho, &err);
    hpcz_model_free(m);
    if (st)
        return cli_file_error(out, &err);
    return EXIT_OK;
}
