/// The VP8 payload descriptor at the start of every VP8 RTP payload (RFC 7741 §4.2).
///
/// ```
///  0 1 2 3 4 5 6 7
/// |X|R|N|S|R| PID |      required
/// |I|L|T|K|  RSV  |      if X
/// |M| PictureID   |      if I (a second byte when M: 15-bit PictureID)
/// |   TL0PICIDX   |      if L
/// |TID|Y| KEYIDX  |      if T or K
/// ```
public struct VP8PayloadDescriptor: Sendable, Equatable {
    /// N: the frame is not used as a reference by other frames.
    public var nonReference: Bool
    /// S: the first payload byte starts a VP8 partition.
    public var startOfPartition: Bool
    /// PID: index of the partition the first payload byte belongs to (0…7).
    public var partitionIndex: UInt8
    /// PictureID, 7 or 15 bits, when present.
    public var pictureID: UInt16?
    /// Whether the PictureID is sent as 15 bits (M bit).
    public var pictureIDIs15Bits: Bool
    /// TL0PICIDX, when present.
    public var tl0PicIndex: UInt8?
    /// Temporal layer index (TID), when present.
    public var temporalLayer: UInt8?
    /// Y: layer sync bit, meaningful with `temporalLayer`.
    public var layerSync: Bool
    /// KEYIDX, when present.
    public var keyIndex: UInt8?

    /// A descriptor with the given fields; the rest absent.
    public init(
        nonReference: Bool = false, startOfPartition: Bool, partitionIndex: UInt8 = 0, pictureID: UInt16? = nil,
        pictureIDIs15Bits: Bool = true, tl0PicIndex: UInt8? = nil, temporalLayer: UInt8? = nil,
        layerSync: Bool = false, keyIndex: UInt8? = nil
    ) {
        self.nonReference = nonReference
        self.startOfPartition = startOfPartition
        self.partitionIndex = partitionIndex & 0x07
        self.pictureID = pictureID.map { $0 & (pictureIDIs15Bits ? 0x7FFF : 0x7F) }
        self.pictureIDIs15Bits = pictureIDIs15Bits
        self.tl0PicIndex = tl0PicIndex
        self.temporalLayer = temporalLayer.map { $0 & 0x03 }
        self.layerSync = layerSync
        self.keyIndex = keyIndex.map { $0 & 0x1F }
    }

    /// Whether this packet starts a frame: S set and partition 0.
    public var startsFrame: Bool { startOfPartition && partitionIndex == 0 }

    /// Length of the serialised descriptor.
    public var encodedLength: Int {
        var n = 1
        if hasExtension {
            n += 1
            if pictureID != nil { n += pictureIDIs15Bits ? 2 : 1 }
            if tl0PicIndex != nil { n += 1 }
            if temporalLayer != nil || keyIndex != nil { n += 1 }
        }
        return n
    }

    private var hasExtension: Bool {
        pictureID != nil || tl0PicIndex != nil || temporalLayer != nil || keyIndex != nil
    }

    /// Appends the descriptor's bytes to `out`.
    public func write(to out: inout [UInt8]) {
        var first = partitionIndex & 0x07
        if hasExtension { first |= 0x80 }
        if nonReference { first |= 0x20 }
        if startOfPartition { first |= 0x10 }
        out.append(first)
        guard hasExtension else { return }
        var ext: UInt8 = 0
        if pictureID != nil { ext |= 0x80 }
        if tl0PicIndex != nil { ext |= 0x40 }
        if temporalLayer != nil { ext |= 0x20 }
        if keyIndex != nil { ext |= 0x10 }
        out.append(ext)
        if let id = pictureID {
            if pictureIDIs15Bits {
                out.append(0x80 | UInt8(id >> 8))
                out.append(UInt8(id & 0xFF))
            } else {
                out.append(UInt8(id & 0x7F))
            }
        }
        if let tl0 = tl0PicIndex { out.append(tl0) }
        if temporalLayer != nil || keyIndex != nil {
            var b: UInt8 = (temporalLayer ?? 0) << 6
            if layerSync { b |= 0x20 }
            b |= (keyIndex ?? 0) & 0x1F
            out.append(b)
        }
    }

    /// Parses the descriptor at the start of `payload`, returning it and its length.
    /// - Throws: ``RTPPayloadError`` when the payload is empty, ends inside the descriptor,
    ///   or has no VP8 data after it.
    public static func parse(_ payload: [UInt8]) throws(RTPPayloadError) -> (VP8PayloadDescriptor, length: Int) {
        guard !payload.isEmpty else { throw .emptyPayload }
        let first = payload[0]
        var d = VP8PayloadDescriptor(
            nonReference: first & 0x20 != 0, startOfPartition: first & 0x10 != 0, partitionIndex: first & 0x07)
        var i = 1
        func need(_ n: Int) throws(RTPPayloadError) {
            guard payload.count >= i + n else { throw .truncatedDescriptor(needed: i + n, actual: payload.count) }
        }
        if first & 0x80 != 0 {
            try need(1)
            let ext = payload[i]
            i += 1
            if ext & 0x80 != 0 {
                try need(1)
                if payload[i] & 0x80 != 0 {
                    try need(2)
                    d.pictureID = UInt16(payload[i] & 0x7F) << 8 | UInt16(payload[i + 1])
                    d.pictureIDIs15Bits = true
                    i += 2
                } else {
                    d.pictureID = UInt16(payload[i])
                    d.pictureIDIs15Bits = false
                    i += 1
                }
            }
            if ext & 0x40 != 0 {
                try need(1)
                d.tl0PicIndex = payload[i]
                i += 1
            }
            if ext & 0x30 != 0 {
                try need(1)
                let b = payload[i]
                if ext & 0x20 != 0 {
                    d.temporalLayer = b >> 6
                    d.layerSync = b & 0x20 != 0
                }
                if ext & 0x10 != 0 { d.keyIndex = b & 0x1F }
                i += 1
            }
        }
        guard payload.count > i else { throw .noMediaAfterDescriptor }
        return (d, i)
    }

    /// Whether `payload` starts a VP8 keyframe: the descriptor starts the frame and the
    /// VP8 payload header's P bit is 0 (RFC 7741 §4.3). False for malformed payloads.
    public static func isKeyframe(_ payload: [UInt8]) -> Bool { startedFrameIsKeyframe(payload) == true }

    /// Whether `payload` starts a VP8 inter frame (one that needs earlier frames). False for
    /// keyframes, continuation packets and malformed payloads.
    public static func startsDeltaFrame(_ payload: ArraySlice<UInt8>) -> Bool {
        // The descriptor is at most 6 bytes: its head and the VP8 tag's first byte suffice.
        startedFrameIsKeyframe(Array(payload.prefix(8))) == false
    }

    /// Whether `payload` starts a VP8 keyframe (where a forwarded stream may begin or switch).
    public static func startsKeyframe(_ payload: ArraySlice<UInt8>) -> Bool {
        startedFrameIsKeyframe(Array(payload.prefix(8))) == true
    }

    /// For a payload that starts a frame, whether that frame is a keyframe; nil for
    /// continuation packets and malformed payloads.
    private static func startedFrameIsKeyframe(_ payload: [UInt8]) -> Bool? {
        guard let (d, length) = try? parse(payload), d.startsFrame, length < payload.count else { return nil }
        return VP8FrameHeader.isKeyframe(firstByte: payload[length])
    }
}
