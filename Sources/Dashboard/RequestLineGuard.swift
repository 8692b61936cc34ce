// Answers a request line that is not HTTP/1.x (an HTTP/0.9 "GET /", a stray line of text) with 400 and
// closes the connection. The HTTP/1 parser otherwise waits on such a line for headers that never come,
// holding the connection until the idle timeout without a word. It looks at the first line only, then
// leaves the pipeline.
import HummingbirdCore
import Logging
import NIOCore

final class RequestLineGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Longer first lines are left to the parser, whose own limits apply.
    static let maxLineLength = 8192
    private var pending: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var pending {
            pending.writeBuffer(&bytes)
            self.pending = pending
        } else {
            pending = bytes
        }
        guard let buffered = pending else { return }
        let view = buffered.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffered.readableBytes > Self.maxLineLength { pass(context) }
            return
        }
        let line = String(decoding: view[view.startIndex..<newline], as: UTF8.self)
        let words = line.trimmingSuffix("\r").split(separator: " ", omittingEmptySubsequences: false)
        if words.count == 3, words[2].hasPrefix("HTTP/1.") {
            pass(context)
        } else {
            pending = nil
            let answer = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 35\r\n\r\n"
                + "the dashboard speaks HTTP/1.x only\n"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Hands what was read to the HTTP parser and leaves.
    private func pass(_ context: ChannelHandlerContext) {
        if let pending { context.fireChannelRead(wrapInboundOut(pending)) }
        pending = nil
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

private extension String {
    func trimmingSuffix(_ suffix: String) -> Substring { hasSuffix(suffix) ? dropLast(suffix.count) : self[...] }
}

/// Hummingbird's HTTP/1 channel with `RequestLineGuard` ahead of its parser.
struct GuardedHTTP1Channel: ServerChildChannel {
    let inner: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(RequestLineGuard())
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
