/*
 * cli.h - what every subcommand shares.
 *
 * Adding a command takes three edits:
 *   1. cmd/NAME.c defining `int cmd_NAME(int argc, char **argv)` with a
 *      static cli_opt table (it drives getopt_long and --help alike);
 *   2. its declaration below;
 *   3. a row in the command table in cmd/main.c (and the file in meson.build).
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
} cli_opt;

typedef struct cli_cmd_info {
    const char *name;
    const char *synopsis;    /* "MODEL [options]" */
    const char *summary;     /* one line */
    const char *description; /* paragraph(s) after the synopsis, may be NULL */
    const cli_opt *opts;     /* terminated by a zeroed entry */
} cli_cmd_info;

/* Iterates over options like getopt_long; on a bad option prints the usage
 * hint to stderr and returns '?'. Handles --help itself (prints help to
 * stdout and returns 'h'). */
int cli_getopt(int argc, char **argv, const cli_cmd_info *info);
void cli_help(const cli_cmd_info *info, FILE *f);
/* "hpcz CMD: <msg>\nTry 'hpcz CMD --help' for more information." -> EXIT_USAGE */
int cli_usage_error(const cli_cmd_info *info, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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

/* Calibrates m on DATA (folder, .npy, random:N) with a progress bar on a
 * TTY; returns an exit status. */
int cli_calibrate(hpcz_model *m, const char *data, size_t max_samples, hpcz_calib_opts *o,
                  hpcz_calib_table **out);

/* POSIX extended regex check for --include/--exclude (usage error when bad). */
bool cli_check_regex(const cli_cmd_info *info, const char *opt, const char *pattern);

/* Human-readable helpers (static rotating buffers). */
const char *cli_bytes(uint64_t n);   /* "1.5 MiB" */
const char *cli_count(uint64_t n);   /* "12,345" */

extern int cli_verbosity; /* -q: -1, default 0, -v: 1 */
extern const cli_cmd_info *cli_current;

/* Commands */
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_passes(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);

/* Pass-note logger for hpcz_pass_ctx.log: prints with -v. */
void cli_log_note(void *user, const char *pass, const char *msg);
/* Grows a malloc'd array of `layer`-like elements; false on OOM. */
#define hpcz_grow_cli(arr, cap, need) cli_grow((void **)(arr), (cap), (need), sizeof **(arr))
bool cli_grow(void **arr, size_t *cap, size_t need, size_t elem);
int cmd_run(int argc, char **argv);

/* Runs a --passes pipeline on m, printing pass notes to stderr with -v.
 * Returns an exit status (EXIT_USAGE for a bad pipeline). */
int cli_run_pipeline(hpcz_model *m, const char *spec, const char *model_path);

#endif
