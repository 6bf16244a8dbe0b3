import Foundation
import OutpostTestSupport
import Testing

/// `outpost task …` and `outpost worklist`.
struct TaskCommandTests {
    /// A fresh store with one subgroup, two people, two teams, two sites and two patients.
    struct Clinic {
        let sandbox: Sandbox
        var north = ""
        var south = ""
        var nurse = ""
        var doctor = ""
        var teamA = ""
        var teamB = ""
        var ana = ""
        var ben = ""

        init() async throws {
            sandbox = try Sandbox()
            try await sandbox.outpost("init", "--replica", "clinic")
            north = try await sandbox.outpost("site", "add", "name=North", "kind=clinic")
            south = try await sandbox.outpost("site", "add", "name=South", "kind=school")
            let subgroup = try await sandbox.outpost(
                "subgroup",
                "add",
                "key=chronic",
                "label=Chronic",
                "monthlyPaymentCents=2500"
            )
            nurse = try await sandbox.outpost("person", "add", "name=Nurse", "role=rn")
            doctor = try await sandbox.outpost("person", "add", "name=Doctor", "role=physician")
            teamA = try await sandbox.outpost("team", "add", "name=A", "subgroup=\(subgroup)", "leader=\(doctor)")
            teamB = try await sandbox.outpost("team", "add", "name=B", "subgroup=\(subgroup)", "leader=\(nurse)")
            ana = try await sandbox.outpost(
                "patient",
                "add",
                "givenName=Ana",
                "familyName=Q",
                "birthDate=1950-01-01",
                "sex=female",
                "subgroup=\(subgroup)",
                "primaryTeam=\(teamA)",
                "sites=\(north)"
            )
            ben = try await sandbox.outpost(
                "patient",
                "add",
                "givenName=Ben",
                "familyName=R",
                "birthDate=1960-01-01",
                "sex=male",
                "subgroup=\(subgroup)",
                "primaryTeam=\(teamB)",
                "sites=\(south)"
            )
        }

        func task(_ patient: String, _ fields: String...) async throws -> String {
            try await sandbox.outpost(arguments: ["task", "add", patient, "kind=outreach", "title=Call"] + fields)
        }
    }

    private func fields(_ sandbox: Sandbox, _ id: String) async throws -> [String: Any] {
        try await #require((try sandbox.json("task", "show", id) as? [String: Any])?["fields"] as? [String: Any])
    }

