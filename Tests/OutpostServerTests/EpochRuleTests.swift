import HTTPTypes
import OutpostProtocol
import Testing

@testable import OutpostServer

/// ``EpochRule`` as pure code: a checkpoint or a snapshot cursor of another epoch is `410 checkpoint_expired`; a
/// pull from the start, one without an epoch (a client before epochs) and one of this epoch are judged by the
/// feed head alone.
struct EpochRuleTests {
    let current = "epo_" + String(repeating: "a", count: 32)
    let restored = "epo_" + String(repeating: "b", count: 32)

    @Test func aCheckpointOfAnotherEpochIsExpired() throws {
        #expect(throws: ServerError.self) {
            try EpochRule.checkPull(since: 5, head: 100, deviceEpoch: restored, epoch: current)
        }
        do {
            try EpochRule.checkPull(since: 5, head: 100, deviceEpoch: restored, epoch: current)
        } catch {
            #expect(error.code == .checkpointExpired && error.status == .gone && error.field == "since")
            #expect(error.message.contains("restored from a backup"))
        }
        #expect(throws: ServerError.self) { try EpochRule.checkSnapshotCursor(deviceEpoch: restored, epoch: current) }
        do {
            try EpochRule.checkPush(carriesChanges: true, deviceEpoch: restored, epoch: current)
            Issue.record("a push of changes from another epoch was let through")
        } catch {
            #expect(error.code == .checkpointExpired && error.status == .gone && error.field == Wire.epochHeader)
            #expect(error.message.contains("restored from a backup"))
        }
    }

    /// A push with no changes (a device asking what the server holds of it), one without an epoch (a client before
    /// epochs) and one of this epoch are let through.
    @Test func aPushIsRefusedOnlyWithChangesFromAnotherEpoch() throws {
        try EpochRule.checkPush(carriesChanges: false, deviceEpoch: restored, epoch: current)
        try EpochRule.checkPush(carriesChanges: true, deviceEpoch: nil, epoch: current)
        try EpochRule.checkPush(carriesChanges: true, deviceEpoch: current, epoch: current)
    }

    @Test func theStartNoEpochAndThisEpochAreJudgedByTheHeadAlone() throws {
        try EpochRule.checkPull(since: 0, head: 0, deviceEpoch: restored, epoch: current)
        try EpochRule.checkPull(since: 5, head: 100, deviceEpoch: nil, epoch: current)
        try EpochRule.checkPull(since: 5, head: 100, deviceEpoch: current, epoch: current)
        try EpochRule.checkSnapshotCursor(deviceEpoch: nil, epoch: current)
        try EpochRule.checkSnapshotCursor(deviceEpoch: current, epoch: current)
        #expect(throws: ServerError.self) {
            try EpochRule.checkPull(since: 101, head: 100, deviceEpoch: current, epoch: current)
        }
        #expect(EpochRule.makeEpoch() != EpochRule.makeEpoch())
        #expect(EpochRule.makeEpoch().count == 36)
    }
}
