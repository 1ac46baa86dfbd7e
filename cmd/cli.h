/*
 * cli.h - what every subcommand shares.
 *
 * Adding a command takes three edits:
 *   1. cmd/NAME.c defining `int cmd_NAME(int argc, char **argv)` with a
 *      static cli_opt table (it drives getopt_long and --help alike);
 *   2. its declaration below;
 *   3. a row in cli_commands (cmd/cli.c) and the file in meson.build.
 * The same tables generate `hpcz --help`, the man page (docs/hpcz.1) and the
 * bash completion (scripts/completion/hpcz.bash): tools/gen_docs.c.
 *
 * Only cmd/ prints to the terminal or chooses an exit status; the library
 * returns statuses and messages.
 */
#ifndef HPCZ_CLI_H
#define HPCZ_CLI_H

#include "hpcz.h"

#include <getopt.h>
#include <stdbool.h>

/* Documented exit codes (README "Exit codes"). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,      /* the work failed: bad model, i/o error, unsupported op */
    EXIT_USAGE = 2,     /* bad flag, missing argument */
    EXIT_THRESHOLD = 3, /* a --max-X or --min-X gate was broken */
};

typedef struct cli_opt {
    const char *name;   /* long name, without "--" */
    int key;            /* short letter, or a value >= 256 for long-only options */
    int has_arg;        /* no_argument, required_argument, optional_argument */
    const char *arg;    /* placeholder in help ("N", "FILE") */
    const char *help;
    const char *values; /* the value's choices, "a|b|c" (completion), or NULL */
    const char *files;  /* a file value (completion): CLI_FILES_* or extensions "onnx|hpcz" */
} cli_opt;

/* cli_opt.files and cli_cmd_info.operand_files besides a list of extensions */
#define CLI_FILES_ANY "*"
#define CLI_FILES_DIR "/"
#define CLI_FILES_MODEL "onnx|hpcz"

typedef struct cli_exit {
    int code;         /* -1 ends a list */
    const char *what; /* meaning for this command */
} cli_exit;

/* Exit code lists: every command returns 0, 1 (but passes) and 2; commands
 * with accuracy gates also 3. */
#define CLI_EXIT_OK_FAIL_USAGE                                                                     \
    {EXIT_OK, "success"},                                                                          \
        {EXIT_FAIL, "the work failed: unreadable or invalid model or data, i/o error, "            \
                    "unsupported op (one line on stderr names the file)"},                         \
        {EXIT_USAGE, "usage error: bad option or value, missing argument"}
#define CLI_EXIT_GATE {EXIT_THRESHOLD, "a gate (--max-X, --min-X) was broken"}
#define CLI_EXIT_END {-1, NULL}
extern const cli_exit cli_exits_basic[];  /* 0, 1, 2 */
extern const cli_exit cli_exits_gates[];  /* 0, 1, 2, 3 */

/* Spellings a command accepted before the conventions of the README's CLI
 * section; they still work, with a note on stderr. */
enum {
    CLI_LEGACY_J_JSON = 1,    /* -j meant --json (inspect, run) */
    CLI_LEGACY_JSON_FILE = 2, /* --json FILE (a separate word) and --json=FILE meant --json-file */
};

typedef struct cli_cmd_info {
    const char *name;
    const char *synopsis;    /* "MODEL [options]" */
    const char *summary;     /* one line */
    const char *description; /* paragraph(s) after the synopsis, may be NULL */
    const cli_opt *opts;     /* terminated by a zeroed entry */
    const cli_exit *exits;   /* the exit codes it can return, ended by CLI_EXIT_END */
    int max_operands;        /* operands after the options (legacy --json FILE) */
    const char *operand_files; /* completion of the operands, as cli_opt.files */
    unsigned legacy;         /* CLI_LEGACY_* */
} cli_cmd_info;

/* Iterates over options like getopt_long; on a bad option prints the usage
 * hint to stderr and returns '?'. Handles --help itself (prints help to
 * stdout and returns 'h'). */
int cli_getopt(int argc, char **argv, const cli_cmd_info *info);
void cli_help(const cli_cmd_info *info, FILE *f);
/* Words of text from column indent (already reached) up to width, later
 * lines indented as much; '\n' breaks a line. */
