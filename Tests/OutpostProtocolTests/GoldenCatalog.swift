import Foundation
import OutpostCRDT
import OutpostProtocol

/// One golden wire message: its file in `protocol/golden/` and the Swift value it must decode to and encode
/// from, byte for byte.
struct Golden: Sendable, CustomStringConvertible {
    /// The file name, `<schema>.<example>.json` or `<schema>.json`; the part before the first dot names the
    /// schema in `protocol/schemas/`.
    let name: String
    /// Decodes `data` as the golden's message type and says whether it equals the expected value.
    let decodesToExpectedValue: @Sendable (Data) throws -> Bool
    /// Encodes the expected value with `Wire.makeEncoder()`.
    let encodeExpectedValue: @Sendable () throws -> Data

    var description: String { name }

    /// The schema the file is validated against by `tools/check-protocol`.
    var schemaName: String { String(name.prefix { $0 != "." }) }

    static func make<Message: Codable & Hashable & Sendable>(_ name: String, _ value: Message) -> Golden {
        Golden(
            name: name,
            decodesToExpectedValue: { data in try Wire.makeDecoder().decode(Message.self, from: data) == value },
            encodeExpectedValue: { try Wire.makeEncoder().encode(value) }
        )
    }
}

/// The values behind every golden file. Ids are generated (fake), names and numbers are invented.
enum GoldenCatalog {
    static let all: [Golden] = sessions + pushes + pulls + snapshots + changes + errors

    // MARK: Fake identities

    static let practice = "pra_01KJPWD7C4ZAB5RRB146VH73JN"
    static let clinicSite = "sit_01KJSESY2XM23H3YFCY7MTSQTS"
    static let schoolSite = "sit_01KJW16NB53GKK83NSZEH0VXKB"
    static let nurse = "per_01KJYKKBT1YWAT28G7VFNAJGNS"
    static let physician = "per_01KK1602SYVKD1SE2Z4E63N1SX"
    static let team = "tea_01KK3RCSVHCZCFSNGKH1MNPDMX"
    static let chronicSubgroup = "sub_01KK6ASH729QR26T5M87NCMTM5"
    static let complexSubgroup = "sub_01KK8X67VV1CJ35HDV77RVDJ1J"
    static let patient = RecordRef(type: "patient", id: "pat_01KKBFJZCTT8BHAW9GPEZGQKFM")
    static let otherPatient = RecordRef(type: "patient", id: "pat_01KKNS5VDNP7R9SQANPZJZJW5B")
    /// A patient legally purged on the server (`removed`, and not `leftScope`).
    static let purgedPatient = RecordRef(type: "patient", id: "pat_01KKR2M7J4XW3E9TQ5N8B6VZCD")
    static let task = RecordRef(type: "task", id: "tsk_01KKE1ZP8XSSKF2GFR5BE7A9T5")
    static let observation = RecordRef(type: "observation", id: "obs_01KKGMCD0N6CDWQA701ZZ8WNK2")

    /// 2026-11-23T14:05:00Z, the server's clock in every example.
    static let serverTime: UInt64 = 1_795_442_700_000

    static let laptop = ReplicaID(unchecked: "laptop-rn-04")
    static let schoolDevice = ReplicaID(unchecked: "school-clinic-01")
    static let desk = ReplicaID(unchecked: "clinic-desk-02")

    static func id(_ replica: ReplicaID, _ counter: UInt64) -> ChangeID {
        ChangeID(replica: replica, counter: counter)
    }

    /// A clock `minutesAgo` before the server time, with logical counter `counter`.
    static func clock(minutesAgo: UInt64, counter: UInt32 = 0) -> Timestamp {
        Timestamp(millis: serverTime - minutesAgo * 60_000, counter: counter)
    }

    // MARK: Sessions

