import MeetKitNet

/// A FORWARD TSN chunk (RFC 3758 §3.2): the sender abandoned every TSN up to
/// `newCumulativeTSN`; the receiver moves its cumulative TSN there and, per ordered stream
/// listed, skips to the sequence number given.
public struct SCTPForwardTSNChunk: Sendable, Equatable {
    /// An ordered stream and the last sequence number skipped on it.
    public struct SkippedStream: Sendable, Equatable {
        public var streamIdentifier: UInt16
        public var streamSequenceNumber: UInt16
        public init(streamIdentifier: UInt16, streamSequenceNumber: UInt16) {
            self.streamIdentifier = streamIdentifier
            self.streamSequenceNumber = streamSequenceNumber
        }
    }

    /// The new cumulative TSN.
    public var newCumulativeTSN: UInt32
    /// Ordered streams whose abandoned messages are skipped.
    public var streams: [SkippedStream]

    public init(newCumulativeTSN: UInt32, streams: [SkippedStream] = []) {
        self.newCumulativeTSN = newCumulativeTSN
        self.streams = streams
    }

    init(value: ArraySlice<UInt8>) throws(SCTPError) {
        guard value.count >= 4 else { throw .truncated(needed: 4, available: value.count) }
        guard (value.count - 4) % 4 == 0 else { throw .malformed("FORWARD TSN of \(value.count) bytes") }
        self.init(
            newCumulativeTSN: value.be32(at: 0),
            streams: stride(from: 4, to: value.count, by: 4).map {
                SkippedStream(streamIdentifier: value.be16(at: $0), streamSequenceNumber: value.be16(at: $0 + 2))
            })
    }

    func serializeValue(into out: inout [UInt8]) {
        putBE32(&out, newCumulativeTSN)
        for s in streams {
            putBE16(&out, s.streamIdentifier)
            putBE16(&out, s.streamSequenceNumber)
        }
    }
}
