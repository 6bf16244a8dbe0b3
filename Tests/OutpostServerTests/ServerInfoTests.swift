import OutpostServer
import Testing

struct ServerInfoTests {
    @Test func theVersionLineNamesTheProtocol() {
        #expect(ServerInfo.versionLine.contains("protocol v1"))
    }
}
