// swift-tools-version:6.1
import Foundation
import PackageDescription

// One target per concern; dependencies point inward to GatehouseCore.
// Every target costs build time on a 2-core box, so keep the count low.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// The non-Swift files (README.md and other docs) in the folders under `Sources/<target>/<folder>/`,
/// as `exclude:` paths: a new driver or sink folder then needs no line here, and SwiftPM does not
/// warn about files it does not handle.
func documents(of target: String, under folder: String) -> [String] {
    let files = FileManager.default
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Sources/\(target)/\(folder)")
    let found = (files.enumerator(atPath: root.path)?.allObjects as? [String]) ?? []
    return found.filter { path in
        var isDirectory: ObjCBool = false
        return !path.hasSuffix(".swift") && files.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isDirectory)
            && !isDirectory.boolValue
    }.map { "\(folder)/\($0)" }.sorted()
}

let package = Package(
    name: "Gatehouse",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"]),
        .executable(name: "gatehouse-sim", targets: ["gatehouse-sim"]),
        .executable(name: "gatehouse-bench", targets: ["gatehouse-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.24.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.10.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.4.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // Event schema, kinds, ids, time, config model and validation, privacy. No NIO.
        .target(
            name: "GatehouseCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        // The durable queue: SQLite (WAL) through GRDB, group commit, cursors, quarantine, eviction.
        .target(
            name: "GatehouseQueue",
            dependencies: [
                "GatehouseCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Vendor profiles: the loader and the declarative mapping engine (bytes in, drafts and a
        // reply out). Pure: no sockets, so `gatehouse adapters test` and replay need no daemon.
        .target(
            name: "GatehouseProfiles",
            dependencies: [
                "GatehouseCore",
                .product(name: "Yams", package: "Yams"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // The HTTP listener, the Driver protocol, the registry and Drivers/<Name>/.
        .target(
            name: "GatehouseIngest",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "GatehouseProfiles", "CJPEGShim", "CMosquitto",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            exclude: documents(of: "GatehouseIngest", under: "Drivers") + documents(of: "GatehouseIngest", under: "PictureHealth")
                + documents(of: "GatehouseIngest", under: "Liveness"),
            swiftSettings: strict
        ),
        // The Sink protocol, the runner that owns cursors and retries, and Sinks/<Name>/.
        .target(
            name: "GatehouseSinks",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "CMosquitto",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            exclude: documents(of: "GatehouseSinks", under: "Sinks"),
            swiftSettings: strict
        ),
        // libmosquitto from Debian (libmosquitto-dev): the MQTT client the `mqtt` sink and driver drive.
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        // libjpeg-turbo from Debian (libjpeg62-turbo-dev) through its libjpeg API, and the one C file
        // that turns its longjmp errors into return codes: snapshot decoding (picture health) and
        // the simulated snapshot camera's encoder.
        .systemLibrary(
            name: "CLibJPEG",
            pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg62-turbo-dev"])]
        ),
        .target(name: "CJPEGShim", dependencies: ["CLibJPEG"], linkerSettings: [.linkedLibrary("jpeg")]),
        // Service wiring, status log, admin listener, metrics, systemd notify, reload.
        .target(
            name: "GatehouseDaemon",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "GatehouseIngest", "GatehouseSinks", "GatehouseConsole",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The web console on the admin listener: server-rendered pages (templates embedded as Swift
        // strings, so the binary stays self-contained), login, CSRF, sessions.
        .target(
            name: "GatehouseConsole",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "GatehouseIngest", "GatehouseSinks", "GatehouseProfiles",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Simulated devices and a stand-in for the central store, for the demo, tests and benchmarks.
        .target(
            name: "GatehouseSimulation",
            dependencies: [
                "GatehouseCore", "CJPEGShim",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Shared test fixtures (queue, site config writer, daemon process, receiver, `eventually`),
        // used by every test target and linked into no executable.
        .target(
            name: "GatehouseTesting",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "GatehouseSimulation",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "GatehouseIngest", "GatehouseDaemon", "GatehouseSimulation", "GatehouseConsole",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gatehouse-sim",
            dependencies: [
                "GatehouseCore", "GatehouseSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gatehouse-bench",
            dependencies: [
                "GatehouseCore",
                // The camera benchmark plays its 300 cameras and the central store in-process.
                "GatehouseSimulation",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "benchmarks/LoadGenerator",
            swiftSettings: strict
        ),
        // A SQLite VFS that loses what was not synced (power-cut tests); linked into tests only.
        .target(name: "CPowerCutVFS", path: "Tests/CPowerCutVFS", linkerSettings: [.linkedLibrary("sqlite3")]),
        .testTarget(
            name: "GatehouseDurabilityTests",
            dependencies: ["CPowerCutVFS", "GatehouseCore", "GatehouseQueue", "GatehouseSimulation", "GatehouseTesting", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "GatehouseCoreTests", dependencies: ["GatehouseCore", "GatehouseIngest", "GatehouseSinks", "GatehouseTesting"]),
        .testTarget(name: "GatehouseQueueTests", dependencies: ["GatehouseCore", "GatehouseQueue", "GatehouseTesting"]),
        .testTarget(
            name: "GatehouseConsoleTests",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "GatehouseIngest", "GatehouseSinks", "GatehouseConsole", "GatehouseDaemon", "GatehouseTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "GatehouseProfilesTests", dependencies: ["GatehouseCore", "GatehouseProfiles", "GatehouseTesting"]),
        .testTarget(
            name: "GatehouseIngestTests",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "GatehouseIngest", "GatehouseSinks", "GatehouseTesting",
                // The daemon's services (supervisor, status, image retention) are tested here on a ManualClock.
                "GatehouseDaemon",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The listener's edge handler on an EmbeddedChannel, whose clock the test moves.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "GatehouseSinksTests",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "GatehouseSinks", "GatehouseSimulation", "GatehouseTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "GatehouseEndToEndTests",
            dependencies: [
                "GatehouseCore", "GatehouseQueue", "GatehouseSimulation", "GatehouseIngest", "GatehouseSinks", "GatehouseTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ]
)
