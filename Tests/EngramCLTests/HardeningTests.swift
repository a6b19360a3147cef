import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// Bad input gets one clear error and loses nothing (issue 14): the cases a hostile-input run found.
@Suite(.serialized) struct HardeningTests {
    @Test("an evaluation batch size of zero or below is refused, naming the key", arguments: [0, -3])
    func evaluationBatchSizeIsValidated(size: Int) throws {
        var config = smallPermutedMNIST(strategy: "finetune")
        config.training.evaluationBatchSize = size
        #expect {
            try config.validate()
        } throws: { error in
            "\(error)".contains("evaluation_batch_size") && "\(error)".contains("\(size)")
        }
    }

    @Test("a log.txt that cannot be written (full disk) is reported once and the run still finishes")
    func fullDiskLogDoesNotStopTheRun() throws {
        let dir = try temporaryDirectory("engram-full-disk")
        let out = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: out.appendingPathComponent("log.txt").path, withDestinationPath: "/dev/full")
        let log = dir.appendingPathComponent("output.txt")
        let status = try engram(["run", "--benchmark", "permuted-mnist", "--tasks", "2", "--epochs", "1", "--hidden", "16",
                                 "--fraction", "0.01", "--strategy", "finetune", "--data-dir", datasetsRoot, "--out", out.path], log: log)
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(status == 0, "\(output)")
        #expect(output.contains("cannot write") && output.contains("log.txt"))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("results.json").path))
    }
}

@Suite struct StrictConfigurationTests {
    func decode(_ yaml: String) throws -> ExperimentConfiguration {
        try YAMLDecoder().decode(ExperimentConfiguration.self, from: yaml)
    }

    @Test("an unknown key is refused, naming it and the nearest valid key",
          arguments: [("lr: 0.1", "'lr'", "'training.lr'"), ("training:\n  learning_rate: 0.1", "'training.learning_rate'", "'training.lr'"),
                      ("trainng:\n  lr: 0.1", "'trainng'", "'training'"), ("hyperparameters:\n  lamda: 1", "'hyperparameters.lamda'", "'hyperparameters.lambda'")])
    func unknownKeysAreRefused(yaml: String, key: String, suggestion: String) throws {
        #expect {
            try decode(yaml)
        } throws: { error in
            let text = ConfigurationError.describe(error)
            return text.contains("unknown key \(key)") && text.contains("did you mean \(suggestion)")
        }
    }

    @Test("a key older versions wrote (empirical_fisher) is still read, and a configuration round-trips")
    func retiredKeysAndRoundTrip() throws {
        _ = try decode("hyperparameters:\n  empirical_fisher: true\n")
        var config = smallSplitMNIST(strategy: "mas")
        config.hyperparameters[shared: "lambda"] = 0.5
        #expect(try decode(config.yamlText()) == config)
    }

    @Test("a sweep file with an unknown top-level key is refused naming it")
    func sweepKeysAreChecked() throws {
        #expect {
            try YAMLDecoder().decode(SweepSpecification.self, from: "grid:\n  seed: [0]\ngridss: []\n")
        } throws: { error in
            ConfigurationError.describe(error).contains("unknown key 'gridss'; did you mean 'grids'?")
        }
    }

    @Test("a type mistake is described in one line naming the dotted key")
    func typeMistakesNameTheKey() throws {
        #expect {
            try decode("training:\n  batch_size: many\n")
        } throws: { error in
            let text = ConfigurationError.describe(error)
            return text.contains("'training.batch_size'") && !text.contains("\n")
        }
    }

    @Test("a strategy list with an empty or repeated part is refused", arguments: ["mas+mas", "mas+", "+lwf", "ewc+mas+ewc"])
    func malformedStrategyListsAreRefused(name: String) throws {
        #expect(throws: StrategyError.self) { try StrategyRegistry.make(name) }
    }
}

