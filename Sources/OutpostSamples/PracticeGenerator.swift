import OutpostCRDT
public import OutpostModel

/// Generates a synthetic practice, deterministically from a seed: the reference workload of DESIGN.md
/// section 7 and smaller ones for tests and demos.
///
/// The same seed and size give the same records, ids and bytes on every machine: ids are made from fixed
/// fake times (``idBaseMillis`` plus one millisecond per record) and a ``SeededGenerator``. Every record
/// passes ``CareModel`` validation as of ``asOf``. For example:
///
/// ```swift
/// let dump = PracticeGenerator(seed: 1, size: .small).generate()
/// try dump.validate(today: PracticeGenerator.asOf)
/// ```
///
/// Names, phones (555-01xx) and addresses are invented; no real person is described.
public struct PracticeGenerator: Sendable {
    /// How big a practice to generate.
    public struct Size: Sendable, Hashable, CustomStringConvertible {
        /// The size's name: `small`, `medium` or `reference`.
        public var name: String
        /// Patients on the panel.
        public var patients: Int
        /// Teams for each subgroup, in the order healthy, at risk, chronic, complex.
        public var teamsPerSubgroup: [Int]
        /// Care tasks per patient.
        public var tasksPerPatient: Int
        /// Sites (at most 6).
        public var sites: Int

        /// Creates a size.
        public init(name: String, patients: Int, teamsPerSubgroup: [Int], tasksPerPatient: Int, sites: Int) {
            self.name = name
            self.patients = patients
            self.teamsPerSubgroup = teamsPerSubgroup
            self.tasksPerPatient = tasksPerPatient
            self.sites = sites
        }

        /// 20 patients, 4 teams, 20 tasks each: fixtures and quick tests.
        public static let small = Size(
            name: "small",
            patients: 20,
            teamsPerSubgroup: [1, 1, 1, 1],
            tasksPerPatient: 20,
            sites: 3
        )
        /// 250 patients, 6 teams.
        public static let medium = Size(
            name: "medium",
            patients: 250,
            teamsPerSubgroup: [2, 2, 1, 1],
            tasksPerPatient: 20,
            sites: 4
        )
        /// The reference practice of DESIGN.md section 7: 2,500 patients, 10 teams, 50,000 tasks.
        public static let reference = Size(
            name: "reference",
            patients: 2500,
            teamsPerSubgroup: [4, 3, 2, 1],
            tasksPerPatient: 20,
            sites: 6
        )

        /// The named sizes.
        public static let all: [Size] = [.small, .medium, .reference]

        /// The size called `name`, or `nil`.
        public init?(named name: String) {
            guard let size = Self.all.first(where: { $0.name == name }) else { return nil }
            self = size
        }

        public var description: String { name }
    }

    /// The day the generated practice is "as of": no date that must not be in the future is later.
    public static let asOf = CalendarDate(year: 2026, month: 6, day: 1) ?? CalendarDate(daysSinceEpoch: 20_605)
    /// The fake creation time of the first record's id; each later record's is one millisecond later.
    public static let idBaseMillis = asOf.adding(days: -365).millis

    /// The subgroups every generated practice has: key, label, share of the panel in percent, payment per
    /// member-month in cents (the paper's $5, $10, $25, $100).
    public static let subgroups: [(key: String, label: String, percent: Int, cents: Int64)] = [
        ("healthy", "Healthy", 45, 500),
        ("at-risk", "At risk", 25, 1000),
        ("chronic", "Chronic disease", 20, 2500),
        ("complex", "Complex needs", 10, 10000),
    ]

    /// The seed.
    public let seed: UInt64
    /// The size.
    public let size: Size

    /// Creates a generator.
    public init(seed: UInt64, size: Size) {
        self.seed = seed
        self.size = size
    }

    /// Generates the practice: the practice, sites, subgroups, people, teams, then each patient followed by
    /// their observations, encounters and tasks.
    public func generate() -> PracticeDump {
        var run = Run(seed: seed)
        return run.practice(size)
    }
}

/// One generation: the random source, the id clock and the records made so far.
private struct Run {
    var random: SeededGenerator
    var millis = PracticeGenerator.idBaseMillis
    var records: [DumpRecord] = []
    let asOf = PracticeGenerator.asOf

