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

#endif
