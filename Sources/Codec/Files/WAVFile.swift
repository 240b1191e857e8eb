/// Writes 16-bit PCM WAV files (RIFF/WAVE, format tag 1), streaming.
///
/// Samples are held in memory and written, with the header's sizes rewritten, on
/// ``flush()`` — automatically every second of audio — and on ``finish()``: a recording
/// interrupted between flushes is still a valid file holding everything up to the last
/// flush.
///
/// ```swift
/// let wav = try WAVWriter(path: "speaker-1.wav", sampleRate: 16_000, channels: 1)
/// try wav.write(frame)          // AudioFrame<Int16> at 16 kHz mono
/// try wav.finish()
/// ```
public final class WAVWriter {
    /// Samples per second.
    public let sampleRate: Int
    /// Interleaved channels.
    public let channels: Int
    /// Samples per channel written so far.
    public private(set) var samplesWritten: Int64 = 0
    private let sink: FileSink
    private var unflushed: Int64 = 0
    /// Samples written since the last flush.
    private var pending: [Int16] = []
    private var done = false

    /// Creates (or truncates) `path` and writes a header.
    public init(path: String, sampleRate: Int, channels: Int) throws(MediaFileError) {
        guard (1...384_000).contains(sampleRate), (1...8).contains(channels) else {
            throw .invalidFrame("WAV of \(sampleRate) Hz, \(channels) channel(s)")
        }
        self.sampleRate = sampleRate
        self.channels = channels
        sink = try FileSink(path: path)
        try sink.write(header(dataBytes: 0))
    }

    /// Duration written so far.
    public var duration: MediaTime { MediaTime(value: samplesWritten, timescale: Int32(sampleRate)) }

    private func header(dataBytes: Int) -> [UInt8] {
        var h: [UInt8] = []
        h.reserveCapacity(44)
        let riffSize = UInt32(clamping: 36 + dataBytes)
        h.appendASCII("RIFF")
        h.appendLE(riffSize)
        h.appendASCII("WAVE")
        h.appendASCII("fmt ")
        h.appendLE(UInt32(16))
        h.appendLE(UInt16(1))  // PCM
        h.appendLE(UInt16(channels))
        h.appendLE(UInt32(sampleRate))
        h.appendLE(UInt32(sampleRate * channels * 2))  // byte rate
        h.appendLE(UInt16(channels * 2))  // block align
        h.appendLE(UInt16(16))  // bits per sample
        h.appendASCII("data")
        h.appendLE(UInt32(clamping: dataBytes))
        return h
    }

    /// Appends a frame, which must have the file's rate and channel count.
    public func write(_ frame: AudioFrame<Int16>) throws(MediaFileError) {
        guard frame.sampleRate == sampleRate, frame.channels == channels else {
            throw .invalidFrame(
                "\(frame.sampleRate) Hz \(frame.channels) ch into a \(sampleRate) Hz \(channels) ch WAV")
        }
        try write(samples: frame.samples)
    }

    /// Appends interleaved samples (a multiple of the channel count).
    public func write(samples: [Int16]) throws(MediaFileError) {
        guard !done else { throw .finished }
        guard samples.count % channels == 0 else {
            throw .invalidFrame("\(samples.count) samples is not a multiple of \(channels) channels")
        }
        // The samples wait in memory until the next flush: one write a second instead of
        // one per frame (per-frame writes were a tenth of a recording bot's CPU), and a file
        // cut short still holds everything up to its header's last rewrite.
        pending.append(contentsOf: samples)
        let perChannel = Int64(samples.count / channels)
        samplesWritten += perChannel
        unflushed += perChannel
        if unflushed >= Int64(sampleRate) { try flush() }
    }

    /// Appends `samplesPerChannel` samples of silence, e.g. to keep a speaker's file aligned
    /// with the meeting's timeline while they are muted.
    public func writeSilence(samplesPerChannel: Int) throws(MediaFileError) {
        guard samplesPerChannel > 0 else { return }
        var left = samplesPerChannel
        while left > 0 {
            let n = min(left, sampleRate)
            try write(samples: [Int16](repeating: 0, count: n * channels))
            left -= n
        }
    }

    /// Writes the samples held in memory and rewrites the header's sizes, so that the file
    /// is valid and whole as it stands.
    public func flush() throws(MediaFileError) {
        guard !done else { throw .finished }
        if !pending.isEmpty {
            defer { pending.removeAll(keepingCapacity: true) }  // written or failed: memory stays bounded
            // WAV is little-endian: on a little-endian machine the samples' memory is the
            // file's bytes (sample by sample this was a recording bot's largest cost after
            // decoding).
            #if _endian(little)
                try sink.write(pending)
            #else
                try sink.write(pending.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] })
            #endif
        }
        try sink.write(header(dataBytes: Int(samplesWritten) * channels * 2), at: 0)
        unflushed = 0
    }

    /// Finalises the header and closes the file. Calling it twice does nothing more.
    public func finish() throws(MediaFileError) {
        guard !done else { return }
        try flush()
        done = true
        try sink.close()
    }
}

