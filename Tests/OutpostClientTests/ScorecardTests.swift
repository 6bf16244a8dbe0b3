import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostTestSupport
import Testing

/// A wall clock the test moves forward by hand.
private final class ScorecardClock: WallClock, @unchecked Sendable {
    // Only read and written from the test's own task.
    var millis: UInt64 = 0
    func nowMillis() -> UInt64 { millis }

    /// Moves to `text` (`2026-07-01` or `2026-07-01T09:00:00Z`).
    func set(_ text: String) {
        let full = text.count == 10 ? text + "T12:00:00Z" : text
        millis = UInt64(CalendarDate.parseDateTime(full)?.millis ?? 0)
    }
}

/// A hand-built practice whose every measure over 2026-Q3 is computed by hand below.
///
/// Subgroups A healthy ($5), B complex ($100), C chronic ($25, nobody in it). Teams T1 (A) and T2 (B).
/// Patients made on 2026-06-01: p1 (A, T1, diabetes), p2 (A, T1, hypertension; moved to B on 2026-08-16),
/// p3 (B, T2, diabetes and hypertension, no HbA1c in the window); p4 (A, T1) joins on 2026-09-16.
private struct HandBuiltPractice {
    let clock = ScorecardClock()
    let store: CareStore
    var ids: [String: String] = [:]

    init() throws {
        let directory = TestScratch.folder("score")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        clock.set("2026-06-01T09:00:00Z")
        store = try CareStore.create(
            at: directory.appendingPathComponent("store.sqlite").path,
            replicaID: ReplicaID("laptop"),
            wallClock: clock
        )
        try build()
    }

    subscript(_ name: String) -> String { ids[name] ?? "" }

    mutating func make(_ name: String, _ type: RecordType, _ fields: [String: [Value]]) throws {
        ids[name] = try store.create(type, fields: fields).id
    }

    func edit(_ name: String, _ type: RecordType, _ edits: [(field: String, value: Value, remove: Bool)]) throws {
        let ref = RecordRef(type: type.rawValue, id: self[name])
        try store.update(
            edits.map {
                $0.remove
                    ? Edit.remove(ref, $0.field, $0.value)
                    : $0.field == "careGaps" ? .add(ref, $0.field, $0.value) : .assign(ref, $0.field, $0.value)
            }
        )
    }

    mutating func task(
        _ name: String,
        _ patient: String,
        _ team: String,
        _ kind: String,
        status: String = "requested",
        due: String? = nil,
        extra: [String: [Value]] = [:]
    ) throws {
        var fields: [String: [Value]] = [
            "patient": [.string(self[patient])], "team": [.string(self[team])], "kind": [.string(kind)],
            "title": [.string("Task \(name)")], "status": [.string(status)], "priority": ["routine"],
        ]
        if let due { fields["dueDate"] = [.string(due)] }
        fields.merge(extra) { _, new in new }
        try make(name, .task, fields)
    }

    func complete(_ name: String) throws {
        try edit(name, .task, [("status", "completed", false)])
    }

    mutating func observe(
        _ name: String,
        _ patient: String,
        _ code: String,
        _ value: String,
        unit: String? = nil,
        at: String
    ) throws {
        try make(
            name,
            .observation,
            [
                "patient": [.string(self[patient])], "code": [.string(code)], "value": [.string(value)],
                "unit": [.string(unit ?? (code == "4548-4" ? "%" : "mm[Hg]"))], "effectiveAt": [.string(at)],
                "status": ["final"],
            ]
        )
    }

    mutating func encounter(
        _ name: String,
        _ patient: String,
        _ kind: String,
        at: String,
        cost: Int64?,
        status: String = "finished"
    )
        throws
    {
        var fields: [String: [Value]] = [
            "patient": [.string(self[patient])], "kind": [.string(kind)], "occurredAt": [.string(at)],
            "status": [.string(status)],
        ]
        if let cost { fields["costCents"] = [.int(cost)] }
        try make(name, .encounter, fields)
    }

