import OutpostProtocol

@testable import OutpostServer

extension SyncStorage {
    /// Stores a decoded push (``SyncStorage/push(_:token:report:now:maxClockSkewMillis:perChange:)``), with a
    /// device that reports nothing and all-or-nothing refusals unless told.
    func push(
        _ request: PushRequest,
        token: TokenEntry,
        report: DeviceReport = DeviceReport(),
        now: UInt64,
        maxClockSkewMillis: UInt64,
        perChange: Bool = false
    ) async throws(ServerError) -> PushOutcome {
        try await push(
            IncomingPush.decoded(request),
            token: token,
            report: report,
            now: now,
            maxClockSkewMillis: maxClockSkewMillis,
            perChange: perChange,
            deviceEpoch: nil
        )
    }
}
