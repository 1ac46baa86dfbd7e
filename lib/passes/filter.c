/*
 * filter.c - which nodes a pass touches: --include/--exclude regular
 * expressions (POSIX extended, unanchored) over node names and op types, and
 * an --op-types list. One syntax for quantization and pruning.
 */
#include "passes.h"


hpcz_status hpcz_filter_init(hpcz_node_filter *f, const char *include, const char *exclude,
                             const char *op_types, hpcz_error *err)
{
    memset(f, 0, sizeof *f);
    char buf[256];
    if (include && *include) {
        int rc = regcomp(&f->inc, include, REG_EXTENDED | REG_NOSUB);
        if (rc) {
            regerror(rc, &f->inc, buf, sizeof buf);
            return hpcz_fail(err, HPCZ_ERR_USAGE, "include pattern '%s': %s", include, buf);
        }
        f->has_inc = true;
    }
    if (exclude && *exclude) {
        int rc = regcomp(&f->exc, exclude, REG_EXTENDED | REG_NOSUB);
        if (rc) {
            regerror(rc, &f->exc, buf, sizeof buf);
            hpcz_filter_release(f);
            return hpcz_fail(err, HPCZ_ERR_USAGE, "exclude pattern '%s': %s", exclude, buf);
        }
        f->has_exc = true;
    }
    if (op_types && *op_types) {
        f->ops = strdup(op_types);
        if (!f->ops) {
            hpcz_filter_release(f);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
    }
    return HPCZ_OK;
}

bool hpcz_filter_op_allowed(const hpcz_node_filter *f, const char *op_type)
{
    return !f->ops || hpcz_list_contains(f->ops, op_type);
}

bool hpcz_filter_match(const hpcz_node_filter *f, const hpcz_node *n)
{
    const char *name = n->name ? n->name : "";
    if (!hpcz_filter_op_allowed(f, n->op_type))
        return false;
    if (f->has_inc && regexec(&f->inc, name, 0, NULL, 0) != 0 &&
        regexec(&f->inc, n->op_type, 0, NULL, 0) != 0)
        return false;
    if (f->has_exc && (regexec(&f->exc, name, 0, NULL, 0) == 0 ||
                       regexec(&f->exc, n->op_type, 0, NULL, 0) == 0))
        return false;
    return true;
}

void hpcz_filter_release(hpcz_node_filter *f)
{
    if (f->has_inc)
        regfree(&f->inc);
    if (f->has_exc)
        regfree(&f->exc);
    free(f->ops);
    memset(f, 0, sizeof *f);
}
