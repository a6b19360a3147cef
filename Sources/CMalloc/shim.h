#ifndef ENGRAM_CMALLOC_SHIM_H
#define ENGRAM_CMALLOC_SHIM_H
#if defined(__linux__)
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>

/// prctl(PR_SET_PDEATHSIG, signal) — prctl is variadic, which Swift cannot call: the kernel sends `signal` to this
/// process when the thread that started it exits. Returns 0 on success.
static inline int engram_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, (unsigned long)signal); }
#endif
#endif
