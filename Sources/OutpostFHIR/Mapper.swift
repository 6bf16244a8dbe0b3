public import OutpostCRDT
public import OutpostModel

/// A value a FHIR resource gives an Outpost field: a value, or a reference still to resolve.
public enum FHIRItem: Sendable, Hashable {
    case value(Value)
    /// A FHIR reference, normalized (`Patient/123` or a `urn:uuid:`), and the element it was in.
    case reference(String, element: String)
}

/// What one FHIR resource says about one Outpost record.
public struct FHIRContribution: Sendable {
    /// The record's type.
    public var type: RecordType
    /// The FHIR key naming the record (for a PractitionerRole: its practitioner's).
    public var key: String
    /// Whether the resource is the record itself (a Patient), rather than adding to it (a Condition).
    public var isRecord: Bool
    /// More keys naming the record (identifiers of Outpost's source-id system).
    public var otherKeys: [String] = []
    /// The Outpost id the resource's id stands for (`pat-01JD…` written by an Outpost export).
    public var outpostID: String?
    /// Register values.
    public var assign: [String: FHIRItem] = [:]
    /// Set elements to add and log entries to append.
    public var add: [String: [FHIRItem]] = [:]
    /// Set elements to remove.
    public var remove: [String: [FHIRItem]] = [:]
    /// Where it came from.
    public var origin: FHIROrigin
    /// The resource's type and key, for messages: `Patient/123`.
    public var resource: String
}

/// What an import did not keep, counted by element path (docs/fhir.md).
public struct FHIRIssues: Sendable, Hashable {
    /// The kinds of things not kept.
    public enum Kind: String, Sendable, Hashable, Comparable, CaseIterable {
        /// An element Outpost keeps no field for (including elements it does not know).
        case notKept = "not kept"
        /// A code Outpost does not model (a LOINC code other than its seven, a SNOMED-only condition).
        case unmodelledCode = "unmodelled code"
        /// A reference to a resource neither in the input nor in the store.
        case unresolvedReference = "unresolved reference"

        public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// Counts by kind and element path (`Patient.maritalStatus`).
    public private(set) var counts: [Kind: [String: Int]] = [:]

    public init() {}

    public mutating func note(_ kind: Kind, _ path: String, count: Int = 1) {
        counts[kind, default: [:]][path, default: 0] += count
    }

    /// Adds `other`'s counts.
    public mutating func merge(_ other: FHIRIssues) {
        for (kind, paths) in other.counts {
            for (path, count) in paths { note(kind, path, count: count) }
        }
    }

    /// Whether nothing was left out.
    public var isEmpty: Bool { counts.values.allSatisfy(\.isEmpty) }

    /// One line per kind and path, sorted: `not kept: Patient.maritalStatus (2)`.
    public var lines: [String] {
        counts.keys.sorted().flatMap { kind in
            (counts[kind] ?? [:]).sorted { $0.key < $1.key }.map { "\(kind.rawValue): \($0.key) (\($0.value))" }
        }
    }
}

/// Turns FHIR R4 resources into contributions to Outpost records (docs/fhir.md has the tables). Pure.
public struct FHIRMapper {
    /// What the resources say, in input order.
    public private(set) var contributions: [FHIRContribution] = []
    /// What was not kept.
    public var issues = FHIRIssues()
    /// PractitionerRole keys to their practitioner's key.
    public private(set) var aliases: [String: String] = [:]
    /// How many resources were mapped.
    public private(set) var resourceCount = 0
    /// Each resource key mapped, where it was first read and its content's hash (its members in key order, so that
    /// two writers' member orders agree): the same resource twice with different content is refused, not silently
    /// merged (the last one's values would win).
    private var seen: [String: (origin: FHIROrigin, content: Int)] = [:]

    /// An empty mapper; ``map(_:)`` adds inputs.
    public init() {}

    /// Maps every resource `reader` read.
    public init(_ reader: FHIRReader) throws(FHIRError) {
        try map(reader)
    }

    /// Maps every resource `reader` read. Map each input as it is read and drop its reader, so the JSON of only
    /// one input is held at a time (a Bundle's `urn:uuid:` references are resolved within the input).
    public mutating func map(_ reader: FHIRReader) throws(FHIRError) {
        for resource in reader.resources { contributions += try map(resource, fullURLs: reader.fullURLs) }
    }

