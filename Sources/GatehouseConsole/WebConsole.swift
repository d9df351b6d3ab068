import Foundation
import GatehouseCore
import GatehouseQueue
import Hummingbird
import Logging
import NIOCore

/// The web console: pages under `/console` on the admin listener. Reading needs no login;
/// replay and reload need a session (cookie) and the session's CSRF token in the form, and
/// each is written to the log with the user's name.
public struct WebConsole: Sendable {
    let settings: ConsoleSettings
    let backend: ConsoleBackend
    let sessions: SessionStore
    let throttle: LoginThrottle
    let statusCache: StatusCache
    /// The live event feeds (no time range), by filter, shared for a second like the status.
    let feedCache: SharedForASecond<[StoredEvent]>
    /// Each live page's JSON, by language and address, shared for a second like the status.
    let liveReplies: SharedForASecond<LiveReply?>
    let templates: Templates
    let logger: Logger

    static let cookieName = "gatehouse_console"
    /// Forms are a few fields, or one pasted payload in the profile tester.
    static let maxFormBytes = 1 << 20

    public init(settings: ConsoleSettings, backend: ConsoleBackend, clock: any TimerClock, logger: Logger) throws {
        self.settings = settings
        self.backend = backend
        self.sessions = SessionStore(clock: clock, lifetimeMinutes: settings.sessionMinutes)
        self.throttle = LoginThrottle(clock: clock)
        self.statusCache = StatusCache(clock: clock, load: backend.status)
        self.feedCache = SharedForASecond(clock: clock)
        self.liveReplies = SharedForASecond(clock: clock)
        self.templates = try Templates()
        self.logger = logger
    }

    /// Who is asking, in which language.
    struct Visitor {
        var language: Language
        var words: [String: String]
        var token: String?
        var session: SessionStore.Session?

        func t(_ key: String) -> String { words[key] ?? key }
    }

