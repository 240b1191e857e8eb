import MeetKitNet

/// The Data Channel Establishment Protocol's messages (RFC 8832 §5), sent on a channel's
/// stream with payload protocol identifier 50 before any user message.
public enum DCEPMessage: Sendable, Equatable {
    /// DATA_CHANNEL_OPEN: the opener's channel type, priority, reliability parameter,
    /// label and subprotocol.
    case open(DataChannelOptions, label: String, priority: UInt16)
    /// DATA_CHANNEL_ACK.
    case ack

    /// Parses a DCEP message.
    /// - Throws: ``SCTPError/malformed(_:)`` for an unknown type, a channel type RFC 8832
    ///   does not define, or lengths that do not fit.
    public init(parsing bytes: ArraySlice<UInt8>) throws(SCTPError) {
        guard let type = bytes.first else { throw .truncated(needed: 1, available: 0) }
        switch type {
        case 0x02:
            self = .ack
        case 0x03:
            guard bytes.count >= 12 else { throw .truncated(needed: 12, available: bytes.count) }
            let channelType = bytes[bytes.startIndex + 1]
            let priority = bytes.be16(at: 2)
            let parameter = bytes.be32(at: 4)
            let labelLength = Int(bytes.be16(at: 8))
            let protocolLength = Int(bytes.be16(at: 10))
            guard bytes.count >= 12 + labelLength + protocolLength else {
                throw .truncated(needed: 12 + labelLength + protocolLength, available: bytes.count)
            }
            var options = DataChannelOptions()
            options.ordered = channelType & 0x80 == 0
            switch channelType & 0x7F {
            case 0x00: break
            case 0x01: options.maxRetransmits = Int(parameter)
            case 0x02: options.maxPacketLifeTime = .milliseconds(Int64(parameter))
            default: throw .malformed("DCEP channel type 0x\(String(channelType, radix: 16))")
            }
            let start = bytes.startIndex + 12
            options.protocol = String(
                decoding: bytes[start..<(start + labelLength + protocolLength)].dropFirst(labelLength), as: UTF8.self)
            self = .open(
                options, label: String(decoding: bytes[start..<(start + labelLength)], as: UTF8.self),
                priority: priority)
        default:
            throw .malformed("DCEP message type 0x\(String(type, radix: 16))")
        }
    }

    /// The message's bytes.
    public func serialized() -> [UInt8] {
        switch self {
        case .ack:
            return [0x02]
        case .open(let options, let label, let priority):
            var out: [UInt8] = [0x03]
            var channelType: UInt8 = options.ordered ? 0x00 : 0x80
            var parameter: UInt32 = 0
            if let n = options.maxRetransmits {
                channelType |= 0x01
                parameter = UInt32(clamping: n)
            } else if let lifetime = options.maxPacketLifeTime {
                channelType |= 0x02
                parameter = UInt32(clamping: Int64(max(0, (lifetime / .milliseconds(1)).rounded())))
            }
            out.append(channelType)
            putBE16(&out, priority)
            putBE32(&out, parameter)
            let labelBytes = Array(label.utf8.prefix(65535))
            let protocolBytes = Array(options.protocol.utf8.prefix(65535))
            putBE16(&out, UInt16(labelBytes.count))
            putBE16(&out, UInt16(protocolBytes.count))
            return out + labelBytes + protocolBytes
        }
    }
}

/// How a data channel delivers (RFC 8831 §6.1, the W3C `RTCDataChannelInit`).
public struct DataChannelOptions: Sendable, Equatable {
    /// Messages arrive in the order sent.
    public var ordered = true
    /// At most this many retransmissions of a message (exclusive with the lifetime).
    public var maxRetransmits: Int?
    /// A message is given up after this long (exclusive with the retransmissions).
    public var maxPacketLifeTime: Duration?
    /// The subprotocol name.
    public var `protocol` = ""
    /// Opened by the application on both sides with the same ``id`` instead of by DCEP.
    public var negotiated = false
    /// The stream id for a negotiated channel (or to choose one for an announced channel).
    public var id: UInt16?

    public init(
        ordered: Bool = true, maxRetransmits: Int? = nil, maxPacketLifeTime: Duration? = nil,
        protocol: String = "", negotiated: Bool = false, id: UInt16? = nil
    ) {
        self.ordered = ordered
        self.maxRetransmits = maxRetransmits
        self.maxPacketLifeTime = maxPacketLifeTime
        self.protocol = `protocol`
        self.negotiated = negotiated
        self.id = id
    }

    /// The SCTP reliability these options ask for.
    var reliability: SCTPReliability {
        if let n = maxRetransmits { return .maxRetransmits(n) }
        if let d = maxPacketLifeTime { return .lifetime(d) }
        return .reliable
    }
}

/// Payload protocol identifiers of WebRTC data channels (RFC 8831 §8).
enum DataChannelPPID {
    static let dcep: UInt32 = 50
    static let string: UInt32 = 51
    static let binary: UInt32 = 53
    static let stringEmpty: UInt32 = 56
    static let binaryEmpty: UInt32 = 57
}
