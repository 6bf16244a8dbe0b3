import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostCommandLine
import OutpostModel
import OutpostProtocol

/// `outpost conflicts`: the inbox of concurrent values awaiting a person's decision.
struct ConflictsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "Review and resolve conflicts: concurrent values of review and status fields.",
        discussion: """
            A conflict's id is RECORD-ID.field, the same on every replica. lww fields never conflict (the \
            later write wins); review and status fields keep every concurrent value until someone decides.
            """,
        subcommands: [List.self, Show.self, Resolve.self],
        defaultSubcommand: List.self
    )

    struct Row: Encodable {
        var id: String
        var record: String
        var type: String
        var field: String
        var values: Int
        var since: String
        var patient: String?
        var provisional: Value
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List open conflicts: record, field, how many values, since when."
        )
        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var output: OutputOptions
        @Option(help: ArgumentHelp("Only records of this type.", valueName: "type")) var type: String?
        @Option(help: ArgumentHelp("Only this patient and its records.", valueName: "patient-id")) var patient: String?
        @Option(help: ArgumentHelp("Only patients of this team (and their records).", valueName: "team-id"))
        var team: String?
        @Option(help: ArgumentHelp("Only patients seen at this site (and their records).", valueName: "site-id"))
        var site: String?
        @Option(help: ArgumentHelp("Only conflicts open at least this many days.", valueName: "days"))
        var olderThan: Int?

        func validate() throws {
            if let type, RecordType(rawValue: type) == nil {
                throw ValidationError(
                    "--type must be one of \(RecordType.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            if let olderThan, olderThan < 0 { throw ValidationError("--older-than takes a number of days, 0 or more") }
        }

        func run() async throws {
            let store = try storeOptions.open()
            try RecordOutput.requireFilters([(patient, .patient), (team, .team), (site, .site)], in: store)
            let now = try store.store.now()
            var entries = try store.conflictEntries()
            if let type { entries.removeAll { $0.record.type != type } }
            if let patient { entries.removeAll { $0.patient != patient } }
            if team != nil || site != nil {
                // Each filter is a one-id scope, decided by the scope rule (Scope.contains); both must hold.
                let scopes = [team.map { Scope(teams: [$0]) }, site.map { Scope(sites: [$0]) }].compactMap { $0 }
                var cache: [String: PatientView.ScopeKeys] = [:]
                entries = try entries.filter { entry in
                    guard let owner = entry.patient else { return false }
                    let keys: PatientView.ScopeKeys
                    if let cached = cache[owner] {
                        keys = cached
                    } else {
                        let state = try store.store.record(RecordRef(type: RecordType.patient.rawValue, id: owner))
                        keys = PatientView.ScopeKeys(state: state ?? RecordState())
                        cache[owner] = keys
                    }
                    return scopes.allSatisfy { $0.contains(keys) }
                }
            }
            if let olderThan {
                let limit = UInt64(olderThan) * 86_400_000
                entries.removeAll { now < $0.detectedAtMillis + limit }
            }
            let rows = entries.map { entry in
                Row(
                    id: entry.id,
                    record: entry.record.id,
                    type: entry.record.type,
                    field: entry.field,
                    values: entry.values.count,
                    since: Format.millis(entry.detectedAtMillis),
                    patient: entry.patient,
                    provisional: entry.values[entry.provisionalWinner].value
                )
            }
            if output.json {
                try Terminal.json(rows)
                return
            }
            Terminal.table(
                ["id", "field", "values", "since"],
                rows.map { [$0.id, "\($0.type).\($0.field)", String($0.values), $0.since] },
                empty: "no open conflicts"
            )
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show every concurrent value: who wrote it, where, on which device, when; and what came before."
        )
        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: ArgumentHelp("The conflict's id (RECORD-ID.field).", valueName: "id")) var id: String

        struct Choice: Encodable {
            var index: Int
            var value: Value
            var author: String
            var site: String?
            var device: String
            var at: String
            var change: String
            var provisional: Bool
        }

        struct Detail: Encodable {
            var id: String
            var record: String
            var field: String
            var since: String
            var values: [Choice]
            var before: [Choice]
        }

        func run() async throws {
            let store = try storeOptions.open()
            let entry = try store.conflict(id)
            func choice(_ index: Int, _ write: Write, provisional: Bool) -> Choice {
                Choice(
                    index: index,
                    value: write.value,
                    author: write.author,
                    site: write.site,
                    device: entry.device(of: write),
                    at: Format.clock(write.clock),
                    change: write.id.description,
                    provisional: provisional
                )
            }
            let detail = Detail(
                id: entry.id,
                record: entry.record.id,
                field: entry.field,
                since: Format.millis(entry.detectedAtMillis),
                values: entry.values.enumerated().map {
                    choice($0.offset + 1, $0.element, provisional: $0.offset == entry.provisionalWinner)
                },
                before: entry.before.map { choice(0, $0, provisional: false) }
            )
            if output.json {
                try Terminal.json(detail)
                return
            }
            print(
                "conflict \(detail.id): \(entry.record.type).\(entry.field), \(entry.values.count) values, open since \(detail.since)"
            )
            Terminal.table(
                ["#", "value", "author", "site", "device", "when", ""],
                detail.values.map {
                    [
                        String($0.index), $0.value.description, $0.author, $0.site ?? "", $0.device, $0.at,
                        $0.provisional ? "<- shown until resolved" : "",
                    ]
                }
            )
            if detail.before.isEmpty {
                print("before: (not in this replica's history)")
            } else {
                print(
                    "before: "
                        + detail.before.map { "\(TablePrinter.printable("\($0.value)")) (\($0.author), \($0.at))" }
                        .joined(separator: "; ")
                )
            }
            print("resolve: outpost conflicts resolve \(detail.id) --pick N [--reason TEXT]")
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resolve",
            abstract: "Resolve a conflict (or, with --all, every conflict of a field by a rule).",
            discussion: """
                The resolving write replaces every concurrent value, is recorded with its reason in the record's \
                resolutions log, and syncs like any edit. Two people resolving the same conflict differently \
                while apart make a new conflict, never a loss. Site-device tokens cannot resolve.

                Examples:
                  outpost conflicts resolve pat_01J….birthDate --pick 2 \\
                    --reason "checked the ID card"
                  outpost conflicts resolve --all --field patient.subgroup \\
                    --rule newest --dry-run
                """
        )
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: ArgumentHelp("The conflict's id (RECORD-ID.field).", valueName: "id")) var id: String?
        @Option(help: ArgumentHelp("Keep value N (as numbered by 'conflicts show').", valueName: "n")) var pick: Int?
        @Option(help: ArgumentHelp("Write this value instead (validated like any edit).", valueName: "value"))
        var value: String?
        @Option(help: ArgumentHelp("Why; kept in the record's resolutions log.", valueName: "text")) var reason: String?
        @Flag(help: "Resolve every open conflict of --field by --rule.") var all = false
        @Option(help: ArgumentHelp("With --all: the field, as name or type.name.", valueName: "field")) var field:
            String?
        @Option(help: ArgumentHelp("With --all: newest, oldest or site:SITE-ID.", valueName: "rule")) var rule: String?
        @Flag(help: "With --all: show what would be done, change nothing.") var dryRun = false

        func validate() throws {
            if all {
                guard id == nil, pick == nil, value == nil else {
                    throw ValidationError("--all takes --field and --rule, not an id, --pick or --value")
                }
                guard field != nil, let rule, Self.rule(rule) != nil else {
                    throw ValidationError("--all needs --field F and --rule newest|oldest|site:SITE-ID")
                }
            } else {
                guard id != nil else { throw ValidationError("give a conflict id, or --all --field F --rule R") }
                guard (pick == nil) != (value == nil) else {
                    throw ValidationError("give exactly one of --pick N or --value V")
                }
                if let pick, pick < 1 { throw ValidationError("--pick counts from 1") }
                guard !dryRun, rule == nil, field == nil else {
                    throw ValidationError("--dry-run, --field and --rule go with --all")
                }
            }
        }

        static func rule(_ text: String) -> ResolutionRule? {
            switch text {
            case "newest": .newest
            case "oldest": .oldest
            default:
                text.hasPrefix("site:") && text.count > 5 ? .site(String(text.dropFirst(5))) : nil
            }
        }

        func run() async throws {
            let store = try storeOptions.open()
            let role = try store.store.setting(SyncEngine.roleSetting)
            if let role, role == "site-device" {
                throw CLIError.input(
                    "this replica syncs with a site-device token, which cannot resolve conflicts; ask a clinician "
                        + "or an administrator"
                )
            }
            if all, let field, let rule, let parsed = Self.rule(rule) {
                // A site named by mistake would leave every conflict open, silently.
                if case .site(let site) = parsed { _ = try RecordOutput.require(site, .site, in: store) }
                let plan = try store.plan(field: field, rule: parsed)
                var resolved = 0
                for (entry, pick) in plan {
                    guard let pick else {
                        print("\(entry.id): left open (no value from \(rule))")
                        continue
                    }
                    if CareStore.refusesStructure(role: role), let type = RecordType(rawValue: entry.record.type),
                        CareModel.structureTypes.contains(type)
                    {
                        // Settled here it would be refused (the practice's structure is an admin's to change).
                        print("\(entry.id): left open (the practice's structure: only an admin token may settle it)")
                        continue
                    }
                    let chosen = entry.values[pick]
                    print(
                        "\(entry.id): \(dryRun ? "would keep" : "keep") #\(pick + 1) \(TablePrinter.printable(chosen.value.description)) (\(chosen.author), \(Format.clock(chosen.clock)))"
                    )
                    if !dryRun {
                        try store.resolve(entry.id, choice: .pick(pick + 1), reason: reason ?? "bulk rule \(rule)")
                        resolved += 1
                    }
                }
                print(
                    dryRun
                        ? "dry run: \(plan.count) conflicts of \(field), nothing changed"
                        : "resolved \(resolved) of \(plan.count) conflicts of \(field)"
                )
                return
            }
            guard let id else { return }
            let choice: ConflictChoice
            if let pick {
                choice = .pick(pick)
            } else {
                let entry = try store.conflict(id)
                guard let type = RecordType(rawValue: entry.record.type), let spec = CareModel.spec(type, entry.field)
                else {
                    throw CLIError.input("conflict \(id) names a field this version does not know")
                }
                choice = .value(try FieldArguments.value(value ?? "", for: spec))
            }
            try store.resolve(id, choice: choice, reason: reason)
            print("resolved \(id); 'outpost sync' shares the decision")
        }
    }
}
