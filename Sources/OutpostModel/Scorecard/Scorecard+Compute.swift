import OutpostCRDT

extension Scorecard {
    /// LOINC HbA1c.
    static let a1cCode = "4548-4"
    /// LOINC systolic blood pressure.
    static let systolicCode = "8480-6"
    /// LOINC diastolic blood pressure.
    static let diastolicCode = "8462-4"
    /// ICD-10 prefixes counted as diabetes (type 1, type 2, other specified; not prediabetes R73.03).
    public static let diabetesPrefixes = ["E10", "E11", "E13"]
    /// ICD-10 prefixes counted as hypertension.
    public static let hypertensionPrefixes = ["I10", "I11", "I12", "I13", "I15", "I16"]
    /// Task kinds counted as screening work.
    public static let screeningKinds: Set<String> = ["screening", "gap-closure", "behavioral-screening"]

    /// Computes the scorecard of `data` over `period`, grouped `by`.
    public static func compute(_ data: ScorecardData, period: ScorecardPeriod, by grouping: Grouping) -> Scorecard {
        var run = ScorecardRun(data: data, period: period, grouping: grouping)
        return run.compute()
    }
}

/// Whether any of `conditions` starts with one of `prefixes`.
func hasCondition(_ conditions: [String], _ prefixes: [String]) -> Bool {
    conditions.contains { code in prefixes.contains { code.hasPrefix($0) } }
}

/// The computation of one scorecard: indexes the records, then walks patients, tasks and encounters once.
private struct ScorecardRun {
    let data: ScorecardData
    let period: ScorecardPeriod
    let grouping: Scorecard.Grouping
    var accumulators: [String: Accumulator] = [:]
    var paymentBySubgroup: [String: Int64] = [:]
    var timelines: [String: PatientTimeline] = [:]
    var patients: [String: MaterializedRecord] = [:]
    /// Completed tasks with a dated completion, by patient: (kind, completion day).
    var completions: [String: [(kind: String, day: CalendarDate)]] = [:]

    init(data: ScorecardData, period: ScorecardPeriod, grouping: Scorecard.Grouping) {
        self.data = data
        self.period = period
        self.grouping = grouping
    }

    mutating func compute() -> Scorecard {
        for subgroup in data.records(.subgroup) {
            paymentBySubgroup[subgroup.id] = subgroup.value("monthlyPaymentCents")?.intValue ?? 0
        }
        for patient in data.records(.patient) {
            patients[patient.id] = patient
            timelines[patient.id] = PatientTimeline(patient: patient, changes: data.changes[patient.id] ?? [])
        }
        for task in data.tasks where task.status == "completed" && !task.isRetired {
            guard let patient = task.patient, let day = Self.completionDay(data.changes[task.id] ?? [])
            else { continue }
            completions[patient, default: []].append((task.kind ?? "", day))
        }
        for patient in data.records(.patient) { addPatient(patient) }
        for task in data.tasks where !task.isRetired { addTask(task) }
        var observations: [String: [ScorecardObservation]] = [:]
        for observation in data.observations where !observation.isRetired {
            observations[observation.patient ?? "", default: []].append(observation)
        }
        for patient in data.records(.patient) { addClinical(patient, observations[patient.id] ?? []) }
        for encounter in data.encounters where !encounter.isRetired { addEncounter(encounter) }
        return finish()
    }

    // MARK: - Groups

    /// The groups a patient belongs to on `day` (the whole panel last); empty when not a member that day.
    func groups(of patientID: String, on day: CalendarDate) -> [String] {
        guard let timeline = timelines[patientID], timeline.isMember(on: day) else { return [] }
        switch grouping {
        case .subgroup: return [timeline.subgroup(on: day) ?? "none", "all"]
        case .team: return [patients[patientID]?.string("primaryTeam") ?? "none", "all"]
        case .site:
            let sites = patients[patientID]?.values("sites").compactMap(\.stringValue) ?? []
            return (sites.isEmpty ? ["none"] : sites) + ["all"]
        }
    }

