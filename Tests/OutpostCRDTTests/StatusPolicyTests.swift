import OutpostCRDT
import OutpostTestSupport
import Testing

/// One row of the status table: `earlier` and `later` written concurrently (`later` with the larger clock).
struct StatusCase: Sendable, CustomTestStringConvertible {
    var earlier: String
    var later: String
    var winner: String
    var conflict: Bool

    init(_ earlier: String, _ later: String, winner: String, conflict: Bool) {
        self.earlier = earlier
        self.later = later
        self.winner = winner
        self.conflict = conflict
    }

    var testDescription: String { "\(earlier) ∥ \(later) → \(winner)\(conflict ? " (conflict)" : "")" }
}

/// The `status` policy (DESIGN.md section 3): entered-in-error beats all; a terminal status beats a
/// concurrent non-terminal one; two different terminal statuses conflict; otherwise the latest wins.
struct StatusPolicyTests {
    /// Every ordered pair of the eight statuses, written concurrently on two replicas.
    static let table: [StatusCase] = [
        StatusCase("requested", "requested", winner: "requested", conflict: false),
        StatusCase("requested", "ready", winner: "ready", conflict: false),
        StatusCase("requested", "in-progress", winner: "in-progress", conflict: false),
        StatusCase("requested", "on-hold", winner: "on-hold", conflict: false),
        StatusCase("requested", "completed", winner: "completed", conflict: false),
        StatusCase("requested", "cancelled", winner: "cancelled", conflict: false),
        StatusCase("requested", "failed", winner: "failed", conflict: false),
        StatusCase("requested", "entered-in-error", winner: "entered-in-error", conflict: false),
        StatusCase("ready", "requested", winner: "requested", conflict: false),
        StatusCase("ready", "ready", winner: "ready", conflict: false),
        StatusCase("ready", "in-progress", winner: "in-progress", conflict: false),
        StatusCase("ready", "on-hold", winner: "on-hold", conflict: false),
        StatusCase("ready", "completed", winner: "completed", conflict: false),
        StatusCase("ready", "cancelled", winner: "cancelled", conflict: false),
        StatusCase("ready", "failed", winner: "failed", conflict: false),
        StatusCase("ready", "entered-in-error", winner: "entered-in-error", conflict: false),
        StatusCase("in-progress", "requested", winner: "requested", conflict: false),
        StatusCase("in-progress", "ready", winner: "ready", conflict: false),
        StatusCase("in-progress", "in-progress", winner: "in-progress", conflict: false),
        StatusCase("in-progress", "on-hold", winner: "on-hold", conflict: false),
        StatusCase("in-progress", "completed", winner: "completed", conflict: false),
        StatusCase("in-progress", "cancelled", winner: "cancelled", conflict: false),
        StatusCase("in-progress", "failed", winner: "failed", conflict: false),
        StatusCase("in-progress", "entered-in-error", winner: "entered-in-error", conflict: false),
        StatusCase("on-hold", "requested", winner: "requested", conflict: false),
        StatusCase("on-hold", "ready", winner: "ready", conflict: false),
        StatusCase("on-hold", "in-progress", winner: "in-progress", conflict: false),
        StatusCase("on-hold", "on-hold", winner: "on-hold", conflict: false),
        StatusCase("on-hold", "completed", winner: "completed", conflict: false),
        StatusCase("on-hold", "cancelled", winner: "cancelled", conflict: false),
        StatusCase("on-hold", "failed", winner: "failed", conflict: false),
        StatusCase("on-hold", "entered-in-error", winner: "entered-in-error", conflict: false),
        StatusCase("completed", "requested", winner: "completed", conflict: false),
        StatusCase("completed", "ready", winner: "completed", conflict: false),
        StatusCase("completed", "in-progress", winner: "completed", conflict: false),
        StatusCase("completed", "on-hold", winner: "completed", conflict: false),
        StatusCase("completed", "completed", winner: "completed", conflict: false),
        StatusCase("completed", "cancelled", winner: "cancelled", conflict: true),
        StatusCase("completed", "failed", winner: "failed", conflict: true),
        StatusCase("completed", "entered-in-error", winner: "entered-in-error", conflict: false),
        StatusCase("cancelled", "requested", winner: "cancelled", conflict: false),
        StatusCase("cancelled", "ready", winner: "cancelled", conflict: false),
        StatusCase("cancelled", "in-progress", winner: "cancelled", conflict: false),
        StatusCase("cancelled", "on-hold", winner: "cancelled", conflict: false),
        StatusCase("cancelled", "completed", winner: "completed", conflict: true),
        StatusCase("cancelled", "cancelled", winner: "cancelled", conflict: false),
        StatusCase("cancelled", "failed", winner: "failed", conflict: true),
        StatusCase("cancelled", "entered-in-error", winner: "entered-in-error", conflict: false),
        StatusCase("failed", "requested", winner: "failed", conflict: false),
        StatusCase("failed", "ready", winner: "failed", conflict: false),
        StatusCase("failed", "in-progress", winner: "failed", conflict: false),
        StatusCase("failed", "on-hold", winner: "failed", conflict: false),
        StatusCase("failed", "completed", winner: "completed", conflict: true),
        StatusCase("failed", "cancelled", winner: "cancelled", conflict: true),
        StatusCase("failed", "failed", winner: "failed", conflict: false),
        StatusCase("failed", "entered-in-error", winner: "entered-in-error", conflict: false),
        StatusCase("entered-in-error", "requested", winner: "entered-in-error", conflict: false),
        StatusCase("entered-in-error", "ready", winner: "entered-in-error", conflict: false),
        StatusCase("entered-in-error", "in-progress", winner: "entered-in-error", conflict: false),
        StatusCase("entered-in-error", "on-hold", winner: "entered-in-error", conflict: false),
        StatusCase("entered-in-error", "completed", winner: "entered-in-error", conflict: false),
        StatusCase("entered-in-error", "cancelled", winner: "entered-in-error", conflict: false),
        StatusCase("entered-in-error", "failed", winner: "entered-in-error", conflict: false),
        StatusCase("entered-in-error", "entered-in-error", winner: "entered-in-error", conflict: false),
    ]

