import OutpostCRDT
import Testing

/// Law checkers for the CRDT: convergence of documents under any delivery, and the algebraic laws of
/// ``FieldState`` and ``RecordState`` (idempotent, commutative, associative; state-based merge equal to
/// op-based delivery).
///
/// Each law has a `…Violations` function that returns a description of every violation found (empty when
/// the law holds), usable anywhere, and an `assert…` wrapper that records them as test issues, with the
/// seed, at the caller's source location. For example:
///
/// ```swift
/// @Test(arguments: 0..<300 as Range<UInt64>)
/// func converges(seed: UInt64) throws {
///     let scenario = EditScenario(seed: seed)
///     CRDTLaws.assertConvergence(changes: scenario.changes, schema: scenario.schema, seed: seed)
/// }
/// ```
public enum CRDTLaws {
    // MARK: - Deliveries

    /// A random delivery of `changes`: shuffled, about a quarter of them duplicated, split into batches of
    /// random sizes (empty batches included).
    public static func randomDelivery(
        of changes: [Change],
        using random: inout some RandomNumberGenerator
    ) -> [[Change]] {
        var pending = changes
        for change in changes where Int.random(in: 0..<4, using: &random) == 0 { pending.append(change) }
        pending.shuffle(using: &random)
        var batches: [[Change]] = []
        var start = 0
        while start < pending.count {
            let size = Int.random(in: 0...max(1, pending.count / 3), using: &random)
            let end = min(pending.count, start + size)
            batches.append(Array(pending[start..<end]))
            start = end
        }
        return batches
    }

    /// A fresh document that has received `batches` in order.
    ///
    /// - Throws: ``CRDTError`` when the schema refuses a change.
    public static func document(schema: Schema, receiving batches: [[Change]]) throws(CRDTError) -> Document {
        var document = Document(schema: schema)
        for batch in batches { try document.apply(batch) }
        return document
    }

    /// A fresh ``FieldState`` that has applied `changes` in order (all to one field).
    public static func fieldState(applying changes: some Sequence<Change>) -> FieldState {
        var state = FieldState()
        for change in changes { state.apply(change) }
        return state
    }

    /// A fresh ``RecordState`` that has applied `changes` in order (all to one record).
    public static func recordState(applying changes: some Sequence<Change>) -> RecordState {
        var state = RecordState()
        for change in changes { state.apply(change) }
        return state
    }

    // MARK: - Convergence

    /// Compares documents that received `changes` in random deliveries (shuffled, duplicated, batched)
    /// with one that received them once, in the given order.
    ///
    /// Documents must agree byte for byte in ``Document/canonicalEncoding()``, in their records, and in
    /// their ``Document/conflicts()``.
    ///
    /// - Returns: a description of every disagreement; empty when the documents converge.
    public static func convergenceViolations(
        changes: [Change],
        schema: Schema,
        seed: UInt64,
        deliveries: Int = 3
    ) -> [String] {
        var random = SeededGenerator(seed: seed ^ 0xC0FF_EE00_D15C_0BA1)
        var violations: [String] = []
        let reference: Document
        do {
            reference = try document(schema: schema, receiving: [changes])
        } catch {
            return ["seed \(seed): the reference delivery was refused: \(error)"]
        }
        var orders: [(String, [[Change]])] = [("reversed", [changes.reversed()])]
        for index in 0..<deliveries {
            orders.append(("random delivery \(index)", randomDelivery(of: changes, using: &random)))
        }
        for (name, batches) in orders {
            let candidate: Document
            do {
                candidate = try document(schema: schema, receiving: batches)
            } catch {
                violations.append("seed \(seed), \(name): a change was refused: \(error)")
                continue
            }
            violations += differences(reference, candidate, label: "seed \(seed), \(name)")
        }
        return violations
    }

    /// Records an issue for every violation of convergence (see ``convergenceViolations(changes:schema:seed:deliveries:)``).
    public static func assertConvergence(
        changes: [Change],
        schema: Schema,
        seed: UInt64,
        deliveries: Int = 3,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        record(
            convergenceViolations(changes: changes, schema: schema, seed: seed, deliveries: deliveries),
            sourceLocation: sourceLocation
        )
    }

    /// How two documents differ: canonical encodings (first differing line), records and conflicts.
    public static func differences(_ expected: Document, _ actual: Document, label: String) -> [String] {
        var found: [String] = []
        let left = expected.canonicalEncoding()
        let right = actual.canonicalEncoding()
        if left != right {
            let leftLines = String(decoding: left, as: UTF8.self).split(
                separator: "\n",
                omittingEmptySubsequences: false
            )
            let rightLines = String(decoding: right, as: UTF8.self).split(
                separator: "\n",
                omittingEmptySubsequences: false
            )
            let index =
                zip(leftLines, rightLines).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(leftLines.count, rightLines.count)
            let expectedLine = index < leftLines.count ? String(leftLines[index]) : "<end>"
            let actualLine = index < rightLines.count ? String(rightLines[index]) : "<end>"
            found.append(
                "\(label): canonical encodings differ at line \(index + 1): expected '\(expectedLine)', got '\(actualLine)'"
            )
        }
        if expected.records != actual.records {
            found.append("\(label): record states differ")
        }
        if expected.conflicts() != actual.conflicts() {
            found.append(
                "\(label): conflicts differ: expected \(expected.conflicts().map(describe)), got \(actual.conflicts().map(describe))"
            )
        }
        return found
    }

