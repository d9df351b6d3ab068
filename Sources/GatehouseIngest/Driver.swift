import GatehouseCore
import Hummingbird

/// Swift code that owns one device protocol: its routes or polling, its decoding, its replies.
public protocol Driver: Sendable {
    /// The name devices use in config (`driver: generic-json`).
    var name: String { get }

    /// Adds this driver's routes to the ingest listener; drivers that only poll add none.
    func mountRoutes(on router: Router<IngestRequestContext>, context: DriverContext)

    /// Maps a payload to drafts. Used live and by `gatehouse quarantine replay`.
    func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft]
}

/// Every driver this build carries: adding a protocol adds one line here and one folder under Drivers/.
public enum DriverRegistry {
    public static let all: [any Driver] = [
        GenericJSONDriver()
    ]

    public static var names: Set<String> { Set(all.map(\.name)) }

    public static func driver(named name: String) -> (any Driver)? { all.first { $0.name == name } }
}

/// What a driver gets to work with: the pipeline that commits events and the listener's request checks.
public struct DriverContext: Sendable {
    public let pipeline: IngestPipeline
    public let requests: DeviceRequests

    public init(pipeline: IngestPipeline, requests: DeviceRequests) {
        self.pipeline = pipeline
        self.requests = requests
    }
}
