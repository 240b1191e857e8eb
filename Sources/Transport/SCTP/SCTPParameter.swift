import MeetKitNet

/// A variable-length parameter of INIT, INIT ACK, HEARTBEAT and RE-CONFIG chunks
/// (RFC 9260 §3.2.1): type, length, value, padded to four bytes.
public struct SCTPParameter: Sendable, Equatable {
    /// Parameter types MeetKit reads or writes.
    public enum Kind: UInt16, Sendable {
        /// Heartbeat Info (RFC 9260 §3.3.5).
        case heartbeatInfo = 1
        /// State Cookie, in INIT ACK (RFC 9260 §3.3.3.1).
        case stateCookie = 7
        /// Outgoing SSN Reset Request (RFC 6525 §4.1).
        case outgoingResetRequest = 13
        /// Incoming SSN Reset Request (RFC 6525 §4.2).
        case incomingResetRequest = 14
        /// Re-configuration Response (RFC 6525 §4.4).
        case reconfigurationResponse = 16
        /// Supported Extensions: the chunk types beyond the base protocol (RFC 5061 §4.2.7).
        case supportedExtensions = 0x8008
        /// Forward-TSN-Supported (RFC 3758 §3.1).
        case forwardTSNSupported = 0xC000
    }

    /// The type number.
    public var type: UInt16
    /// The value, without padding.
    public var value: [UInt8]

    /// A parameter from its parts.
    public init(type: UInt16, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    /// A parameter of a known kind.
    public init(_ kind: Kind, value: [UInt8] = []) { self.init(type: kind.rawValue, value: value) }

    /// What a receiver that does not know this type must do (RFC 9260 §3.2.1: the two
    /// highest bits): skip it and go on when the first is set, report it when the second is.
    public var skipIfUnknown: Bool { type & 0x8000 != 0 }
    /// Whether an unknown parameter of this type is reported back.
    public var reportIfUnknown: Bool { type & 0x4000 != 0 }

    /// Reads the parameters filling `bytes` (each padded to four bytes; the last one's
    /// padding may be missing).
    /// - Throws: ``SCTPError`` for a length under 4 or past the end.
    static func parseList(_ bytes: ArraySlice<UInt8>) throws(SCTPError) -> [SCTPParameter] {
        var out: [SCTPParameter] = []
        var offset = 0
        while bytes.count - offset >= 4 {
            let type = bytes.be16(at: offset)
            let length = Int(bytes.be16(at: offset + 2))
            guard length >= 4 else { throw .malformed("parameter \(type) of length \(length)") }
            guard offset + length <= bytes.count else {
                throw .truncated(needed: offset + length, available: bytes.count)
            }
            let start = bytes.startIndex + offset
            out.append(SCTPParameter(type: type, value: Array(bytes[(start + 4)..<(start + length)])))
            offset += (length + 3) & ~3
        }
        guard offset >= bytes.count else { throw .malformed("\(bytes.count - offset) stray bytes after parameters") }
        return out
    }

    /// Appends this parameter, padded.
    func serialize(into out: inout [UInt8]) {
        putBE16(&out, type)
        putBE16(&out, UInt16(4 + value.count))
        out += value
        padToFour(&out)
    }
}