@Suite(.serialized) struct CommandLineValidationTests {
    @Test("negative numbers reach the range check, and malformed lists and an empty --out are refused in one line",
          arguments: [(["--lr", "-1"], "--lr must be positive"), (["--lambda", "-2"], "--lambda"),
                      (["--hidden", "400,,400"], "--hidden"), (["--out", ""], "--out"), (["--strategy", "mas+mas"], "twice"),
                      // Found wrong only once the stream is known (20 classes), still named as its flag.
                      (["--strategy", "er", "--buffer-policy", "class-balanced", "--buffer-size", "5"], "--buffer-size 5 is below the stream's 20 classes")])
    func badValuesAreRefused(arguments: [String], message: String) throws {
        let dir = try temporaryDirectory("engram-bad-flags")
        let log = dir.appendingPathComponent("output.txt")
        var all = ["run", "--benchmark", "permuted-mnist", "--tasks", "2", "--fraction", "0.01", "--data-dir", datasetsRoot, "--quiet"]
        if !arguments.contains("--out") { all += ["--out", dir.appendingPathComponent("run").path] }
        let status = try engram(all + arguments, log: log)
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(status != 0)
        #expect(output.contains(message), "\(output)")
        #expect(!output.contains("Missing value") && !output.contains("Fatal error"), "\(output)")
    }
}

@Suite(.serialized) struct DamagedCheckpointTests {
    struct Stop: Error {}

    @Test("a checkpoint whose position does not fit the run is refused on resume, naming the value",
          arguments: [("task", -1, "position task -1"), ("task", 7, "position task 7"), ("epoch", -3, "position epoch -3"),
                      ("epoch", 99, "position epoch 99"), ("stepInTask", -5, "negative")])
    func damagedPositionsAreRefused(field: String, value: Int, message: String) throws {
        var config = smallPermutedMNIST(strategy: "mas", tasks: 2, fraction: 0.01)
        config.hidden = [16]
        config.training.epochs = 2
        let dir = try temporaryDirectory("engram-damaged")
        let first = try ExperimentRun(configuration: config, directory: dir)
        first.afterCheckpoint = { _ in throw Stop() }
        #expect(throws: Stop.self) { try first.run() }
        let url = dir.appendingPathComponent(ExperimentRun.checkpointName)
        let file = try SafeTensors.read(contentsOf: url)
        var metadata = file.metadata
        var position = try JSONSerialization.jsonObject(with: Data(metadata["engram.position"]!.utf8)) as! [String: Any]
        position[field] = value
        metadata["engram.position"] = String(decoding: try JSONSerialization.data(withJSONObject: position), as: UTF8.self)
        metadata = metadata.filter { !$0.key.hasPrefix("engram.sha256") }
        try SafeTensors.write(file.entries.map { ($0.name, $0.tensor) }, metadata: metadata, to: url)
        #expect {
            try ExperimentRun(configuration: config, directory: dir).run(resume: true)
        } throws: { error in
            "\(error)".contains(message) && "\(error)".contains(url.lastPathComponent)
        }
    }
}

@Suite struct MemoryEstimateTests {
    @Test("a network that cannot fit in memory is refused before allocating, with the bytes it needs and the bytes there are")
    func hugeNetworksAreRefused() throws {
        var config = smallPermutedMNIST(strategy: "finetune")
        config.hidden = [100_000_000]
        #expect {
            try config.validate()
        } throws: { error in
            "\(error)".contains("hidden 100000000") && "\(error)".contains("GiB") && "\(error)".contains("bytes")
        }
        config.hidden = [400, 400]
        #expect(try config.estimatedMinimumBytes() < 50_000_000)
        try config.validate()
        #expect(throws: StrategyError.self) { try config.checkMemory(available: 1_000_000) }
    }
}

@Suite(.serialized) struct RunDirectoryOwnershipTests {
    let flags = ["--benchmark", "permuted-mnist", "--tasks", "2", "--epochs", "1", "--hidden", "16", "--fraction", "0.01",
                 "--strategy", "finetune", "--quiet", "--data-dir", datasetsRoot]

