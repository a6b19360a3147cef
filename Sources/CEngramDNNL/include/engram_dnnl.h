// Engram's bridge to oneDNN (Debian libdnnl-dev, the library PyTorch runs its CPU convolutions with): 2-D
// convolutions over plain NCHW float tensors, forward, backward-data and backward-weights. Primitives are created
// once per shape and kept; each call reorders its plain operands into the layout the primitive chose (blocked,
// e.g. nChw16c on AVX-512) and back. Every function returns 0 on success and a non-zero oneDNN status otherwise,
// in which case the caller computes the same convolution its own way.
#ifndef ENGRAM_DNNL_H
#define ENGRAM_DNNL_H

typedef struct {
    int batch, channels, height, width;
    int outChannels, kernelHeight, kernelWidth;
    int stride, padding;
} EngramConvShape;

/// 1 when a CPU engine could be created.
int engram_dnnl_available(void);

/// Threads of oneDNN's OpenMP parallel regions (the OpenBLAS thread count, so every kernel runs on the same cores).
void engram_dnnl_set_threads(int threads);

/// dst[N, O, Ho, Wo] = conv(src[N, C, H, W], weights[O, C, kh, kw]) + bias[O] (bias may be NULL).
int engram_dnnl_conv_forward(EngramConvShape shape, const float *src, const float *weights, const float *bias,
                             float *dst);

/// diff_src[N, C, H, W] = the input gradient of the convolution for diff_dst[N, O, Ho, Wo].
int engram_dnnl_conv_backward_data(EngramConvShape shape, const float *weights, const float *diff_dst,
                                   float *diff_src);

/// diff_weights[O, C, kh, kw] (and diff_bias[O] unless NULL) = the weight gradient for src and diff_dst.
int engram_dnnl_conv_backward_weights(EngramConvShape shape, const float *src, const float *diff_dst,
                                      float *diff_weights, float *diff_bias);

/// C[M, N] = alpha·op(A)·op(B) + beta·C, row-major, op = transpose for 'T' (oneDNN's JIT sgemm, AVX-512 where the
/// CPU has it), on `threads` threads (0: the configured count).
int engram_dnnl_sgemm(char transa, char transb, long m, long n, long k, float alpha, const float *a, long lda,
                      const float *b, long ldb, float beta, float *c, long ldc, int threads);

#endif
