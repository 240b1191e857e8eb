import Codec

/// A codec as negotiated in SDP: payload type, clock, parameters, feedback, and RTX.
public struct NegotiatedCodec: Sendable, Hashable {
    /// Opus or VP8.
    public var codec: MediaCodec
    /// The payload type both sides use for it (the offerer's numbering).
    public var payloadType: UInt8
    /// Channels (2 for Opus in SDP, whatever is sent).
    public var channels: Int?
    /// fmtp parameters.
    public var formatParameters: String?
    /// rtcp-fb values ("nack", "nack pli", "ccm fir", "transport-cc", "goog-remb").
    public var feedback: [String]
    /// The RTX payload type associated with it (a=fmtp:<rtx> apt=<pt>), if any.
    public var rtxPayloadType: UInt8?

    /// The RTP clock rate.
    public var clockRate: Int { Int(codec.rtpClockRate) }
}

/// What one local media section sends: its SSRCs and stream identity.
public struct LocalTrackIdentity: Sendable, Hashable {
    /// Media SSRC.
    public var ssrc: UInt32
    /// RTX SSRC (video), paired by a=ssrc-group:FID.
    public var rtxSSRC: UInt32?
    /// RTCP CNAME.
    public var cname: String
    /// msid stream ID.
    public var streamID: String
    /// msid track ID.
    public var trackID: String

    /// An identity with random SSRCs.
    public static func random(kind: MediaKind, cname: String, streamID: String) -> LocalTrackIdentity {
        LocalTrackIdentity(
            ssrc: .random(in: 1...UInt32.max), rtxSSRC: kind == .video ? .random(in: 1...UInt32.max) : nil,
            cname: cname, streamID: streamID, trackID: "\(kind.rawValue)-\(UInt32.random(in: 0...UInt32.max))")
    }
}

/// One media section this side offers or answers.
public struct LocalMediaSection: Sendable, Hashable {
    /// The mid.
    public var mid: String
    /// Audio or video.
    public var kind: MediaKind
    /// This side's direction.
    public var direction: MediaDirection
    /// What this side sends on it (nil when it only receives).
    public var track: LocalTrackIdentity?

    /// A section from its parts.
    public init(mid: String, kind: MediaKind, direction: MediaDirection, track: LocalTrackIdentity?) {
        self.mid = mid
        self.kind = kind
        self.direction = direction
        self.track = track
    }
}

/// This side's transport parameters for its description.
public struct LocalTransportParameters: Sendable {
    /// ICE credentials.
    public var credentials: ICECredentials
    /// SHA-256 fingerprint of the DTLS certificate.
    public var fingerprint: String
    /// Candidates gathered (all of them: MeetKit does not need the peer to support trickle).
    public var candidates: [ICECandidate]
    /// Whether gathering is complete (a=end-of-candidates).
    public var endOfCandidates: Bool

    /// Parameters from their parts.
    public init(credentials: ICECredentials, fingerprint: String, candidates: [ICECandidate], endOfCandidates: Bool) {
        self.credentials = credentials
        self.fingerprint = fingerprint
        self.candidates = candidates
        self.endOfCandidates = endOfCandidates
    }
}

/// Why a remote description cannot be used. Each case names the media section.
public enum NegotiationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No a=fingerprint at media or session level (RFC 8842 §5).
    case missingFingerprint(mid: String)
    /// Only fingerprints with hash functions MeetKit does not check.
    case unsupportedFingerprint(mid: String, algorithms: [String])
    /// No a=ice-ufrag / a=ice-pwd.
    case missingICECredentials(mid: String)
    /// None of the section's codecs is Opus (audio) or VP8 (video).
    case noCommonCodec(mid: String, offered: [String])
    /// A media section without a=mid (BUNDLE needs them).
    case missingMid(index: Int)
    /// a=setup with a value that does not fit the offer/answer role.
    case invalidSetup(mid: String, value: String)
    /// More media sections than MeetKit accepts in one description.
    case tooManySections(Int)
    /// Nothing usable in the description.
    case noMedia

    public var description: String {
        switch self {
        case .missingFingerprint(let mid): "media section \(mid) has no DTLS fingerprint"
        case .unsupportedFingerprint(let mid, let algs): "media section \(mid) has only \(algs) fingerprints"
        case .missingICECredentials(let mid): "media section \(mid) has no ICE credentials"
        case .noCommonCodec(let mid, let offered): "media section \(mid) offers no supported codec (\(offered))"
        case .missingMid(let index): "media section #\(index) has no mid"
        case .invalidSetup(let mid, let value): "media section \(mid) has a=setup:\(value)"
        case .tooManySections(let n): "\(n) media sections (at most \(SessionNegotiation.maxSections))"
        case .noMedia: "no audio or video section"
        }
    }
}