void cli_wrap(FILE *f, const char *text, int indent, int width);
/* A progress bar on stderr for the library's progress callbacks: ctx is
 * the label ("calibrating"); cleared when done. */
void cli_progress_bar(void *ctx, size_t done, size_t total);
/* "hpcz CMD: <msg>\nTry 'hpcz CMD --help' for more information." -> EXIT_USAGE */
int cli_usage_error(const cli_cmd_info *info, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The one operand left after the options (argv[optind]); NULL after printing
 * the usage error "missing WHAT" or "unexpected argument '...'". */
const char *cli_operand(const cli_cmd_info *info, int argc, char **argv, const char *what);
/* "hpcz: error: <msg>" -> EXIT_FAIL */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports a library error for a file: "hpcz: error: FILE: MSG". */
int cli_file_error(const char *file, const hpcz_error *err);
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parsers for option values; print a usage error and return false on bad input. */
bool cli_parse_int(const cli_cmd_info *info, const char *opt, const char *s, long long lo,
                   long long hi, long long *out);
bool cli_parse_size(const cli_cmd_info *info, const char *opt, const char *s, unsigned long long *out);


/* The --calib-mask option (quantize, calibrate, prune): its value goes to
 * hpcz_calib_mask_resolve (cli_job_load). */
#define CLI_CALIB_MASK_OPTION(key)                                                                 \
    {"calib-mask", key, required_argument, "INPUT",                                               \
     "the model input holding the token mask ([batch, seq], nonzero = real token): padded "      \
     "tokens stay out of calibration ranges, GPTQ Hessians and --reconstruct's Gram matrices "   \
     "(default: an input named attention_mask; none: count every token)"}

/* Before the work: an error (EXIT_FAIL) when path cannot be written (its
 * folder is missing or read-only), so no output is written while another
 * fails; EXIT_OK for "-" and NULL. */
int cli_check_output(const char *path);
/* Standard output is taken by option OPT (e.g. "-o -", "--json"); false
 * after a usage error naming both when another option took it first. */
bool cli_claim_stdout(const cli_cmd_info *info, const char *opt);
/* A model (or other binary data) is about to go to standard output: false
 * after a usage error when that is a terminal and force is not set. */
bool cli_binary_stdout_ok(const cli_cmd_info *info, bool force);

/* --dim NAME=VALUE for the commands that plan models on data (quantize,
 * calibrate, prune; run has its own help text): sizes of symbolic
 * dimensions. */
#define CLI_OPT_DIM 950
#define CLI_DIM_OPTION                                                                             \
    {"dim", CLI_OPT_DIM, required_argument, "NAME=VALUE",                                         \
     "fix the symbolic input dimension NAME for calibration and checks (random:N data needs every " \
     "size); repeatable"}
typedef struct cli_dims {
    char name[64][128];
    const char *names[64];
    int64_t values[64];
    size_t n;
} cli_dims;
/* Parses one --dim value into d; false after a usage error. */
bool cli_dims_option(const cli_cmd_info *info, cli_dims *d, const char *arg);
/* Checks d's names against m's inputs (usage error with the closest) and
 * makes them every plan's sizes (hpcz_set_default_dims). */
int cli_dims_apply(const cli_cmd_info *info, const cli_dims *d, const hpcz_model *m);

/* --device DEV for the commands that run models (run, calibrate, quantize,
 * prune, report, batch): one definition, one handler. */
#define CLI_OPT_DEVICE 951
#define CLI_DEVICE_OPTION                                                                          \
    {"device", CLI_OPT_DEVICE, required_argument, "DEV",                                          \
     "run models on DEV: cpu (default), cuda or cuda:N (GPU N; ops without a GPU kernel run on "   \
     "the CPU)", "cpu|cuda"}
/* Makes DEV every plan's device (hpcz_set_default_device): EXIT_OK; a usage
 * error for a bad name; EXIT_FAIL with "--device cuda: no CUDA device found
 * (...)" or "--device cuda: hpcz was built without CUDA". */
int cli_device_option(const cli_cmd_info *info, const char *arg);

/* Usage error (EXIT_USAGE) naming the closest symbolic dimension of m's
 * inputs when a --dim names one it does not have; EXIT_OK otherwise. */
int cli_check_dims(const cli_cmd_info *info, const hpcz_model *m, const char *const *dims, size_t n_dims);

/* POSIX extended regex check for --include/--exclude (usage error when bad). */
bool cli_check_regex(const cli_cmd_info *info, const char *opt, const char *pattern);

/* Human-readable helpers (static rotating buffers). */
const char *cli_bytes(uint64_t n);   /* "1.5 MiB" */
const char *cli_count(uint64_t n);   /* "12,345" */

/* Shows control characters and bytes that are no UTF-8 as \xNN in text
 * sent to stderr, and to stdout when it is a terminal (main calls it once). */
void cli_filter_terminal_text(void);

extern int cli_verbosity; /* -q: -1, default 0, -v: 1 */
extern const cli_cmd_info *cli_current;

/* Commands, and their option tables (for --help, man page, completion) */
extern const cli_cmd_info cmd_inspect_info, cmd_convert_info, cmd_passes_info, cmd_quantize_info,
    cmd_prune_info, cmd_calibrate_info, cmd_report_info, cmd_batch_info, cmd_run_info;
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_passes(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_run(int argc, char **argv);

/* The command table, in the order of hpcz --help (cmd/cli.c). */
typedef struct cli_command {
    int (*fn)(int argc, char **argv);
    const cli_cmd_info *info;
} cli_command;
enum { CLI_N_COMMANDS = 9 };
extern const cli_command cli_commands[];

/* ---- accuracy gates and reports (cmd/report.c), shared by report, quantize
 * and prune */
enum {
    CLI_OPT_MAX_TOP1_DROP = 900,
    CLI_OPT_MIN_TOP1_AGREEMENT,
    CLI_OPT_MIN_COSINE,
    CLI_OPT_MIN_SQNR,
    CLI_OPT_MAX_ABS,
};
#define CLI_OPT_GATE_FIRST CLI_OPT_MAX_TOP1_DROP
#define CLI_OPT_GATE_LAST CLI_OPT_MAX_ABS
#define CLI_GATE_OPTIONS                                                                           \
    {"max-top1-drop", CLI_OPT_MAX_TOP1_DROP, required_argument, "P",                              \
     "gate: top-1 accuracy may drop at most P points (without --labels: the share of changed "     \
     "predictions)"},                                                                              \
        {"min-top1-agreement", CLI_OPT_MIN_TOP1_AGREEMENT, required_argument, "P",                 \
         "gate: at least P% of top-1 predictions unchanged"},                                      \
        {"min-cosine", CLI_OPT_MIN_COSINE, required_argument, "C", "gate: output cosine similarity at least C"}, \
        {"min-sqnr", CLI_OPT_MIN_SQNR, required_argument, "DB", "gate: output SQNR at least DB decibels"}, \
    {                                                                                              \
        "max-abs", CLI_OPT_MAX_ABS, required_argument, "E", "gate: largest absolute output error at most E" \
    }

#define CLI_MAX_GATES 32
typedef struct cli_gates {
    hpcz_gate g[CLI_MAX_GATES];
    size_t n;
} cli_gates;
/* Handles a gate option key; false (usage error printed) on a bad value. */
bool cli_gates_option(const cli_cmd_info *info, cli_gates *g, int key, const char *arg);

typedef struct cli_report_opts {
    const char *a_path, *b_path;
    const char *data, *labels, *json /* "-": stdout */, *md;
    FILE *text;          /* text report destination, NULL = none */
    int bench, threads, no_layers, all_layers;
    size_t max_samples;
    const cli_gates *gates;
} cli_report_opts;
/* Usage error (EXIT_USAGE) when a gate names an output m does not have,
 * with the closest name; EXIT_OK otherwise. */
int cli_check_gate_outputs(const cli_cmd_info *info, const cli_gates *g, const hpcz_model *m);
/* Compares a and b and writes the requested reports; EXIT_THRESHOLD when a gate breaks. */
int cli_report(hpcz_model *a, hpcz_model *b, const cli_report_opts *o);

/* Pass-note logger for hpcz_pass_ctx.log: prints with -v. */
void cli_log_note(void *user, const char *pass, const char *msg);

/* Runs a --passes pipeline on m, printing pass notes to stderr with -v.
 * Returns an exit status (EXIT_USAGE for a bad pipeline). */
int cli_run_pipeline(hpcz_model *m, const char *spec, const char *model_path);

#endif