    /// Maps one resource and returns what it says, without keeping it in ``contributions`` (for imports that
    /// read their inputs a resource at a time); ``issues``, ``aliases`` and ``resourceCount`` count it.
    /// `fullURLs` are its input's Bundle full URLs (``FHIRReader/fullURLs``).
    public mutating func map(
        _ resource: FHIRResource,
        fullURLs: [String: String]
    ) throws(FHIRError) -> [FHIRContribution] {
        let content = resource.json.contentHash
        if let first = seen[resource.key] {
            guard first.content == content else {
                throw FHIRError(
                    "\(resource.origin): \(resource.key): the input holds this resource twice, differently (first at "
                        + "\(first.origin)); keep the one that is right: Outpost would otherwise keep one silently"
                )
            }
        } else {
            seen[resource.key] = (resource.origin, content)
        }
        var context = Context(resource: resource, fullURLs: fullURLs, issues: issues)
        try context.map()
        issues = context.issues
        aliases.merge(context.newAliases) { _, new in new }
        resourceCount += 1
        return context.contributions
    }

    /// `Patient/123` from a reference as written: a Bundle full URL, an absolute URL or a relative one.
    static func normalize(_ reference: String, _ fullURLs: [String: String]) -> String {
        if let key = fullURLs[reference] { return key }
        var text = reference
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        if let history = parts.firstIndex(of: "_history") { text = parts[..<history].joined(separator: "/") }
        if text.hasPrefix("http://") || text.hasPrefix("https://") {
            let parts = text.split(separator: "/")
            if parts.count >= 2 { return parts[parts.count - 2] + "/" + parts[parts.count - 1] }
        }
        return text
    }

    /// The work on one resource.
    struct Context {
        let resource: FHIRResource
        let fullURLs: [String: String]
        var issues: FHIRIssues
        var used: Set<String> = ["resourceType", "id", "meta", "text"]
        var contributions: [FHIRContribution] = []
        var newAliases: [String: String] = [:]

        init(resource: FHIRResource, fullURLs: [String: String], issues: FHIRIssues) {
            self.resource = resource
            self.fullURLs = fullURLs
            self.issues = issues
        }

        var type: String { resource.type }

        func fail(_ element: String, _ what: String) -> FHIRError {
            FHIRError("\(resource.origin): \(type).\(element): \(what)")
        }

        mutating func element(_ name: String) -> JSON? {
            used.insert(name)
            return resource.json[name]
        }

        /// An element FHIR writes as a JSON string (a date, a code): `nil` when absent; refused when it is there as
        /// something else (a number, an object), rather than read as missing.
        mutating func text(_ name: String) throws(FHIRError) -> String? {
            guard let value = element(name) else { return nil }
            guard let text = value.string else {
                throw fail(name, "not a JSON string; FHIR writes it as text, like \"1970-01-02\" or \"female\"")
            }
            return text
        }

        mutating func note(_ kind: FHIRIssues.Kind, _ element: String) {
            issues.note(kind, "\(type).\(element)")
        }

        func record(_ recordType: RecordType) -> FHIRContribution {
            var contribution = FHIRContribution(
                type: recordType,
                key: resource.key,
                isRecord: true,
                origin: resource.origin,
                resource: resource.key
            )
            if let id = resource.json["id"]?.string {
                contribution.outpostID = FHIRVocabulary.outpostID(id, recordType)
            }
            return contribution
        }

        func patch(_ recordType: RecordType, key: String) -> FHIRContribution {
            FHIRContribution(
                type: recordType,
                key: key,
                isRecord: false,
                origin: resource.origin,
                resource: resource.key
            )
        }

        mutating func map() throws(FHIRError) {
            switch type {
            case "Organization": try organization()
            case "Location": try location()
            case "Practitioner": try practitioner()
            case "PractitionerRole": try practitionerRole()
            case "CareTeam": try careTeam()
            case "Group": try group()
            case "Patient": try patient()
            case "Task": try task()
            case "Observation": try observation()
            case "Encounter": try encounter()
            case "Condition": try condition(field: "conditions")
            case "AllergyIntolerance": try condition(field: "allergies")
            default: throw fail("resourceType", "not imported")
            }
            for (name, _) in resource.json.members where !used.contains(name) { note(.notKept, name) }
        }

