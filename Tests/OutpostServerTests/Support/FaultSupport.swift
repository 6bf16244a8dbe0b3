import Foundation
import GRDB
import Logging
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A practice small enough for fault tests (a few dozen changes): one site, subgroup, person and team, three
/// patients with names and birth dates no other fixture uses (so tests can look for them in logs and
/// metrics), and one task.
enum TinyPractice {
    static let practice = "pra_01JWMCKG0116Q4G4JXDH22YAN4"
    static let site = "sit_01JWMCKG021VKCN0WEWEXE0EQM"
    static let subgroup = "sub_01JWMCKG05ZCENT8QR5RWJN9WM"
    static let person = "per_01JWMCKG09N7RQ4FH82GBPR87Q"
    static let team = "tea_01JWMCKG0EZVDB7887J503VJMX"
    static let patients = [
        "pat_01JWMCKG1754K9T2F6C8TTXJQ1", "pat_01JWMCKG1A2G3YVSCH3TV1YGJE", "pat_01JWMCKG1DB5HMCX60ZXD0Z6GZ",
    ]
    static let task = "tsk_01JWMCKG1BY8F26N8A4JNVV0VA"

    /// Patient data that must never appear in logs, metrics or another practice's answers.
    static let sensitive = [
        "Zephyrine", "Quillfeather", "Ottoline", "Marchbanks", "Peregrine", "Thistlewood", "1961-07-23",
        "1948-11-02", "1990-03-14", "555-0177",
    ]

    static let json = """
        {"format":"outpost-practice","version":1,"practice":{"id":"\(practice)","name":"Tiny Fault Clinic"},\
        "records":[
        {"type":"practice","id":"\(practice)","fields":{"name":"Tiny Fault Clinic","status":"active"}},
        {"type":"site","id":"\(site)","fields":{"kind":"clinic","name":"Fault Clinic","status":"active"}},
        {"type":"subgroup","id":"\(subgroup)","fields":{"key":"healthy","label":"Healthy",\
        "monthlyPaymentCents":500,"status":"active"}},
        {"type":"person","id":"\(person)","fields":{"name":"Staff One","role":"physician","status":"active"}},
        {"type":"team","id":"\(team)","fields":{"leader":"\(person)","name":"Team One","status":"active",\
        "subgroup":"\(subgroup)"}},
        {"type":"patient","id":"\(patients[0])","fields":{"birthDate":"1961-07-23","familyName":"Quillfeather",\
        "givenName":"Zephyrine","phone":"(406) 555-0177","primaryTeam":"\(team)","sex":"female",\
        "status":"active","subgroup":"\(subgroup)"}},
        {"type":"patient","id":"\(patients[1])","fields":{"birthDate":"1948-11-02","familyName":"Marchbanks",\
        "givenName":"Ottoline","primaryTeam":"\(team)","sex":"female","status":"active",\
        "subgroup":"\(subgroup)"}},
        {"type":"patient","id":"\(patients[2])","fields":{"birthDate":"1990-03-14","familyName":"Thistlewood",\
        "givenName":"Peregrine","primaryTeam":"\(team)","sex":"male","status":"active",\
        "subgroup":"\(subgroup)"}},
        {"type":"task","id":"\(task)","fields":{"kind":"outreach","patient":"\(patients[0])",\
        "priority":"routine","status":"requested","team":"\(team)","title":"Call about the visit"}}
        ]}
        """

    /// Writes the dump to `directory` and returns its path, for `outpost import`.
    static func write(in directory: TemporaryDirectory) throws -> String {
        let path = directory.path("tiny-practice.json")
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Imports the practice into an in-process replica.
    static func load(into replica: CareStore) throws {
        try replica.importPractice(try PracticeDump.decode(Array(json.utf8)))
    }

    /// Adds a second team in `replica` and makes it the last patient's primary team, so a token scoped to
    /// ``team`` sees two of the three patients; returns the new team's id.
    static func addSecondTeam(in replica: CareStore) throws -> String {
        let team = try replica.create(
            .team,
            fields: [
                "name": ["Team Two"], "status": ["active"], "leader": [.string(person)],
                "subgroup": [.string(subgroup)],
            ]
        )
        _ = try replica.update([
            .assign(RecordRef(type: "patient", id: patients[2]), "primaryTeam", .string(team.id))
        ])
        return team.id
    }
}

/// A wall clock a fixed offset from the system's (a device whose clock runs ahead).
struct OffsetWallClock: WallClock {
    var offsetMillis: Int64

    func nowMillis() -> UInt64 {
        UInt64(Int64(Date().timeIntervalSince1970 * 1000) + offsetMillis)
    }
}

/// The system clock, in milliseconds.
func nowMillis() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

/// A fault the test injected.
struct InjectedFault: Error, CustomStringConvertible {
    var description: String
}

/// Forwards every exchange to a real transport and calls a hook before and after it with the exchange's
/// number among those to the same path (from 1), so a test can kill the server or lose an answer at an exact
/// point of a sync.
final class FaultTransport: SyncTransport {
    typealias Before = @Sendable (TransportRequest, Int) throws -> Void
    typealias After = @Sendable (TransportRequest, Int, TransportResponse) throws -> Void
    /// An answer given by this transport instead of the server's (`nil`: the server answers).
    typealias Answer = @Sendable (TransportRequest, Int) -> TransportResponse?

