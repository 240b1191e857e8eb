import Foundation
import Testing

@testable import Codec

/// Files built to take a reader down (issue 13): a length field that claims gigabytes in a
/// short file, frame times that overflow or go back. Each gives a typed error, fast and
/// without the memory the file claims.
@Suite("Hostile media files")
struct HostileFileTests {
    /// The process's peak resident memory, in MiB.
    static func peakMiB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss / 1024
    }

    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.filter(\.isHexDigit))
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    /// 20 bytes whose fmt chunk claims 0xFB000010 bytes, and a valid fmt chunk followed by a
    /// data chunk claiming 0xFFFFFFFE: typed errors, read from disk, with no allocation of
    /// what the headers claim (the reader used to allocate and zero ~4 GiB first).
    @Test func wavLengthFieldsClaimingGigabytes() throws {
        let folder = try temporaryDirectory()
        let hugeFmt = Self.bytes("52494646 00000000 57415645 666d7420 100000fb")
        var hugeData = Self.bytes("52494646 00000000 57415645")
        hugeData += Self.bytes("666d7420 10000000 0100 0100 803e0000 007d0000 0200 1000")  // PCM mono 16 kHz
        hugeData += Self.bytes("64617461 feffffff") + [UInt8](repeating: 0, count: 64)
        let before = Self.peakMiB()
        for (name, content) in [("huge-fmt.wav", hugeFmt), ("huge-data.wav", hugeData)] {
            let path = folder + "/" + name
            try Data(content).write(to: URL(fileURLWithPath: path))
            #expect(throws: MediaFileError.self) { try WAVReader(path: path) }
        }
        #expect(throws: MediaFileError.invalidFormat("fmt chunk of 4211081232 bytes")) {
            try WAVReader(path: folder + "/huge-fmt.wav")
        }
        #expect(throws: MediaFileError.truncated(context: "data chunk", offset: 44, needed: 4_294_967_230)) {
            try WAVReader(path: folder + "/huge-data.wav")
        }
        #expect(Self.peakMiB() - before < 64, "peak memory grew by \(Self.peakMiB() - before) MiB")
    }

    /// An IVF file with one valid frame and then a frame at `tick`.
    static func ivf(ticks: [Int64]) throws -> [UInt8] {
        let frame = try #require(
            try VP8Encoder(configuration: .init(width: 64, height: 48)).encode(VideoFrame(width: 64, height: 48)))
        var out = Array("DKIF".utf8)
        out.appendLE(UInt16(0))
        out.appendLE(UInt16(32))
        out += Array("VP80".utf8)
        out.appendLE(UInt16(64))
        out.appendLE(UInt16(48))
        out.appendLE(UInt32(90_000))  // rate
        out.appendLE(UInt32(1))  // scale
        out.appendLE(UInt32(ticks.count))
        out.appendLE(UInt32(0))
        for tick in ticks {
            out.appendLE(UInt32(frame.data.count))
            out.appendLE(UInt64(bitPattern: tick))
            out += frame.data
        }
        return out
    }

    /// Frame times that are negative, absurdly large (2^60, Int64.max: the play path used
    /// to overflow and trap converting them) or going back: a typed error at that frame,
    /// after the good ones.
    @Test(arguments: [Int64.min, -1, 1 << 60, Int64.max, 500])
    func ivfTimesThatOverflowOrGoBack(tick: Int64) throws {
        let reader = try IVFReader(bytes: try Self.ivf(ticks: [0, 1000, tick]))
        #expect(try reader.nextFrame()?.timestamp == .zero)
        #expect(try reader.nextFrame()?.timestamp == MediaTime(value: 1000, timescale: 90_000))
        #expect(throws: MediaFileError.self) { try reader.nextFrame() }
        // The largest time allowed converts without overflow.
        let late = try IVFReader(bytes: try Self.ivf(ticks: [(1 << 32) * 90_000 - 1]))
        #expect(try late.nextFrame()?.timestamp.seconds ?? 0 > 4e9)
    }
}