        // MARK: Shared elements

        /// Reads Outpost's own extensions into `contribution`, and notes others as not kept.
        mutating func extensions(into contribution: inout FHIRContribution) throws(FHIRError) {
            for ext in element("extension")?.items ?? [] {
                let url = ext["url"]?.string ?? ""
                let prefix = FHIRVocabulary.extensionURL(contribution.type, "")
                guard url.hasPrefix(prefix),
                    let spec = CareModel.spec(contribution.type, String(url.dropFirst(prefix.count)))
                else {
                    note(.notKept, "extension(\(url))")
                    continue
                }
                let item = try extensionValue(ext, spec)
                switch spec.policy {
                case .set, .log: contribution.add[spec.name, default: []].append(item)
                default: contribution.assign[spec.name] = item
                }
            }
            for ext in element("modifierExtension")?.items ?? [] {
                throw fail(
                    "modifierExtension",
                    "'\(ext["url"]?.string ?? "")' changes the meaning of the resource and Outpost does not know it; "
                        + "remove it or map it first"
                )
            }
        }

        func extensionValue(_ ext: JSON, _ spec: FieldSpec) throws(FHIRError) -> FHIRItem {
            let element = "extension(\(ext["url"]?.string ?? ""))"
            if case .reference = spec.kind {
                guard let reference = ext["valueReference"]?["reference"]?.string else {
                    throw fail(element, "needs a valueReference with a reference")
                }
                return .reference(FHIRMapper.normalize(reference, fullURLs), element: element)
            }
            for name in ["valueString", "valueCode", "valueDate", "valueDateTime", "valueId", "valueMarkdown"] {
                if let text = ext[name]?.string { return .value(.string(text)) }
            }
            if let number = ext["valueDecimal"]?.number { return .value(.string(number)) }
            if let number = ext["valueInteger"]?.number, let integer = Int64(number) { return .value(.int(integer)) }
            if let flag = ext["valueBoolean"]?.bool { return .value(.bool(flag)) }
            throw fail(element, "has no value Outpost reads for \(spec.path) (valueString, valueInteger, …)")
        }

        /// The first phone and email of `telecom`; the rest noted as not kept.
        mutating func telecom() -> (phone: String?, email: String?) {
            var phone: String?
            var email: String?
            for contact in element("telecom")?.items ?? [] {
                let value = contact["value"]?.string
                switch contact["system"]?.string {
                case "phone" where phone == nil: phone = value
                case "email" where email == nil: email = value
                default: note(.notKept, "telecom")
                }
            }
            return (phone, email)
        }

        /// The first address as one line of text; others noted.
        mutating func address() -> String? {
            let addresses = element("address")?.items ?? []
            if addresses.count > 1 { note(.notKept, "address") }
            guard let first = addresses.first else { return nil }
            if let text = first["text"]?.string, !text.isEmpty { return text }
            var parts = (first["line"]?.items ?? []).compactMap(\.string)
            let cityLine = [first["city"]?.string, first["state"]?.string, first["postalCode"]?.string]
                .compactMap { $0 }.joined(separator: " ")
            if !cityLine.isEmpty { parts.append(cityLine) }
            if let country = first["country"]?.string { parts.append(country) }
            return parts.isEmpty ? nil : parts.joined(separator: ", ")
        }

        /// A reference element's normalized target; `nil` (noted) when it has no literal reference.
        mutating func reference(_ json: JSON?, _ element: String) -> FHIRItem? {
            guard let json else { return nil }
            guard let text = json["reference"]?.string else {
                note(.unresolvedReference, element)
                return nil
            }
            return .reference(FHIRMapper.normalize(text, fullURLs), element: element)
        }

        /// The codes of a CodeableConcept in `system` (any system when `nil`).
        func codes(_ concept: JSON?, system: String?) -> [String] {
            (concept?["coding"]?.items ?? []).compactMap { coding in
                guard system == nil || coding["system"]?.string == system else { return nil }
                return coding["code"]?.string
            }
        }

        func status(_ element: String, _ allowed: [String: String]) throws(FHIRError) -> String? {
            guard let code = resource.json[element]?.string else { return nil }
            guard let status = allowed[code] else { return nil }
            return status
        }

