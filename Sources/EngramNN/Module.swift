import EngramTensor

/// A building block of a network: it maps a batch to a batch and owns named parameters,
/// named buffers (state that is saved but not trained, e.g. BatchNorm running statistics)
/// and named child modules.
///
/// Names compose with dots, as in PyTorch (`features.0.weight`), and are stable: checkpoints,
/// importance maps and masks are keyed by them.
public protocol Module: AnyObject {
    /// Maps a batch to a batch.
    func forward(_ x: Tensor) -> Tensor
    /// This module's own parameters (not its children's), named relative to it.
    var localParameters: [(String, Tensor)] { get }
    /// This module's own buffers, named relative to it.
    var localBuffers: [(String, Tensor)] { get }
    /// Direct children, named relative to this module.
    var children: [(String, any Module)] { get }
    /// Training mode (batch statistics, dropout) or evaluation mode.
    var isTraining: Bool { get set }
}

extension Module {
    public var localParameters: [(String, Tensor)] { [] }
    public var localBuffers: [(String, Tensor)] { [] }
    public var children: [(String, any Module)] { [] }

    /// Same as `forward(_:)`.
    public func callAsFunction(_ x: Tensor) -> Tensor { forward(x) }

    /// Every module in the tree, depth first, with its dotted path ("" for this one).
    public func namedModules(prefix: String = "") -> [(String, any Module)] {
        var result: [(String, any Module)] = [(prefix, self)]
        for (name, child) in children {
            result += child.namedModules(prefix: prefix.isEmpty ? name : "\(prefix).\(name)")
        }
        return result
    }

    /// All parameters of the tree, in a stable order, with dotted names.
    public func namedParameters() -> [(String, Tensor)] {
        namedModules().flatMap { path, module in
            module.localParameters.map { (path.isEmpty ? $0.0 : "\(path).\($0.0)", $0.1) }
        }
    }

    /// All buffers of the tree with dotted names.
    public func namedBuffers() -> [(String, Tensor)] {
        namedModules().flatMap { path, module in
            module.localBuffers.map { (path.isEmpty ? $0.0 : "\(path).\($0.0)", $0.1) }
        }
    }

    /// Parameters and buffers together (what a checkpoint holds for the model).
    public func stateDictionary() -> [(String, Tensor)] { namedParameters() + namedBuffers() }

    /// Total number of trainable scalars.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.1.count } }

    /// Switches the whole tree to training mode.
    public func train() { for (_, m) in namedModules() { m.isTraining = true } }
    /// Switches the whole tree to evaluation mode.
    public func eval() { for (_, m) in namedModules() { m.isTraining = false } }

    /// Switches the tree to evaluation mode and returns what puts training mode back if it was on:
    /// `let restore = model.enterEvaluationMode(); defer { restore() }`.
    public func enterEvaluationMode() -> () -> Void {
        let wasTraining = isTraining
        eval()
        return { if wasTraining { self.train() } }
    }

    /// Clears the gradients of all parameters.
    public func zeroGrad() { for (_, p) in namedParameters() { p.grad = nil } }

    /// Tells every task-conditioned module in the tree (multi-head classifiers, per-task BatchNorm…)
    /// which task the next batches belong to.
    public func setActiveTask(_ task: Int) {
        for (_, m) in namedModules() {
            (m as? any TaskConditioned)?.activeTask = task
            (m as? any SampleRouted)?.sampleTasks = nil
        }
    }

    /// Tells every task-conditioned module the task of each sample of the next batches — a batch mixing tasks
    /// (replay, joint training) in a task-incremental model runs each sample through its own head. A batch of
    /// one task is the same as `setActiveTask`. Throws, naming the module, when the tasks differ and a
    /// task-conditioned module can only serve one task per batch (per-task BatchNorm, progressive columns).
    public func setSampleTasks(_ tasks: [Int]) throws {
        guard let first = tasks.first else { return }
        guard tasks.contains(where: { $0 != first }) else { return setActiveTask(first) }
        let modules = namedModules()
        if let (path, module) = modules.first(where: { $0.1 is any TaskConditioned && !($0.1 is any SampleRouted) }) {
            throw ModuleError.singleTaskPerBatch(path.isEmpty ? "\(type(of: module))" : "\(path) (\(type(of: module)))")
        }
        for (_, m) in modules { (m as? any SampleRouted)?.sampleTasks = tasks }
    }

    /// Loads values by name; every parameter and buffer of the module must be present with its shape.
    public func load(_ state: [String: Tensor]) throws {
        for (name, tensor) in stateDictionary() {
            guard let value = state[name] else { throw ModuleError.missingTensor(name) }
            guard value.shape == tensor.shape else {
                throw ModuleError.shapeMismatch(name: name, expected: tensor.shape, found: value.shape)
            }
            tensor.assign(value)
        }
    }
}

/// A module whose computation depends on the current task (e.g. one head per task).
public protocol TaskConditioned: Module {
    /// The task the next batches belong to (0-based).
    var activeTask: Int { get set }
}

/// A task-conditioned module that can also serve a batch mixing tasks, each sample as its own task would.
public protocol SampleRouted: TaskConditioned {
    /// The task of each sample of the next batches, or nil when all belong to `activeTask`.
    var sampleTasks: [Int]? { get set }
}

/// Errors when loading a state into a module.
public enum ModuleError: Error, CustomStringConvertible, Equatable {
    case missingTensor(String)
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    case singleTaskPerBatch(String)

    public var description: String {
        switch self {
        case .missingTensor(let name): "the state has no tensor named '\(name)'"
        case let .shapeMismatch(name, expected, found): "tensor '\(name)' has shape \(found), the model expects \(expected)"
        case .singleTaskPerBatch(let module):
            "a batch mixes tasks, but \(module) serves one task per batch (use shared BatchNorm and a multi-head model)"
        }
    }
}