    init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    mutating func practice(_ size: PracticeGenerator.Size) -> PracticeDump {
        records.reserveCapacity(size.patients * (size.tasksPerPatient + 10) + 100)
        let practiceID = id(.practice)
        let town = pick(Names.towns)
        let practiceName = "\(town) \(pick(["Family Medicine", "Community Health", "Primary Care"]))"
        emit(
            .practice,
            practiceID,
            [
                "name": .value(.string(practiceName)),
                "address": .value(.string(address(town))),
                "phone": .value(.string(phone())),
                "timeZone": .value("America/Denver"),
                "status": .value("active"),
            ]
        )

        let siteTemplates: [(name: String, kind: String)] = [
            ("\(town) Clinic", "clinic"), ("Home visits", "home-visit"), ("Telehealth", "virtual"),
            ("\(town) High School clinic", "school"), ("North Valley Clinic", "clinic"),
            ("Mill workplace clinic", "workplace"),
        ]
        var sites: [(id: String, kind: String)] = []
        for template in siteTemplates.prefix(max(1, min(size.sites, siteTemplates.count))) {
            let siteID = id(.site)
            var fields: [String: DumpField] = [
                "name": .value(.string(template.name)), "kind": .value(.string(template.kind)),
                "status": .value("active"),
            ]
            if template.kind != "virtual" && template.kind != "home-visit" {
                fields["address"] = .value(.string(address(town)))
                fields["phone"] = .value(.string(phone()))
            }
            emit(.site, siteID, fields)
            sites.append((siteID, template.kind))
        }
        let clinics = sites.filter { $0.kind == "clinic" }.map(\.id)
        let homeSite = sites.first { $0.kind == "home-visit" }?.id
        let schoolSite = sites.first { $0.kind == "school" }?.id

        var subgroupIDs: [String] = []
        for subgroup in PracticeGenerator.subgroups {
            let subgroupID = id(.subgroup)
            emit(
                .subgroup,
                subgroupID,
                [
                    "key": .value(.string(subgroup.key)), "label": .value(.string(subgroup.label)),
                    "description": .value(.string("Adults in the \(subgroup.label.lowercased()) group.")),
                    "monthlyPaymentCents": .value(.int(subgroup.cents)), "status": .value("active"),
                ]
            )
            subgroupIDs.append(subgroupID)
        }

        // Teams, each with its staff; teamsBySubgroup[g] lists the teams serving subgroup g.
        var teamsBySubgroup: [[Team]] = Array(repeating: [], count: subgroupIDs.count)
        var teamNumber = 0
        for (group, count) in size.teamsPerSubgroup.enumerated() where group < subgroupIDs.count {
            for _ in 0..<max(1, count) {
                teamNumber += 1
                var roles = ["physician", "rn", "medical-assistant", "care-navigator", "front-office"]
                if group >= 2 { roles += ["pharmacist", "behavioral-health"] }
                if group == 3 { roles += ["social-worker", "np-pa"] }
                var members: [String] = []
                for role in roles {
                    let personID = id(.person)
                    emit(
                        .person,
                        personID,
                        [
                            "name": .value(.string("\(pick(Names.given)) \(pick(Names.family))")),
                            "role": .value(.string(role)),
                            "email": .value(.string("staff\(records.count)@example.org")),
                            "sites": .list(clinics.prefix(1).map(Value.string)),
                            "status": .value("active"),
                        ]
                    )
                    members.append(personID)
                }
                let teamID = id(.team)
                emit(
                    .team,
                    teamID,
                    [
                        "name": .value(.string("Team \(teamNumber) (\(PracticeGenerator.subgroups[group].label))")),
                        "subgroup": .value(.string(subgroupIDs[group])),
                        "leader": .value(.string(members[0])), "members": .list(members.map(Value.string)),
                        "status": .value("active"),
                    ]
                )
                teamsBySubgroup[group].append(Team(id: teamID, members: members))
            }
        }

        // Exact subgroup counts (45/25/20/10, the rest to the last), scattered over the panel.
        var groups: [Int] = []
        for (group, subgroup) in PracticeGenerator.subgroups.enumerated() {
            let count =
                group == PracticeGenerator.subgroups.count - 1
                ? size.patients - groups.count : size.patients * subgroup.percent / 100
            groups += Array(repeating: group, count: count)
        }
        for index in stride(from: groups.count - 1, to: 0, by: -1) {
            groups.swapAt(index, below(index + 1))
        }

        for (number, group) in groups.enumerated() {
            let teams = teamsBySubgroup[group]
            let team = teams[number % teams.count]
            let patientSites = [pick(clinics)] + (group == 3 ? homeSite.map { [$0] } ?? [] : [])
            patient(
                group: group,
                subgroupID: subgroupIDs[group],
                team: team,
                sites: patientSites,
                clinic: patientSites[0],
                homeSite: homeSite,
                schoolSite: schoolSite,
                tasks: size.tasksPerPatient
            )
        }
        return PracticeDump(practice: .init(id: practiceID, name: practiceName), records: records)
    }

