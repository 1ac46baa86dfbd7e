/*
 * batch.c - `hpcz batch MODELS -o OUTDIR --recipe 'quantize --mode weight-only'`:
 * one recipe over a folder or manifest of models, N jobs at a time,
 * resumable, shardable across machines by an existing scheduler (Slurm job
 * arrays, GNU parallel) with --shard K/N, a summary table and JSON per shard.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

/* What running a job left: the list itself (lib/batch) holds its input. */
typedef struct run_state {
    pid_t pid;
    int status; /* exit status, -1 not run, -2 skipped (done before) */
    double t0, seconds;
    uint64_t out_bytes;
} run_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Splits a recipe into argv words: single and double quotes group. */
static int split_words(char *s, char **argv, int max)
{
    int n = 0;
    while (*s && n < max) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        if (!*s)
            break;
        char *w = s, *o = s;
        char q = 0;
        while (*s && (q || (*s != ' ' && *s != '\t' && *s != '\n'))) {
            if (!q && (*s == '\'' || *s == '"')) {
                q = *s++;
                continue;
            }
            if (q && *s == q) {
                q = 0;
                s++;
                continue;
            }
            *o++ = *s++;
        }
        if (*s)
            s++;
        *o = 0;
        argv[n++] = w;
    }
    return n;
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void hex64(char out[17], uint64_t v)
{
    snprintf(out, 17, "%016llx", (unsigned long long)v);
}

/* Workers still running when batch is told to stop: they go with it. */
static volatile pid_t live[256];

