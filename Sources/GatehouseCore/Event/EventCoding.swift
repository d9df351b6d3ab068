import Foundation

/// The one JSON form of an event: what the queue stores, sinks send and tests compare.
public enum EventCoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }

    public static func decoder() -> JSONDecoder { JSONDecoder() }

    public static func encode(_ event: Event) throws -> Data { try encoder().encode(event) }
    public static func decode(_ data: Data) throws -> Event { try decoder().decode(Event.self, from: data) }
}
