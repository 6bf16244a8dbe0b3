import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 child channel with Outpost's guards: the connection cap (``ConnectionRegistry``),
/// the idle, head and body deadlines (``ConnectionDeadlineHandler``) and JSON bodies for the parser's
/// refusals (``ParserErrorResponseHandler``). Requests are then handled exactly as `HTTP1Channel` does.
struct GuardedHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    /// The largest request line plus headers read, in bytes (NIO's and Hummingbird's default).
    static let maxHeaderBytes = 80 * 1024

    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits
    let registry: ConnectionRegistry
    /// Whether the connection came through TLS (requests then have the `https` scheme).
    var secure = false

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let slot = ConnectionRegistry.Slot()
            slot.markWaiting(.now())
            let deadlines = ConnectionDeadlineHandler(limits: limits, slot: slot)
            try channel.pipeline.syncOperations.addHandler(FirstByteHandler(deadlines: deadlines))
            var decoderLimits = NIOHTTPDecoderLimitConfiguration()
            decoderLimits.maxHeaderFieldSize = Self.maxHeaderBytes
            decoderLimits.maxHeaderListSize = Self.maxHeaderBytes
            decoderLimits.maxHeaderFieldCount = 1_000
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false,
                withErrorHandling: false,
                withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: decoderLimits
            )
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: secure))
            try channel.pipeline.syncOperations.addHandler(
                ParserErrorResponseHandler(maxHeaderBytes: Self.maxHeaderBytes)
            )
            try channel.pipeline.syncOperations.addHandler(deadlines)
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            let value = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                wrappingChannelSynchronously: channel,
                configuration: .init(isOutboundHalfClosureEnabled: true)
            )
            let registry = registry
            switch registry.admit(channel, slot: slot) {
            case .admitted:
                break
            case .admittedClosing(let evicted):
                logger.debug("connection cap reached: closed the connection waiting longest")
                evicted.close(promise: nil)
            case .refused:
                logger.warning(
                    "connection cap of \(registry.maxConnections) reached with every connection answering a request; closed a new connection"
                )
                channel.close(promise: nil)
            }
            channel.closeFuture.whenComplete { _ in registry.remove(channel) }
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }
}
