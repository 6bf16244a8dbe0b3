import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import OutpostProtocol

/// Gives the refusals of the HTTP parser the JSON error body every other refusal has.
///
/// When the decoder cannot parse a request (a NUL in a header, an unknown method, headers over the limit,
/// `Content-Length` with `Transfer-Encoding`), Hummingbird answers `400` with an empty body and closes. This
/// handler, after the decoder, notes the parser's error and rewrites that answer: `431` for headers (or a
/// request line) over the limit, `400` otherwise, each with a ``ErrorBody`` and `Connection: close`.
final class ParserErrorResponseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let maxHeaderBytes: Int
    private var parserError: HTTPParserError?
    private var pendingBody: ByteBuffer?

    init(maxHeaderBytes: Int) {
        self.maxHeaderBytes = maxHeaderBytes
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError { parserError = error }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head)
        where parserError != nil && head.status == .badRequest && head.headerFields[.contentLength] == "0":
            let (status, body) = refusal(parserError!)
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            var fields = HTTPFields()
            fields[.contentType] = Wire.contentType
            fields[.contentLength] = String(body.count)
            fields[.connection] = "close"
            fields[HTTPField.Name(Wire.protocolHeader)!] = String(OutpostVersion.wireProtocol)
            pendingBody = buffer
            context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: promise)
        case .end where pendingBody != nil:
            context.write(wrapOutboundOut(.body(pendingBody!)), promise: nil)
            pendingBody = nil
            parserError = nil
            context.write(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }

    /// The status and JSON body for a parser error; names the rule broken, never the bytes sent.
    private func refusal(_ error: HTTPParserError) -> (HTTPResponse.Status, Data) {
        let status: HTTPResponse.Status
        let detail: ErrorBody.Detail
        switch error {
        case .headerOverflow:
            status = .requestHeaderFieldsTooLarge
            detail = .init(
                code: .tooLarge,
                message: "the request line and headers are over \(maxHeaderBytes / 1024) KiB; shorten them",
                field: "headers"
            )
        case .invalidMethod:
            status = .badRequest
            detail = .init(
                code: .malformedRequest,
                message: "the request's method is not an HTTP method this server reads; use GET or POST",
                field: "method"
            )
        case .unexpectedContentLength:
            status = .badRequest
            detail = .init(
                code: .malformedRequest,
                message: "the request has both Content-Length and Transfer-Encoding; send one of them",
                field: "headers"
            )
        case .invalidHeaderToken, .invalidConstant, .strictModeAssertion, .lfExpected:
            status = .badRequest
            detail = .init(
                code: .malformedRequest,
                message: "a header has a character HTTP does not allow (a control character or NUL?); "
                    + "send printable ASCII",
                field: "headers"
            )
        default:
            status = .badRequest
            detail = .init(
                code: .malformedRequest,
                message: "the request is not valid HTTP/1.1 (\(error)); check the client"
            )
        }
        let data = (try? Wire.makeEncoder().encode(ErrorBody(detail))) ?? Data()
        return (status, data)
    }
}
