import Foundation
import GatehouseCore
import Mustache

/// What every console page is made of: cards of labelled figures and tables. The same values
/// render the HTML and, for live pages, the JSON the page's script polls, so both always agree.
struct Cell: Encodable, Sendable {
    var text: String
    var href: String?
    /// A CSS class, e.g. `state-down`.
    var cls: String?

    init(_ text: String, href: String? = nil, cls: String? = nil) {
        self.text = text
        self.href = href
        self.cls = cls
    }
}

struct Row: Encodable, Sendable {
    var cells: [Cell]

    /// The row as HTML, written by hand: the template library reads every cell through dynamic
    /// lookups, which made a 50-device page take milliseconds for each browser that opens it.
    /// Text is escaped as the templates escape it; nothing a device sent becomes markup.
    func html(into out: inout String) {
        out += "<tr>"
        for cell in cells {
            out += "<td"
            if let cls = cell.cls {
                out += " class=\""
                HTML.escape(cls, into: &out)
                out += "\""
            }
            out += ">"
            if let href = cell.href {
                out += "<a href=\""
                HTML.escape(href, into: &out)
                out += "\">"
                HTML.escape(cell.text, into: &out)
                out += "</a>"
            } else {
                HTML.escape(cell.text, into: &out)
            }
            out += "</td>"
        }
        out += "</tr>"
    }
}

enum HTML {
    /// The characters the templates escape, with the same entities.
    static let entities: [Unicode.Scalar: String] = ["&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"]

    static func escape(_ text: String, into out: inout String) {
        for scalar in text.unicodeScalars {
            if let entity = entities[scalar] { out += entity } else { out.unicodeScalars.append(scalar) }
        }
    }

    static func rows(_ rows: [Row]) -> String {
        var out = ""
        for row in rows { row.html(into: &out) }
        return out
    }
}

struct Table: Sendable {
    var id: String
    var title: String
    var headers: [String]
    var rows: [Row]
}

struct Field: Sendable {
    var id: String
    var label: String
    var value: String
}

struct Card: Sendable {
    var title: String
    var fields: [Field]
}

struct PageBody: Sendable {
    var title: String
    var cards: [Card] = []
    var tables: [Table] = []
    /// The JSON address the page's script polls; nil for a page that does not change by itself.
    var live: String?
    /// Forms and notes above and below the figures, already rendered.
    var before = ""
    var after = ""
    /// Live values shown outside the cards (written into `data-field` elements of `before`/`after`).
    var liveFields: [Field] = []

    /// The body of the live JSON endpoint.
    var liveData: LiveData {
        LiveData(
            fields: Dictionary((cards.flatMap(\.fields) + liveFields).map { ($0.id, $0.value) }, uniquingKeysWith: { first, _ in first }),
            tables: Dictionary(tables.map { ($0.id, $0.rows) }, uniquingKeysWith: { first, _ in first }))
    }
}

struct LiveData: Encodable, Sendable {
    var fields: [String: String]
    var tables: [String: [Row]]
}

/// The templates, compiled once at start; the layout wraps every page body.
struct Templates: Sendable {
    let library: MustacheLibrary

    init() throws {
        var library = MustacheLibrary()
        try library.register(Self.layout, named: "layout")
        try library.register(Self.body, named: "body")
        try library.register(Self.login, named: "login")
        try library.register(Self.eventSearch, named: "event-search")
        try library.register(Self.actionForm, named: "action-form")
        try library.register(Self.payload, named: "payload")
        try library.register(Self.lastPayload, named: "last-payload")
        try library.register(Self.note, named: "note")
        try library.register(Self.profileTester, named: "profile-tester")
        try library.register(Self.scaffoldForm, named: "scaffold-form")
        try library.register(Self.discardForm, named: "discard-form")
        try library.register(Self.profileEditor, named: "profile-editor")
        self.library = library
    }

