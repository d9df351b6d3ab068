import Foundation

/// Guesses what a field is from its name and the values seen. Heuristics only: the scaffolded
/// profile marks every guess so that a person checks it against the samples.
enum FieldGuesser {
    static let provinces: Set<Character> = Set("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领港澳警学")
    static let plateKeys = ["plate", "license", "licence", "车牌", "plateno", "platenumber", "carno", "vehicleno", "hphm"]
    static let notPlateKeys = ["id", "color", "colour", "type", "confidence", "len", "size", "pic", "image", "rect", "x", "y"]
    static let timeKeys = ["time", "date", "timestamp", "ts", "sec", "utc", "when", "时间"]
    static let laneKeys = ["lane", "channel", "road", "chan", "车道"]
    static let directionKeys = ["direction", "dir", "inout", "in_out", "io", "passtype", "entryexit", "进出", "方向"]
    static let directionValues: Set<String> = ["in", "out", "entry", "exit", "enter", "leave", "进", "出", "入", "进场", "出场"]
    static let recordKeys = ["id", "plateid", "record", "recordid", "recordno", "seq", "sequence", "uuid", "eventid", "serial_no", "picid", "no"]
    static let serialKeys = ["serial", "serialno", "sn", "deviceid", "devid", "mac", "devicesn", "cameraid", "deviceserial"]

    /// The last key of a path, lowercased, without attribute or index marks.
    static func key(_ path: String) -> String {
        let last = path.split(separator: ".").last.map(String.init) ?? path
        let bare = last.split(separator: "[").first.map(String.init) ?? last
        return bare.trimmingCharacters(in: CharacterSet(charactersIn: "@#")).lowercased()
    }

    static func keyMatches(_ key: String, _ words: [String], exact: Bool = false) -> Bool {
        exact ? words.contains(key) : words.contains { key.contains($0) }
    }

    static func looksLikePlate(_ value: String) -> Bool {
        let characters = Array(value.trimmingCharacters(in: .whitespaces))
        guard (7...8).contains(characters.count), let first = characters.first, provinces.contains(first) else { return false }
        return characters.dropFirst().allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "挂学警港澳领使".contains($0) }
    }

    /// The profile time format `value` is written in, if it looks like a time stamp.
    static func timeFormat(_ value: String) -> String? {
        let text = value.trimmingCharacters(in: .whitespaces)
        let digits = text.allSatisfy(\.isNumber) && text.allSatisfy(\.isASCII)
        if digits, text.count == 10, let seconds = Int(text), (946_684_800...4_102_444_800).contains(seconds) { return "epoch-seconds" }
        if digits, text.count == 13, let millis = Int(text), (946_684_800_000...4_102_444_800_000).contains(millis) { return "epoch-millis" }
        if text.range(of: #"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$"#, options: .regularExpression) != nil {
            return "rfc3339"
        }
        if text.range(of: #"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,3})?$"#, options: .regularExpression) != nil { return "local" }
        return nil
    }

    static func guess(_ field: inout InventoryField, allValues: Set<String>, payloads: Int) {
        let key = key(field.path)
        let values = allValues.filter { !$0.isEmpty && $0 != "null" }
        guard !values.isEmpty else { return }
        let sample = values.sorted().prefix(3).map { "'\($0)'" }.joined(separator: ", ")

        let plates = values.filter(looksLikePlate)
        if !plates.isEmpty, plates.count * 2 >= values.count {
            field.role = .plate
            field.why = "values look like plates (province character + 6–7 letters/digits: \(sample))"
            return
        }
        if keyMatches(key, plateKeys), !keyMatches(key, notPlateKeys.filter { $0.count > 2 }), !key.hasSuffix("id") {
            field.role = .plate
            field.why = "the key '\(key)' names a plate"
            return
        }
        let formats = Set(values.map(timeFormat))
        if formats.count == 1, let format = formats.first ?? nil {
            // A 10-digit number may be an id: epochs need a key that says time, text formats need none.
            if format.hasPrefix("epoch"), !keyMatches(key, timeKeys) {
                if values.count == payloads, payloads > 1 {
                    field.role = .time
                    field.timeFormat = format
                    field.why = "values look like \(format) (\(sample)) — or it is a record id"
                    return
                }
            } else {
                field.role = .time
                field.timeFormat = format
                field.why = "values look like \(format) time stamps (\(sample))"
                return
            }
        }
        let fewCodes = values.count <= 4 && values.allSatisfy { $0.count <= 16 }
        if fewCodes, keyMatches(key, directionKeys, exact: false) || values.allSatisfy({ directionValues.contains($0.lowercased()) }) {
            if keyMatches(key, laneKeys) {
                field.role = .lane
                field.why = "the key '\(key)' names a lane; few distinct values (\(sample))"
            } else {
                field.role = .direction
                field.why = "direction-like key or values with few distinct codes (\(sample)); map them to in/out with a table"
            }
            return
        }
        if fewCodes, keyMatches(key, laneKeys) {
            field.role = .lane
            field.why = "the key '\(key)' names a lane; few distinct values (\(sample))"
            return
        }
        if keyMatches(key, serialKeys, exact: true) || key.hasSuffix("serialno") {
            if values.count == 1 {
                field.role = .deviceSerial
                field.why = "the key '\(key)' names a device serial and it is the same in every payload ('\(values.first ?? "")')"
                return
            }
        }
        let recordKey = keyMatches(key, recordKeys, exact: true) || key.hasSuffix("id") || key.hasSuffix("recordid") || key.contains("record")
        if recordKey, values.count == field.presentIn, field.presentIn == payloads {
            field.role = .recordID
            field.why = payloads > 1 ? "the key '\(key)' names an id and every payload has its own value" : "the key '\(key)' names an id (one payload seen: uniqueness not checked)"
            return
        }
    }
}
