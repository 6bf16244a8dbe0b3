import Foundation
import OutpostCRDT
import OutpostModel

/// An import into a new store on two threads: one reads the practice's records and converts each to the edits
/// that create it (the file's JSON, the draft, the care model's checks), the calling thread writes them
/// (`RecordCreator`, inside the import's one transaction). The two meet in a queue of a few batches, so memory
/// stays bounded by the queue, not the practice.
///
/// What reaches the writer, and in which order, is what a single thread would give: every record in the
/// file's order, and the first failure in that order, whichever side meets it. A record the reader refuses
/// comes after the records before it were written; a write that fails stops the reader. The reader has
/// finished when ``run(reading:converting:writing:)`` returns or throws.
enum ImportPipeline {
    /// Records per batch handed from the reader to the writer.
    static let batchSize = 256
    /// Batches the queue holds before the reader waits for the writer.
    static let queueCapacity = 4

    /// Thrown inside the reader when the writer has stopped: never reaches the writer.
    static let stopped = ClientError(code: .invalidEdit, message: "the import stopped")

    /// Reads `records` on a thread of its own, converts each with `converting` there, and calls `writing`
    /// with each result on the calling thread, in order.
    static func run<Creation: Sendable>(
        reading records: PracticeRecords,
        converting: @escaping (DumpRecord) throws(ClientError) -> Creation,
        writing: (Creation) throws(ClientError) -> Void
    ) throws(ClientError) {
        let queue = Queue<Creation>()
        // The reader's closures are used by the reader thread alone until it has finished (waited for below).
        let work = ReaderWork(records: records, converting: converting)
        let reader = Thread {
            let records = work.records
            let converting = work.converting
            var batch: [Creation] = []
            batch.reserveCapacity(batchSize)
            do throws(ClientError) {
                try records.read { record throws(ClientError) in
                    batch.append(try converting(record))
                    if batch.count == batchSize {
                        guard queue.put(batch) else { throw ImportPipeline.stopped }
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                if !batch.isEmpty { _ = queue.put(batch) }
                queue.finish(nil)
            } catch {
                // The records read before the failure go first, as a single thread would have written them.
                if !batch.isEmpty { _ = queue.put(batch) }
                queue.finish(error)
            }
        }
        reader.start()
        defer {
            queue.stop()
            queue.waitUntilFinished()
        }
        while let batch = try queue.take() {
            for creation in batch { try writing(creation) }
        }
    }

    /// What the reader thread calls: it alone calls them while ``run(reading:converting:writing:)`` waits for it.
    private final class ReaderWork<Creation>: @unchecked Sendable {
        let records: PracticeRecords
        let converting: (DumpRecord) throws(ClientError) -> Creation

        init(records: PracticeRecords, converting: @escaping (DumpRecord) throws(ClientError) -> Creation) {
            self.records = records
            self.converting = converting
        }
    }

    /// The batches between the two threads, with the reader's outcome.
    private final class Queue<Creation>: @unchecked Sendable {
        // Every property below is read and written with `condition` locked.
        private let condition = NSCondition()
        private var batches: [[Creation]] = []
        private var isFinished = false
        private var failure: ClientError?
        private var isStopped = false
        private var readerDone = false

        /// Adds a batch, waiting while the queue is full; `false` when the writer has stopped.
        func put(_ batch: [Creation]) -> Bool {
            condition.lock()
            defer { condition.unlock() }
            while batches.count >= queueCapacity && !isStopped { condition.wait() }
            guard !isStopped else { return false }
            batches.append(batch)
            condition.broadcast()
            return true
        }

        /// The reader's end: `failure` when it failed.
        func finish(_ failure: ClientError?) {
            condition.lock()
            defer { condition.unlock() }
            isFinished = true
            readerDone = true
            self.failure = failure
            condition.broadcast()
        }

        /// The next batch, waiting for one; `nil` once the reader has finished and every batch was taken; the
        /// reader's failure after its last batch.
        func take() throws(ClientError) -> [Creation]? {
            condition.lock()
            defer { condition.unlock() }
            while batches.isEmpty && !isFinished { condition.wait() }
            if !batches.isEmpty {
                let batch = batches.removeFirst()
                condition.broadcast()
                return batch
            }
            if let failure { throw failure }
            return nil
        }

        /// The writer is done, whether it finished or failed: a waiting reader stops.
        func stop() {
            condition.lock()
            defer { condition.unlock() }
            isStopped = true
            condition.broadcast()
        }

        /// Waits until the reader thread has finished.
        func waitUntilFinished() {
            condition.lock()
            defer { condition.unlock() }
            while !readerDone { condition.wait() }
        }
    }
}
