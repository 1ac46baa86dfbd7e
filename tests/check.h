/*
 * check.h - the C tests' assertion: counts and goes on, so that one run
 * lists every failure ("FAIL file:line: condition").
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