    // MARK: - Patients and their records

    mutating func patient(
        group: Int,
        subgroupID: String,
        team: Team,
        sites: [String],
        clinic: String,
        homeSite: String?,
        schoolSite: String?,
        tasks: Int
    ) {
        let patientID = id(.patient)
        let ageRange = [18...50, 30...65, 40...80, 55...95][group]
        let age = ageRange.lowerBound + below(ageRange.count)
        let birthDate = asOf.adding(days: -(age * 365 + below(365)))
        var conditions: Set<String> = []
        let conditionCount = [0, below(2), 1 + below(2), 3 + below(3)][group]
        let pool = group == 1 ? Names.riskConditions : Names.chronicConditions
        while conditions.count < conditionCount { conditions.insert(pick(pool)) }
        let hasDiabetes = conditions.contains("E11.9") || conditions.contains("R73.03")
        var gaps: Set<String> = []
        let gapCount = below(group + 2)
        while gaps.count < gapCount { gaps.insert(pick(Names.careGaps)) }
        var fields: [String: DumpField] = [
            "givenName": .value(.string(pick(Names.given))),
            "familyName": .value(.string(pick(Names.family))),
            "birthDate": .value(.string(birthDate.description)),
            "sex": .value(.string(chance(48) ? "male" : chance(96) ? "female" : chance(50) ? "other" : "unknown")),
            "mrn": .value(.string("MRN\(100_000 + records.count)")),
            "phone": .value(.string(phone())),
            "address": .value(.string(address(pick(Names.towns)))),
            "preferredLanguage": .value(.string(chance(80) ? "en" : chance(75) ? "es" : "vi")),
            "subgroup": .value(.string(subgroupID)),
            "riskTier": .value(.string(["low", "moderate", "high", "very-high"][group])),
            "primaryTeam": .value(.string(team.id)),
            "sites": .list(sites.map(Value.string)),
            "conditions": .list(conditions.sorted().map(Value.string)),
            "allergies": .list(chance(25) ? [.string(pick(Names.allergies))] : []),
            "careGaps": .list(gaps.sorted().map(Value.string)),
            "consentToText": .value(.bool(chance(85))),
            "consentToShare": .value(.bool(chance(92))),
            "status": .value(chance(98) ? "active" : "inactive"),
            "notes": .list(chance(30) ? [.string(pick(Names.patientNotes))] : []),
        ]
        if fields["allergies"] == .list([]) { fields["allergies"] = nil }
        if fields["notes"] == .list([]) { fields["notes"] = nil }
        emit(.patient, patientID, fields)

        // Blood pressure pairs for everyone, HbA1c for diabetes and prediabetes.
        for _ in 0..<[1, 2, 2, 3][group] {
            let at = pastDateTime(days: 365)
            let systolic = 105 + below(group >= 2 ? 60 : 40)
            observation(patientID, "8480-6", String(systolic), "mm[Hg]", at, clinic)
            observation(patientID, "8462-4", String(60 + below(group >= 2 ? 40 : 25)), "mm[Hg]", at, clinic)
        }
        if hasDiabetes {
            for _ in 0..<2 {
                let tenths = 54 + below(conditions.contains("E11.9") ? 50 : 12)
                observation(patientID, "4548-4", "\(tenths / 10).\(tenths % 10)", "%", pastDateTime(days: 365), clinic)
            }
        }

        for _ in 0..<[1, 2, 3, 5][group] {
            var kind = pick(["office", "office", "office", "virtual", "specialist"])
            if group == 3 && chance(35) { kind = pick(["ed-visit", "admission", "home"]) }
            if group == 2 && chance(12) { kind = "ed-visit" }
            if group == 0 && chance(10), schoolSite != nil { kind = "school" }
            let baseCost: Int64 =
                switch kind {
                case "virtual": 8000
                case "school": 6000
                case "home": 20000
                case "specialist": 30000
                case "ed-visit": 180_000
                case "admission": 1_200_000
                default: 15000
                }
            var encounterFields: [String: DumpField] = [
                "patient": .value(.string(patientID)), "kind": .value(.string(kind)),
                "occurredAt": .value(.string(pastDateTime(days: 365))),
                "costCents": .value(.int(baseCost + Int64(below(Int(baseCost / 4))))),
                "status": .value("finished"),
            ]
            let site: String? =
                switch kind {
                case "office": clinic
                case "home": homeSite
                case "school": schoolSite
                default: nil
                }
            if let site { encounterFields["site"] = .value(.string(site)) }
            emit(.encounter, id(.encounter), encounterFields)
        }

        for _ in 0..<tasks {
            task(patientID, group: group, team: team)
        }
    }

