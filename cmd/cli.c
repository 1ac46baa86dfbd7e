/*
 * cli.c - option tables -> getopt_long and --help; messages and exit codes.
 */
#include "cli.h"

#include <ctype.h>
#include <regex.h>
#include <unistd.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_verbosity = 0;
const cli_cmd_info *cli_current;

const cli_exit cli_exits_basic[] = {CLI_EXIT_OK_FAIL_USAGE, CLI_EXIT_END};
const cli_exit cli_exits_gates[] = {CLI_EXIT_OK_FAIL_USAGE, CLI_EXIT_GATE, CLI_EXIT_END};

const cli_command cli_commands[] = {
    {cmd_inspect, &cmd_inspect_info},   {cmd_convert, &cmd_convert_info},
    {cmd_quantize, &cmd_quantize_info}, {cmd_report, &cmd_report_info},
    {cmd_calibrate, &cmd_calibrate_info}, {cmd_prune, &cmd_prune_info},
    {cmd_batch, &cmd_batch_info},       {cmd_passes, &cmd_passes_info},
    {cmd_run, &cmd_run_info},
};
_Static_assert(sizeof cli_commands / sizeof cli_commands[0] == CLI_N_COMMANDS, "CLI_N_COMMANDS");

static int table_len(const cli_opt *o)
{
    int n = 0;
    while (o && o[n].name)
        n++;
    return n;
}

static const cli_opt *find_long(const cli_cmd_info *info, const char *name, size_t len)
{
    const cli_opt *hit = NULL;
    int n = table_len(info->opts), hits = 0;
    for (int i = 0; i < n; i++) {
        const cli_opt *o = &info->opts[i];
        if (strncmp(o->name, name, len))
            continue;
        if (!o->name[len])
            return o; /* exact */
        hit = o;      /* an abbreviation, as getopt_long takes them */
        hits++;
    }
    return hits == 1 ? hit : NULL;
}

static const cli_opt *find_short(const cli_cmd_info *info, int key)
{
    int n = table_len(info->opts);
    for (int i = 0; i < n; i++)
        if (info->opts[i].key == key)
            return &info->opts[i];
    return NULL;
}

/* Marks the words of argv that getopt_long will leave as operands; returns
 * how many there are. */
static int scan_operands(int argc, char **argv, const cli_cmd_info *info, bool *is_op)
{
    int count = 0;
    bool dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        is_op[i] = false;
        if (dashdash || a[0] != '-' || !a[1]) {
            is_op[i] = true;
            count++;
        } else if (!strcmp(a, "--")) {
            dashdash = true;
        } else if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            const cli_opt *o = find_long(info, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
            if (o && o->has_arg == required_argument && !eq)
                i++;
        } else {
            for (const char *p = a + 1; *p; p++) {
                const cli_opt *o = find_short(info, (unsigned char)*p);
                if (o && o->has_arg != no_argument) {
                    if (!p[1] && o->has_arg == required_argument)
                        i++;
                    break;
                }
            }
        }
    }
    return count;
}

static void deprecated(const char *old, const char *use)
{
    fprintf(stderr, "hpcz: note: '%s' is deprecated; use %s\n", old, use);
}

/* Rewrites the spellings of info->legacy into today's, with a note each. */
static void legacy_rewrite(int argc, char **argv, const cli_cmd_info *info)
{
    static char bufs[4][4096]; /* argv words built here live as long as argv */
    int nb = 0;
    if (!info->legacy)
        return;
    bool *is_op = calloc((size_t)argc + 1, sizeof *is_op);
    if (!is_op)
        return;
    int extra = scan_operands(argc, argv, info, is_op) - info->max_operands;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if ((info->legacy & CLI_LEGACY_J_JSON) && !strcmp(argv[i], "-j")) {
            deprecated("-j", "--json");
            argv[i] = (char *)"--json";
        } else if ((info->legacy & CLI_LEGACY_JSON_FILE) && !strncmp(argv[i], "--json=", 7)) {
            if (!strcmp(argv[i] + 7, "-")) {
                deprecated("--json=-", "--json");
                argv[i] = (char *)"--json";
            } else if (nb < 4) {
                deprecated("--json=FILE", "--json-file FILE");
                snprintf(bufs[nb], sizeof bufs[nb], "--json-file=%s", argv[i] + 7);
                argv[i] = bufs[nb++];
            }
        } else if ((info->legacy & CLI_LEGACY_JSON_FILE) && extra > 0 && !strcmp(argv[i], "--json") &&
                   i + 1 < argc && is_op[i + 1]) {
            /* one operand too many, right after --json: the old --json FILE */
            if (!strcmp(argv[i + 1], "-"))
                deprecated("--json -", "--json");
            else
                deprecated("--json FILE", "--json-file FILE");
            argv[i] = (char *)"--json-file";
            is_op[++i] = false;
            extra--;
        }
    }
    free(is_op);
}

