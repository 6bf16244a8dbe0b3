import HTTPTypes
import Hummingbird
import Logging
import OutpostProtocol

/// Turns every failure into a JSON ``ErrorBody``: refusals keep their code and message, Hummingbird's own
/// errors (unknown path, a known path with another method, body too large) get the matching code, and anything else is a bare `500` with the
/// request id, its cause logged and never sent.
struct ErrorBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The methods each known path takes, for the `Allow` header of a `405` (RFC 9110 section 15.5.6).
    static var allowedMethods: [String: String] {
        [
            Wire.Path.session: "GET", Wire.Path.push: "POST", Wire.Path.changes: "GET", Wire.Path.snapshot: "GET",
            Wire.Path.health: "GET", Wire.Path.ready: "GET", Wire.Path.metrics: "GET",
        ]
    }

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as ServerError {
            if error.status.code >= 500 {
                context.logger.error("request failed", metadata: ["code": "\(error.code)"])
            }
            response = try error.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            let allowed = Self.allowedMethods[request.uri.path]
            let refusal: ServerError =
                switch error.status {
                case .notFound, .methodNotAllowed:
                    if let allowed {
                        ServerError(
                            .methodNotAllowed,
                            .methodNotAllowed,
                            "\(request.uri.path) takes \(allowed), not \(request.method)",
                            field: "method"
                        )
                    } else {
                        ServerError(.notFound, .notFound, "no endpoint \(request.method) \(request.uri.path)")
                    }
                case .contentTooLarge: ServerError.tooLarge("the request body is too large")
                default:
                    ServerError(
                        error.status.code < 500 ? .malformedRequest : .internalError,
                        error.status,
                        error.status.code < 500 ? "bad request: \(error.status.reasonPhrase)" : "internal error"
                    )
                }
            response = try refusal.response(from: request, context: context)
            if refusal.status == .methodNotAllowed, let allowed {
                response.headers[.allow] = allowed
            }
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            response = try ServerError.internalFailure().response(from: request, context: context)
        }
        response.headers[HTTPField.Name(Wire.requestIDHeader)!] = context.id
        response.headers[HTTPField.Name(Wire.protocolHeader)!] = String(OutpostVersion.wireProtocol)
        return response
    }
}