    let base: any SyncTransport
    let before: Before
    let after: After
    let answer: Answer
    private let counts = Mutex<[String: Int]>([:])

    init(
        _ base: any SyncTransport,
        before: @escaping Before = { _, _ in },
        after: @escaping After = { _, _, _ in },
        answer: @escaping Answer = { _, _ in nil }
    ) {
        self.base = base
        self.before = before
        self.after = after
        self.answer = answer
    }

    /// How many exchanges to `path` were attempted.
    func count(_ path: String) -> Int { counts.withLock { $0[path, default: 0] } }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        let number = counts.withLock { counts in
            counts[request.path, default: 0] += 1
            return counts[request.path, default: 0]
        }
        try before(request, number)
        let response: TransportResponse
        if let given = answer(request, number) {
            response = given
        } else {
            response = try await base.send(request)
        }
        try after(request, number, response)
        return response
    }
}

/// An in-process replica: a ``CareStore`` in a temporary folder, synced through ``SyncEngine``.
struct LocalReplica {
    let care: CareStore

    init(
        _ name: String,
        in directory: TemporaryDirectory,
        wallClock: any WallClock = OffsetWallClock(offsetMillis: 0)
    )
        throws
    {
        care = try CareStore.create(
            at: directory.path("\(name).sqlite"),
            replicaID: ReplicaID(name),
            wallClock: wallClock
        )
    }

    init(openingAt path: String) throws {
        care = try CareStore.open(at: path, key: { () throws(ClientError) in try .keyFile(at: TestKeyFile.path) })
    }

    var store: LocalStore { care.store }

    /// An engine over this replica that talks through `transport`; transient failures are retried `retries`
    /// times with a token backoff (the tests decide when the server comes back). `pageSize` is both the records
    /// of a snapshot page and the changes of a pull page. A replica of the whole practice pulls beside a push of at
    /// least `pullBesidePushFrom` changes.
    func engine(
        _ transport: any SyncTransport,
        pushBatch: Int = 1_000,
        pageSize: Int = 2_000,
        retries: Int = 0,
        encoding: SyncEngine.Encoding = .binary,
        binaryLayout: UInt8 = BinaryWire.latestLayout,
        pullBesidePushFrom: Int = SyncEngine.Options().pullBesidePushFrom,
        progress: (@Sendable (SyncProgress) -> Void)? = nil,
        retrying: (@Sendable (SyncRetry) -> Void)? = nil
    ) -> SyncEngine {
        var options = SyncEngine.Options()
        options.progress = progress
        options.retrying = retrying
        options.pullBesidePushFrom = pullBesidePushFrom
        options.encoding = encoding
        options.binaryLayout = binaryLayout
        options.pushBatch = pushBatch
        options.pageSize = pageSize
        options.pullPageSize = pageSize
        options.retries = retries
        options.backoff = .milliseconds(1)
        return SyncEngine(store: store, transport: transport, options: options, logger: Logger(label: "test"))
    }

    func export() throws -> String { try care.exportCanonicalJSON() }
}

extension TestServer {
    /// The real transport to this server with `token`.
    func transport(_ token: String) -> HTTPTransport {
        HTTPTransport(baseURL: url, token: token)
    }

    /// The process id of the running server.
    var pid: Int32 { process?.processIdentifier ?? 0 }

