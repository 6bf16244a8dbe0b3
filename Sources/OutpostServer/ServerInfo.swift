import OutpostProtocol

/// Facts about the sync server that its executable prints.
public enum ServerInfo {
    /// One line naming the server and its versions, for `outpost-server --version`.
    public static var versionLine: String {
        "outpost-server \(OutpostVersion.software) (protocol v\(OutpostVersion.wireProtocol))"
    }
}
