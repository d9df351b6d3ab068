/// Licence-plate text as every driver and profile stores it.
public enum PlateNumber {
    /// Strips spaces, `·` and separators, upper-cases Latin letters, keeps the province character:
    /// `川 f·12345` → `川F12345`.
    public static func normalize(_ raw: String) -> String {
        let dropped: Set<Character> = [" ", "\u{3000}", "·", "•", "-", ".", "\u{00B7}", "\u{30FB}"]
        return String(raw.filter { !dropped.contains($0) }.map { $0.isASCII ? Character($0.uppercased()) : $0 })
    }
}
