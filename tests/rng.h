/* The C tests' seeded random numbers: xorshift64, the same sequence on every
 * machine. One state per test program; a file wanting another start defines
 * TEST_RNG_SEED before including this (test_rng can also be reset). */
#ifndef HPCZ_TESTS_RNG_H
#define HPCZ_TESTS_RNG_H

#include <stdint.h>

#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#endif

static uint64_t test_rng = TEST_RNG_SEED;

static inline uint64_t rng_next(void)
{
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return test_rng;
}
/* the high 32 bits */
static inline uint32_t urand(void) { return (uint32_t)(rng_next() >> 32); }
/* uniform in [-1, 1) */
static inline float frand(void)
{
    return (float)((rng_next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
/* [lo, hi] */
static inline int irange(int lo, int hi) { return lo + (int)(urand() % (uint32_t)(hi - lo + 1)); }
/* [lo, hi) in steps of (hi - lo) / 2^24 */
static inline float frange(float lo, float hi)
{
    return lo + (hi - lo) * (float)(urand() >> 8) / 16777216.0f;
}

#endif
