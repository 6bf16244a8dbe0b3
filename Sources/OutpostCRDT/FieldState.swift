/// The merged state of one field, for every policy.
///
/// All five policies share one structure: the *live* writes (those no known change replaces) and the
/// ids of every write known to be replaced. A change adds its own write (unless it is a `remove`) and
/// marks the writes it names as replaced, whether or not they have arrived yet. The live set is
/// therefore "every write minus every replaced write": a function of the set of changes seen, so applying
/// changes is idempotent, commutative and associative, and a change that arrives before the writes it
/// replaces gives the same result.
///
/// The policies differ only in how the live writes are read: see ``resolution(under:)``,
/// ``elements`` and ``entries``.
public struct FieldState: Sendable, Hashable, Codable {
    /// Writes no known change replaces, sorted by change id.
    public private(set) var live: [Write]
    /// Ids of writes known to be replaced (or removed tags), sorted.
    public private(set) var superseded: [ChangeID]

    /// An empty field.
    public init() {
        live = []
        superseded = []
    }

    /// Restores a state from its parts; `nil` unless both arrays are strictly sorted by change id and no
    /// live write is also superseded.
    public init?(live: [Write], superseded: [ChangeID]) {
        for index in live.indices.dropFirst() where !(live[index - 1].id < live[index].id) { return nil }
        for index in superseded.indices.dropFirst() where !(superseded[index - 1] < superseded[index]) {
            return nil
        }
        self.live = live
        self.superseded = superseded
        // By position: a write taken out of the array would retain and release each of its strings (a decoded
        // state is checked so for every field of every record read).
        guard !superseded.isEmpty else { return }
        for index in live.indices where superseded.sortedSlot(of: live[index].id, by: { $0 }).found { return nil }
    }

    /// Whether the field has never been written.
    public var isEmpty: Bool { live.isEmpty && superseded.isEmpty }

    /// Applies a change to this field; returns whether the state changed.
    ///
    /// The caller has checked that the change's operation suits the field's policy (see
    /// ``RecordState/apply(_:policy:)``).
    @discardableResult
    public mutating func apply(_ change: Change) -> Bool {
        // A live write has had its replacements recorded already. A superseded one may not have (it can
        // arrive after the change that replaced it), so its replacements are always recorded.
        if live.sortedSlot(of: change.id, by: \.id).found { return false }
        var changed = false
        for replaced in change.replaces {
            let slot = superseded.sortedSlot(of: replaced, by: { $0 })
            if !slot.found {
                superseded.insert(replaced, at: slot.index)
                changed = true
            }
            let liveSlot = live.sortedSlot(of: replaced, by: \.id)
            if liveSlot.found { live.remove(at: liveSlot.index) }
        }
        switch change.operation {
        case .assign, .add, .append:
            if !superseded.sortedSlot(of: change.id, by: { $0 }).found {
                let slot = live.sortedSlot(of: change.id, by: \.id)
                // Most writes come last (a field's first write, or a later counter of the same replica).
                if slot.index == live.count {
                    live.append(change.write)
                } else {
                    live.insert(change.write, at: slot.index)
                }
                changed = true
            }
        case .remove:
            break
        }
        return changed
    }

    /// Merges another replica's state of the same field into this one (state-based merge).
    public mutating func merge(_ other: FieldState) {
        for id in other.superseded {
            let slot = superseded.sortedSlot(of: id, by: { $0 })
            if !slot.found { superseded.insert(id, at: slot.index) }
        }
        var merged: [ChangeID: Write] = [:]
        for write in live + other.live where !superseded.sortedSlot(of: write.id, by: { $0 }).found {
            merged[write.id] = write
        }
        live = merged.values.sorted { $0.id < $1.id }
    }

    /// The live writes, latest first (by clock, then change id).
    public var latestFirst: [Write] {
        live.sorted { $0.isLater(than: $1) }
    }

    /// For a `set`: its elements, each value once, sorted.
    public var elements: [Value] {
        live.count < 2 ? live.map(\.value) : Array(Set(live.map(\.value))).sorted()
    }

    /// For a `set`: the live tags (add changes) of `value`, which a `remove` of it must name.
    public func tags(of value: Value) -> [ChangeID] {
        live.filter { $0.value == value }.map(\.id)
    }

    /// For a `log`: its entries in order, earliest first.
    public var entries: [Write] {
        live.sorted { $1.isLater(than: $0) }
    }

    /// The ids of the live writes: what a new write to a register must name in ``Change/replaces``.
    public var liveIDs: [ChangeID] { live.map(\.id) }

    /// For a register (`lww`, `review`, `status`): the current value and whether it is in conflict.
    public func resolution(under policy: MergePolicy) -> Resolution {
        guard !live.isEmpty else { return Resolution(winner: nil, isConflict: false) }
        // One live write wins under every policy, with nothing to review (most fields of most records).
        if live.count == 1 { return Resolution(winner: live[0], isConflict: false) }
        switch policy {
        case .lww, .set, .log:
            return Resolution(winner: Self.latest(of: live), isConflict: false)
        case .review:
            return Resolution(winner: Self.latest(of: live), isConflict: Self.distinctValues(live) > 1)
        case .status(let rules):
            let overriding = live.filter { rules.overriding.contains($0.value.stringValue ?? "") }
            if !overriding.isEmpty {
                return Resolution(winner: Self.latest(of: overriding), isConflict: Self.distinctValues(overriding) > 1)
            }
            let terminal = live.filter { rules.terminal.contains($0.value.stringValue ?? "") }
            if !terminal.isEmpty {
                return Resolution(winner: Self.latest(of: terminal), isConflict: Self.distinctValues(terminal) > 1)
            }
            return Resolution(winner: Self.latest(of: live), isConflict: false)
        }
    }

    private static func latest(of writes: [Write]) -> Write? {
        writes.max { $1.isLater(than: $0) }
    }

    private static func distinctValues(_ writes: [Write]) -> Int {
        guard writes.count > 1 else { return writes.count }
        return Set(writes.map(\.value)).count
    }

    private enum CodingKeys: String, CodingKey {
        case live
        case superseded
    }

    /// Decodes a state, refusing one whose parts break the invariants of ``init(live:superseded:)``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let live = try container.decode([Write].self, forKey: .live)
        let superseded = try container.decode([ChangeID].self, forKey: .superseded)
        guard let state = FieldState(live: live, superseded: superseded) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "field state must list live and superseded ids strictly sorted and disjoint"
                )
            )
        }
        self = state
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(live, forKey: .live)
        try container.encode(superseded, forKey: .superseded)
    }
}

/// A register's current value as its policy reads it.
public struct Resolution: Sendable, Hashable {
    /// The (provisional, when in conflict) winner; `nil` when the field was never written or all its
    /// writes were replaced by removals.
    public var winner: Write?
    /// Whether the field holds concurrent values that a person must review.
    public var isConflict: Bool
}
