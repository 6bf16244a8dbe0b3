import OutpostCRDT

/// A patient due for a screening or a follow-up under one of ``GapRules``.
public struct GapFinding: Sendable, Hashable, Codable {
    /// The rule's name (`a1c-due`, `bp-due`, `ed-follow-up`, `discharge-follow-up`).
    public var rule: String
    /// The patient's id.
    public var patient: String
    /// The patient's primary team (the owner of the task to create).
    public var team: String?
    /// The care task kind to create.
    public var kind: String
    /// The task priority.
    public var priority: String
    /// The task's due date.
    public var dueDate: CalendarDate
    /// The deterministic key that marks the task: the rule and the record that triggered it
    /// (`ed-follow-up:enc_…`, `a1c-due:obs_…` or `a1c-due:none`).
    public var key: String
    /// The task title, ending with ``GapRules/marker(_:)`` of the key.
    public var title: String
    /// The id of an existing task carrying the key, when one was already created.
    public var existingTask: String?
}

/// Simple outreach rules that find patients due for a screening or a follow-up, as of a day.
///
/// Only active patients are considered. The rules (docs/scorecard.md, "Gap rules"):
///
/// - `a1c-due`: diabetes (ICD-10 E10, E11, E13) and no HbA1c (4548-4) in the 182 days up to today;
///   a `screening` task due in 14 days.
/// - `bp-due`: hypertension (I10–I13, I15, I16) and no systolic blood pressure (8480-6) in the 365 days
///   up to today; a `screening` task due in 14 days.
/// - `ed-follow-up`: a finished ED visit 2 to 30 days ago with no `ed-follow-up` task for the patient
///   created on or after the visit's day; an urgent task due today.
/// - `discharge-follow-up`: the same for an admission, with a `discharge-follow-up` task.
///
/// Each finding carries a key naming the rule and the triggering record; a task whose title holds the
/// key's marker is the finding's task, so creating tasks twice creates nothing new.
public enum GapRules {
    /// The rule names, in report order.
    public static let names = ["a1c-due", "bp-due", "ed-follow-up", "discharge-follow-up"]

    /// The text put in a created task's title to recognise it: `[gap:KEY]`.
    public static func marker(_ key: String) -> String { "[gap:\(key)]" }

    /// The findings for `data` as of `today`, by patient id then rule.
    public static func find(_ data: ScorecardData, today: CalendarDate) -> [GapFinding] {
        let observations = Dictionary(grouping: data.observations.filter { !$0.isRetired }) { $0.patient ?? "" }
        let encounters = Dictionary(grouping: data.encounters.filter { !$0.isRetired }) { $0.patient ?? "" }
        let tasks = Dictionary(grouping: data.tasks.filter { !$0.isRetired }) { $0.patient ?? "" }
        var findings: [GapFinding] = []
        for patient in data.records(.patient) where !patient.isRetired {
            let conditions = patient.values("conditions").compactMap(\.stringValue)
            let patientTasks = tasks[patient.id] ?? []
            func finding(
                _ rule: String,
                _ trigger: String,
                _ kind: String,
                _ priority: String,
                due: Int,
                _ what: String
            )
                -> GapFinding
            {
                let key = "\(rule):\(trigger)"
                return GapFinding(
                    rule: rule,
                    patient: patient.id,
                    team: patient.string("primaryTeam"),
                    kind: kind,
                    priority: priority,
                    dueDate: today.adding(days: due),
                    key: key,
                    title: "\(what) \(marker(key))",
                    existingTask: patientTasks.first { $0.title?.contains(marker(key)) == true }?.id
                )
            }
            func latest(_ code: String) -> (id: String, day: CalendarDate)? {
                (observations[patient.id] ?? []).compactMap { observation -> (String, CalendarDate)? in
                    guard observation.code == code,
                        let day = observation.effectiveAt.flatMap({ CalendarDate.parseDateTime($0)?.date }),
                        day <= today
                    else { return nil }
                    return (observation.id, day)
                }.max { ($0.1, $0.0) < ($1.1, $1.0) }
            }
            if hasCondition(conditions, Scorecard.diabetesPrefixes) {
                let last = latest(Scorecard.a1cCode)
                if last.map({ $0.day < today.adding(days: -182) }) ?? true {
                    findings.append(
                        finding("a1c-due", last?.id ?? "none", "screening", "routine", due: 14, "HbA1c test due")
                    )
                }
            }
            if hasCondition(conditions, Scorecard.hypertensionPrefixes) {
                let last = latest(Scorecard.systolicCode)
                if last.map({ $0.day < today.adding(days: -365) }) ?? true {
                    findings.append(
                        finding(
                            "bp-due",
                            last?.id ?? "none",
                            "screening",
                            "routine",
                            due: 14,
                            "Blood pressure check due"
                        )
                    )
                }
            }
            for encounter in encounters[patient.id] ?? [] where encounter.status == "finished" {
                let rule: (name: String, kind: String, what: String)
                switch encounter.kind {
                case "ed-visit": rule = ("ed-follow-up", "ed-follow-up", "Follow up after ED visit")
                case "admission": rule = ("discharge-follow-up", "discharge-follow-up", "Follow up after discharge")
                default: continue
                }
                guard let day = encounter.occurredAt.flatMap({ CalendarDate.parseDateTime($0)?.date }) else {
                    continue
                }
                let age = today.daysSinceEpoch - day.daysSinceEpoch
                guard (2...30).contains(age) else { continue }
                let found = finding(rule.name, encounter.id, rule.kind, "urgent", due: 0, rule.what)
                let followedUp = patientTasks.contains { task in
                    task.kind == rule.kind
                        && (ScorecardData.creationDay(of: task.id).map { $0 >= day } ?? false)
                }
                if followedUp && found.existingTask == nil { continue }
                findings.append(found)
            }
        }
        return findings.sorted { ($0.patient, $0.rule, $0.key) < ($1.patient, $1.rule, $1.key) }
    }
}
