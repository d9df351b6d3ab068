/// Hides values that may be personal in free text that is kept or printed outside the sealed
/// payload: quarantine reasons (which often quote a field's value) and scaffolded samples.
public enum ValueRedactor {
    public static let marker = "…"

    /// Replaces every word that looks like a value rather than a word of the message: any word
    /// with a character outside ASCII (Chinese plates, names), any word of five or more
    /// characters with a digit (plates, card numbers, phone numbers, ids), and every e-mail
    /// address as a whole. Field names, short counts and the message's own words stay, so the
    /// reason still says what went wrong.
    public static func redactText(_ text: String) -> String {
        // An address's dots would split it into words that each look harmless ("wei", "zhang").
        let text = text.contains("@") ? text.replacing(emailAddress, with: marker) : text
        var out = ""
        var word = ""
        func flush() {
            guard !word.isEmpty else { return }
            out += looksPersonal(word) ? marker : word
            word = ""
        }
        for character in text {
            if isWordCharacter(character) {
                word.append(character)
            } else {
                flush()
                out.append(character)
            }
        }
        flush()
        return out
    }

    nonisolated(unsafe) static let emailAddress = /[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*/

    public static func looksPersonal(_ word: String) -> Bool {
        if word.unicodeScalars.contains(where: { !$0.isASCII }) { return true }
        return word.count >= 5 && word.contains(where: \.isNumber)
    }

    static func isWordCharacter(_ c: Character) -> Bool {
        if c.isLetter || c.isNumber { return true }
        return "-_+@#*".contains(c)
    }
}
