// oneDNN convolutions for Engram (see include/engram_dnnl.h). One CPU engine per process; one primitive per
// (direction, shape, bias) kept for the life of the process under a mutex; each thread its own in-order stream.
// Scratchpads are the caller's (dnnl_scratchpad_mode_user), so one primitive may run on several threads at once
// (the data-parallel tests run members on threads of one process).
#define _GNU_SOURCE
#include "engram_dnnl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

enum direction { FORWARD, BACKWARD_DATA, BACKWARD_WEIGHTS };

/// One argument of a convolution: its plain layout, the layout the primitive chose, and the reorder between them
/// (NULL when they are equal, then the caller's buffer is used directly).
typedef struct {
    int arg;
    int isOutput;
    dnnl_memory_desc_t plain, chosen;
    dnnl_primitive_t reorder;
    size_t chosenBytes;
} operand;

typedef struct entry {
    enum direction direction;
    EngramConvShape shape;
    int hasBias;
    dnnl_primitive_t convolution;
    dnnl_memory_desc_t scratchpad;
    size_t scratchpadBytes;
    operand operands[4];
    int operandCount;
    struct entry *next;
} entry;

static dnnl_engine_t engine;
static int engineStatus = -1;
static pthread_once_t engineOnce = PTHREAD_ONCE_INIT;
static pthread_mutex_t cacheLock = PTHREAD_MUTEX_INITIALIZER;
static entry *cache;
static int configuredThreads;
static _Thread_local dnnl_stream_t threadStream;
static void (*ompSetNumThreads)(int);

static void createEngine(void) {
    engineStatus = dnnl_engine_create(&engine, dnnl_cpu, 0);
    // libdnnl links libgomp; its thread-count setter is found at run time so Engram does not link OpenMP itself.
    ompSetNumThreads = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
}

int engram_dnnl_available(void) {
    pthread_once(&engineOnce, createEngine);
    return engineStatus == dnnl_success;
}

void engram_dnnl_set_threads(int threads) {
    __atomic_store_n(&configuredThreads, threads, __ATOMIC_RELAXED);
}

static int sameShape(const EngramConvShape *a, const EngramConvShape *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

static void dimensions(const EngramConvShape *s, dnnl_dims_t src, dnnl_dims_t weights, dnnl_dims_t bias,
                       dnnl_dims_t dst) {
    int outHeight = (s->height + 2 * s->padding - s->kernelHeight) / s->stride + 1;
    int outWidth = (s->width + 2 * s->padding - s->kernelWidth) / s->stride + 1;
    src[0] = s->batch; src[1] = s->channels; src[2] = s->height; src[3] = s->width;
    weights[0] = s->outChannels; weights[1] = s->channels; weights[2] = s->kernelHeight; weights[3] = s->kernelWidth;
    bias[0] = s->outChannels;
    dst[0] = s->batch; dst[1] = s->outChannels; dst[2] = outHeight; dst[3] = outWidth;
}

/// The forward primitive descriptor (also the hint every backward descriptor needs).
static dnnl_status_t forwardDescriptor(const EngramConvShape *s, int hasBias, const_dnnl_primitive_attr_t attr,
                                       dnnl_primitive_desc_t *pd) {
    dnnl_dims_t srcDims, weightDims, biasDims, dstDims;
    dimensions(s, srcDims, weightDims, biasDims, dstDims);
    dnnl_memory_desc_t src, weights, bias, dst;
    dnnl_memory_desc_init_by_tag(&src, 4, srcDims, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&weights, 4, weightDims, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bias, 1, biasDims, dnnl_f32, dnnl_a);
    dnnl_memory_desc_init_by_tag(&dst, 4, dstDims, dnnl_f32, dnnl_format_tag_any);
    dnnl_dims_t strides = {s->stride, s->stride}, padding = {s->padding, s->padding};
    dnnl_convolution_desc_t desc;
    dnnl_status_t status = dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct,
                                                              &src, &weights, hasBias ? &bias : NULL, &dst, strides,
                                                              padding, padding);
    if (status != dnnl_success) return status;
    return dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
}

