import Foundation
import GatehouseCore
import Yams

/// Reads `adapters/<name>/profile.yaml` into a `Profile`, reporting every problem at once with
/// file, line and key, the way the gateway config is checked.
public enum ProfileLoader {
    public static let fileName = "profile.yaml"

    public static func load(directory: String) throws(ProfileLoadError) -> Profile {
        let folder = (directory as NSString).lastPathComponent
        let file = (directory as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw ProfileLoadError(profile: folder, diagnostics: [ConfigDiagnostic(file: file, line: 0, column: 0, key: "", message: "cannot read \(fileName) as UTF-8 text (does it exist?)")])
        }
        return try parse(text, file: file, directory: directory)
    }

    public static func parse(_ text: String, file: String, directory: String) throws(ProfileLoadError) -> Profile {
        let folder = (directory as NSString).lastPathComponent
        let log = DiagnosticLog(file: file)
        let root: Node
        do {
            guard let node = try YAMLDocument.compose(text) else {
                throw ProfileLoadError(profile: folder, diagnostics: [ConfigDiagnostic(file: file, line: 1, column: 1, key: "", message: "the file is empty (expected format: 1, name, event and replies)")])
            }
            root = node
        } catch let error as ProfileLoadError {
            throw error
        } catch let error as YamlError {
            throw ProfileLoadError(profile: folder, diagnostics: [ConfigLoader.yamlDiagnosticForProfiles(error, file: file)])
        } catch {
            throw ProfileLoadError(profile: folder, diagnostics: [ConfigDiagnostic(file: file, line: 1, column: 1, key: "", message: "not valid YAML: \(error)")])
        }
        guard let top = YAMLMapping(root, path: "", log: log) else { throw ProfileLoadError(profile: folder, diagnostics: log.items) }
        let reader = ProfileReader(log: log)
        let profile = reader.read(top, folder: folder, directory: directory)
        top.finish()
        guard log.items.isEmpty, let profile else {
            throw ProfileLoadError(profile: folder, diagnostics: log.items.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        return profile
    }
}

extension ConfigLoader {
    /// YAML syntax errors with their line, shared with the config loader's wording.
    static func yamlDiagnosticForProfiles(_ error: YamlError, file: String) -> ConfigDiagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let where_ = context.map { " \($0.text)" } ?? ""
            return ConfigDiagnostic(file: file, line: mark.line, column: mark.column, key: "", message: "not valid YAML: \(problem)\(where_)")
        default:
            return ConfigDiagnostic(file: file, line: 1, column: 1, key: "", message: "not valid YAML: \(error)")
        }
    }
}
