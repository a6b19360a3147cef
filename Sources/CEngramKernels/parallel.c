// Element-wise kernels split across threads (see include/engram_kernels.h). The team is libgomp's, found at run time
// (libdnnl links it), so these kernels wake the very threads that wait for oneDNN's next matrix product instead of a
// second pool competing with them for the cores. Without libgomp in the process every kernel runs on the calling thread.
#define _GNU_SOURCE
#include "engram_kernels.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

/// Below this many elements a kernel runs on the calling thread: waking the team costs more than it gains.
enum { PARALLEL_FROM = 1 << 15, ALIGNMENT = 16, REDUCTION_BLOCK = 4096 };

typedef void (*rangeBody)(void *context, long begin, long end);

static void (*gompParallel)(void (*)(void *), void *, unsigned, unsigned);
static int (*ompThreadNumber)(void);
static int (*ompTeamSize)(void);
static pthread_once_t lookupOnce = PTHREAD_ONCE_INIT;
static int configuredThreads = 1;

static void lookup(void) {
    gompParallel = (void (*)(void (*)(void *), void *, unsigned, unsigned))dlsym(RTLD_DEFAULT, "GOMP_parallel");
    ompThreadNumber = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_thread_num");
    ompTeamSize = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_num_threads");
    if (!ompThreadNumber || !ompTeamSize) gompParallel = NULL;
}

void engram_kernels_set_threads(int threads) {
    __atomic_store_n(&configuredThreads, threads > 1 ? threads : 1, __ATOMIC_RELAXED);
}

int engram_kernels_threads(void) {
    pthread_once(&lookupOnce, lookup);
    return gompParallel ? __atomic_load_n(&configuredThreads, __ATOMIC_RELAXED) : 1;
}

typedef struct {
    rangeBody body;
    void *context;
    long count, alignment;
} job;

/// One member of the team: its share of [0, count), cut at multiples of the job's alignment (every share but the last
/// starts and ends on a vector boundary).
static void member(void *argument) {
    const job *work = argument;
    long members = ompTeamSize(), index = ompThreadNumber();
    long units = (work->count + work->alignment - 1) / work->alignment;
    long begin = units * index / members * work->alignment, end = units * (index + 1) / members * work->alignment;
    if (end > work->count) end = work->count;
    if (begin < end) work->body(work->context, begin, end);
}

/// body(context, …) over [0, count): on the calling thread below `parallelFrom`, else in shares across the team.
static void parallelRanges(long count, long parallelFrom, long alignment, rangeBody body, void *context) {
    int threads = engram_kernels_threads();
    if (threads <= 1 || count < parallelFrom) {
        body(context, 0, count);
        return;
    }
    job work = {body, context, count, alignment};
    gompParallel(member, &work, (unsigned)threads, 0);
}

// MARK: Adam

typedef struct {
    float *w, *m, *v;
    const float *g;
    float beta1, beta2, epsilon, weightDecay, learningRate, stepSize, c2Root;
    int decoupled;
} adamArguments;

static void adamRange(void *context, long begin, long end) {
    const adamArguments *a = context;
    engram_adam_update(end - begin, a->w + begin, a->g + begin, a->m + begin, a->v + begin, a->beta1, a->beta2,
                       a->epsilon, a->weightDecay, a->learningRate, a->stepSize, a->c2Root, a->decoupled);
}

void engram_adam_update_parallel(long n, float *w, const float *g, float *m, float *v, float beta1, float beta2,
                                 float epsilon, float weightDecay, float learningRate, float stepSize, float c2Root,
                                 int decoupled) {
    adamArguments a = {w, m, v, g, beta1, beta2, epsilon, weightDecay, learningRate, stepSize, c2Root, decoupled};
    parallelRanges(n, PARALLEL_FROM, ALIGNMENT, adamRange, &a);
}

// MARK: Quadratic penalty

typedef struct {
    const float *w, *omega, *anchor;
    float scale;
    float *out;
    double *blockSums;
    long count;
} quadraticArguments;

/// out = (scale·Ω)·(w − θ*).
static void quadraticGradientRange(void *context, long begin, long end) {
    const quadraticArguments *a = context;
    const float *restrict w = a->w, *restrict omega = a->omega, *restrict anchor = a->anchor;
    float *restrict out = a->out;
    const float scale = a->scale;
    for (long i = begin; i < end; i++) out[i] = scale * omega[i] * (w[i] - anchor[i]);
}

void engram_quadratic_gradient(long n, float scale, const float *w, const float *omega, const float *anchor,
                               float *out) {
    quadraticArguments a = {w, omega, anchor, scale, out, NULL, n};
    parallelRanges(n, PARALLEL_FROM, ALIGNMENT, quadraticGradientRange, &a);
}

