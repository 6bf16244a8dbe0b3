import OutpostCRDT

/// A task as the scorecard, the gap rules and the panel read it: its id and the registers they use, as text.
public struct ScorecardTask: Sendable, Hashable {
    /// The task's id.
    public var id: String
    /// The patient it is for (a merged duplicate's survivor once in ``ScorecardData``).
    public var patient: String?
    /// `open`, `completed`, `cancelled`…
    public var status: String?
    /// The kind of work (`screening`, `referral`…).
    public var kind: String?
    /// The day it is due (`YYYY-MM-DD`).
    public var dueDate: String?
    /// The day a referral was sent.
    public var referralSentOn: String?
    /// The day a referral's result came back.
    public var resultReceivedOn: String?
    /// The title, or only its care-gap markers (``GapRules/marker(_:)``), all the gap rules read of it.
    public var title: String?

    /// Creates a row from its fields.
    public init(
        id: String,
        patient: String?,
        status: String?,
        kind: String?,
        dueDate: String? = nil,
        referralSentOn: String? = nil,
        resultReceivedOn: String? = nil,
        title: String? = nil
    ) {
        self.id = id
        self.patient = patient
        self.status = status
        self.kind = kind
        self.dueDate = dueDate
        self.referralSentOn = referralSentOn
        self.resultReceivedOn = resultReceivedOn
        self.title = title
    }

    /// Reads a materialized task.
    public init(_ record: MaterializedRecord) {
        self.init(
            id: record.id,
            patient: record.string("patient"),
            status: record.string("status"),
            kind: record.string("kind"),
            dueDate: record.string("dueDate"),
            referralSentOn: record.string("referralSentOn"),
            resultReceivedOn: record.string("resultReceivedOn"),
            title: record.string("title")
        )
    }

    /// Whether the task is retired (``CareModel/retiredStatuses(of:)``).
    public var isRetired: Bool { status.map(Self.retired.contains) ?? false }

    private static let retired = CareModel.retiredStatuses(of: .task)
}

/// An observation as the scorecard and the gap rules read it.
public struct ScorecardObservation: Sendable, Hashable {
    /// The observation's id.
    public var id: String
    /// The patient it is of.
    public var patient: String?
    /// The LOINC code.
    public var code: String?
    /// When it was taken (an ISO 8601 date-time).
    public var effectiveAt: String?
    /// `final`, `entered-in-error`…
    public var status: String?
    /// The value, as text (`Double` reads it).
    public var value: String?
    /// The value's UCUM unit (``CareModel/observationUnits``).
    public var unit: String?

    /// Creates a row from its fields.
    public init(
        id: String,
        patient: String?,
        code: String?,
        effectiveAt: String?,
        status: String?,
        value: String?,
        unit: String? = nil
    ) {
        self.id = id
        self.patient = patient
        self.code = code
        self.effectiveAt = effectiveAt
        self.status = status
        self.value = value
        self.unit = unit
    }

    /// Reads a materialized observation.
    public init(_ record: MaterializedRecord) {
        self.init(
            id: record.id,
            patient: record.string("patient"),
            code: record.string("code"),
            effectiveAt: record.string("effectiveAt"),
            status: record.string("status"),
            value: record.string("value"),
            unit: record.string("unit")
        )
    }

    /// Whether the observation is retired (``CareModel/retiredStatuses(of:)``).
    public var isRetired: Bool { status.map(Self.retired.contains) ?? false }

    private static let retired = CareModel.retiredStatuses(of: .observation)
}

/// An encounter as the scorecard and the gap rules read it.
public struct ScorecardEncounter: Sendable, Hashable {
    /// The encounter's id.
    public var id: String
    /// The patient it was with.
    public var patient: String?
    /// `office`, `ed-visit`, `admission`…
    public var kind: String?
    /// When it took place (an ISO 8601 date-time).
    public var occurredAt: String?
    /// `finished`, `entered-in-error`…
    public var status: String?
    /// Its cost, in cents, when known.
    public var costCents: Int64?

    /// Creates a row from its fields.
    public init(id: String, patient: String?, kind: String?, occurredAt: String?, status: String?, costCents: Int64?) {
        self.id = id
        self.patient = patient
        self.kind = kind
        self.occurredAt = occurredAt
        self.status = status
        self.costCents = costCents
    }

    /// Reads a materialized encounter.
    public init(_ record: MaterializedRecord) {
        self.init(
            id: record.id,
            patient: record.string("patient"),
            kind: record.string("kind"),
            occurredAt: record.string("occurredAt"),
            status: record.string("status"),
            costCents: record.value("costCents")?.intValue
        )
    }

    /// Whether the encounter is retired (``CareModel/retiredStatuses(of:)``).
    public var isRetired: Bool { status.map(Self.retired.contains) ?? false }

    private static let retired = CareModel.retiredStatuses(of: .encounter)
}

/// A row with an id, which ``ScorecardData`` keeps sorted by it.
protocol IdentifiedRow { var id: String { get } }

extension MaterializedRecord: IdentifiedRow {}
extension ScorecardTask: IdentifiedRow {}
extension ScorecardObservation: IdentifiedRow {}
extension ScorecardEncounter: IdentifiedRow {}
