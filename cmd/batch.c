/*
 * batch.c - `hpcz batch MODELS -o OUTDIR --recipe 'quantize --mode weight-only'`:
 * one recipe over a folder or manifest of models, N jobs at a time,
 * resumable, shardable across machines by an existing scheduler (Slurm job
 * arrays, GNU parallel) with --shard K/N, a summary table and JSON per shard.
 */
#include "jobs.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_OUTPUT = 'o',
    OPT_JOBS = 'j',
    OPT_FORCE = 'f',
    OPT_RECIPE = 256,
    OPT_SHARD,
    OPT_SHARD_INDEX,
    OPT_SHARD_COUNT,
    OPT_JSON,
    OPT_JSON_FILE,
    OPT_DRY,
};

static const cli_opt opts[] = {
    {"output", OPT_OUTPUT, required_argument, "DIR", "folder for the results (created if missing)",
     NULL, CLI_FILES_DIR},
    {"recipe", OPT_RECIPE, required_argument, "RECIPE",
     "the hpcz command run on each model, without the model and -o: e.g. 'quantize --mode "
     "weight-only' or 'prune --sparsity 0.5'; or @FILE to read it from a file"},
    {"jobs", OPT_JOBS, required_argument, "N", "models processed at once (default 1)"},
    {"shard", OPT_SHARD, required_argument, "K/N",
     "process only the K-th of N equal shares of the sorted model list (K from 1), for Slurm job "
     "arrays or GNU parallel; shares are disjoint and cover every model"},
    {"shard-index", OPT_SHARD_INDEX, required_argument, "I",
     "the same share counted from 0, with --shard-count N: --shard-index $SLURM_ARRAY_TASK_ID for "
     "--array=0-(N-1)"},
    {"shard-count", OPT_SHARD_COUNT, required_argument, "N", "how many shares --shard-index splits the list into"},
    {"force", OPT_FORCE, no_argument, NULL, "redo models already done (by default a rerun resumes)"},
    {"json", OPT_JSON, no_argument, NULL,
     "print the summary as JSON (schema hpcz.batch 1) on stdout instead of the table (and write "
     "no summary file)"},
    {"json-file", OPT_JSON_FILE, required_argument, "FILE",
     "write the JSON summary to FILE (default OUTDIR/batch-summary[-K-of-N].json)", NULL, "json"},
    {"dry-run", OPT_DRY, no_argument, NULL, "list what would run; run nothing"},
    CLI_DEVICE_OPTION,
    {"quiet", 'q', no_argument, NULL, "no table on stdout"},
    {0},
};

static const cli_exit batch_exits[] = {
    {EXIT_OK, "every model succeeded or was done before"},
    {EXIT_FAIL, "a model failed (its log says why), or the batch itself could not run"},
    {EXIT_USAGE, "usage error: bad option or value, missing argument, a recipe hpcz batch cannot run"},
    {EXIT_THRESHOLD, "a recipe's gate broke on a model, and none failed"},
    CLI_EXIT_END,
};

const cli_cmd_info cmd_batch_info = {
    "batch", "MODELS -o OUTDIR --recipe RECIPE [options]",
    "Run one recipe over many models: MODELS is a folder (every *.onnx and *.hpcz in it and in its "
    "subfolders) or a manifest file (one model path per line, '#' comments, relative to the manifest).",
    "Each model's output goes to OUTDIR/NAME.onnx and its log to OUTDIR/NAME.log, where NAME is its "
    "path below MODELS without the extension, so OUTDIR mirrors the tree. A model whose "
    "output and record (OUTDIR/.hpcz-batch/NAME.json) exist and whose input has not changed is "
    "skipped, so an interrupted batch resumes where it stopped.",
    opts,
    .exits = batch_exits,
    .max_operands = 1,
    .operand_files = CLI_FILES_ANY,
    .legacy = CLI_LEGACY_JSON_FILE,
};

