/// Writes IVF files holding VP8 frames: a 32-byte header ("DKIF", fourcc VP80, size, time
/// base, frame count) then each frame with a 12-byte header (size, timestamp).
///
/// Timestamps are written in the file's time base. The header's length field is rewritten
/// every 30 frames and by ``finish()``, so an interrupted recording is a valid file. libvpx
/// reads that field as a frame count and ffmpeg as a duration in ticks: MeetKit writes the
/// duration in ticks, which is also the frame count with a time base of 1/fps.
///
/// ```swift
/// let ivf = try IVFWriter(path: "camera.ivf", width: 640, height: 360, timebase: (1, 30))
/// try ivf.write(frame)        // EncodedFrame from VP8Encoder or VP8FrameAssembler
/// try ivf.finish()
/// ```
public final class IVFWriter {
    /// Picture width in the header.
    public let width: Int
    /// Picture height in the header.
    public let height: Int
    /// Seconds per timestamp tick: numerator and denominator.
    public let timebase: (numerator: Int, denominator: Int)
    /// Frames written.
    public private(set) var framesWritten = 0
    private let sink: FileSink
    private var firstTimestamp: MediaTime?
    private var lastTick: Int64 = -1
    private var lastDurationTicks: Int64 = 0
    private var done = false

    /// Creates (or truncates) `path` and writes the header.
    /// - Parameter timebase: seconds per tick as (numerator, denominator): (1, 30) for a
    ///   30 fps camera, (1, 90000) to keep RTP timestamps exactly.
    public init(path: String, width: Int, height: Int, timebase: (Int, Int) = (1, 90_000)) throws(MediaFileError) {
        guard (1...65535).contains(width), (1...65535).contains(height) else {
            throw .invalidFrame("IVF of \(width)x\(height)")
        }
        guard timebase.0 > 0, timebase.1 > 0, timebase.0 <= Int(Int32.max), timebase.1 <= Int(Int32.max) else {
            throw .invalidFrame("time base \(timebase.0)/\(timebase.1)")
        }
        self.width = width
        self.height = height
        self.timebase = (timebase.0, timebase.1)
        sink = try FileSink(path: path)
        try sink.write(header())
    }

    private func header() -> [UInt8] {
        var h: [UInt8] = []
        h.appendASCII("DKIF")
        h.appendLE(UInt16(0))  // version
        h.appendLE(UInt16(32))  // header size
        h.appendASCII("VP80")
        h.appendLE(UInt16(width))
        h.appendLE(UInt16(height))
        h.appendLE(UInt32(timebase.denominator))  // rate
        h.appendLE(UInt32(timebase.numerator))  // scale
        h.appendLE(UInt32(clamping: max(0, lastTick + lastDurationTicks)))
        h.appendLE(UInt32(0))
        return h
    }

    /// Appends a VP8 frame. Its timestamp, relative to the first frame's, becomes the
    /// frame's IVF timestamp (kept strictly increasing).
    public func write(_ frame: EncodedFrame) throws(MediaFileError) {
        guard !done else { throw .finished }
        guard frame.codec == .vp8 else { throw .invalidFrame("\(frame.codec) frame in an IVF file") }
        guard !frame.data.isEmpty, frame.data.count <= Int(UInt32.max) else {
            throw .invalidFrame("VP8 frame of \(frame.data.count) bytes")
        }
        let first = firstTimestamp ?? frame.timestamp
        firstTimestamp = first
        let elapsed = frame.timestamp - first
        // ticks = elapsed seconds * denominator / numerator
        var tick = elapsed.converted(to: Int32(clamping: timebase.denominator)).value / Int64(timebase.numerator)
        if tick <= lastTick { tick = lastTick + 1 }
        // The last frame lasts its own duration if known, else the mean interval so far.
        if let d = frame.duration, d.value > 0 {
            lastDurationTicks = max(
                1, d.converted(to: Int32(clamping: timebase.denominator)).value / Int64(timebase.numerator))
        } else {
            lastDurationTicks = framesWritten > 0 ? max(1, tick / Int64(framesWritten)) : 1
        }
        lastTick = tick
        var h: [UInt8] = []
        h.appendLE(UInt32(frame.data.count))
        h.appendLE(UInt64(bitPattern: tick))
        try sink.write(h + frame.data)
        framesWritten += 1
        if framesWritten % 30 == 0 { try sink.write(header(), at: 0) }
    }

