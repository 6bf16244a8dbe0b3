import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

/// Issue 9: a device whose clock is far off learns the server's time at each session, says so once, and
/// stamps its edits with its wall clock plus the offset, on the real server.
@Suite(.serialized)
struct DeviceClockTests {
    static let year: Int64 = 365 * 86_400_000
    static let phone = "phone"

    var patient: RecordRef { RecordRef(type: "patient", id: TinyPractice.patients[0]) }

    /// The patient's phone as a replica's canonical export holds it.
    func phone(in replica: LocalReplica) throws -> String? {
        try replica.store.record(patient)?[Self.phone].resolution(under: .lww).winner?.value.stringValue
    }

    @Test func aDeviceAYearBehindWinsWithAnEditMadeAfterAnOnTimeDevicesEdit() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-clock")
        let admin = server.adminToken
        let onTime = try LocalReplica("on-time", in: directory)
        try TinyPractice.load(into: onTime.care)
        _ = try await onTime.engine(server.transport(admin)).sync()

        let behind = try LocalReplica("behind", in: directory, wallClock: OffsetWallClock(offsetMillis: -Self.year))
        let first = try await behind.engine(server.transport(admin)).sync()
        let notice = try #require(first.clockNotice, "the device is told its clock is off")
        #expect(notice.contains("365 days behind the server's"), "\(notice)")
        #expect(try behind.store.clockOffsetMillis() > Self.year - 60_000)

        // The on-time device edits the phone; the device a year behind pulls that edit, then edits the phone
        // again (later in real time, and after having seen the first edit).
        try onTime.care.update([.assign(patient, Self.phone, "(406) 555-0111")])
        _ = try await onTime.engine(server.transport(admin)).sync()
        _ = try await behind.engine(server.transport(admin)).sync()
        try behind.care.update([.assign(patient, Self.phone, "(406) 555-0222")])
        let edit = try #require(try behind.store.pendingChanges(limit: 10).last)
        #expect(edit.clock.millis + 60_000 >= nowMillis(), "stamped with the server's time, not a year ago")

        let second = try await behind.engine(server.transport(admin)).sync()
        #expect(second.clockNotice == nil, "said once, not at every sync")
        #expect(second.pending == 0)
        _ = try await onTime.engine(server.transport(admin)).sync()
        #expect(try phone(in: behind) == "(406) 555-0222", "the later edit wins")
        #expect(try phone(in: onTime) == "(406) 555-0222", "the later edit wins everywhere")
        #expect(try onTime.export() == behind.export())
    }

    @Test func aDeviceAYearAheadReStampsOnceThenStampsWithTheServersTime() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-clock")
        let admin = server.adminToken
        let fast = try LocalReplica("fast", in: directory, wallClock: OffsetWallClock(offsetMillis: Self.year))
        try TinyPractice.load(into: fast.care)
        let total = try fast.store.status().pendingChanges

        let first = try await fast.engine(server.transport(admin)).sync()
        #expect(first.restamped == total, "what it stamped before it knew the server's time is re-stamped once")
        #expect(first.pending == 0)
        let notice = try #require(first.clockNotice)
        #expect(notice.contains("365 days ahead of the server's"), "\(notice)")

        // Its next edit is stamped with the server's time: no refusal, no re-stamp, nothing in the future.
        try fast.care.update([.assign(patient, Self.phone, "(406) 555-0333")])
        let edit = try #require(try fast.store.pendingChanges(limit: 10).last)
        #expect(edit.clock.millis <= nowMillis() + 60_000, "the replica's clock is not in the future")
        let transport = FaultTransport(server.transport(admin))
        let second = try await fast.engine(transport).sync()
        #expect(second.restamped == 0)
        #expect(transport.count(Wire.Path.push) == 1, "pushed once, not refused as clock skew")
        #expect(second.clockNotice == nil)

        // Another device agrees with it, and nothing the server holds is stamped in the future.
        let onTime = try LocalReplica("on-time", in: directory)
        _ = try await onTime.engine(server.transport(admin)).sync()
        #expect(try phone(in: onTime) == "(406) 555-0333")
        #expect(try onTime.export() == fast.export())
        #expect(try await server.feed(admin).allSatisfy { $0.clock.millis <= nowMillis() })
    }
}