        /// An Outpost UTC date-time from a FHIR dateTime (offsets converted; a date alone is its midnight UTC).
        func dateTime(_ text: String) -> String? {
            if CalendarDate(text) != nil { return text + "T00:00:00Z" }
            if text.hasSuffix("Z") { return CalendarDate.parseDateTime(text) != nil ? text : nil }
            guard text.count >= 25 else { return nil }
            let offsetText = text.suffix(6)
            let sign: Int64 = offsetText.first == "-" ? -1 : 1
            guard offsetText.first == "+" || offsetText.first == "-",
                let hours = Int64(offsetText.dropFirst().prefix(2)), let minutes = Int64(offsetText.suffix(2)),
                let local = CalendarDate.parseDateTime(text.dropLast(6) + "Z")
            else { return nil }
            let millis = local.millis - sign * (hours * 3600 + minutes * 60) * 1000
            guard millis >= 0 else { return nil }
            return CalendarDate.dateTime(millis: UInt64(millis))
        }

        /// The date part of a FHIR date or dateTime.
        func date(_ text: String) -> String? {
            let day = String(text.prefix(10))
            return CalendarDate(day) != nil ? day : nil
        }

        mutating func active(_ contribution: inout FHIRContribution) {
            if let active = element("active")?.bool {
                contribution.assign["status"] = .value(.string(active ? "active" : "inactive"))
            } else {
                contribution.assign["status"] = .value("active")
            }
        }

        mutating func identifiers(_ contribution: inout FHIRContribution, mrn: Bool = false) {
            for identifier in element("identifier")?.items ?? [] {
                if identifier["system"]?.string == FHIRVocabulary.sourceIDSystem,
                    let value = identifier["value"]?.string
                {
                    contribution.otherKeys.append(value)
                } else if mrn, codes(identifier["type"], system: FHIRVocabulary.identifierType).contains("MR"),
                    contribution.assign["mrn"] == nil, let value = identifier["value"]?.string
                {
                    contribution.assign["mrn"] = .value(.string(value))
                } else {
                    note(.notKept, "identifier")
                }
            }
        }

        /// The text of the first (official, else usual, else any) HumanName; other names noted.
        mutating func humanName() throws(FHIRError) -> (given: String?, family: String?, text: String?) {
            let names = element("name")?.items ?? []
            guard names.allSatisfy({ if case .object = $0 { true } else { false } }) else {
                throw fail("name", "not a HumanName: write it as {\"family\": …, \"given\": […]}, not as text")
            }
            let chosen =
                names.first { $0["use"]?.string == "official" } ?? names.first { $0["use"]?.string == "usual" }
                ?? names.first
            if names.count > 1 { note(.notKept, "name") }
            guard let chosen else { return (nil, nil, nil) }
            let given = (chosen["given"]?.items ?? []).compactMap(\.string)
            let family = chosen["family"]?.string
            let text =
                chosen["text"]?.string
                ?? ((chosen["prefix"]?.items ?? []).compactMap(\.string) + given + [family].compactMap { $0 })
                .joined(separator: " ")
            return (given.isEmpty ? nil : given.joined(separator: " "), family, text.isEmpty ? nil : text)
        }

        // MARK: Resources

        mutating func organization() throws(FHIRError) {
            var practice = record(.practice)
            if let name = element("name")?.string { practice.assign["name"] = .value(.string(name)) }
            let contact = telecom()
            if let phone = contact.phone { practice.assign["phone"] = .value(.string(phone)) }
            if contact.email != nil { note(.notKept, "telecom") }
            if let address = address() { practice.assign["address"] = .value(.string(address)) }
            active(&practice)
            identifiers(&practice)
            try extensions(into: &practice)
            contributions.append(practice)
        }

