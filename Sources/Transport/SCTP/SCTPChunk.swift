import MeetKitNet

/// One chunk of an SCTP packet (RFC 9260 §3.2), by type. Types MeetKit does not know are
/// kept as they came, with what the receiver must do about them (§3.2: the two highest
/// bits of the type).
public enum SCTPChunk: Sendable, Equatable {
    /// DATA (0).
    case data(SCTPDataChunk)
    /// INIT (1).
    case initiation(SCTPInitChunk)
    /// INIT ACK (2), whose parameters carry the state cookie.
    case initiationAck(SCTPInitChunk)
    /// SACK (3).
    case sack(SCTPSackChunk)
    /// HEARTBEAT (4) with its Heartbeat Info parameter's bytes, returned as they are.
    case heartbeat(info: [UInt8])
    /// HEARTBEAT ACK (5).
    case heartbeatAck(info: [UInt8])
    /// ABORT (6); `reflected` is the T bit (the tag is the sender's own, §8.5.1).
    case abort(reflected: Bool, causes: [SCTPErrorCause])
    /// SHUTDOWN (7) with the sender's cumulative TSN ack.
    case shutdown(cumulativeTSNAck: UInt32)
    /// SHUTDOWN ACK (8).
    case shutdownAck
    /// ERROR (9).
    case error(causes: [SCTPErrorCause])
    /// COOKIE ECHO (10): the state cookie, returned.
    case cookieEcho(cookie: [UInt8])
    /// COOKIE ACK (11).
    case cookieAck
    /// SHUTDOWN COMPLETE (14).
    case shutdownComplete(reflected: Bool)
    /// RE-CONFIG (130, RFC 6525).
    case reconfig([SCTPReconfigParameter])
    /// FORWARD TSN (192, RFC 3758).
    case forwardTSN(SCTPForwardTSNChunk)
    /// Any other type.
    case unknown(type: UInt8, flags: UInt8, value: [UInt8])

    /// The FORWARD TSN chunk's type number.
    public static let forwardTSNType: UInt8 = 192
    /// The RE-CONFIG chunk's type number.
    public static let reconfigType: UInt8 = 130

    /// The type number.
    public var type: UInt8 {
        switch self {
        case .data: 0
        case .initiation: 1
        case .initiationAck: 2
        case .sack: 3
        case .heartbeat: 4
        case .heartbeatAck: 5
        case .abort: 6
        case .shutdown: 7
        case .shutdownAck: 8
        case .error: 9
        case .cookieEcho: 10
        case .cookieAck: 11
        case .shutdownComplete: 14
        case .reconfig: Self.reconfigType
        case .forwardTSN: Self.forwardTSNType
        case .unknown(let type, _, _): type
        }
    }