    /// Rewrites the header with the final frame count and closes the file. Calling it
    /// twice does nothing more.
    public func finish() throws(MediaFileError) {
        guard !done else { return }
        try sink.write(header(), at: 0)
        done = true
        try sink.close()
    }
}

/// Reads IVF files of VP8 frames, streaming frame by frame.
///
/// ```swift
/// let ivf = try IVFReader(path: "camera.ivf")
/// while let frame = try ivf.nextFrame() { _ = try decoder.decode(frame) }
/// ```
public final class IVFReader {
    /// Picture width from the header.
    public let width: Int
    /// Picture height from the header.
    public let height: Int
    /// Seconds per tick from the header.
    public let timebase: (numerator: Int, denominator: Int)
    /// The header's length field: a frame count for libvpx, a duration in ticks for
    /// ffmpeg and MeetKit (equal with a 1/fps time base). May be stale in an interrupted
    /// recording.
    public let declaredLength: Int
    /// Frames read so far.
    public private(set) var framesRead = 0
    /// The latest frame time read, in ticks: times must not go back.
    private var lastTick: Int64 = 0
    private let source: ByteSource
    /// The latest time a frame may have: 2^32 seconds (136 years) keeps every conversion
    /// and difference of times on a 90 kHz clock far from overflowing.
    static let maxSeconds: Int64 = 1 << 32

    /// Opens a file and reads its header.
    public convenience init(path: String) throws(MediaFileError) { try self.init(source: ByteSource(path: path)) }

    /// Reads a file already in memory.
    public convenience init(bytes: [UInt8]) throws(MediaFileError) { try self.init(source: ByteSource(bytes: bytes)) }

    init(source: ByteSource) throws(MediaFileError) {
        self.source = source
        let h = try source.read(32, "IVF header")
        guard h.prefix(4).elementsEqual("DKIF".utf8) else { throw .invalidFormat("no DKIF signature") }
        let headerSize = Int(h.le(6, 2))
        guard headerSize >= 32 else { throw .invalidFormat("IVF header size \(headerSize)") }
        let fourcc = String(decoding: h[(h.startIndex + 8)..<(h.startIndex + 12)], as: UTF8.self)
        guard fourcc == "VP80" else { throw .unsupported("IVF codec \(fourcc) (only VP80)") }
        width = Int(h.le(12, 2))
        height = Int(h.le(14, 2))
        let rate = Int(h.le(16, 4))
        let scale = Int(h.le(20, 4))
        guard rate > 0, scale > 0, rate <= Int(Int32.max) else {
            throw .invalidFormat("IVF time base \(scale)/\(rate)")
        }
        timebase = (scale, rate)
        declaredLength = Int(h.le(24, 4))
        if headerSize > 32 { try source.skip(headerSize - 32, "IVF header extension") }
    }

    /// The next frame, or nil at the end of the file. Its timestamp is on a 90 kHz clock;
    /// `isKeyframe` comes from the VP8 frame tag.
    /// - Throws: ``MediaFileError/truncated(context:offset:needed:)`` when the file ends
    ///   inside a frame; ``MediaFileError/invalidFormat(_:)`` for a negative time, a time
    ///   past 2^32 seconds, or one before the previous frame's.
    public func nextFrame() throws(MediaFileError) -> EncodedFrame? {
        if try source.atEnd() { return nil }
        let h = try source.read(12, "IVF frame header")
        let size = Int(h.le(0, 4))
        guard size > 0, size <= 64 << 20 else { throw .invalidFormat("IVF frame of \(size) bytes") }
        let tick = Int64(bitPattern: h.le(4, 8))
        // seconds = tick * numerator / denominator, checked before anything is computed with it.
        let (scaled, overflow) = tick.multipliedReportingOverflow(by: Int64(timebase.numerator))
        guard tick >= 0, !overflow, scaled / Int64(timebase.denominator) < Self.maxSeconds else {
            throw .invalidFormat(
                "IVF frame \(framesRead) at tick \(tick) of \(timebase.numerator)/\(timebase.denominator) s")
        }
        guard tick >= lastTick else {
            throw .invalidFormat("IVF frame \(framesRead) at tick \(tick), before the previous one (\(lastTick))")
        }
        let data = Array(try source.read(size, "IVF frame \(framesRead)"))
        framesRead += 1
        lastTick = tick
        let time = MediaTime(value: scaled, timescale: Int32(clamping: timebase.denominator)).converted(to: 90_000)
        return EncodedFrame(
            codec: .vp8, data: data, timestamp: time, isKeyframe: VP8FrameHeader.isKeyframe(firstByte: data[0]))
    }
}