        mutating func location() throws(FHIRError) {
            var site = record(.site)
            if let name = element("name")?.string { site.assign["name"] = .value(.string(name)) }
            let contact = telecom()
            if let phone = contact.phone { site.assign["phone"] = .value(.string(phone)) }
            if contact.email != nil { note(.notKept, "telecom") }
            if let address = address() { site.assign["address"] = .value(.string(address)) }
            let kinds = CareModel.spec(.site, "kind")?.kind.allowedValues ?? []
            let roleCodes = ["PHARM": "pharmacy", "SCHOOL": "school", "PTRES": "home-visit", "WORK": "workplace"]
            let types = element("type")?.items ?? []
            let ours = types.flatMap { codes($0, system: FHIRVocabulary.codeSystem("site-kind")) }.first {
                kinds.contains($0)
            }
            if let kind = ours ?? types.flatMap({ codes($0, system: nil) }).compactMap({ roleCodes[$0] }).first {
                site.assign["kind"] = .value(.string(kind))
            } else {
                if !types.isEmpty { note(.unmodelledCode, "type") }
                site.assign["kind"] = .value("clinic")
            }
            switch element("status")?.string {
            case "inactive", "suspended": site.assign["status"] = .value("inactive")
            default: site.assign["status"] = .value("active")
            }
            identifiers(&site)
            try extensions(into: &site)
            contributions.append(site)
        }

        mutating func practitioner() throws(FHIRError) {
            var person = record(.person)
            let name = try humanName()
            if let text = name.text { person.assign["name"] = .value(.string(text)) }
            let contact = telecom()
            if let phone = contact.phone { person.assign["phone"] = .value(.string(phone)) }
            if let email = contact.email { person.assign["email"] = .value(.string(email)) }
            active(&person)
            identifiers(&person)
            try extensions(into: &person)
            contributions.append(person)
        }

        mutating func practitionerRole() throws(FHIRError) {
            guard case .reference(let practitioner, _)? = reference(element("practitioner"), "practitioner") else {
                throw fail("practitioner", "missing; Outpost keeps a role on the practitioner it names")
            }
            newAliases[resource.key] = practitioner
            var person = patch(.person, key: practitioner)
            let roles = CareModel.spec(.person, "role")?.kind.allowedValues ?? []
            let concepts = element("code")?.items ?? []
            let ours = concepts.flatMap { codes($0, system: FHIRVocabulary.codeSystem("person-role")) }.first {
                roles.contains($0)
            }
            let hl7 = concepts.flatMap { codes($0, system: FHIRVocabulary.practitionerRole) }.compactMap {
                FHIRVocabulary.roleOfPractitionerRole[$0]
            }.first
            if let role = ours ?? hl7 {
                person.assign["role"] = .value(.string(role))
            } else if !concepts.isEmpty {
                note(.unmodelledCode, "code")
            }
            for location in element("location")?.items ?? [] {
                if let item = reference(location, "location") { person.add["sites", default: []].append(item) }
            }
            _ = element("active")
            identifiers(&person)
            try extensions(into: &person)
            contributions.append(person)
        }

        mutating func careTeam() throws(FHIRError) {
            var team = record(.team)
            if let name = element("name")?.string { team.assign["name"] = .value(.string(name)) }
            switch element("status")?.string {
            case "inactive", "suspended", "entered-in-error": team.assign["status"] = .value("inactive")
            default: team.assign["status"] = .value("active")
            }
            if let subject = reference(element("subject"), "subject") { team.assign["subgroup"] = subject }
            let leaderCode = FHIRVocabulary.codeSystem("team-role")
            for participant in element("participant")?.items ?? [] {
                guard let member = reference(participant["member"], "participant.member") else { continue }
                let isLeader = (participant["role"]?.items ?? []).contains {
                    codes($0, system: leaderCode).contains("leader")
                }
                if isLeader {
                    team.assign["leader"] = member
                } else {
                    team.add["members", default: []].append(member)
                }
            }
            if team.assign["leader"] == nil, let first = team.add["members"]?.first { team.assign["leader"] = first }
            identifiers(&team)
            try extensions(into: &team)
            contributions.append(team)
        }

        mutating func group() throws(FHIRError) {
            var subgroup = record(.subgroup)
            _ = element("type")
            _ = element("actual")
            let keys = codes(element("code"), system: FHIRVocabulary.codeSystem("subgroup-key"))
            if let key = keys.first ?? codes(resource.json["code"], system: nil).first {
                subgroup.assign["key"] = .value(.string(key))
            } else if let id = resource.json["id"]?.string {
                subgroup.assign["key"] = .value(.string(id))
            }
            if let name = element("name")?.string { subgroup.assign["label"] = .value(.string(name)) }
            active(&subgroup)
            identifiers(&subgroup)
            try extensions(into: &subgroup)
            if subgroup.assign["monthlyPaymentCents"] == nil {
                note(
                    .notKept,
                    "extension(\(FHIRVocabulary.extensionURL(.subgroup, "monthlyPaymentCents"))) missing, 0 kept"
                )
            }
            for member in element("member")?.items ?? [] {
                guard case .reference(let patient, _)? = reference(member["entity"], "member.entity") else { continue }
                var placement = patch(.patient, key: patient)
                placement.assign["subgroup"] = .reference(resource.key, element: "member.entity")
                contributions.append(placement)
            }
            contributions.insert(subgroup, at: 0)
        }

