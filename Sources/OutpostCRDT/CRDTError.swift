/// An error raised by the CRDT core: a change that cannot be applied.
///
/// Messages name ids, types and fields, never values, so they are safe to log.
public struct CRDTError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of error this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The change names a record type the schema does not know.
        public static let unknownRecordType = Code("unknownRecordType")
        /// The change names a field its record type does not have.
        public static let unknownField = Code("unknownField")
        /// The change's operation does not suit the field's policy.
        public static let operationNotAllowed = Code("operationNotAllowed")

        /// Stored or received bytes could not be decoded.
        public static let malformedEncoding = Code("malformedEncoding")

        public var description: String { name }
    }

    /// What kind of error this is.
    public var code: Code
    /// What was wrong and how to fix it.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