/// One media section as negotiated.
public struct NegotiatedMedia: Sendable, Hashable {
    /// The mid.
    public var mid: String
    /// Audio or video.
    public var kind: MediaKind
    /// This side's direction after negotiation.
    public var direction: MediaDirection
    /// The codec to send and expect (first common one in the offerer's order).
    public var codec: NegotiatedCodec
    /// Header extension IDs by URI, as the remote description numbers them.
    public var extensions: [String: UInt8]
    /// SSRCs the remote side announced for this section (media first, then RTX).
    public var remoteSSRCs: [UInt32]
    /// RTX SSRC by media SSRC (a=ssrc-group:FID).
    public var remoteRTX: [UInt32: UInt32]
    /// The remote msid (stream, track).
    public var remoteStreamID: String?
    /// The remote msid track.
    public var remoteTrackID: String?
    /// The simulcast layers the peer sends on this section, by RTP stream id, in its
    /// `a=simulcast:send` order (RFC 8853); empty without simulcast.
    public var remoteRIDs: [String] = []
}

/// Everything a remote description says that the transport and media need.
/// The data channel section both sides agreed on (RFC 8841).
public struct NegotiatedApplication: Sendable, Hashable {
    /// The section's mid.
    public var mid: String
    /// The peer's SCTP port (`a=sctp-port`, 5000 when absent).
    public var remotePort: UInt16
    /// The largest message the peer takes (`a=max-message-size`: 65 536 when absent, 0 for
    /// no limit).
    public var remoteMaxMessageSize: Int
}

/// This side's data channel section: its mid, its place among the sections, and the
/// largest message it takes.
public struct LocalApplicationSection: Sendable, Hashable {
    public var mid: String
    /// The section's position in the offer (sections keep their places across offers).
    public var index: Int
    /// `a=max-message-size`.
    public var maxMessageSize: Int
    public init(mid: String, index: Int, maxMessageSize: Int = SessionNegotiation.maxMessageSize) {
        self.mid = mid
        self.index = index
        self.maxMessageSize = maxMessageSize
    }
}

public struct NegotiatedSession: Sendable {
    /// Remote ICE credentials (of the first bundled section).
    public var remoteCredentials: ICECredentials
    /// Whether the remote agent is ICE-lite.
    public var remoteIsLite: Bool
    /// Remote UDP candidates of the bundled sections (component 1, deduplicated, at most
    /// ``SessionNegotiation/maxCandidates``).
    public var remoteCandidates: [ICECandidate]
    /// Whether the remote side signalled end-of-candidates.
    public var remoteEndOfCandidates: Bool
    /// The remote certificate fingerprint (sha-256).
    public var remoteFingerprint: String
    /// This side's DTLS role.
    public var dtlsRole: DTLSConnection.Role
    /// Audio and video sections, in order.
    public var media: [NegotiatedMedia]
    /// Sections that carry nothing in this session, in order, with the reason.
    public var rejected: [RejectedSection] = []
    /// The data channel section, if the description has one MeetKit takes.
    public var application: NegotiatedApplication?
}

/// A media section of a description that carries nothing in this session, and why.
public struct RejectedSection: Sendable, Hashable, CustomStringConvertible {
    /// Why a section carries nothing.
    public enum Reason: Sendable, Hashable {
        /// Its sender set port 0 without `a=bundle-only`: the section is stopped (RFC 8829 §5.2.2, §5.3.1).
        case stopped
        /// Audio or video without Opus (48 kHz) or VP8 (90 kHz); the offered codec names.
        case noCommonCodec(offered: [String])
        /// A kind or protocol MeetKit does not take: data channels (`m=application`) until
        /// SCTP exists, or other media types.
        case unsupported(kind: String, proto: String)
    }

    /// The section's position in the description.
    public var index: Int
    /// Its mid, if it has one.
    public var mid: String?
    /// The m= line's media type ("audio", "video", "application", …).
    public var kind: String
    /// Why.
    public var reason: Reason

    /// A rejected section from its parts.
    public init(index: Int, mid: String?, kind: String, reason: Reason) {
        self.index = index
        self.mid = mid
        self.kind = kind
        self.reason = reason
    }

    public var description: String {
        let name = "\(kind) section \(mid ?? "#\(index)")"
        switch reason {
        case .stopped: return "\(name) is stopped by its sender (port 0)"
        case .noCommonCodec(let offered):
            return "\(name) offers no supported codec (\(offered.joined(separator: ", ")))"
        case .unsupported(_, let proto): return "\(name) (\(proto)) is not supported"
        }
    }
}