        mutating func patient() throws(FHIRError) {
            var patient = record(.patient)
            let name = try humanName()
            if let given = name.given { patient.assign["givenName"] = .value(.string(given)) }
            if let family = name.family { patient.assign["familyName"] = .value(.string(family)) }
            if let birthDate = try text("birthDate") {
                guard CalendarDate(birthDate) != nil else {
                    throw fail("birthDate", "not a full date YYYY-MM-DD; Outpost keeps full birth dates")
                }
                patient.assign["birthDate"] = .value(.string(birthDate))
            }
            if let gender = try text("gender") {
                guard ["male", "female", "other", "unknown"].contains(gender) else {
                    // Not quoted: a patient's sex is sensitive (docs/model.md), and errors never quote patient data.
                    throw fail("gender", "not a FHIR administrative gender (male, female, other, unknown)")
                }
                patient.assign["sex"] = .value(.string(gender))
            }
            identifiers(&patient, mrn: true)
            let contact = telecom()
            if let phone = contact.phone { patient.assign["phone"] = .value(.string(phone)) }
            if contact.email != nil { note(.notKept, "telecom") }
            if let address = address() { patient.assign["address"] = .value(.string(address)) }
            for communication in element("communication")?.items ?? [] {
                if let language = codes(communication["language"], system: FHIRVocabulary.bcp47).first,
                    patient.assign["preferredLanguage"] == nil
                {
                    patient.assign["preferredLanguage"] = .value(.string(language))
                } else {
                    note(.notKept, "communication")
                }
            }
            var status = "active"
            if let active = element("active")?.bool, !active { status = "inactive" }
            if let deceased = element("deceasedDateTime")?.string {
                guard let day = date(deceased) else { throw fail("deceasedDateTime", "not a date Outpost reads") }
                patient.assign["deceasedOn"] = .value(.string(day))
                status = "deceased"
            }
            if element("deceasedBoolean")?.bool == true { status = "deceased" }
            patient.assign["status"] = .value(.string(status))
            try extensions(into: &patient)
            // Outpost's export says a merged duplicate's link twice: as FHIR's `replaced-by` and in its extension.
            if patient.assign["mergedInto"] != nil { _ = element("link") }
            contributions.append(patient)
        }

        mutating func subject(_ name: String) throws(FHIRError) -> String {
            guard case .reference(let key, _)? = reference(element(name), name) else {
                throw fail(name, "missing; Outpost keeps it only for a patient")
            }
            guard key.hasPrefix("Patient/") || key.hasPrefix("urn:") else {
                throw fail(
                    name,
                    "names \(key.split(separator: "/").first ?? ""), not a Patient; Outpost keeps it only for a patient"
                )
            }
            return key
        }

