import Yams

extension ConfigLoader {
    /// The line of a top-level key in a config text, for diagnostics found after loading
    /// (checks of the machine, not of the file); nil when the key is not written.
    public static func line(ofTopLevelKey key: String, in text: String) -> Int? {
        guard let root = try? YAMLDocument.compose(text), let mapping = root.mapping else { return nil }
        return mapping.first { $0.key.string == key }?.key.mark?.line
    }
}
