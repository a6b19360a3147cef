#ifndef ENGRAM_COPENBLAS_SHIM_H
#define ENGRAM_COPENBLAS_SHIM_H
#include <cblas.h>
/* Declared by OpenBLAS (openblas_config.h / cblas.h); repeated here for older headers. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif
