import Codec

/// Generates a moving test pattern as I420 frames: colour bars, a scrolling diagonal
/// gradient under a drifting fine checkerboard, and a bright square bouncing across the
/// picture. Every frame differs from the
/// previous one, so encoders see real motion; the pattern is deterministic.
///
/// ```swift
/// var pattern = TestPatternGenerator(width: 640, height: 360, frameRate: 30)
/// let picture = pattern.nextFrame()        // timestamps advance at 90 kHz
/// ```
public struct TestPatternGenerator: Sendable {
    /// Picture width.
    public let width: Int
    /// Picture height.
    public let height: Int
    /// Frames per second, which sets the timestamps.
    public let frameRate: Int
    /// Frames generated so far.
    public private(set) var frameIndex = 0

    /// A pattern of `width` x `height` at `frameRate` frames per second.
    public init(width: Int, height: Int, frameRate: Int = 30) {
        self.width = width
        self.height = height
        self.frameRate = frameRate
    }

    // BT.601 limited-range YUV of white, yellow, cyan, green, magenta, red, blue, black.
    private static let bars: [(UInt8, UInt8, UInt8)] = [
        (235, 128, 128), (210, 16, 146), (170, 166, 16), (145, 54, 34),
        (106, 202, 222), (81, 90, 240), (41, 240, 110), (16, 128, 128),
    ]

    /// The picture number `index` (frames are a pure function of their index).
    public func frame(at index: Int) -> VideoFrame {
        var frame = VideoFrame(
            width: width, height: height,
            timestamp: MediaTime(value: Int64(index) * 90_000 / Int64(frameRate), timescale: 90_000))
        let (w, h) = (width, height)
        let (cw, ch) = (frame.chromaWidth, frame.chromaHeight)
        let barsBottom = h / 2
        let box = max(8, min(w, h) / 6)
        // The square bounces: position follows a triangle wave in both directions.
        func bounce(_ t: Int, _ span: Int) -> Int {
            guard span > 0 else { return 0 }
            let p = t % (2 * span)
            return p < span ? p : 2 * span - p
        }
        let bx = bounce(index * 7, w - box)
        let by = bounce(index * 5, h - box)
        frame.withMutablePlanes { yPlane, uPlane, vPlane in
            for row in 0..<h {
                for col in 0..<w {
                    let value: UInt8
                    if row < barsBottom {
                        value = Self.bars[col * 8 / w].0
                    } else {
                        // A scrolling gradient crossed by a fine checkerboard drifting the
                        // other way: detail the encoder has to spend bits on.
                        let gradient = (col + row + index * 4) % 180
                        let checker = (((col + index * 2) / 4 + (row / 4)) & 1) * 40
                        value = UInt8(truncatingIfNeeded: 16 + gradient + checker)
                    }
                    yPlane[row * w + col] = value
                }
            }
            for row in 0..<ch {
                for col in 0..<cw {
                    let i = row * cw + col
                    if row * 2 < barsBottom {
                        let bar = Self.bars[min(7, col * 2 * 8 / w)]
                        uPlane[i] = bar.1
                        vPlane[i] = bar.2
                    } else {
                        uPlane[i] = UInt8(truncatingIfNeeded: 64 + (col + index) % 128)
                        vPlane[i] = UInt8(truncatingIfNeeded: 64 + (row + index) % 128)
                    }
                }
            }
            for row in by..<(by + box) {
                for col in bx..<(bx + box) { yPlane[row * w + col] = 235 }
            }
            for row in (by / 2)..<min(ch, (by + box) / 2) {
                for col in (bx / 2)..<min(cw, (bx + box) / 2) {
                    uPlane[row * cw + col] = 128
                    vPlane[row * cw + col] = 128
                }
            }
        }
        return frame
    }

    /// The next picture.
    public mutating func nextFrame() -> VideoFrame {
        defer { frameIndex += 1 }
        return frame(at: frameIndex)
    }
}
