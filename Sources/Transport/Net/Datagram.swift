/// A UDP datagram with its addresses: what every MeetKit machine (ICE, DTLS-SRTP, the
/// PeerConnection) hands its driver to send, from the local socket `from` to `to`.
public struct Datagram: Sendable, Hashable {
    /// The local address (socket) to send from.
    public var from: TransportAddress
    /// The destination.
    public var to: TransportAddress
    /// The bytes.
    public var data: [UInt8]

    /// A datagram from its parts.
    public init(from: TransportAddress, to: TransportAddress, data: [UInt8]) {
        self.from = from
        self.to = to
        self.data = data
    }
}
