import OutpostCRDT

/// The kinds of record in the care model.
///
/// The raw value is the type's name in changes, dumps and the protocol (`patient`); ``idPrefix`` starts
/// every id of the type (`pat_01JD3Q…`), so a bare id says what it names.
public enum RecordType: String, Sendable, Hashable, CaseIterable, Codable, Comparable, CustomStringConvertible {
    /// A practice: the organisation whose records these are.
    case practice
    /// A place where care happens: a clinic, a home-visit round, a school, a workplace, a pharmacy, virtual.
    case site
    /// A member of staff.
    case person
    /// A care team serving one subgroup, with a named leader.
    case team
    /// A subgroup of patients with similar needs, as the practice defines it; drives per-member payments.
    case subgroup
    /// A patient on the panel.
    case patient
    /// A care task (FHIR Task): outreach, screening, referral, follow-up and so on.
    case task
    /// A measurement (FHIR Observation, LOINC-coded); immutable once written.
    case observation
    /// A visit or admission (FHIR Encounter); immutable once written.
    case encounter

    /// Hashes the case, not its name (the default for a `String` enum hashes its raw value): cheaper wherever a
    /// record type keys a dictionary or a set.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(ordinal)
    }

    /// The case's place in the declaration (and in ``allCases``): what the care model's field tables are indexed
    /// by.
    var ordinal: Int {
        switch self {
        case .practice: 0
        case .site: 1
        case .person: 2
        case .team: 3
        case .subgroup: 4
        case .patient: 5
        case .task: 6
        case .observation: 7
        case .encounter: 8
        }
    }

    /// The prefix of every id of this type, before the underscore: `pat` for patients.
    public var idPrefix: String {
        switch self {
        case .practice: "pra"
        case .site: "sit"
        case .person: "per"
        case .team: "tea"
        case .subgroup: "sub"
        case .patient: "pat"
        case .task: "tsk"
        case .observation: "obs"
        case .encounter: "enc"
        }
    }

    /// The type whose prefix starts `id` (`pat_01JD…` is a patient), or `nil` when no type's prefix followed
    /// by `_` starts it. Only the prefix is read: use ``isValidID(_:)`` to check the whole id.
    public init?(idPrefixOf id: some StringProtocol) {
        guard let underscore = id.firstIndex(of: "_") else { return nil }
        let prefix = id[id.startIndex..<underscore]
        guard let type = Self.allCases.first(where: { $0.idPrefix == prefix }) else { return nil }
        self = type
    }

    /// The length in bytes of every well-formed id: a three-letter prefix, `_`, then a ``SortableID``.
    public static let idLength = 3 + 1 + 26

    /// Whether `id` is a well-formed id of this type: the prefix, `_`, then a ``SortableID``.
    @inlinable  // compiled for the caller's string type (see SortableID.isValid(_:))
    public func isValidID(_ id: some StringProtocol) -> Bool {
        // Read as bytes (every prefix is three ASCII letters): validation and the projection check every id. A
        // native string's bytes are read in place.
        let prefix = idPrefix.utf8
        if let valid = id.utf8.withContiguousStorageIfAvailable({ bytes in
            bytes.count == prefix.count + 1 + 26 && bytes.starts(with: prefix)
                && bytes[prefix.count] == UInt8(ascii: "_")
                && SortableID.isValid(buffer: UnsafeBufferPointer(rebasing: bytes[(prefix.count + 1)...]))
        }) {
            return valid
        }
        let bytes = id.utf8
        guard bytes.count == prefix.count + 1 + 26, bytes.starts(with: prefix) else { return false }
        let rest = bytes.dropFirst(prefix.count)
        return rest.first == UInt8(ascii: "_") && SortableID.isValid(bytes: rest.dropFirst())
    }

    /// Makes a new id of this type for `millis` with randomness from `generator`.
    public func makeID(millis: UInt64, using generator: inout some RandomNumberGenerator) -> String {
        idPrefix + "_" + SortableID.make(millis: millis, using: &generator)
    }

    /// The reference of the record `id` when `id` is a well-formed id of any type; `nil` otherwise.
    ///
    /// For example, `RecordType.ref(forID: "pat_01JD3Q…")` is `patient/pat_01JD3Q…`.
    public static func ref(forID id: String) -> RecordRef? {
        guard let type = RecordType(idPrefixOf: id), type.isValidID(id) else { return nil }
        return RecordRef(type: type.rawValue, id: id)
    }

    public static func < (lhs: RecordType, rhs: RecordType) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { rawValue }
}