    private let record = ThingSchema.record(0)
    private let field = ThingSchema.statusField

    @Test func theTableCoversEveryOrderedPairOfStatuses() {
        #expect(Self.table.count == 64)
        let pairs = Set(Self.table.map { "\($0.earlier)|\($0.later)" })
        #expect(pairs.count == 64)
        #expect(Set(Self.table.map(\.earlier)) == Set(ThingSchema.statuses))
    }

    @Test(arguments: table)
    func concurrentStatusWritesResolveAsTheTableSays(row: StatusCase) throws {
        var first = SimulatedReplica(id: "a", schema: ThingSchema.schema, wallMillis: 1_000)
        var second = SimulatedReplica(id: "b", schema: ThingSchema.schema, wallMillis: 2_000)
        let earlier = try first.assign(record, field, .string(row.earlier))
        let later = try second.assign(record, field, .string(row.later))
        try first.receive([later])
        try second.receive([earlier])
        for replica in [first, second] {
            let state = replica.field(record, field)
            #expect(state.liveIDs == [earlier.id, later.id], "both concurrent values are kept")
            let resolution = state.resolution(under: ThingSchema.policy(of: field))
            #expect(resolution.winner?.value == .string(row.winner))
            #expect(resolution.isConflict == row.conflict)
            #expect(replica.document.conflicts().count == (row.conflict ? 1 : 0))
            // The independent oracle agrees with the table.
            let expected = FieldExpectation(live: [earlier, later], policy: ThingSchema.policy(of: field))
            #expect(expected.winner?.value == .string(row.winner))
            #expect(expected.isConflict == row.conflict)
        }
    }

    @Test(arguments: table)
    func sequentialStatusWritesNeverConflictAndTheLaterOneWins(row: StatusCase) throws {
        var first = SimulatedReplica(id: "a", schema: ThingSchema.schema, wallMillis: 2_000)
        var second = SimulatedReplica(id: "b", schema: ThingSchema.schema, wallMillis: 1_000)
        let earlier = try first.assign(record, field, .string(row.earlier))
        try second.receive([earlier])
        // The second writer saw the first, even a terminal one: its write legitimately replaces it, though
        // its wall clock is behind.
        let later = try second.assign(record, field, .string(row.later))
        #expect(later.replaces == [earlier.id])
        try first.receive([later])
        for replica in [first, second] {
            let resolution = replica.field(record, field).resolution(under: ThingSchema.policy(of: field))
            #expect(resolution.winner?.id == later.id)
            #expect(!resolution.isConflict)
            #expect(replica.document.conflicts().isEmpty)
        }
    }

    @Test func aCompletedTaskReopenedBySomeoneWhoSawItIsOpenAgain() throws {
        var clinic = SimulatedReplica(id: "clinic", schema: ThingSchema.schema, wallMillis: 1_000)
        var home = SimulatedReplica(id: "home", schema: ThingSchema.schema, wallMillis: 1_000)
        try clinic.assign(record, field, "in-progress")
        try home.receive(clinic.log)
        try clinic.assign(record, field, "completed")
        try home.receive(clinic.log)
        let reopened = try home.assign(record, field, "in-progress")
        // A stale offline edit made concurrently with the reopening does not override it either.
        var stale = SimulatedReplica(id: "stale", schema: ThingSchema.schema, wallMillis: 9_000)
        try stale.assign(record, field, "on-hold")
        try clinic.receive(home.log)
        try clinic.receive(stale.log)
        let resolution = clinic.field(record, field).resolution(under: ThingSchema.policy(of: field))
        #expect(resolution.winner?.value == "on-hold")
        #expect(!resolution.isConflict)
        #expect(clinic.field(record, field).liveIDs.contains(reopened.id))
    }

    @Test func aStaleOfflineEditCannotReopenFinishedWork() throws {
        var office = SimulatedReplica(id: "office", schema: ThingSchema.schema, wallMillis: 1_000)
        var visit = SimulatedReplica(id: "visit", schema: ThingSchema.schema, wallMillis: 1_000)
        try office.assign(record, field, "ready")
        try visit.receive(office.log)
        try office.assign(record, field, "completed")
        // Offline, with a clock far ahead: its non-terminal edit is concurrent with the completion.
        visit.wallMillis = 100_000
        try visit.assign(record, field, "in-progress")
        try office.receive(visit.log)
        let resolution = office.field(record, field).resolution(under: ThingSchema.policy(of: field))
        #expect(resolution.winner?.value == "completed")
        #expect(!resolution.isConflict)
    }
}
