extension CentralReceiver {
    /// One event object found in a request body: where it is and its top-level id (the `id` key,
    /// or the receiver's `idKey`).
    struct ScannedObject {
        var range: Range<Int>
        var id: String?
    }

    /// Why a body could not be read as events.
    struct ScanError: Error, CustomStringConvertible {
        var description: String
    }

    /// Finds the event objects of an NDJSON body or a JSON array in one pass, without building
    /// a JSON tree: the receiver must absorb tens of thousands of events a second.
    ///
    /// Objects are the `{…}` not nested in another object, so NDJSON (objects one after another)
    /// and a JSON array (objects inside one `[…]`) are read alike. Only a top-level `"id"` key counts:
    /// `device.id` comes earlier in sorted-key output and must not be mistaken for it. Another
    /// `idKey` counts what other forwarders send (Fluent Bit passes the device's `dedupKey` through).
    static func scanObjects(_ bytes: UnsafeRawBufferPointer, idKey: String = "id") throws -> [ScannedObject] {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        let key = Array(idKey.utf8)
        var objects: [ScannedObject] = []
        var depth = 0  // `{` and `[` currently open
        var objectStart = -1
        var objectDepth = 0  // depth just inside the current top-level object
        var currentID: String?
        var i = 0
        let count = bytes.count

        /// Index just past the closing quote of the string that opens at `start`.
        func stringEnd(_ start: Int) throws -> Int {
            var j = start + 1
            while j < count {
                if bytes[j] == backslash {
                    j += 2
                } else if bytes[j] == quote {
                    return j + 1
                } else {
                    j += 1
                }
            }
            throw ScanError(description: "unterminated string at byte \(start)")
        }
        func skipSpace(_ j: Int) -> Int {
            var j = j
            while j < count, bytes[j] == 0x20 || bytes[j] == 0x0A || bytes[j] == 0x0D || bytes[j] == 0x09 { j += 1 }
            return j
        }

        while i < count {
            let byte = bytes[i]
            switch byte {
            case quote:
                let end = try stringEnd(i)
                if objectStart >= 0, depth == objectDepth {
                    let afterKey = skipSpace(end)
                    if afterKey < count, bytes[afterKey] == UInt8(ascii: ":"), end - i == key.count + 2,
                        bytes[(i + 1)..<(end - 1)].elementsEqual(key)
                    {
                        let valueStart = skipSpace(afterKey + 1)
                        if valueStart < count, bytes[valueStart] == quote {
                            let valueEnd = try stringEnd(valueStart)
                            currentID = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(valueStart + 1)..<(valueEnd - 1)]), as: UTF8.self)
                            i = valueEnd
                            continue
                        }
                    }
                }
                i = end
                continue
            case UInt8(ascii: "{"):
                depth += 1
                if objectStart < 0 {
                    objectStart = i
                    objectDepth = depth
                    currentID = nil
                }
            case UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                guard depth >= 0 else { throw ScanError(description: "unbalanced '\(Character(UnicodeScalar(byte)))' at byte \(i)") }
                if byte == UInt8(ascii: "}"), objectStart >= 0, depth == objectDepth - 1 {
                    objects.append(ScannedObject(range: objectStart..<(i + 1), id: currentID))
                    objectStart = -1
                }
            default:
                break
            }
            i += 1
        }
        guard depth == 0 else { throw ScanError(description: "body ends inside an object or array") }
        return objects
    }
}