    @Test("a run is refused while another writer holds its directory's lock, and proceeds once it is released")
    func oneWriterPerDirectory() throws {
        let dir = try temporaryDirectory("engram-lock")
        var config = smallPermutedMNIST(strategy: "finetune", tasks: 2, fraction: 0.01)
        config.hidden = [16]
        let fd = open(dir.appendingPathComponent(".engram.lock").path, O_RDWR | O_CREAT, 0o644)
        #expect(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
        #expect {
            try ExperimentRun(configuration: config, directory: dir).run()
        } throws: { error in
            "\(error)".contains("being written by another engram process")
        }
        flock(fd, LOCK_UN)
        close(fd)
        _ = try ExperimentRun(configuration: config, directory: dir).run()
    }

    @Test("run into a finished run directory is refused unless --overwrite")
    func finishedRunsAreNotOverwritten() throws {
        let dir = try temporaryDirectory("engram-finished")
        let out = dir.appendingPathComponent("run").path
        #expect(try engram(["run", "--out", out] + flags, log: dir.appendingPathComponent("1.txt")) == 0)
        #expect(try engram(["run", "--out", out] + flags, log: dir.appendingPathComponent("2.txt")) != 0)
        #expect(try String(contentsOf: dir.appendingPathComponent("2.txt"), encoding: .utf8).contains("--overwrite"))
        #expect(try engram(["run", "--out", out, "--overwrite"] + flags, log: dir.appendingPathComponent("3.txt")) == 0)
    }
}

@Suite struct DataProvenanceTests {
    @Test("results.json records every dataset file the run read, with its path and MD5")
    func resultsRecordDataFiles() throws {
        var config = smallPermutedMNIST(strategy: "finetune", tasks: 2, fraction: 0.01)
        config.hidden = [16]
        let dir = try temporaryDirectory("engram-provenance")
        let results = try ExperimentRun(configuration: config, directory: dir).run()
        let files = try #require(results.dataFiles)
        #expect(files.count == 4)
        #expect(files.allSatisfy { $0.md5.count == 32 && $0.path.hasPrefix(datasetsRoot) })
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("results.json"))) as! [String: Any]
        #expect((json["data_files"] as? [[String: Any]])?.count == 4)
    }
}

@Suite struct DivergenceHintTests {
    @Test("a non-finite loss blames the strength, the learning rate or the parameters only on the evidence for each")
    func hintsFollowTheEvidence() throws {
        var config = smallSplitMNIST(strategy: "finetune", fraction: 0.01)
        config.hidden = [8]
        let trainer = try makeTrainer(config, strategy: Finetune())
        let context = trainer.context
        #expect(Trainer.divergenceHint(taskLoss: 0.7, context: context).contains("strength"))
        #expect(Trainer.divergenceHint(taskLoss: .infinity, context: context).contains("learning rate"))
        #expect(!Trainer.divergenceHint(taskLoss: .infinity, context: context).contains("proximal"))
        // With a strategy's term in the loss (a quadratic penalty's oscillating gradient step), its strength too.
        let penalized = Trainer.divergenceHint(taskLoss: .nan, context: context, strategyAddsTerm: true)
        #expect(penalized.contains("learning rate") && penalized.contains("strength") && penalized.contains("penalty_step: proximal"))
        let (_, p) = context.model.namedParameters()[0]
        var values = p.scalars
        values[3] = .nan
        p.scalars = values
        let hint = Trainer.divergenceHint(taskLoss: .nan, context: context)
        #expect(hint.contains("already non-finite") && !hint.contains("learning rate"))
    }
}

@Suite(.serialized) struct InterruptionTests {
    /// Runs of a few seconds (a task is about a second unloaded), so a signal sent once a run has started cannot
    /// arrive after its end even on a loaded machine.
    let flags = ["--benchmark", "permuted-mnist", "--tasks", "3", "--epochs", "40", "--hidden", "64", "--fraction", "0.05",
                 "--strategy", "mas", "--data-dir", datasetsRoot]