        mutating func task() throws(FHIRError) {
            var task = record(.task)
            task.assign["patient"] = .reference(try subject("for"), element: "for")
            _ = element("intent")
            let kinds = CareModel.spec(.task, "kind")?.kind.allowedValues ?? []
            guard
                let kind = codes(element("code"), system: FHIRVocabulary.codeSystem("task-kind")).first(
                    where: kinds.contains
                )
            else {
                note(.unmodelledCode, "code")
                return skip()
            }
            task.assign["kind"] = .value(.string(kind))
            let statuses: [String: String] = [
                "requested": "requested", "received": "requested", "accepted": "requested", "draft": "requested",
                "ready": "ready", "in-progress": "in-progress", "on-hold": "on-hold", "completed": "completed",
                "cancelled": "cancelled", "rejected": "cancelled", "failed": "failed",
                "entered-in-error": "entered-in-error",
            ]
            guard let code = element("status")?.string, let status = statuses[code] else {
                throw fail("status", "missing or not a FHIR Task status")
            }
            if status != code { note(.unmodelledCode, "status") }
            task.assign["status"] = .value(.string(status))
            let priority = element("priority")?.string ?? "routine"
            guard ["routine", "urgent", "asap", "stat"].contains(priority) else {
                throw fail("priority", "'\(priority)' is not a FHIR request priority (routine, urgent, asap, stat)")
            }
            task.assign["priority"] = .value(.string(priority))
            if let title = element("description")?.string {
                task.assign["title"] = .value(.string(title))
            } else if let text = resource.json["code"]?["text"]?.string {
                task.assign["title"] = .value(.string(text))
            }
            if let end = element("restriction")?["period"]?["end"]?.string, let day = date(end) {
                task.assign["dueDate"] = .value(.string(day))
            }
            if let owner = reference(element("owner"), "owner"), case .reference(let key, _) = owner {
                if key.hasPrefix("Practitioner") {
                    task.assign["assignee"] = owner
                } else {
                    task.assign["team"] = owner
                }
            }
            for note in element("note")?.items ?? [] {
                if let text = note["text"]?.string { task.add["notes", default: []].append(.value(.string(text))) }
            }
            identifiers(&task)
            try extensions(into: &task)
            contributions.append(task)
        }

        /// Leaves the whole resource out: every element it had is accounted for by the caller's note.
        mutating func skip() {
            for (name, _) in resource.json.members { used.insert(name) }
        }

        mutating func observation() throws(FHIRError) {
            let patient = try subject("subject")
            guard let code = element("status")?.string else { throw fail("status", "missing") }
            let statuses = [
                "final": "final", "amended": "final", "corrected": "final", "entered-in-error": "entered-in-error",
            ]
            guard let status = statuses[code] else {
                note(.unmodelledCode, "status")
                return skip()
            }
            _ = element("category")
            guard
                let effective = element("effectiveDateTime")?.string ?? element("effectiveInstant")?.string
                    ?? element("effectivePeriod")?["start"]?.string
            else { throw fail("effective[x]", "missing; Outpost keeps when a measurement was taken") }
            _ = element("effectivePeriod")
            guard let effectiveAt = dateTime(effective) else {
                throw fail("effective[x]", "not a full date or date-time Outpost reads")
            }
            var base = record(.observation)
            base.assign["patient"] = .reference(patient, element: "subject")
            base.assign["status"] = .value(.string(status))
            base.assign["effectiveAt"] = .value(.string(effectiveAt))
            identifiers(&base)
            try extensions(into: &base)
            let modelled = Set(CareModel.spec(.observation, "code")?.kind.allowedValues ?? [])
            let loinc = codes(element("code"), system: FHIRVocabulary.loinc)
            if let code = loinc.first(where: modelled.contains) {
                guard let quantity = element("valueQuantity") else {
                    throw fail("valueQuantity", "missing; Outpost keeps measurements with a value and unit")
                }
                var observation = base
                guard try self.quantity(quantity, "valueQuantity", code: code, into: &observation) else {
                    return skip()
                }
                observation.assign["code"] = .value(.string(code))
                contributions.append(observation)
                if element("component") != nil { note(.notKept, "component") }
                return
            }
            var kept = 0
            var leftOut = 0
            for component in element("component")?.items ?? [] {
                guard let code = codes(component["code"], system: FHIRVocabulary.loinc).first(where: modelled.contains),
                    let quantity = component["valueQuantity"]
                else {
                    note(.unmodelledCode, "component.code")
                    continue
                }
                var observation = base
                observation.key = resource.key + "#" + code
                observation.outpostID = nil
                observation.otherKeys = base.otherKeys.map { $0 + "#" + code }
                guard try self.quantity(quantity, "component.valueQuantity", code: code, into: &observation) else {
                    leftOut += 1
                    continue
                }
                observation.assign["code"] = .value(.string(code))
                contributions.append(observation)
                kept += 1
            }
            if kept == 0 {
                // Components left out for their unit are counted as such, not as an unmodelled code.
                if leftOut == 0 { note(.unmodelledCode, "code") }
                return skip()
            }
            if loinc.contains(where: FHIRVocabulary.bloodPressurePanel.contains) == false {
                note(.unmodelledCode, "code")
            }
        }