/// Reads 16-bit PCM WAV files (format tag 1, or WAVE_FORMAT_EXTENSIBLE with a PCM
/// sub-format). Other chunks are skipped.
///
/// ```swift
/// let wav = try WAVReader(path: "speaker-1.wav")
/// print(wav.sampleRate, wav.channels, wav.duration.seconds)
/// let pcm: [Int16] = wav.samples
/// ```
public struct WAVReader: Sendable {
    /// Samples per second.
    public let sampleRate: Int
    /// Interleaved channels.
    public let channels: Int
    /// All samples, interleaved.
    public let samples: [Int16]

    /// Samples per channel.
    public var samplesPerChannel: Int { samples.count / channels }
    /// Playing time.
    public var duration: MediaTime { MediaTime(value: Int64(samplesPerChannel), timescale: Int32(sampleRate)) }

    /// Reads a file.
    public init(path: String) throws(MediaFileError) { try self.init(source: ByteSource(path: path)) }

    /// Reads a file already in memory.
    public init(bytes: [UInt8]) throws(MediaFileError) { try self.init(source: ByteSource(bytes: bytes)) }

    init(source: ByteSource) throws(MediaFileError) {
        let riff = try source.read(12, "RIFF header")
        guard riff.prefix(4).elementsEqual("RIFF".utf8), riff.dropFirst(8).elementsEqual("WAVE".utf8) else {
            throw .invalidFormat("not a RIFF/WAVE file")
        }
        var format: (rate: Int, channels: Int)?
        while true {
            if try source.atEnd() { throw .invalidFormat("no data chunk") }
            let chunk = try source.read(8, "chunk header")
            let id = String(decoding: chunk.prefix(4), as: UTF8.self)
            let size = Int(chunk.le(4, 4))
            if id == "fmt " {
                // 16 bytes for PCM, 18 or 40 for the extended forms: anything near a kilobyte is not a fmt chunk.
                guard (16...1024).contains(size) else { throw .invalidFormat("fmt chunk of \(size) bytes") }
                let fmt = try source.read(size, "fmt chunk")
                var tag = fmt.le(0, 2)
                let ch = Int(fmt.le(2, 2))
                let rate = Int(fmt.le(4, 4))
                let bits = Int(fmt.le(14, 2))
                if tag == 0xFFFE {
                    guard size >= 40 else { throw .invalidFormat("extensible fmt chunk of \(size) bytes") }
                    tag = fmt.le(24, 2)  // first two bytes of the sub-format GUID
                }
                guard tag == 1 else { throw .unsupported("WAV format tag \(tag) (only PCM)") }
                guard bits == 16 else { throw .unsupported("\(bits)-bit WAV (only 16-bit)") }
                guard (1...8).contains(ch), (1...384_000).contains(rate) else {
                    throw .invalidFormat("\(ch) channel(s) at \(rate) Hz")
                }
                guard Int(fmt.le(12, 2)) == ch * 2 else { throw .invalidFormat("block align \(fmt.le(12, 2))") }
                format = (rate, ch)
                if size % 2 == 1 { try source.skip(1, "fmt padding") }
            } else if id == "data" {
                guard let format else { throw .invalidFormat("data chunk before fmt chunk") }
                // Streaming writers leave 0 or 0xFFFFFFFF: then the data runs to the end.
                let bytes: ArraySlice<UInt8>
                if size == 0 || size == 0xFFFF_FFFF {
                    var all: [UInt8] = []
                    while true {
                        let part = try source.readUpTo(1 << 20)
                        if part.isEmpty { break }
                        all += part
                    }
                    bytes = all[...]
                } else {
                    bytes = try source.read(size, "data chunk")
                }
                let frameBytes = format.channels * 2
                guard bytes.count % frameBytes == 0 else {
                    throw .invalidFormat("data of \(bytes.count) bytes is not whole \(format.channels)-channel frames")
                }
                var samples = [Int16](repeating: 0, count: bytes.count / 2)
                var i = bytes.startIndex
                for n in 0..<samples.count {
                    samples[n] = Int16(bitPattern: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)
                    i += 2
                }
                self.sampleRate = format.rate
                self.channels = format.channels
                self.samples = samples
                return
            } else {
                try source.skip(size + size % 2, "\(id) chunk")
            }
        }
    }

    /// The samples of channel `channel` as floats in [-1, 1].
    public func channel(_ channel: Int) -> [Float] {
        stride(from: channel, to: samples.count, by: channels).map { samples[$0].normalized }
    }
}
