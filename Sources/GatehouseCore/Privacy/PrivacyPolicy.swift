import Crypto
import Foundation

/// What happens to a personal subject value before anything is written to disk.
public enum PrivacyMode: String, Sendable, CaseIterable {
    /// Stored and forwarded as received.
    case keep
    /// Partly hidden, e.g. 川F12345 → 川F1***5.
    case mask
    /// Replaced by HMAC-SHA256 with the site secret, so the centre can match without the clear value.
    case hash
    /// Removed; the subject type stays.
    case drop
}

/// Per-site policy for personal subjects (plates, card numbers, face ids, phone numbers).
public struct PrivacyPolicy: Sendable, Equatable {
    public static let governedTypes: [SubjectType] = [.plate, .card, .face, .person, .phone, .qr]
    public static let `default` = PrivacyPolicy(
        modes: [.plate: .keep, .card: .keep, .face: .keep, .person: .keep, .phone: .mask, .qr: .drop],
        hashSecret: nil)

    public var modes: [SubjectType: PrivacyMode]
    public var hashSecret: Secret?

    public init(modes: [SubjectType: PrivacyMode], hashSecret: Secret?) {
        self.modes = modes
        self.hashSecret = hashSecret
    }

    /// Applies the policy to an event's subject; everything else is left alone.
    public func apply(to event: inout Event) {
        guard var subject = event.subject, subject.treatment == nil || subject.treatment == .clear,
            let value = subject.value
        else { return }
        switch modes[subject.type] ?? .keep {
        case .keep:
            subject.treatment = .clear
        case .mask:
            subject.value = Self.mask(value, type: subject.type)
            subject.treatment = .masked
        case .hash:
            // The loader refuses a policy that hashes without a secret; drop rather than leak if it happens.
            if let secret = hashSecret {
                subject.value = Self.hash(value, type: subject.type, secret: secret)
                subject.treatment = .hashed
            } else {
                subject.value = nil
                subject.treatment = .dropped
            }
        case .drop:
            subject.value = nil
            subject.treatment = .dropped
        }
        event.subject = subject
    }

    /// Keeps the first three and the last character of a plate (川F1***5); for other values
    /// the last four characters of a long value, or the last one of a short one.
    public static func mask(_ value: String, type: SubjectType) -> String {
        let chars = Array(value)
        let (head, tail): (Int, Int) =
            switch type {
            case .plate: chars.count >= 5 ? (3, 1) : (min(1, chars.count), 0)
            default: chars.count >= 8 ? (0, 4) : (0, max(0, min(1, chars.count - 1)))
            }
        let hidden = max(1, chars.count - head - tail)
        return String(chars.prefix(head)) + String(repeating: "*", count: hidden) + String(chars.suffix(tail))
    }

    /// `hmac-sha256:` and the hex digest of `type:value` under the site secret.
    public static func hash(_ value: String, type: SubjectType, secret: Secret) -> String {
        let key = SymmetricKey(data: Data(secret.value.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(type.rawValue):\(value)".utf8), using: key)
        return "hmac-sha256:" + mac.map { String(format: "%02x", $0) }.joined()
    }
}