        /// Reads a measurement of `code` into `observation`; `false` (noted, nothing read) when the model refuses the
        /// reading (``CareModel/checkReading(code:unit:value:)``): it is left out, not kept in a unit the scorecard
        /// would misread or with a value the code cannot have.
        mutating func quantity(
            _ quantity: JSON,
            _ element: String,
            code: String,
            into observation: inout FHIRContribution
        ) throws(FHIRError) -> Bool {
            guard let value = quantity["value"]?.number, !value.contains("e"), !value.contains("E") else {
                throw fail(element + ".value", "missing or not a plain decimal")
            }
            guard let unit = quantity["code"]?.string ?? quantity["unit"]?.string else {
                throw fail(element + ".code", "missing; Outpost keeps the UCUM unit")
            }
            // A unit Outpost does not record the code in, or a value the code cannot have in it (a slip at the
            // source): the reading is left out, counted by what was wrong.
            do throws(ModelError) {
                try CareModel.checkReading(code: code, unit: unit, value: value)
            } catch {
                if error.field == "observation.unit" {
                    note(.unmodelledCode, element + ".code")
                } else {
                    note(.notKept, element + ".value (outside what the code can be in \(unit))")
                }
                return false
            }
            observation.assign["value"] = .value(.string(value))
            observation.assign["unit"] = .value(.string(unit))
            return true
        }

        mutating func encounter() throws(FHIRError) {
            let patient = try subject("subject")
            guard let code = element("status")?.string else { throw fail("status", "missing") }
            guard ["finished", "cancelled", "entered-in-error"].contains(code) else {
                note(.unmodelledCode, "status")
                return skip()
            }
            var encounter = record(.encounter)
            encounter.assign["patient"] = .reference(patient, element: "subject")
            encounter.assign["status"] = .value(.string(code))
            let kinds = CareModel.spec(.encounter, "kind")?.kind.allowedValues ?? []
            let ours = (element("type")?.items ?? []).flatMap {
                codes($0, system: FHIRVocabulary.codeSystem("encounter-kind"))
            }
            .first(where: kinds.contains)
            let classCode = element("class")?["code"]?.string
            guard let kind = ours ?? classCode.flatMap({ FHIRVocabulary.kindOfClass[$0] }) else {
                note(.unmodelledCode, "class")
                return skip()
            }
            encounter.assign["kind"] = .value(.string(kind))
            guard let start = element("period")?["start"]?.string, let occurredAt = dateTime(start) else {
                throw fail("period.start", "missing or not a date-time; Outpost keeps when an encounter happened")
            }
            encounter.assign["occurredAt"] = .value(.string(occurredAt))
            let locations = element("location")?.items ?? []
            if let site = reference(locations.first?["location"], "location.location") {
                encounter.assign["site"] = site
            }
            if locations.count > 1 { note(.notKept, "location") }
            identifiers(&encounter)
            try extensions(into: &encounter)
            contributions.append(encounter)
        }

        /// Condition and AllergyIntolerance: an element of the patient's `conditions` or `allergies`.
        mutating func condition(field: String) throws(FHIRError) {
            let patient = try subject(field == "conditions" ? "subject" : "patient")
            var change = patch(.patient, key: patient)
            let value: String
            if field == "conditions" {
                let concept = resource.json["code"]
                guard let code = FHIRVocabulary.icd10.compactMap({ codes(concept, system: $0).first }).first else {
                    note(.unmodelledCode, "code")
                    return skip()
                }
                _ = element("code")
                value = code
            } else {
                let concept = element("code")
                guard
                    let text = concept?["text"]?.string ?? concept?["coding"]?.items.first?["display"]?.string
                        ?? concept?["coding"]?.items.first?["code"]?.string
                else { throw fail("code", "missing; Outpost keeps what the patient is allergic to") }
                value = text
            }
            let system = field == "conditions" ? FHIRVocabulary.conditionClinical : FHIRVocabulary.allergyClinical
            let clinical = codes(element("clinicalStatus"), system: system).first ?? "active"
            let verification = codes(element("verificationStatus"), system: nil).first ?? "confirmed"
            let isCurrent =
                ["active", "recurrence", "relapse"].contains(clinical)
                && !["refuted", "entered-in-error"].contains(verification)
            if isCurrent {
                change.add[field] = [.value(.string(value))]
            } else {
                change.remove[field] = [.value(.string(value))]
            }
            contributions.append(change)
        }
    }
}
