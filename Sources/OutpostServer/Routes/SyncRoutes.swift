import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import OutpostCRDT
import OutpostModel
import OutpostProtocol
import ServiceLifecycle

/// The `/v1` endpoints: session, push, changes and snapshot, each authenticated by a bearer token.
struct SyncRoutes: Sendable {
    let store: any SyncStorage
    let configuration: ServerConfiguration
    let notifier: FeedNotifier
    let clock: any WallClock
    let throttle: AuthThrottle
    let prefetch: PagePrefetch
    let kept: SnapshotCache

    func register(on router: Router<OutpostRequestContext>) {
        router.get(.init(stringLiteral: Wire.Path.session)) { request, context in
            try await session(request, context)
        }
        router.post(.init(stringLiteral: Wire.Path.push)) { request, context in
            try await push(request, context)
        }
        router.get(.init(stringLiteral: Wire.Path.changes)) { request, context in
            try await changes(request, context)
        }
        router.get(.init(stringLiteral: Wire.Path.snapshot)) { request, context in
            try await snapshot(request, context)
        }
    }

    /// The token presented with the request, if it may be used now. Failed attempts are throttled per client
    /// address and per token prefix (``AuthThrottle``).
    func authenticate(_ request: Request, _ context: OutpostRequestContext) async throws(ServerError) -> TokenEntry {
        let now = clock.nowMillis()
        let address = context.remoteAddress?.ipAddress ?? "unknown"
        if let wait = throttle.retryAfter(.address(address), now: now) {
            throw Self.throttled(wait, "this address")
        }
        if let version = request.headers[HTTPField.Name(Wire.protocolHeader)!],
            version != String(OutpostVersion.wireProtocol)
        {
            throw ServerError(
                .unsupportedProtocol,
                .badRequest,
                "this server speaks protocol \(OutpostVersion.wireProtocol), not \(version); update the client",
                field: Wire.protocolHeader
            )
        }
        // The scheme is case-insensitive (RFC 9110 section 11.1): `Bearer`, `bearer` and `BEARER` are one scheme.
        guard let header = request.headers[.authorization],
            let space = header.firstIndex(of: " "),
            header[..<space].lowercased() == "bearer"
        else {
            throw ServerError.unauthorized("no bearer token; send 'Authorization: Bearer <token>'")
        }
        let secret = TokenSecret(String(header[space...]).trimmingCharacters(in: .whitespaces))
        let prefix = AuthThrottle.prefix(of: secret.text)
        guard let token = try await store.token(hash: secret.hash) else {
            throttle.recordFailure(address: address, prefix: prefix, now: now)
            if let wait = throttle.retryAfter(.prefix(prefix), now: now) {
                throw Self.throttled(wait, "tokens starting like this one")
            }
            throw ServerError.unauthorized(
                "unknown token; check it was copied whole, or ask for a new one",
                tokenPresented: true
            )
        }
        if let refusal = token.refusal(at: now) {
            throttle.recordFailure(address: address, prefix: nil, now: now)
            throw ServerError.unauthorized(refusal, tokenPresented: true)
        }
        return token
    }

    /// The `429` for a throttled address or token prefix.
    static func throttled(_ waitMillis: UInt64, _ who: String) -> ServerError {
        let seconds = Int((waitMillis + 999) / 1000)
        return ServerError.rateLimited(
            "too many failed authentications from \(who); wait \(seconds) s (Retry-After) and check the token",
            retryAfterSeconds: max(1, seconds)
        )
    }

    func session(_ request: Request, _ context: OutpostRequestContext) async throws -> Response {
        let token = try await authenticate(request, context)
        let info = SessionInfo(
            protocolVersion: OutpostVersion.wireProtocol,
            serverVersion: OutpostVersion.software,
            practice: token.practice,
            role: token.role,
            scope: token.scope,
            serverTimeMillis: clock.nowMillis(),
            maxClockSkewMillis: configuration.maxClockSkewMillis,
            limits: configuration.limits,
            epoch: try await store.epoch(),
            binaryLayout: Int(BinaryWire.latestLayout),
            person: token.person
        )
        return try ServerError.jsonResponse(info, status: .ok)
    }