/// Fills an operand: the plain layout of `dims` and the layout `pd` chose for `query`, with a reorder if they differ.
/// `index` is 1 for a bias (the second weights descriptor), else 0.
static dnnl_status_t describe(operand *op, const_dnnl_primitive_desc_t pd, dnnl_query_t query, int index, int arg,
                              int isOutput, int ndims, const dnnl_dims_t dims) {
    op->arg = arg;
    op->isOutput = isOutput;
    op->reorder = NULL;
    dnnl_status_t status = dnnl_memory_desc_init_by_tag(&op->plain, ndims, dims, dnnl_f32,
                                                        ndims == 4 ? dnnl_abcd : dnnl_a);
    if (status != dnnl_success) return status;
    const dnnl_memory_desc_t *chosen = dnnl_primitive_desc_query_md(pd, query, index);
    if (!chosen) return dnnl_invalid_arguments;
    op->chosen = *chosen;
    op->chosenBytes = dnnl_memory_desc_get_size(chosen);
    if (dnnl_memory_desc_equal(&op->plain, &op->chosen)) return dnnl_success;
    dnnl_primitive_desc_t reorderDescriptor;
    status = isOutput ? dnnl_reorder_primitive_desc_create(&reorderDescriptor, &op->chosen, engine, &op->plain, engine, NULL)
                      : dnnl_reorder_primitive_desc_create(&reorderDescriptor, &op->plain, engine, &op->chosen, engine, NULL);
    if (status != dnnl_success) return status;
    status = dnnl_primitive_create(&op->reorder, reorderDescriptor);
    dnnl_primitive_desc_destroy(reorderDescriptor);
    return status;
}

static void destroyEntry(entry *e) {
    if (e->convolution) dnnl_primitive_destroy(e->convolution);
    for (int i = 0; i < e->operandCount; i++)
        if (e->operands[i].reorder) dnnl_primitive_destroy(e->operands[i].reorder);
    free(e);
}

