/// The merges of duplicate patients, resolved: for every patient, the patient whose record it follows (its
/// survivor). Pure, and the same on every replica holding the same records.
///
/// A merge is one field, `mergedInto`, on the duplicate (`outpost patient merge KEEP DUPLICATE`); nothing
/// else is rewritten. Who follows whom is read from those links (docs/model.md, "Duplicate merges"):
///
/// - a patient with no link, or a link to a patient this replica does not hold, or to itself, is its own
///   survivor;
/// - otherwise its survivor is its link's survivor, so chains resolve (A into B while B is merged into C:
///   A's survivor is C);
/// - links that form a cycle (A into B on one replica while B into A on another) are broken by the total
///   order of ids: the cycle's smallest id is the survivor, its own link ignored.
///
/// For example:
///
/// ```swift
/// let merges = PatientMerges(try store.records(.patient))
/// merges.survivor(of: "pat_01J…")   // the id whose tasks, observations and notes it follows
/// ```
public struct PatientMerges: Sendable, Hashable {
    /// Merged patients (whose survivor is another patient) → their survivor.
    public let survivors: [String: String]

    /// Resolves the `mergedInto` links of `patients` (records of other types are ignored).
    public init(_ patients: some Sequence<MaterializedRecord>) {
        var links: [String: String] = [:]
        var held = Set<String>()
        for patient in patients where patient.type == .patient {
            held.insert(patient.id)
            if let target = patient.string("mergedInto") { links[patient.id] = target }
        }
        self.init(links: links, held: held)
    }

    /// Resolves `links` (duplicate → the patient it was merged into) among the patients `held`.
    public init(links: [String: String], held: Set<String>) {
        let effective = links.filter { held.contains($0.key) && held.contains($0.value) && $0.key != $0.value }
        var root: [String: String] = [:]
        for start in effective.keys.sorted() where root[start] == nil {
            var path: [String] = []
            var position: [String: Int] = [:]
            var node = start
            let survivor: String
            while true {
                if let known = root[node] {
                    survivor = known
                    break
                }
                if let index = position[node] {
                    // A cycle: its smallest id survives, whatever order the links arrived in.
                    survivor = path[index...].min() ?? node
                    break
                }
                position[node] = path.count
                path.append(node)
                guard let next = effective[node] else {
                    survivor = node
                    break
                }
                node = next
            }
            for member in path { root[member] = survivor }
        }
        survivors = root.filter { $0.key != $0.value }
    }

    /// The patient whose record `id` follows: `id` itself unless it is a merged duplicate.
    public func survivor(of id: String) -> String { survivors[id] ?? id }

    /// Whether `id` is a merged duplicate (retired, following another patient).
    public func isMerged(_ id: String) -> Bool { survivors[id] != nil }

    /// The duplicates that follow `survivor` (directly or through a chain), sorted by id.
    public func duplicates(of survivor: String) -> [String] {
        survivors.filter { $0.value == survivor }.keys.sorted()
    }

    /// Whether no patient is merged.
    public var isEmpty: Bool { survivors.isEmpty }
}
