#ifndef ENGRAM_CZLIB_SHIM_H
#define ENGRAM_CZLIB_SHIM_H
#include <zlib.h>
#endif