    static let sessions: [Golden] = [
        .make(
            "session-info.json",
            SessionInfo(
                protocolVersion: 1,
                serverVersion: "0.1.0",
                practice: practice,
                role: .clinician,
                scope: Scope(teams: [team]),
                serverTimeMillis: serverTime,
                maxClockSkewMillis: 300_000,
                limits: .standard,
                epoch: "epo_3f9c2a7d5e1b4c8a9d0e6f2b7a1c5d83",
                binaryLayout: 2
            )
        ),
        .make(
            "session-info.person.json",
            SessionInfo(
                protocolVersion: 1,
                serverVersion: "0.1.0",
                practice: practice,
                role: .clinician,
                scope: .practice,
                serverTimeMillis: serverTime,
                maxClockSkewMillis: 300_000,
                limits: .standard,
                epoch: "epo_3f9c2a7d5e1b4c8a9d0e6f2b7a1c5d83",
                binaryLayout: 2,
                person: nurse
            )
        ),
        .make(
            "session-info.site-device.json",
            SessionInfo(
                protocolVersion: 1,
                serverVersion: "0.1.0",
                practice: practice,
                role: .siteDevice,
                scope: Scope(sites: [schoolSite]),
                serverTimeMillis: serverTime,
                maxClockSkewMillis: 300_000,
                limits: .standard
            )
        ),
        .make(
            "session-info.admin.json",
            SessionInfo(
                protocolVersion: 1,
                serverVersion: "0.1.0",
                practice: practice,
                role: .admin,
                scope: .practice,
                serverTimeMillis: serverTime,
                maxClockSkewMillis: 300_000,
                limits: Limits(maxBodyBytes: 1 << 20, maxPushChanges: 1_000, maxPageSize: 2_000, maxWaitSeconds: 20)
            )
        ),
    ]

    // MARK: Push

    static let pushedChanges: [Change] = [
        Change(
            id: id(laptop, 41),
            record: patient,
            field: "phone",
            operation: .assign,
            value: "+1 555 0100",
            replaces: [id(desk, 4)],
            clock: clock(minutesAgo: 95),
            author: nurse,
            site: clinicSite
        ),
        Change(
            id: id(laptop, 42),
            record: task,
            field: "status",
            operation: .assign,
            value: "completed",
            replaces: [id(laptop, 35)],
            clock: clock(minutesAgo: 94),
            author: nurse,
            site: clinicSite
        ),
        Change(
            id: id(laptop, 43),
            record: task,
            field: "notes",
            operation: .append,
            value: "HbA1c drawn at the home visit; result to follow.",
            clock: clock(minutesAgo: 94, counter: 1),
            author: nurse,
            site: clinicSite
        ),
        Change(
            id: id(laptop, 44),
            record: patient,
            field: "careGaps",
            operation: .remove,
            value: "a1c-overdue",
            replaces: [id(desk, 8)],
            clock: clock(minutesAgo: 93),
            author: nurse,
            site: clinicSite
        ),
    ]

    static let pushes: [Golden] = [
        .make("push-request.json", PushRequest(replica: laptop, changes: pushedChanges)),
        .make(
            "push-response.json",
            PushResponse(accepted: 4, duplicates: 0, acknowledged: 44, serverTimeMillis: serverTime)
        ),
        .make(
            "push-response.retry.json",
            PushResponse(accepted: 1, duplicates: 3, acknowledged: 44, serverTimeMillis: serverTime + 2_500)
        ),
        // Two of the four changes edited a patient a legal purge erased: acknowledged, not stored.
        .make(
            "push-response.erased.json",
            PushResponse(accepted: 2, duplicates: 0, acknowledged: 44, serverTimeMillis: serverTime, erased: 2)
        ),
        .make("push-request.empty.json", PushRequest(replica: laptop, changes: [])),
        .make(
            "push-response.refused.json",
            PushResponse(
                accepted: 3,
                duplicates: 0,
                acknowledged: 44,
                serverTimeMillis: serverTime,
                refused: [
                    RefusedChange(
                        id: id(laptop, 42),
                        code: "out_of_scope",
                        message: "change 1 edits task/tsk_01KKE1ZP8XSSKF2GFR5BE7A9T5, whose patient is outside "
                            + "this token's scope; the change stays in the device's outbox for an administrator",
                        field: "record"
                    )
                ]
            )
        ),
    ]

