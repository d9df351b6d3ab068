import Foundation
import GatehouseCore
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads XML into the same tree JSON bodies give, so one path syntax serves both: elements
/// become objects, repeated elements arrays, attributes `@name`, and an element with only
/// text becomes that string (mixed content keeps its text under `#text`).
///
/// Namespace prefixes are dropped: vendors change the schema URL between firmware releases
/// (`hikvision.com/ver20` vs `isapi.org/ver20`) while the element names stay the same.
public enum XMLTree {
    public static let maxDepth = 64

    public static func parse(_ bytes: [UInt8]) throws(MappingError) -> JSONValue {
        let delegate = Builder()
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = false
        parser.shouldResolveExternalEntities = false
        parser.delegate = delegate
        let ok = parser.parse()
        if let failure = delegate.failure { throw MappingError(failure) }
        guard ok, let root = delegate.root else {
            let detail = parser.parserError.map { "\($0.localizedDescription)" } ?? "no root element"
            throw MappingError("malformed XML at line \(parser.lineNumber): \(detail)")
        }
        return .object([root.name: root.value])
    }

    /// One open element while parsing.
    final class Frame {
        let name: String
        var attributes: [String: JSONValue]
        var children: [(String, JSONValue)] = []
        var text = ""

        init(name: String, attributes: [String: String]) {
            self.name = name
            self.attributes = Dictionary(uniqueKeysWithValues: attributes.map { ("@" + XMLTree.localName($0.key), .string($0.value)) })
        }

        var value: JSONValue {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if children.isEmpty && attributes.isEmpty { return .string(trimmed) }
            var object = attributes
            for (name, child) in children {
                switch object[name] {
                case nil: object[name] = child
                case .array(var items)?:
                    items.append(child)
                    object[name] = .array(items)
                case let existing?: object[name] = .array([existing, child])
                }
            }
            if !trimmed.isEmpty { object["#text"] = .string(trimmed) }
            return .object(object)
        }
    }

    final class Builder: NSObject, XMLParserDelegate {
        var stack: [Frame] = []
        var root: (name: String, value: JSONValue)?
        var failure: String?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            guard stack.count < XMLTree.maxDepth else {
                failure = "XML nested deeper than \(XMLTree.maxDepth) levels"
                parser.abortParsing()
                return
            }
            stack.append(Frame(name: XMLTree.localName(elementName), attributes: attributes.filter { !$0.key.hasPrefix("xmlns") }))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack.last?.text += string
        }

        func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
            stack.last?.text += String(decoding: CDATABlock, as: UTF8.self)
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard let frame = stack.popLast() else { return }
            if let parent = stack.last {
                parent.children.append((frame.name, frame.value))
            } else {
                root = (frame.name, frame.value)
            }
        }
    }

    static func localName(_ name: String) -> String {
        name.split(separator: ":").last.map(String.init) ?? name
    }
}
