import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// One XML element with its namespace, in document order. SOAP replies are read by local name
/// (vendors bind `tt:`, `ns2:` or no prefix at all to the same namespace), but reference
/// parameters must be echoed with their namespaces intact, so the tree keeps both.
struct ONVIFElement: Sendable, Equatable {
    var name: String
    var namespace: String?
    /// Attributes by local name.
    var attributes: [String: String]
    var children: [ONVIFElement]
    var text: String

    /// The first child with this local name.
    func child(_ local: String) -> ONVIFElement? { children.first { $0.name == local } }

    func children(_ local: String) -> [ONVIFElement] { children.filter { $0.name == local } }

    /// The first element with this local name at any depth below (depth first), or nil.
    func descendant(_ local: String) -> ONVIFElement? {
        for child in children {
            if child.name == local { return child }
            if let found = child.descendant(local) { return found }
        }
        return nil
    }

    /// Follows a path of local names.
    func path(_ names: String...) -> ONVIFElement? {
        var current: ONVIFElement? = self
        for name in names { current = current?.child(name) }
        return current
    }

    var trimmedText: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// The element written out again with its namespace declared on itself, so it can be
    /// copied into another document (a reference parameter echoed in a header).
    func xml(extraAttributes: String = "") -> String {
        // A default-namespace declaration keeps the element's namespace without inventing prefixes.
        var out = "<\(name) xmlns=\"\(ONVIFSOAP.escape(namespace ?? ""))\""
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) { out += " \(key)=\"\(ONVIFSOAP.escape(value))\"" }
        out += extraAttributes + ">"
        if children.isEmpty { out += ONVIFSOAP.escape(trimmedText) }
        for child in children { out += child.xml() }
        return out + "</\(name)>"
    }
}

/// Parses replies into `ONVIFElement`s. External entities are never resolved; depth and size are capped.
enum ONVIFXML {
    static let maxDepth = 64

    static func parse(_ bytes: [UInt8]) throws(ONVIFError) -> ONVIFElement {
        let delegate = Builder()
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        parser.delegate = delegate
        let ok = parser.parse()
        if let failure = delegate.failure { throw .malformed(failure) }
        guard ok, let root = delegate.root else {
            let detail = parser.parserError.map { "\($0.localizedDescription)" } ?? "no root element"
            throw .malformed("not well-formed XML at line \(parser.lineNumber): \(detail)")
        }
        return root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [ONVIFElement] = []
        var root: ONVIFElement?
        var failure: String?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            guard stack.count < ONVIFXML.maxDepth else {
                failure = "XML nested deeper than \(ONVIFXML.maxDepth) elements"
                parser.abortParsing()
                return
            }
            let local = Self.localName(elementName)
            var attrs: [String: String] = [:]
            for (key, value) in attributes where !key.hasPrefix("xmlns") { attrs[Self.localName(key)] = value }
            stack.append(ONVIFElement(name: local, namespace: namespaceURI.flatMap { $0.isEmpty ? nil : $0 }, attributes: attrs, children: [], text: ""))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard let done = stack.popLast() else { return }
            if stack.isEmpty { root = done } else { stack[stack.count - 1].children.append(done) }
        }

        static func localName(_ name: String) -> String {
            name.firstIndex(of: ":").map { String(name[name.index(after: $0)...]) } ?? name
        }
    }
}
