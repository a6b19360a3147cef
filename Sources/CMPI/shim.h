// Open MPI's C API for Swift. MPI_COMM_WORLD and the datatypes are macros over addresses of globals, which Swift
// cannot import: these inline functions hand them over.
#include <mpi.h>

static inline MPI_Comm engram_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype engram_mpi_int64(void) { return MPI_INT64_T; }
static inline int engram_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline MPI_Status *engram_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Datatype engram_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype engram_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op engram_mpi_sum(void) { return MPI_SUM; }
static inline void *engram_mpi_in_place(void) { return MPI_IN_PLACE; }
