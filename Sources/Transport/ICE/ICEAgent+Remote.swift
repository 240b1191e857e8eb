import MeetKitNet
import MeetKitSDP

/// The remote side (RFC 8445 §6.1): credentials, candidates and the pairs they form,
/// check scheduling; restart (§9) and close.
extension ICEAgent {
    // MARK: remote side

    /// Sets the peer's credentials (from its SDP). An ICE-lite peer makes this agent
    /// controlling (RFC 8445 §6.1.1).
    public mutating func setRemoteCredentials(_ credentials: ICECredentials, isLite: Bool = false, now: Duration) {
        guard state != .closed else { return }
        remoteCredentials = credentials
        remoteIsLite = isLite
        if isLite, role != .controlling { switchRole(to: .controlling) }
        scheduleChecks(now: now)
    }

    /// Adds a remote candidate (from SDP or trickled). Candidates that are not UDP, not
    /// component 1, or not an IP literal (mDNS names) are ignored.
    public mutating func addRemoteCandidate(_ candidate: ICECandidate, now: Duration) {
        guard state != .closed, candidate.transport == "udp", candidate.component == 1,
            let address = candidate.transportAddress, address.port != 0,
            remoteCandidates.count < Self.maxRemoteCandidates
        else { return }
        lastRemoteCandidateAt = now
        guard !remoteAddresses.contains(address) else { return }
        remoteAddresses.insert(address)
        remoteCandidates.append(candidate)
        for local in locals where local.candidate.kind == .host {
            addPair(base: local.base, remote: candidate, now: now)
        }
        scheduleChecks(now: now)
    }

    /// Sets the role before the first check (JSEP, RFC 8829 §5.2.1/§5.3.1: the offerer
    /// controls). Afterwards only a role conflict (RFC 8445 §7.3.1.1) or an ICE-lite peer
    /// changes it; later calls are ignored.
    public mutating func setRole(_ newRole: ICERole) {
        guard state == .new, !remoteIsLite else { return }
        switchRole(to: newRole)
    }

    /// The peer has sent all its candidates (RFC 8838 §4.4).
    public mutating func setRemoteEndOfCandidates(now: Duration) {
        remoteEnded = true
        evaluate(now: now)
    }

    mutating func addPair(base: TransportAddress, remote: ICECandidate, now: Duration) {
        guard let address = remote.transportAddress, address.ip.isIPv6 == base.ip.isIPv6 else { return }
        let key = PairKey(local: base, remote: address)
        guard pairs[key] == nil, let local = locals.first(where: { $0.base == base && $0.candidate.kind == .host })
        else { return }
        let foundation = "\(local.candidate.foundation):\(remote.foundation)"
        var pair = Pair(
            key: key, localPriority: local.candidate.priority, remotePriority: remote.priority, foundation: foundation)
        pair.priority = pairPriority(local: pair.localPriority, remote: pair.remotePriority)
        // RFC 8445 §6.1.2.6: one Waiting pair per foundation, the rest Frozen.
        let foundationActive = pairs.values.contains { $0.foundation == foundation && $0.state != .frozen }
        pair.state = foundationActive ? .frozen : .waiting
        if pairs.values.contains(where: { $0.foundation == foundation && $0.state == .succeeded }) {
            pair.state = .waiting
        }
        pairs[key] = pair
    }

    /// RFC 8445 §6.1.2.3: 2³² × min(G, D) + 2 × max(G, D) + (G > D ? 1 : 0).
    func pairPriority(local: UInt32, remote: UInt32) -> UInt64 {
        let g = UInt64(role == .controlling ? local : remote)
        let d = UInt64(role == .controlling ? remote : local)
        return (min(g, d) << 32) + 2 * max(g, d) + (g > d ? 1 : 0)
    }

    /// Queues a triggered check and sends it at once: pacing (Ta) spaces ordinary checks,
    /// while triggered checks answer the peer or nominate and should not wait.
    mutating func trigger(_ key: PairKey, first: Bool = false, now: Duration) {
        if let i = triggered.firstIndex(of: key) { triggered.remove(at: i) }
        if first { triggered.insert(key, at: 0) } else { triggered.append(key) }
        pairs[key]?.state = .waiting
        nextCheckAt = now
        if state == .new, remoteCredentials != nil {
            setState(.checking)
            checkingStartedAt = now
        }
    }

    mutating func scheduleChecks(now: Duration) {
        guard remoteCredentials != nil, !pairs.isEmpty, state != .closed, state != .failed else { return }
        if state == .new {
            setState(.checking)
            checkingStartedAt = now
        }
        if nextCheckAt == nil || nextCheckAt! > now + configuration.checkInterval { nextCheckAt = now }
    }

    // MARK: restart and close

    /// ICE restart (RFC 8445 §2.4): new local credentials, remote state forgotten, local host
    /// candidates kept (emitted again). The selected pair stays usable until a new one is
    /// selected. Signal the new credentials in a new offer.
    public mutating func restart(now: Duration) {
        guard state != .closed else { return }
        localCredentials = .random(using: &rng)
        remoteCredentials = nil
        remoteCandidates = []
        remoteAddresses = []
        remoteEnded = false
        pairs = [:]
        triggered = []
        nominating = nil
        firstValidAt = nil
        transactions = transactions.filter { if case .gather = $0.value.purpose { true } else { false } }
        checkingStartedAt = now
        gatheringReported = false
        for local in locals { events.append(.localCandidate(local.candidate)) }
        reportGatheringIfDone()
        if selected == nil { setState(.checking) }
    }

    /// Stops everything: no more transmits, events or deadlines.
    public mutating func close() {
        setState(.closed)
        transactions = [:]
        triggered = []
        transmits = OutputQueue()
        selected = nil
    }
}
