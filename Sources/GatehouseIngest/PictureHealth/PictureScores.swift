/// What one snapshot says about the picture. Pure functions of the grey picture (and of the
/// previous snapshot's thumbnail, for `change`), so the thresholds can be tested on made-up pictures.
public struct PictureScores: Sendable, Equatable, Codable {
    /// Variance of the 4-neighbour Laplacian: edges make it large, blur makes it small. Depends
    /// on the reduced size (≈ 320–640 wide), so it is compared with the camera's own baseline.
    public var sharpness: Double
    /// Mean grey level, 0–255.
    public var brightness: Double
    /// Standard deviation of the grey levels: near 0 for a uniform (covered, sprayed, black) picture.
    public var contrast: Double
    /// Mean absolute difference from the previous snapshot's thumbnail, 0–255; nil for the first
    /// snapshot (or one of another size).
    public var change: Double?

    public init(sharpness: Double, brightness: Double, contrast: Double, change: Double?) {
        self.sharpness = sharpness
        self.brightness = brightness
        self.contrast = contrast
        self.change = change
    }

    /// Scores `picture`; `previous` is the thumbnail of the camera's previous snapshot.
    public static func score(_ picture: GreyPicture, previous: Thumbnail?) -> (scores: PictureScores, thumbnail: Thumbnail) {
        let (mean, deviation) = meanAndDeviation(picture)
        let thumbnail = Thumbnail(picture)
        let change = previous.flatMap { thumbnail.meanAbsoluteDifference(from: $0) }
        return (PictureScores(sharpness: laplacianVariance(picture), brightness: mean, contrast: deviation, change: change), thumbnail)
    }

    public static func laplacianVariance(_ picture: GreyPicture) -> Double {
        let (w, h) = (picture.width, picture.height)
        guard w >= 3, h >= 3 else { return 0 }
        var sum = 0.0
        var squares = 0.0
        picture.pixels.withUnsafeBufferPointer { p in
            for y in 1..<(h - 1) {
                let row = y * w
                for x in 1..<(w - 1) {
                    let i = row + x
                    let neighbours: Int = Int(p[i - 1]) + Int(p[i + 1]) + Int(p[i - w]) + Int(p[i + w])
                    let value = Double(neighbours - 4 * Int(p[i]))
                    sum += value
                    squares += value * value
                }
            }
        }
        let n = Double((w - 2) * (h - 2))
        let mean = sum / n
        return max(0, squares / n - mean * mean)
    }

    public static func meanAndDeviation(_ picture: GreyPicture) -> (mean: Double, deviation: Double) {
        guard !picture.pixels.isEmpty else { return (0, 0) }
        var sum = 0
        var squares = 0
        for value in picture.pixels {
            sum += Int(value)
            squares += Int(value) * Int(value)
        }
        let n = Double(picture.pixels.count)
        let mean = Double(sum) / n
        return (mean, (max(0, Double(squares) / n - mean * mean)).squareRoot())
    }
}

/// The reduced picture averaged in 4×4 blocks: what `change` compares. Kept in memory only (one
/// per camera, ~3.6 KB for 320×180), never on disk. A frozen encoder repeats its frame, so the
/// difference is 0; a live one differs at least by sensor noise and JPEG re-encoding.
public struct Thumbnail: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var values: [UInt8]

    public init(_ picture: GreyPicture, block: Int = 4) {
        width = max(1, picture.width / block)
        height = max(1, picture.height / block)
        var values = [UInt8](repeating: 0, count: width * height)
        for ty in 0..<height {
            for tx in 0..<width {
                var sum = 0
                var count = 0
                for y in (ty * block)..<min(picture.height, ty * block + block) {
                    for x in (tx * block)..<min(picture.width, tx * block + block) {
                        sum += Int(picture.pixels[y * picture.width + x])
                        count += 1
                    }
                }
                values[ty * width + tx] = UInt8(count == 0 ? 0 : sum / count)
            }
        }
        self.values = values
    }

    /// Mean absolute difference, nil when the sizes differ (the camera's resolution changed).
    public func meanAbsoluteDifference(from other: Thumbnail) -> Double? {
        guard other.width == width, other.height == height, !values.isEmpty else { return nil }
        var total = 0
        for index in values.indices { total += abs(Int(values[index]) - Int(other.values[index])) }
        return Double(total) / Double(values.count)
    }
}
