import EngramTensor
import EngramNN
import EngramData

/// Data-parallel training: the pieces a ``Trainer`` with a ``Trainer/group`` uses.
///
/// Each member takes rows r·B/N ..< (r+1)·B/N of every batch of B samples and minimises its share of the batch's
/// objective, (B_r/B)·L(batch_r); the members' gradients summed are then the gradient of the whole batch's mean
/// loss. Terms that do not depend on the batch (a quadratic penalty Ω(θ − θ*)²) or that every member computes on the
/// same data (a replayed batch drawn inside the loss) are scaled by the shares too, so they also add up to one copy.
/// BatchNorm layers pool their statistics over the members and dropout uses the whole batch's mask, so a group
/// takes the steps one process would take on the whole batch — the same to float rounding (the sums are
/// associated differently), not bit for bit; the members hold bit-identical parameters.
public enum DataParallel {
    /// Points the model's BatchNorm layers at `group` (synchronised statistics) and its dropout layers at the rows
    /// this member holds; returns what puts them back.
    public static func enterShard(of model: any Module, group: any ProcessGroup, rows: Range<Int>, total: Int) -> () -> Void {
        let modules = model.namedModules().map(\.1)
        let norms = modules.compactMap { $0 as? BatchNorm }, dropouts = modules.compactMap { $0 as? Dropout }
        for n in norms { n.group = group }
        for d in dropouts { d.rowShard = (rows, total) }
        return {
            for n in norms { n.group = nil }
            for d in dropouts { d.rowShard = nil }
        }
    }

    /// The rows of a test batch this member classifies: the block ⌊n·r/size⌋ ..< ⌊n·(r+1)/size⌋ of its n rows (nil
    /// when empty), so the members together count every test sample once.
    public static func evaluationShard(of batch: Batch, group: any ProcessGroup) -> Batch? {
        let rows = batch.count * group.rank / group.size ..< batch.count * (group.rank + 1) / group.size
        return rows.isEmpty ? nil : rows.count == batch.count ? batch : batch.rows(Array(rows))
    }

    /// Sums the gradients of the optimizer's parameters that may change, and `loss`, over the group — one buffer,
    /// one collective: [loss, then per parameter: 1 if this member has a gradient for it, the gradient (zeros if
    /// not)]. A parameter gets the summed gradient when any member had one (a head only some shards used), and keeps
    /// none when no member had. Returns the summed loss.
    public static func sumGradients(of optimizer: any Optimizer, loss: Float, group: any ProcessGroup) -> Float {
        let parameters = optimizer.parameters.filter { !optimizer.frozen.contains($0.0) }.map(\.1)
        var buffer = [Float]()
        buffer.reserveCapacity(1 + parameters.reduce(0) { $0 + 1 + $1.count })
        buffer.append(loss)
        for p in parameters {
            if let g = p.grad {
                buffer.append(1)
                buffer.append(contentsOf: g.scalars)
            } else {
                buffer.append(0)
                buffer.append(contentsOf: repeatElement(0, count: p.count))
            }
        }
        group.sum(&buffer)
        var offset = 1
        for p in parameters {
            let present = buffer[offset] > 0
            offset += 1
            p.grad = present ? Tensor(shape: p.shape, scalars: Array(buffer[offset..<(offset + p.count)])) : nil
            offset += p.count
        }
        return buffer[0]
    }

    /// A 64-bit FNV-1a hash of the model's parameters and buffers (names and bits), as two 32-bit words.
    public static func fingerprint(of model: any Module) -> [UInt32] {
        var hash: UInt64 = 0xcbf29ce484222325
        func mix(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
        for (name, t) in model.namedParameters() + model.namedBuffers() {
            for b in name.utf8 { mix(b) }
            t.scalars.withUnsafeBytes { for b in $0 { mix(b) } }
        }
        return [UInt32(truncatingIfNeeded: hash), UInt32(truncatingIfNeeded: hash >> 32)]
    }

    /// Whether every member of `group` holds the same parameters and buffers as this one, bit for bit.
    public static func membersAgree(on model: any Module, group: any ProcessGroup) -> Bool {
        group.allHold(fingerprint(of: model))
    }

    /// Strategies whose step a shard cannot take alone, with the reason (the CLI refuses them with
    /// `--data-parallel`): their loss or memory sees the training batch as a whole.
    public static func unsupportedReason(strategy: any Strategy) -> String? {
        let parts = (strategy as? CompositeStrategy)?.parts ?? [strategy]
        for part in parts {
            switch part.name {
            case "der", "derpp":
                return "\(part.name) stores each training batch's logits in its memory inside the loss, so the members' memories would differ"
            case "er-ace":
                return "er-ace's loss covers the classes present in the batch, which differ between shards"
            default: continue
            }
        }
        return nil
    }
}
