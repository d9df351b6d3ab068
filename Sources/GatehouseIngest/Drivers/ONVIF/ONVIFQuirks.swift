import GatehouseCore

/// How one camera family deviates from the PullPoint standard (README: "Quirk table").
///
/// The table is a Swift literal, not a resource file: the compiler checks every row, there is no
/// bundle to locate at run time (SwiftPM resources on Linux need `Bundle.module` next to the
/// binary, which the Debian package would have to ship), and a site adds or overrides a field per
/// device with the typed options instead of editing a file.
struct ONVIFQuirks: Sendable, Equatable {
    enum RenewUnit: String, Sendable, Equatable, CaseIterable { case seconds, minutes }
    enum RenewMode: String, Sendable, Equatable, CaseIterable { case relative, absolute }

    /// The camera keeps one subscription per client: free the old one before a new one.
    var oneListenerOnly = false
    /// `MaxPullPoints` as the camera is known to have; after a "too many" fault the driver waits
    /// for its old subscriptions to expire rather than retrying fast.
    var maxSubscriptions: Int?
    /// Durations written in minutes (`PT10M`) instead of seconds (`PT600S`).
    var renewUnit = RenewUnit.seconds
    /// Relative durations or absolute UTC times (`…Z`) for InitialTerminationTime and Renew.
    var renewMode = RenewMode.relative
    /// Never renew more often than this (Tapo dislikes frequent renews).
    var renewMinIntervalSeconds: Double = 0
    /// The PullMessages long-poll `Timeout` the camera accepts.
    var pullTimeoutSeconds = 30
    /// How the camera writes `UtcTime`.
    var timeFormat = ONVIFTimeFormat.utc
}

/// One row: which cameras it covers (case-insensitive substrings of GetDeviceInformation;
/// empty matches any) and the fields it sets.
struct ONVIFQuirkRow: Sendable {
    var name: String
    var manufacturer: [String]
    var model: String = ""
    var firmwarePrefix: String = ""
    var apply: @Sendable (inout ONVIFQuirks) -> Void

    /// Lowercased, not `localizedCaseInsensitiveContains`: that loads ICU's locale data into
    /// the daemon (~0.5 MB resident) for names that are ASCII in practice.
    func matches(_ info: ONVIFSOAP.DeviceInformation) -> Bool {
        manufacturer.contains { info.manufacturer.lowercased().contains($0.lowercased()) }
            && (model.isEmpty || info.model.lowercased().contains(model.lowercased()))
            && (firmwarePrefix.isEmpty || info.firmware.lowercased().hasPrefix(firmwarePrefix.lowercased()))
    }
}

enum ONVIFQuirkTable {
    /// Every matching row applies, in order, so a model row refines its brand's row.
    static let rows: [ONVIFQuirkRow] = [
        // Subscription at /onvif/Events/PullSubManager_…; Z-only Created; HTTP Digest on ≥ 5.7.13 (the client answers any 401 challenge).
        ONVIFQuirkRow(name: "hikvision", manufacturer: ["hikvision", "hikvision digital"]) { $0.maxSubscriptions = 5 },
        // Absolute times must end in Z; NVRs send State="1" and empty SubscriptionReferences.
        ONVIFQuirkRow(name: "dahua", manufacturer: ["dahua", "amcrest"]) {
            $0.renewMode = .absolute
            $0.maxSubscriptions = 10
        },
        // ReferenceParameters (echoed always); strict on clock skew (offset always applied).
        ONVIFQuirkRow(name: "axis", manufacturer: ["axis"]) { $0.pullTimeoutSeconds = 20 },
        // Needs InitialTerminationTime (always sent); dislikes frequent renews; one pull point.
        ONVIFQuirkRow(name: "tapo", manufacturer: ["tp-link", "tapo"]) {
            $0.oneListenerOnly = true
            $0.maxSubscriptions = 1
            $0.renewMinIntervalSeconds = 120
        },
        // One model froze under rapid CreatePullPointSubscription retries: few pull points, slow renews.
        ONVIFQuirkRow(name: "reolink", manufacturer: ["reolink"]) {
            $0.oneListenerOnly = true
            $0.maxSubscriptions = 2
            $0.renewMinIntervalSeconds = 60
        },
        // Empty, scheme-less addresses (…/onvif/event/alarm); terminations given in minutes.
        ONVIFQuirkRow(name: "uniview", manufacturer: ["uniview", "unv"]) { $0.renewUnit = .minutes },
        // Cheap XM/Xiongmai boards write local time into UtcTime.
        ONVIFQuirkRow(name: "xiongmai", manufacturer: ["xiongmai"]) { $0.timeFormat = .local },
    ]

    /// The quirks of a camera, and the names of the rows that gave them (for the log).
    static func quirks(for info: ONVIFSOAP.DeviceInformation) -> (ONVIFQuirks, [String]) {
        var quirks = ONVIFQuirks()
        var names: [String] = []
        for row in rows where row.matches(info) {
            row.apply(&quirks)
            names.append(row.name)
        }
        return (quirks, names)
    }
}
