/*
 * conv_geom.h - window geometry shared by convolutions and pooling.
 */
#ifndef HPCZ_CONV_GEOM_H
#define HPCZ_CONV_GEOM_H

#include "../rt.h"

/* Spatial sizes normalised to (D, H, W); unused leading dims are 1. */
typedef struct conv_geom {
    int nsp;
    int64_t in[3], k[3], out[3], stride[3], dil[3], pb[3], pe[3];
    int64_t ksize, isize, osize;
} conv_geom;

/* Reads kernel_shape (or kdims), strides, dilations, pads, auto_pad (and
 * output_padding/output_shape when transpose) for input x [N, C, ...].
 * False on an invalid or unsupported combination. */
bool rt_conv_geom(rt_ctx *c, const hpcz_array *x, const int64_t *kdims, bool transpose,
                  conv_geom *g);

/* Float 1-D convs with long kernels (cpu/conv1d.c): the taps of an output
 * frame read straight from x, W packed once (freed with free()).
 * rt_wconv_wanted: group 1, at least 32 taps per channel, AVX2 and FMA.
 * rt_wconv_fits (rt.h). rt_wconv_run: one image, y [M][O] (yt: [O][M]) from x [C][L];
 * each output the same sum for any thread count. */
bool rt_wconv_wanted(const conv_geom *g, int64_t group, int64_t M);
rt_wconv *rt_wconv_pack(const hpcz_array *w);
hpcz_status rt_wconv_run(rt_ctx *c, const rt_wconv *pk, const float *x, int64_t C,
                         const conv_geom *g, const float *bias, float *y, bool yt);
void rt_wconv_scratch_release(void);

#endif