    mutating func patient(
        _ name: String,
        _ subgroup: String,
        _ team: String,
        conditions: [String],
        gaps: [String] = []
    )
        throws
    {
        try make(
            name,
            .patient,
            [
                "givenName": ["Test"], "familyName": [.string(name)], "birthDate": ["1960-01-01"], "sex": ["female"],
                "subgroup": [.string(self[subgroup])], "primaryTeam": [.string(self[team])], "status": ["active"],
                "sites": [.string(self["X"])], "conditions": conditions.map(Value.string),
                "careGaps": gaps.map(Value.string),
            ]
        )
    }

    mutating func build() throws {
        try make("X", .site, ["name": ["Main clinic"], "kind": ["clinic"], "status": ["active"]])
        try make("P", .person, ["name": ["Lead"], "role": ["physician"], "status": ["active"]])
        for (name, key, cents) in [("A", "healthy", 500), ("B", "complex", 10_000), ("C", "chronic", 2_500)] {
            try make(
                name,
                .subgroup,
                [
                    "key": [.string(key)], "label": [.string(key)], "monthlyPaymentCents": [.int(Int64(cents))],
                    "status": ["active"],
                ]
            )
        }
        for (name, subgroup) in [("T1", "A"), ("T2", "B")] {
            try make(
                name,
                .team,
                [
                    "name": [.string("Team \(name)")], "subgroup": [.string(self[subgroup])],
                    "leader": [.string(self["P"])], "status": ["active"],
                ]
            )
        }
        try patient("p1", "A", "T1", conditions: ["E11.9"], gaps: ["a1c-overdue", "flu-vaccine"])
        try patient("p2", "A", "T1", conditions: ["I10"])
        try patient("p3", "B", "T2", conditions: ["E11.9", "I10"], gaps: ["eye-exam"])
        try task("t4", "p1", "T1", "outreach", status: "cancelled", due: "2026-07-20")
        try observe("a1c-old", "p1", "4548-4", "8.4", at: "2026-03-10T09:00:00Z")

        clock.set("2026-06-20")
        try encounter("office-june", "p3", "office", at: "2026-06-15T10:00:00Z", cost: 9_999)
        clock.set("2026-07-01")
        try task("t1", "p1", "T1", "screening", due: "2026-07-15")
        try task("t2", "p3", "T2", "outreach", due: "2026-07-10")
        clock.set("2026-07-02")
        try task("t3", "p3", "T2", "outreach", due: "2026-08-01")
        clock.set("2026-07-03")
        try task(
            "t5",
            "p3",
            "T2",
            "referral",
            status: "in-progress",
            extra: ["referralSentOn": ["2026-07-03"], "referredTo": ["Cardiology"], "referralStatus": ["sent"]]
        )
        clock.set("2026-07-05")
        try encounter("ed-p2", "p2", "ed-visit", at: "2026-07-05T10:00:00Z", cost: 150_000)
        try observe("bp1-s", "p3", "8480-6", "150", at: "2026-07-05T09:00:00Z")
        try observe("bp1-d", "p3", "8462-4", "85", at: "2026-07-05T09:00:00Z")
        clock.set("2026-07-10")
        try edit("p2", .patient, [("careGaps", "colorectal-screening", false)])
        clock.set("2026-07-11")
        try complete("t1")
        clock.set("2026-07-15T18:00:00Z")
        try encounter("office-p1", "p1", "office", at: "2026-07-15T10:00:00Z", cost: 15_000)
        clock.set("2026-07-20")
        try complete("t2")
        try observe("bp2-s", "p2", "8480-6", "128", at: "2026-07-20T09:00:00Z")
        try observe("bp2-d", "p2", "8462-4", "92", at: "2026-07-20T09:00:00Z")
        clock.set("2026-07-21")
        try encounter("cancelled", "p1", "office", at: "2026-07-21T10:00:00Z", cost: 5_000, status: "cancelled")
        clock.set("2026-07-24")
        try edit("t5", .task, [("resultReceivedOn", "2026-07-24", false)])
        clock.set("2026-07-25")
        try edit("p2", .patient, [("careGaps", "colorectal-screening", true)])
        clock.set("2026-08-01")
        try task(
            "t6",
            "p1",
            "T1",
            "referral",
            status: "in-progress",
            extra: ["referralSentOn": ["2026-08-01"], "referredTo": ["Ophthalmology"], "referralStatus": ["sent"]]
        )
        clock.set("2026-08-11T09:00:00Z")
        try encounter("ed-p3", "p3", "ed-visit", at: "2026-08-10T22:00:00Z", cost: 200_000)
        try task("t7", "p3", "T2", "ed-follow-up")
        clock.set("2026-08-14")
        try complete("t7")
        clock.set("2026-08-16")
        try edit("p2", .patient, [("subgroup", .string(self["B"]), false)])
        clock.set("2026-08-20")
        try observe("a1c-new", "p1", "4548-4", "7.6", at: "2026-08-20T08:00:00Z")
        try edit("p1", .patient, [("careGaps", "a1c-overdue", true)])
        clock.set("2026-09-01")
        try encounter("admit-p3", "p3", "admission", at: "2026-09-01T08:00:00Z", cost: 1_000_000)
        clock.set("2026-09-02")
        try task("t8", "p3", "T2", "discharge-follow-up")
        clock.set("2026-09-10")
        try observe("bp3-s1", "p3", "8480-6", "138", at: "2026-09-10T09:00:00Z")
        try observe("bp3-s2", "p3", "8480-6", "132", at: "2026-09-10T09:30:00Z")
        try observe("bp3-d", "p3", "8462-4", "88", at: "2026-09-10T09:00:00Z")
        clock.set("2026-09-12")
        try complete("t8")
        clock.set("2026-09-16")
        try patient("p4", "A", "T1", conditions: [])
        clock.set("2026-09-20")
        try encounter("office-p1-nocost", "p1", "office", at: "2026-09-20T10:00:00Z", cost: nil)
        clock.set("2026-10-05")
        try observe("a1c-after", "p3", "4548-4", "6.0", at: "2026-10-01T09:00:00Z")
    }
}