    func visitor(_ request: Request) -> Visitor {
        let language = Language.preferred(acceptLanguage: request.headers[.acceptLanguage])
        let token = request.cookies[Self.cookieName]?.value
        return Visitor(language: language, words: language.words, token: token, session: sessions.session(token: token))
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/console/assets/console.css") { _, _ in Self.asset(Assets.css, type: "text/css; charset=utf-8") }
        router.get("/console/assets/console.js") { _, _ in Self.asset(Assets.javascript, type: "text/javascript; charset=utf-8") }

        router.get("/console") { request, _ in
            let visitor = visitor(request)
            return try await page(visitor, overview(visitor, status: try await statusCache.status()))
        }
        router.get("/console/api/overview") { request, _ in
            try await live(request) { visitor in overview(visitor, status: try await statusCache.status()) }
        }
        router.get("/console/devices") { request, _ in
            let visitor = visitor(request)
            return try await page(visitor, devices(visitor, status: try await statusCache.status()))
        }
        router.get("/console/api/devices") { request, _ in
            try await live(request) { visitor in devices(visitor, status: try await statusCache.status()) }
        }
        router.get("/console/devices/:id") { request, context in
            let visitor = visitor(request)
            let id = context.parameters.get("id") ?? ""
            guard let body = try await device(visitor, id: id) else { return try await notFound(visitor) }
            return try await page(visitor, body)
        }
        router.get("/console/api/devices/:id") { request, context in
            try await live(request) { visitor in try await device(visitor, id: context.parameters.get("id") ?? "") }
        }
        router.get("/console/events") { request, _ in
            let visitor = visitor(request)
            return try await page(visitor, try await events(visitor, query: request.uri.queryParameters))
        }
        router.get("/console/api/events") { request, _ in
            try await live(request) { visitor in try await events(visitor, query: request.uri.queryParameters) }
        }
        router.get("/console/quarantine") { request, _ in
            let visitor = visitor(request)
            return try await page(visitor, try await quarantineList(visitor))
        }
        router.get("/console/quarantine/:id") { request, context in
            let visitor = visitor(request)
            guard let id = context.parameters.get("id", as: Int64.self), let entry = try await backend.queue.quarantineEntry(id: id) else {
                return try await notFound(visitor)
            }
            return try await page(visitor, quarantineEntry(visitor, entry: entry))
        }
        router.post("/console/quarantine/:id/replay") { request, context in
            try await changing(request, action: "replay") { visitor, session, _ in
                guard let id = context.parameters.get("id", as: Int64.self), let entry = try await backend.queue.quarantineEntry(id: id) else {
                    return try await notFound(visitor)
                }
                let message = await replay(entry, by: session.user)
                let updated = try await backend.queue.quarantineEntry(id: id) ?? entry
                return try await page(visitor, quarantineEntry(visitor, entry: updated), flash: message)
            }
        }
        router.post("/console/quarantine/:id/discard") { request, context in
            try await changing(request, action: "discard") { visitor, session, form in
                guard let id = context.parameters.get("id", as: Int64.self), let entry = try await backend.queue.quarantineEntry(id: id) else {
                    return try await notFound(visitor)
                }
                let reason = String((form["reason"] ?? "").prefix(500))
                let metadata: Logger.Metadata = ["console.user": "\(session.user)", "console.action": "discard", "quarantine.id": "\(id)"]
                do {
                    let discarded = try await backend.queue.discardQuarantine(id: id, by: session.user, reason: reason)
                    // The operator's reason is their own words about the entry, not the payload's.
                    logger.notice("console: \(session.user) discarded quarantine entry \(id): \(reason)", metadata: metadata)
                    return try await page(visitor, quarantineEntry(visitor, entry: discarded), flash: Flash(text: "\(id): \(visitor.t("discarded"))", isError: false))
                } catch let refused as EventQueue.DiscardRefused {
                    logger.warning("console: \(session.user) discarding quarantine entry \(id) refused: \(refused)", metadata: metadata)
                    var response = try await page(visitor, quarantineEntry(visitor, entry: entry), flash: Flash(text: refused.description, isError: true))
                    response.status = .badRequest
                    return response
                }
            }
        }
        router.post("/console/quarantine/replay-all") { request, _ in
            try await changing(request, action: "replay all") { visitor, session, _ in
                let waiting = try await backend.queue.quarantineEntries(limit: 10_000, pendingOnly: true)
                var replayed = 0
                var failed = 0
                for entry in waiting.reversed() {
                    if (await replay(entry, by: session.user)).isError { failed += 1 } else { replayed += 1 }
                }
                logger.notice("console: \(session.user) replayed all waiting quarantine entries: \(replayed) replayed, \(failed) still failing")
                let flash = Flash(text: "\(visitor.t("replayed")): \(replayed), \(visitor.t("lastError")): \(failed)", isError: failed > 0)
                return try await page(visitor, try await quarantineList(visitor), flash: flash)
            }
        }
        router.post("/console/reload") { request, _ in
            try await changing(request, action: "reload") { visitor, session, _ in
                logger.notice("console: \(session.user) asked for a config reload", metadata: ["console.user": "\(session.user)", "console.action": "reload"])
                await backend.reload()
                return try await page(
                    visitor, overview(visitor, status: try await statusCache.status()),
                    flash: Flash(text: "\(visitor.t("reload")): ✓ (gatehouse log)", isError: false))
            }
        }
        router.get("/console/profiles") { request, _ in
            let visitor = visitor(request)
            return try await page(visitor, profiles(visitor))
        }
        router.get("/console/profiles/test") { request, _ in
            let visitor = visitor(request)
            var form: [String: String] = [:]
            for (name, value) in request.uri.queryParameters { form[String(name)] = String(value) }
            return try await page(visitor, try await profileTester(visitor, form: form))
        }
        router.post("/console/profiles/test") { request, _ in
            let visitor = visitor(request)
            return try await page(visitor, try await profileTester(visitor, form: try await Self.form(request)))
        }
        router.get("/console/profiles/:name") { request, context in
            let visitor = visitor(request)
            guard let body = try await profileEditor(visitor, name: context.parameters.get("name") ?? "") else { return try await notFound(visitor) }
            return try await page(visitor, body)
        }
        router.post("/console/profiles/:name/save") { request, context in
            try await changing(request, action: "edit profile") { visitor, session, form in
                let name = context.parameters.get("name") ?? ""
                guard let (body, flash, saved) = try await saveProfile(visitor, name: name, text: form["text"] ?? "", user: session.user) else {
                    return try await notFound(visitor)
                }
                var response = try await page(visitor, body, flash: flash)
                if !saved { response.status = .badRequest }
                return response
            }
        }
        router.post("/console/profiles/:name/activate") { request, context in
            try await changing(request, action: "activate profile") { visitor, session, form in
                let name = context.parameters.get("name") ?? ""
                guard profileFolder(name) != nil else { return try await notFound(visitor) }
                let device = form["device"] ?? ""
                let metadata: Logger.Metadata = ["console.user": "\(session.user)", "console.action": "activate profile", "profile": "\(name)"]
                let flash: Flash
                var status = HTTPResponse.Status.ok
                do {
                    let done = try await backend.activateProfile(name, device)
                    logger.notice("console: \(session.user) activated profile \(name) for device \(device): \(done)", metadata: metadata)
                    flash = Flash(text: "\(visitor.t("activated")): \(name) → \(device): \(done)", isError: false)
                } catch {
                    logger.warning("console: \(session.user) activating profile \(name) for device \(device) failed: \(error)", metadata: metadata)
                    flash = Flash(text: "\(error)", isError: true)
                    status = .conflict
                }
                guard let body = try await profileEditor(visitor, name: name) else { return try await notFound(visitor) }
                var response = try await page(visitor, body, flash: flash)
                response.status = status
                return response
            }
        }
        router.post("/console/profiles/scaffold") { request, _ in
            try await changing(request, action: "scaffold") { visitor, session, form in
                let (body, flash) = try await scaffold(visitor, device: form["device"] ?? "", name: form["name"] ?? "", user: session.user)
                return try await page(visitor, body, flash: flash)
            }
        }
        router.get("/console/login") { request, _ in
            let visitor = visitor(request)
            return try await page(visitor, loginBody(visitor))
        }
        router.post("/console/login") { request, _ in
            let visitor = visitor(request)
            let form = try await Self.form(request)
            let name = form["user"] ?? ""
            if let seconds = throttle.lockedFor(name) {
                logger.warning("console: login refused: too many wrong passwords, locked for \(Int(seconds.rounded(.up))) s", metadata: ["console.user": "\(name.prefix(64))"])
                var response = try await page(visitor, loginBody(visitor), flash: Flash(text: "\(visitor.t("loginLocked")) (\(Int(seconds.rounded(.up))) s)", isError: true))
                response.status = .tooManyRequests
                return response
            }
            guard let user = authenticate(name: name, password: form["password"] ?? "") else {
                throttle.failed(name)
                logger.warning("console: failed login", metadata: ["console.user": "\(name.prefix(64))"])
                var response = try await page(visitor, loginBody(visitor), flash: Flash(text: visitor.t("loginFailed"), isError: true))
                response.status = .unauthorized
                return response
            }
            throttle.succeeded(user)
            let (token, session) = sessions.open(user: user)
            logger.notice("console: \(user) logged in", metadata: ["console.user": "\(user)", "console.action": "login"])
            var response = Response(status: .seeOther, headers: [.location: "/console"])
            response.setCookie(
                Cookie(
                    name: Self.cookieName, value: token, maxAge: Int(settings.sessionMinutes * 60), path: "/console", secure: settings.secureCookies, httpOnly: true,
                    sameSite: .strict))
            _ = session
            return response
        }
        router.post("/console/logout") { request, _ in
            try await changing(request, action: "logout") { visitor, session, _ in
                sessions.close(token: visitor.token)
                logger.notice("console: \(session.user) logged out", metadata: ["console.user": "\(session.user)", "console.action": "logout"])
                var response = Response(status: .seeOther, headers: [.location: "/console"])
                response.setCookie(Cookie(name: Self.cookieName, value: "", maxAge: 0, path: "/console", secure: settings.secureCookies, httpOnly: true, sameSite: .strict))
                return response
            }
        }
    }

