/// A planar YUV 4:2:0 (I420) picture: a full-size luma plane and two half-size chroma
/// planes, each with its own stride.
///
/// The three planes live in one buffer (copy-on-write), so a frame passes between layers
/// without copying pixels; the VP8 encoder reads the planes in place.
///
/// ```swift
/// var frame = VideoFrame(width: 640, height: 360)     // black
/// frame.withMutablePlanes { y, u, v in y[0] = 235 }
/// ```
public struct VideoFrame: Sendable, Equatable {
    /// Width in pixels of the luma plane.
    public let width: Int
    /// Height in pixels of the luma plane.
    public let height: Int
    /// Presentation time (90 kHz for RTP video).
    public var timestamp: MediaTime
    /// Bytes between the starts of two rows, per plane (Y, U, V).
    public let strides: (y: Int, u: Int, v: Int)
    /// Offsets of the planes in `data`.
    let offsets: (y: Int, u: Int, v: Int)
    /// All three planes.
    public private(set) var data: [UInt8]

    /// Width of a chroma plane: half the luma width, rounded up.
    public var chromaWidth: Int { (width + 1) / 2 }
    /// Height of a chroma plane: half the luma height, rounded up.
    public var chromaHeight: Int { (height + 1) / 2 }

    /// A black picture with tightly packed planes. Width and height must be positive.
    public init(width: Int, height: Int, timestamp: MediaTime = MediaTime(value: 0, timescale: 90_000)) {
        precondition(width > 0 && height > 0, "VideoFrame needs a positive size")
        self.width = width
        self.height = height
        self.timestamp = timestamp
        let cw = (width + 1) / 2
        let ch = (height + 1) / 2
        strides = (width, cw, cw)
        offsets = (0, width * height, width * height + cw * ch)
        var buffer = [UInt8](repeating: 16, count: width * height + 2 * cw * ch)
        for i in (width * height)..<buffer.count { buffer[i] = 128 }
        data = buffer
    }

    /// A picture over an existing I420 buffer laid out as Y, then U, then V, with the given
    /// strides. Throws ``VideoFrameError`` when the buffer is too small for the layout.
    public init(
        width: Int, height: Int, strides: (y: Int, u: Int, v: Int), data: [UInt8],
        timestamp: MediaTime = MediaTime(value: 0, timescale: 90_000)
    ) throws(VideoFrameError) {
        guard width > 0, height > 0, width <= 16384, height <= 16384 else {
            throw .invalidSize(width: width, height: height)
        }
        let cw = (width + 1) / 2
        let ch = (height + 1) / 2
        guard strides.y >= width, strides.u >= cw, strides.v >= cw else {
            throw .invalidStrides(y: strides.y, u: strides.u, v: strides.v)
        }
        let ySize = strides.y * height
        let uSize = strides.u * ch
        let needed = ySize + uSize + strides.v * ch
        guard data.count >= needed else { throw .bufferTooSmall(needed: needed, actual: data.count) }
        self.width = width
        self.height = height
        self.timestamp = timestamp
        self.strides = strides
        self.offsets = (0, ySize, ySize + uSize)
        self.data = data
    }

    /// Calls `body` with the three planes (Y, U, V), each `stride * rows` bytes long.
    public func withPlanes<R, E: Error>(
        _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) throws(E) -> R
    ) throws(E) -> R {
        let result: Result<R, E> = data.withUnsafeBufferPointer { all in
            let base = all.baseAddress!
            let y = UnsafeBufferPointer(start: base + offsets.y, count: strides.y * height)
            let u = UnsafeBufferPointer(start: base + offsets.u, count: strides.u * chromaHeight)
            let v = UnsafeBufferPointer(start: base + offsets.v, count: strides.v * chromaHeight)
            do throws(E) { return .success(try body(y, u, v)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Calls `body` with the three planes (Y, U, V) to modify them in place.
    public mutating func withMutablePlanes<R>(
        _ body: (
            UnsafeMutableBufferPointer<UInt8>, UnsafeMutableBufferPointer<UInt8>, UnsafeMutableBufferPointer<UInt8>
        ) throws -> R
    ) rethrows -> R {
        let (oy, ou, ov) = offsets
        let (sy, su, sv) = strides
        let (h, ch) = (height, chromaHeight)
        return try data.withUnsafeMutableBufferPointer { all in
            let base = all.baseAddress!
            return try body(
                UnsafeMutableBufferPointer(start: base + oy, count: sy * h),
                UnsafeMutableBufferPointer(start: base + ou, count: su * ch),
                UnsafeMutableBufferPointer(start: base + ov, count: sv * ch))
        }
    }

    /// The luma value at (x, y).
    public func luma(x: Int, y: Int) -> UInt8 { data[offsets.y + y * strides.y + x] }

    public static func == (lhs: VideoFrame, rhs: VideoFrame) -> Bool {
        guard lhs.width == rhs.width, lhs.height == rhs.height, lhs.timestamp == rhs.timestamp else { return false }
        // Compare visible pixels only: strides and padding may differ.
        return lhs.withPlanes { ly, lu, lv in
            rhs.withPlanes { ry, ru, rv in
                func same(
                    _ a: UnsafeBufferPointer<UInt8>, _ sa: Int, _ b: UnsafeBufferPointer<UInt8>, _ sb: Int, _ w: Int,
                    _ h: Int
                ) -> Bool {
                    for row in 0..<h where !a[(row * sa)..<(row * sa + w)].elementsEqual(b[(row * sb)..<(row * sb + w)])
                    {
                        return false
                    }
                    return true
                }
                return same(ly, lhs.strides.y, ry, rhs.strides.y, lhs.width, lhs.height)
                    && same(lu, lhs.strides.u, ru, rhs.strides.u, lhs.chromaWidth, lhs.chromaHeight)
                    && same(lv, lhs.strides.v, rv, rhs.strides.v, lhs.chromaWidth, lhs.chromaHeight)
            }
        }
    }
}

/// Why a ``VideoFrame`` could not be made from a buffer.
public enum VideoFrameError: Error, Sendable, Equatable {
    /// Width or height is zero, negative or above 16384.
    case invalidSize(width: Int, height: Int)
    /// A stride is smaller than its plane's width.
    case invalidStrides(y: Int, u: Int, v: Int)
    /// The buffer holds `actual` bytes where the layout needs `needed`.
    case bufferTooSmall(needed: Int, actual: Int)
}
