import EngramNN

/// Fine-tuning: train each task with its own loss only — the lower bound of continual learning.
public final class Finetune: Strategy {
    public init() {}
    public var name: String { "finetune" }
}