    // MARK: Pull

    static let pulls: [Golden] = [
        .make(
            "pull-response.json",
            PullResponse(
                changes: [
                    Change(
                        id: id(schoolDevice, 32),
                        record: otherPatient,
                        field: "riskTier",
                        operation: .assign,
                        value: "high",
                        replaces: [id(desk, 61)],
                        clock: clock(minutesAgo: 30),
                        author: physician,
                        site: schoolSite
                    ),
                    Change(
                        id: id(schoolDevice, 33),
                        record: otherPatient,
                        field: "sites",
                        operation: .add,
                        value: .string(schoolSite),
                        clock: clock(minutesAgo: 30, counter: 1),
                        author: physician,
                        site: schoolSite
                    ),
                ],
                checkpoint: "1840",
                hasMore: true
            )
        ),
        .make("pull-response.caught-up.json", PullResponse(changes: [], checkpoint: "1840", hasMore: false)),
        .make("pull-response.leaving.json", leavingPull),
    ]

    // MARK: Snapshot

    /// Applies changes in order to an empty record.
    static func state(_ changes: [Change]) -> RecordState {
        var state = RecordState()
        for change in changes { state.apply(change) }
        return state
    }

    static let observationState = state(
        [
            ("patient", Value.string(patient.id)), ("code", "4548-4"), ("value", "7.2"), ("unit", "%"),
            ("effectiveAt", "2026-11-23T12:40:00Z"), ("status", "final"),
        ]
        .enumerated().map { offset, field in
            Change(
                id: id(laptop, 21 + UInt64(offset)),
                record: observation,
                field: field.0,
                operation: .assign,
                value: field.1,
                clock: clock(minutesAgo: 85, counter: UInt32(offset)),
                author: nurse,
                site: clinicSite
            )
        }
    )

    static let patientState = state([
        Change(
            id: id(desk, 3),
            record: patient,
            field: "givenName",
            operation: .assign,
            value: "Robin",
            clock: clock(minutesAgo: 40_000),
            author: physician,
            site: clinicSite
        ),
        Change(
            id: id(desk, 5),
            record: patient,
            field: "subgroup",
            operation: .assign,
            value: .string(chronicSubgroup),
            clock: clock(minutesAgo: 40_000, counter: 1),
            author: physician,
            site: clinicSite
        ),
        Change(
            id: id(desk, 7),
            record: patient,
            field: "conditions",
            operation: .add,
            value: "E11.9",
            clock: clock(minutesAgo: 40_000, counter: 2),
            author: physician,
            site: clinicSite
        ),
        Change(
            id: id(desk, 8),
            record: patient,
            field: "careGaps",
            operation: .add,
            value: "a1c-overdue",
            clock: clock(minutesAgo: 40_000, counter: 3),
            author: physician,
            site: clinicSite
        ),
        // Two concurrent writes to a `review` field: an open conflict, both values kept.
        Change(
            id: id(laptop, 20),
            record: patient,
            field: "subgroup",
            operation: .assign,
            value: .string(complexSubgroup),
            replaces: [id(desk, 5)],
            clock: clock(minutesAgo: 120),
            author: nurse,
            site: clinicSite
        ),
        Change(
            id: id(schoolDevice, 31),
            record: patient,
            field: "subgroup",
            operation: .assign,
            value: .string(chronicSubgroup),
            replaces: [id(desk, 5)],
            clock: clock(minutesAgo: 110),
            author: physician,
            site: schoolSite
        ),
        Change(
            id: id(laptop, 18),
            record: patient,
            field: "conditions",
            operation: .add,
            value: "I10",
            clock: clock(minutesAgo: 125),
            author: nurse,
            site: clinicSite
        ),
        Change(
            id: id(laptop, 19),
            record: patient,
            field: "notes",
            operation: .append,
            value: "Home visit: feet checked, no wounds.",
            clock: clock(minutesAgo: 124),
            author: nurse,
            site: clinicSite
        ),
        Change(
            id: id(laptop, 44),
            record: patient,
            field: "careGaps",
            operation: .remove,
            value: "a1c-overdue",
            replaces: [id(desk, 8)],
            clock: clock(minutesAgo: 93),
            author: nurse,
            site: clinicSite
        ),
    ])

