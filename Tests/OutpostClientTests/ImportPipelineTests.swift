import Foundation
import OutpostCRDT
import OutpostModel
import Testing

@testable import OutpostClient

/// An import into a new store reads and converts records on one thread and finishes them on a second while the
/// caller writes them (`ImportPipeline`): the writer gets every record in the file's order, and the first
/// failure in that order, whichever thread meets it; a failed write stops the other two.
struct ImportPipelineTests {
    /// `count` records read in order, counting how many were read.
    final class Source: @unchecked Sendable {
        // Written by the reader thread only; read after `run` returns (the reader has finished then).
        var read = 0
        let count: Int

        init(count: Int) { self.count = count }

        var records: PracticeRecords {
            PracticeRecords { body throws(ClientError) in
                for index in 0..<self.count {
                    self.read += 1
                    try body(DumpRecord(type: "patient", id: "p\(index)", fields: [:]))
                }
            }
        }
    }

    static func ref(_ index: Int) -> RecordRef { RecordRef(type: "patient", id: "p\(index)") }

    @Test(arguments: [0, 1, 255, 256, 257, 2_000])
    func everyRecordReachesTheWriterInOrder(count: Int) throws {
        let source = Source(count: count)
        var written: [RecordRef] = []
        try ImportPipeline.run(
            reading: source.records,
            converting: { record throws(ClientError) in RecordRef(type: record.type, id: record.id) },
            finishing: { $0 },
            writing: { ref throws(ClientError) in written.append(ref) }
        )
        #expect(written == (0..<count).map(Self.ref))
    }

    @Test(arguments: [0, 300, 1_999])
    func aRecordTheReaderRefusesComesAfterTheRecordsBeforeIt(failing: Int) throws {
        let source = Source(count: 2_000)
        var written: [RecordRef] = []
        let error = #expect(throws: ClientError.self) {
            try ImportPipeline.run(
                reading: source.records,
                converting: { record throws(ClientError) in
                    guard record.id != "p\(failing)" else {
                        throw ClientError(code: .invalidEdit, message: "record \(record.id) is refused")
                    }
                    return RecordRef(type: record.type, id: record.id)
                },
                finishing: { $0 },
                writing: { ref throws(ClientError) in written.append(ref) }
            )
        }
        #expect(error?.message == "record p\(failing) is refused")
        #expect(written == (0..<failing).map(Self.ref))
        #expect(source.read == failing + 1, "the reader stops at its failure")
    }

    @Test func aFailedWriteStopsTheReaderAndIsTheErrorThrown() throws {
        let source = Source(count: 100_000)
        var written = 0
        let error = #expect(throws: ClientError.self) {
            try ImportPipeline.run(
                reading: source.records,
                converting: { record throws(ClientError) in
                    // The reader fails further on: the writer's earlier failure is the one thrown.
                    guard record.id != "p900" else { throw ClientError(code: .invalidEdit, message: "reader") }
                    return RecordRef(type: record.type, id: record.id)
                },
                finishing: { $0 },
                writing: { ref throws(ClientError) in
                    guard ref != Self.ref(500) else { throw ClientError(code: .storage, message: "writer") }
                    written += 1
                }
            )
        }
        #expect(error?.message == "writer")
        #expect(written == 500)
        // At most both queues' batches, the one being finished and the one being read were read ahead of the
        // writer.
        #expect(source.read <= 500 + (2 * ImportPipeline.queueCapacity + 3) * ImportPipeline.batchSize)
    }

    @Test(arguments: [0, 300, 1_999])
    func aRecordTheFinisherRefusesComesAfterTheRecordsBeforeIt(failing: Int) throws {
        let source = Source(count: 2_000)
        var written: [RecordRef] = []
        let error = #expect(throws: ClientError.self) {
            try ImportPipeline.run(
                reading: source.records,
                converting: { record throws(ClientError) in RecordRef(type: record.type, id: record.id) },
                finishing: { ref throws(ClientError) in
                    guard ref != Self.ref(failing) else {
                        throw ClientError(code: .invalidEdit, message: "record \(ref.id) is refused")
                    }
                    return ref
                },
                writing: { ref throws(ClientError) in written.append(ref) }
            )
        }
        #expect(error?.message == "record p\(failing) is refused")
        #expect(written == (0..<failing).map(Self.ref))
    }

    @Test func aFailedWriteStopsAReaderThatIsStillReading() throws {
        // The writer fails at its eleventh record, long before the reader could have read a million: the reader
        // stops at its next batch, and `run` returns only once it has.
        let source = Source(count: 1_000_000)
        let error = #expect(throws: ClientError.self) {
            try ImportPipeline.run(
                reading: source.records,
                converting: { record throws(ClientError) in RecordRef(type: record.type, id: record.id) },
                finishing: { ref throws(ClientError) in ref },
                writing: { ref throws(ClientError) in
                    guard ref != Self.ref(10) else { throw ClientError(code: .storage, message: "writer") }
                }
            )
        }
        #expect(error?.message == "writer")
        #expect(source.read < 1_000_000)
    }
}
