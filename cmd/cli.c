/*
 * cli.c - option tables -> getopt_long and --help; messages and exit codes.
 */
#include "cli.h"

#include <ctype.h>
#include <regex.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_verbosity = 0;
const cli_cmd_info *cli_current;

const cli_exit cli_exits_basic[] = {CLI_EXIT_OK_FAIL_USAGE, CLI_EXIT_END};
const cli_exit cli_exits_gates[] = {CLI_EXIT_OK_FAIL_USAGE, CLI_EXIT_GATE, CLI_EXIT_END};

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
            const char *near = info->opts ? cli_closest(name, &info->opts[0].name, (size_t)table_len(info->opts),
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

int cli_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    int d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1; /* a transposition */
            d[i][j] = v;
        }
    return d[la][lb];
}

const char *cli_closest(const char *s, const char *const *names, size_t n, size_t stride)
{
    const char *best = NULL;
    int best_d = 1 << 30;
    size_t ls = strlen(s);
    for (size_t i = 0; i < n; i++) {
        const char *name = *(const char *const *)((const char *)names + i * stride);
        if (!name)
            continue;
        int d = cli_edit_distance(s, name);
        if (d < best_d) {
            best_d = d;
            best = name;
        }
    }
    /* close: at most 2 edits, and fewer than a third of the word */
    if (!best || best_d == 0 || best_d > 2 || (size_t)best_d * 3 > ls + 1)
        return NULL;
    return best;
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

static void wrap(FILE *f, const char *text, int indent, int width)
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
    wrap(f, info->summary, 0, 79);
    if (info->description) {
        fputc('\n', f);
        wrap(f, info->description, 0, 79);
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
        wrap(f, o->help, 28, 79);
    }
    if (info->exits) {
        fputs("\nExit status:\n", f);
        for (const cli_exit *e = info->exits; e->code >= 0; e++) {
            fprintf(f, "  %d  ", e->code);
            wrap(f, e->what, 5, 79);
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

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hpcz: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
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
    if (cli_verbosity < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("hpcz: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_note(const char *fmt, ...)
{
    if (cli_verbosity < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("hpcz: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
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
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mul = 1;
    if (end != s) {
        if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib"))
            mul = 1024, end += strlen(end);
        else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib"))
            mul = 1024.0 * 1024, end += strlen(end);
        else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib"))
            mul = 1024.0 * 1024 * 1024, end += strlen(end);
    }
    if (errno || end == s || *end || v < 0 || v * mul > 1e18) {
        cli_usage_error(info, "--%s: '%s' is not a size (e.g. 4096, 64K, 1M)", opt, s);
        return false;
    }
    *out = (unsigned long long)(v * mul);
    return true;
}

const char *cli_bytes(uint64_t n)
{
    static char bufs[8][32];
    static int k;
    char *b = bufs[k++ & 7];
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(b, 32, "%llu B", (unsigned long long)n);
    else
        snprintf(b, 32, "%.1f %s", v, units[u]);
    return b;
}

const char *cli_count(uint64_t n)
{
    static char bufs[8][32];
    static int k;
    char *b = bufs[k++ & 7];
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)n);
    int o = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            b[o++] = ',';
        b[o++] = tmp[i];
    }
    b[o] = 0;
    return b;
}

void cli_log_note(void *user, const char *pass, const char *msg)
{
    (void)user;
    /* what a pass declined to do is said even without -v */
    bool declined = strstr(msg, "left dense") || strstr(msg, "left alone") || strstr(msg, "not folded");
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

bool cli_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *p = realloc(*arr, nc * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

static void progress_bar(void *ctx, size_t done, size_t total)
{
    const char *what = ctx;
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu", what, fill, "##############################",
            width - fill, "", done, total);
    if (done >= total)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

int cli_calibrate(hpcz_model *m, const char *data, size_t max_samples, hpcz_calib_opts *o,
                  hpcz_calib_table **out)
{
    hpcz_error err = {0};
    hpcz_plan_opts po = {0};
    po.threads = o->threads;
    hpcz_plan *plan = hpcz_plan_new(m, &po, &err);
    if (!plan)
        return cli_file_error(m->path, &err);
    hpcz_dataset *d = hpcz_dataset_open(data, plan, max_samples, &err);
    if (!d) {
        hpcz_plan_free(plan);
        return err.status == HPCZ_ERR_USAGE ? (fprintf(stderr, "hpcz: --calib: %s\n", err.msg), EXIT_USAGE)
                                            : cli_error("%s", err.msg);
    }
    if (hpcz_dataset_is_random(d))
        cli_warn("calibrating on random data: the ranges are a proxy, not your data's");
    if (isatty(STDERR_FILENO) && cli_verbosity >= 0) {
        o->progress = progress_bar;
        o->progress_ctx = (void *)"calibrating";
    }
    hpcz_status st = hpcz_calibrate(m, d, o, out, &err);
    hpcz_dataset_free(d);
    hpcz_plan_free(plan);
    if (st)
        return cli_file_error(m->path, &err);
    return EXIT_OK;
}

bool cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!strcmp(a, "-") || !strcmp(b, "-"))
        return false;
    if (!strcmp(a, b))
        return true;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
