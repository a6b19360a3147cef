import Engram
import ArgumentParser
import Foundation

/// `engram datasets`: what is found where, with checksums verified; optionally downloads what is missing.
struct Datasets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the datasets Engram can find (each file's MD5 checked) and where; download missing ones.")

    @Option(help: "Directory searched first.")
    var dataDir: String?

    @Option(help: "Download this dataset into the cache if it is found nowhere (mnist, fashion-mnist, cifar-10, cifar-100).")
    var download: String?

    func run() throws {
        let locator = DatasetLocator(dataDirectory: dataDir)
        if let download {
            guard let id = DatasetID(rawValue: download) else {
                throw ValidationError("--download must be one of \(DatasetID.allCases.map(\.rawValue).joined(separator: ", ")), got '\(download)'")
            }
            let bar = ProgressBar(label: id.rawValue)
            let path = try locator.locateOrDownloadBlocking(id, progress: { _, p in bar.update(p) })
            print("\(id.rawValue): \(path)")
            return
        }
        print("search order: " + locator.searchRoots().joined(separator: " → "))
        let verified = locator.verifyChecksums ? "MD5 verified" : "MD5 not checked: ENGRAM_SKIP_CHECKSUMS=1"
        for id in DatasetID.allCases {
            var used: String? = nil
            var notes: [String] = []
            for directory in locator.candidateDirectories(for: id) {
                guard FileManager.default.fileExists(atPath: directory) else { continue }
                if let problem = locator.check(id, in: directory) {
                    notes.append("  ✗ \(directory): \(problem)")
                } else if used == nil {
                    used = directory
                    notes.append("  ✓ \(directory) (\(id.files.count) files, \(verified)) ← used")
                } else {
                    notes.append("  ✓ \(directory) (\(verified), shadowed)")
                }
            }
            let missing = dataDir == nil ? "not found (engram run downloads it into \(locator.cacheDirectory))"
                                         : "not found in --data-dir \(dataDir!) (with --data-dir nothing else is searched or downloaded)"
            print("\(id.rawValue): \(used == nil ? missing : "found")")
            notes.forEach { print($0) }
        }
    }
}
