import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import Testing

/// `CareStore.transition`: the model's task transitions, applied by the library an app embeds.
struct TaskTransitionTests {
    let store: CareStore
    let task: TaskID

    init() throws {
        store = try CareStore.create(at: temporaryStorePath(), replicaID: ReplicaID("laptop"))
        let site = try store.create(.site, fields: ["name": ["Main clinic"], "kind": ["clinic"], "status": ["active"]])
        let lead = try store.create(.person, fields: ["name": ["Lead"], "role": ["physician"], "status": ["active"]])
        let subgroup = try store.create(
            .subgroup,
            fields: [
                "key": ["healthy"], "label": ["healthy"], "monthlyPaymentCents": [.int(500)], "status": ["active"],
            ]
        )
        let team = try store.create(
            .team,
            fields: [
                "name": ["Team A"], "subgroup": [.string(subgroup.id)], "leader": [.string(lead.id)],
                "status": ["active"],
            ]
        )
        let patient = try store.create(
            .patient,
            fields: [
                "givenName": ["Test"], "familyName": ["Patient"], "birthDate": ["1960-01-01"], "sex": ["female"],
                "subgroup": [.string(subgroup.id)], "primaryTeam": [.string(team.id)], "status": ["active"],
                "sites": [.string(site.id)],
            ]
        )
        let created = try store.create(
            .task,
            fields: [
                "patient": [.string(patient.id)], "team": [.string(team.id)], "kind": ["outreach"],
                "title": ["Call"], "status": ["requested"], "priority": ["routine"],
            ]
        )
        task = try #require(TaskID(created.id))
    }

    func status() throws -> String? {
        try store.record(RecordRef(type: RecordType.task.rawValue, id: task.rawValue))?.string("status")
    }

    @Test func anOpenTaskMovesAndAClosedOneRefusesWithoutWriting() throws {
        try store.transition(task, .start)
        #expect(try status() == "in-progress")
        try store.transition(task, .done)
        #expect(try status() == "completed")
        let pending = try store.store.pendingChanges().count
        for transition in TaskTransition.allCases {
            let error = try #require(throws: ClientError.self) { try store.transition(task, transition) }
            #expect(error.code == .invalidEdit)
            #expect((error.cause as? ModelError)?.code == .closedTask)
        }
        #expect(try status() == "completed")
        #expect(try store.store.pendingChanges().count == pending, "a refused transition writes nothing")
        // Reopening is deliberate: setting the status.
        try store.update([
            .assign(RecordRef(type: RecordType.task.rawValue, id: task.rawValue), "status", "in-progress")
        ])
        try store.transition(task, .hold)
        #expect(try status() == "on-hold")
    }

    @Test func anUnknownTaskIsRefusedAsUnknown() throws {
        var generator = SeededGenerator(seed: 3)
        let missing = TaskID.make(millis: 1_780_000_000_000, using: &generator)
        let error = try #require(throws: ClientError.self) { try store.transition(missing, .start) }
        #expect(error.code == .unknownRecord)
    }
}
