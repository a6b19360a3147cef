#ifndef ENGRAM_COPENBLAS_SHIM_H
#define ENGRAM_COPENBLAS_SHIM_H
#include <cblas.h>
/* Declared by OpenBLAS (openblas_config.h / cblas.h); repeated here for older headers. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
/* LAPACK's divide-and-conquer SVD, which OpenBLAS ships (Fortran calling convention: every argument by address). */
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u, const int *ldu,
             double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info);
#endif