    mutating func update(_ keys: [String], _ body: (inout Accumulator) -> Void) {
        for key in keys { body(&accumulators[key, default: Accumulator()]) }
    }

    // MARK: - Members and payment

    mutating func addPatient(_ patient: MaterializedRecord) {
        guard let timeline = timelines[patient.id] else { return }
        var lastMemberDay: CalendarDate?
        // Consecutive member days in the same groups and month are counted as one run: one update per run, not
        // per day (a year's scorecard walks 365 days of every patient).
        var run: (keys: [String], month: MonthRate, days: Int)?
        // A member's groups and payment change only with their subgroup: looked up again only then.
        var groupsToday: (subgroup: String?, cents: Int64, keys: [String])?
        var day = period.from
        while day <= period.to {
            if timeline.isMember(on: day) {
                lastMemberDay = day
                let subgroup = timeline.subgroup(on: day)
                let held: (subgroup: String?, cents: Int64, keys: [String])
                if let groupsToday, groupsToday.subgroup == subgroup {
                    held = groupsToday
                } else {
                    held = (subgroup, subgroup.flatMap { paymentBySubgroup[$0] } ?? 0, groups(of: patient.id, on: day))
                    groupsToday = held
                }
                let keys = held.keys
                let month = MonthRate(
                    month: day.year * 12 + day.month,
                    days: ScorecardPeriod.daysInMonth(of: day),
                    cents: held.cents
                )
                if let current = run, current.month == month, current.keys == keys {
                    run?.days += 1
                } else {
                    if let current = run {
                        update(current.keys) { $0.memberDays[current.month, default: 0] += current.days }
                    }
                    run = (keys, month, 1)
                }
            }
            day = day.adding(days: 1)
        }
        if let current = run { update(current.keys) { $0.memberDays[current.month, default: 0] += current.days } }
        if let lastMemberDay {
            update(groups(of: patient.id, on: lastMemberDay)) { $0.patients += 1 }
        }
        addCareGaps(patient, lastMemberDay: lastMemberDay)
    }

    // MARK: - Preventive care

    mutating func addCareGaps(_ patient: MaterializedRecord, lastMemberDay: CalendarDate?) {
        guard let lastMemberDay, let timeline = timelines[patient.id] else { return }
        let history = data.changes[patient.id] ?? []
        let firstMillis = history.first?.clock.millis
        let events = history.filter { $0.field == "careGaps" }
        var open: Set<String> = []
        var seen: Set<String> = []
        var removed: Set<String> = []
        var isInPeriod = false
        if events.isEmpty {
            open = Set(patient.values("careGaps").compactMap(\.stringValue))
            seen = timeline.created <= period.to ? open : []
        } else {
            for event in events {
                guard let code = event.value.stringValue else { continue }
                var day = CalendarDate(millis: event.clock.millis)
                if event.clock.millis == firstMillis { day = min(day, timeline.created) }
                if day > period.to { break }
                let isAdd = event.operation == .add
                if day < period.from {
                    if isAdd { open.insert(code) } else { open.remove(code) }
                    continue
                }
                if !isInPeriod {
                    isInPeriod = true
                    seen = open
                }
                if isAdd {
                    open.insert(code)
                    seen.insert(code)
                } else if open.remove(code) != nil {
                    removed.insert(code)
                }
            }
            if !isInPeriod { seen = open }
        }
        let closed = removed.subtracting(open)
        update(groups(of: patient.id, on: lastMemberDay)) { accumulator in
            for code in seen {
                accumulator.gaps[code, default: (0, 0)].denominator += 1
                if closed.contains(code) { accumulator.gaps[code, default: (0, 0)].numerator += 1 }
            }
        }
    }

    // MARK: - Clinical control