    static let taskState = state([
        Change(
            id: id(desk, 9),
            record: task,
            field: "title",
            operation: .assign,
            value: "Repeat HbA1c and review medication",
            clock: clock(minutesAgo: 40_000, counter: 4),
            author: physician,
            site: clinicSite
        ),
        Change(
            id: id(laptop, 35),
            record: task,
            field: "status",
            operation: .assign,
            value: "in-progress",
            clock: clock(minutesAgo: 2_000),
            author: "replica:laptop-rn-04"
        ),
        pushedChanges[1],
        pushedChanges[2],
    ])

    static let snapshots: [Golden] = [
        .make(
            "snapshot-page.json",
            SnapshotPage(
                records: [
                    SnapshotRecord(record: observation, state: observationState),
                    SnapshotRecord(record: patient, state: patientState),
                ],
                checkpoint: "1839",
                next: "1839~patient~\(patient.id)"
            )
        ),
        .make(
            "snapshot-page.last.json",
            SnapshotPage(records: [SnapshotRecord(record: task, state: taskState)], checkpoint: "1839", next: nil)
        ),
        .make("snapshot-page.removing.json", removingSnapshot),
        .make("snapshot-page.leaving.json", leavingSnapshot),
    ]

    /// A scoped device's pull page after one of its patients left its scope and another was purged: both are
    /// `removed`, and `leftScope` names the one that left (the device keeps its own edits to it, sealed).
    static let leavingPull = PullResponse(
        changes: [],
        checkpoint: "1845",
        hasMore: false,
        removed: [otherPatient.id, purgedPatient.id],
        leftScope: [otherPatient.id]
    )

    /// ``removingSnapshot`` when the server says which removed patient left the scope (the other was purged).
    static let leavingSnapshot = SnapshotPage(
        records: [SnapshotRecord(record: patient, state: patientState)],
        checkpoint: "1841",
        next: "1841~patient~\(patient.id)",
        removed: [otherPatient.id, purgedPatient.id],
        leftScope: [otherPatient.id]
    )

    /// A scoped device's first snapshot page as it bootstraps again: one patient left its scope (or was purged)
    /// before the checkpoint, so the page names it in `removed`.
    static let removingSnapshot = SnapshotPage(
        records: [SnapshotRecord(record: patient, state: patientState)],
        checkpoint: "1841",
        next: "1841~patient~\(patient.id)",
        removed: [otherPatient.id]
    )

    // MARK: Shared types, one per operation

    static let changes: [Golden] = [
        .make("change.assign.json", pushedChanges[0]),
        .make("change.remove.json", pushedChanges[3]),
        .make(
            "change.add.json",
            Change(
                id: id(desk, 7),
                record: patient,
                field: "conditions",
                operation: .add,
                value: "E11.9",
                clock: clock(minutesAgo: 40_000, counter: 2),
                author: physician,
                site: clinicSite
            )
        ),
        .make(
            "change.append.json",
            Change(
                id: id(schoolDevice, 7),
                record: task,
                field: "notes",
                operation: .append,
                value: "Left a voicemail; will try again Thursday.",
                clock: clock(minutesAgo: 600),
                author: "replica:school-clinic-01"
            )
        ),
        // A person resolves the open `review` conflict: one write that replaces every concurrent value.
        .make(
            "change.assign.resolves-conflict.json",
            Change(
                id: id(desk, 70),
                record: patient,
                field: "subgroup",
                operation: .assign,
                value: .string(complexSubgroup),
                replaces: [id(schoolDevice, 31), id(laptop, 20)],
                clock: clock(minutesAgo: 5),
                author: physician,
                site: clinicSite
            )
        ),
        .make("record-state.json", taskState),
    ]

    // MARK: Error bodies, one per code

