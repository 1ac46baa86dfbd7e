/*
 * inspect.c - `hpcz inspect MODEL`: what is in a model.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

enum { OPT_TOP = 'n', OPT_ALL = 'a', OPT_JSON = 256 };

static const cli_opt opts[] = {
    {"json", OPT_JSON, no_argument, NULL,
     "print a JSON document (schema hpcz.inspect version 1, see docs/json.md) instead of text"},
    {"top", OPT_TOP, required_argument, "N", "list the N largest tensors (default 10)"},
    {"all", OPT_ALL, no_argument, NULL, "list every tensor"},
    {"quiet", 'q', no_argument, NULL, "no warnings on stderr"},
    {0},
};

const cli_cmd_info cmd_inspect_info = {
    "inspect", "MODEL [options]",
    "Show a model's inputs and outputs, opsets, node count, op histogram, parameters and bytes "
    "per dtype, the largest tensors with their sparsity (share of exact zeros), and file size.",
    "MODEL is an ONNX or .hpcz file, or '-' for standard input. Weights are initializers and the tensors "
    "of Constant nodes, in subgraphs too.",
    opts,
    .exits = cli_exits_basic,
    .max_operands = 1,
    .operand_files = CLI_FILES_MODEL,
    .legacy = CLI_LEGACY_J_JSON,
};

int cmd_inspect(int argc, char **argv)
{
    bool json = false;
    long long top = 10;
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_inspect_info)) != -1) {
        switch (c) {
        case 'h':
            return EXIT_OK;
        case '?':
            return EXIT_USAGE;
        case OPT_JSON:
            json = true;
            break;
        case OPT_TOP:
            if (!cli_parse_int(&cmd_inspect_info, "top", optarg, 0, 1000000000, &top))
                return EXIT_USAGE;
            break;
        case OPT_ALL:
            top = -1;
            break;
        case 'q':
            cli_verbosity = -1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    const char *path = cli_operand(&cmd_inspect_info, argc, argv, "MODEL");
    if (!path)
        return EXIT_USAGE;
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path, NULL, &err);
    if (!m)
        return cli_file_error(path, &err);
    hpcz_model_summary s;
    if (hpcz_model_summarize(m, &s, &err)) {
        hpcz_model_free(m);
        return cli_file_error(path, &err);
    }
    if (json)
        hpcz_model_summary_write_json(stdout, m, &s); /* machines get every tensor */
    else
        hpcz_model_summary_write_text(stdout, m, &s, top < 0 ? (size_t)-1 : (size_t)top);
    hpcz_model_summary_release(&s);
    hpcz_model_free(m);
    if (fflush(stdout) != 0 || ferror(stdout))
        return cli_error("writing standard output failed");
    return EXIT_OK;
}
