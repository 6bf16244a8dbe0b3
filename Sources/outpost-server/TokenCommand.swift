import ArgumentParser
import Foundation
import OutpostCommandLine
import OutpostModel
import OutpostProtocol
import OutpostServer

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Issue, list, rotate and revoke the bearer tokens devices sync with.",
        subcommands: [Issue.self, List.self, Rotate.self, Revoke.self]
    )

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue",
            abstract: "Issue a token and print its secret once (it is stored only as a hash).",
            discussion: """
                Example:
                  outpost-server token issue --practice pra_... --role clinician \\
                    --teams tea_... --expires-in 90 --label "home visits laptop"
                """
        )
        @OptionGroup var data: DataOptions
        @Option(help: "The practice the token is bound to (default: the only practice).") var practice: String?
        @Option(help: "clinician, site-device or admin (a successor takes its predecessor's).") var role: String?
        @Option(parsing: .upToNextOption, help: "Sites the token sees (site ids).") var sites: [String] = []
        @Option(parsing: .upToNextOption, help: "Teams the token sees (team ids).") var teams: [String] = []
        @Option(help: "Days until the token expires (default: never).") var expiresIn: Int?
        @Option(
            help: ArgumentHelp(
                "When the token expires, in milliseconds since 1970, instead of --expires-in.",
                discussion: "For scripts and tests: a time in the past issues a token that is already expired.",
                valueName: "millis"
            )
        )
        var expiresAtMillis: UInt64?
        @Option(help: "A label for people, e.g. the device.") var label: String?
        @Option(
            help: ArgumentHelp(
                "The person the token is issued to (per_...): its edits must be signed by that person.",
                discussion: "Leave it out for a device shared by several people."
            )
        )
        var person: String?
        @Option(
            help: ArgumentHelp(
                "Issue the successor of this token (tok_...): same practice, role, scope and person; it takes over "
                    + "the replica ids of the devices that used the old one, which is revoked.",
                discussion: "For a device whose token was lost, leaked or revoked: its data and outbox continue.",
                valueName: "token-id"
            )
        )
        var successorOf: String?
        @Flag(help: "Print JSON (the secret and the token) instead of text.") var json = false

        func validate() throws {
            if successorOf != nil {
                guard role == nil, sites.isEmpty, teams.isEmpty, person == nil, practice == nil else {
                    throw ValidationError(
                        "a successor keeps its predecessor's practice, role, scope and person: give --successor-of "
                            + "with --label and --expires-in or --expires-at-millis only"
                    )
                }
            } else {
                guard let role else { throw ValidationError("give --role clinician, site-device or admin") }
                guard Role(rawValue: role) != nil else {
                    throw ValidationError("--role must be clinician, site-device or admin, not '\(role)'")
                }
            }
            if let person, !person.hasPrefix("per_") {
                throw ValidationError("--person takes a person id (per_...), not '\(person)'")
            }
            if let expiresIn, expiresIn <= 0 { throw ValidationError("--expires-in must be a positive number of days") }
            if let expiresIn, expiresIn > 36_500 {
                throw ValidationError(
                    "--expires-in must be at most 36500 days; leave it out for a token that never expires"
                )
            }
            if let expiresAtMillis, expiresAtMillis > UInt64(Int64.max) {
                throw ValidationError("--expires-at-millis must be at most \(Int64.max)")
            }
            if expiresIn != nil && expiresAtMillis != nil {
                throw ValidationError("give --expires-in or --expires-at-millis, not both")
            }
            for site in sites where !site.hasPrefix("sit_") {
                throw ValidationError("--sites takes site ids (sit_...), not '\(site)'")
            }
            for team in teams where !team.hasPrefix("tea_") {
                throw ValidationError("--teams takes team ids (tea_...), not '\(team)'")
            }
        }

        func run() async throws {
            let store = try await data.openStore()
            let now = SystemWallClock().nowMillis()
            let expiry = expiresAtMillis ?? expiresIn.map { now + UInt64($0) * 86_400_000 }
            if let successorOf {
                let issued = try await store.issueSuccessor(
                    of: successorOf,
                    label: label,
                    expiresAtMillis: expiry,
                    graceMillis: nil,
                    now: now
                )
                try report(issued)
                return
            }
            let practiceID: String
            if let practice {
                practiceID = practice
            } else {
                let all = try await store.practices()
                guard all.count == 1 else {
                    throw ValidationError("the store has \(all.count) practices; name one with --practice")
                }
                practiceID = all[0].id
            }
            let issued = try await store.issueToken(
                practice: practiceID,
                role: role.flatMap(Role.init(rawValue:)) ?? .clinician,
                scope: Scope(sites: sites, teams: teams),
                label: label ?? "",
                expiresAtMillis: expiry,
                person: person,
                now: now
            )
            try report(issued)
        }

        func report(_ issued: (secret: TokenSecret, entry: TokenEntry)) throws {
            try TokenCommand.reportIssued(issued, json: json)
        }
    }

    /// Prints the secret (stdout) and what was issued.
    static func reportIssued(_ issued: (secret: TokenSecret, entry: TokenEntry), json: Bool) throws {
        let role = issued.entry.role.rawValue
        let practiceID = issued.entry.practice
        if json {
            struct Issued: Encodable {
                var secret: String
                var token: TokenEntry
            }
            try JSONOutput.print(Issued(secret: issued.secret.text, token: issued.entry))
        } else {
            print(issued.secret.text)
            // "Above" is true only on a terminal; captured by $(…) or a pipe, the secret went there.
            let whereShown =
                isatty(1) == 1
                ? "the secret above is shown once"
                : "its secret was written to standard output, once; the server keeps only its hash"
            FileHandle.standardError.write(
                Data("issued \(issued.entry.id) (\(role)) for \(practiceID); \(whereShown)\n".utf8)
            )
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List tokens (never their secrets)."
        )
        @OptionGroup var data: DataOptions
        @Option(help: "Only this practice's tokens.") var practice: String?
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() async throws {
            let store = try await data.openStore()
            let tokens = try await store.tokens(practice: practice)
            if json {
                try JSONOutput.print(tokens)
                return
            }
            let now = SystemWallClock().nowMillis()
            TablePrinter.print(
                ["ID", "PRACTICE", "ROLE", "SCOPE", "STATE", "EXPIRES", "LABEL"],
                tokens.map { token in
                    let scope =
                        token.scope.isWholePractice
                        ? "practice" : (token.scope.sites + token.scope.teams).joined(separator: ",")
                    let state =
                        token.revokedAtMillis != nil ? "revoked" : token.isUsable(at: now) ? "active" : "expired"
                    return [
                        token.id, token.practice, token.role.rawValue, scope, state,
                        token.expiresAtMillis.map { CalendarDate.dateTime(millis: $0) } ?? "never", token.label,
                    ]
                }
            )
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate",
            abstract: "Issue a new secret for a token's device; the old one keeps working for a grace period.",
            discussion: """
                The new token has the old one's practice, role, scope and person and takes over its devices' \
                replica ids, so a device switched to it ('outpost remote set URL --token NEW') keeps its data and \
                outbox. The old token stops working after --grace-hours (default 24); for a token that was lost \
                or leaked, use 'token issue --successor-of', which revokes it at once.
                """
        )
        @OptionGroup var data: DataOptions
        @Argument(help: "The token's id (tok_...).") var id: String
        @Option(help: "Hours the old token keeps working.") var graceHours = 24
        @Option(help: "Days until the new token expires (default: never).") var expiresIn: Int?
        @Option(help: "A label for the new token (default: the old one's).") var label: String?
        @Flag(help: "Print JSON (the secret and the token) instead of text.") var json = false

        func validate() throws {
            guard graceHours >= 0, graceHours <= 24 * 365 else {
                throw ValidationError("--grace-hours must be 0 to 8760")
            }
            if let expiresIn, expiresIn <= 0 || expiresIn > 36_500 {
                throw ValidationError("--expires-in must be 1 to 36500 days")
            }
        }

        func run() async throws {
            let store = try await data.openStore()
            let now = SystemWallClock().nowMillis()
            let issued = try await store.issueSuccessor(
                of: id,
                label: label,
                expiresAtMillis: expiresIn.map { now + UInt64($0) * 86_400_000 },
                graceMillis: UInt64(graceHours) * 3_600_000,
                now: now
            )
            try TokenCommand.reportIssued(issued, json: json)
            if !json {
                FileHandle.standardError.write(
                    Data("\(id) keeps working for \(graceHours) h; then only \(issued.entry.id) does\n".utf8)
                )
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke",
            abstract: "Revoke a token; the device's next request is refused, its local data is kept."
        )
        @OptionGroup var data: DataOptions
        @Argument(help: "The token's id (tok_...).") var id: String

        func run() async throws {
            let store = try await data.openStore()
            let now = SystemWallClock().nowMillis()
            let token = try await store.revokeToken(id: id, now: now)
            if let revoked = token.revokedAtMillis, revoked != now {
                print("\(token.id) was revoked already, at \(CalendarDate.dateTime(millis: revoked)); nothing changed")
            } else {
                print("revoked \(token.id)")
            }
        }
    }
}