static void on_stop(int sig)
{
    for (int i = 0; i < 256; i++)
        if (live[i] > 0)
            kill(live[i], SIGTERM);
    hpcz_outfile_cleanup_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void live_set(pid_t pid, pid_t to)
{
    for (int i = 0; i < 256; i++)
        if (live[i] == pid) {
            live[i] = to;
            return;
        }
}

static const char *status_word(int st)
{
    switch (st) {
    case -2:
        return "done before";
    case -1:
        return "not run";
    case 0:
        return "ok";
    case 3:
        return "gate broken";
    default:
        return "failed";
    }
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
            char *e1, *e2;
            errno = 0;
            shard_k = strtoll(optarg, &e1, 10);
            shard_n = *e1 == '/' ? strtoll(e1 + 1, &e2, 10) : 0;
            if (errno == ERANGE || shard_n > 1000000)
                return cli_usage_error(&cmd_batch_info, "--shard: '%s': N is at most 1000000", optarg);
            if (*e1 == '/' && !*e2 && shard_k == 0 && shard_n >= 1)
                return cli_usage_error(&cmd_batch_info,
                                       "--shard: '%s': K counts from 1; for ids from 0 (Slurm's "
                                       "--array=0-%lld) use --shard-index I --shard-count %lld",
                                       optarg, shard_n - 1, shard_n);
            if (*e1 != '/' || *e2 || shard_n < 1 || shard_k < 1 || shard_k > shard_n)
                return cli_usage_error(&cmd_batch_info, "--shard: '%s' is not K/N with 1 <= K <= N", optarg);
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
    /* the recipe: words of an hpcz command */
    char *rtext = NULL;
    if (recipe[0] == '@') {
        uint8_t *b;
        size_t l;
        hpcz_error err;
        if (hpcz_file_read(recipe + 1, 1 << 16, &b, &l, &err))
            return cli_file_error(recipe + 1, &err);
        rtext = realloc(b, l + 1);
        rtext[l] = 0;
    } else {
        rtext = strdup(recipe);
    }
    /* what a record is keyed by: the recipe's words before splitting */
    char rtext_orig[17];
    hex64(rtext_orig, hpcz_hpcz_checksum(rtext, strlen(rtext)));
    char *rwords[128];
    int nr = split_words(rtext, rwords, 120);
    static const char *const allowed[] = {"quantize", "prune", "convert"};
    bool ok_cmd = false;
    for (size_t i = 0; nr > 0 && i < sizeof allowed / sizeof allowed[0]; i++)
        ok_cmd |= !strcmp(rwords[0], allowed[i]);
    if (!ok_cmd) {
        free(rtext);
        return cli_usage_error(&cmd_batch_info, "--recipe must start with quantize, prune or convert");
    }
    if (device && strcmp(rwords[0], "convert")) { /* convert runs no model */
        rwords[nr++] = "--device";
        rwords[nr++] = (char *)device;
    }
    for (int i = 1; i < nr; i++)
        if (!strcmp(rwords[i], "-o") || !strcmp(rwords[i], "--output") || !strncmp(rwords[i], "--output=", 9)) {
            free(rtext);
            return cli_usage_error(&cmd_batch_info, "--recipe: leave -o out (batch names the outputs)");
        }
    /* Outputs that every model would share: --external-name names one data
     * file in OUTDIR, so each model gets its own ("NAME.X", or X with {name}
     * replaced); convert --format hpcz writes .hpcz files. */
    int ext_word = -1, ext_eq = 0;
    const char *ext = ".onnx";
    for (int i = 1; i < nr; i++) {
        if (!strcmp(rwords[i], "--external-name") && i + 1 < nr) {
            ext_word = ++i;
        } else if (!strncmp(rwords[i], "--external-name=", 16)) {
            ext_word = i;
            ext_eq = 16;
        } else if ((!strcmp(rwords[i], "--format") && i + 1 < nr && !strcmp(rwords[i + 1], "hpcz")) ||
                   !strcmp(rwords[i], "--format=hpcz")) {
            ext = ".hpcz";
        }
    }
    if (ext_word >= 0 && strchr(rwords[ext_word] + ext_eq, '/')) {
        free(rtext);
        return cli_usage_error(&cmd_batch_info, "--recipe: --external-name '%s' must be a plain file name",
                               rwords[ext_word] + ext_eq);
    }
    /* the models */
    hpcz_batch_list list;
    hpcz_error lerr;
    if (hpcz_batch_list_models(src, &list, &lerr)) {
        free(rtext);
        return cli_error("%s", lerr.msg);
    }
    size_t n = list.n;
    run_state *rs = calloc(n, sizeof *rs);
    if (!rs) {
        free(rtext);
        hpcz_batch_list_free(&list);
        return cli_error("out of memory");
    }
    for (size_t i = 0; i < n; i++)
        rs[i].status = -1;
    size_t lo, hi;
    hpcz_batch_shard(n, (uint64_t)shard_k - 1, (uint64_t)shard_n, &lo, &hi);
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        int rc = cli_error("%s: %s", outdir, strerror(errno));
        free(rtext);
        free(rs);
        hpcz_batch_list_free(&list);
        return rc;
    }
    if (!dry && hpcz_batch_prepare(outdir, &list, lo, hi, &lerr)) {
        free(rtext);
        free(rs);
        hpcz_batch_list_free(&list);
        return cli_error("%s", lerr.msg);
    }
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) {
        free(rtext);
        free(rs);
        hpcz_batch_list_free(&list);
        return cli_error("cannot find the hpcz executable");
    }
    self[sl] = 0;
    if (!dry)
        hpcz_batch_remove_stale(outdir, &list, lo, hi, ext);
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pid_t parent = getpid();
    size_t running = 0, next = lo;
    int worst = 0;
    double t_all = now_s();
    while (next < hi || running) {
        while (next < hi && running < (size_t)jobs_n) {
            size_t ji = next++;
            hpcz_batch_job *j = &list.jobs[ji];
            run_state *r = &rs[ji];
            char out[4096];
            snprintf(out, sizeof out, "%s/%s%s", outdir, j->name, ext);
            j->in_bytes = file_size(j->path);
            if (!force && hpcz_batch_is_done(outdir, j, out, rtext_orig)) {
                r->status = -2;
                r->out_bytes = file_size(out);
                continue;
            }
            char *av[140];
            char ext_arg[4096];
            int k = 0;
            av[k++] = self;
            for (int w = 0; w < nr; w++)
                av[k++] = rwords[w];
            if (ext_word >= 0) {
                /* a data file beside its model: named after the model's base name */
                const char *x = rwords[ext_word] + ext_eq, *at = strstr(x, "{name}");
                const char *base = strrchr(j->name, '/') ? strrchr(j->name, '/') + 1 : j->name;
                if (at)
                    snprintf(ext_arg, sizeof ext_arg, "%.*s%.*s%s%s", ext_eq, rwords[ext_word],
                             (int)(at - x), x, base, at + 6);
                else
                    snprintf(ext_arg, sizeof ext_arg, "%.*s%s.%s", ext_eq, rwords[ext_word], base, x);
                av[1 + ext_word] = ext_arg;
            }
            if (!j->hashed) {
                uint64_t sz;
                j->hashed = hpcz_file_hash(j->path, &j->in_hash, &sz);
            }
            av[k++] = j->path;
            av[k++] = "-o";
            av[k++] = out;
            av[k] = NULL;
            if (dry) {
                for (int w = 0; w < k; w++) {
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
                    putchar(w + 1 < k ? ' ' : '\n');
                }
                continue;
            }
            char logp[4096];
            snprintf(logp, sizeof logp, "%s/%s.log", outdir, j->name);
            r->t0 = now_s();
            pid_t pid = fork();
            if (pid == 0) {
                /* a worker outlives no batch, even one killed with SIGKILL */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                    _exit(128 + SIGTERM);
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGHUP, SIG_DFL);
                int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0) {
                    dup2(fd, STDERR_FILENO);
                    dup2(fd, STDOUT_FILENO);
                }
                int nul = open("/dev/null", O_RDONLY);
                if (nul >= 0)
                    dup2(nul, STDIN_FILENO);
                execv(self, av);
                _exit(127);
            }
            if (pid < 0) {
                r->status = 1;
                continue;
            }
            r->pid = pid;
            live_set(0, pid);
            running++;
        }
        if (!running)
            break;
        int wst;
        pid_t done = wait(&wst);
        if (done < 0)
            break;
        for (size_t i = lo; i < hi; i++)
            if (rs[i].pid == done) {
                hpcz_batch_job *j = &list.jobs[i];
                run_state *r = &rs[i];
                live_set(r->pid, 0);
                r->pid = 0;
                r->seconds = now_s() - r->t0;
                r->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
                char out[4096];
                snprintf(out, sizeof out, "%s/%s%s", outdir, j->name, ext);
                r->out_bytes = file_size(out);
                hpcz_error rerr;
                if (hpcz_batch_record(outdir, j, out, recipe, rtext_orig, r->status, r->seconds, &rerr))
                    cli_warn("%s", rerr.msg);
                running--;
                if (cli_verbosity >= 0 && isatty(STDERR_FILENO))
                    fprintf(stderr, "hpcz batch: %s: %s (%.1f s)\n", j->name, status_word(r->status), r->seconds);
            }
    }
    if (dry) {
        free(rtext);
        free(rs);
        hpcz_batch_list_free(&list);
        return EXIT_OK;
    }
    size_t n_ok = 0, n_fail = 0, n_gate = 0, n_skip = 0;
    for (size_t i = lo; i < hi; i++) {
        int st = rs[i].status;
        if (st == 0)
            n_ok++;
        else if (st == -2)
            n_skip++;
        else if (st == 3)
            n_gate++;
        else
            n_fail++;
    }
    worst = n_fail ? EXIT_FAIL : n_gate ? EXIT_THRESHOLD : EXIT_OK;
    if (cli_verbosity >= 0 && strcmp(json ? json : "", "-")) { /* --json: the JSON instead */
        int w = 32;
        for (size_t i = lo; i < hi; i++)
            w = (int)strlen(list.jobs[i].name) > w ? (int)strlen(list.jobs[i].name) : w;
        w = w > 72 ? 72 : w;
        printf("%-*s %-12s %12s %12s %9s\n", w, "model", "status", "input", "output", "seconds");
        for (size_t i = lo; i < hi; i++) {
            const hpcz_batch_job *j = &list.jobs[i];
            const run_state *r = &rs[i];
            printf("%-*.*s %-12s %12s %12s %9.2f\n", w, w, j->name, status_word(r->status), cli_bytes(j->in_bytes),
                   r->out_bytes ? cli_bytes(r->out_bytes) : "-", r->seconds);
        }
        printf("%zu ok, %zu done before, %zu gate broken, %zu failed (shard %lld/%lld: %zu of %zu models, %.1f s)\n",
               n_ok, n_skip, n_gate, n_fail, shard_k, shard_n, hi - lo, n, now_s() - t_all);
    }
    char jp[4096];
    if (!json) {
        if (shard_n > 1)
            snprintf(jp, sizeof jp, "%s/batch-summary-%lld-of-%lld.json", outdir, shard_k, shard_n);
        else
            snprintf(jp, sizeof jp, "%s/batch-summary.json", outdir);
        json = jp;
    }
    hpcz_error err;
    hpcz_outfile *of = strcmp(json, "-") ? hpcz_outfile_open(json, &err) : NULL;
    if (strcmp(json, "-") && !of) {
        worst = cli_file_error(json, &err);
    } else {
        hpcz_json js;
        hpcz_json_init(&js, of ? hpcz_outfile_stream(of) : stdout);
        hpcz_json_object_begin(&js, NULL);
        hpcz_json_string(&js, "schema", "hpcz.batch");
        hpcz_json_int(&js, "version", 1);
        hpcz_json_string(&js, "recipe", recipe);
        hpcz_json_object_begin(&js, "shard");
        hpcz_json_int(&js, "k", shard_k);
        hpcz_json_int(&js, "n", shard_n);
        hpcz_json_object_end(&js);
        hpcz_json_array_begin(&js, "models");
        for (size_t i = lo; i < hi; i++) {
            const hpcz_batch_job *j = &list.jobs[i];
            const run_state *r = &rs[i];
            hpcz_json_object_begin(&js, NULL);
            hpcz_json_string(&js, "input", j->path);
            hpcz_json_string(&js, "name", j->name);
            hpcz_json_string(&js, "status", status_word(r->status));
            hpcz_json_int(&js, "exit", r->status < 0 ? 0 : r->status);
            hpcz_json_uint(&js, "input_bytes", j->in_bytes);
            hpcz_json_uint(&js, "output_bytes", r->out_bytes);
            hpcz_json_double(&js, "seconds", r->seconds);
            hpcz_json_object_end(&js);
        }
        hpcz_json_array_end(&js);
        hpcz_json_object_end(&js);
        hpcz_json_finish(&js);
        if (of && hpcz_outfile_commit(of, &err))
            worst = cli_file_error(json, &err);
    }
    free(rs);
    hpcz_batch_list_free(&list);
    free(rtext);
    return worst;
}
