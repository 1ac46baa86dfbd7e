/*
 * filter.c - which nodes a pass touches: --include/--exclude regular
 * expressions (POSIX extended, unanchored) over node names and op types, and
 * an --op-types list. One syntax for quantization and pruning.
 */
#include "passes.h"

#include <ctype.h>


hpcz_status hpcz_op_list_check(const char *list, hpcz_error *err)
{
    /* items separated by commas or blanks ("Conv,MatMul", "Conv MatMul") */
    size_t items = 0;
    for (const char *it = list; *it;) {
        while (*it == ',' || isspace((unsigned char)*it))
            it++;
        size_t l = strcspn(it, ", \t\n");
        if (!l)
            break;
        bool ok = isupper((unsigned char)it[0]);
        for (size_t i = 0; ok && i < l; i++)
            ok = isalnum((unsigned char)it[i]) || it[i] == '_';
        if (!ok)
            return hpcz_fail(err, HPCZ_ERR_USAGE, "'%.*s' is not an op type name (like Conv or MatMul)",
                             (int)l, it);
        items++;
        it += l;
    }
    if (!items)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "'%s' names no op type (a list like Conv,MatMul)", list);
    return HPCZ_OK;
}

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
        /* every item an op type name, so a misspelt option swallowed into
         * the list is not silently ignored; blanks separate items as commas */
        f->ops = malloc(strlen(op_types) + 1);
        if (!f->ops) {
            hpcz_filter_release(f);
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        }
        char *o = f->ops;
        for (const char *s = op_types; *s; s++)
            *o++ = isspace((unsigned char)*s) ? ',' : *s;
        *o = 0;
        hpcz_status st = hpcz_op_list_check(f->ops, err);
        if (st) {
            hpcz_filter_release(f);
            return st;
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
    return hpcz_filter_op_allowed(f, n->op_type) && hpcz_filter_names_match(f, n);
}

bool hpcz_filter_names_match(const hpcz_node_filter *f, const hpcz_node *n)
{
    const char *name = n->name ? n->name : "";
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