/// g = g − (scale·Ω)·(w − θ*).
static void subtractQuadraticGradientRange(void *context, long begin, long end) {
    const quadraticArguments *a = context;
    const float *restrict w = a->w, *restrict omega = a->omega, *restrict anchor = a->anchor;
    float *restrict g = a->out;
    const float scale = a->scale;
    for (long i = begin; i < end; i++) g[i] = g[i] - scale * omega[i] * (w[i] - anchor[i]);
}

void engram_subtract_quadratic_gradient(long n, float scale, const float *w, const float *omega, const float *anchor,
                                        float *g) {
    quadraticArguments a = {w, omega, anchor, scale, g, NULL, n};
    parallelRanges(n, PARALLEL_FROM, ALIGNMENT, subtractQuadraticGradientRange, &a);
}

/// Σ Ω(w − θ*)² of blocks [begin, end) of REDUCTION_BLOCK elements: each block in 16 single-precision lanes, the
/// lanes added in a fixed order in double precision, so the value does not depend on the number of threads.
static void quadraticBlockSums(void *context, long begin, long end) {
    const quadraticArguments *a = context;
    const float *restrict w = a->w, *restrict omega = a->omega, *restrict anchor = a->anchor;
    for (long block = begin; block < end; block++) {
        long from = block * REDUCTION_BLOCK, to = from + REDUCTION_BLOCK;
        if (to > a->count) to = a->count;
        float lanes[16] = {0};
        long i = from;
        for (; i + 16 <= to; i += 16)
            for (int j = 0; j < 16; j++) {
                float d = w[i + j] - anchor[i + j];
                lanes[j] = lanes[j] + omega[i + j] * d * d;
            }
        for (int j = 0; i < to; i++, j++) {
            float d = w[i] - anchor[i];
            lanes[j] = lanes[j] + omega[i] * d * d;
        }
        double sum = 0;
        for (int j = 0; j < 16; j++) sum += lanes[j];
        a->blockSums[block] = sum;
    }
}

double engram_quadratic_value(long n, const float *w, const float *omega, const float *anchor) {
    long blocks = (n + REDUCTION_BLOCK - 1) / REDUCTION_BLOCK;
    if (blocks == 0) return 0;
    double small[64];
    double *sums = blocks <= 64 ? small : malloc((size_t)blocks * sizeof(double));
    if (!sums) abort();
    quadraticArguments a = {w, omega, anchor, 0, NULL, sums, n};
    parallelRanges(blocks, PARALLEL_FROM / REDUCTION_BLOCK, 1, quadraticBlockSums, &a);
    double total = 0;
    for (long b = 0; b < blocks; b++) total += sums[b];
    if (sums != small) free(sums);
    return total;
}

// MARK: Synaptic Intelligence

typedef struct {
    float *path;
    const float *gradient, *after, *before;
} pathArguments;

static void pathIntegralRange(void *context, long begin, long end) {
    const pathArguments *a = context;
    float *restrict path = a->path;
    const float *restrict g = a->gradient, *restrict after = a->after, *restrict before = a->before;
    for (long i = begin; i < end; i++) path[i] = path[i] - g[i] * (after[i] - before[i]);
}

void engram_path_integral_update(long n, float *path, const float *gradient, const float *after, const float *before) {
    pathArguments a = {path, gradient, after, before};
    parallelRanges(n, PARALLEL_FROM, ALIGNMENT, pathIntegralRange, &a);
}

// MARK: Riemannian Walk

typedef struct {
    float *fisher, *score;
    const float *gradient, *before, *after;
    float alpha, epsilon;
    int first;
} walkArguments;

static void walkRange(void *context, long begin, long end) {
    const walkArguments *a = context;
    float *restrict f = a->fisher, *restrict s = a->score;
    const float *restrict g = a->gradient, *restrict before = a->before, *restrict after = a->after;
    const float alpha = a->alpha, keep = 1 - a->alpha, epsilon = a->epsilon;
    if (a->first)
        for (long i = begin; i < end; i++) f[i] = g[i] * g[i];
    else
        for (long i = begin; i < end; i++) f[i] = alpha * g[i] * g[i] + keep * f[i];
    for (long i = begin; i < end; i++) {
        float d = after[i] - before[i];
        float gain = -g[i] * d / (0.5f * f[i] * d * d + epsilon);
        // Swift's max(0, gain): gain when gain >= 0 (−0 included), else 0 (NaN included).
        s[i] = s[i] + (gain >= 0 ? gain : 0.0f);
    }
}

void engram_rwalk_update(long n, float *fisher, float *score, const float *gradient, const float *before,
                         const float *after, float alpha, float epsilon, int first) {
    walkArguments a = {fisher, score, gradient, before, after, alpha, epsilon, first};
    parallelRanges(n, PARALLEL_FROM, ALIGNMENT, walkRange, &a);
}
