import Foundation
import OutpostCRDT
import OutpostModel
import Testing

@testable import OutpostClient

/// An import into a new store reads and converts records on one thread while the caller writes them
/// (`ImportPipeline`): the writer gets every record in the file's order, and the first failure in that order,
/// whichever thread meets it; a failed write stops the reader.
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
                writing: { ref throws(ClientError) in
                    guard ref != Self.ref(500) else { throw ClientError(code: .storage, message: "writer") }
                    written += 1
                }
            )
        }
        #expect(error?.message == "writer")
        #expect(written == 500)
        // At most the queue's batches and the one being read were read ahead of the writer.
        #expect(source.read <= 500 + (ImportPipeline.queueCapacity + 2) * ImportPipeline.batchSize)
    }
}
