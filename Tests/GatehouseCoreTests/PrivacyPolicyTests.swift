import Foundation
import Testing

@testable import GatehouseCore

@Suite("PrivacyPolicy")
struct PrivacyPolicyTests {
    static let secret = Secret(value: "site-secret-1", origin: "test")
    static let otherSecret = Secret(value: "site-secret-2", origin: "test")

    static func event(_ type: SubjectType, _ value: String?, treatment: SubjectTreatment? = nil) -> Event {
        Event(
            id: EventIDGenerator().next(), kind: .accessGranted, occurredAt: .now, receivedAt: .now, site: "s",
            device: DeviceRef(id: "d", vendor: "v", type: .doorController),
            subject: Subject(type: type, value: value, treatment: treatment, color: "blue"),
            source: Source(driver: "test"))
    }

    static func policy(_ mode: PrivacyMode, for type: SubjectType, secret: Secret? = secret) -> PrivacyPolicy {
        var policy = PrivacyPolicy.default
        policy.modes[type] = mode
        policy.hashSecret = secret
        return policy
    }

    // MARK: - mask

    @Test("plates keep the first three and the last character", arguments: [
        ("川F12345", "川F1***5"),
        ("京A12345", "京A1***5"),
        ("粤B1234学", "粤B1***学"),
        ("沪AD12345", "沪AD****5"),  // new-energy plates are one longer
    ])
    func maskPlates(plate: String, masked: String) {
        #expect(PrivacyPolicy.mask(plate, type: .plate) == masked)
    }

    @Test("short plates keep only the first character")
    func maskShortPlate() {
        #expect(PrivacyPolicy.mask("川F12", type: .plate) == "川***")
        #expect(PrivacyPolicy.mask("A", type: .plate) == "A*")
    }

    @Test("long card numbers keep the last four characters")
    func maskCards() {
        #expect(PrivacyPolicy.mask("1234567890", type: .card) == "******7890")
        #expect(PrivacyPolicy.mask("12345678", type: .card) == "****5678")
        #expect(PrivacyPolicy.mask("13800138000", type: .phone) == "*******8000")
    }

    @Test("short values keep only the last character, and a single character is hidden entirely")
    func maskShortValues() {
        #expect(PrivacyPolicy.mask("1234567", type: .card) == "******7")
        #expect(PrivacyPolicy.mask("42", type: .card) == "*2")
        #expect(PrivacyPolicy.mask("7", type: .card) == "*")
    }

    @Test("a masked value always hides something and keeps at most four clear characters")
    func maskHidesMost() {
        for value in ["川F12345", "1234567890", "9876543210123", "abc", "ab"] {
            for type in [SubjectType.plate, .card, .face, .phone] {
                let masked = PrivacyPolicy.mask(value, type: type)
                #expect(masked != value)
                #expect(masked.contains("*"))
                #expect(masked.filter { $0 != "*" }.count <= 4)
                #expect(masked.count == value.count || value.count < 2)
            }
        }
    }

    @Test(
        "an empty value is masked without crashing")
    func maskEmptyValue() {
        #expect(PrivacyPolicy.mask("", type: .card) == "*")
        #expect(PrivacyPolicy.mask("", type: .plate) == "*")
    }

    // MARK: - hash

    @Test("hash is a stable HMAC-SHA256 that depends on the secret and the subject type")
    func hashing() {
        let first = PrivacyPolicy.hash("川F12345", type: .plate, secret: Self.secret)
        let again = PrivacyPolicy.hash("川F12345", type: .plate, secret: Secret(value: "site-secret-1", origin: "elsewhere"))
        #expect(first == again)
        #expect(first.hasPrefix("hmac-sha256:"))
        let hex = first.dropFirst("hmac-sha256:".count)
        #expect(hex.count == 64)
        #expect(hex.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(!first.contains("12345"))

        #expect(PrivacyPolicy.hash("川F12345", type: .plate, secret: Self.otherSecret) != first)
        #expect(PrivacyPolicy.hash("川F12345", type: .card, secret: Self.secret) != first)
        #expect(PrivacyPolicy.hash("川F12346", type: .plate, secret: Self.secret) != first)
    }

