import OutpostCRDT
import OutpostModel
import OutpostSamples
import Testing

struct ScorecardPeriodTests {
    @Test(arguments: [
        ("2026-Q3", "2026-07-01..2026-09-30"), ("2026-Q1", "2026-01-01..2026-03-31"),
        ("2026-02", "2026-02-01..2026-02-28"), ("2024-02", "2024-02-01..2024-02-29"),
        ("2026", "2026-01-01..2026-12-31"), ("2026-07-15..2026-08-14", "2026-07-15..2026-08-14"),
    ])
    func periodsParse(text: String, expected: String) {
        #expect(ScorecardPeriod(text)?.description == expected)
    }

    @Test(arguments: ["2026-Q5", "2026-Q0", "2026-13", "26", "2026-09-30..2026-07-01", "2026-07-01..", "Q3", ""])
    func malformedPeriodsAreRefused(text: String) {
        #expect(ScorecardPeriod(text) == nil)
    }
}

struct ScorecardPaymentTests {
    /// DESIGN.md's payment check: 12 × 2,500 × (0.45 × 5 + 0.25 × 10 + 0.20 × 25 + 0.10 × 100) = $592,500.
    @Test func theReferencePanelEarnsTheBundledPaymentOfItsMixOverAYear() throws {
        let dump = PracticeGenerator(seed: 1, size: .reference).generate()
        let year = try #require(ScorecardPeriod("2025-06-01..2026-05-31"))  // ids are made on 2025-06-01

        // Every patient on the panel: exactly $592,500.
        var everyone = dump
        for index in everyone.records.indices where everyone.records[index].type == "patient" {
            everyone.records[index].fields["status"] = .value("active")
        }
        let full = Scorecard.compute(ScorecardData(dump: everyone), period: year, by: .subgroup)
        #expect(full.total.paymentCents == 59_250_000)
        #expect(full.total.memberMonths == 30_000)
        #expect(full.total.patients == 2_500)
        #expect(full.groups.map(\.patients) == [1_125, 625, 500, 250])
        #expect(full.groups.map(\.paymentCents) == [6_750_000, 7_500_000, 15_000_000, 30_000_000])

        // As generated, about 2% of patients are inactive (not members): 12 × the active mix's payment.
        let generated = Scorecard.compute(ScorecardData(dump: dump), period: year, by: .subgroup)
        let cents = Dictionary(uniqueKeysWithValues: PracticeGenerator.subgroups.map { ($0.key, $0.cents) })
        var expected: Int64 = 0
        var active = 0
        let keys = Dictionary(
            uniqueKeysWithValues: dump.records.filter { $0.type == "subgroup" }.compactMap {
                record -> (String, String)? in
                guard case .value(.string(let key)) = record.fields["key"] else { return nil }
                return (record.id, key)
            }
        )
        for patient in dump.records where patient.type == "patient" && patient.fields["status"] == .value("active") {
            guard case .value(.string(let subgroup)) = patient.fields["subgroup"], let key = keys[subgroup] else {
                continue
            }
            expected += 12 * (cents[key] ?? 0)
            active += 1
        }
        #expect(active < 2_500)
        #expect(generated.total.patients == active)
        #expect(generated.total.paymentCents == expected)
        #expect(generated.total.memberMonths == Double(12 * active))
    }
}

/// Builds materialized records by hand for the gap rules.
private func record(
    _ type: RecordType,
    _ id: String,
    _ fields: [String: Value],
    sets: [String: [Value]] = [:]
)
    -> MaterializedRecord
{
    var values = fields.mapValues { FieldValue.single($0, isConflict: false) }
    for (name, elements) in sets { values[name] = .set(elements) }
    return MaterializedRecord(type: type, id: id, fields: values)
}

struct GapRulesTests {
    let today = CalendarDate(year: 2026, month: 11, day: 23)!
    let team = Fixture.id(.team, 1)
    let patient = Fixture.id(.patient, 2)
    let other = Fixture.id(.patient, 3)

    func patients() -> [MaterializedRecord] {
        [
            record(
                .patient,
                patient,
                ["status": "active", "primaryTeam": .string(team)],
                sets: ["conditions": ["E11.9"]]
            ),
            record(.patient, other, ["status": "active", "primaryTeam": .string(team)], sets: ["conditions": ["I10"]]),
        ]
    }

    func observation(_ id: UInt64, _ who: String, _ code: String, _ at: String) -> MaterializedRecord {
        record(
            .observation,
            Fixture.id(.observation, id),
            [
                "patient": .string(who), "code": .string(code), "value": "7", "effectiveAt": .string(at),
                "status": "final",
            ]
        )
    }

    @Test func aDiabeticWithNoRecentHbA1cIsDueAndARecentOneIsNot() {
        let old = observation(10, patient, "4548-4", "2026-04-01T09:00:00Z")  // 236 days before today
        let findings = GapRules.find(ScorecardData(records: patients() + [old], changes: []), today: today)
        let a1c = findings.filter { $0.rule == "a1c-due" }
        #expect(a1c.map(\.patient) == [patient])
        #expect(a1c.first?.key == "a1c-due:\(old.id)")
        #expect(a1c.first?.kind == "screening" && a1c.first?.team == team)
        #expect(a1c.first?.title.hasSuffix("[gap:a1c-due:\(old.id)]") == true)
        // The hypertensive patient has no blood pressure at all.
        #expect(findings.filter { $0.rule == "bp-due" }.map(\.key) == ["bp-due:none"])

        let recent = observation(11, patient, "4548-4", "2026-06-01T09:00:00Z")  // 175 days before today
        let later = GapRules.find(ScorecardData(records: patients() + [old, recent], changes: []), today: today)
        #expect(later.filter { $0.rule == "a1c-due" }.isEmpty)
    }

