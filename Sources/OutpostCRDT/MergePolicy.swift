/// How concurrent writes to one field merge (DESIGN.md section 3).
public enum MergePolicy: Sendable, Hashable {
    /// Last writer wins by hybrid logical clock, change id breaking ties; never a conflict.
    case lww
    /// Concurrent writes are all kept; the latest is the provisional winner, and a conflict is listed
    /// until a write that replaces all of them resolves it.
    case review
    /// Add-wins observed-remove set of values.
    case set
    /// Append-only list; entries never change.
    case log
    /// Task status: see ``StatusRules``.
    case status(StatusRules)

    /// The policy's name as written in the model table and the protocol.
    public var name: String {
        switch self {
        case .lww: "lww"
        case .review: "review"
        case .set: "set"
        case .log: "log"
        case .status: "status"
        }
    }

    /// Whether the policy holds one current value (as opposed to a set or a list).
    public var isRegister: Bool {
        switch self {
        case .lww, .review, .status: true
        case .set, .log: false
        }
    }

    /// Whether `operation` is a valid way to write a field with this policy.
    public func allows(_ operation: Operation) -> Bool {
        switch (self, operation) {
        case (.lww, .assign), (.review, .assign), (.status, .assign): true
        case (.set, .add), (.set, .remove): true
        case (.log, .append): true
        default: false
        }
    }
}

/// The rules of the `status` policy.
///
/// Among the values no write has replaced (the concurrent values):
/// 1. an *overriding* value (entered-in-error) beats everything;
/// 2. otherwise a *terminal* value (completed, cancelled) beats every non-terminal one, so a stale
///    offline edit cannot reopen finished work; two *different* terminal values are a conflict;
/// 3. otherwise the latest write wins, with no conflict.
public struct StatusRules: Sendable, Hashable {
    /// Values that end the work.
    public var terminal: Set<String>
    /// Values that beat every other value.
    public var overriding: Set<String>

    /// Creates status rules.
    public init(terminal: Set<String>, overriding: Set<String>) {
        self.terminal = terminal
        self.overriding = overriding
    }
}