static dnnl_status_t createEntry(enum direction direction, const EngramConvShape *s, int hasBias, entry **out) {
    entry *e = calloc(1, sizeof *e);
    if (!e) return dnnl_out_of_memory;
    e->direction = direction;
    e->shape = *s;
    e->hasBias = hasBias;
    dnnl_primitive_attr_t attr;
    dnnl_status_t status = dnnl_primitive_attr_create(&attr);
    if (status != dnnl_success) { free(e); return status; }
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_primitive_desc_t forward = NULL, pd = NULL;
    status = forwardDescriptor(s, hasBias, attr, &forward);
    dnnl_dims_t srcDims, weightDims, biasDims, dstDims;
    dimensions(s, srcDims, weightDims, biasDims, dstDims);
    dnnl_dims_t strides = {s->stride, s->stride}, padding = {s->padding, s->padding};
    if (status == dnnl_success && direction == FORWARD) {
        pd = forward;
        forward = NULL;
        operand *ops = e->operands;
        status = describe(&ops[0], pd, dnnl_query_src_md, 0, DNNL_ARG_SRC, 0, 4, srcDims);
        if (status == dnnl_success) status = describe(&ops[1], pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS, 0, 4, weightDims);
        if (status == dnnl_success) status = describe(&ops[2], pd, dnnl_query_dst_md, 0, DNNL_ARG_DST, 1, 4, dstDims);
        e->operandCount = 3;
        if (status == dnnl_success && hasBias) {
            status = describe(&ops[3], pd, dnnl_query_weights_md, 1, DNNL_ARG_BIAS, 0, 1, biasDims);
            e->operandCount = 4;
        }
    } else if (status == dnnl_success) {
        dnnl_memory_desc_t src, weights, bias, dst;
        dnnl_memory_desc_init_by_tag(&src, 4, srcDims, dnnl_f32, dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&weights, 4, weightDims, dnnl_f32, dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&bias, 1, biasDims, dnnl_f32, dnnl_a);
        dnnl_memory_desc_init_by_tag(&dst, 4, dstDims, dnnl_f32, dnnl_format_tag_any);
        dnnl_convolution_desc_t desc;
        if (direction == BACKWARD_DATA)
            status = dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &src, &weights, &dst,
                                                              strides, padding, padding);
        else
            status = dnnl_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &src, &weights,
                                                                 hasBias ? &bias : NULL, &dst, strides, padding, padding);
        if (status == dnnl_success) status = dnnl_primitive_desc_create(&pd, &desc, attr, engine, forward);
        operand *ops = e->operands;
        if (status == dnnl_success && direction == BACKWARD_DATA) {
            status = describe(&ops[0], pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS, 0, 4, weightDims);
            if (status == dnnl_success) status = describe(&ops[1], pd, dnnl_query_diff_dst_md, 0, DNNL_ARG_DIFF_DST, 0, 4, dstDims);
            if (status == dnnl_success) status = describe(&ops[2], pd, dnnl_query_diff_src_md, 0, DNNL_ARG_DIFF_SRC, 1, 4, srcDims);
            e->operandCount = 3;
        } else if (status == dnnl_success) {
            status = describe(&ops[0], pd, dnnl_query_src_md, 0, DNNL_ARG_SRC, 0, 4, srcDims);
            if (status == dnnl_success) status = describe(&ops[1], pd, dnnl_query_diff_dst_md, 0, DNNL_ARG_DIFF_DST, 0, 4, dstDims);
            if (status == dnnl_success) status = describe(&ops[2], pd, dnnl_query_diff_weights_md, 0, DNNL_ARG_DIFF_WEIGHTS, 1, 4, weightDims);
            e->operandCount = 3;
            if (status == dnnl_success && hasBias) {
                status = describe(&ops[3], pd, dnnl_query_diff_weights_md, 1, DNNL_ARG_DIFF_BIAS, 1, 1, biasDims);
                e->operandCount = 4;
            }
        }
    }
    if (status == dnnl_success) {
        const dnnl_memory_desc_t *scratchpad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        if (scratchpad) {
            e->scratchpad = *scratchpad;
            e->scratchpadBytes = dnnl_memory_desc_get_size(scratchpad);
        }
        status = dnnl_primitive_create(&e->convolution, pd);
    }
    if (forward) dnnl_primitive_desc_destroy(forward);
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    if (status != dnnl_success) { destroyEntry(e); return status; }
    *out = e;
    return dnnl_success;
}

/// The cached primitive for a convolution, created on first use.
static dnnl_status_t lookup(enum direction direction, const EngramConvShape *s, int hasBias, entry **out) {
    if (!engram_dnnl_available()) return dnnl_runtime_error;
    pthread_mutex_lock(&cacheLock);
    for (entry *e = cache; e; e = e->next) {
        if (e->direction == direction && e->hasBias == hasBias && sameShape(&e->shape, s)) {
            pthread_mutex_unlock(&cacheLock);
            *out = e;
            return dnnl_success;
        }
    }
    entry *created = NULL;
    dnnl_status_t status = createEntry(direction, s, hasBias, &created);
    if (status == dnnl_success) {
        created->next = cache;
        cache = created;
        *out = created;
    }
    pthread_mutex_unlock(&cacheLock);
    return status;
}

