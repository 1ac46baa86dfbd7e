/*
 * op_attrs.h - node attributes from a compact spec for the runtime tests:
 * "name=i:1;name=f:0.5;name=s:tanh;name=is:1,1;name=ss:Tanh,Relu" (int, float,
 * string, ints, strings).
 * Include after hpcz.h.
 */
#ifndef HPCZ_TEST_OP_ATTRS_H
#define HPCZ_TEST_OP_ATTRS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void parse_attrs(hpcz_model *m, hpcz_node *n, const char *spec_s)
{
    if (!spec_s)
        return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec_s);
    n->attrs = hpcz_model_alloc(m, 8 * sizeof *n->attrs);
    for (char *save = NULL, *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '='), *colon = eq ? strchr(eq, ':') : NULL;
        if (!eq || !colon)
            continue;
        *eq = *colon = 0;
        hpcz_attr *a = &n->attrs[n->n_attrs++];
        a->name = hpcz_model_strdup(m, tok);
        const char *kind = eq + 1, *val = colon + 1;
        if (!strcmp(kind, "i")) {
            a->type = HPCZ_ATTR_INT;
            a->i = strtoll(val, NULL, 10);
        } else if (!strcmp(kind, "f")) {
            a->type = HPCZ_ATTR_FLOAT;
            a->f = strtof(val, NULL);
        } else if (!strcmp(kind, "s")) {
            a->type = HPCZ_ATTR_STRING;
            a->s.data = (const uint8_t *)hpcz_model_strdup(m, val);
            a->s.len = strlen(val);
        } else if (!strcmp(kind, "ss")) {
            a->type = HPCZ_ATTR_STRINGS;
            a->strings = hpcz_model_alloc(m, 8 * sizeof *a->strings);
            for (char *s2 = NULL, *v = strtok_r((char *)val, ",", &s2); v && a->n < 8;
                 v = strtok_r(NULL, ",", &s2)) {
                a->strings[a->n].data = (const uint8_t *)hpcz_model_strdup(m, v);
                a->strings[a->n++].len = strlen(v);
            }
        } else {
            a->type = HPCZ_ATTR_INTS;
            a->ints = hpcz_model_alloc(m, 16 * sizeof *a->ints);
            for (const char *p = val; *p;) {
                a->ints[a->n++] = strtoll(p, (char **)&p, 10);
                if (*p == ',')
                    p++;
            }
        }
    }
}

#endif
