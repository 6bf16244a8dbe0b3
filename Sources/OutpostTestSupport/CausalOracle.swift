import OutpostCRDT

/// An oracle of concurrency that does not look at ``FieldState``'s bookkeeping.
///
/// It knows, for every change, which changes its author had seen when writing it, and from that alone (by
/// transitive closure: happened-before) computes what each field must read as:
/// - a register's *maximal* writes: those no other write to the same field causally follows;
/// - a set's surviving tags: adds that no remove of the same value causally follows (add wins);
/// - a log's entries: every append, by clock then change id.
///
/// With correct authoring and causal delivery, a field's live writes must equal these, so tests can assert
/// that a conflict is reported exactly when writes were concurrent.
public struct CausalOracle: Sendable {
    /// For each change, the ids of every change that happened before it.
    public let ancestors: [ChangeID: Set<ChangeID>]

    /// Builds the oracle from each change's context (what its author had seen when writing it).
    ///
    /// Contexts need not be closed: the oracle closes them transitively. A change missing from `contexts`
    /// is taken to have seen nothing.
    public init(contexts: [ChangeID: Set<ChangeID>]) {
        var closed: [ChangeID: Set<ChangeID>] = [:]
        for id in contexts.keys.sorted() {
            Self.close(id, contexts: contexts, into: &closed)
        }
        ancestors = closed
    }

    private static func close(
        _ root: ChangeID,
        contexts: [ChangeID: Set<ChangeID>],
        into closed: inout [ChangeID: Set<ChangeID>]
    ) {
        // Iterative post-order walk, so deep histories do not exhaust the stack.
        var stack: [(id: ChangeID, expanded: Bool)] = [(root, false)]
        while let (id, expanded) = stack.popLast() {
            if closed[id] != nil { continue }
            let direct = contexts[id] ?? []
            if expanded {
                var all = direct
                for parent in direct { all.formUnion(closed[parent] ?? []) }
                closed[id] = all
            } else {
                stack.append((id, true))
                for parent in direct where closed[parent] == nil { stack.append((parent, false)) }
            }
        }
    }

    /// Whether `earlier` happened before `later` (the author of `later` had seen it, directly or not).
    public func happenedBefore(_ earlier: ChangeID, _ later: ChangeID) -> Bool {
        ancestors[later]?.contains(earlier) ?? false
    }

    /// Whether neither change happened before the other.
    public func areConcurrent(_ first: ChangeID, _ second: ChangeID) -> Bool {
        first != second && !happenedBefore(first, second) && !happenedBefore(second, first)
    }

    /// What one field must read as after exactly `changes` (all to that field) have been applied.
    public func expectation(of changes: [Change], under policy: MergePolicy) -> FieldExpectation {
        switch policy {
        case .lww, .review, .status:
            let writes = changes.filter { $0.operation == .assign }
            let maximal = writes.filter { write in
                !writes.contains { other in happenedBefore(write.id, other.id) }
            }
            return FieldExpectation(live: maximal, policy: policy)
        case .set:
            let adds = changes.filter { $0.operation == .add }
            let removes = changes.filter { $0.operation == .remove }
            let surviving = adds.filter { add in
                !removes.contains { remove in remove.value == add.value && happenedBefore(add.id, remove.id) }
            }
            return FieldExpectation(live: surviving, policy: policy)
        case .log:
            return FieldExpectation(live: changes.filter { $0.operation == .append }, policy: policy)
        }
    }
}

/// What a field must read as, computed by ``CausalOracle`` from causality alone.
public struct FieldExpectation: Sendable, Hashable {
    /// The writes that must be live, sorted by change id.
    public var live: [Change]
    /// The winner a register must show (`nil` for an unwritten field, a set or a log).
    public var winner: Change?
    /// Whether the field must be reported as a conflict.
    public var isConflict: Bool

    /// Derives the winner and the conflict flag from the live writes, restating DESIGN.md section 3:
    /// - `lww`: the latest write, never a conflict;
    /// - `review`: the latest write; a conflict when the live writes hold more than one distinct value;
    /// - `status`: an overriding value beats everything, then a terminal value beats the rest; among the
    ///   winning group the latest shows, and two distinct overriding or terminal values conflict;
    ///   non-terminal values never conflict.
    public init(live: [Change], policy: MergePolicy) {
        self.live = live.sorted { $0.id < $1.id }
        func latest(_ writes: [Change]) -> Change? {
            writes.max { ($0.clock, $0.id) < ($1.clock, $1.id) }
        }
        func distinct(_ writes: [Change]) -> Int { Set(writes.map(\.value)).count }
        switch policy {
        case .lww:
            winner = latest(live)
            isConflict = false
        case .review:
            winner = latest(live)
            isConflict = distinct(live) > 1
        case .status(let rules):
            func rank(_ write: Change) -> Int {
                let text = write.value.stringValue ?? ""
                if rules.overriding.contains(text) { return 2 }
                if rules.terminal.contains(text) { return 1 }
                return 0
            }
            let top = live.map(rank).max() ?? 0
            let group = live.filter { rank($0) == top }
            winner = latest(group)
            isConflict = top > 0 && distinct(group) > 1
        case .set, .log:
            winner = nil
            isConflict = false
        }
    }

    /// For a set: the distinct values of the live adds, sorted.
    public var elements: [Value] { Set(live.map(\.value)).sorted() }

    /// For a log: the live appends, earliest first (by clock, then change id).
    public var entries: [Change] { live.sorted { ($0.clock, $0.id) < ($1.clock, $1.id) } }
}
