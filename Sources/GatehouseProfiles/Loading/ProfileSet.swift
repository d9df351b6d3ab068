import Foundation

/// Every profile under an adapters directory: those that loaded, and why the others did not.
public struct ProfileSet: Sendable {
    public var directory: String
    public var profiles: [String: Profile]
    public var failures: [String: ProfileLoadError]

    public init(directory: String, profiles: [String: Profile] = [:], failures: [String: ProfileLoadError] = [:]) {
        self.directory = directory
        self.profiles = profiles
        self.failures = failures
    }

    /// Loads each `<directory>/<name>/profile.yaml`; a missing directory is an empty set.
    public static func load(directory: String) -> ProfileSet {
        var set = ProfileSet(directory: directory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names.sorted() {
            let folder = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(ProfileLoader.fileName)) else { continue }
            do {
                set.profiles[name] = try ProfileLoader.load(directory: folder)
            } catch {
                set.failures[name] = error
            }
        }
        return set
    }

    public var names: [String] { Array(Set(profiles.keys).union(failures.keys)).sorted() }
}
