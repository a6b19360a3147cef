import Engram
import ArgumentParser
import Foundation
#if ENGRAM_MPI
import CMPI
#endif

/// `engram run … --data-parallel` under `mpirun -n N` (or `srun`): the ranks form one ``ProcessGroup`` over
/// `MPI_COMM_WORLD` whose sums are `MPI_Allreduce(MPI_IN_PLACE, …, MPI_SUM)` — one per training step for the fused
/// gradient buffer, two per BatchNorm layer forward and one per backward for the synchronised statistics.
enum DataParallelMPI {
    /// Joins the MPI job as a data-parallel member; nil when this engram was built without MPI.
    static func join() -> (any ProcessGroup)? {
        #if ENGRAM_MPI
        let (rank, size) = SweepExecutor.joinMPI()
        return MPIProcessGroup(rank: rank, size: size)
        #else
        return nil
        #endif
    }

    static func leave() {
        #if ENGRAM_MPI
        SweepExecutor.leaveMPI()
        #endif
    }

    /// Ends the whole job after an error on this rank (the others may wait in a collective for it).
    static func abort(_ code: Int32) -> Never {
        #if ENGRAM_MPI
        MPI_Abort(engram_mpi_comm_world(), code)
        #endif
        exit(code)
    }
}

#if ENGRAM_MPI
/// The ranks of `MPI_COMM_WORLD` as a data-parallel group. Open MPI's allreduce algorithms finish with every rank
/// holding the same reduced bits (the run checks the members' parameters after every task).
final class MPIProcessGroup: ProcessGroup {
    let rank: Int, size: Int
    init(rank: Int, size: Int) { self.rank = rank; self.size = size }

    func sum(_ values: inout [Float]) {
        precondition(values.count <= Int(Int32.max), "an MPI sum of \(values.count) values")
        values.withUnsafeMutableBufferPointer {
            _ = MPI_Allreduce(engram_mpi_in_place(), $0.baseAddress, Int32($0.count), engram_mpi_float(), engram_mpi_sum(), engram_mpi_comm_world())
        }
    }

    func sum(_ values: inout [Double]) {
        precondition(values.count <= Int(Int32.max), "an MPI sum of \(values.count) values")
        values.withUnsafeMutableBufferPointer {
            _ = MPI_Allreduce(engram_mpi_in_place(), $0.baseAddress, Int32($0.count), engram_mpi_double(), engram_mpi_sum(), engram_mpi_comm_world())
        }
    }
}
#endif