    static func error(
        _ code: ErrorCode,
        _ message: String,
        field: String? = nil,
        index: Int? = nil
    ) -> ErrorBody {
        ErrorBody(.init(code: code, message: message, field: field, index: index, requestID: "r-7f3c2a91d04e"))
    }

    static let errors: [Golden] = [
        .make(
            "error-body.malformed-request.json",
            error(
                .malformedRequest,
                "The body is not a push request: unknown field \"device\" at the top level. Send only replica and changes.",
                field: "device"
            )
        ),
        .make(
            "error-body.invalid-parameter.json",
            error(.invalidParameter, "limit must be a whole number from 1; got -5.", field: "limit")
        ),
        .make(
            "error-body.unsupported-protocol.json",
            error(
                .unsupportedProtocol,
                "This server speaks protocol 1; the request asked for 2. Update the server or use a v1 client.",
                field: "Outpost-Protocol"
            )
        ),
        .make(
            "error-body.invalid-change.json",
            error(
                .invalidChange,
                "Change 2: task.status must be one of requested, ready, in-progress, on-hold, completed, cancelled, failed, entered-in-error; got done.",
                field: "task.status",
                index: 2
            )
        ),
        .make(
            "error-body.unauthorized.json",
            error(
                .unauthorized,
                "The token has expired. Ask a practice administrator for a new one; unsent changes are kept."
            )
        ),
        .make(
            "error-body.forbidden.json",
            error(
                .forbidden,
                "Change 0 writes a team; a clinician token may write only patients, tasks, observations and encounters.",
                index: 0
            )
        ),
        .make(
            "error-body.replica-mismatch.json",
            error(
                .replicaMismatch,
                "Replica laptop-rn-04 belongs to another device's token. Create a new replica for this device.",
                field: "replica"
            )
        ),
        .make(
            "error-body.not-found.json",
            error(.notFound, "No endpoint GET /v1/record. See protocol/README.md for the endpoints of protocol 1.")
        ),
        .make(
            "error-body.method-not-allowed.json",
            error(.methodNotAllowed, "/v1/push takes POST, not GET", field: "method")
        ),
        .make(
            "error-body.unsupported-media-type.json",
            error(
                .unsupportedMediaType,
                "the push has no Content-Type; send 'Content-Type: application/json'",
                field: "Content-Type"
            )
        ),
        .make(
            "error-body.change-id-reused.json",
            error(
                .changeIDReused,
                "Change 0 (laptop-rn-04/41) differs from the change the server holds with that id; the replica was probably restored from an old backup. Create a new replica.",
                field: "id",
                index: 0
            )
        ),
        .make(
            "error-body.clock-skew.json",
            error(
                .clockSkew,
                "Change 0 has a clock 7200000 ms ahead of the server (server time 1795442700000 ms; at most 300000 ms allowed). Re-stamp unsent changes from the server's clock and push again.",
                field: "clock",
                index: 0
            )
        ),
        .make(
            "error-body.unresolved-records.json",
            error(
                .unresolvedRecords,
                "The push names by abbreviation records this server does not hold as the device meant; nothing was stored. Push the batch again naming every record in full."
            )
        ),
        .make(
            "error-body.checkpoint-expired.json",
            error(
                .checkpointExpired,
                "Checkpoint 120 is older than the history this server keeps. Bootstrap again from /v1/snapshot, keeping unsent changes.",
                field: "since"
            )
        ),
        .make(
            "error-body.too-large.json",
            error(
                .tooLarge,
                "A push may carry at most 5000 changes; this one has 5200. Send smaller batches.",
                field: "changes"
            )
        ),
        .make(
            "error-body.internal.json",
            error(.internalError, "An unexpected error occurred. Quote the request id when you report it.")
        ),
        .make(
            "error-body.rate-limited.json",
            error(
                .rateLimited,
                "too many failed authentications from this address; wait 42 s (Retry-After) and check the token"
            )
        ),
        .make(
            "error-body.unavailable.json",
            error(.unavailable, "The server is starting. Retry with backoff.")
        ),
    ]
}
