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

        init() throws {
            sandbox = try Sandbox()
            try sandbox.outpost("init", "--replica", "clinic")
            north = try sandbox.outpost("site", "add", "name=North", "kind=clinic")
            south = try sandbox.outpost("site", "add", "name=South", "kind=school")
            let subgroup = try sandbox.outpost(
                "subgroup",
                "add",
                "key=chronic",
                "label=Chronic",
                "monthlyPaymentCents=2500"
            )
            nurse = try sandbox.outpost("person", "add", "name=Nurse", "role=rn")
            doctor = try sandbox.outpost("person", "add", "name=Doctor", "role=physician")
            teamA = try sandbox.outpost("team", "add", "name=A", "subgroup=\(subgroup)", "leader=\(doctor)")
            teamB = try sandbox.outpost("team", "add", "name=B", "subgroup=\(subgroup)", "leader=\(nurse)")
            ana = try sandbox.outpost(
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
            ben = try sandbox.outpost(
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

        func task(_ patient: String, _ fields: String...) throws -> String {
            try sandbox.outpost(arguments: ["task", "add", patient, "kind=outreach", "title=Call"] + fields)
        }
    }

    private func fields(_ sandbox: Sandbox, _ id: String) throws -> [String: Any] {
        try #require((try sandbox.json("task", "show", id) as? [String: Any])?["fields"] as? [String: Any])
    }

    private func ids(_ object: Any) -> [String] {
        (object as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    @Test func addFillsTeamStatusAndPriorityDefaults() throws {
        let clinic = try Clinic()
        let task = try clinic.sandbox.outpost(
            "task",
            "add",
            clinic.ana,
            "kind=screening",
            "title=A1c due",
            "dueDate=2026-07-01"
        )
        #expect(task.hasPrefix("tsk_"))
        let fields = try fields(clinic.sandbox, task)
        #expect(fields["team"] as? String == clinic.teamA)
        #expect(fields["status"] as? String == "requested")
        #expect(fields["priority"] as? String == "routine")
        #expect(fields["patient"] as? String == clinic.ana)
        #expect(fields["dueDate"] as? String == "2026-07-01")
        let show = try clinic.sandbox.outpost("task", "show", task)
        #expect(show.contains("  title: A1c due"))
    }

    @Test func addRefusesUnknownPatientsBadDatesAndUnknownKinds() throws {
        let clinic = try Clinic()
        let sandbox = clinic.sandbox
        try sandbox.expectRefused(
            ["task", "add", "pat_01JWMCKG000000000000000000", "kind=outreach", "title=Call"],
            mentioning: ["no patient with id pat_01JWMCKG000000000000000000"]
        )
        try sandbox.expectRefused(
            ["task", "add", clinic.ana, "kind=outreach", "title=Call", "dueDate=next week"],
            mentioning: ["task.dueDate"]
        )
        try sandbox.expectRefused(
            ["task", "add", clinic.ana, "kind=juggling", "title=Call"],
            mentioning: ["task.kind"]
        )
        try sandbox.expectRefused(
            ["task", "add", clinic.ana, "kind=outreach", "title=Call", "priority=whenever"],
            mentioning: ["task.priority"]
        )
        try sandbox.expectRefused(["task", "add", clinic.ana, "kind=outreach"], mentioning: ["task.title"])
    }

    @Test func transitionsMoveStatusAndClosedTasksStayClosed() throws {
        let clinic = try Clinic()
        let sandbox = clinic.sandbox
        let task = try clinic.task(clinic.ana)
        #expect(try sandbox.outpost("task", "start", task) == "\(task): in-progress")
        #expect(try fields(sandbox, task)["status"] as? String == "in-progress")
        #expect(try sandbox.outpost("task", "hold", task) == "\(task): on-hold")
        #expect(try fields(sandbox, task)["status"] as? String == "on-hold")
        #expect(try sandbox.outpost("task", "done", task) == "\(task): completed")
        #expect(try fields(sandbox, task)["status"] as? String == "completed")
        for verb in ["start", "hold", "done", "cancel"] {
            try sandbox.expectRefused(["task", verb, task], mentioning: ["is completed", "task set \(task) status="])
        }
        // Reopening is possible, but only deliberately.
        try sandbox.outpost("task", "set", task, "status=in-progress")
        #expect(try fields(sandbox, task)["status"] as? String == "in-progress")

        let other = try clinic.task(clinic.ben)
        #expect(try sandbox.outpost("task", "cancel", other) == "\(other): cancelled")
        try sandbox.expectRefused(["task", "start", other], mentioning: ["is cancelled"])
        try sandbox.expectRefused(
            ["task", "done", "tsk_01JWMCKG000000000000000000"],
            mentioning: ["no task with id tsk_01JWMCKG000000000000000000"]
        )
        try sandbox.expectRefused(["task", "done", clinic.ana], mentioning: ["is not a task id"])
    }

    @Test func assignAndNote() throws {
        let clinic = try Clinic()
        let sandbox = clinic.sandbox
        let task = try clinic.task(clinic.ana)
        #expect(try sandbox.outpost("task", "assign", task, clinic.nurse) == "\(task): assigned to \(clinic.nurse)")
        #expect(try fields(sandbox, task)["assignee"] as? String == clinic.nurse)
        try sandbox.expectRefused(
            ["task", "assign", task, "per_01JWMCKG000000000000000000"],
            mentioning: ["task.assignee", "per_01JWMCKG000000000000000000"]
        )
        try sandbox.outpost("use", "--person", clinic.doctor, "--site", clinic.north)
        #expect(try sandbox.outpost("task", "note", task, "Left a voicemail") == "\(task): note added")
        #expect(try sandbox.outpost("task", "note", task, "Called back") == "\(task): note added")
        let notes = try #require(try fields(sandbox, task)["notes"] as? [[String: Any]])
        #expect(notes.map { $0["value"] as? String } == ["Left a voicemail", "Called back"])
        #expect(notes.allSatisfy { $0["author"] as? String == clinic.doctor && $0["site"] as? String == clinic.north })
        let show = try sandbox.outpost("task", "show", task)
        #expect(show.contains("  notes:\n    ["))
        #expect(show.contains("\(clinic.doctor)] Left a voicemail"))
        try sandbox.expectRefused(["task", "note", task], mentioning: ["Missing expected argument"])
    }

    @Test func listFiltersByPatientStatusTeamAndAssignee() throws {
        let clinic = try Clinic()
        let sandbox = clinic.sandbox
        let first = try clinic.task(clinic.ana)
        let second = try clinic.task(clinic.ana)
        let third = try clinic.task(clinic.ben)
        try sandbox.outpost("task", "start", second)
        try sandbox.outpost("task", "assign", third, clinic.nurse)
        #expect(Set(ids(try sandbox.json("task", "list"))) == [first, second, third])
        #expect(Set(ids(try sandbox.json("task", "list", "--patient", clinic.ana))) == [first, second])
        #expect(ids(try sandbox.json("task", "list", "--status", "in-progress")) == [second])
        #expect(ids(try sandbox.json("task", "list", "--team", clinic.teamB)) == [third])
        #expect(ids(try sandbox.json("task", "list", "--assignee", clinic.nurse)) == [third])
        let header = try #require(try sandbox.outpost("task", "list").split(separator: "\n").first)
        #expect(header.contains("DUE DATE"))
        try sandbox.expectRefused(["task", "list", "--status", "nope"], mentioning: ["--status", "in-progress"])
        try sandbox.expectRefused(
            ["task", "list", "--patient", "pat_01JWMCKG000000000000000000"],
            mentioning: ["no patient with id pat_01JWMCKG000000000000000000"]
        )
        try sandbox.expectRefused(["task", "list", "--assignee", "nurse"], mentioning: ["'nurse' is not a person id"])
    }

    @Test func worklistPutsOverdueFirstThenPriorityThenDueDate() throws {
        let clinic = try Clinic()
        let sandbox = clinic.sandbox
        let routineLater = try clinic.task(clinic.ana, "dueDate=2026-06-20")
        let routineSooner = try clinic.task(clinic.ana, "dueDate=2026-06-10")
        let urgentLater = try clinic.task(clinic.ana, "dueDate=2026-06-30", "priority=urgent")
        let statNoDate = try clinic.task(clinic.ana, "priority=stat")
        let overdueRoutine = try clinic.task(clinic.ana, "dueDate=2026-05-01")
        let overdueAsap = try clinic.task(clinic.ana, "dueDate=2026-05-20", "priority=asap")
        let routineNoDate = try clinic.task(clinic.ana)
        let done = try clinic.task(clinic.ana, "dueDate=2026-01-01")
        try sandbox.outpost("task", "done", done)
        let cancelled = try clinic.task(clinic.ana, "dueDate=2026-01-01")
        try sandbox.outpost("task", "cancel", cancelled)
        let otherTeam = try clinic.task(clinic.ben, "dueDate=2026-01-01")

        let expected = [
            overdueAsap, overdueRoutine, statNoDate, urgentLater, routineSooner, routineLater, routineNoDate,
        ]
        let listed = ids(try sandbox.json("worklist", "--team", clinic.teamA, "--today", "2026-06-01"))
        #expect(listed == expected)

        let table = try sandbox.outpost("worklist", "--team", clinic.teamA, "--today", "2026-06-01")
        let rows = table.split(separator: "\n").map(String.init)
        #expect(rows.first?.hasPrefix("ID") == true)
        #expect(rows.dropFirst().map { String($0.prefix(30)) } == expected)
        #expect(rows[1].contains("2026-05-20 OVERDUE"))
        #expect(!rows[4].contains("OVERDUE"))

        // Filters: a person's and a site's open tasks.
        try sandbox.outpost("task", "assign", routineSooner, clinic.nurse)
        #expect(ids(try sandbox.json("worklist", "--person", clinic.nurse)) == [routineSooner])
        #expect(ids(try sandbox.json("worklist", "--site", clinic.south)) == [otherTeam])
        #expect(try sandbox.outpost("worklist", "--team", clinic.teamB, "--person", clinic.doctor) == "no open tasks")
    }

    @Test func worklistRefusesBadDatesAndUnknownIds() throws {
        let clinic = try Clinic()
        try clinic.sandbox.expectRefused(["worklist", "--today", "2026-99-01"], mentioning: ["--today"])
        try clinic.sandbox.expectRefused(["worklist", "--today", "tomorrow"], mentioning: ["--today"])
        try clinic.sandbox.expectRefused(
            ["worklist", "--team", "tea_01JWMCKG000000000000000000"],
            mentioning: ["no team with id tea_01JWMCKG000000000000000000"]
        )
        try clinic.sandbox.expectRefused(["worklist", "--site", clinic.nurse], mentioning: ["is not a site id"])
    }
}
