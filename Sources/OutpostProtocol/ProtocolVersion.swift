/// Versions of the Outpost software and of its wire protocol.
///
/// The software version is what `outpost --version` and `outpost-server --version` print; the protocol
/// version is the path prefix of every sync endpoint (`/v1/...`) and changes only when a message shape
/// changes incompatibly.
public enum OutpostVersion {
    /// The version of this build of Outpost.
    public static let software = "0.1.0"
    /// The wire protocol version spoken by this build.
    public static let wireProtocol = 1
}