    func push(_ request: Request, _ context: OutpostRequestContext) async throws -> Response {
        let token = try await authenticate(request, context)
        let limits = configuration.limits
        let contentType = request.headers[.contentType]
        let isBinary = contentType.map { BinaryWire.isBinaryContentType($0) } ?? false
        guard let contentType, isBinary || Wire.isJSONContentType(contentType) else {
            throw ServerError(
                .unsupportedMediaType,
                .unsupportedMediaType,
                request.headers[.contentType] == nil
                    ? "the push has no Content-Type; send 'Content-Type: \(Wire.contentType)'"
                    : "the push's Content-Type is not \(Wire.contentType) or \(BinaryWire.contentType); send the "
                        + "body as UTF-8 JSON with 'Content-Type: \(Wire.contentType)'",
                field: "Content-Type"
            )
        }
        // The headers first: a layout-3 push's body is read in the storage's transaction.
        let report = try Self.deviceReport(request)
        let perChange = try Self.wantsPerChangeRefusals(request)
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: limits.maxBodyBytes)
        } catch {
            throw ServerError.tooLarge(
                "the body is larger than \(limits.maxBodyBytes) bytes; push in smaller batches"
            )
        }
        let bytes = try Self.decodedBody(body, of: request, limit: limits.maxBodyBytes)
        let maxChanges = limits.maxPushChanges
        let incoming: IncomingPush
        if isBinary {
            // Layout 3: the records named by abbreviation are looked up among the practice's, and the push is read
            // with them (the judge and storage see full ids only), in the push's transaction.
            let abbreviations: [RecordAbbreviation]
            do {
                abbreviations = try BinaryWire.abbreviations(in: bytes, kind: .pushRequest)
            } catch {
                throw Self.malformedBinaryPush(error)
            }
            // Each is a look-up: no more than a push may hold changes (a record a change names).
            guard abbreviations.count <= maxChanges else {
                throw ServerError.tooLarge(
                    "\(abbreviations.count) records named by abbreviation in one push; send at most \(maxChanges) "
                        + "changes per push"
                )
            }
            incoming =
                abbreviations.isEmpty
                ? .decoded(try Self.binaryPush(bytes, resolved: [], maxChanges: maxChanges))
                : .abbreviated(abbreviations) { resolved throws(ServerError) in
                    try Self.binaryPush(bytes, resolved: resolved, maxChanges: maxChanges)
                }
        } else {
            let push: PushRequest
            do {
                push = try Wire.decodeRequest(PushRequest.self, from: Data(bytes))
            } catch let error as StrictJSON.Failure {
                throw ServerError.malformed("the body is not strict JSON (RFC 8259, UTF-8) \(error)")
            } catch let error as DecodingError {
                throw ServerError.malformed("the body is not a push message: \(Self.describe(error))")
            }
            try Self.checkCount(push, maxChanges: maxChanges)
            incoming = .decoded(push)
        }
        // A push of changes from another epoch is refused in the push's transaction, before anything is stored
        // (``EpochRule/checkPush(carriesChanges:deviceEpoch:epoch:)``).
        let outcome = try await store.push(
            incoming,
            token: token,
            report: report,
            now: clock.nowMillis(),
            maxClockSkewMillis: configuration.maxClockSkewMillis,
            perChange: perChange,
            deviceEpoch: Self.deviceEpoch(request)
        )
        // A purge moved to a new feed position (erasing records given to a purged patient) is announced by pulls,
        // as changes are: waiting pulls wake for either.
        if outcome.response.accepted > 0 || outcome.movedPurge { await notifier.notify(token.practice) }
        if outcome.response.accepted > 0 {
            Counter(label: "outpost_changes_accepted_total").increment(by: outcome.response.accepted)
        }
        if outcome.response.erased > 0 {
            // Edits to patients a legal purge erased, made on devices that had not heard of it: dropped.
            Counter(label: "outpost_changes_erased_total").increment(by: outcome.response.erased)
        }
        if outcome.newConflicts > 0 || outcome.resolvedConflicts > 0 {
            Gauge(label: "outpost_open_conflicts").record(try await store.openConflictCount(practice: nil))
        }
        context.logger.info(
            "push",
            metadata: [
                "replica": "\(outcome.replica)", "token": "\(token.id)", "accepted": "\(outcome.response.accepted)",
                "duplicates": "\(outcome.response.duplicates)", "newConflicts": "\(outcome.newConflicts)",
                "refused": "\(outcome.response.refused.count)", "erased": "\(outcome.response.erased)",
            ]
        )
        return try ServerError.jsonResponse(outcome.response, status: .ok)
    }

    /// A binary push read with the ids its abbreviations resolved to (empty when it has none): a record not
    /// resolved, or not to the record the device meant, is `409 unresolved` (the device sends full ids again);
    /// anything else wrong is `400 malformed_request`.
    static func binaryPush(_ bytes: [UInt8], resolved: [String?], maxChanges: Int) throws(ServerError) -> PushRequest {
        let push: PushRequest
        do {
            push = try PushRequest(binary: bytes, resolved: resolved)
        } catch  where error.isUnresolved {
            throw ServerError.unresolved
        } catch {
            throw malformedBinaryPush(error)
        }
        try checkCount(push, maxChanges: maxChanges)
        return push
    }

    /// A binary push that cannot be read (`400 malformed_request`), saying what is wrong and where.
    static func malformedBinaryPush(_ error: BinaryWire.Failure) -> ServerError {
        ServerError.malformed("the body is not a binary push message (\(BinaryWire.contentType)): \(error)")
    }

    /// Refuses a push of more than `maxChanges` changes (`413`).
    static func checkCount(_ push: PushRequest, maxChanges: Int) throws(ServerError) {
        guard push.changes.count <= maxChanges else {
            throw ServerError.tooLarge("\(push.changes.count) changes in one push; send at most \(maxChanges) per push")
        }
    }

    /// Whether a push asks for per-change refusals (``Wire/refusalsHeader``): absent is all or nothing, as for
    /// every client before it; a value other than ``Wire/refusalsPerChange`` is refused, so a typo never makes a
    /// client believe it gets per-change answers.
    static func wantsPerChangeRefusals(_ request: Request) throws(ServerError) -> Bool {
        guard let name = HTTPField.Name(Wire.refusalsHeader), let value = request.headers[name] else { return false }
        guard value.trimmingCharacters(in: .whitespaces).lowercased() == Wire.refusalsPerChange else {
            throw ServerError.parameter(
                Wire.refusalsHeader,
                "\(Wire.refusalsHeader) must be '\(Wire.refusalsPerChange)' (or absent, for an all-or-nothing push)"
            )
        }
        return true
    }

    func changes(_ request: Request, _ context: OutpostRequestContext) async throws -> Response {
        let token = try await authenticate(request, context)
        let query = request.uri.queryParameters
        let since = try Self.checkpoint(query["since"].map(String.init))
        let limit = try Self.integer(query, "limit", default: configuration.limits.maxPageSize)
        guard limit >= 1, limit <= configuration.limits.maxPageSize else {
            throw ServerError.parameter("limit", "limit must be 1 to \(configuration.limits.maxPageSize)")
        }
        let wait = try Self.integer(query, "wait", default: 0)
        guard wait >= 0, wait <= configuration.limits.maxWaitSeconds else {
            throw ServerError.parameter("wait", "wait must be 0 to \(configuration.limits.maxWaitSeconds) seconds")
        }
        let replica = try await claimedReplica(query, token: token)
        let report = try Self.deviceReport(request)
        let deviceEpoch = Self.deviceEpoch(request)
        let store = store
        let clock = clock
        // The checkpoint's epoch, head and floor are checked in the page's own transaction.
        func fetch() async throws(ServerError) -> FeedPage {
            try await store.pull(
                token: token,
                replica: replica,
                report: report,
                since: since,
                limit: limit,
                now: clock.nowMillis(),
                deviceEpoch: deviceEpoch
            )
        }
        var page = try await fetch()
        if page.isEmpty && wait > 0 {
            let generation = await notifier.generation(of: token.practice)
            page = try await fetch()
            if page.isEmpty {
                // A graceful shutdown releases every waiting pull at once rather than after its wait.
                let notifier = notifier
                await withGracefulShutdownHandler {
                    await notifier.wait(token.practice, after: generation, timeout: .seconds(wait))
                } onGracefulShutdown: {
                    Task { await notifier.close() }
                }
                page = try await fetch()
            }
        }
        Counter(label: "outpost_changes_served_total").increment(by: page.changes.count)
        let message = PullResponse(
            changes: page.changes,
            checkpoint: String(page.checkpoint),
            hasMore: page.hasMore,
            records: page.records,
            removed: page.removed,
            leftScope: page.leftScope
        )
        if let layout = Self.binaryLayout(request) {
            // Layout 3: the records the device holds already are named by abbreviation.
            let held = layout >= 3 ? page.recordsHeld(since: since) : []
            return Self.pageResponse(
                message.binaryEncoded(layout: layout) { held.contains($0) },
                contentType: BinaryWire.contentType,
                to: request
            )
        }
        return Self.pageResponse(try Wire.makeEncoder().encode(message), contentType: Wire.contentType, to: request)
    }

    func snapshot(_ request: Request, _ context: OutpostRequestContext) async throws -> Response {
        let token = try await authenticate(request, context)
        let query = request.uri.queryParameters
        let limit = try Self.integer(query, "limit", default: configuration.limits.maxPageSize)
        guard limit >= 1, limit <= configuration.limits.maxPageSize else {
            throw ServerError.parameter("limit", "limit must be 1 to \(configuration.limits.maxPageSize)")
        }
        // The epoch and the practice's feed as one read sees them: for the cursor's checks and the kept pages.
        let facts = try await store.feedFacts(practice: token.practice)
        var cursor: RecordRef?
        var checkpoint: Int64?
        if let after = query["after"] {
            try EpochRule.checkSnapshotCursor(deviceEpoch: Self.deviceEpoch(request), epoch: facts.epoch)
            (checkpoint, cursor) = try Self.snapshotCursor(String(after), head: facts.head)
            // A cursor below the compacted feed's floor would end in a checkpoint the feed cannot serve.
            if let checkpoint, !CompactionPlanner.isServable(since: checkpoint, floor: facts.floor) {
                throw ServerError.belowFloor(checkpoint, floor: facts.floor, field: "after")
            }
        }
        let replica = try await claimedReplica(query, token: token)
        // `own=skip`: leave out the records only this replica wrote (its first bootstrap, after its first push).
        var sparingOwn = false
        if let own = query["own"] {
            guard own == "skip", replica != nil else {
                throw ServerError.parameter(
                    "own",
                    "own must be 'skip' (leave out the records only this replica wrote), with replica= naming it"
                )
            }
            sparingOwn = true
        }
        let key = PagePrefetch.Key(
            token: token,
            replica: replica,
            checkpoint: checkpoint,
            after: cursor,
            limit: limit,
            sparingOwn: sparingOwn,
            layout: Self.binaryLayout(request),
            gzip: Self.acceptsGzip(request)
        )
        // A whole-practice page may have been sent to a device before (``SnapshotCache``): as long as the store
        // still serves its checkpoint, the same bytes are sent again.
        var chain: SnapshotCache.ChainKey?
        var cached: PagePrefetch.Page?
        if token.scope.isWholePractice, !sparingOwn {
            let form = SnapshotCache.ChainKey(
                practice: token.practice,
                limit: limit,
                layout: key.layout,
                gzip: key.gzip
            )
            chain = form
            cached = kept.page(form, checkpoint: checkpoint, after: cursor, facts: facts)
        }
        let sent: PagePrefetch.Page
        var built = "cached"
        if let cached {
            sent = cached
            // A page built ahead for this request (before the chain kept it) is not needed.
            if cursor != nil { prefetch.take(key, now: clock.nowMillis())?.cancel() }
        } else {
            // A page after the first was built ahead when the page before it was sent (``PagePrefetch``); one that
            // failed is built again here, so its error is this request's.
            var ahead: PagePrefetch.Page?
            if cursor != nil, let task = prefetch.take(key, now: clock.nowMillis()) { ahead = try? await task.value }
            built = ahead == nil ? "on_request" : "ahead"
            if let ahead { sent = ahead } else { sent = try await snapshotPage(key) }
            if let chain { kept.keep(sent, key: chain, checkpoint: sent.checkpoint, after: cursor, built: facts) }
        }
        Counter(label: "outpost_snapshot_pages_total", dimensions: [("built", built)]).increment()
        if let next = sent.next, chain.map({ !kept.keeps($0, checkpoint: next.checkpoint, after: next.after) }) ?? true
        {
            var following = key
            (following.checkpoint, following.after) = next
            prefetch.start(following, now: clock.nowMillis()) { [self, following] in try await snapshotPage(following) }
        }
        return Self.response(sent)
    }

    /// Reads, encodes and (when asked) compresses the snapshot page `key` names. The first page (no cursor) takes
    /// the store's checkpoint; the pages after it keep the one their cursor carries.
    func snapshotPage(_ key: PagePrefetch.Key) async throws -> PagePrefetch.Page {
        let page = try await store.snapshot(
            token: key.token,
            replica: key.replica,
            after: key.after,
            limit: key.limit,
            sparingOwn: key.sparingOwn
        )
        let position = key.checkpoint ?? page.checkpoint
        let checkpoint = String(position)
        let next = page.next.map { "\(position)~\($0.type)~\($0.id)" }
        let body: [UInt8]
        let contentType: String
        if let layout = key.layout {
            // Written from the stored states, without decoding them.
            body = try SnapshotPage.binaryEncoded(
                stored: page.records,
                checkpoint: checkpoint,
                next: next,
                removed: page.removed,
                leftScope: page.leftScope,
                layout: layout
            )
            contentType = BinaryWire.contentType
        } else {
            let message = SnapshotPage(
                records: try page.records.map { try $0.decoded() },
                checkpoint: checkpoint,
                next: next,
                removed: page.removed,
                leftScope: page.leftScope
            )
            (body, contentType) = (Array(try Wire.makeEncoder().encode(message)), Wire.contentType)
        }
        return Self.page(
            body,
            contentType: contentType,
            gzip: key.gzip,
            checkpoint: position,
            next: page.next.map { (position, $0) }
        )
    }

    /// What the device reports of itself: its outbox (``Wire/outboxHeader``, a whole number), its refused changes
    /// held aside (``Wire/refusedHeader``, a whole number) and its software
    /// (``Wire/clientHeader``, kept to 64 printable characters).
    static func deviceReport(_ request: Request) throws(ServerError) -> DeviceReport {
        var report = DeviceReport()
        if let text = request.headers[HTTPField.Name(Wire.outboxHeader)!] {
            guard let count = Int(text), count >= 0, count <= Int(Int32.max) else {
                throw ServerError.parameter(
                    Wire.outboxHeader,
                    "\(Wire.outboxHeader) must be the number of changes in the device's outbox, 0 or more"
                )
            }
            report.outbox = count
        }
        if let text = request.headers[HTTPField.Name(Wire.refusedHeader)!] {
            guard let count = Int(text), count >= 0, count <= Int(Int32.max) else {
                throw ServerError.parameter(
                    Wire.refusedHeader,
                    "\(Wire.refusedHeader) must be the number of refused changes the device holds aside, 0 or more"
                )
            }
            report.refused = count
        }
        if let client = request.headers[HTTPField.Name(Wire.clientHeader)!] {
            report.client = String(
                String.UnicodeScalarView(client.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 }.prefix(64))
            )
        }
        return report
    }

    /// The server epoch the device says it last synced with (``Wire/epochHeader``), if it says.
    static func deviceEpoch(_ request: Request) -> String? {
        request.headers[HTTPField.Name(Wire.epochHeader)!].map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The binary layout the request's `Accept` asks for (``BinaryWire/layout(accepting:)``), or `nil` for JSON.
    static func binaryLayout(_ request: Request) -> UInt8? {
        request.headers[values: .accept].compactMap { BinaryWire.layout(accepting: $0) }.max()
    }

    /// A `200` carrying `message` in the binary encoding, in `layout`.
    static func binaryResponse(_ message: some BinaryWireMessage, layout: UInt8, to request: Request) -> Response {
        pageResponse(message.binaryEncoded(layout: layout), contentType: BinaryWire.contentType, to: request)
    }

    /// A `200` carrying a pull or snapshot page, gzip-compressed when the request accepts it and the page is
    /// large enough to gain (protocol/README.md, section 16).
    static func pageResponse(_ body: some Collection<UInt8>, contentType: String, to request: Request) -> Response {
        response(page(Array(body), contentType: contentType, gzip: acceptsGzip(request)))
    }

    /// A page's body as it is sent: gzip-compressed when `gzip` (the request accepts it) and it is large enough
    /// to gain.
    static func page(
        _ body: [UInt8],
        contentType: String,
        gzip: Bool,
        checkpoint: Int64 = 0,
        next: (checkpoint: Int64, after: RecordRef)? = nil
    ) -> PagePrefetch.Page {
        let compressed = gzip && body.count >= WireCompression.threshold
        return PagePrefetch.Page(
            body: compressed ? PageCompression.gzip(body) : body,
            contentType: contentType,
            gzip: compressed,
            checkpoint: checkpoint,
            next: next
        )
    }

    /// A `200` carrying `page`.
    static func response(_ page: PagePrefetch.Page) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = page.contentType
        headers[.vary] = "Accept-Encoding"
        if page.gzip { headers[.contentEncoding] = WireCompression.gzip }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: page.body)))
    }

    /// Whether the request's `Accept-Encoding` accepts gzip.
    static func acceptsGzip(_ request: Request) -> Bool {
        request.headers[values: .acceptEncoding].contains { WireCompression.accepts($0) }
    }

    /// A request body as sent (`identity`) or inflated (`gzip`), at most `limit` bytes either way.
    static func decodedBody(_ body: ByteBuffer, of request: Request, limit: Int) throws(ServerError) -> [UInt8] {
        let codings = request.headers[values: .contentEncoding]
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { $0 != "identity" }
        guard let coding = codings.first else { return Array(body.readableBytesView) }
        guard codings.count == 1, coding == WireCompression.gzip || coding == "x-gzip" else {
            throw ServerError(
                .unsupportedMediaType,
                .unsupportedMediaType,
                "the body's Content-Encoding is \(codings.joined(separator: ", ")); send it as it is or with "
                    + "'Content-Encoding: gzip'",
                field: "Content-Encoding"
            )
        }
        do {
            return try WireCompression.decompress(body.readableBytesView, limit: limit)
        } catch .tooLarge {
            throw ServerError.tooLarge(
                "the body inflates to more than \(limit) bytes; push in smaller batches"
            )
        } catch {
            throw ServerError.malformed("the body is sent with 'Content-Encoding: gzip' but \(error)")
        }
    }

    /// Reads a snapshot cursor, `checkpoint~type~id`, as the server wrote it in a page's `next`: a canonical
    /// feed position no later than the practice's feed head, a care-model record type and an id of that type.
    /// A cursor that is not of that form was not written by this server: `400 invalid_parameter`; one ahead of
    /// the feed (the server was restored from a backup) is `410 checkpoint_expired`, like `since`.
    static func snapshotCursor(_ text: String, head: Int64) throws(ServerError) -> (Int64, RecordRef) {
        let parts = text.split(separator: "~", omittingEmptySubsequences: false)
        guard parts.count == 3, let position = Int64(parts[0]), position >= 0, String(position) == parts[0],
            let type = RecordType(rawValue: String(parts[1])), type.isValidID(String(parts[2]))
        else {
            throw ServerError.parameter(
                "after",
                "after is not a cursor this server wrote; send the 'next' of the previous page verbatim, or start "
                    + "the snapshot again without after"
            )
        }
        guard position <= head else {
            throw ServerError(
                .checkpointExpired,
                .gone,
                "the cursor's checkpoint \(position) is ahead of this server's feed (restored from a backup?); start "
                    + "the snapshot again without after",
                field: "after"
            )
        }
        return (position, RecordRef(type: type.rawValue, id: String(parts[2])))
    }

    /// The `replica` parameter of a pull or snapshot, bound to the token (a new replica id is bound here; one
    /// bound to another token is refused). A scoped token must name it, so the server knows which patients the
    /// device holds.
    func claimedReplica(_ query: Parameters, token: TokenEntry) async throws(ServerError) -> ReplicaID? {
        guard let text = query["replica"] else {
            try FeedPlanner.requireReplica(nil, scope: token.scope)
            return nil
        }
        guard let id = ReplicaID(String(text)) else {
            throw ServerError.parameter("replica", "replica must be this device's replica id")
        }
        try await store.claimReplica(id, token: token, now: clock.nowMillis())
        return id
    }

    static func checkpoint(_ text: String?) throws(ServerError) -> Int64 {
        guard let text, !text.isEmpty else { return 0 }
        guard let value = Int64(text), value >= 0 else {
            throw ServerError.parameter("since", "since must be a checkpoint this server returned")
        }
        return value
    }

    static func integer(_ query: Parameters, _ name: String, default value: Int) throws(ServerError) -> Int {
        guard let text = query[name[...]] else { return value }
        guard let number = Int(text) else { throw ServerError.parameter(name, "\(name) must be a whole number") }
        return number
    }

    /// A Swift type as a JSON reader calls it: `an object`, not `Dictionary<String, Any>`.
    static func jsonName(of type: Any.Type) -> String {
        let name = String(describing: type)
        if name.hasPrefix("Dictionary") || name.hasPrefix("KeyedDecodingContainer") { return "a JSON object" }
        if name.hasPrefix("Array") || name.hasPrefix("UnkeyedDecodingContainer") { return "a JSON array" }
        if name == "String" { return "a string" }
        if name == "Bool" { return "true or false" }
        if ["Int", "Int64", "UInt64", "Int32", "UInt32", "Double", "Float"].contains(name) { return "a number" }
        return "a JSON value of another type"
    }

    /// A decoding error in words, with the path to the offending key and no value.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "the top level" : String(keys.dropFirst(keys.hasPrefix(".") ? 1 : 0))
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context)) has the wrong type (expected \(jsonName(of: type)))"
        case .valueNotFound(_, let context):
            return "\(path(context)) is missing a value"
        case .keyNotFound(let key, let context):
            let at = path(context)
            return "missing key '\(key.stringValue)'" + (at == "the top level" ? "" : " in \(at)")
        case .dataCorrupted(let context):
            return "\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "unreadable"
        }
    }
}
