// Adam's update (see include/engram_kernels.h). The square root is __builtin_elementwise_sqrt, IEEE-exact like libm's
// sqrtf but without errno, so the loop vectorizes; no contraction into fused multiply-adds, so every operation rounds
// as Swift's scalar path does and the results are bit-identical.
#include "engram_kernels.h"

#pragma STDC FP_CONTRACT OFF

void engram_adam_update(long n, float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                        float beta1, float beta2, float epsilon, float weightDecay, float learningRate, float stepSize,
                        float c2Root, int decoupled) {
    const float keep1 = 1 - beta1, keep2 = 1 - beta2, decay = learningRate * weightDecay;
    if (decoupled) {
        for (long i = 0; i < n; i++) {
            float gi = g[i];
            float mi = beta1 * m[i] + keep1 * gi;
            float vi = beta2 * v[i] + keep2 * gi * gi;
            float d = stepSize * mi / (__builtin_elementwise_sqrt(vi) / c2Root + epsilon);
            d = d + decay * w[i];
            m[i] = mi;
            v[i] = vi;
            w[i] = w[i] - d;
        }
    } else {
        for (long i = 0; i < n; i++) {
            float gi = g[i];
            gi = gi + weightDecay * w[i];
            float mi = beta1 * m[i] + keep1 * gi;
            float vi = beta2 * v[i] + keep2 * gi * gi;
            float d = stepSize * mi / (__builtin_elementwise_sqrt(vi) / c2Root + epsilon);
            m[i] = mi;
            v[i] = vi;
            w[i] = w[i] - d;
        }
    }
}