    @Test("the hash is HMAC-SHA256 of 'type:value' under the secret (so the centre can reproduce it)")
    func hashKnownAnswer() {
        // python3: hmac.new(b"site-secret-1", "plate:川F12345".encode(), hashlib.sha256).hexdigest()
        #expect(
            PrivacyPolicy.hash("川F12345", type: .plate, secret: Self.secret)
                == "hmac-sha256:2212539858be31303489ef2382224acf6d1f8a35440422a323b57db09078912b")
    }

    // MARK: - apply

    @Test("keep leaves the value and marks it clear")
    func applyKeep() {
        var event = Self.event(.plate, "川F12345")
        Self.policy(.keep, for: .plate).apply(to: &event)
        #expect(event.subject == Subject(type: .plate, value: "川F12345", treatment: .clear, color: "blue"))
    }

    @Test("mask replaces the value and marks it masked")
    func applyMask() {
        var event = Self.event(.plate, "川F12345")
        Self.policy(.mask, for: .plate).apply(to: &event)
        #expect(event.subject == Subject(type: .plate, value: "川F1***5", treatment: .masked, color: "blue"))
    }

    @Test("hash replaces the value with the keyed hash and marks it hashed")
    func applyHash() {
        var event = Self.event(.card, "0012345678")
        Self.policy(.hash, for: .card).apply(to: &event)
        #expect(event.subject?.value == PrivacyPolicy.hash("0012345678", type: .card, secret: Self.secret))
        #expect(event.subject?.treatment == .hashed)
        #expect(event.subject?.type == .card)
    }

    @Test("hash without a secret drops the value rather than leak it")
    func applyHashWithoutSecret() {
        var event = Self.event(.card, "0012345678")
        Self.policy(.hash, for: .card, secret: nil).apply(to: &event)
        #expect(event.subject?.value == nil)
        #expect(event.subject?.treatment == .dropped)
    }

    @Test("drop removes the value and keeps the subject type")
    func applyDrop() {
        var event = Self.event(.qr, "QR-TOKEN-123")
        PrivacyPolicy.default.apply(to: &event)  // qr is dropped by default
        #expect(event.subject == Subject(type: .qr, value: nil, treatment: .dropped, color: "blue"))
    }

    @Test("the default policy masks phone numbers and keeps plates")
    func defaults() {
        var phone = Self.event(.phone, "13800138000")
        PrivacyPolicy.default.apply(to: &phone)
        #expect(phone.subject?.value == "*******8000")
        #expect(phone.subject?.treatment == .masked)
        var plate = Self.event(.plate, "川F12345")
        PrivacyPolicy.default.apply(to: &plate)
        #expect(plate.subject?.value == "川F12345")
        #expect(plate.subject?.treatment == .clear)
    }

    @Test("applying twice does not mask or hash again, and other fields are untouched")
    func idempotent() {
        let policy = Self.policy(.hash, for: .plate)
        var event = Self.event(.plate, "川F12345")
        let original = event
        policy.apply(to: &event)
        let once = event
        policy.apply(to: &event)
        #expect(event == once)
        var withoutSubject = original
        withoutSubject.subject = nil
        var changedWithoutSubject = event
        changedWithoutSubject.subject = nil
        #expect(changedWithoutSubject == withoutSubject)
    }

    @Test("events without a subject or value are left alone")
    func nothingToTreat() {
        var none = Self.event(.plate, nil)
        let before = none
        Self.policy(.mask, for: .plate).apply(to: &none)
        #expect(none == before)
        var noSubject = Self.event(.plate, "x")
        noSubject.subject = nil
        let copy = noSubject
        Self.policy(.mask, for: .plate).apply(to: &noSubject)
        #expect(noSubject == copy)
    }

    // MARK: - names and pictures

    @Test("names in attributes are removed unless names: keep; other attributes stay")
    func names() {
        var event = Self.event(.person, "1024")
        event.attributes = ["name": .string("张三"), "personName": .string("Li Lei"), "statusName": .string("check-in")]
        var dropped = event
        PrivacyPolicy.default.apply(to: &dropped)
        #expect(dropped.attributes == ["statusName": .string("check-in")])
        var keeping = PrivacyPolicy.default
        keeping.names = .keep
        var kept = event
        keeping.apply(to: &kept)
        #expect(kept.attributes?["name"] == .string("张三") && kept.attributes?["personName"] == .string("Li Lei"))
    }

    @Test("picture policies: drop, keep and keep N days; anything else is refused", arguments: [
        ("drop", ImagePolicy.drop), ("keep", .keep), ("keep 30 days", .keepDays(30)), ("Keep 1 day", .keepDays(1)),
    ])
    func imagePolicies(_ text: String, _ expected: ImagePolicy) {
        #expect(ImagePolicy(text) == expected)
    }

    @Test("invalid picture policies", arguments: ["blur", "keep 0 days", "keep -3 days", "keep ten days", "keep 30", ""])
    func invalidImagePolicies(_ text: String) {
        #expect(ImagePolicy(text) == nil)
    }

    @Test("a dedup key that quotes the subject value gets the treated value")
    func dedupKeyQuotingTheValue() {
        var event = Self.event(.card, "8800123456")
        event.source.dedupKey = "card-8800123456-0815"
        var hashed = event
        Self.policy(.hash, for: .card).apply(to: &hashed)
        #expect(hashed.source.dedupKey == "card-\(hashed.subject?.value ?? "")-0815")
        var dropped = event
        Self.policy(.drop, for: .card).apply(to: &dropped)
        #expect(dropped.source.dedupKey == "card-…-0815")
        var kept = event
        Self.policy(.keep, for: .card).apply(to: &kept)
        #expect(kept.source.dedupKey == "card-8800123456-0815")
    }
}