    // MARK: - Field and record laws

    /// Checks the laws of ``FieldState`` on `changes` (all to one field, any order, duplicates allowed):
    /// - `apply` is idempotent (applying again, or a second time interleaved, changes nothing) and
    ///   commutative (any order gives the same state);
    /// - `merge` is idempotent, commutative and associative;
    /// - merging the states of two overlapping subsets equals applying their union (state-based merge
    ///   equals op-based delivery).
    ///
    /// - Returns: a description of every violation; empty when the laws hold.
    public static func fieldStateViolations(changes: [Change], seed: UInt64) -> [String] {
        lawViolations(
            changes: changes,
            seed: seed,
            kind: "FieldState",
            build: fieldState(applying:),
            merge: { first, second in
                var merged = first
                merged.merge(second)
                return merged
            }
        )
    }

    /// Checks the same laws as ``fieldStateViolations(changes:seed:)`` for ``RecordState`` on `changes`
    /// (all to one record, any fields).
    public static func recordStateViolations(changes: [Change], seed: UInt64) -> [String] {
        lawViolations(
            changes: changes,
            seed: seed,
            kind: "RecordState",
            build: recordState(applying:),
            merge: { first, second in
                var merged = first
                merged.merge(second)
                return merged
            }
        )
    }

    /// Records an issue for every violation of the ``FieldState`` laws.
    public static func assertFieldStateLaws(
        changes: [Change],
        seed: UInt64,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        record(fieldStateViolations(changes: changes, seed: seed), sourceLocation: sourceLocation)
    }

    /// Records an issue for every violation of the ``RecordState`` laws.
    public static func assertRecordStateLaws(
        changes: [Change],
        seed: UInt64,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        record(recordStateViolations(changes: changes, seed: seed), sourceLocation: sourceLocation)
    }

    private static func lawViolations<State: Equatable>(
        changes: [Change],
        seed: UInt64,
        kind: String,
        build: ([Change]) -> State,
        merge: (State, State) -> State
    ) -> [String] {
        var random = SeededGenerator(seed: seed ^ 0x5EED_1A55_0F1E_1D00)
        var violations: [String] = []
        func check(_ holds: Bool, _ law: String) {
            if !holds { violations.append("seed \(seed): \(kind) \(law) does not hold") }
        }
        let inOrder = build(changes)
        let shuffled = build(changes.shuffled(using: &random))
        check(inOrder == shuffled, "apply commutativity (shuffled order)")
        check(build(changes + changes) == inOrder, "apply idempotence (everything twice)")
        let interleaved = (changes + changes.filter { _ in Bool.random(using: &random) }).shuffled(using: &random)
        check(build(interleaved) == inOrder, "apply idempotence (duplicates interleaved)")

        // Three overlapping random subsets.
        func subset() -> [Change] { changes.filter { _ in Int.random(in: 0..<3, using: &random) > 0 } }
        let (partA, partB, partC) = (subset(), subset(), subset())
        let (stateA, stateB, stateC) = (build(partA), build(partB), build(partC))
        check(merge(stateA, stateA) == stateA, "merge idempotence")
        check(merge(stateA, stateB) == merge(stateB, stateA), "merge commutativity")
        check(
            merge(merge(stateA, stateB), stateC) == merge(stateA, merge(stateB, stateC)),
            "merge associativity"
        )
        check(merge(stateA, stateB) == build(partA + partB), "state-based merge equal to op-based delivery")
        check(
            merge(merge(stateA, stateB), stateC) == build((partA + partB + partC).shuffled(using: &random)),
            "state-based merge of three equal to op-based delivery"
        )
        check(merge(stateA, inOrder) == inOrder, "merging a subset's state into the whole changes nothing")
        return violations
    }

    // MARK: - Helpers

    /// A short description of a conflict: record, field and values.
    public static func describe(_ conflict: FieldConflict) -> String {
        "\(conflict.record).\(conflict.field) [\(conflict.values.map { "\($0.id)=\($0.value)" }.joined(separator: ", "))]"
    }

    private static func record(_ violations: [String], sourceLocation: SourceLocation) {
        for violation in violations {
            Issue.record(Comment(rawValue: violation), sourceLocation: sourceLocation)
        }
    }
}
