/// Where a resource came from: the file, and the NDJSON line or the Bundle entry.
public struct FHIROrigin: Sendable, Hashable, CustomStringConvertible {
    /// The file's name as given.
    public var file: String
    /// The 1-based line of an NDJSON file (or 1 for a single resource).
    public var line: Int?
    /// The Bundle entry's index, for resources in a Bundle.
    public var entry: Int?

    public init(file: String, line: Int? = nil, entry: Int? = nil) {
        self.file = file
        self.line = line
        self.entry = entry
    }

    /// `patients.ndjson:3` or `bundle.json entry[2]`.
    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        if let entry { text += " entry[\(entry)]" }
        return text
    }
}

/// One input refused: what was wrong, where, how to fix. Never quotes patient data.
public struct FHIRError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A resource read from an input, with its origin and the key that identifies it across imports.
public struct FHIRResource: Sendable {
    /// The resource, as read.
    public var json: JSON
    /// Its `resourceType`.
    public var type: String
    /// `Patient/123`, or the entry's `urn:uuid:` full URL when the resource has no id.
    public var key: String
    /// Where it came from.
    public var origin: FHIROrigin
}

/// Reads FHIR R4 JSON inputs: single resources, Bundles (collection, transaction, batch, searchset) and
/// Bulk Data NDJSON (one resource a line). Pure: the caller reads the files.
public struct FHIRReader {
    /// The resources read so far, in input order.
    public private(set) var resources: [FHIRResource] = []
    /// Bundle entries' full URLs (`urn:uuid:…`) to the key of the resource they name.
    public private(set) var fullURLs: [String: String] = [:]

    public init() {}

    /// Reads one input. `name` is how errors name it; a name ending `.ndjson` is read a line at a time.
    public mutating func read(name: String, bytes: [UInt8]) throws(FHIRError) {
        // A UTF-8 byte order mark (some Windows tools write one) is not JSON: skipped, as JSON readers may.
        let bytes = bytes.starts(with: Self.byteOrderMark) ? Array(bytes.dropFirst(3)) : bytes
        if name.hasSuffix(".ndjson") {
            var lineNumber = 0
            var start = 0
            while start <= bytes.count {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                lineNumber += 1
                if let resource = try Self.resource(line: bytes[start..<end], file: name, number: lineNumber) {
                    resources.append(resource)
                }
                start = end + 1
            }
            return
        }
        let json: JSON
        do {
            json = try JSON.parse(bytes)
        } catch {
            throw FHIRError(
                "\(name):\(error.line): invalid JSON at column \(error.column): \(error.reason); check the file"
            )
        }
        guard json["resourceType"]?.string == "Bundle" else {
            try add(json, origin: FHIROrigin(file: name, line: 1), fullURL: nil)
            return
        }
        let bundleType = json["type"]?.string ?? ""
        guard ["collection", "transaction", "batch", "searchset"].contains(bundleType) else {
            throw FHIRError(
                "\(name): Bundle.type: '\(bundleType)' is not a Bundle Outpost imports (collection, transaction, "
                    + "batch, searchset); export the resources in one of those"
            )
        }
        for (index, entry) in (json["entry"]?.items ?? []).enumerated() {
            let origin = FHIROrigin(file: name, entry: index)
            guard let resource = entry["resource"] else {
                throw FHIRError("\(origin): Bundle.entry.resource: missing; every entry must hold a resource")
            }
            try add(resource, origin: origin, fullURL: entry["fullUrl"]?.string)
        }
    }

    private mutating func add(_ json: JSON, origin: FHIROrigin, fullURL: String?) throws(FHIRError) {
        let resource = try Self.resource(json, origin: origin, fullURL: fullURL)
        if let fullURL, !fullURL.isEmpty { fullURLs[fullURL] = resource.key }
        resources.append(resource)
    }

    /// The resource on one line of an NDJSON file (`number` is 1-based), or `nil` for a blank line: for reading a
    /// large file a line at a time, holding one resource at a time.
    public static func resource(line: ArraySlice<UInt8>, file: String, number: Int) throws(FHIRError) -> FHIRResource? {
        // A file's byte order mark, before its first line.
        let line = number == 1 && line.starts(with: byteOrderMark) ? line.dropFirst(3) : line
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return nil }
        let origin = FHIROrigin(file: file, line: number)
        let json: JSON
        do {
            json = try JSON.parse(line)
        } catch {
            throw FHIRError(
                "\(origin): invalid JSON at column \(error.column): \(error.reason); each line of an NDJSON "
                    + "file must be one whole FHIR resource"
            )
        }
        return try resource(json, origin: origin, fullURL: nil)
    }

    static func resource(_ json: JSON, origin: FHIROrigin, fullURL: String?) throws(FHIRError) -> FHIRResource {
        guard case .object = json else {
            throw FHIRError("\(origin): not a JSON object; a FHIR resource is an object with a resourceType")
        }
        guard let type = json["resourceType"]?.string else {
            throw FHIRError(
                json["resourceType"] == nil
                    ? "\(origin): resourceType: missing; every FHIR resource names its type"
                    : "\(origin): resourceType: not a JSON string; write the type's name, like \"Patient\""
            )
        }
        guard FHIRVocabulary.importedTypes.contains(type) else {
            throw FHIRError(
                "\(origin): resourceType: '\(type)' is not a resource Outpost imports ("
                    + FHIRVocabulary.importedTypes.sorted().joined(separator: ", ") + "); remove it from the input"
            )
        }
        let key: String
        if let id = json["id"]?.string {
            guard Self.isValidID(id) else {
                throw FHIRError(
                    "\(origin): \(type).id: not a FHIR id (1 to 64 of A-Z a-z 0-9 - .); fix the resource's id"
                )
            }
            key = "\(type)/\(id)"
        } else if let fullURL, !fullURL.isEmpty {
            key = fullURL
        } else {
            throw FHIRError(
                "\(origin): \(type).id: missing, and no Bundle fullUrl; Outpost keeps the id to recognise the "
                    + "resource when it is imported again: give it an id"
            )
        }
        return FHIRResource(json: json, type: type, key: key, origin: origin)
    }

    /// The UTF-8 byte order mark.
    public static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// Whether `id` is a FHIR id: 1 to 64 of letters, digits, `-` and `.`.
    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64
            && id.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D
                    || $0 == 0x2E
            }
    }
}

/// Inputs that an import reads twice, a resource at a time (once for the resources' identities and references,
/// once to write them, that part by part, once per creation rank when the input is not in that order), so that the
/// whole input is never in memory at once. Each reading must give the same resources, each with the Bundle full
/// URLs of its input (empty for NDJSON).
public struct FHIRInputs {
    /// A part of the input (a file): calls `body` with each of its resources, in order.
    public typealias Part = (_ body: (FHIRResource, _ fullURLs: [String: String]) throws -> Void) throws -> Void

    /// The input's parts, in input order; each can be read on its own.
    public let parts: [Part]

    public init(parts: [Part]) {
        self.parts = parts
    }

    /// An input of one part.
    public init(_ read: @escaping Part) {
        parts = [read]
    }

    /// The resources a reader holds.
    public init(_ reader: FHIRReader) {
        self.init { body in
            for resource in reader.resources { try body(resource, reader.fullURLs) }
        }
    }

    /// Calls `body` with every resource, in input order.
    public func read(_ body: (FHIRResource, _ fullURLs: [String: String]) throws -> Void) throws {
        for part in parts { try part(body) }
    }
}