    func render(_ name: String, _ object: Any) -> String {
        library.render(object, withTemplate: name) ?? ""
    }

    static let layout = """
        <!doctype html>
        <html lang="{{lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
        <title>{{title}} · Gatehouse {{site}}</title><link rel="stylesheet" href="/console/assets/console.css"></head>
        <body><header><span class="site">Gatehouse · {{site}}</span>
        <a href="/console">{{t.overview}}</a><a href="/console/devices">{{t.devices}}</a><a href="/console/events">{{t.events}}</a><a href="/console/quarantine">{{t.quarantine}}</a><a href="/console/profiles">{{t.profiles}}</a>
        <span class="user">{{#user}}{{t.signedInAs}} <b id="signed-in-user">{{user}}</b>
        <form class="inline" method="post" action="/console/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button id="logout">{{t.logout}}</button></form>{{/user}}{{^user}}<a id="login" href="/console/login">{{t.login}}</a>{{/user}}</span></header>
        {{#flash}}<p class="flash{{#flashIsError}} error{{/flashIsError}}" id="flash">{{flash}}</p>{{/flash}}
        <main>{{{body}}}</main>
        <script src="/console/assets/console.js"></script></body></html>
        """

    static let body = """
        <h1>{{title}}</h1>
        {{{before}}}
        <div id="live"{{#live}} data-live="{{live}}"{{/live}}>
        <div class="cards">{{#cards}}<section class="card"><h2>{{title}}</h2><dl>{{#fields}}<dt>{{label}}</dt><dd data-field="{{id}}" id="f-{{id}}">{{value}}</dd>{{/fields}}</dl></section>{{/cards}}</div>
        {{#tables}}{{#heading}}<h2>{{heading}}</h2>{{/heading}}<table id="t-{{id}}"><thead><tr>{{#headers}}<th>{{.}}</th>{{/headers}}</tr></thead>
        <tbody data-table="{{id}}">{{{rows}}}</tbody></table>
        {{/tables}}</div>
        {{{after}}}
        """

    static let login = """
        <form method="post" action="/console/login" id="login-form">
        <label>{{t.user}} <input name="user" id="user-field" autocomplete="username"></label>
        <label>{{t.password}} <input type="password" name="password" id="password-field" autocomplete="current-password"></label>
        <button id="login-button">{{t.login}}</button></form>
        {{^hasUsers}}<p>{{t.consoleDisabledLogin}}</p>{{/hasUsers}}
        """

    static let eventSearch = """
        <form method="get" action="/console/events" id="event-search">
        <label>{{t.kind}} <select name="kind" id="kind-field"><option value="">{{t.any}}</option>{{#kinds}}<option{{#selected}} selected{{/selected}}>{{name}}</option>{{/kinds}}</select></label>
        <label>{{t.device}} <select name="device" id="device-field"><option value="">{{t.any}}</option>{{#devices}}<option{{#selected}} selected{{/selected}}>{{name}}</option>{{/devices}}</select></label>
        <label>{{t.from}} <input name="from" id="from-field" value="{{from}}" placeholder="2026-12-01T08:00:00Z"></label>
        <label>{{t.until}} <input name="until" id="until-field" value="{{until}}"></label>
        <button id="search">{{t.search}}</button></form><p><small>{{t.timesHint}}</small></p>
        """

    /// A changing action: a POST carrying the session's CSRF token.
    static let actionForm = """
        <form class="inline" method="post" action="{{action}}"><input type="hidden" name="csrf" value="{{csrf}}"><button id="{{buttonID}}">{{label}}</button></form>
        """