/* Workers still running when batch is told to stop: they go with it. */
static void on_stop(int sig)
{
    hpcz_batch_stop_workers();
    hpcz_outfile_cleanup_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* --dry-run: each command as a shell would take it back */
static void print_command(void *ctx, char *const *av)
{
    (void)ctx;
    for (int w = 0; av[w]; w++) {
        const char *a = av[w];
        bool plain = *a && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789-_./=:,+@%") == strlen(a);
        if (plain) {
            fputs(a, stdout);
        } else {
            putchar('\'');
            for (; *a; a++)
                fputs(*a == '\'' ? "'\\''" : (char[]){*a, 0}, stdout);
            putchar('\'');
        }
        putchar(av[w + 1] ? ' ' : '\n');
    }
}

static void job_done(void *ctx, const hpcz_batch_job *j, const hpcz_batch_state *s)
{
    (void)ctx;
    if (cli_verbosity >= 0 && isatty(STDERR_FILENO))
        fprintf(stderr, "hpcz batch: %s: %s (%.1f s)\n", j->name, hpcz_batch_status_name(s->status), s->seconds);
}

static void record_warning(void *ctx, const char *msg)
{
    (void)ctx;
    cli_warn("%s", msg);
}

static void print_table(const hpcz_batch_result *r)
{
    int w = 32;
    for (size_t i = r->lo; i < r->hi; i++)
        w = (int)strlen(r->list.jobs[i].name) > w ? (int)strlen(r->list.jobs[i].name) : w;
    w = w > 72 ? 72 : w;
    printf("%-*s %-12s %12s %12s %9s\n", w, "model", "status", "input", "output", "seconds");
    for (size_t i = r->lo; i < r->hi; i++) {
        const hpcz_batch_job *j = &r->list.jobs[i];
        const hpcz_batch_state *s = &r->state[i];
        printf("%-*.*s %-12s %12s %12s %9.2f\n", w, w, j->name, hpcz_batch_status_name(s->status),
               cli_bytes(j->in_bytes), s->out_bytes ? cli_bytes(s->out_bytes) : "-", s->seconds);
    }
    printf("%zu ok, %zu done before, %zu gate broken, %zu failed (shard %llu/%llu: %zu of %zu models, %.1f s)\n",
           r->n_ok, r->n_skipped, r->n_gate, r->n_failed, (unsigned long long)r->shard_index + 1,
           (unsigned long long)r->shard_count, r->hi - r->lo, r->list.n, r->seconds);
}

int cmd_batch(int argc, char **argv)
{
    const char *outdir = NULL, *recipe = NULL, *json = NULL, *device = NULL;
    long long jobs_n = 1, shard_k = 1, shard_n = 1, shard_i = -1, shard_c = -1;
    int force = 0, dry = 0, shard_form = 0;
    bool json_flag = false;
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_batch_info)) != -1) {
        switch (c) {
        case 'h':
            return EXIT_OK;
        case OPT_OUTPUT:
            outdir = optarg;
            break;
        case OPT_RECIPE:
            recipe = optarg;
            break;
        case CLI_OPT_DEVICE: {
            int rc = cli_device_option(&cmd_batch_info, optarg);
            if (rc)
                return rc;
            device = optarg; /* passed on to the recipe's commands */
            break;
        }
        case OPT_JOBS:
            if (!cli_parse_int(&cmd_batch_info, "jobs", optarg, 1, 256, &jobs_n))
                return EXIT_USAGE;
            break;
        case OPT_SHARD: {
            uint64_t index, count;
            hpcz_error err;
            if (hpcz_batch_shard_parse(optarg, &index, &count, &err))
                return cli_usage_error(&cmd_batch_info, "--shard: %s", err.msg);
            shard_k = (long long)index + 1;
            shard_n = (long long)count;
            shard_form |= 1;
            break;
        }
        case OPT_SHARD_INDEX:
            if (!cli_parse_int(&cmd_batch_info, "shard-index", optarg, 0, 999999, &shard_i))
                return EXIT_USAGE;
            shard_form |= 2;
            break;
        case OPT_SHARD_COUNT:
            if (!cli_parse_int(&cmd_batch_info, "shard-count", optarg, 1, 1000000, &shard_c))
                return EXIT_USAGE;
            shard_form |= 4;
            break;
        case OPT_FORCE:
            force = 1;
            break;
        case OPT_JSON:
            json_flag = true;
            break;
        case OPT_JSON_FILE:
            json = optarg;
            break;
        case OPT_DRY:
            dry = 1;
            break;
        case 'q':
            cli_verbosity = -1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    const char *src = cli_operand(&cmd_batch_info, argc, argv, "MODELS (a folder or a manifest)");
    if (!src)
        return EXIT_USAGE;
    if (!outdir)
        return cli_usage_error(&cmd_batch_info, "missing -o OUTDIR");
    if (!recipe)
        return cli_usage_error(&cmd_batch_info, "missing --recipe");
    if (json_flag && json)
        return cli_usage_error(&cmd_batch_info, "--json and --json-file: give one");
    if ((shard_form & 1) && (shard_form & 6))
        return cli_usage_error(&cmd_batch_info, "--shard and --shard-index/--shard-count: give one form");
    if ((shard_form & 6) && (shard_form & 6) != 6)
        return cli_usage_error(&cmd_batch_info, "--shard-index and --shard-count go together");
    if (shard_form & 6) {
        if (shard_i >= shard_c)
            return cli_usage_error(&cmd_batch_info, "--shard-index %lld: must be below --shard-count %lld",
                                   shard_i, shard_c);
        shard_k = shard_i + 1;
        shard_n = shard_c;
    }
    if (json_flag)
        json = "-";
    hpcz_batch_opts bo = {.src = src, .outdir = outdir, .recipe = recipe, .device = device, .jobs = (int)jobs_n,
                          .shard_index = (uint64_t)shard_k - 1, .shard_count = (uint64_t)shard_n,
                          .force = force, .dry_run = dry, .command = print_command, .progress = job_done,
                          .warn = record_warning};
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    hpcz_batch_result r;
    hpcz_error err;
    if (hpcz_batch_run(&bo, &r, &err)) {
        hpcz_batch_result_release(&r);
        return err.status == HPCZ_ERR_USAGE ? cli_usage_error(&cmd_batch_info, "%s", err.msg)
                                            : cli_error("%s", err.msg);
    }
    int worst = r.n_failed ? EXIT_FAIL : r.n_gate ? EXIT_THRESHOLD : EXIT_OK;
    if (dry) {
        hpcz_batch_result_release(&r);
        return EXIT_OK;
    }
    if (cli_verbosity >= 0 && strcmp(json ? json : "", "-")) /* --json: the JSON instead */
        print_table(&r);
    char jp[4096];
    if (!json)
        hpcz_batch_summary_path(&bo, jp, sizeof jp), json = jp;
    hpcz_outfile *of;
    FILE *jf = cli_out_open(json, &of);
    if (jf) {
        hpcz_batch_write_json(jf, recipe, &r);
        if (cli_out_commit(json, of))
            worst = EXIT_FAIL;
    } else {
        worst = EXIT_FAIL;
    }
    hpcz_batch_result_release(&r);
    return worst;
}