static void *alignedBuffer(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

/// Runs a cached convolution on the caller's plain buffers (one per operand, in the entry's order).
static dnnl_status_t execute(entry *e, void *const *buffers) {
    int threads = __atomic_load_n(&configuredThreads, __ATOMIC_RELAXED);
    if (threads > 0 && ompSetNumThreads) ompSetNumThreads(threads);
    dnnl_status_t status = dnnl_success;
    if (!threadStream) status = dnnl_stream_create(&threadStream, engine, dnnl_stream_default_flags);
    if (status != dnnl_success) return status;
    dnnl_memory_t plain[4] = {0}, chosen[4] = {0}, scratchpadMemory = NULL;
    void *owned[5] = {0};
    dnnl_exec_arg_t args[5];
    int argCount = 0;
    for (int i = 0; i < e->operandCount && status == dnnl_success; i++) {
        operand *op = &e->operands[i];
        status = dnnl_memory_create(&plain[i], &op->plain, engine, buffers[i]);
        if (status != dnnl_success) break;
        if (op->reorder) {
            owned[i] = alignedBuffer(op->chosenBytes);
            if (!owned[i]) { status = dnnl_out_of_memory; break; }
            status = dnnl_memory_create(&chosen[i], &op->chosen, engine, owned[i]);
            if (status != dnnl_success) break;
            if (!op->isOutput) {
                dnnl_exec_arg_t reorderArgs[2] = {{DNNL_ARG_FROM, plain[i]}, {DNNL_ARG_TO, chosen[i]}};
                status = dnnl_primitive_execute(op->reorder, threadStream, 2, reorderArgs);
            }
        }
        args[argCount++] = (dnnl_exec_arg_t){op->arg, op->reorder ? chosen[i] : plain[i]};
    }
    if (status == dnnl_success && e->scratchpadBytes > 0) {
        owned[4] = alignedBuffer(e->scratchpadBytes);
        status = owned[4] ? dnnl_memory_create(&scratchpadMemory, &e->scratchpad, engine, owned[4]) : dnnl_out_of_memory;
        if (status == dnnl_success) args[argCount++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, scratchpadMemory};
    }
    if (status == dnnl_success) status = dnnl_primitive_execute(e->convolution, threadStream, argCount, args);
    for (int i = 0; i < e->operandCount && status == dnnl_success; i++) {
        operand *op = &e->operands[i];
        if (op->reorder && op->isOutput) {
            dnnl_exec_arg_t reorderArgs[2] = {{DNNL_ARG_FROM, chosen[i]}, {DNNL_ARG_TO, plain[i]}};
            status = dnnl_primitive_execute(op->reorder, threadStream, 2, reorderArgs);
        }
    }
    dnnl_status_t waited = dnnl_stream_wait(threadStream);
    if (status == dnnl_success) status = waited;
    for (int i = 0; i < 4; i++) {
        if (plain[i]) dnnl_memory_destroy(plain[i]);
        if (chosen[i]) dnnl_memory_destroy(chosen[i]);
    }
    if (scratchpadMemory) dnnl_memory_destroy(scratchpadMemory);
    for (int i = 0; i < 5; i++) free(owned[i]);
    return status;
}

int engram_dnnl_conv_forward(EngramConvShape shape, const float *src, const float *weights, const float *bias,
                             float *dst) {
    entry *e;
    dnnl_status_t status = lookup(FORWARD, &shape, bias != NULL, &e);
    if (status != dnnl_success) return (int)status;
    void *buffers[4] = {(void *)src, (void *)weights, dst, (void *)bias};
    return (int)execute(e, buffers);
}

int engram_dnnl_conv_backward_data(EngramConvShape shape, const float *weights, const float *diff_dst,
                                   float *diff_src) {
    entry *e;
    dnnl_status_t status = lookup(BACKWARD_DATA, &shape, 0, &e);
    if (status != dnnl_success) return (int)status;
    void *buffers[3] = {(void *)weights, (void *)diff_dst, diff_src};
    return (int)execute(e, buffers);
}

int engram_dnnl_conv_backward_weights(EngramConvShape shape, const float *src, const float *diff_dst,
                                      float *diff_weights, float *diff_bias) {
    entry *e;
    dnnl_status_t status = lookup(BACKWARD_WEIGHTS, &shape, diff_bias != NULL, &e);
    if (status != dnnl_success) return (int)status;
    void *buffers[4] = {(void *)src, (void *)diff_dst, diff_weights, diff_bias};
    return (int)execute(e, buffers);
}

int engram_dnnl_sgemm(char transa, char transb, long m, long n, long k, float alpha, const float *a, long lda,
                      const float *b, long ldb, float beta, float *c, long ldc, int threads) {
    if (!engram_dnnl_available()) return dnnl_runtime_error;
    if (threads <= 0) threads = __atomic_load_n(&configuredThreads, __ATOMIC_RELAXED);
    if (threads > 0 && ompSetNumThreads) ompSetNumThreads(threads);
    return (int)dnnl_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