    /// A profile's profile.yaml in an editor, and activating it for a device: both changes, so
    /// both carry the CSRF token.
    static let profileEditor = """
        <p><small id="profile-file">{{file}}</small> · <a id="test-this-profile" href="/console/profiles/test?profile={{name}}">{{t.profileTester}}</a></p>
        <form method="post" action="/console/profiles/{{name}}/save" id="profile-editor"><input type="hidden" name="csrf" value="{{csrf}}">
        <textarea name="text" id="profile-text" rows="30" spellcheck="false">{{text}}</textarea>
        <p><button id="save-profile">{{t.saveProfile}}</button></p></form>
        <h2>{{t.activateFor}}</h2>
        {{#configProblem}}<p class="note" id="config-not-writable">{{configProblem}}</p>{{/configProblem}}
        <form method="post" action="/console/profiles/{{name}}/activate" id="activate-form"><input type="hidden" name="csrf" value="{{csrf}}">
        <label>{{t.device}} <select name="device" id="activate-device">{{#devices}}<option>{{name}}</option>{{/devices}}</select></label>
        <button id="activate">{{t.activate}}</button></form>
        """

    /// Discards a quarantine entry; the reason is required and recorded with the user.
    static let discardForm = """
        <form method="post" action="/console/quarantine/{{id}}/discard" id="discard-form"><input type="hidden" name="csrf" value="{{csrf}}">
        <label>{{t.discardReason}} <input name="reason" id="discard-reason" required maxlength="500"></label>
        <button id="discard">{{t.discard}}</button></form>
        """

    /// Writes a draft profile folder: a change, so it carries the CSRF token.
    static let scaffoldForm = """
        <form method="post" action="/console/profiles/scaffold" id="scaffold-form"><input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="device" value="{{device}}"><label>{{t.newProfileName}} <input name="name" id="scaffold-name" placeholder="acme-lpr"></label>
        <button id="scaffold">{{t.scaffold}}</button></form>
        """

    static let payload = """
        <h2>{{title}}</h2>{{#text}}<pre id="payload">{{text}}</pre>{{/text}}{{#hidden}}<p id="payload-hidden">{{hidden}}</p>{{/hidden}}
        """

    /// A device's last raw payload, already under the privacy policy; the script keeps it live.
    static let lastPayload = """
        <h2>{{t.lastPayload}}</h2><p class="note">{{t.payloadPolicy}}</p>
        <p class="note" id="last-payload-note" data-field="last-payload-note">{{note}}</p>
        <pre id="last-payload" data-field="last-payload">{{text}}</pre>
        """

    static let note = "<p class=\"note\">{{text}}</p>"

    /// POST because a payload can be long; it changes nothing, so it needs neither login nor CSRF token.
    static let profileTester = """
        <form method="post" action="/console/profiles/test" id="profile-test">
        <p><label>{{t.profile}} <select name="profile" id="profile-field">{{#profiles}}<option{{#selected}} selected{{/selected}}>{{name}}</option>{{/profiles}}</select></label>
        <label>{{t.contentType}} <input name="content_type" id="content-type-field" value="{{contentType}}"></label>
        <label>{{t.timeZone}} <input name="time_zone" value="{{timeZone}}"></label>
        <label>{{t.serial}} <input name="serial" value="{{serial}}"></label></p>
        <p><textarea name="payload" id="payload-field" rows="12" cols="100" placeholder="{{t.pastePayload}}">{{payload}}</textarea></p>
        <button id="run-test">{{t.runTest}}</button></form>
        """
}

/// Option of a `<select>`.
struct Choice: Sendable {
    var name: String
    var selected: Bool
}

enum Format {
    static func duration(_ seconds: Double) -> String {
        let whole = Int(max(0, seconds))
        if whole < 120 { return "\(whole) s" }
        if whole < 7200 { return "\(whole / 60) min" }
        if whole < 172_800 { return "\(whole / 3600) h \(whole % 3600 / 60) min" }
        return "\(whole / 86_400) d \(whole % 86_400 / 3600) h"
    }

    static func bytes(_ value: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: value, countStyle: .binary)
    }

    static func time(_ time: Timestamp?, never: String) -> String { time?.rfc3339 ?? never }
}
