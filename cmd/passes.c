/*
 * passes.c - `hpcz passes`: list the passes, their options and defaults.
 */
#include "cli.h"

#include <string.h>

static const cli_opt opts[] = {
    {0},
};

static const cli_exit passes_exits[] = {
    {EXIT_OK, "success"},
    {EXIT_USAGE, "usage error: bad option, unknown pass"},
    CLI_EXIT_END,
};

const cli_cmd_info cmd_passes_info = {
    "passes", "[PASS...]",
    "List the passes that --passes pipelines are made of, with their options and defaults.",
    "A pipeline is a comma-separated list of passes, each with optional settings in braces: "
    "'fold-bn,eliminate,dce'. A bare option name in braces turns a boolean option on. Every "
    "command that writes a model accepts --passes; its own options are a preset pipeline.",
    opts,
    .exits = passes_exits,
    .max_operands = 1000,
    .operand_files = NULL,
    .legacy = 0,
};

int cmd_passes(int argc, char **argv)
{
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_passes_info)) != -1) {
        if (c == 'h')
            return EXIT_OK;
        return EXIT_USAGE;
    }
    size_t n;
    const hpcz_pass *const *list = hpcz_pass_list(&n);
    if (optind < argc) {
        for (int i = optind; i < argc; i++) {
            const hpcz_pass *p = hpcz_pass_find(argv[i]);
            if (!p) {
                hpcz_error err;
                hpcz_pipeline_free(hpcz_pipeline_parse(argv[i], &err));
                return cli_usage_error(&cmd_passes_info, "%s", err.msg);
            }
            hpcz_pass_write_help(stdout, p);
        }
        return EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (i)
            printf("\n");
        hpcz_pass_write_help(stdout, list[i]);
    }
    return EXIT_OK;
}
