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
    /// Residents' names (ZKTeco roster lines, profile attributes in `personNameAttributes`):
    /// only `keep` keeps them; anything else removes them before the event is stored.
    public var names: PrivacyMode = .drop
    /// Pictures that come with payloads (`privacy.images`).
    public var images: ImagePolicy = .keep
    /// Seals quarantined payloads (`privacy.quarantine_key`); without it the daemon generates
    /// `<state_directory>/quarantine.key` (README "Privacy").
    public var quarantineKey: Secret?

    public init(
        modes: [SubjectType: PrivacyMode], hashSecret: Secret?, names: PrivacyMode = .drop, images: ImagePolicy = .keep,
        quarantineKey: Secret? = nil
    ) {
        self.modes = modes
        self.hashSecret = hashSecret
        self.names = names
        self.images = images
        self.quarantineKey = quarantineKey
    }

    /// Attribute keys that hold a person's name, whatever the driver or profile.
    public static let personNameAttributes: Set<String> = [
        "name", "personName", "userName", "employeeName", "ownerName", "driverName", "residentName",
    ]

    /// Applies the policy to an event's subject and to attributes that hold names.
    public func apply(to event: inout Event) {
        if names != .keep, var attributes = event.attributes {
            for key in Self.personNameAttributes { attributes[key] = nil }
            event.attributes = attributes.isEmpty ? nil : attributes
        }
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
        // A device's dedup key may quote the value (`card-8800123456-0815`): it is stored in the
        // dedup table and forwarded, so it gets the treated value (or `…` when dropped).
        if subject.treatment != .clear, value.count >= 4, let key = event.source.dedupKey, key.contains(value) {
            event.source.dedupKey = key.replacingOccurrences(of: value, with: subject.value ?? ValueRedactor.marker)
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

/// What happens to pictures that come with a payload (`privacy.images`).
public enum ImagePolicy: Sendable, Equatable {
    /// Never written to disk and never forwarded; the event only counts them.
    case drop
    /// Kept as `images.store` says, until `images.max_bytes` needs the room.
    case keep
    /// Kept, and deleted by the retention sweep once older than this many days.
    case keepDays(Double)

    /// `drop`, `keep` or `keep N days`.
    public init?(_ text: String) {
        let words = text.lowercased().split(separator: " ").map(String.init)
        switch words.count {
        case 1 where words[0] == "drop": self = .drop
        case 1 where words[0] == "keep": self = .keep
        case 3 where words[0] == "keep" && (words[2] == "days" || words[2] == "day"):
            guard let days = Double(words[1]), days > 0, days <= 3650 else { return nil }
            self = .keepDays(days)
        default: return nil
        }
    }

    public var storesImages: Bool { self != .drop }

    public var retentionDays: Double? {
        if case .keepDays(let days) = self { return days }
        return nil
    }
}
