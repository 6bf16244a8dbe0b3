import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's basic one plus the client's address, which the
/// authentication throttle counts failures under.
struct OutpostRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    /// The address the connection came from.
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
