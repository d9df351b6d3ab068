import Foundation
import Synchronization

/// A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a counter and random bits.
///
/// Ids sort by creation time, which keeps the queue's index append-mostly and lets the
/// central store see the order in which the gateway received events.
public struct EventID: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public let uuid: UUID

    public init(uuid: UUID) { self.uuid = uuid }

    public init?(_ text: String) {
        guard let uuid = UUID(uuidString: text) else { return nil }
        self.uuid = uuid
    }

    public var description: String { uuid.uuidString.lowercased() }

    /// The millisecond time stamp carried in the first 48 bits.
    public var milliseconds: Int64 {
        let b = uuid.uuid
        return [b.0, b.1, b.2, b.3, b.4, b.5].reduce(Int64(0)) { ($0 << 8) | Int64($1) }
    }

    public static func < (lhs: EventID, rhs: EventID) -> Bool { lhs.description < rhs.description }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let uuid = UUID(uuidString: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "invalid event id '\(text)' (expected a UUID)"))
        }
        self.uuid = uuid
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Makes UUIDv7 ids that are strictly increasing within this process, even within one millisecond.
public final class EventIDGenerator: Sendable {
    private struct State {
        var lastMillis: Int64 = 0
        var counter: UInt16 = 0
    }
    private let state = Mutex(State())

    public init() {}

    public func next(now: Timestamp = .now) -> EventID {
        let (millis, counter) = state.withLock { s -> (Int64, UInt16) in
            if now.milliseconds > s.lastMillis {
                s.lastMillis = now.milliseconds
                s.counter = UInt16.random(in: 0..<0x400)  // leave room to count up within the millisecond
            } else if s.counter >= 0x0FFF {
                // 4096 ids in one millisecond: borrow the next millisecond rather than repeat.
                s.lastMillis += 1
                s.counter = 0
            } else {
                s.counter += 1
            }
            return (s.lastMillis, s.counter)
        }
        var random = SystemRandomNumberGenerator()
        let tail = random.next() as UInt64
        let m = UInt64(bitPattern: millis)
        let bytes: uuid_t = (
            UInt8(truncatingIfNeeded: m >> 40), UInt8(truncatingIfNeeded: m >> 32),
            UInt8(truncatingIfNeeded: m >> 24), UInt8(truncatingIfNeeded: m >> 16),
            UInt8(truncatingIfNeeded: m >> 8), UInt8(truncatingIfNeeded: m),
            0x70 | UInt8(counter >> 8), UInt8(truncatingIfNeeded: counter),
            0x80 | UInt8(truncatingIfNeeded: tail >> 58), UInt8(truncatingIfNeeded: tail >> 48),
            UInt8(truncatingIfNeeded: tail >> 40), UInt8(truncatingIfNeeded: tail >> 32),
            UInt8(truncatingIfNeeded: tail >> 24), UInt8(truncatingIfNeeded: tail >> 16),
            UInt8(truncatingIfNeeded: tail >> 8), UInt8(truncatingIfNeeded: tail)
        )
        return EventID(uuid: UUID(uuid: bytes))
    }
}
