import GatehouseCore
import Logging
import NIOCore
import Synchronization

/// The UDP ports controllers push their status packets to. One socket per port, shared by every
/// controller configured with it; a packet wakes the poller of the controller whose serial it
/// carries. Pushes are only hints (UDP loses them): the log read is what ingests records.
final class UHPPOTEListeners: Sendable {
    /// One registration; hand it back to `unsubscribe`.
    struct Subscription: Sendable {
        let id: Int
        let port: Int
        let wake: WakeUpSignal
    }

    private struct Port {
        var binding: Task<any Channel, any Error>
        var subscribers: [Int: (serial: UInt32, wake: WakeUpSignal)] = [:]
    }

    private struct State {
        var ports: [Int: Port] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())
    let rejections: UHPPOTERejections
    /// Packets routed to a subscriber, for tests and metrics.
    private let delivered = Atomic<Int>(0)

    init(rejections: UHPPOTERejections) {
        self.rejections = rejections
    }

    var deliveredCount: Int { delivered.load(ordering: .relaxed) }

    /// Registers `serial` on `port`, binding the port on first use.
    func subscribe(host: String, port: Int, serial: UInt32, logger: Logger) async throws -> Subscription {
        let wake = WakeUpSignal()
        let (id, binding) = state.withLock { s -> (Int, Task<any Channel, any Error>) in
            s.nextID += 1
            var entry =
                s.ports[port]
                ?? Port(
                    binding: Task {
                        let channel = try await UDPSocket.bind(host: host, port: port) { [weak self] datagram in
                            self?.deliver(datagram, port: port)
                        }
                        logger.notice("uhppote listener ready on \(host):\(port)")
                        return channel
                    })
            entry.subscribers[s.nextID] = (serial, wake)
            s.ports[port] = entry
            return (s.nextID, entry.binding)
        }
        do {
            _ = try await binding.value
        } catch {
            state.withLock { s in
                s.ports[port]?.subscribers[id] = nil
                // Forget the failed socket so the next subscriber tries again.
                if s.ports[port]?.subscribers.isEmpty == true { s.ports[port] = nil }
            }
            throw UHPPOTEListenError(host: host, port: port, underlying: "\(error)")
        }
        return Subscription(id: id, port: port, wake: wake)
    }

    /// Removes a registration; the last one on a port closes its socket.
    func unsubscribe(_ subscription: Subscription) async {
        let closing = state.withLock { s -> Task<any Channel, any Error>? in
            s.ports[subscription.port]?.subscribers[subscription.id] = nil
            guard let entry = s.ports[subscription.port], entry.subscribers.isEmpty else { return nil }
            s.ports[subscription.port] = nil
            return entry.binding
        }
        if let closing, let channel = try? await closing.value { try? await channel.close() }
    }

    private func deliver(_ datagram: UHPPOTEClient.Datagram, port: Int) {
        let serial: UInt32
        do {
            // Pushed packets are status frames (function 0x20), 0x17 or 0x19 first.
            (serial, _) = try UHPPOTEResponse.decode(datagram.bytes, function: .getStatus)
        } catch {
            rejections.record(error)
            return
        }
        let wakes = state.withLock { s in s.ports[port]?.subscribers.values.filter { $0.serial == serial }.map(\.wake) ?? [] }
        guard !wakes.isEmpty else {
            rejections.record(UHPPOTECodecError(.serial, "pushed packet from controller \(serial), which no device on port \(port) is configured with"))
            return
        }
        delivered.add(1, ordering: .relaxed)
        for wake in wakes { wake.signal() }
    }
}

/// A listen port could not be bound.
public struct UHPPOTEListenError: Error, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let underlying: String
    public var description: String {
        "cannot listen for controller pushes on UDP \(host):\(port): \(underlying) (is another program using it? options.listen_port must be free)"
    }
}
