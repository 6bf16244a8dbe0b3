import Foundation
import OutpostCRDT
import OutpostModel

/// An import into a new store on three threads: one reads the practice's records and converts each to the edits
/// that create it (the file's JSON, the draft, the care model's checks), a second finishes each (stamps,
/// encodes and projects its changes: `RecordDrafter`), and the calling thread writes them (`RecordCreator`,
/// inside the import's one transaction). They meet in queues of a few batches each, so memory stays bounded by
/// the queues, not the practice.
///
/// What reaches the writer, and in which order, is what a single thread would give: every record in the
/// file's order, and the first failure in that order, whichever thread meets it. A record the reader or the
/// finisher refuses comes after the records before it were written; a write that fails stops the other two.
/// Both have finished when ``run(reading:converting:finishing:writing:)`` returns or throws.
enum ImportPipeline {
    /// Records per batch handed from one thread to the next.
    static let batchSize = 256
    /// Batches a queue holds before the thread filling it waits for the next one.
    static let queueCapacity = 4

    /// Thrown inside the reader or the finisher when the thread after it has stopped: never reaches the writer.
    static let stopped = ClientError(code: .invalidEdit, message: "the import stopped")

    /// Reads `records` on a thread of its own and converts each with `converting` there, finishes each with
    /// `finishing` on a second thread, and calls `writing` with each result on the calling thread, in order.
    static func run<Converted: Sendable, Finished: Sendable>(
        reading records: PracticeRecords,
        converting: @escaping (DumpRecord) throws(ClientError) -> Converted,
        finishing: @escaping (Converted) throws(ClientError) -> Finished,
        writing: (Finished) throws(ClientError) -> Void
    ) throws(ClientError) {
        let read = Queue<Converted>()
        let finished = Queue<Finished>()
        // Each closure is used by its thread alone until the thread has finished (waited for below).
        let work = Work(records: records, converting: converting, finishing: finishing)
        let reader = Thread {
            let records = work.records
            let converting = work.converting
            var batch: [Converted] = []
            batch.reserveCapacity(batchSize)
            do throws(ClientError) {
                try records.read { record throws(ClientError) in
                    batch.append(try converting(record))
                    if batch.count == batchSize {
                        guard read.put(batch) else { throw ImportPipeline.stopped }
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                if !batch.isEmpty { _ = read.put(batch) }
                read.finish(nil)
            } catch {
                // The records read before the failure go first, as a single thread would have written them.
                if !batch.isEmpty { _ = read.put(batch) }
                read.finish(error)
            }
        }
        let finisher = Thread {
            let finishing = work.finishing
            do throws(ClientError) {
                // The reader's failure comes out of `take` after its last batch.
                while let batch = try read.take() {
                    var done: [Finished] = []
                    done.reserveCapacity(batch.count)
                    do throws(ClientError) {
                        for converted in batch { done.append(try finishing(converted)) }
                    } catch {
                        if !done.isEmpty { _ = finished.put(done) }
                        throw error
                    }
                    guard finished.put(done) else { throw ImportPipeline.stopped }
                }
                finished.finish(nil)
            } catch {
                // A reader still reading stops.
                read.stop()
                finished.finish(error)
            }
        }
        reader.start()
        finisher.start()
        defer {
            finished.stop()
            finished.waitUntilFinished()
            read.stop()
            read.waitUntilFinished()
        }
        while let batch = try finished.take() {
            for item in batch { try writing(item) }
        }
    }

    /// What the reader and finisher threads call: each calls its own, alone, while
    /// ``run(reading:converting:finishing:writing:)`` waits for them.
    private final class Work<Converted, Finished>: @unchecked Sendable {
        let records: PracticeRecords
        let converting: (DumpRecord) throws(ClientError) -> Converted
        let finishing: (Converted) throws(ClientError) -> Finished

        init(
            records: PracticeRecords,
            converting: @escaping (DumpRecord) throws(ClientError) -> Converted,
            finishing: @escaping (Converted) throws(ClientError) -> Finished
        ) {
            self.records = records
            self.converting = converting
            self.finishing = finishing
        }
    }

    /// The batches between two threads, with the outcome of the one filling it.
    private final class Queue<Item>: @unchecked Sendable {
        // Every property below is read and written with `condition` locked.
        private let condition = NSCondition()
        private var batches: [[Item]] = []
        private var isFinished = false
        private var failure: ClientError?
        private var isStopped = false

        /// Adds a batch, waiting while the queue is full; `false` when the thread taking from it has stopped.
        func put(_ batch: [Item]) -> Bool {
            condition.lock()
            defer { condition.unlock() }
            while batches.count >= queueCapacity && !isStopped { condition.wait() }
            guard !isStopped else { return false }
            batches.append(batch)
            condition.broadcast()
            return true
        }

        /// The filling thread's end: `failure` when it failed. It does nothing after.
        func finish(_ failure: ClientError?) {
            condition.lock()
            defer { condition.unlock() }
            isFinished = true
            self.failure = failure
            condition.broadcast()
        }

        /// The next batch, waiting for one; `nil` once the filling thread has finished and every batch was taken;
        /// its failure after its last batch.
        func take() throws(ClientError) -> [Item]? {
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

        /// The thread taking from it is done, whether it finished or failed: the filling thread stops at its next
        /// batch.
        func stop() {
            condition.lock()
            defer { condition.unlock() }
            isStopped = true
            condition.broadcast()
        }

        /// Waits until the filling thread has finished.
        func waitUntilFinished() {
            condition.lock()
            defer { condition.unlock() }
            while !isFinished { condition.wait() }
        }
    }
}