    mutating func addClinical(_ patient: MaterializedRecord, _ observations: [ScorecardObservation]) {
        guard let timeline = timelines[patient.id] else { return }
        var lastMemberDay: CalendarDate?
        var day = period.to
        while day >= period.from {
            if timeline.isMember(on: day) {
                lastMemberDay = day
                break
            }
            day = day.adding(days: -1)
        }
        guard let lastMemberDay else { return }
        let conditions = patient.values("conditions").compactMap(\.stringValue)
        let hasDiabetes = hasCondition(conditions, Scorecard.diabetesPrefixes)
        let hasHypertension = hasCondition(conditions, Scorecard.hypertensionPrefixes)
        guard hasDiabetes || hasHypertension else { return }
        let windowStart = period.to.adding(days: -364)
        var readings: [(code: String, millis: Int64, day: CalendarDate, value: Double)] = []
        for observation in observations {
            guard let code = observation.code,
                let at = observation.effectiveAt.flatMap({ CalendarDate.parseDateTime($0) }),
                at.date >= windowStart, at.date <= period.to,
                let value = observation.value.flatMap({ Double($0) }).flatMap({
                    Self.measure(code, $0, observation.unit)
                })
            else { continue }
            readings.append((code, at.millis, at.date, value))
        }
        let keys = groups(of: patient.id, on: lastMemberDay)
        if hasDiabetes {
            let latest = readings.filter { $0.code == Scorecard.a1cCode }.max { $0.millis < $1.millis }
            update(keys) { accumulator in
                accumulator.diabetes.denominator += 1
                if let latest, latest.value < 8 { accumulator.diabetes.numerator += 1 }
                if latest == nil { accumulator.diabetesNoReading += 1 }
            }
        }
        if hasHypertension {
            let systolicDays = Set(readings.filter { $0.code == Scorecard.systolicCode }.map(\.day))
            let diastolicDays = Set(readings.filter { $0.code == Scorecard.diastolicCode }.map(\.day))
            let latestDay = systolicDays.intersection(diastolicDays).max()
            var isControlled = false
            if let latestDay {
                let onDay = readings.filter { $0.day == latestDay }
                let systolic = onDay.filter { $0.code == Scorecard.systolicCode }.map(\.value).min() ?? .infinity
                let diastolic = onDay.filter { $0.code == Scorecard.diastolicCode }.map(\.value).min() ?? .infinity
                isControlled = systolic < 140 && diastolic < 90
            }
            update(keys) { accumulator in
                accumulator.hypertension.denominator += 1
                if isControlled { accumulator.hypertension.numerator += 1 }
                if latestDay == nil { accumulator.hypertensionNoReading += 1 }
            }
        }
    }

    /// A reading's value in the unit the measures compare it in: HbA1c in %, blood pressures in mm[Hg]; `nil` for a
    /// reading in another unit or none (written by a client that did not check units, or whose unit was refused),
    /// which counts as no reading.
    static func measure(_ code: String, _ value: Double, _ unit: String?) -> Double? {
        switch code {
        case Scorecard.a1cCode: CareModel.percentHbA1c(value, unit: unit)
        case Scorecard.systolicCode, Scorecard.diastolicCode: unit == "mm[Hg]" ? value : nil
        default: value
        }
    }

    // MARK: - Tasks: access and referrals

    /// The day a task was completed: the latest `completed` assignment that came after the task's creation
    /// (a task created already completed, as in an import, has no dated completion).
    static func completionDay(_ changes: [Change]) -> CalendarDate? {
        let statuses = changes.filter { $0.field == "status" && $0.operation == .assign }
        guard let created = statuses.first?.clock.millis,
            let done = statuses.last(where: { $0.value.stringValue == "completed" }),
            done.clock.millis != created
        else { return nil }
        return CalendarDate(millis: done.clock.millis)
    }

