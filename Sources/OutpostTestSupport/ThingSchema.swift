import OutpostCRDT

/// A small schema for CRDT tests: one record type, `thing`, with one field of each of the five policies.
public enum ThingSchema {
    /// The record type.
    public static let type = "thing"
    /// An `lww` field.
    public static let lwwField = "lwwField"
    /// A `review` field.
    public static let reviewField = "reviewField"
    /// A `set` field.
    public static let setField = "setField"
    /// A `log` field.
    public static let logField = "logField"
    /// A `status` field with ``statusRules``.
    public static let statusField = "statusField"

    /// Every field, in a fixed order.
    public static let fields = [lwwField, reviewField, setField, logField, statusField]

    /// The rules of ``statusField``: FHIR-like task statuses.
    public static let statusRules = StatusRules(
        terminal: ["completed", "cancelled", "failed"],
        overriding: ["entered-in-error"]
    )

    /// Every status value, in lifecycle order.
    public static let statuses = [
        "requested", "ready", "in-progress", "on-hold", "completed", "cancelled", "failed", "entered-in-error",
    ]

    /// The schema.
    public static let schema = Schema(types: [
        type: [
            lwwField: .lww,
            reviewField: .review,
            setField: .set,
            logField: .log,
            statusField: .status(statusRules),
        ]
    ])

    /// The policy of one of the fields.
    public static func policy(of field: String) -> MergePolicy {
        guard let policy = schema.policy(type: type, field: field) else {
            preconditionFailure("ThingSchema has no field \(field)")
        }
        return policy
    }

    /// The reference of the `index`th test record, `thing/t<index>`.
    public static func record(_ index: Int) -> RecordRef {
        RecordRef(type: type, id: "t\(index)")
    }
}
