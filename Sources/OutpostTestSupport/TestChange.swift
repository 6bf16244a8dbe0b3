public import OutpostCRDT

extension Change {
    /// A change for tests: `replica`'s `counter`-th, stamped at `millis + counter` by `per_test`.
    public static func test(
        _ record: RecordRef,
        _ field: String,
        _ operation: OutpostCRDT.Operation,
        _ value: Value,
        replica: String,
        counter: UInt64,
        millis: UInt64 = 1_000,
        replaces: [ChangeID] = []
    ) -> Change {
        Change(
            id: ChangeID(replica: ReplicaID(unchecked: replica), counter: counter),
            record: record,
            field: field,
            operation: operation,
            value: value,
            replaces: replaces,
            clock: Timestamp(millis: millis + counter),
            author: "per_test"
        )
    }
}
