import MeetKitNet

/// A DATA chunk (RFC 9260 §3.3.1): one fragment of a user message on a stream. The user
/// data stays a slice of the packet it arrived in.
public struct SCTPDataChunk: Sendable, Equatable {
    /// Transmission sequence number.
    public var tsn: UInt32
    /// The stream (a data channel's id).
    public var streamIdentifier: UInt16
    /// The stream sequence number of the message (ignored when unordered).
    public var streamSequenceNumber: UInt16
    /// The payload protocol identifier (RFC 8831 §8: string, binary, DCEP…).
    public var payloadProtocolIdentifier: UInt32
    /// The U bit: delivered as soon as it is complete, regardless of order.
    public var unordered: Bool
    /// The B bit: the message's first fragment.
    public var beginning: Bool
    /// The E bit: the message's last fragment.
    public var ending: Bool
    /// The I bit: the sender asks for a SACK without delay (RFC 7053).
    public var immediate: Bool
    /// The fragment's bytes.
    public var userData: ArraySlice<UInt8>

    /// A chunk from its fields.
    public init(
        tsn: UInt32, streamIdentifier: UInt16, streamSequenceNumber: UInt16, payloadProtocolIdentifier: UInt32,
        unordered: Bool = false, beginning: Bool = true, ending: Bool = true, immediate: Bool = false,
        userData: ArraySlice<UInt8>
    ) {
        self.tsn = tsn
        self.streamIdentifier = streamIdentifier
        self.streamSequenceNumber = streamSequenceNumber
        self.payloadProtocolIdentifier = payloadProtocolIdentifier
        self.unordered = unordered
        self.beginning = beginning
        self.ending = ending
        self.immediate = immediate
        self.userData = userData
    }

    /// Bytes before the user data.
    static let headerLength = 12

    init(flags: UInt8, value: ArraySlice<UInt8>) throws(SCTPError) {
        guard value.count >= Self.headerLength else {
            throw .truncated(needed: Self.headerLength, available: value.count)
        }
        // RFC 9260 §6.2: a DATA chunk without user data is a protocol violation.
        guard value.count > Self.headerLength else { throw .malformed("DATA chunk without user data") }
        self.init(
            tsn: value.be32(at: 0), streamIdentifier: value.be16(at: 4), streamSequenceNumber: value.be16(at: 6),
            payloadProtocolIdentifier: value.be32(at: 8), unordered: flags & 0x04 != 0, beginning: flags & 0x02 != 0,
            ending: flags & 0x01 != 0, immediate: flags & 0x08 != 0, userData: value.after(Self.headerLength))
    }

    var flags: UInt8 {
        (immediate ? 0x08 : 0) | (unordered ? 0x04 : 0) | (beginning ? 0x02 : 0) | (ending ? 0x01 : 0)
    }

    func serializeValue(into out: inout [UInt8]) {
        putBE32(&out, tsn)
        putBE16(&out, streamIdentifier)
        putBE16(&out, streamSequenceNumber)
        putBE32(&out, payloadProtocolIdentifier)
        out += userData
    }
}
