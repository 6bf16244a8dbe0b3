import HTTPTypes
import Metrics
import NIOCore
import NIOHTTPTypes

/// Closes a connection that is idle too long, sends its request head too slowly, or pauses too long in a
/// body (``ConnectionLimits``), and tells the ``ConnectionRegistry`` when it may be evicted.
///
/// It sits after the HTTP decoder, where it sees request parts and response parts; a
/// ``FirstByteHandler`` before the decoder tells it when the first byte of a request arrives, which the
/// decoder does not report.
final class ConnectionDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Where the connection is in its request cycle.
    enum Phase: String {
        /// No request being read or answered.
        case idle
        /// A request's first bytes arrived; its head is not complete.
        case head
        /// A request's head arrived; its body is being read.
        case body
        /// Every request read is being answered.
        case answering
    }

    private let limits: ConnectionLimits
    private let slot: ConnectionRegistry.Slot
    private var phase = Phase.idle
    /// Requests whose head was read and whose response has not ended.
    private var unanswered = 0
    private var deadline: NIODeadline?
    private var timer: (deadline: NIODeadline, task: Scheduled<Void>)?
    private var context: ChannelHandlerContext?

    init(limits: ConnectionLimits, slot: ConnectionRegistry.Slot) {
        self.limits = limits
        self.slot = slot
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        enter(.idle, now: .now())
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.task.cancel()
        timer = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.task.cancel()
        timer = nil
        deadline = nil
        context.fireChannelInactive()
    }

    /// Called by the ``FirstByteHandler`` before bytes reach the decoder.
    func bytesArrived() {
        if phase == .idle { enter(.head, now: .now()) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = NIODeadline.now()
        switch unwrapInboundIn(data) {
        case .head:
            unanswered += 1
            enter(.body, now: now)
        case .body:
            if phase == .body { deadline = now + .init(limits.bodyTimeout) }
        case .end:
            enter(unanswered > 0 ? .answering : .idle, now: now)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(0, unanswered - 1)
            if unanswered == 0 && phase == .answering { enter(.idle, now: .now()) }
        }
        context.write(data, promise: promise)
    }

    private func enter(_ next: Phase, now: NIODeadline) {
        phase = next
        switch next {
        case .idle:
            deadline = now + .init(limits.idleTimeout)
            slot.markWaiting(now)
        case .head:
            deadline = now + .init(limits.headerTimeout)
            slot.markWaiting(now)
        case .body:
            deadline = now + .init(limits.bodyTimeout)
            slot.markBusy()
        case .answering:
            deadline = nil
            slot.markBusy()
        }
        arm()
    }

    /// Makes sure a timer fires at or before the deadline; a timer that fires early re-arms itself.
    private func arm() {
        guard let deadline, let context else { return }
        if let timer, timer.deadline <= deadline { return }
        timer?.task.cancel()
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timerFired()
        }
        timer = (deadline, task)
    }

    private func timerFired() {
        timer = nil
        guard let deadline, let context else { return }
        guard NIODeadline.now() >= deadline else {
            arm()
            return
        }
        Counter(label: "outpost_connections_closed_total", dimensions: [("reason", "\(phase.rawValue)_timeout")])
            .increment()
        self.deadline = nil
        context.close(promise: nil)
    }
}

/// Sits before the HTTP decoder and tells the ``ConnectionDeadlineHandler`` when bytes arrive, so a request's
/// head is timed from its first byte.
final class FirstByteHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let deadlines: ConnectionDeadlineHandler

    init(deadlines: ConnectionDeadlineHandler) {
        self.deadlines = deadlines
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadlines.bytesArrived()
        context.fireChannelRead(data)
    }
}