struct ScorecardTests {
    let q3 = ScorecardPeriod("2026-Q3")!

    @Test func everyMeasureOfTheHandBuiltPracticeMatchesTheHandComputation() throws {
        let practice = try HandBuiltPractice()
        let card = Scorecard.compute(try practice.store.scorecardData(), period: q3, by: .subgroup)
        #expect(card.groups.map(\.label).sorted() == ["chronic", "complex", "healthy"])
        let a = try #require(card.groups.first { $0.label == "healthy" })
        let b = try #require(card.groups.first { $0.label == "complex" })
        let total = card.total

        // Member-months: p1 3 in A; p2 1 + 15/31 in A (to 2026-08-15), 16/31 + 1 in B; p3 3 in B; p4 15/30 in A.
        #expect(a.patients == 2)  // p1, p4 (p2 ends the period in B)
        #expect(b.patients == 2)
        #expect(total.patients == 4)
        #expect(a.memberMonths == 4.98)  // 4.5 + 15/31 = 4.9839
        #expect(b.memberMonths == 4.52)  // 4 + 16/31 = 4.5161
        #expect(total.memberMonths == 9.5)
        // Payment: 500 × (4.5 + 15/31) = 2,491.94; 10,000 × (4 + 16/31) = 45,161.29; together 47,653.23.
        #expect(a.paymentCents == 2_492)
        #expect(b.paymentCents == 45_161)
        #expect(total.paymentCents == 47_653)

        // Clinical control: p1's latest HbA1c 7.6 (A); p3 has none in the window (the 2026-10-01 one is later).
        #expect(a.diabetesControl == Ratio(numerator: 1, denominator: 1))
        #expect(b.diabetesControl == Ratio(numerator: 0, denominator: 1))
        #expect(b.diabetesNoReading == 1)
        #expect(total.diabetesControl.percent == 50)
        // p2 128/92 (not controlled), p3's latest day 2026-09-10: lowest 132 / 88 (controlled); both end in B.
        #expect(a.hypertensionControl == Ratio(numerator: 0, denominator: 0))
        #expect(a.hypertensionControl.percent == nil)
        #expect(b.hypertensionControl == Ratio(numerator: 1, denominator: 2))
        #expect(b.hypertensionNoReading == 0)

        // Care gaps: p1 closed a1c-overdue, not flu-vaccine; p2 opened and closed colorectal-screening; p3 eye-exam open.
        #expect(
            a.careGapsClosed == [
                "a1c-overdue": Ratio(numerator: 1, denominator: 1), "flu-vaccine": Ratio(numerator: 0, denominator: 1),
            ]
        )
        #expect(
            b.careGapsClosed == [
                "colorectal-screening": Ratio(numerator: 1, denominator: 1),
                "eye-exam": Ratio(numerator: 0, denominator: 1),
            ]
        )
        #expect(a.screeningTasksDone == 1)
        #expect(b.screeningTasksDone == 0)

        // Utilization: p2's ED visit (in A then), p3's ED visit and admission; per 1,000 per year.
        #expect(a.edVisits == 1 && a.admissions == 0)
        #expect(b.edVisits == 1 && b.admissions == 1)
        #expect(a.edVisitsPer1000 == 2407.8)  // 12,000 × 31 / 154.5 = 2,407.77
        #expect(b.edVisitsPer1000 == 2657.1)  // 12,000 × 31 / 140 = 2,657.14
        #expect(b.admissionsPer1000 == 2657.1)
        #expect(total.edVisitsPer1000 == 2526.3)  // 24,000 / 9.5
        #expect(total.admissionsPer1000 == 1263.2)

        // Access: t1 10 days (A); t2 19, t7 3, t8 10 days (B). Due in the period: t1 on time; t2 late; t3 open.
        #expect(a.tasksDone == 1 && a.medianDaysToDone == 10)
        #expect(b.tasksDone == 3 && b.medianDaysToDone == 10)
        #expect(b.medianDaysToDoneByKind == ["outreach": 19, "ed-follow-up": 3, "discharge-follow-up": 10])
        #expect(total.medianDaysToDone == 10)
        #expect(a.doneByDueDate == Ratio(numerator: 1, denominator: 1))
        #expect(b.doneByDueDate == Ratio(numerator: 0, denominator: 2))
        #expect(total.doneByDueDate.percent == 33.3)

        // Follow-through: t5 sent 2026-07-03, result 2026-07-24 (21 days, B); t6 no result (A).
        #expect(a.referralsClosed == Ratio(numerator: 0, denominator: 1))
        #expect(b.referralsClosed == Ratio(numerator: 1, denominator: 1))
        #expect(b.medianDaysToCloseReferral == 21)
        #expect(a.medianDaysToCloseReferral == nil)
        // ED follow-up: p2 none (A); p3's t7 done 4 days after (B). Discharge: t8 done 11 days after (late).
        #expect(a.edFollowUpWithin7Days == Ratio(numerator: 0, denominator: 1))
        #expect(b.edFollowUpWithin7Days == Ratio(numerator: 1, denominator: 1))
        #expect(b.dischargeFollowUpWithin7Days == Ratio(numerator: 0, denominator: 1))

        // Cost: A 150,000 + 15,000 (the cancelled visit and the June visit left out; one visit uncosted).
        #expect(a.costCents == 165_000 && a.uncostedEncounters == 1)
        #expect(b.costCents == 1_200_000 && b.uncostedEncounters == 0)
        #expect(a.costPMPMCents == 33_107)  // 165,000 × 31 / 154.5 = 33,106.8
        #expect(b.costPMPMCents == 265_714)  // 1,200,000 × 31 / 140
        #expect(total.costPMPMCents == 143_684)  // 1,365,000 / 9.5
        #expect(a.marginCents == 2_492 - 165_000)
        #expect(total.marginCents == 47_653 - 1_365_000)
    }

    /// An HbA1c in mmol/mol is compared in % (IFCC–NGSP): 70 mmol/mol is 8.56 % (not controlled), 53 mmol/mol
    /// 7.0 % (controlled); read as %, both would count as not controlled. The unit comes through the projection.
    @Test func anHbA1cInMillimolesPerMoleIsComparedInPercent() throws {
        var practice = try HandBuiltPractice()
        practice.clock.set("2026-09-20T09:00:00Z")
        try practice.observe("a1c-ifcc-high", "p1", "4548-4", "70", unit: "mmol/mol", at: "2026-09-01T09:00:00Z")
        var card = Scorecard.compute(try practice.store.scorecardData(), period: q3, by: .subgroup)
        #expect(card.groups.first { $0.label == "healthy" }?.diabetesControl == Ratio(numerator: 0, denominator: 1))
        try practice.observe("a1c-ifcc-low", "p1", "4548-4", "53", unit: "mmol/mol", at: "2026-09-15T09:00:00Z")
        card = Scorecard.compute(try practice.store.scorecardData(), period: q3, by: .subgroup)
        #expect(card.groups.first { $0.label == "healthy" }?.diabetesControl == Ratio(numerator: 1, denominator: 1))
        #expect(throws: ClientError.self) {
            try practice.observe("bp-in-kpa", "p2", "8480-6", "17", unit: "kPa", at: "2026-09-15T09:00:00Z")
        }
    }

    @Test func aGroupWithNoPatientsReportsZerosAndNoRates() throws {
        let practice = try HandBuiltPractice()
        let card = Scorecard.compute(try practice.store.scorecardData(), period: q3, by: .subgroup)
        let empty = try #require(card.groups.first { $0.label == "chronic" })
        #expect(empty.patients == 0 && empty.memberMonths == 0 && empty.paymentCents == 0 && empty.costCents == 0)
        #expect(empty.costPMPMCents == nil && empty.edVisitsPer1000 == nil && empty.medianDaysToDone == nil)
        #expect(empty.diabetesControl.percent == nil && empty.careGapsClosed.isEmpty)
    }

    @Test func byTeamFollowsThePrimaryTeamWhilePaymentFollowsTheSubgroupOfEachDay() throws {
        let practice = try HandBuiltPractice()
        let card = Scorecard.compute(try practice.store.scorecardData(), period: q3, by: .team)
        let t1 = try #require(card.groups.first { $0.key == practice["T1"] })
        let t2 = try #require(card.groups.first { $0.key == practice["T2"] })
        #expect(t1.patients == 3 && t1.memberMonths == 6.5)
        #expect(t2.patients == 1 && t2.memberMonths == 3)
        // p1 1,500 + p2 (500 × (1 + 15/31) + 10,000 × (16/31 + 1)) + p4 250 = 17,653.23.
        #expect(t1.paymentCents == 17_653)
        #expect(t2.paymentCents == 30_000)
        #expect(card.total.paymentCents == 47_653)
    }

    @Test func aPeriodBeforeTheChangeCountsOnlyTheFirstSubgroup() throws {
        let practice = try HandBuiltPractice()
        let july = ScorecardPeriod("2026-07")!
        let card = Scorecard.compute(try practice.store.scorecardData(), period: july, by: .subgroup)
        #expect(card.groups.first { $0.label == "healthy" }?.memberMonths == 2)  // p1, p2
        #expect(card.groups.first { $0.label == "complex" }?.memberMonths == 1)  // p3
    }

    @Test func twoReplicasWithTheSameStateComputeTheSameScorecard() throws {
        let practice = try HandBuiltPractice()
        let changes = try practice.store.store.pendingChanges()
        let directory = TestScratch.folder("score")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let other = try CareStore.create(
            at: directory.appendingPathComponent("store.sqlite").path,
            replicaID: ReplicaID("tablet")
        )
        // Delivered as a server's feed delivers them: in order, in pages of 7, every page twice (a retry).
        // (Out of causal order, a replica does not log a change that arrives after the change replacing it,
        // so its subgroup history would be shorter: see docs/scorecard.md, "Replicas".)
        let pages = stride(from: 0, to: changes.count, by: 7).map { Array(changes[$0..<min($0 + 7, changes.count)]) }
        for page in pages {
            try other.store.applyRemote(page)
            try other.store.applyRemote(page)
        }
        for grouping in Scorecard.Grouping.allCases {
            let mine = Scorecard.compute(try practice.store.scorecardData(), period: q3, by: grouping)
            let theirs = Scorecard.compute(try other.scorecardData(), period: q3, by: grouping)
            #expect(mine == theirs)
        }
        #expect(try practice.store.exportCanonicalJSON() == other.exportCanonicalJSON())
    }
}
