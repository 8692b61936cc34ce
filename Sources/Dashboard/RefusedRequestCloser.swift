// Closes the connection once a request the dashboard refuses (any method but GET and HEAD: CONNECT, POST, …)
// has its answer. Without it a CONNECT got its 405 and its connection stayed open: after CONNECT the HTTP
// parser treats the rest of the stream as a tunnel, so the connection would never carry another request.
import NIOCore
import NIOHTTPTypes

final class RefusedRequestCloser: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var closeAfterResponse = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), head.method != .get, head.method != .head {
            closeAfterResponse = true
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard closeAfterResponse, case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        context.writeAndFlush(data).assumeIsolated().whenComplete { result in
            promise?.completeWith(result)
            context.close(promise: nil)
        }
    }
}
