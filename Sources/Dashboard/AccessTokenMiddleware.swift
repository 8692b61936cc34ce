// The token check in front of every route (page, assets, API, files, thumbnails). The address printed at
// start carries `?token=…`; the answer to it sets the token as a cookie (HttpOnly: no script reads it;
// SameSite=Strict: no other site's page sends it), which the page's own requests then carry.
import Hummingbird

struct AccessTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    static var cookieName: String { "inkwell_dashboard_token" }

    let access: DashboardAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard access.token != nil else { return try await next(request, context) }
        if let offered = request.uri.queryParameters["token"], access.accepts(String(offered)) {
            var response = try await next(request, context)
            response.setCookie(Cookie(name: Self.cookieName, value: String(offered), path: "/", httpOnly: true, sameSite: .strict))
            return response
        }
        guard access.accepts(request.cookies[Self.cookieName]?.value) else {
            throw HTTPError(.unauthorized, message: "this dashboard needs its token: open the address inkwell dashboard printed (…/?token=…)")
        }
        return try await next(request, context)
    }
}