    mutating func addTask(_ task: ScorecardTask) {
        guard let patient = task.patient, let status = task.status else { return }
        let kind = task.kind ?? ""
        let done = status == "completed" ? Self.completionDay(data.changes[task.id] ?? []) : nil
        if let done, period.contains(done) {
            let days = ScorecardData.creationDay(of: task.id).map { done.daysSinceEpoch - $0.daysSinceEpoch }
            update(groups(of: patient, on: done)) { accumulator in
                accumulator.tasksDone += 1
                if Scorecard.screeningKinds.contains(kind) { accumulator.screeningTasksDone += 1 }
                if let days {
                    accumulator.daysToDone.append(days)
                    accumulator.daysToDoneByKind[kind, default: []].append(days)
                }
            }
        }
        let isDatedOrOpen = status != "completed" || done != nil
        if let due = task.dueDate.flatMap({ CalendarDate($0) }), period.contains(due),
            status != "cancelled", isDatedOrOpen
        {
            update(groups(of: patient, on: due)) { accumulator in
                accumulator.onTime.denominator += 1
                if let done, done <= due { accumulator.onTime.numerator += 1 }
            }
        }
        if kind == "referral", status != "cancelled",
            let sent = task.referralSentOn.flatMap({ CalendarDate($0) }), period.contains(sent)
        {
            let result = task.resultReceivedOn.flatMap { CalendarDate($0) }
            let end = period.to
            update(groups(of: patient, on: sent)) { accumulator in
                accumulator.referrals.denominator += 1
                if let result, result <= end, result >= sent {
                    accumulator.referrals.numerator += 1
                    accumulator.daysToReferralResult.append(result.daysSinceEpoch - sent.daysSinceEpoch)
                }
            }
        }
    }

    // MARK: - Encounters: utilization, follow-up and cost

    mutating func addEncounter(_ encounter: ScorecardEncounter) {
        guard encounter.status == "finished", let patient = encounter.patient,
            let day = encounter.occurredAt.flatMap({ CalendarDate.parseDateTime($0)?.date }),
            period.contains(day)
        else { return }
        let keys = groups(of: patient, on: day)
        guard !keys.isEmpty else { return }
        let kind = encounter.kind
        let followUpKind = kind == "ed-visit" ? "ed-follow-up" : kind == "admission" ? "discharge-follow-up" : nil
        let followedUp =
            followUpKind.map { followUp in
                completions[patient, default: []].contains {
                    $0.kind == followUp && $0.day >= day && $0.day.daysSinceEpoch - day.daysSinceEpoch <= 7
                }
            } ?? false
        let cost = encounter.costCents
        update(keys) { accumulator in
            if kind == "ed-visit" {
                accumulator.edVisits += 1
                accumulator.edFollowUp.denominator += 1
                if followedUp { accumulator.edFollowUp.numerator += 1 }
            } else if kind == "admission" {
                accumulator.admissions += 1
                accumulator.dischargeFollowUp.denominator += 1
                if followedUp { accumulator.dischargeFollowUp.numerator += 1 }
            }
            if let cost { accumulator.costCents += cost } else { accumulator.uncostedEncounters += 1 }
        }
    }

    // MARK: - Results

    func finish() -> Scorecard {
        var keys: [(key: String, label: String)]
        switch grouping {
        case .subgroup:
            keys = data.records(.subgroup).map { ($0.id, $0.string("key") ?? $0.id) }
        case .team:
            keys = data.records(.team).map { ($0.id, $0.string("name") ?? $0.id) }
        case .site:
            keys = data.records(.site).map { ($0.id, $0.string("name") ?? $0.id) }
        }
        let listed = Set(keys.map(\.key))
        let retired = Set(
            data.records(grouping == .subgroup ? .subgroup : grouping == .team ? .team : .site).filter(\.isRetired)
                .map(\.id)
        )
        keys.removeAll { retired.contains($0.key) && accumulators[$0.key] == nil }
        for key in accumulators.keys.sorted() where !listed.contains(key) && key != "all" && key != "none" {
            keys.append((key, key))
        }
        if accumulators["none"] != nil { keys.append(("none", "(none)")) }
        return Scorecard(
            period: period,
            grouping: grouping,
            groups: keys.map { (accumulators[$0.key] ?? Accumulator()).group(key: $0.key, label: $0.label) },
            total: (accumulators["all"] ?? Accumulator()).group(key: "all", label: "All patients")
        )
    }
}

