/*
 * calibrate.c - `hpcz calibrate MODEL --calib DATA -o table.json`: measure
 * activation ranges once, reuse them with `hpcz quantize --calib-table`.
 */
#include "jobs.h"

#include <string.h>

enum {
    OPT_OUTPUT = 'o', OPT_CALIB = 256, OPT_SAMPLES, OPT_METHOD, OPT_NO_FOLD, OPT_THREADS, OPT_CALIB_MASK,
};

static const cli_opt opts[] = {
    {"output", OPT_OUTPUT, required_argument, "FILE",
     "write the table (JSON, schema hpcz.calibration 1) to FILE ('-': stdout)", NULL, "json"},
    {"calib", OPT_CALIB, required_argument, "DATA",
     "a folder of .npy (INPUT.npy with a batch axis, or INPUT_K.npy per sample), test_data_set_* "
     "folders, a .npy file, or random:N", NULL, "npy"},
    {"calib-samples", OPT_SAMPLES, required_argument, "N", "use at most N samples"},
    CLI_CALIB_MASK_OPTION(OPT_CALIB_MASK),
    CLI_DIM_OPTION,
    {"calib-method", OPT_METHOD, required_argument, "M",
     "minmax (default), mean-minmax (the mean of each sample's min and max), moving-minmax, "
     "percentile:99.99, entropy or mse",
     "minmax|mean-minmax|moving-minmax|entropy|mse"},
    {"no-fold", OPT_NO_FOLD, no_argument, NULL,
     "measure the model as it is (by default BatchNorm is folded and no-op nodes removed first, "
     "as hpcz quantize does)"},
    {"threads", OPT_THREADS, required_argument, "N", "threads (default: all cores)"},
    CLI_DEVICE_OPTION,
    {"quiet", 'q', no_argument, NULL, "no notes on stderr"},
    {0},
};

const cli_cmd_info cmd_calibrate_info = {
    "calibrate", "MODEL --calib DATA -o TABLE [options]",
    "Run calibration data through the model with hpcz's runtime and write the range of every "
    "float tensor, so that CI can cache it and 'hpcz quantize --calib-table TABLE' skip the run.",
    "Statistics stream: memory does not grow with the number of samples. The same data and "
    "options give the same table whatever --threads.",
    opts,
    .exits = cli_exits_basic,
    .max_operands = 1,
    .operand_files = CLI_FILES_MODEL,
    .legacy = 0,
};

int cmd_calibrate(int argc, char **argv)
{
    cli_dims dims = {0};
    const char *out = NULL, *data = NULL, *method = "minmax";
    long long samples = 0, threads = 0;
    const char *mask = NULL;
    int fold = 1;
    const cli_store store[] = {
        CLI_TEXT(OPT_OUTPUT, &out), CLI_TEXT(OPT_CALIB, &data), CLI_TEXT(OPT_METHOD, &method),
        CLI_TEXT(OPT_CALIB_MASK, &mask), CLI_FLAG(OPT_NO_FOLD, &fold, 0), CLI_FLAG('q', &cli_verbosity, -1),
    };
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_calibrate_info)) != -1) {
        if (cli_store_option(store, sizeof store / sizeof store[0], c, optarg))
            continue;
        switch (c) {
        case 'h':
            return EXIT_OK;
        case CLI_OPT_DIM:
            if (!cli_dims_option(&cmd_calibrate_info, &dims, optarg))
                return EXIT_USAGE;
            break;
        case OPT_SAMPLES:
            if (!cli_parse_int(&cmd_calibrate_info, "calib-samples", optarg, 1, 100000000, &samples))
                return EXIT_USAGE;
            break;
        case OPT_THREADS:
            if (!cli_parse_int(&cmd_calibrate_info, "threads", optarg, 0, 1024, &threads))
                return EXIT_USAGE;
            break;
        case CLI_OPT_DEVICE: {
            int rc = cli_device_option(&cmd_calibrate_info, optarg);
            if (rc)
                return rc;
            break;
        }
        default:
            return EXIT_USAGE;
        }
    }
    const char *in = cli_operand(&cmd_calibrate_info, argc, argv, "MODEL");
    if (!in)
        return EXIT_USAGE;
    if (!data)
        return cli_usage_error(&cmd_calibrate_info, "missing --calib DATA");
    if (!out)
        return cli_usage_error(&cmd_calibrate_info, "missing -o TABLE");
    hpcz_calib_opts co = {0};
    hpcz_error err = {0};
    if (hpcz_calib_method_parse(method, &co, &err))
        return cli_usage_error(&cmd_calibrate_info, "--calib-method: %s", err.msg);
    co.bits = 8;
    co.threads = (int)threads;
    int rc;
    hpcz_model *m = cli_job_load(&cmd_calibrate_info, in, NULL, &dims, data, mask, &co.mask_input, &rc);
    if (!m)
        return rc;
    hpcz_job_hooks hooks = cli_job_hooks(false);
    hpcz_calib_table *t = NULL;
    if (hpcz_calibrate_model(m, data, (size_t)samples, &co, fold, &hooks, &t, &err))
        rc = cli_job_error(&err);
    else if (hpcz_calib_table_save(t, out, &err))
        rc = cli_file_error(out, &err);
    else
        cli_note("calibrate: %zu tensors, %s over %zu sample%s%s, %s of statistics", t->n, t->method, t->samples,
                 t->samples == 1 ? "" : "s", t->random ? " of random data (a proxy)" : "", cli_bytes(t->hist_bytes));
    hpcz_calib_table_free(t);
    hpcz_model_free(m);
    return rc;
}
