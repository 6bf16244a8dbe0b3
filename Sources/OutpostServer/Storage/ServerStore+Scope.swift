import Foundation
import GRDB
import HTTPTypes
import OutpostCRDT
import OutpostModel
public import OutpostProtocol

extension ServerStore {
    /// The patients of a practice in `scope`: primary team among its teams, or a site among its sites. This is
    /// `Scope.contains` in SQL, over the keys each push stores (`PatientView.ScopeKeys`); the caller handles the
    /// whole practice.
    static func patients(in scope: Scope, practice: String, db: Database) throws -> Set<String> {
        var result = Set<String>()
        if !scope.teams.isEmpty {
            let marks = Array(repeating: "?", count: scope.teams.count).joined(separator: ",")
            result.formUnion(
                try String.fetchAll(
                    db,
                    sql: "SELECT patient FROM patient_scope WHERE practice = ? AND team IN (\(marks))",
                    arguments: StatementArguments([practice] + scope.teams)
                )
            )
        }
        if !scope.sites.isEmpty {
            let marks = Array(repeating: "?", count: scope.sites.count).joined(separator: ",")
            result.formUnion(
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT patient FROM patient_site WHERE practice = ? AND site IN (\(marks))
                        """,
                    arguments: StatementArguments([practice] + scope.sites)
                )
            )
        }
        return result
    }

    /// The patients in a scope now (for filtering a snapshot).
    public func patients(in scope: Scope, practice: String) throws(ServerError) -> Set<String> {
        try read { db in try Self.patients(in: scope, practice: practice, db: db) }
    }
}