int cli_getopt(int argc, char **argv, const cli_cmd_info *info)
{
    /* Built once per command invocation. */
    static struct option longs[128];
    static char shorts[256];
    static const cli_cmd_info *built;
    if (built != info) {
        built = info;
        cli_current = info;
        legacy_rewrite(argc, argv, info);
        int n = table_len(info->opts), k = 0;
        size_t sp = 0;
        shorts[sp++] = ':'; /* report a missing value as ':' */
        for (int i = 0; i < n && k < 126; i++, k++) {
            const cli_opt *o = &info->opts[i];
            longs[k] = (struct option){o->name, o->has_arg, NULL, o->key};
            if (o->key > 0 && o->key < 256 && isalnum(o->key) && sp + 3 < sizeof shorts) {
                shorts[sp++] = (char)o->key;
                if (o->has_arg == required_argument)
                    shorts[sp++] = ':';
                else if (o->has_arg == optional_argument) {
                    shorts[sp++] = ':';
                    shorts[sp++] = ':';
                }
            }
        }
        longs[k++] = (struct option){"help", no_argument, NULL, 'h'};
        longs[k] = (struct option){0, 0, 0, 0};
        if (sp + 2 < sizeof shorts)
            shorts[sp++] = 'h';
        shorts[sp] = 0;
        optind = 1;
        opterr = 0;
    }
    int idx = -1;
    int c = getopt_long(argc, argv, shorts, longs, &idx);
    if (c == 'h') {
        cli_help(info, stdout);
        return 'h';
    }
    if (c == '?' || c == ':') {
        const char *what = argv[optind - 1];
        if (c == ':') {
            cli_usage_error(info, "option '%s' needs a value", what);
        } else if (optopt && optopt < 256 && isprint(optopt) && strncmp(what, "--", 2) != 0) {
            cli_usage_error(info, "unknown option '-%c'", optopt);
        } else if (!strncmp(what, "--", 2) && optopt && strchr(what, '=') &&
                   find_long(info, what + 2, strcspn(what + 2, "="))) {
            cli_usage_error(info, "option '%.*s' takes no value", (int)strcspn(what, "="), what);
        } else {
            /* getopt_long also lands here for an ambiguous abbreviation */
            char name[128];
            snprintf(name, sizeof name, "%s", what + (strncmp(what, "--", 2) ? 0 : 2));
            name[strcspn(name, "=")] = 0;
            const char *near = info->opts ? hpcz_closest(name, &info->opts[0].name, (size_t)table_len(info->opts),
                                                        sizeof(cli_opt))
                                          : NULL;
            if (near)
                cli_usage_error(info, "unknown option '%s'; did you mean '--%s'?", what, near);
            else
                cli_usage_error(info, "unknown option '%s'", what);
        }
        return '?';
    }
    return c;
}

bool cli_claim_stdout(const cli_cmd_info *info, const char *opt)
{
    static const char *taken;
    static const cli_cmd_info *by;
    if (by != info)
        taken = NULL, by = info;
    if (taken) {
        cli_usage_error(info, "%s and %s both write to standard output; send one to a file", taken, opt);
        return false;
    }
    taken = opt;
    return true;
}

bool cli_binary_stdout_ok(const cli_cmd_info *info, bool force)
{
    if (force || !isatty(STDOUT_FILENO))
        return true;
    cli_usage_error(info, "refusing to write a binary model to a terminal; redirect standard "
                          "output, or use -f/--force");
    return false;
}

void cli_wrap(FILE *f, const char *text, int indent, int width)
{
    int col = indent;
    const char *p = text;
    while (*p) {
        if (*p == '\n') {
            fputc('\n', f);
            fprintf(f, "%*s", indent, "");
            col = indent;
            p++;
            continue;
        }
        const char *w = p;
        while (*w && *w != ' ' && *w != '\n')
            w++;
        int len = (int)(w - p);
        if (col > indent && col + 1 + len > width) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, (size_t)len, f);
        col += len;
        p = w;
        while (*p == ' ')
            p++;
    }
    fputc('\n', f);
}

