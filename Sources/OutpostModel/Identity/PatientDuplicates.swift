/// Likely duplicate patients: pairs of active patients who may be the same person, each with a score and
/// the evidence for it (`outpost patient duplicates`). Pure: it reads records, writes nothing.
///
/// Names are compared after folding case and accents (`Núñez` is `nunez`) and allow one typo (an edit or two
/// letters swapped); a birth date may differ by one digit or by day and month swapped; phones compare by
/// their last ten digits; addresses by their letters and digits. The evidence names the fields and how they
/// matched, never their values (it may be logged).
public enum PatientDuplicates {
    /// One likely pair.
    public struct Pair: Sendable, Hashable, Codable {
        /// The two patients' ids, the smaller first.
        public var first: String
        public var second: String
        /// From 0 to 1: how likely the two are one person.
        public var score: Double
        /// What matched, strongest first: `mrn equal`, `familyName one typo`, `birthDate equal`.
        public var evidence: [String]
    }

    /// The score at and above which a pair is listed.
    public static let threshold = 0.6

    /// Likely pairs among `patients` (retired patients and merged duplicates are left out), highest score
    /// first, then by ids.
    public static func find(_ patients: [MaterializedRecord], threshold: Double = threshold) -> [Pair] {
        let merges = PatientMerges(patients)
        let people = patients.filter { $0.type == .patient && !$0.isRetired && !merges.isMerged($0.id) }.map(
            Person.init
        )
        // Blocking: only patients sharing a birth year, a phone or an MRN are compared.
        var blocks: [String: [Int]] = [:]
        for (index, person) in people.enumerated() {
            if let year = person.birthDate?.year { blocks["y\(year)", default: []].append(index) }
            if let phone = person.phone { blocks["p\(phone)", default: []].append(index) }
            if let mrn = person.mrn { blocks["m\(mrn)", default: []].append(index) }
        }
        var seen = Set<[Int]>()
        var pairs: [Pair] = []
        for members in blocks.values where members.count > 1 {
            for (offset, a) in members.enumerated() {
                for b in members[(offset + 1)...] where seen.insert([min(a, b), max(a, b)]).inserted {
                    if let pair = compare(people[a], people[b]), pair.score >= threshold { pairs.append(pair) }
                }
            }
        }
        return pairs.sorted { ($1.score, $0.first, $0.second) < ($0.score, $1.first, $1.second) }
    }

    struct Person {
        var id: String
        var given: String
        var family: String
        /// The names as written, lower case.
        var written: [String: String]
        var birthDate: CalendarDate?
        var phone: String?
        var mrn: String?
        var address: String?
        var sex: String?

        init(_ record: MaterializedRecord) {
            id = record.id
            given = PatientDuplicates.fold(record.string("givenName") ?? "")
            family = PatientDuplicates.fold(record.string("familyName") ?? "")
            written = [
                "givenName": (record.string("givenName") ?? "").lowercased(),
                "familyName": (record.string("familyName") ?? "").lowercased(),
            ]
            birthDate = record.string("birthDate").flatMap { CalendarDate($0) }
            let digits = (record.string("phone") ?? "").filter(\.isNumber)
            phone = digits.count >= 7 ? String(digits.suffix(10)) : nil
            mrn = record.string("mrn").map { PatientDuplicates.fold($0) }
            address = record.string("address").map { PatientDuplicates.fold($0) }.flatMap { $0.isEmpty ? nil : $0 }
            sex = record.string("sex")
        }
    }

    static func compare(_ a: Person, _ b: Person) -> Pair? {
        var score = 0.0
        var evidence: [String] = []
        func note(_ weight: Double, _ text: String) {
            score += weight
            evidence.append(text)
        }
        if let x = a.mrn, let y = b.mrn {
            if x == y { note(0.5, "mrn equal") } else { score -= 0.3 }
        }
        switch (a.birthDate, b.birthDate) {
        case (let x?, let y?) where x == y: note(0.35, "birthDate equal")
        case (let x?, let y?) where nearDates(x, y): note(0.15, "birthDate one digit or day and month swapped")
        case (.some, .some): score -= 0.3
        default: break
        }
        for (field, x, y) in [("familyName", a.family, b.family), ("givenName", a.given, b.given)] {
            guard !x.isEmpty, !y.isEmpty else { continue }
            if x == y {
                note(0.2, a.written[field] == b.written[field] ? "\(field) equal" : "\(field) equal but for accents")
            } else if distance(x, y) <= 1 || (x.count > 7 && distance(x, y) <= 2) {
                note(0.12, "\(field) one typo")
            } else if x.hasPrefix(y) || y.hasPrefix(x) {
                note(0.08, "\(field) one is the start of the other")
            }
        }
        if a.family == b.given && a.given == b.family && !a.family.isEmpty && a.family != a.given {
            note(0.3, "givenName and familyName swapped")
        }
        if let x = a.phone, x == b.phone { note(0.2, "phone equal") }
        if let x = a.address, x == b.address { note(0.15, "address equal") }
        if let x = a.sex, let y = b.sex, x != y, x != "unknown", y != "unknown" { score -= 0.2 }
        guard !evidence.isEmpty else { return nil }
        let (first, second) = a.id < b.id ? (a.id, b.id) : (b.id, a.id)
        return Pair(first: first, second: second, score: min(1, max(0, score)), evidence: evidence)
    }

    static func nearDates(_ x: CalendarDate, _ y: CalendarDate) -> Bool {
        if x.year == y.year && x.month == y.day && x.day == y.month { return true }
        return distance(x.description, y.description) == 1
    }

    /// Lower case, accents folded, only letters, digits and single spaces.
    static func fold(_ text: String) -> String {
        var out = ""
        var space = false
        for character in text.lowercased() {
            let folded = accents[character].map(String.init) ?? String(character)
            for scalar in folded.unicodeScalars {
                if (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") {
                    if space && !out.isEmpty { out.append(" ") }
                    space = false
                    out.unicodeScalars.append(scalar)
                } else if scalar == " " || scalar == "-" || scalar == "'" {
                    space = true
                }
            }
        }
        return out
    }

    private static let accents: [Character: Character] = {
        var table: [Character: Character] = [:]
        let groups: [(Character, String)] = [
            ("a", "àáâãäåāăą"), ("c", "çćĉċč"), ("d", "ďđ"), ("e", "èéêëēĕėęě"), ("g", "ĝğġģ"), ("h", "ĥħ"),
            ("i", "ìíîïĩīĭįı"), ("j", "ĵ"), ("k", "ķ"), ("l", "ĺļľŀł"), ("n", "ñńņňŉ"), ("o", "òóôõöøōŏő"),
            ("r", "ŕŗř"), ("s", "śŝşšș"), ("t", "ţťŧț"), ("u", "ùúûüũūŭůűų"), ("w", "ŵ"), ("y", "ýÿŷ"),
            ("z", "źżž"),
        ]
        for (plain, marked) in groups {
            for character in marked { table[character] = plain }
        }
        return table
    }()

    /// Damerau–Levenshtein distance (optimal string alignment): edits and swaps of neighbours.
    static func distance(_ x: String, _ y: String) -> Int {
        let a = Array(x)
        let b = Array(y)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var rows = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { rows[i][0] = i }
        for j in 0...b.count { rows[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
                }
            }
        }
        return rows[a.count][b.count]
    }
}
