// Per-plane reductions for batch normalization: for each of `planes` planes of `inner` floats (plane k at
// p + k·stride), the sum with eight accumulators — lane j adds elements j, j + 8, j + 16, … — combined as
// ((a₀ + a₁) + (a₂ + a₃)) + ((a₄ + a₅) + (a₆ + a₇)), then the remaining elements added in order. That is the
// arithmetic of Engram's Swift reductions element for element (so the same bits); the eight lanes are one vector,
// and four planes run interleaved, so four independent add chains hide the adds' latency.
#include "engram_kernels.h"

#include <string.h>

#pragma STDC FP_CONTRACT OFF

typedef float lanes __attribute__((vector_size(32)));

static inline lanes load(const float *p) {
    lanes v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float combine(lanes a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

void engram_plane_sums(const float *p, long stride, long planes, long inner, float *out) {
    long k = 0;
    long body = inner - inner % 8;
    for (; k + 4 <= planes; k += 4) {
        const float *p0 = p + k * stride, *p1 = p0 + stride, *p2 = p1 + stride, *p3 = p2 + stride;
        lanes a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (long i = 0; i < body; i += 8) {
            a0 += load(p0 + i); a1 += load(p1 + i); a2 += load(p2 + i); a3 += load(p3 + i);
        }
        float s0 = combine(a0), s1 = combine(a1), s2 = combine(a2), s3 = combine(a3);
        for (long i = body; i < inner; i++) { s0 += p0[i]; s1 += p1[i]; s2 += p2[i]; s3 += p3[i]; }
        out[k] = s0; out[k + 1] = s1; out[k + 2] = s2; out[k + 3] = s3;
    }
    for (; k < planes; k++) {
        const float *q = p + k * stride;
        lanes a = {0};
        for (long i = 0; i < body; i += 8) a += load(q + i);
        float s = combine(a);
        for (long i = body; i < inner; i++) s += q[i];
        out[k] = s;
    }
}

void engram_plane_squared_deviations(const float *p, float center, long stride, long planes, long inner, float *out) {
    long k = 0;
    long body = inner - inner % 8;
    lanes c = {center, center, center, center, center, center, center, center};
    for (; k + 4 <= planes; k += 4) {
        const float *p0 = p + k * stride, *p1 = p0 + stride, *p2 = p1 + stride, *p3 = p2 + stride;
        lanes a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (long i = 0; i < body; i += 8) {
            lanes d0 = load(p0 + i) - c, d1 = load(p1 + i) - c, d2 = load(p2 + i) - c, d3 = load(p3 + i) - c;
            a0 += d0 * d0; a1 += d1 * d1; a2 += d2 * d2; a3 += d3 * d3;
        }
        float s0 = combine(a0), s1 = combine(a1), s2 = combine(a2), s3 = combine(a3);
        for (long i = body; i < inner; i++) {
            float d0 = p0[i] - center, d1 = p1[i] - center, d2 = p2[i] - center, d3 = p3[i] - center;
            s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
        }
        out[k] = s0; out[k + 1] = s1; out[k + 2] = s2; out[k + 3] = s3;
    }
    for (; k < planes; k++) {
        const float *q = p + k * stride;
        lanes a = {0};
        for (long i = 0; i < body; i += 8) { lanes d = load(q + i) - c; a += d * d; }
        float s = combine(a);
        for (long i = body; i < inner; i++) { float d = q[i] - center; s += d * d; }
        out[k] = s;
    }
}

void engram_plane_sums_and_dots(const float *p, const float *q, long stride, long planes, long inner, float *sums,
                                float *dots) {
    long body = inner - inner % 8;
    long k = 0;
    for (; k + 2 <= planes; k += 2) {
        const float *p0 = p + k * stride, *p1 = p0 + stride, *q0 = q + k * stride, *q1 = q0 + stride;
        lanes s0 = {0}, s1 = {0}, d0 = {0}, d1 = {0};
        for (long i = 0; i < body; i += 8) {
            lanes x0 = load(p0 + i), x1 = load(p1 + i);
            s0 += x0; s1 += x1;
            d0 += x0 * load(q0 + i); d1 += x1 * load(q1 + i);
        }
        float t0 = combine(s0), t1 = combine(s1), e0 = combine(d0), e1 = combine(d1);
        for (long i = body; i < inner; i++) { t0 += p0[i]; t1 += p1[i]; e0 += p0[i] * q0[i]; e1 += p1[i] * q1[i]; }
        sums[k] = t0; sums[k + 1] = t1; dots[k] = e0; dots[k + 1] = e1;
    }
    for (; k < planes; k++) {
        const float *pk = p + k * stride, *qk = q + k * stride;
        lanes s = {0}, d = {0};
        for (long i = 0; i < body; i += 8) { lanes x = load(pk + i); s += x; d += x * load(qk + i); }
        float t = combine(s), e = combine(d);
        for (long i = body; i < inner; i++) { t += pk[i]; e += pk[i] * qk[i]; }
        sums[k] = t; dots[k] = e;
    }
}
