import EngramTensor
import EngramData
import EngramNN

/// Fine-tuning: train each task with its own loss only — the lower bound of continual learning.
public final class Finetune: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "finetune", summary: "Fine-tuning: each task with its own loss only (the lower bound)", paper: "—",
        make: { _ in Finetune() })]

    public init() {}
    public var name: String { "finetune" }
}
