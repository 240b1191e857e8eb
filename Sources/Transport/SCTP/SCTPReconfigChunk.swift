import MeetKitNet

/// A parameter of a RE-CONFIG chunk (RFC 6525 §4): WebRTC closes a data channel by
/// resetting its outgoing stream; the peer answers and resets its own.
public enum SCTPReconfigParameter: Sendable, Equatable {
    /// Outgoing SSN Reset Request (§4.1): the sender resets these outgoing streams (all when
    /// empty) once every TSN up to `senderLastTSN` has arrived.
    case outgoingResetRequest(
        requestSequenceNumber: UInt32, responseSequenceNumber: UInt32, senderLastTSN: UInt32, streams: [UInt16])
    /// Incoming SSN Reset Request (§4.2): the sender asks the peer to reset its outgoing
    /// streams.
    case incomingResetRequest(requestSequenceNumber: UInt32, streams: [UInt16])
    /// Re-configuration Response (§4.4).
    case response(responseSequenceNumber: UInt32, result: SCTPReconfigResult)
    /// A parameter MeetKit does not act on (SSN/TSN reset, adding streams), kept as it came.
    case other(SCTPParameter)

    init(_ p: SCTPParameter) throws(SCTPError) {
        let v = p.value[...]
        func streams(from offset: Int) throws(SCTPError) -> [UInt16] {
            guard (v.count - offset) % 2 == 0 else { throw .malformed("odd stream list in RE-CONFIG") }
            return stride(from: offset, to: v.count, by: 2).map { v.be16(at: $0) }
        }
        switch SCTPParameter.Kind(rawValue: p.type) {
        case .outgoingResetRequest:
            guard v.count >= 12 else { throw .truncated(needed: 12, available: v.count) }
            self = .outgoingResetRequest(
                requestSequenceNumber: v.be32(at: 0), responseSequenceNumber: v.be32(at: 4),
                senderLastTSN: v.be32(at: 8), streams: try streams(from: 12))
        case .incomingResetRequest:
            guard v.count >= 4 else { throw .truncated(needed: 4, available: v.count) }
            self = .incomingResetRequest(requestSequenceNumber: v.be32(at: 0), streams: try streams(from: 4))
        case .reconfigurationResponse:
            // The optional sender's/receiver's next TSN (8 more bytes) only follow SSN/TSN resets.
            guard v.count == 8 || v.count == 16 else { throw .malformed("RE-CONFIG response of \(v.count) bytes") }
            self = .response(
                responseSequenceNumber: v.be32(at: 0), result: SCTPReconfigResult(rawValue: v.be32(at: 4)))
        default:
            self = .other(p)
        }
    }

    var parameter: SCTPParameter {
        var v: [UInt8] = []
        switch self {
        case .outgoingResetRequest(let request, let response, let lastTSN, let streams):
            putBE32(&v, request)
            putBE32(&v, response)
            putBE32(&v, lastTSN)
            for s in streams { putBE16(&v, s) }
            return SCTPParameter(.outgoingResetRequest, value: v)
        case .incomingResetRequest(let request, let streams):
            putBE32(&v, request)
            for s in streams { putBE16(&v, s) }
            return SCTPParameter(.incomingResetRequest, value: v)
        case .response(let response, let result):
            putBE32(&v, response)
            putBE32(&v, result.rawValue)
            return SCTPParameter(.reconfigurationResponse, value: v)
        case .other(let p):
            return p
        }
    }
}

/// The result of a re-configuration request (RFC 6525 §4.4).
public struct SCTPReconfigResult: RawRepresentable, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Success - Nothing to do.
    public static let nothingToDo = SCTPReconfigResult(rawValue: 0)
    /// Success - Performed.
    public static let performed = SCTPReconfigResult(rawValue: 1)
    /// Denied.
    public static let denied = SCTPReconfigResult(rawValue: 2)
    /// Error - Wrong SSN.
    public static let wrongSSN = SCTPReconfigResult(rawValue: 3)
    /// Error - Request already in progress.
    public static let inProgress = SCTPReconfigResult(rawValue: 4)
    /// Error - Bad Sequence Number.
    public static let badSequenceNumber = SCTPReconfigResult(rawValue: 5)
    /// In progress: the request waits for TSNs still missing.
    public static let pending = SCTPReconfigResult(rawValue: 6)
}
