/*
 * act512.h - a fused activation (rt_act) applied to 16 accumulators in
 * registers, before the kernel stores them: the conv kernels' epilogues
 * (conv.c's dc_task512, pw_task512, dwb_task) instead of a second pass of
 * rt_act_apply over the output (on a 1x1 conv's 512-column tasks, 64 KiB
 * of output a task, that pass read y back from L2).
 *
 * Only for the activations whose vector and scalar forms in rt_act_apply
 * agree on every input, NaN and signed zeros included (rt_act_lanes):
 * their bits then do not depend on where a value falls in the array, and
 * rt_act512 does exactly rt_act_apply's operations. x86-64 with GCC/Clang
 * only; callers need the avx512f target.
 */
#ifndef HPCZ_RT_ACT512_H
#define HPCZ_RT_ACT512_H

#include "../rt.h"

/* Whether act may run on any grouping of the values: none, ReLU, Clip,
 * LeakyRelu or HardSwish in float32 (with Max and the post-affine). Not
 * SiLU (its vector exp and expf differ in the last bits) nor the float16
 * epilogues. */
static inline bool rt_act_lanes(const rt_act *act)
{
    if (!rt_act_any(act))
        return true;
    if (act->f16)
        return false;
    switch (act->kind) {
    case RT_ACT_NONE:
    case RT_ACT_RELU:
    case RT_ACT_CLIP:
    case RT_ACT_LEAKY:
    case RT_ACT_HSWISH: return true;
    default: return false;
    }
}

/* Whether rt_act_apply gives the same bits however the array is split
 * into calls: the activations above and every float16 epilogue (whose
 * vector and scalar forms round alike; SiLU's through a table). Not the
 * float32 SiLU, whose runs decide which values take expf. Then a kernel
 * may apply it once to contiguous rows (ppocr_cls's float16 HardSwish
 * came in 8384 calls of 52 values a run, each paying the call). */
static inline bool rt_act_split_free(const rt_act *act)
{
    return !rt_act_any(act) || act->f16 || rt_act_lanes(act);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Clip as rt_act_apply's scalar loop does it: y < a ? a : y, then > b ? b
 * (NaN kept). The float16 epilogues (backend.c) use it too. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 rt_clip512(__m512 v, float lo,
                                                                                  float hi)
{
    __m512 a = _mm512_set1_ps(lo), b = _mm512_set1_ps(hi);
    v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, a, _CMP_LT_OQ), a);
    return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, b, _CMP_GT_OQ), b);
}

/* rt_act_apply on 16 values (act: rt_act_lanes). Each line is the
 * operation rt_act_apply does, in its order:
 *   ReLU  y > 0 ? y : 0          (vmaxps(y, 0) is exactly that)
 *   Clip  y < a ? a : y, then > b ? b
 *   Leaky y < 0 ? a * y : y      (leaky_512)
 *   HSwish y * min(1, max(0, y * (1/6) + 0.5))   (hswish_512)
 *   Max   y where y > mx or unordered, else mx   (max_512)
 *   post  y * pm + pa            (a multiply, then an add) */
__attribute__((target("avx512f"), always_inline)) static inline __m512 rt_act512(const rt_act *act,
                                                                                 __m512 v)
{
    if (!rt_act_any(act))
        return v;
    const __m512 zero = _mm512_setzero_ps();
    switch (act->kind) {
    case RT_ACT_RELU: v = _mm512_max_ps(v, zero); break;
    case RT_ACT_CLIP: v = rt_clip512(v, act->a, act->b); break;
    case RT_ACT_LEAKY:
        v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), _mm512_set1_ps(act->a), v);
        break;
    case RT_ACT_HSWISH: {
        __m512 t = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.0f / 6)), _mm512_set1_ps(0.5f));
        t = _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(zero, t));
        v = _mm512_mul_ps(v, t);
        break;
    }
    default: break;
    }
    if (act->max) {
        __m512 mv = _mm512_set1_ps(act->mx);
        v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, mv, _CMP_NLE_UQ), mv, v);
    }
    if (act->post)
        v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(act->pm)), _mm512_set1_ps(act->pa));
    return v;
}
#endif

#endif
