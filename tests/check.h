/*
 * check.h - the pass/fail counting of the C tests that print one line per
 * failed check and a total (tests/test_ir.c, test_jobs.c,
 * runtime/test_plan_scale.c). Include once, in the test's main file.
 */
#ifndef HPCZ_TEST_CHECK_H
#define HPCZ_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
        }                                                                                          \
    } while (0)

#endif
