import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol

/// What a scoped replica says when its user places a patient outside its token's scope: allowed (the replica's own
/// push stores the patient), but its next sync then removes the patient here, the server keeping it for the practice
/// (protocol/README.md, section 11). Said at once, on stderr, so that the patient's going is no surprise.
enum ScopeNote {
    /// The scope the replica's last session gave its token, unless it is the whole practice.
    private static func scope(of store: CareStore) throws -> Scope? {
        guard let scope = try SyncEngine.keptSession(in: store.store)?.scope, !scope.isWholePractice else { return nil }
        return scope
    }

    /// Says so when `ref` is a patient outside the scope the replica's last session gave its token.
    static func noteIfOutside(_ ref: RecordRef, in store: CareStore) throws {
        guard ref.type == RecordType.patient.rawValue, let scope = try scope(of: store),
            let state = try store.store.record(ref), !scope.contains(PatientView.ScopeKeys(state: state))
        else { return }
        Terminal.error(
            "note: \(ref.id) is outside this replica's scope (neither its team nor its sites are its token's): the "
                + "next sync stores it on the server, then removes it from this replica; the server keeps it for the "
                + "practice"
        )
    }

    /// Says so when new patients placed in `team` (an import's `--team`) and at no site are outside the scope.
    static func noteIfOutside(placedIn team: String, in store: CareStore) throws {
        guard let scope = try scope(of: store), !scope.contains(PatientView.ScopeKeys(team: team, sites: [])) else {
            return
        }
        Terminal.error(
            "note: --team \(team) is outside this replica's scope: the new patients it places (at no site of the "
                + "scope) leave this replica at the next sync, which stores them on the server; the server keeps them "
                + "for the practice"
        )
    }

    /// Says so when an import created `unplaced` patients awaiting assignment (no team, no site) on a scoped replica.
    static func noteIfScoped(unplaced: Int, in store: CareStore) throws {
        guard unplaced > 0, try scope(of: store) != nil else { return }
        Terminal.error(
            "note: this replica's token sees only its scope: assign them to a team or site of it before the next "
                + "sync, which otherwise hands them to the practice (they leave this replica; the server keeps them)"
        )
    }
}
