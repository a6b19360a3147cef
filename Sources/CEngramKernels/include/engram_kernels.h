// Element-wise kernels that Swift cannot vectorize: Swift's Float.squareRoot() goes through a libm call with an
// errno check on Linux, one element at a time, so any loop with a square root stays scalar.
#ifndef ENGRAM_KERNELS_H
#define ENGRAM_KERNELS_H

/// Adam's update of n parameters in place, without an update mask (the arithmetic of `Adam.step()`, element for
/// element in the same order):
///   g' = g + wd·w (L2, when not decoupled);  m = β₁m + (1 − β₁)g';  v = β₂v + ((1 − β₂)g')g';
///   d = (stepSize·m) / (√v / c2Root + ε) (+ (lr·wd)·w when decoupled);  w = w − d.
void engram_adam_update(long n, float *w, const float *g, float *m, float *v, float beta1, float beta2, float epsilon,
                        float weightDecay, float learningRate, float stepSize, float c2Root, int decoupled);

#endif
