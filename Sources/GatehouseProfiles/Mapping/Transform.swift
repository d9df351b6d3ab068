import Foundation
import GatehouseCore

/// The named transforms a profile may apply to a value, in order. A closed list: profiles
/// are data, not scripts.
public enum Transform: String, Sendable, CaseIterable {
    /// Removes surrounding white space.
    case trim
    case lowercase
    case uppercase
    /// A number written as text, without fraction: `"07"` → `7`, `3.0` → `3`.
    case integer
    /// Adds one: devices count doors and lanes from 0, people from 1.
    case increment
    /// Base64 to UTF-8 text.
    case base64
    /// Plate text as every driver stores it (PlateNumber.normalize).
    case plate

    func apply(_ value: String) -> String? {
        switch self {
        case .trim: return value.trimmingCharacters(in: .whitespacesAndNewlines)
        case .lowercase: return value.lowercased()
        case .uppercase: return value.uppercased()
        case .integer:
            guard let number = Double(value.trimmingCharacters(in: .whitespaces)), number.isFinite, abs(number) < 1e15 else { return nil }
            return String(Int64(number.rounded(.towardZero)))
        case .increment:
            guard let number = Int(value.trimmingCharacters(in: .whitespaces)) else { return nil }
            return String(number + 1)
        case .base64:
            guard let data = Data(base64Encoded: value) else { return nil }
            return String(data: data, encoding: .utf8)
        case .plate: return PlateNumber.normalize(value)
        }
    }
}
