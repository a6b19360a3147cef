import EngramTensor
import EngramData
import Foundation
import Testing

@Suite("BenchmarkKind")
struct BenchmarkKindTests {
    @Test("builds each MNIST-family benchmark by name from located data")
    func buildsByName() throws {
        let locator = DatasetLocator(dataDirectory: datasetsRoot)
        let options = BenchmarkOptions(seed: 1, fraction: 0.01)
        let permuted = try BenchmarkKind.permutedMNIST.load(locator: locator, tasks: 3, options: options)
        #expect(permuted.taskCount == 3 && permuted.name == "permuted-mnist")
        let split = try BenchmarkKind(rawValue: "split-fmnist")!.load(locator: locator, options: options)
        #expect(split.taskCount == 5 && split.train.name == "fashion-mnist/train")
        #expect(throws: DataError.self) { try BenchmarkKind.splitMNIST.load(locator: locator, tasks: 4, options: options) }
        #expect(BenchmarkKind.splitCIFAR100.dataset == .cifar100)
    }

    @Test("pairs CIFAR with augmented image batches and MNIST with flat ones, none at evaluation")
    func loaderDefaults() {
        #expect(BenchmarkKind.splitCIFAR100.trainingLoaderOptions().augmentation == .cifar)
        #expect(BenchmarkKind.splitCIFAR100.evaluationLoaderOptions().augmentation == nil)
        #expect(BenchmarkKind.splitCIFAR100.evaluationLoaderOptions().shuffle == false)
        #expect(BenchmarkKind.rotatedMNIST.trainingLoaderOptions().layout == .flat)
        #expect(BenchmarkKind.splitMNIST.trainingLoaderOptions().normalization == .standardize(mean: [0.1307], std: [0.3081]))
    }

    @Test("measures loader throughput for augmented CIFAR-style batches")
    func cifarThroughput() throws {
        let train = try syntheticDataset(count: 2000, classes: 100, channels: 3, side: 32)
        let bench = try BenchmarkKind.splitCIFAR100.make(DatasetPair(train: train, test: train))
        let result = try LoaderBenchmark.run(bench, options: BenchmarkKind.splitCIFAR100.trainingLoaderOptions(batchSize: 32), batches: 30)
        #expect(result.batches == 30 && result.samples > 0)
        print("loader (CIFAR-style 3×32×32, crop+flip, batch 32): \(Int(result.batchesPerSecond)) batches/s")
    }
}
