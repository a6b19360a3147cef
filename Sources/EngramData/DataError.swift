import EngramTensor

/// Every failure of the data layer: a missing, truncated or malformed file, a checksum that does not
/// match, a failed download, or an impossible configuration. Each case names the file (or URL) and
/// the defect, so the message alone says what to fix.
public enum DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// The file exists but could not be read.
    case readFailed(path: String, reason: String)
    /// The path names something other than a regular file (a FIFO, a device, a directory, a socket),
    /// which the data layer never opens: reading it could block forever or never end.
    case notRegularFile(path: String, kind: String)
    /// A file, or the data it declares or decompresses to, exceeds the limit for its kind.
    case exceedsLimit(path: String, what: String, limit: Int)
    /// The file could not be written (cache, download target).
    case writeFailed(path: String, reason: String)
    /// The gzip stream is malformed (wrong magic, bad header, bad deflate data, CRC mismatch).
    case corruptGzip(path: String, reason: String)
    /// The gzip stream ends before its last member is complete.
    case truncatedGzip(path: String)
    /// An IDX file starts with the wrong magic number.
    case badMagic(path: String, expected: UInt32, found: UInt32)
    /// A header declares dimensions that are impossible or not the ones expected.
    case badDimensions(path: String, reason: String)
    /// The data length differs from what the header declares.
    case lengthMismatch(path: String, expected: Int, actual: Int)
    /// An images file and its labels file disagree on the number of samples.
    case countMismatch(images: String, labels: String, imageCount: Int, labelCount: Int)
    /// A label is outside the dataset's class range.
    case invalidLabel(path: String, index: Int, value: Int, classCount: Int)
    /// A record file's length is not a whole number of records (or not the documented count).
    case recordSizeMismatch(path: String, recordSize: Int, length: Int)
    /// A tar archive is malformed or truncated.
    case corruptTar(path: String, reason: String)
    /// An archive lacks a member the format requires.
    case missingMember(archive: String, member: String)
    /// A file's MD5 differs from the published checksum.
    case checksumMismatch(path: String, expected: String, actual: String)
    /// A dataset was not found in any searched location (and was not downloaded).
    case datasetNotFound(dataset: String, searched: [String])
    /// A download failed (network error, HTTP status, short body).
    case downloadFailed(url: String, reason: String)
    /// A benchmark, loader or metric was configured with impossible values.
    case invalidConfiguration(String)

    /// The one-line message: `<file>: <defect>`. Control characters (which a file or member name
    /// taken from a corrupt archive may hold) are shown escaped, so the message stays on one line.
    public var description: String { escapingControlCharacters(message) }

    private var message: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): file not found"
        case .readFailed(let path, let reason):
            return "\(path): cannot read: \(reason)"
        case .notRegularFile(let path, let kind):
            return "\(path): not a regular file (\(kind))"
        case .exceedsLimit(let path, let what, let limit):
            return "\(path): \(what) exceeds the limit of \(limit) bytes"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write: \(reason)"
        case .corruptGzip(let path, let reason):
            return "\(path): corrupt gzip data: \(reason)"
        case .truncatedGzip(let path):
            return "\(path): truncated gzip data (the compressed stream ends early)"
        case .badMagic(let path, let expected, let found):
            return "\(path): wrong magic number 0x\(hex(found)), expected 0x\(hex(expected))"
        case .badDimensions(let path, let reason):
            return "\(path): bad dimensions: \(reason)"
        case .lengthMismatch(let path, let expected, let actual):
            return "\(path): \(actual) bytes of data where the header declares \(expected)"
                + (actual < expected ? " (truncated)" : " (trailing bytes)")
        case .countMismatch(let images, let labels, let imageCount, let labelCount):
            return "\(images) holds \(imageCount) images but \(labels) holds \(labelCount) labels"
        case .invalidLabel(let path, let index, let value, let classCount):
            return "\(path): label \(value) at record \(index) is outside 0..<\(classCount)"
        case .recordSizeMismatch(let path, let recordSize, let length):
            return "\(path): length \(length) is not a whole number of \(recordSize)-byte records"
                + " (\(length / max(recordSize, 1)) records and \(length % max(recordSize, 1)) extra bytes)"
        case .corruptTar(let path, let reason):
            return "\(path): corrupt tar archive: \(reason)"
        case .missingMember(let archive, let member):
            return "\(archive): missing member \(member)"
        case .checksumMismatch(let path, let expected, let actual):
            return "\(path): MD5 \(actual) does not match the published \(expected)"
        case .datasetNotFound(let dataset, let searched):
            return "dataset \(dataset) not found; searched: " + searched.joined(separator: "; ")
        case .downloadFailed(let url, let reason):
            return "download of \(url) failed: \(reason)"
        case .invalidConfiguration(let message):
            return "invalid configuration: \(message)"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

/// `text` with control characters escaped (`\n`, `\t`, `\r`, else `\u{…}`).
func escapingControlCharacters(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case _ where scalar.properties.generalCategory == .control:
            out += "\\u{" + String(scalar.value, radix: 16) + "}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