void cli_help(const cli_cmd_info *info, FILE *f)
{
    fprintf(f, "Usage: hpcz %s %s\n\n", info->name, info->synopsis);
    cli_wrap(f, info->summary, 0, 79);
    if (info->description) {
        fputc('\n', f);
        cli_wrap(f, info->description, 0, 79);
    }
    fputs("\nOptions:\n", f);
    int n = table_len(info->opts);
    for (int i = 0; i < n + 1; i++) {
        const cli_opt help = {"help", 'h', no_argument, NULL, "show this help and exit"};
        const cli_opt *o = i < n ? &info->opts[i] : &help;
        char left[64];
        int k = 0;
        if (o->key > 0 && o->key < 256 && isalnum(o->key))
            k = snprintf(left, sizeof left, "  -%c, --%s", o->key, o->name);
        else
            k = snprintf(left, sizeof left, "      --%s", o->name);
        if (o->arg && (size_t)k < sizeof left)
            snprintf(left + k, sizeof left - (size_t)k,
                     o->has_arg == optional_argument ? "[=%s]" : " %s", o->arg);
        fputs(left, f);
        int col = (int)strlen(left);
        if (col >= 28) {
            fputc('\n', f);
            col = 0;
        }
        fprintf(f, "%*s", 28 - col, "");
        cli_wrap(f, o->help, 28, 79);
    }
    if (info->exits) {
        fputs("\nExit status:\n", f);
        for (const cli_exit *e = info->exits; e->code >= 0; e++) {
            fprintf(f, "  %d  ", e->code);
            cli_wrap(f, e->what, 5, 79);
        }
    }
}

int cli_usage_error(const cli_cmd_info *info, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hpcz %s: ", info ? info->name : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'hpcz %s%s--help' for more information.\n", info ? info->name : "",
            info ? " " : "");
    return EXIT_USAGE;
}

const char *cli_operand(const cli_cmd_info *info, int argc, char **argv, const char *what)
{
    if (optind >= argc) {
        cli_usage_error(info, "missing %s", what);
        return NULL;
    }
    if (optind + 1 < argc) {
        cli_usage_error(info, "unexpected argument '%s'", argv[optind + 1]);
        return NULL;
    }
    return argv[optind];
}

/* "PREFIX<message>\n" on stderr */
static void say(const char *prefix, const char *fmt, va_list ap)
{
    fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("hpcz: error: ", fmt, ap);
    va_end(ap);
    return EXIT_FAIL;
}

int cli_file_error(const char *file, const hpcz_error *err)
{
    if (file && strcmp(file, "-") == 0)
        file = "<stdin>";
    size_t fl = file ? strlen(file) : 0;
    /* messages that already start with "FILE:" are not prefixed twice */
    if (file && !(strncmp(err->msg, file, fl) == 0 && err->msg[fl] == ':'))
        return cli_error("%s: %s", file, err->msg);
    return cli_error("%s", err->msg);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cli_verbosity >= 0)
        say("hpcz: warning: ", fmt, ap);
    va_end(ap);
}

void cli_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cli_verbosity >= 0)
        say("hpcz: ", fmt, ap);
    va_end(ap);
}

