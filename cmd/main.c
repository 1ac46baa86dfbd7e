/*
 * main.c - the hpcz command: global flags and the subcommand table.
 */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("Usage: hpcz [--version] [--help] <command> [options]\n\n"
          "hpcz makes neural-network models smaller and faster and measures what that\n"
          "cost in accuracy.\n\nCommands:\n",
          f);
    for (size_t i = 0; i < CLI_N_COMMANDS; i++) {
        const cli_cmd_info *c = cli_commands[i].info;
        fprintf(f, "%s  hpcz %s %s\n      ", i ? "\n" : "", c->name, c->synopsis);
        cli_wrap(f, c->summary, 6, 79);
    }
    fputs("\nRun 'hpcz <command> --help' for a command's options. '-' stands for standard\n"
          "input or output wherever a file is taken; a model is not written to a terminal\n"
          "unless -f/--force is given. --json prints JSON on standard output instead of\n"
          "the text, --json-file FILE writes it to FILE.\n\n"
          "Exit status:\n",
          f);
    for (const cli_exit *e = cli_exits_gates; e->code >= 0; e++) {
        char what[256];
        snprintf(what, sizeof what, "%s%s", e->what,
                 e->code == EXIT_THRESHOLD ? " (quantize, prune, report, batch)" : "");
        fprintf(f, "  %d  ", e->code);
        cli_wrap(f, what, 5, 79);
    }
}

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < CLI_N_COMMANDS; i++)
        if (!strcmp(cli_commands[i].info->name, name))
            return &cli_commands[i];
    return NULL;
}

static int not_a_command(const char *name)
{
    const char *names[CLI_N_COMMANDS];
    for (size_t i = 0; i < CLI_N_COMMANDS; i++)
        names[i] = cli_commands[i].info->name;
    const char *near = hpcz_closest(name, names, CLI_N_COMMANDS, sizeof names[0]);
    if (near)
        fprintf(stderr, "hpcz: '%s' is not a command; did you mean '%s'?\n", name, near);
    else
        fprintf(stderr, "hpcz: '%s' is not a command\n", name);
    fputs("Try 'hpcz --help' for the list of commands.\n", stderr);
    return EXIT_USAGE;
}

static void on_signal(int sig)
{
    hpcz_outfile_cleanup_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    hpcz_runtime_pick_blas(argv);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, on_signal);
    cli_filter_terminal_text();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        if (!strcmp(name, "help") && argc > 2) {
            char *sub[] = {argv[2], "--help", NULL};
            const cli_command *c = find_command(argv[2]);
            return c ? c->fn(2, sub) : not_a_command(argv[2]);
        }
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
        printf("hpcz %s\n", HPCZ_VERSION_STRING);
        return EXIT_OK;
    }
    const cli_command *c = find_command(name);
    if (c)
        return c->fn(argc - 1, argv + 1);
    if (name[0] != '-')
        return not_a_command(name);
    static const char *const globals[] = {"--help", "--version"};
    const char *near = hpcz_closest(name, globals, 2, sizeof globals[0]);
    if (near)
        fprintf(stderr, "hpcz: unknown option '%s'; did you mean '%s'?\n", name, near);
    else
        fprintf(stderr, "hpcz: unknown option '%s'\n", name);
    fputs("Try 'hpcz --help' for the list of commands.\n", stderr);
    return EXIT_USAGE;
}