    // MARK: - Access

    /// The user name when the password matches; scrypt runs for unknown names too, so the time
    /// taken does not tell which names exist.
    func authenticate(name: String, password: String) -> String? {
        guard !settings.users.isEmpty else { return nil }
        let user = settings.users.first { $0.name == name }
        let stored = user?.passwordHash ?? settings.users[0].passwordHash
        let matches = PasswordCheck.verify(password, against: stored)
        guard let user, matches else { return nil }
        return user.name
    }

    /// Runs a changing action: refused (401) without a live session, refused (403) when the
    /// form's CSRF token is not the session's; both refusals are logged.
    func changing(
        _ request: Request, action: String, _ perform: (Visitor, SessionStore.Session, [String: String]) async throws -> Response
    ) async throws -> Response {
        let visitor = visitor(request)
        let form = try await Self.form(request)
        guard let session = visitor.session else {
            logger.warning("console: \(action) refused: not logged in", metadata: ["console.action": "\(action)"])
            var response = try await page(visitor, loginBody(visitor), flash: Flash(text: visitor.t("loginNeeded"), isError: true))
            response.status = .unauthorized
            return response
        }
        guard let sent = form["csrf"], Self.constantTimeEqual(sent, session.csrfToken) else {
            logger.warning(
                "console: \(action) by \(session.user) refused: missing or wrong CSRF token",
                metadata: ["console.user": "\(session.user)", "console.action": "\(action)"])
            return Response(status: .forbidden, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "CSRF token missing or wrong\n")))
        }
        // The page after a change must show its effect, not a report from before it.
        invalidateShared()
        defer { invalidateShared() }
        return try await perform(visitor, session, form)
    }

    /// Everything read once for all browsers is read afresh next time.
    func invalidateShared() {
        statusCache.invalidate()
        feedCache.invalidate()
        liveReplies.invalidate()
    }

    /// A live page's JSON: rendered once a second for all browsers asking in the same language,
    /// logged in or not (a device's raw payload is shown only to a logged-in user), and answered
    /// with 304 when the browser already has it (its `If-None-Match` is the ETag).
    func live(_ request: Request, _ render: (Visitor) async throws -> PageBody?) async throws -> Response {
        let visitor = visitor(request)
        let key = "\(visitor.language.rawValue) \(visitor.session == nil ? "reader" : "user") \(request.uri.path)?\(request.uri.query ?? "")"
        guard let reply = try await liveReplies.value(key, load: { try await render(visitor).map { LiveReply(LiveJSON.encode($0.liveData)) } }) else {
            return Response(status: .notFound)
        }
        var headers = HTTPFields()
        headers[.eTag] = reply.etag
        headers[.cacheControl] = "no-cache"
        if request.headers[.ifNoneMatch] == reply.etag { return Response(status: .notModified, headers: headers) }
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: reply.body))
    }

    func replay(_ entry: QuarantineEntry, by user: String) async -> Flash {
        let metadata: Logger.Metadata = ["console.user": "\(user)", "console.action": "replay", "quarantine.id": "\(entry.id)"]
        if let discarded = entry.discarded {
            return Flash(text: "\(entry.id): discarded \(discarded.at.rfc3339) (\(discarded.by))", isError: true)
        }
        do {
            let ids = try await backend.replay(entry)
            logger.notice("console: \(user) replayed quarantine entry \(entry.id) as \(ids.count) event(s)", metadata: metadata)
            return Flash(text: "\(entry.id) → \(ids.map(\.description).joined(separator: ", "))", isError: false)
        } catch {
            logger.warning("console: \(user) replayed quarantine entry \(entry.id): failed: \(error)", metadata: metadata)
            return Flash(text: "\(entry.id): \(error)", isError: true)
        }
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    // MARK: - Rendering

    struct Flash {
        var text: String
        var isError: Bool
    }

    func page(_ visitor: Visitor, _ body: PageBody, flash: Flash? = nil) async throws -> Response {
        let site = (try? await statusCache.status().site) ?? ""
        // Absent keys, not nil values: a section on a boxed nil would count as present.
        var bodyContext: [String: Any] = [
            "t": visitor.words, "title": body.title, "before": body.before, "after": body.after,
            "cards": body.cards.map { card in ["title": card.title, "fields": card.fields.map { ["id": $0.id, "label": $0.label, "value": $0.value] }] },
            // No "heading" key for a table without one: an empty heading would print an empty <h2>.
            "tables": body.tables.map { table in
                var context: [String: Any] = ["id": table.id, "headers": table.headers, "rows": HTML.rows(table.rows)]
                if !table.title.isEmpty { context["heading"] = table.title }
                return context
            },
        ]
        if let live = body.live { bodyContext["live"] = live }
        var layoutContext: [String: Any] = [
            "t": visitor.words, "lang": visitor.language.rawValue, "title": body.title, "site": site,
            "body": templates.render("body", bodyContext), "csrf": visitor.session?.csrfToken ?? "",
        ]
        if let user = visitor.session?.user { layoutContext["user"] = user }
        if let flash {
            layoutContext["flash"] = flash.text
            layoutContext["flashIsError"] = flash.isError
        }
        let html = templates.render("layout", layoutContext)
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.contentLanguage] = visitor.language.rawValue
        headers[.cacheControl] = "no-store"
        // Only our own script and style; no frames (clickjacking a replay button).
        headers[.contentSecurityPolicy] = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func notFound(_ visitor: Visitor) async throws -> Response {
        var response = try await page(visitor, PageBody(title: visitor.t("notFound")))
        response.status = .notFound
        return response
    }

    func loginBody(_ visitor: Visitor) -> PageBody {
        PageBody(title: visitor.t("login"), before: templates.render("login", ["t": visitor.words, "hasUsers": !settings.users.isEmpty] as [String: Any]))
    }

    /// A changing button: a POST form with the session's CSRF token (empty when not logged in;
    /// the server then refuses and says why).
    func actionForm(_ visitor: Visitor, action: String, label: String, buttonID: String) -> String {
        templates.render(
            "action-form", ["action": action, "label": label, "buttonID": buttonID, "csrf": visitor.session?.csrfToken ?? ""] as [String: Any])
    }

    static func asset(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=3600"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// An `application/x-www-form-urlencoded` body as name → value.
    static func form(_ request: Request) async throws -> [String: String] {
        var body = try await request.body.collect(upTo: maxFormBytes)
        let text = body.readString(length: body.readableBytes) ?? ""
        var components = URLComponents()
        components.percentEncodedQuery = text.replacingOccurrences(of: "+", with: "%20")
        var fields: [String: String] = [:]
        for item in components.queryItems ?? [] where fields[item.name] == nil { fields[item.name] = item.value ?? "" }
        return fields
    }
}