    private func ids(_ object: Any) -> [String] {
        (object as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    @Test func addFillsTeamStatusAndPriorityDefaults() async throws {
        let clinic = try await Clinic()
        let task = try await clinic.sandbox.outpost(
            "task",
            "add",
            clinic.ana,
            "kind=screening",
            "title=A1c due",
            "dueDate=2026-07-01"
        )
        #expect(task.hasPrefix("tsk_"))
        let fields = try await fields(clinic.sandbox, task)
        #expect(fields["team"] as? String == clinic.teamA)
        #expect(fields["status"] as? String == "requested")
        #expect(fields["priority"] as? String == "routine")
        #expect(fields["patient"] as? String == clinic.ana)
        #expect(fields["dueDate"] as? String == "2026-07-01")
        let show = try await clinic.sandbox.outpost("task", "show", task)
        #expect(show.contains("  title: A1c due"))
    }

    @Test func addRefusesUnknownPatientsBadDatesAndUnknownKinds() async throws {
        let clinic = try await Clinic()
        let sandbox = clinic.sandbox
        try await sandbox.expectRefused(
            ["task", "add", "pat_01JWMCKG000000000000000000", "kind=outreach", "title=Call"],
            mentioning: ["no patient with id pat_01JWMCKG000000000000000000"]
        )
        try await sandbox.expectRefused(
            ["task", "add", clinic.ana, "kind=outreach", "title=Call", "dueDate=next week"],
            mentioning: ["task.dueDate"]
        )
        try await sandbox.expectRefused(
            ["task", "add", clinic.ana, "kind=juggling", "title=Call"],
            mentioning: ["task.kind"]
        )
        try await sandbox.expectRefused(
            ["task", "add", clinic.ana, "kind=outreach", "title=Call", "priority=whenever"],
            mentioning: ["task.priority"]
        )
        try await sandbox.expectRefused(["task", "add", clinic.ana, "kind=outreach"], mentioning: ["task.title"])
    }

    @Test func transitionsMoveStatusAndClosedTasksStayClosed() async throws {
        let clinic = try await Clinic()
        let sandbox = clinic.sandbox
        let task = try await clinic.task(clinic.ana)
        await #expect(try sandbox.outpost("task", "start", task) == "\(task): in-progress")
        await #expect(try fields(sandbox, task)["status"] as? String == "in-progress")
        await #expect(try sandbox.outpost("task", "hold", task) == "\(task): on-hold")
        await #expect(try fields(sandbox, task)["status"] as? String == "on-hold")
        await #expect(try sandbox.outpost("task", "done", task) == "\(task): completed")
        await #expect(try fields(sandbox, task)["status"] as? String == "completed")
        for verb in ["start", "hold", "done", "cancel"] {
            try await sandbox.expectRefused(
                ["task", verb, task],
                mentioning: ["is completed", "task set \(task) status="]
            )
        }
        // Reopening is possible, but only deliberately.
        try await sandbox.outpost("task", "set", task, "status=in-progress")
        await #expect(try fields(sandbox, task)["status"] as? String == "in-progress")

        let other = try await clinic.task(clinic.ben)
        await #expect(try sandbox.outpost("task", "cancel", other) == "\(other): cancelled")
        try await sandbox.expectRefused(["task", "start", other], mentioning: ["is cancelled"])
        try await sandbox.expectRefused(
            ["task", "done", "tsk_01JWMCKG000000000000000000"],
            mentioning: ["no task with id tsk_01JWMCKG000000000000000000"]
        )
        try await sandbox.expectRefused(["task", "done", clinic.ana], mentioning: ["is not a task id"])
    }

    @Test func assignAndNote() async throws {
        let clinic = try await Clinic()
        let sandbox = clinic.sandbox
        let task = try await clinic.task(clinic.ana)
        await #expect(
            try sandbox.outpost("task", "assign", task, clinic.nurse) == "\(task): assigned to \(clinic.nurse)"
        )
        await #expect(try fields(sandbox, task)["assignee"] as? String == clinic.nurse)
        try await sandbox.expectRefused(
            ["task", "assign", task, "per_01JWMCKG000000000000000000"],
            mentioning: ["task.assignee", "per_01JWMCKG000000000000000000"]
        )
        try await sandbox.outpost("use", "--person", clinic.doctor, "--site", clinic.north)
        await #expect(try sandbox.outpost("task", "note", task, "Left a voicemail") == "\(task): note added")
        await #expect(try sandbox.outpost("task", "note", task, "Called back") == "\(task): note added")
        let notes = try await #require(try fields(sandbox, task)["notes"] as? [[String: Any]])
        #expect(notes.map { $0["value"] as? String } == ["Left a voicemail", "Called back"])
        #expect(notes.allSatisfy { $0["author"] as? String == clinic.doctor && $0["site"] as? String == clinic.north })
        let show = try await sandbox.outpost("task", "show", task)
        #expect(show.contains("  notes:\n    ["))
        #expect(show.contains("\(clinic.doctor)] Left a voicemail"))
        try await sandbox.expectRefused(["task", "note", task], mentioning: ["Missing expected argument"])
    }

    @Test func listFiltersByPatientStatusTeamAndAssignee() async throws {
        let clinic = try await Clinic()
        let sandbox = clinic.sandbox
        let first = try await clinic.task(clinic.ana)
        let second = try await clinic.task(clinic.ana)
        let third = try await clinic.task(clinic.ben)
        try await sandbox.outpost("task", "start", second)
        try await sandbox.outpost("task", "assign", third, clinic.nurse)
        await #expect(Set(ids(try sandbox.json("task", "list"))) == [first, second, third])
        await #expect(Set(ids(try sandbox.json("task", "list", "--patient", clinic.ana))) == [first, second])
        await #expect(ids(try sandbox.json("task", "list", "--status", "in-progress")) == [second])
        await #expect(ids(try sandbox.json("task", "list", "--team", clinic.teamB)) == [third])
        await #expect(ids(try sandbox.json("task", "list", "--assignee", clinic.nurse)) == [third])
        let header = try await #require(try sandbox.outpost("task", "list").split(separator: "\n").first)
        #expect(header.contains("DUE DATE"))
        try await sandbox.expectRefused(["task", "list", "--status", "nope"], mentioning: ["--status", "in-progress"])
        try await sandbox.expectRefused(
            ["task", "list", "--patient", "pat_01JWMCKG000000000000000000"],
            mentioning: ["no patient with id pat_01JWMCKG000000000000000000"]
        )
        try await sandbox.expectRefused(
            ["task", "list", "--assignee", "nurse"],
            mentioning: ["'nurse' is not a person id"]
        )
    }

    @Test func worklistPutsOverdueFirstThenPriorityThenDueDate() async throws {
        let clinic = try await Clinic()
        let sandbox = clinic.sandbox
        let routineLater = try await clinic.task(clinic.ana, "dueDate=2026-06-20")
        let routineSooner = try await clinic.task(clinic.ana, "dueDate=2026-06-10")
        let urgentLater = try await clinic.task(clinic.ana, "dueDate=2026-06-30", "priority=urgent")
        let statNoDate = try await clinic.task(clinic.ana, "priority=stat")
        let overdueRoutine = try await clinic.task(clinic.ana, "dueDate=2026-05-01")
        let overdueAsap = try await clinic.task(clinic.ana, "dueDate=2026-05-20", "priority=asap")
        let routineNoDate = try await clinic.task(clinic.ana)
        let done = try await clinic.task(clinic.ana, "dueDate=2026-01-01")
        try await sandbox.outpost("task", "done", done)
        let cancelled = try await clinic.task(clinic.ana, "dueDate=2026-01-01")
        try await sandbox.outpost("task", "cancel", cancelled)
        let otherTeam = try await clinic.task(clinic.ben, "dueDate=2026-01-01")

        let expected = [
            overdueAsap, overdueRoutine, statNoDate, urgentLater, routineSooner, routineLater, routineNoDate,
        ]
        let listed = ids(try await sandbox.json("worklist", "--team", clinic.teamA, "--today", "2026-06-01"))
        #expect(listed == expected)

        let table = try await sandbox.outpost("worklist", "--team", clinic.teamA, "--today", "2026-06-01")
        let rows = table.split(separator: "\n").map(String.init)
        #expect(rows.first?.hasPrefix("ID") == true)
        #expect(rows.dropFirst().map { String($0.prefix(30)) } == expected)
        #expect(rows[1].contains("2026-05-20 OVERDUE"))
        #expect(!rows[4].contains("OVERDUE"))

        // Filters: a person's and a site's open tasks.
        try await sandbox.outpost("task", "assign", routineSooner, clinic.nurse)
        await #expect(ids(try sandbox.json("worklist", "--person", clinic.nurse)) == [routineSooner])
        await #expect(ids(try sandbox.json("worklist", "--site", clinic.south)) == [otherTeam])
        await #expect(
            try sandbox.outpost("worklist", "--team", clinic.teamB, "--person", clinic.doctor) == "no open tasks"
        )
    }

    @Test func worklistRefusesBadDatesAndUnknownIds() async throws {
        let clinic = try await Clinic()
        try await clinic.sandbox.expectRefused(["worklist", "--today", "2026-99-01"], mentioning: ["--today"])
        try await clinic.sandbox.expectRefused(["worklist", "--today", "tomorrow"], mentioning: ["--today"])
        try await clinic.sandbox.expectRefused(
            ["worklist", "--team", "tea_01JWMCKG000000000000000000"],
            mentioning: ["no team with id tea_01JWMCKG000000000000000000"]
        )
        try await clinic.sandbox.expectRefused(["worklist", "--site", clinic.nurse], mentioning: ["is not a site id"])
    }
}
