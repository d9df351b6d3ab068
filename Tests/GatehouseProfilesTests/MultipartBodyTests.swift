import Testing

@testable import GatehouseProfiles

@Suite("MultipartBody")
struct MultipartBodyTests {
    /// A Hikvision terminal's post: a literal boundary, a JSON part with its own Content-Length,
    /// a picture part without `filename` or Content-Length.
    static let terminalPost: [UInt8] =
        Array("--MIME_boundary\r\nContent-Disposition: form-data; name=\"AccessControllerEvent\"\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}\r\n".utf8)
        + Array("--MIME_boundary\r\nContent-Disposition: form-data; name=\"Picture\"\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
        + [0xFF, 0xD8, 0x00, 0xFF, 0xD9] + Array("\r\n--MIME_boundary--\r\n".utf8)

    @Test("parts with and without Content-Length, under a quoted or a literal boundary")
    func terminalParts() throws {
        let quoted = try MultipartBody.parts(Self.terminalPost, contentType: "multipart/form-data; boundary=\"MIME_boundary\"")
        let literal = try MultipartBody.parts(Self.terminalPost, boundary: "MIME_boundary")
        for parts in [quoted, literal] {
            #expect(parts.map(\.name) == ["AccessControllerEvent", "Picture"])
            #expect(parts.first?.body == Array("{\"a\":1}".utf8))
            #expect(parts.last?.body == [0xFF, 0xD8, 0x00, 0xFF, 0xD9])
            #expect(parts.map(\.isImage) == [false, true])
        }
    }

    @Test("the boundary is read from the body's first line when the Content-Type omits it")
    func boundaryFromBody() {
        #expect(MultipartBody.boundary(contentType: "multipart/form-data") == nil)
        #expect(MultipartBody.boundary(openingBody: Self.terminalPost) == "MIME_boundary")
        #expect(MultipartBody.boundary(openingBody: Array("{\"a\":1}".utf8)) == nil)
    }

    @Test("a body cut before its closing boundary is refused, naming the boundary")
    func truncated() {
        let cut = Array(Self.terminalPost.prefix(120))
        #expect {
            try MultipartBody.parts(cut, boundary: "MIME_boundary")
        } throws: { error in
            "\(error)".contains("truncated") && "\(error)".contains("--MIME_boundary--")
        }
    }
}