    @Test func anEDVisitWithNoFollowUpTaskIsDueAfterTwoDays() {
        func visit(daysAgo: Int) -> MaterializedRecord {
            record(
                .encounter,
                Fixture.id(.encounter, UInt64(20 + daysAgo)),
                [
                    "patient": .string(other), "kind": "ed-visit", "status": "finished",
                    "occurredAt": .string(CalendarDate.dateTime(millis: today.adding(days: -daysAgo).millis)),
                ]
            )
        }
        let fresh = visit(daysAgo: 1)
        let due = visit(daysAgo: 3)
        let stale = visit(daysAgo: 40)
        let data = ScorecardData(records: patients() + [fresh, due, stale], changes: [])
        #expect(
            GapRules.find(data, today: today).filter { $0.rule == "ed-follow-up" }.map(\.key) == [
                "ed-follow-up:\(due.id)"
            ]
        )

        // A follow-up task made after the visit settles it.
        let followUp = record(
            .task,
            Fixture.id(.task, 30, millis: today.adding(days: -2).millis),
            ["patient": .string(other), "kind": "ed-follow-up", "status": "requested"]
        )
        let settled = ScorecardData(records: patients() + [due, followUp], changes: [])
        #expect(GapRules.find(settled, today: today).filter { $0.rule == "ed-follow-up" }.isEmpty)
    }

    @Test func aTaskCarryingTheKeyIsTheFindingsTask() throws {
        let findings = GapRules.find(ScorecardData(records: patients(), changes: []), today: today)
        let first = try #require(findings.first { $0.rule == "a1c-due" })
        #expect(first.existingTask == nil)
        let task = record(
            .task,
            Fixture.id(.task, 40),
            ["patient": .string(patient), "kind": "screening", "status": "requested", "title": .string(first.title)]
        )
        let again = GapRules.find(ScorecardData(records: patients() + [task], changes: []), today: today)
        #expect(again.first { $0.rule == "a1c-due" }?.existingTask == task.id)
    }
}

struct PanelSummaryTests {
    @Test func patientsWithNoTeamOrSubgroupAreListedAsWorkToDo() {
        let subgroup = Fixture.id(.subgroup, 1)
        let team = Fixture.id(.team, 2)
        let retiredTeam = Fixture.id(.team, 3)
        let placed = Fixture.id(.patient, 4)
        let orphan = Fixture.id(.patient, 5)
        let records = [
            record(.subgroup, subgroup, ["key": "healthy", "status": "active"]),
            record(.team, team, ["name": "Blue", "status": "active"]),
            record(.team, retiredTeam, ["name": "Old", "status": "inactive"]),
            record(
                .patient,
                placed,
                ["status": "active", "subgroup": .string(subgroup), "primaryTeam": .string(team), "riskTier": "low"],
                sets: ["careGaps": ["flu-vaccine"]]
            ),
            record(.patient, orphan, ["status": "active", "primaryTeam": .string(retiredTeam)]),
        ]
        let summary = PanelSummary(ScorecardData(records: records, changes: []))
        #expect(summary.withoutTeam == [orphan])
        #expect(summary.withoutSubgroup == [orphan])
        #expect(summary.teams.map(\.team) == [team, "none"])
        #expect(summary.teams.first?.bySubgroup == ["healthy": 1])
        #expect(summary.teams.first?.byRiskTier == ["low": 1])
        #expect(summary.openGapsBySubgroup == ["healthy": ["flu-vaccine": 1]])
    }
}

struct GapKeyTests {
    @Test func theKeysOfATitleAreItsMarkersInOrder() {
        #expect(GapRules.keys(inTitle: "Recheck A1c [gap:a1c-due:none]") == ["a1c-due:none"])
        #expect(GapRules.keys(inTitle: "[gap:a][gap:b] and [gap:a]") == ["a", "b", "a"])
        #expect(GapRules.keys(inTitle: "no marker, [gap:unclosed") == [])
        #expect(GapRules.keys(inTitle: "[gap:[gap:x]") == ["[gap:x", "x"])
        #expect(GapRules.keys(inTitle: "Rappel vaccin \u{E9}t\u{E9} [gap:flu-vaccine]") == ["flu-vaccine"])
        // A combining accent after the bracket makes one character of both: no longer a closing bracket.
        #expect(GapRules.keys(inTitle: "[gap:a]\u{301}b]") == ["a]\u{301}b"])
    }

    /// An ASCII title is read as bytes, any other as characters: the same markers give the same keys.
    @Test(arguments: 0..<200)
    func asciiAndOtherTitlesGiveTheSameKeys(seed: Int) {
        var generator = SeededGenerator(seed: UInt64(seed))
        let pieces = ["[gap:", "]", "a1c-due", ":", " ", "pat_01", "[", "gap", "\r\n", "x"]
        let title = (0..<Int(generator.next() % 12)).map { _ in pieces[Int(generator.next() % UInt64(pieces.count))] }
            .joined()
        #expect(GapRules.keys(inTitle: title) == GapRules.keys(inTitle: title + " \u{E9}"), "\(title)")
        #expect(GapRules.keys(inTitle: title) == GapRules.keys(inTitle: "\u{E9}" + title), "\(title)")
    }
}