/// Member days in one month at one payment rate.
private struct MonthRate: Hashable {
    var month: Int
    var days: Int
    var cents: Int64
}

/// Running counts for one group.
private struct Accumulator {
    var patients = 0
    var memberDays: [MonthRate: Int] = [:]
    var diabetes = (numerator: 0, denominator: 0)
    var diabetesNoReading = 0
    var hypertension = (numerator: 0, denominator: 0)
    var hypertensionNoReading = 0
    var gaps: [String: (numerator: Int, denominator: Int)] = [:]
    var screeningTasksDone = 0
    var edVisits = 0
    var admissions = 0
    var tasksDone = 0
    var daysToDone: [Int] = []
    var daysToDoneByKind: [String: [Int]] = [:]
    var onTime = (numerator: 0, denominator: 0)
    var referrals = (numerator: 0, denominator: 0)
    var daysToReferralResult: [Int] = []
    var edFollowUp = (numerator: 0, denominator: 0)
    var dischargeFollowUp = (numerator: 0, denominator: 0)
    var costCents: Int64 = 0
    var uncostedEncounters = 0

    func group(key: String, label: String) -> ScorecardGroup {
        var memberMonths = 0.0
        var payment = 0.0
        for (rate, days) in memberDays.sorted(by: { ($0.key.month, $0.key.cents) < ($1.key.month, $1.key.cents) }) {
            memberMonths += Double(days) / Double(rate.days)
            payment += Double(days) * Double(rate.cents) / Double(rate.days)
        }
        let paymentCents = Int64(payment.rounded())
        func per1000(_ count: Int) -> Double? {
            memberMonths > 0 ? (Double(count) * 12_000 / memberMonths * 10).rounded() / 10 : nil
        }
        return ScorecardGroup(
            key: key,
            label: label,
            patients: patients,
            memberMonths: (memberMonths * 100).rounded() / 100,
            diabetesControl: Ratio(numerator: diabetes.numerator, denominator: diabetes.denominator),
            diabetesNoReading: diabetesNoReading,
            hypertensionControl: Ratio(numerator: hypertension.numerator, denominator: hypertension.denominator),
            hypertensionNoReading: hypertensionNoReading,
            careGapsClosed: gaps.mapValues { Ratio(numerator: $0.numerator, denominator: $0.denominator) },
            screeningTasksDone: screeningTasksDone,
            edVisits: edVisits,
            admissions: admissions,
            edVisitsPer1000: per1000(edVisits),
            admissionsPer1000: per1000(admissions),
            tasksDone: tasksDone,
            medianDaysToDone: median(daysToDone),
            medianDaysToDoneByKind: daysToDoneByKind.compactMapValues(median),
            doneByDueDate: Ratio(numerator: onTime.numerator, denominator: onTime.denominator),
            referralsClosed: Ratio(numerator: referrals.numerator, denominator: referrals.denominator),
            medianDaysToCloseReferral: median(daysToReferralResult),
            edFollowUpWithin7Days: Ratio(numerator: edFollowUp.numerator, denominator: edFollowUp.denominator),
            dischargeFollowUpWithin7Days: Ratio(
                numerator: dischargeFollowUp.numerator,
                denominator: dischargeFollowUp.denominator
            ),
            costCents: costCents,
            uncostedEncounters: uncostedEncounters,
            costPMPMCents: memberMonths > 0 ? Int64((Double(costCents) / memberMonths).rounded()) : nil,
            paymentCents: paymentCents,
            marginCents: paymentCents - costCents
        )
    }
}

/// The median of `values`, one decimal (the mean of the middle two for an even count); `nil` when empty.
func median(_ values: [Int]) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    let value = sorted.count % 2 == 1 ? Double(sorted[middle]) : Double(sorted[middle - 1] + sorted[middle]) / 2
    return (value * 10).rounded() / 10
}