    mutating func observation(
        _ patient: String,
        _ code: String,
        _ value: String,
        _ unit: String,
        _ at: String,
        _ site: String
    ) {
        emit(
            .observation,
            id(.observation),
            [
                "patient": .value(.string(patient)), "code": .value(.string(code)), "value": .value(.string(value)),
                "unit": .value(.string(unit)), "effectiveAt": .value(.string(at)), "site": .value(.string(site)),
                "status": .value("final"),
            ]
        )
    }

    mutating func task(_ patient: String, group: Int, team: Team) {
        let kind = pick(Names.taskKinds[group])
        let status = weighted([
            ("completed", 55), ("requested", 10), ("ready", 10), ("in-progress", 10), ("on-hold", 3),
            ("cancelled", 7), ("failed", 3), ("entered-in-error", 2),
        ])
        let channel: String =
            switch kind {
            case "home-visit": "home"
            case "school-visit": "school"
            case "group-visit", "screening", "behavioral-screening": "in-person"
            case "remote-monitoring": pick(["phone", "message"])
            default: pick(["phone", "phone", "message", "video", "in-person"])
            }
        var fields: [String: DumpField] = [
            "patient": .value(.string(patient)), "team": .value(.string(team.id)), "kind": .value(.string(kind)),
            "title": .value(.string(Names.taskTitle(kind))), "status": .value(.string(status)),
            "priority": .value(.string(weighted([("routine", 80), ("urgent", 12), ("asap", 6), ("stat", 2)]))),
            "dueDate": .value(.string(asOf.adding(days: below(270) - 180).description)),
            "assignee": .value(.string(pick(team.members))), "channel": .value(.string(channel)),
        ]
        let noteCount = below(3)
        if noteCount > 0 {
            fields["notes"] = .list((0..<noteCount).map { _ in .string(pick(Names.taskNotes)) })
        }
        if kind == "referral" {
            let sent = asOf.adding(days: -(10 + below(200)))
            let appointment = sent.adding(days: 7 + below(60))
            fields["referredTo"] = .value(.string(pick(Names.specialties)))
            fields["referralSentOn"] = .value(.string(sent.description))
            fields["appointmentOn"] = .value(.string(appointment.description))
            var referralStatus = appointment > asOf ? "scheduled" : "seen"
            if appointment <= asOf && chance(70) {
                let result = min(asOf, appointment.adding(days: below(21)))
                fields["resultReceivedOn"] = .value(.string(result.description))
                referralStatus = status == "completed" ? "closed" : "result-received"
            }
            fields["referralStatus"] = .value(.string(referralStatus))
        }
        emit(.task, id(.task), fields)
    }

    // MARK: - Helpers

    mutating func id(_ type: RecordType) -> String {
        millis += 1
        return type.makeID(millis: millis, using: &random)
    }

    mutating func emit(_ type: RecordType, _ id: String, _ fields: [String: DumpField]) {
        records.append(DumpRecord(type: type.rawValue, id: id, fields: fields))
    }

    /// A number in `0..<bound` (fixed arithmetic, so the sequence never depends on the standard library).
    mutating func below(_ bound: Int) -> Int {
        bound <= 1 ? 0 : Int(random.next() % UInt64(bound))
    }

    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    mutating func pick<Element>(_ items: [Element]) -> Element { items[below(items.count)] }

    mutating func weighted(_ items: [(String, Int)]) -> String {
        var roll = below(items.reduce(0) { $0 + $1.1 })
        for (item, weight) in items {
            if roll < weight { return item }
            roll -= weight
        }
        return items[items.count - 1].0
    }

    mutating func phone() -> String { "(406) 555-01\(below(10))\(below(10))" }

    mutating func address(_ town: String) -> String {
        "\(10 + below(990)) \(pick(Names.streets)), \(town), MT 59\(100 + below(800))"
    }

    mutating func pastDateTime(days: Int) -> String {
        let day = asOf.adding(days: -(1 + below(days)))
        return CalendarDate.dateTime(millis: day.millis + UInt64(8 * 3_600_000 + below(10 * 3600) * 1000))
    }
}

private struct Team {
    var id: String
    var members: [String]
}