bool cli_parse_int(const cli_cmd_info *info, const char *opt, const char *s, long long lo,
                   long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cli_usage_error(info, "--%s: '%s' is not an integer in [%lld, %lld]", opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_size(const cli_cmd_info *info, const char *opt, const char *s, unsigned long long *out)
{
    uint64_t v;
    if (!hpcz_parse_size(s, &v)) {
        cli_usage_error(info, "--%s: '%s' is not a size (e.g. 4096, 64K, 1M)", opt, s);
        return false;
    }
    *out = v;
    return true;
}

const char *cli_bytes(uint64_t n)
{
    static char bufs[8][32];
    static int k;
    return hpcz_fmt_bytes(n, bufs[k++ & 7]);
}

const char *cli_count(uint64_t n)
{
    static char bufs[8][32];
    static int k;
    return hpcz_fmt_count(n, bufs[k++ & 7]);
}

void cli_log_note(void *user, const char *pass, const char *msg)
{
    (void)user;
    /* what a pass declined to do is said even without -v */
    bool declined = strstr(msg, "left dense") || strstr(msg, "left alone") || strstr(msg, "not folded") ||
                    strstr(msg, "instead (");
    if (cli_verbosity > 0 || (cli_verbosity == 0 && declined))
        fprintf(stderr, "hpcz: %s: %s\n", pass, msg);
}

int cli_run_pipeline(hpcz_model *m, const char *spec, const char *model_path)
{
    hpcz_error err = {0};
    hpcz_pipeline *pl = hpcz_pipeline_parse(spec, &err);
    if (!pl) {
        fprintf(stderr, "hpcz: --passes: %s\n", err.msg);
        return EXIT_USAGE;
    }
    hpcz_pass_ctx ctx;
    hpcz_pass_ctx_init(&ctx);
    ctx.log = cli_log_note;
    hpcz_status st = hpcz_pipeline_run(pl, m, &ctx, &err);
    hpcz_pipeline_free(pl);
    if (st)
        return cli_file_error(model_path, &err);
    return EXIT_OK;
}

bool cli_check_regex(const cli_cmd_info *info, const char *opt, const char *pattern)
{
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char buf[256];
        regerror(rc, &re, buf, sizeof buf);
        cli_usage_error(info, "--%s: '%s' is not a valid regular expression: %s", opt, pattern, buf);
        return false;
    }
    regfree(&re);
    return true;
}

void cli_progress_bar(void *ctx, size_t done, size_t total)
{
    const char *what = ctx;
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    dprintf(STDERR_FILENO, "\r%s [%.*s%*s] %zu/%zu", what, fill, "##############################",
            width - fill, "", done, total);
    if (done >= total)
        dprintf(STDERR_FILENO, "\r\033[K");
}

int cli_check_dims(const cli_cmd_info *info, const hpcz_model *m, const char *const *dims, size_t n_dims)
{
    hpcz_error err;
    size_t bad;
    if (hpcz_model_check_dims(m, dims, n_dims, &bad, &err))
        return cli_usage_error(info, "--dim %s: %s", dims[bad], err.msg);
    return EXIT_OK;
}

int cli_check_output(const char *path)
{
    hpcz_error err;
    return hpcz_output_check(path, &err) ? cli_error("%s", err.msg) : EXIT_OK;
}

/* ------------------------------------------------------------ terminal text */

/* Names come from the model, and a model is hostile until proven otherwise:
 * an ESC in a tensor name could rewrite the terminal. Text bound for a
 * terminal (stdout when it is one, stderr always) passes through
 * hpcz_text_escape. Progress bars write their \r and ESC [K straight to
 * the descriptor. */
typedef struct text_filter {
    int fd;
    hpcz_text_escape esc;
} text_filter;

static void put_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

static ssize_t filter_write(void *cookie, const char *buf, size_t size)
{
    text_filter *t = cookie;
    char out[4 * 1024 + 16];
    for (size_t i = 0; i < size; i += 1024) {
        size_t n = size - i < 1024 ? size - i : 1024;
        put_all(t->fd, out, hpcz_text_escape_run(&t->esc, buf + i, n, out));
    }
    return (ssize_t)size;
}

static int filter_close(void *cookie)
{
    text_filter *t = cookie;
    char out[16];
    put_all(t->fd, out, hpcz_text_escape_end(&t->esc, out));
    return 0;
}

static FILE *filtered(FILE *orig, int fd)
{
    static text_filter tf[2];
    text_filter *t = &tf[fd == STDERR_FILENO];
    t->fd = fd;
    fflush(orig);
    FILE *f = fopencookie(t, "w", (cookie_io_functions_t){.write = filter_write, .close = filter_close});
    if (!f)
        return orig;
    setvbuf(f, NULL, fd == STDERR_FILENO ? _IONBF : _IOLBF, 0);
    return f;
}

void cli_filter_terminal_text(void)
{
    if (isatty(STDOUT_FILENO))
        stdout = filtered(stdout, STDOUT_FILENO);
    stderr = filtered(stderr, STDERR_FILENO);
}

bool cli_dims_option(const cli_cmd_info *info, cli_dims *d, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof d->name[0]) {
        cli_usage_error(info, "--dim expects NAME=VALUE, got '%s'", arg);
        return false;
    }
    if (d->n == sizeof d->values / sizeof d->values[0]) {
        cli_usage_error(info, "too many --dim options");
        return false;
    }
    char *end;
    errno = 0;
    long long v = strtoll(eq + 1, &end, 10);
    if (end == eq + 1 || *end || errno || v < 0 || v > ((long long)1 << 40)) {
        cli_usage_error(info, "--dim %.*s: '%s' is not a non-negative integer", (int)(eq - arg), arg, eq + 1);
        return false;
    }
    memcpy(d->name[d->n], arg, (size_t)(eq - arg));
    d->name[d->n][eq - arg] = 0;
    d->names[d->n] = d->name[d->n];
    d->values[d->n] = v;
    d->n++;
    return true;
}

int cli_device_option(const cli_cmd_info *info, const char *arg)
{
    hpcz_error err;
    if (!hpcz_set_default_device(arg, &err))
        return EXIT_OK;
    if (err.status == HPCZ_ERR_USAGE)
        return cli_usage_error(info, "--device: %s", err.msg);
    return cli_error("--device %s: %s", arg, err.msg);
}

int cli_dims_apply(const cli_cmd_info *info, const cli_dims *d, const hpcz_model *m)
{
    if (!d->n)
        return EXIT_OK;
    int rc = cli_check_dims(info, m, d->names, d->n);
    if (rc)
        return rc;
    hpcz_error err;
    if (hpcz_set_default_dims(d->n, d->names, d->values, &err))
        return cli_error("%s", err.msg);
    return EXIT_OK;
}
