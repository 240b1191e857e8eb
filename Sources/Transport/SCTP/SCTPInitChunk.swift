import MeetKitNet

/// The value of an INIT or INIT ACK chunk (RFC 9260 §3.3.2, §3.3.3): the sender's tag,
/// window, stream counts and first TSN, and its optional parameters (the state cookie in
/// an INIT ACK, the extensions it supports).
public struct SCTPInitChunk: Sendable, Equatable {
    /// The tag the peer must put in every packet it sends to this endpoint (never 0).
    public var initiateTag: UInt32
    /// The sender's receive window in bytes.
    public var advertisedReceiverWindow: UInt32
    /// Streams the sender wants to send on.
    public var outboundStreams: UInt16
    /// Streams the sender accepts.
    public var inboundStreams: UInt16
    /// The TSN of the sender's first DATA chunk.
    public var initialTSN: UInt32
    /// Optional parameters in order.
    public var parameters: [SCTPParameter]

    /// A value from its fields.
    public init(
        initiateTag: UInt32, advertisedReceiverWindow: UInt32, outboundStreams: UInt16, inboundStreams: UInt16,
        initialTSN: UInt32, parameters: [SCTPParameter] = []
    ) {
        self.initiateTag = initiateTag
        self.advertisedReceiverWindow = advertisedReceiverWindow
        self.outboundStreams = outboundStreams
        self.inboundStreams = inboundStreams
        self.initialTSN = initialTSN
        self.parameters = parameters
    }

    /// The first parameter of `kind`.
    public func parameter(_ kind: SCTPParameter.Kind) -> SCTPParameter? {
        parameters.first { $0.type == kind.rawValue }
    }

    /// Whether the sender lists `chunkType` among its extensions (or, for FORWARD TSN, sends
    /// the Forward-TSN-Supported parameter).
    public func supports(chunkType: UInt8) -> Bool {
        if chunkType == SCTPChunk.forwardTSNType, parameter(.forwardTSNSupported) != nil { return true }
        return parameter(.supportedExtensions)?.value.contains(chunkType) ?? false
    }

    init(value: ArraySlice<UInt8>) throws(SCTPError) {
        guard value.count >= 16 else { throw .truncated(needed: 16, available: value.count) }
        self.init(
            initiateTag: value.be32(at: 0), advertisedReceiverWindow: value.be32(at: 4),
            outboundStreams: value.be16(at: 8), inboundStreams: value.be16(at: 10), initialTSN: value.be32(at: 12),
            parameters: try SCTPParameter.parseList(value.after(16)))
    }

    func serializeValue(into out: inout [UInt8]) {
        putBE32(&out, initiateTag)
        putBE32(&out, advertisedReceiverWindow)
        putBE16(&out, outboundStreams)
        putBE16(&out, inboundStreams)
        putBE32(&out, initialTSN)
        for p in parameters { p.serialize(into: &out) }
    }
}
