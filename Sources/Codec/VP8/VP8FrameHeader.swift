/// The uncompressed data chunk at the start of every VP8 frame (RFC 6386 §9.1).
///
/// Used to tell keyframes from inter frames without decoding, and to read a keyframe's
/// picture size.
///
/// ```swift
/// let header = try VP8FrameHeader(frame.data)
/// if header.isKeyframe { print(header.width!, header.height!) }
/// ```
public struct VP8FrameHeader: Sendable, Equatable {
    /// Whether the frame is a keyframe (the frame tag's bit 0 is 0).
    public let isKeyframe: Bool
    /// Version number 0…3 (reconstruction filter and loop filter type).
    public let version: Int
    /// Whether the frame is meant to be displayed.
    public let showFrame: Bool
    /// Size in bytes of the first partition, after this header.
    public let firstPartitionSize: Int
    /// Picture width on keyframes.
    public let width: Int?
    /// Picture height on keyframes.
    public let height: Int?

    /// Whether `data` starts with a keyframe tag, without validating the rest: this is the
    /// check RTP receivers make on the first payload byte after the descriptor.
    public static func isKeyframe(firstByte: UInt8) -> Bool { firstByte & 0x01 == 0 }

    /// Parses the frame tag and, for keyframes, the start code and size.
    /// - Throws: ``VP8Error/invalidFrame(reason:)`` for short or malformed headers.
    public init(_ data: [UInt8]) throws(VP8Error) {
        try self.init(bytes: data[...])
    }

    /// Parses a header from a slice.
    public init(bytes data: ArraySlice<UInt8>) throws(VP8Error) {
        guard data.count >= 3 else { throw .invalidFrame(reason: "\(data.count) bytes, a frame tag needs 3") }
        let b = data.startIndex
        let tag = UInt32(data[b]) | UInt32(data[b + 1]) << 8 | UInt32(data[b + 2]) << 16
        isKeyframe = tag & 1 == 0
        version = Int((tag >> 1) & 0x7)
        showFrame = (tag >> 4) & 1 == 1
        firstPartitionSize = Int(tag >> 5)
        var headerSize = 3
        if isKeyframe {
            guard data.count >= 10 else { throw .invalidFrame(reason: "keyframe of \(data.count) bytes, needs 10") }
            guard data[b + 3] == 0x9d, data[b + 4] == 0x01, data[b + 5] == 0x2a else {
                throw .invalidFrame(reason: "keyframe without the start code 9d 01 2a")
            }
            width = Int(UInt16(data[b + 6]) | UInt16(data[b + 7]) << 8) & 0x3fff
            height = Int(UInt16(data[b + 8]) | UInt16(data[b + 9]) << 8) & 0x3fff
            guard width! > 0, height! > 0 else { throw .invalidFrame(reason: "keyframe of size \(width!)x\(height!)") }
            headerSize = 10
        } else {
            width = nil
            height = nil
        }
        guard version <= 3 else { throw .invalidFrame(reason: "version \(version)") }
        guard firstPartitionSize <= data.count - headerSize else {
            throw .invalidFrame(
                reason: "first partition of \(firstPartitionSize) bytes in a frame of \(data.count) (truncated?)")
        }
    }
}
