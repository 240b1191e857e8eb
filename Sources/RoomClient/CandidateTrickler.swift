import Synchronization
import Transport

/// Trickle ICE (RFC 8838) towards the server for one connection: the local candidates the
/// server did not get in a description — gathered after it (server-reflexive, relay, a
/// late interface) — and the end of gathering, sent in order, each once.
///
/// Feed it the connection's candidate events with ``gathered(_:)`` and each description
/// given to the server with ``described(_:)``; candidates gathered before the first
/// description wait for it (they usually are in it).
final class CandidateTrickler: Sendable {
    private struct State {
        /// Candidates the server has (described or trickled); nil before a description.
        var known: Set<String>?
        var endKnown = false
        var pending: [ICECandidate?] = []
    }

    private let state = Mutex(State())
    private let queue: AsyncStream<ICECandidate?>.Continuation
    private let sender: Task<Void, Never>

    /// `send` delivers one candidate (nil: gathering complete) to the server.
    init(send: @escaping @Sendable (ICECandidate?) async -> Void) {
        let (stream, continuation) = AsyncStream.makeStream(of: ICECandidate?.self)
        queue = continuation
        sender = Task {
            for await candidate in stream { await send(candidate) }
        }
    }

    /// Takes the connection's candidate events (a local candidate, the end of gathering);
    /// other events are ignored.
    func observe(_ event: PeerConnection.Event) {
        switch event {
        case .transport(.ice(.localCandidate(let c))): gathered(c)
        case .transport(.ice(.gatheringComplete)): gathered(nil)
        default: break
        }
    }

    /// A local candidate the connection gathered; nil when gathering completed.
    func gathered(_ candidate: ICECandidate?) {
        state.withLock { s in
            guard s.known != nil else {
                s.pending.append(candidate)
                return
            }
            forward(candidate, &s)
        }
    }

    /// A description (offer or answer) is being given to the server: its candidates and
    /// end-of-candidates need no trickle.
    func described(_ sdp: SessionDescription) {
        state.withLock { s in
            var known = s.known ?? []
            for m in sdp.media { for c in m.candidates { known.insert(c.attributeValue) } }
            s.known = known
            s.endKnown = s.endKnown || sdp.media.contains { $0.endOfCandidates }
            let pending = s.pending
            s.pending = []
            for candidate in pending { forward(candidate, &s) }
        }
    }

    private func forward(_ candidate: ICECandidate?, _ s: inout State) {
        if let candidate {
            if s.known!.insert(candidate.attributeValue).inserted { queue.yield(candidate) }
        } else if !s.endKnown {
            s.endKnown = true
            queue.yield(nil)
        }
    }

    /// Stops sending.
    func finish() {
        queue.finish()
        sender.cancel()
    }
}