    /// Waits until `file` contains `text` (at most `seconds`).
    func wait(for text: String, in file: URL, seconds: Double = 60) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let s = try? String(contentsOf: file, encoding: .utf8), s.contains(text) { return }
            usleep(20_000)
        }
    }

    @Test("Ctrl-C on run stops after writing a checkpoint, says how to resume, and the resumed run finishes")
    func sigintStopsAtACheckpoint() throws {
        let dir = try temporaryDirectory("engram-sigint")
        let out = dir.appendingPathComponent("run")
        let log = dir.appendingPathComponent("output.txt")
        let process = try launch(["run", "--out", out.path] + flags, log: log)
        wait(for: "task 1/3", in: log)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(process.terminationStatus == 130, "\(output)")
        #expect(output.contains("continue with: engram resume \(out.path)"), "\(output)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint.safetensors").path))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("results.json").path))
        #expect(try engram(["resume", out.path, "--quiet"], log: dir.appendingPathComponent("resume.txt")) == 0)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("results.json").path))
    }

    @Test("SIGINT to a sweep is forwarded to its children: nothing keeps running, and the sweep exits and resumes")
    func sweepForwardsSignals() throws {
        let dir = try temporaryDirectory("engram-sweep-sigint")
        let file = dir.appendingPathComponent("sweep.yaml")
        try """
            out: \(dir.appendingPathComponent("out").path)
            base: {benchmark: permuted-mnist, tasks: 3, hidden: [64], fraction: 0.05, strategy: mas, data_dir: \(datasetsRoot), training: {epochs: 40}}
            grid: {training.seed: [0, 1, 2, 3]}
            """.write(to: file, atomically: true, encoding: .utf8)
        let log = dir.appendingPathComponent("sweep.txt")
        let sweep = try launch(["sweep", file.path, "--jobs", "2"], log: log)
        wait(for: "[2/4] started", in: log)
        let children = (try String(contentsOf: log, encoding: .utf8)).split(separator: "\n").compactMap { line -> Int32? in
            guard let r = line.range(of: "(pid ") else { return nil }
            return Int32(line[r.upperBound...].prefix { $0.isNumber })
        }
        #expect(children.count == 2)
        kill(sweep.processIdentifier, SIGINT)
        sweep.waitUntilExit()
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(sweep.terminationStatus == 130, "\(output)")
        for pid in children { #expect(kill(pid, 0) != 0, "child \(pid) still running") }
        #expect(try engram(["sweep", file.path, "--jobs", "2"], log: dir.appendingPathComponent("again.txt")) == 0)
    }
}

@Suite(.serialized) struct DamagedStrategyStateTests {
    struct Stop: Error {}

    enum Damage: String, CaseIterable { case dropped, renamed, truncated }

    @Test("a checkpoint whose Ω was dropped, renamed or truncated (checksums rewritten) is refused naming the tensor",
          arguments: Damage.allCases)
    func damagedImportanceIsRefused(damage: Damage) throws {
        var config = smallPermutedMNIST(strategy: "mas", tasks: 3, fraction: 0.01)
        config.hidden = [16]
        let dir = try temporaryDirectory("engram-damaged-omega")
        let first = try ExperimentRun(configuration: config, directory: dir)
        first.afterCheckpoint = { position in if position.task == 1 { throw Stop() } }
        #expect(throws: Stop.self) { try first.run() }
        let url = dir.appendingPathComponent(ExperimentRun.checkpointName)
        let file = try SafeTensors.read(contentsOf: url)
        let target = "extra.strategy.omega.features.1.weight"
        #expect(file[target] != nil)
        var entries = file.entries.map { ($0.name, $0.tensor) }
        switch damage {
        case .dropped: entries.removeAll { $0.0 == target }
        case .renamed: entries = entries.map { $0.0 == target ? ("extra.strategy.omegas.features.1.weight", $0.1) : $0 }
        case .truncated: entries = entries.map { $0.0 == target ? ($0.0, Tensor([Float](repeating: 1, count: 10))) : $0 }
        }
        try SafeTensors.write(entries, metadata: file.metadata, to: url)
        #expect {
            try ExperimentRun(configuration: config, directory: dir).run(resume: true)
        } throws: { error in
            let text = "\(error)"
            return text.contains("damaged") && (text.contains("omega") || text.contains("omegas"))
        }
    }
}
