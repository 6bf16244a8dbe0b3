import GRDB
public import OutpostCRDT

extension TransactionContext {
    /// Calls `body` with every record the store holds and its state (tail folded in), one at a time and
    /// without keeping them in the transaction: for imports that index a large store.
    public func forEachHeldRecord(_ body: (_ record: RecordRef, _ state: RecordState) throws -> Void) throws {
        for type in try String.fetchAll(transaction.db, sql: "SELECT DISTINCT type FROM record ORDER BY type") {
            // Ids first, then one record at a time: folding a tail reads the change log, which a statement
            // cannot do while a cursor on the record table is open.
            for id in try ids(ofType: type) {
                let record = RecordRef(type: type, id: id)
                guard let state = try transaction.store.loadState(record, db: transaction.db) else { continue }
                try body(record, state)
            }
        }
    }

    /// The state of `record` as the store holds it, read without keeping it in the transaction (an edit
    /// written in this transaction is not seen until the transaction loads the record).
    public func storedState(of record: RecordRef) throws(ClientError) -> RecordState? {
        if transaction.isLoaded(record) { return try state(of: record) }
        do {
            return try transaction.store.loadState(record, db: transaction.db)
        } catch {
            throw LocalStore.wrap(error, path: transaction.store.path, doing: "read a record")
        }
    }
}

extension RecordCreator {
    /// Writes `edits` to records the store holds, in this transaction, as
    /// ``LocalStore/commit(author:site:progress:_:)`` would: each edit names what it replaces as the store holds
    /// it now. The records edited stay loaded until the transaction ends.
    ///
    /// - Throws: ``ClientError`` `invalidEdit` when the schema refuses an edit, or a storage error.
    public mutating func edit(_ edits: [Edit]) throws(ClientError) {
        let store = transaction.store
        do {
            for edit in edits {
                let current = try transaction.state(of: edit.record)[edit.field]
                let replaces: [ChangeID]
                switch edit.operation {
                case .assign: replaces = edit.isConcurrent ? [] : current.liveIDs
                case .remove: replaces = current.tags(of: edit.value)
                case .add, .append: replaces = []
                }
                transaction.counter += 1
                let change = Change(
                    id: ChangeID(replica: store.replicaID, counter: transaction.counter),
                    record: edit.record,
                    field: edit.field,
                    operation: edit.operation,
                    value: edit.value,
                    replaces: replaces,
                    clock: transaction.clock.tick(wallMillis: transaction.now),
                    author: author,
                    site: site
                )
                try store.checkSchema(change)
                try transaction.apply(change, isLocal: true)
            }
        } catch {
            throw LocalStore.wrap(error, path: store.path, doing: "save the edit")
        }
    }
}
