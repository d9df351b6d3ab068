import Foundation

/// The package checkout this target was built from (Sources/GatehouseTesting/ is two folders
/// below it). Tests find repository files (adapters/, docs/, config/) from here rather than
/// from their own `#filePath`, so a test file can move between folders without its paths.
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The shipped vendor profiles, `adapters/` in the checkout.
public var shippedAdapters: String { repositoryRoot.appendingPathComponent("adapters").path }
