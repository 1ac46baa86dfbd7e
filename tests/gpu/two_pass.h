/* The shape of a gpu test that runs its checks twice: first with the host
 * emulation installed (copies, syncs and launches counted, so COUNTED(...)
 * conditions are checked), then on a CUDA device when there is one (values
 * only; COUNTED conditions hold trivially). Include after emulation.h;
 * main() is `return two_pass_main(check_all, "values only");`. */
#ifndef HPCZ_TESTS_GPU_TWO_PASS_H
#define HPCZ_TESTS_GPU_TWO_PASS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int failures, checks;
static bool emulated = true; /* the first pass */
#define COUNTED(cond) (!emulated || (cond))

static void check(bool ok, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(bool ok, const char *what, const char *fmt, ...)
{
    checks++;
    failures += !ok;
    printf("%s %s", ok ? "PASS" : "FAIL", what);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* check_all under the emulation, then on device 0 when it opens; the
 * emulated device memory must all be freed. The exit status. */
static int two_pass_main(void (*check_all)(void), const char *device_pass)
{
    hpcz_cuda_set_impl(&emulation);
    check_all();
    hpcz_cuda_set_impl(NULL);
    check(emu_live == 0, "device memory", ": every emulated allocation freed (%ld left)", emu_live);
    char msg[512];
    if (hpcz_cuda_open(0, msg, sizeof msg)) {
        printf("note: the device pass skipped: %s\n", msg);
    } else {
        printf("-- the same on the device (%s): %s\n", device_pass, hpcz_cuda_device_name());
        emulated = false;
        check_all();
        hpcz_cuda_close();
    }
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

#endif
