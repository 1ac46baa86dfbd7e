/*
 * main.c - the hpcz command: global flags and the subcommand table.
 */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"inspect", cmd_inspect, "show what is in a model: ops, parameters, sizes, sparsity"},
    {"convert", cmd_convert, "rewrite a model (ONNX to ONNX, inline or external data, --passes)"},
    {"quantize", cmd_quantize, "int8 / int4 weight quantization (QDQ) or float16 conversion"},
    {"report", cmd_report, "accuracy delta of two models on data; CI gates (exit 3)"},
    {"calibrate", cmd_calibrate, "measure activation ranges on data; write a reusable table"},
    {"prune", cmd_prune, "magnitude (per layer or global) and N:M pruning"},
    {"batch", cmd_batch, "one recipe over a folder or manifest of models: -j, resumable, --shard K/N"},
    {"passes", cmd_passes, "list the passes and their options"},
    {"run", cmd_run, "run a model on inputs with the CPU runtime, write outputs, benchmark"},
};

static void usage(FILE *f)
{
    fputs("Usage: hpcz [--version] [--help] <command> [options]\n\n"
          "hpcz makes neural-network models smaller and faster and measures what that\n"
          "cost in accuracy.\n\nCommands:\n",
          f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nRun 'hpcz <command> --help' for a command's options. '-' stands for standard\n"
          "input or output wherever a file is taken.\n\n"
          "Exit status: 0 ok, 1 the work failed, 2 usage error, 3 a threshold was broken.\n",
          f);
}

static void on_signal(int sig)
{
    hpcz_outfile_cleanup_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
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
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (!strcmp(commands[i].name, argv[2]))
                    return commands[i].fn(2, sub);
        }
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
        printf("hpcz %s\n", HPCZ_VERSION_STRING);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name))
            return commands[i].fn(argc - 1, argv + 1);
    if (name[0] == '-')
        fprintf(stderr, "hpcz: unknown option '%s'\n", name);
    else
        fprintf(stderr, "hpcz: '%s' is not a command\n", name);
    fputs("Try 'hpcz --help' for the list of commands.\n", stderr);
    return EXIT_USAGE;
}
