/// Stream resets (RFC 6525) as data channels use them: closing a channel resets its
/// outgoing stream; the peer resets the matching incoming stream once every earlier TSN has
/// arrived, and answers. One request is outstanding at a time; others wait.
struct SCTPStreamResets {
    /// The next request's sequence number (starts at the initial TSN, §5.1.1).
    var nextRequestSequence: UInt32 = 0
    /// Streams to reset in the next request.
    var pending: [UInt16] = []
    /// The request in flight.
    var outstanding: (sequence: UInt32, streams: [UInt16], lastTSN: UInt32)?
    /// Streams asked to reset and not yet done: nothing new is sent on them.
    var closing = Set<UInt16>()
    /// When the outstanding request is sent again.
    var deadline: Duration?
    /// The outstanding request must go out (again).
    var retransmit = false
    /// The peer's next request sequence number.
    var expectedPeerRequest: UInt32 = 0
    /// The answer to the peer's last request (sent again if the request comes again).
    var lastResponse: (sequence: UInt32, result: SCTPReconfigResult)?
    /// A peer request waiting for TSNs still missing.
    var deferred: (sequence: UInt32, lastTSN: UInt32, streams: [UInt16])?

    init(localInitialTSN: UInt32 = 0) { nextRequestSequence = localInitialTSN }
}