    /// Parses one chunk from its type, flags and value (the bytes after the 4-byte header,
    /// without padding).
    init(type: UInt8, flags: UInt8, value: ArraySlice<UInt8>) throws(SCTPError) {
        func nothing() throws(SCTPError) {
            guard value.isEmpty else { throw .malformed("chunk \(type) with \(value.count) unexpected bytes") }
        }
        switch type {
        case 0: self = .data(try SCTPDataChunk(flags: flags, value: value))
        case 1: self = .initiation(try SCTPInitChunk(value: value))
        case 2: self = .initiationAck(try SCTPInitChunk(value: value))
        case 3: self = .sack(try SCTPSackChunk(value: value))
        case 4, 5:
            let parameters = try SCTPParameter.parseList(value)
            guard let info = parameters.first(where: { $0.type == SCTPParameter.Kind.heartbeatInfo.rawValue })
            else { throw .malformed("HEARTBEAT without Heartbeat Info") }
            self = type == 4 ? .heartbeat(info: info.value) : .heartbeatAck(info: info.value)
        case 6:
            self = .abort(reflected: flags & 0x01 != 0, causes: try SCTPErrorCause.parseList(value))
        case 7:
            guard value.count == 4 else { throw .malformed("SHUTDOWN of \(value.count) bytes") }
            self = .shutdown(cumulativeTSNAck: value.be32(at: 0))
        case 8:
            try nothing()
            self = .shutdownAck
        case 9: self = .error(causes: try SCTPErrorCause.parseList(value))
        case 10: self = .cookieEcho(cookie: Array(value))
        case 11:
            try nothing()
            self = .cookieAck
        case 14:
            try nothing()
            self = .shutdownComplete(reflected: flags & 0x01 != 0)
        case Self.reconfigType:
            var parameters: [SCTPReconfigParameter] = []
            for p in try SCTPParameter.parseList(value) { parameters.append(try SCTPReconfigParameter(p)) }
            // RFC 6525 §3.1: one or two parameters.
            guard (1...2).contains(parameters.count) else {
                throw .malformed("RE-CONFIG with \(parameters.count) parameters")
            }
            self = .reconfig(parameters)
        case Self.forwardTSNType: self = .forwardTSN(try SCTPForwardTSNChunk(value: value))
        default: self = .unknown(type: type, flags: flags, value: Array(value))
        }
    }

    var flags: UInt8 {
        switch self {
        case .data(let d): d.flags
        case .abort(let reflected, _), .shutdownComplete(let reflected): reflected ? 1 : 0
        case .unknown(_, let flags, _): flags
        default: 0
        }
    }

    /// Appends the chunk: header, value, padding.
    func serialize(into out: inout [UInt8]) {
        let start = out.count
        out.append(type)
        out.append(flags)
        putBE16(&out, 0)  // length, filled in below
        switch self {
        case .data(let d): d.serializeValue(into: &out)
        case .initiation(let i), .initiationAck(let i): i.serializeValue(into: &out)
        case .sack(let s): s.serializeValue(into: &out)
        case .heartbeat(let info), .heartbeatAck(let info):
            SCTPParameter(.heartbeatInfo, value: info).serialize(into: &out)
        case .abort(_, let causes), .error(let causes):
            for c in causes { SCTPParameter(type: c.code, value: c.information).serialize(into: &out) }
        case .shutdown(let ack): putBE32(&out, ack)
        case .cookieEcho(let cookie): out += cookie
        case .reconfig(let parameters): for p in parameters { p.parameter.serialize(into: &out) }
        case .forwardTSN(let f): f.serializeValue(into: &out)
        case .unknown(_, _, let value): out += value
        case .shutdownAck, .cookieAck, .shutdownComplete: break
        }
        let length = out.count - start
        out[start + 2] = UInt8(truncatingIfNeeded: length >> 8)
        out[start + 3] = UInt8(truncatingIfNeeded: length)
        padToFour(&out)
    }
}

/// An error cause of an ABORT or ERROR chunk (RFC 9260 §3.3.10).
public struct SCTPErrorCause: Sendable, Equatable {
    /// The cause code (e.g. 6 Unrecognized Chunk Type, 12 User-Initiated Abort, 13 Protocol
    /// Violation).
    public var code: UInt16
    /// Its cause-specific information.
    public var information: [UInt8]

    public init(code: UInt16, information: [UInt8] = []) {
        self.code = code
        self.information = information
    }

    /// Unrecognized Chunk Type: the chunk as received.
    public static let unrecognizedChunkType: UInt16 = 6
    /// Unrecognized Parameters.
    public static let unrecognizedParameters: UInt16 = 8
    /// User-Initiated Abort.
    public static let userInitiatedAbort: UInt16 = 12
    /// Protocol Violation.
    public static let protocolViolation: UInt16 = 13

    static func parseList(_ bytes: ArraySlice<UInt8>) throws(SCTPError) -> [SCTPErrorCause] {
        try SCTPParameter.parseList(bytes).map { SCTPErrorCause(code: $0.type, information: $0.value) }
    }
}