    /// Everything the server processes wrote to stderr and stdout so far.
    var logs: String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.url.path)) ?? []
        return names.filter { $0.hasPrefix("server") }.sorted()
            .map { (try? String(contentsOfFile: directory.path($0), encoding: .utf8)) ?? "" }
            .joined(separator: "\n")
    }

    /// Sends a request with any headers and returns the status, the response headers and the body.
    func raw(
        _ method: String,
        _ path: String,
        headers: [String: String] = [:],
        body: Data? = nil,
        timeout: Double = 30
    ) async throws -> RawAnswer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!, timeoutInterval: timeout)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http?.allHeaderFields ?? [:] {
            fields[String(describing: name).lowercased()] = String(describing: value)
        }
        return RawAnswer(status: http?.statusCode ?? 0, headers: fields, body: data)
    }

    /// Every change of the token's practice feed, read page by page over raw HTTP.
    func feed(_ token: String, pageSize: Int = 1_000) async throws -> [Change] {
        var since = "0"
        var changes: [Change] = []
        while true {
            let (status, body) = try await request("GET", "/v1/changes?since=\(since)&limit=\(pageSize)", token: token)
            try #require(status == 200, "pull: \(status) \(String(decoding: body, as: UTF8.self))")
            let page = try Wire.makeDecoder().decode(PullResponse.self, from: body)
            changes += page.changes
            since = page.checkpoint
            if !page.hasMore { return changes }
        }
    }

    /// What the token's practice holds: its whole feed and snapshot, as the server sends them. Equal before
    /// and after a refused request means the request stored nothing.
    func holdings(_ token: String) async throws -> Data {
        let (feedStatus, feed) = try await request("GET", "/v1/changes?since=0&limit=5000", token: token)
        let (snapshotStatus, snapshot) = try await request("GET", "/v1/snapshot?limit=5000", token: token)
        try #require(feedStatus == 200 && snapshotStatus == 200)
        // The snapshot's checkpoint is the feed head, so a stored change shows in both.
        return feed + Data("\n".utf8) + snapshot
    }

    /// Issues a token with `--json` and returns its secret and id.
    func issueTokenEntry(
        role: String,
        practice: String? = nil,
        extra: [String] = []
    ) async throws -> (
        secret: String, id: String
    ) {
        let text = try await issueToken(role: role, practice: practice, extra: extra + ["--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let token = try #require(object["token"] as? [String: Any])
        return (try #require(object["secret"] as? String), try #require(token["id"] as? String))
    }
}

/// An HTTP answer with its headers (names lowercased).
struct RawAnswer {
    var status: Int
    var headers: [String: String]
    var body: Data

    /// The status and body, as ``TestServer/request(_:_:token:body:)`` returns them.
    var pair: (Int, Data) { (status, body) }
}

/// Checks that an answer is a JSON error body with `status` and `code`, and returns its `error` object.
@discardableResult
func expectRefusal(
    _ answer: (Int, Data),
    status: Int,
    code: String,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> [String: Any] {
    let text = String(decoding: answer.1, as: UTF8.self)
    #expect(answer.0 == status, "expected \(status) \(code), got \(answer.0): \(text)", sourceLocation: sourceLocation)
    let object = try #require(
        try? JSONSerialization.jsonObject(with: answer.1) as? [String: Any],
        "not a JSON object: \(text)",
        sourceLocation: sourceLocation
    )
    #expect(object.keys.sorted() == ["error"], "\(text)", sourceLocation: sourceLocation)
    let error = try #require(object["error"] as? [String: Any], "\(text)", sourceLocation: sourceLocation)
    #expect(error["code"] as? String == code, "\(text)", sourceLocation: sourceLocation)
    let message = error["message"] as? String ?? ""
    #expect(!message.isEmpty, "no message: \(text)", sourceLocation: sourceLocation)
    return error
}

/// Encodes a wire message.
func wire(_ message: some Encodable) throws -> Data {
    try Wire.makeEncoder().encode(message)
}

/// A JSON object as bytes.
func jsonData(_ object: Any) throws -> Data {
    try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
}

/// A wire message as a mutable JSON object, to forge variants of it.
func jsonObject(_ message: some Encodable) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: wire(message)) as? [String: Any])
}

/// A change made by hand, stamped now, signed by the tiny practice's person unless told otherwise.
func change(
    _ id: String,
    _ type: String,
    _ record: String,
    _ field: String,
    _ value: Value,
    operation: OutpostCRDT.Operation = .assign,
    replaces: [ChangeID] = [],
    millis: UInt64 = nowMillis(),
    author: String = TinyPractice.person,
    site: String? = nil
) throws -> Change {
    Change(
        id: try #require(ChangeID(id)),
        record: RecordRef(type: type, id: record),
        field: field,
        operation: operation,
        value: value,
        replaces: replaces,
        clock: Timestamp(millis: millis),
        author: author,
        site: site
    )
}

/// The write lock of a device's store, held by a second connection: a test takes it (`BEGIN IMMEDIATE`) in one of
/// a transport's hooks and releases it in another, so what the engine writes in between waits for the release,
/// up to the store's busy timeout.
final class StoreWriteLock: Sendable {
    private let connection: DatabaseQueue
    private let released = Mutex(false)

    init(path: String) throws {
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        connection = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Whether ``release()`` ran.
    var wasReleased: Bool { released.withLock { $0 } }

    func take() throws {
        try connection.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
    }

    func release() throws {
        try connection.inDatabase { db in try db.execute(sql: "COMMIT") }
        released.withLock { $0 = true }
    }

    /// A transport over `base` that takes the lock once the first request to `path` is answered and releases it
    /// as the second is sent.
    func held(over base: any SyncTransport, between path: String) -> FaultTransport {
        FaultTransport(
            base,
            before: { [self] request, number in
                guard request.path == path, number == 2 else { return }
                try release()
            },
            after: { [self] request, number, _ in
                guard request.path == path, number == 1 else { return }
                try take()
            }
        )
    }
}

extension LocalStore {
    /// The sizes of the next `count` push batches of at most `limit` changes a sync sends from this outbox: they end
    /// before a new record's run where they can (``pendingBatch(after:limit:wholeRecords:beginsPush:)``), so may hold
    /// fewer than `limit`.
    func pushBatchSizes(limit: Int, count: Int) throws -> [Int] {
        var sizes: [Int] = []
        var after: UInt64?
        for _ in 0..<count {
            let batch = try pendingBatch(after: after, limit: limit, wholeRecords: true).changes
            guard let last = batch.last else { break }
            sizes.append(batch.count)
            after = last.id.counter
        }
        return sizes
    }
}
