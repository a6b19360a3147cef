import EngramTensor

/// One distribution file of a dataset, as published: name, size, MD5 and canonical URL.
public struct KnownFile: Sendable, Equatable, Codable {
    /// The file name (also its name inside the dataset's directory).
    public var name: String
    /// The published size in bytes (informational: used for progress, never to accept or reject).
    public var bytes: Int
    /// The published MD5, lower-case hex.
    public var md5: String
    /// Where the file can be downloaded.
    public var url: String

    /// Creates an entry.
    public init(name: String, bytes: Int, md5: String, url: String) {
        self.name = name
        self.bytes = bytes
        self.md5 = md5
        self.url = url
    }
}

/// The datasets Engram knows, with their distribution files. Checksums and sizes for MNIST,
/// Fashion-MNIST and CIFAR-100 are those in `shared/datasets/README.md`; CIFAR-10's are from the
/// authors' page (https://www.cs.toronto.edu/~kriz/cifar.html).
public enum DatasetID: String, CaseIterable, Codable, Sendable {
    /// MNIST handwritten digits (LeCun, Cortes & Burges).
    case mnist
    /// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017).
    case fashionMNIST = "fashion-mnist"
    /// CIFAR-10, binary version (Krizhevsky 2009).
    case cifar10 = "cifar-10"
    /// CIFAR-100, binary version (Krizhevsky 2009).
    case cifar100 = "cifar-100"

    /// The directory name under a datasets root (`mnist`, `fashion-mnist`, `cifar-10`, `cifar-100`).
    public var directoryName: String { rawValue }

    /// Number of (fine) classes.
    public var classCount: Int { self == .cifar100 ? 100 : 10 }

    /// The files that make up the dataset, with their published checksums.
    public var files: [KnownFile] {
        switch self {
        case .mnist:
            // The PyTorch mirror of LeCun's files (the original site is often unavailable).
            let base = "https://ossci-datasets.s3.amazonaws.com/mnist/"
            return [
                KnownFile(name: "train-images-idx3-ubyte.gz", bytes: 9_912_422, md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873", url: base + "train-images-idx3-ubyte.gz"),
                KnownFile(name: "train-labels-idx1-ubyte.gz", bytes: 28_881, md5: "d53e105ee54ea40749a09fcbcd1e9432", url: base + "train-labels-idx1-ubyte.gz"),
                KnownFile(name: "t10k-images-idx3-ubyte.gz", bytes: 1_648_877, md5: "9fb629c4189551a2d022fa330f9573f3", url: base + "t10k-images-idx3-ubyte.gz"),
                KnownFile(name: "t10k-labels-idx1-ubyte.gz", bytes: 4_542, md5: "ec29112dd5afa0611ce80d1b7f02629c", url: base + "t10k-labels-idx1-ubyte.gz"),
            ]
        case .fashionMNIST:
            let base = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
            return [
                KnownFile(name: "train-images-idx3-ubyte.gz", bytes: 26_421_880, md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d", url: base + "train-images-idx3-ubyte.gz"),
                KnownFile(name: "train-labels-idx1-ubyte.gz", bytes: 29_515, md5: "25c81989df183df01b3e8a0aad5dffbe", url: base + "train-labels-idx1-ubyte.gz"),
                KnownFile(name: "t10k-images-idx3-ubyte.gz", bytes: 4_422_102, md5: "bef4ecab320f06d8554ea6380940ec79", url: base + "t10k-images-idx3-ubyte.gz"),
                KnownFile(name: "t10k-labels-idx1-ubyte.gz", bytes: 5_148, md5: "bb300cfdad3c16e7a12a480ee83cd310", url: base + "t10k-labels-idx1-ubyte.gz"),
            ]
        case .cifar10:
            return [KnownFile(name: "cifar-10-binary.tar.gz", bytes: 170_052_171, md5: "c32a1d4ab5d03f1284b67883e8d87530",
                              url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz")]
        case .cifar100:
            return [KnownFile(name: "cifar-100-binary.tar.gz", bytes: 168_513_733, md5: "03b5dce01913d631647c71ecec9e9cb8",
                              url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz")]
        }
    }

    /// Reads the dataset's train and test splits from a directory holding `files`.
    public func load(from directory: String) throws -> DatasetPair {
        switch self {
        case .mnist: return try MNISTReader.load(directory: directory, name: rawValue)
        case .fashionMNIST: return try MNISTReader.load(directory: directory, name: rawValue)
        case .cifar10: return try CIFARReader.loadCIFAR10(archive: joinPath(directory, files[0].name))
        case .cifar100: return try CIFARReader.loadCIFAR100(archive: joinPath(directory, files[0].name))
        }
    }

    /// Per-channel mean of the training pixels (scaled to [0, 1]), the usual normalisation constants.
    public var channelMean: [Float] {
        switch self {
        case .mnist: return [0.1307]
        case .fashionMNIST: return [0.2860]
        case .cifar10: return [0.4914, 0.4822, 0.4465]
        case .cifar100: return [0.5071, 0.4865, 0.4409]
        }
    }

    /// Per-channel standard deviation of the training pixels (scaled to [0, 1]).
    public var channelStd: [Float] {
        switch self {
        case .mnist: return [0.3081]
        case .fashionMNIST: return [0.3530]
        case .cifar10: return [0.2470, 0.2435, 0.2616]
        case .cifar100: return [0.2673, 0.2564, 0.2762]
        }
    }
}
