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

/// The same update split across the kernel threads (each element's arithmetic unchanged, so the same bits).
void engram_adam_update_parallel(long n, float *w, const float *g, float *m, float *v, float beta1, float beta2,
                                 float epsilon, float weightDecay, float learningRate, float stepSize, float c2Root,
                                 int decoupled);

// The kernels below split their elements across threads: libgomp's team (the one oneDNN runs on, found at run time),
// `engram_kernels_set_threads` members; on the calling thread when libgomp is not in the process or n is small.
// Element-wise results do not depend on the split.

/// Sets the number of threads the kernels use (1: the calling thread only).
void engram_kernels_set_threads(int threads);
/// The number of threads the kernels use: the configured count, or 1 without libgomp.
int engram_kernels_threads(void);

/// out = (scale·Ω)·(w − θ*), the gradient of a quadratic penalty (scale = 2λ).
void engram_quadratic_gradient(long n, float scale, const float *w, const float *omega, const float *anchor, float *out);
/// g = g − (scale·Ω)·(w − θ*): a quadratic penalty's gradient taken out of a total gradient.
void engram_subtract_quadratic_gradient(long n, float scale, const float *w, const float *omega, const float *anchor,
                                        float *g);
/// Σ Ω(w − θ*)², summed in blocks of 4 096 elements (16 single-precision lanes each, added in double), the blocks
/// added in order: the same value for any thread count.
double engram_quadratic_value(long n, const float *w, const float *omega, const float *anchor);
/// Synaptic Intelligence's path integral: ω = ω − g·(θ_after − θ_before).
void engram_path_integral_update(long n, float *path, const float *gradient, const float *after, const float *before);

/// Riemannian Walk's step: F = αg² + (1 − α)F (F = g² when `first`), then s = s + max(0, −g·Δθ / (½FΔθ² + ε)) with
/// the updated F and Δθ = after − before (the arithmetic of `RWalk.updateFisher` and `RWalk.accumulateScore`, in their
/// order).
void engram_rwalk_update(long n, float *fisher, float *score, const float *gradient, const float *before,
                         const float *after, float alpha, float epsilon, int first);

// Per-plane reductions (batch normalization's statistics and gradients): plane k is the `inner` floats at
// p + k·stride, k < planes. Each result is the sum of Engram's Swift reductions, bit for bit: eight accumulators
// (lane j adds elements j, j + 8, …), combined ((a₀ + a₁) + (a₂ + a₃)) + ((a₄ + a₅) + (a₆ + a₇)), then the
// remaining elements in order.

/// out[k] = Σᵢ pₖᵢ.
void engram_plane_sums(const float *p, long stride, long planes, long inner, float *out);
/// out[k] = Σᵢ (pₖᵢ − center)².
void engram_plane_squared_deviations(const float *p, float center, long stride, long planes, long inner, float *out);
/// sums[k] = Σᵢ pₖᵢ and dots[k] = Σᵢ pₖᵢqₖᵢ, reading each plane once.
void engram_plane_sums_and_dots(const float *p, const float *q, long stride, long planes, long inner, float *sums,
                                float *dots);

#endif
