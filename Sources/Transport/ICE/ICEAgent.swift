/// A full ICE agent (RFC 8445) for one data stream with one component (WebRTC's BUNDLE and
/// rtcp-mux), with trickle (RFC 8838) and consent freshness (RFC 7675). Sans-IO: it never
/// touches a socket or a clock. Feed it datagrams, remote candidates and timeouts with the
/// current time; take the datagrams it wants sent and the events it reports.
///
/// ```swift
/// var agent = ICEAgent(configuration: config)
/// agent.startGathering(localAddresses: [TransportAddress("192.0.2.10:50000")!], now: now)
/// agent.setRemoteCredentials(remote, now: now)
/// agent.addRemoteCandidate(candidate, now: now)
/// // Event loop:
/// for t in agent.drainTransmits() { socket(t.from).send(t.data, to: t.to) }
/// for e in agent.drainEvents() { handle(e) }
/// // on a STUN datagram:   agent.handleStun(bytes, from: source, to: localBase, now: now)
/// // at agent.nextDeadline: agent.handleTimeout(now: now)
/// ```
public struct ICEAgent: Sendable {
    /// Most remote candidates an agent keeps; later ones are dropped (a hostile peer can
    /// send thousands, each one a check to run).
    public static let maxRemoteCandidates = 256

    /// Counters of what was dropped and why.
    public struct Statistics: Sendable, Equatable {
        /// STUN datagrams that did not parse.
        public var malformed = 0
        /// Messages with a missing or wrong MESSAGE-INTEGRITY, or a bad USERNAME.
        public var badIntegrity = 0
        /// Messages with a missing or wrong FINGERPRINT.
        public var badFingerprint = 0
        /// Responses matching no outstanding transaction.
        public var unmatchedResponses = 0
        /// Connectivity checks sent (retransmissions included).
        public var checksSent = 0
        /// Connectivity checks answered.
        public var checksReceived = 0
    }

    private enum PairState: Sendable, Equatable { case frozen, waiting, inProgress, succeeded, failed }

    private struct PairKey: Sendable, Hashable {
        var local: TransportAddress
        var remote: TransportAddress
    }

    private struct Pair: Sendable {
        var key: PairKey
        var localPriority: UInt32
        var remotePriority: UInt32
        var foundation: String
        var state: PairState = .frozen
        var nominated = false
        var nominateOnSuccess = false
        var priority: UInt64 = 0
    }

    private struct Local: Sendable {
        var candidate: ICECandidate
        var base: TransportAddress
        var localPreference: UInt32
    }

    private enum Purpose: Sendable {
        case check(PairKey, useCandidate: Bool, controlling: Bool)
        case gather(server: TransportAddress, base: TransportAddress)
        case consent(PairKey)
    }

    private struct Outstanding: Sendable {
        var transaction: STUNClientTransaction
        var purpose: Purpose
        var from: TransportAddress
        var to: TransportAddress
    }

    /// The settings.
    public let configuration: ICEConfiguration
    /// The current role.
    public private(set) var role: ICERole
    /// This agent's credentials (changed by ``restart(now:)``).
    public private(set) var localCredentials: ICECredentials
    /// The peer's credentials, once known.
    public private(set) var remoteCredentials: ICECredentials?
    /// Whether the peer is an ICE-lite agent.
    public private(set) var remoteIsLite = false
    /// The connection state.
    public private(set) var state: ICEConnectionState = .new
    /// Drop counters.
    public private(set) var statistics = Statistics()
    /// Whether gathering has completed (host candidates, and every STUN server answered or
    /// gave up); an ICE restart gathers again.
    public var gatheringComplete: Bool { gatheringReported }

    /// Local candidates gathered so far.
    public var localCandidates: [ICECandidate] { locals.map(\.candidate) }
    /// Remote candidates known so far (peer-reflexive ones included).
    public private(set) var remoteCandidates: [ICECandidate] = []

    private var rng: ICERandom
    private var tieBreaker: UInt64
    private var locals: [Local] = []
    private var remoteAddresses: Set<TransportAddress> = []
    private var remoteEnded = false
    private var lastRemoteCandidateAt: Duration = .zero
    private var pairs: [PairKey: Pair] = [:]
    private var triggered: [PairKey] = []
    private var selected: PairKey?
    private var nominating: PairKey?
    private var firstValidAt: Duration?
    private var transactions: [STUNTransactionID: Outstanding] = [:]
    private var gatheringPending = 0
    private var gatheringStarted = false
    private var gatheringReported = false
    private var nextCheckAt: Duration?
    private var checkingStartedAt: Duration?
    private var lastReceived: Duration = .zero
    private var lastConsent: Duration = .zero
    private var nextConsentAt: Duration?
    private var transmits: [Datagram] = []
    private var events: [ICEEvent] = []
    private var prflxCounter = 0

    /// Creates an agent in state `new`.
    public init(configuration: ICEConfiguration = .init()) {
        self.configuration = configuration
        var rng = ICERandom(seed: configuration.seed ?? UInt64.random(in: 0...UInt64.max))
        role = configuration.role
        localCredentials = configuration.credentials ?? .random(using: &rng)
        tieBreaker = rng.next()
        self.rng = rng
    }

    // MARK: outputs

    /// Datagrams to send now, oldest first.
    public mutating func drainTransmits() -> [Datagram] {
        defer { transmits.removeAll(keepingCapacity: true) }
        return transmits
    }

    /// Events since the last call, oldest first.
    public mutating func drainEvents() -> [ICEEvent] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    /// The pair application data uses: send from `local` (a socket's address) to `remote`.
    public var selectedPair: (local: TransportAddress, remote: TransportAddress)? {
        selected.map { ($0.local, $0.remote) }
    }

    /// When ``handleTimeout(now:)`` must next be called, or nil when nothing is pending.
    public var nextDeadline: Duration? {
        guard state != .closed else { return nil }
        var deadline: Duration? = nil
        func consider(_ t: Duration?) {
            if let t, deadline == nil || t < deadline! { deadline = t }
        }
        for o in transactions.values { consider(o.transaction.nextDeadline) }
        if hasCheckWork { consider(nextCheckAt) }
        if selected != nil, state != .failed {
            consider(nextConsentAt)
            if state != .disconnected { consider(lastReceived + configuration.disconnectedTimeout) }
            consider(lastConsent + configuration.consentTimeout)
        } else if let start = checkingStartedAt, state == .checking {
            // Only deadlines that will change something when they pass: a deadline left in
            // the past would make a driver spin.
            consider(start + configuration.connectTimeout)
            if !remoteEnded, allPairsFailed { consider(lastRemoteCandidateAt + configuration.remoteCandidateGrace) }
            if let first = firstValidAt, role == .controlling, nominating == nil {
                consider(first + configuration.nominationDelay)
            }
        }
        return deadline
    }

    private var allPairsFailed: Bool { !pairs.isEmpty && pairs.values.allSatisfy { $0.state == .failed } }

    private var hasCheckWork: Bool {
        remoteCredentials != nil
            && (!triggered.isEmpty || pairs.values.contains { $0.state == .waiting || $0.state == .frozen })
    }

    private mutating func setState(_ new: ICEConnectionState) {
        guard new != state, state != .closed else { return }
        state = new
        events.append(.stateChanged(new))
    }

    // MARK: gathering

    /// Adds a host candidate for each local address (each is a socket's bound address) and
    /// starts server-reflexive gathering from the configured STUN servers. Emits
    /// `localCandidate` events, then `gatheringComplete`.
    public mutating func startGathering(localAddresses: [TransportAddress], now: Duration) {
        guard state != .closed else { return }
        gatheringStarted = true
        for base in localAddresses where !locals.contains(where: { $0.base == base }) {
            let preference = UInt32(max(0, 65535 - locals.count))
            let candidate = ICECandidate(
                foundation: foundation("host", base.ip, nil),
                priority: ICECandidate.priority(kind: .host, localPreference: preference),
                address: base.ip.description, port: base.port, kind: .host)
            locals.append(Local(candidate: candidate, base: base, localPreference: preference))
            events.append(.localCandidate(candidate))
            for server in configuration.stunServers where server.ip.isIPv6 == base.ip.isIPv6 {
                var request = STUNMessage(
                    class: .request, method: STUNMethod.binding, transactionID: .random(using: &rng))
                request.software = configuration.software
                let bytes = request.encoded(fingerprint: true)
                transactions[request.transactionID] = Outstanding(
                    transaction: STUNClientTransaction(
                        request: bytes, id: request.transactionID, policy: configuration.gatheringRetransmission,
                        now: now),
                    purpose: .gather(server: server, base: base), from: base, to: server)
                transmits.append(Datagram(from: base, to: server, data: bytes))
                gatheringPending += 1
            }
            for remote in remoteCandidates { addPair(base: base, remote: remote, now: now) }
        }
        reportGatheringIfDone()
        scheduleChecks(now: now)
    }

    private mutating func reportGatheringIfDone() {
        if gatheringStarted, gatheringPending == 0, !gatheringReported {
            gatheringReported = true
            events.append(.gatheringComplete)
        }
    }

    private var foundations: [String: String] = [:]
    private mutating func foundation(_ type: String, _ ip: IPAddress, _ server: IPAddress?) -> String {
        let key = "\(type)|\(ip)|\(server.map { "\($0)" } ?? "")"
        if let f = foundations[key] { return f }
        let f = String(foundations.count + 1)
        foundations[key] = f
        return f
    }

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

    private mutating func addPair(base: TransportAddress, remote: ICECandidate, now: Duration) {
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
    private func pairPriority(local: UInt32, remote: UInt32) -> UInt64 {
        let g = UInt64(role == .controlling ? local : remote)
        let d = UInt64(role == .controlling ? remote : local)
        return (min(g, d) << 32) + 2 * max(g, d) + (g > d ? 1 : 0)
    }

    /// Queues a triggered check and sends it at once: pacing (Ta) spaces ordinary checks,
    /// while triggered checks answer the peer or nominate and should not wait.
    private mutating func trigger(_ key: PairKey, first: Bool = false, now: Duration) {
        if let i = triggered.firstIndex(of: key) { triggered.remove(at: i) }
        if first { triggered.insert(key, at: 0) } else { triggered.append(key) }
        pairs[key]?.state = .waiting
        nextCheckAt = now
        if state == .new, remoteCredentials != nil {
            setState(.checking)
            checkingStartedAt = now
        }
    }

    private mutating func scheduleChecks(now: Duration) {
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
        transmits = []
        selected = nil
    }

    // MARK: incoming

    /// Handles a datagram that RFC 7983 demultiplexing identified as STUN, received on the
    /// socket bound to `local` from `source`. Malformed or unauthenticated messages are
    /// dropped and counted. Returns false when the bytes are not STUN at all.
    @discardableResult
    public mutating func handleStun(
        _ data: [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) -> Bool {
        guard state != .closed else { return false }
        let message: STUNMessage
        do {
            message = try STUNMessage(parsing: data)
        } catch {
            statistics.malformed += 1
            return false
        }
        if message.hasFingerprint, !STUNMessage.checkFingerprint(data) {
            statistics.badFingerprint += 1
            return true
        }
        guard message.method == STUNMethod.binding else { return true }
        switch message.messageClass {
        case .request: handleRequest(message, data: data, from: source, to: local, now: now)
        case .successResponse, .errorResponse: handleResponse(message, data: data, from: source, to: local, now: now)
        case .indication:
            if let selected, selected.remote == source, selected.local == local { lastReceived = now }
        }
        evaluate(now: now)
        return true
    }

    /// Notes application data (DTLS, RTP) received from `source` on `local`, which keeps
    /// the selected pair from being seen as disconnected.
    public mutating func noteReceived(from source: TransportAddress, to local: TransportAddress, now: Duration) {
        if let selected, selected.remote == source, selected.local == local {
            lastReceived = now
            if state == .disconnected { setState(hasPendingChecks ? .connected : .completed) }
        }
    }

    private mutating func handleRequest(
        _ m: STUNMessage, data: [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) {
        // RFC 8445 §7.3 with RFC 8489 §9.1.3: FINGERPRINT, USERNAME and MESSAGE-INTEGRITY required.
        guard m.hasFingerprint, m.hasIntegrity, let username = m.username else {
            statistics.badIntegrity += 1
            respondError(to: m, code: 400, reason: "Bad Request", from: local, to: source, key: nil)
            return
        }
        guard username.hasPrefix(localCredentials.ufrag + ":"),
            STUNMessage.checkIntegrity(data, key: Array(localCredentials.pwd.utf8))
        else {
            statistics.badIntegrity += 1
            respondError(to: m, code: 401, reason: "Unauthorized", from: local, to: source, key: nil)
            return
        }
        guard locals.contains(where: { $0.base == local }) else { return }
        statistics.checksReceived += 1
        // Role conflict (RFC 8445 §7.3.1.1).
        if role == .controlling, let theirs = m.iceControlling {
            if tieBreaker >= theirs {
                respondError(to: m, code: 487, reason: "Role Conflict", from: local, to: source, key: localKey)
                return
            }
            switchRole(to: .controlled)
        } else if role == .controlled, let theirs = m.iceControlled {
            if tieBreaker >= theirs {
                switchRole(to: .controlling)
            } else {
                respondError(to: m, code: 487, reason: "Role Conflict", from: local, to: source, key: localKey)
                return
            }
        }
        var response = STUNMessage(class: .successResponse, method: STUNMethod.binding, transactionID: m.transactionID)
        response.xorMappedAddress = source
        transmits.append(
            Datagram(from: local, to: source, data: response.encoded(integrityKey: localKey, fingerprint: true)))

        // Peer-reflexive remote candidate (RFC 8445 §7.3.1.3).
        if !remoteAddresses.contains(source) {
            prflxCounter += 1
            let prflx = ICECandidate(
                foundation: "prflx\(prflxCounter)", priority: m.priority ?? ICECandidate.priority(kind: .peerReflexive),
                address: source.ip.description, port: source.port, kind: .peerReflexive)
            remoteAddresses.insert(source)
            remoteCandidates.append(prflx)
            addPair(base: local, remote: prflx, now: now)
        }
        let key = PairKey(local: local, remote: source)
        if let selected, selected == key { lastReceived = now }
        guard var pair = pairs[key] else { return }
        // Triggered check (RFC 8445 §7.3.1.4).
        switch pair.state {
        case .succeeded: break
        case .inProgress: break
        case .frozen, .waiting, .failed:
            pairs[key] = pair
            trigger(key, now: now)
            pair = pairs[key]!
        }
        // Nomination by the controlling peer (RFC 8445 §7.3.1.5).
        if role == .controlled, m.useCandidate {
            if pair.state == .succeeded {
                pair.nominated = true
                pairs[key] = pair
                select(key, now: now)
                return
            }
            pair.nominateOnSuccess = true
        }
        pairs[key] = pair
        scheduleChecks(now: now)
    }

    private var localKey: [UInt8] { Array(localCredentials.pwd.utf8) }

    private mutating func respondError(
        to m: STUNMessage, code: Int, reason: String, from: TransportAddress, to: TransportAddress, key: [UInt8]?
    ) {
        var response = STUNMessage(class: .errorResponse, method: STUNMethod.binding, transactionID: m.transactionID)
        response.errorCode = (code, reason)
        transmits.append(Datagram(from: from, to: to, data: response.encoded(integrityKey: key, fingerprint: true)))
    }

    private mutating func handleResponse(
        _ m: STUNMessage, data: [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) {
        guard let outstanding = transactions[m.transactionID] else {
            statistics.unmatchedResponses += 1
            return
        }
        switch outstanding.purpose {
        case .gather(let server, let base):
            guard source == server, local == base else { return }
            transactions[m.transactionID] = nil
            gatheringPending -= 1
            if m.messageClass == .successResponse, let mapped = m.xorMappedAddress ?? m.mappedAddress,
                let host = locals.first(where: { $0.base == base })
            {
                // A server-reflexive address equal to its base is redundant (RFC 8445 §5.1.3).
                if mapped != base, !locals.contains(where: { $0.candidate.transportAddress == mapped }) {
                    let candidate = ICECandidate(
                        foundation: foundation("srflx", base.ip, server.ip),
                        priority: ICECandidate.priority(kind: .serverReflexive, localPreference: host.localPreference),
                        address: mapped.ip.description, port: mapped.port, kind: .serverReflexive,
                        relatedAddress: base.ip.description, relatedPort: base.port)
                    locals.append(Local(candidate: candidate, base: base, localPreference: host.localPreference))
                    events.append(.localCandidate(candidate))
                }
            }
            reportGatheringIfDone()
        case .check(let key, let useCandidate, let sentControlling):
            guard let remote = remoteCredentials, STUNMessage.checkIntegrity(data, key: Array(remote.pwd.utf8)) else {
                statistics.badIntegrity += 1
                return
            }
            transactions[m.transactionID] = nil
            guard var pair = pairs[key] else { return }
            // Non-symmetric paths fail the check (RFC 8445 §7.2.5.2.1).
            guard source == key.remote, local == key.local else {
                pair.state = .failed
                pairs[key] = pair
                return
            }
            if m.messageClass == .errorResponse {
                if m.errorCode?.code == 487 {
                    // Role conflict (RFC 8445 §7.2.5.1): take the other role and check again.
                    switchRole(to: sentControlling ? .controlled : .controlling)
                    pairs[key] = pair
                    trigger(key, now: now)
                } else {
                    pair.state = .failed
                    pairs[key] = pair
                    if nominating == key { nominating = nil }
                }
                return
            }
            pair.state = .succeeded
            if firstValidAt == nil { firstValidAt = now }
            if useCandidate || (role == .controlled && pair.nominateOnSuccess) { pair.nominated = true }
            pairs[key] = pair
            // Unfreeze the pairs of the same foundation (RFC 8445 §7.2.5.3.3).
            for (k, p) in pairs where p.foundation == pair.foundation && p.state == .frozen {
                pairs[k]!.state = .waiting
            }
            if selected == key { lastReceived = now }
            if pair.nominated { select(key, now: now) }
        case .consent(let key):
            guard let remote = remoteCredentials, STUNMessage.checkIntegrity(data, key: Array(remote.pwd.utf8)) else {
                statistics.badIntegrity += 1
                return
            }
            transactions[m.transactionID] = nil
            if m.messageClass == .successResponse, source == key.remote, local == key.local {
                lastConsent = now
                lastReceived = now
                if state == .disconnected { setState(hasPendingChecks ? .connected : .completed) }
            }
        }
    }

    private mutating func switchRole(to newRole: ICERole) {
        guard role != newRole else { return }
        role = newRole
        for key in pairs.keys {
            pairs[key]!.priority = pairPriority(local: pairs[key]!.localPriority, remote: pairs[key]!.remotePriority)
        }
        events.append(.roleChanged(newRole))
    }

    private mutating func select(_ key: PairKey, now: Duration) {
        if let current = selected, let a = pairs[current], let b = pairs[key], a.nominated, a.priority >= b.priority,
            current != key
        {
            return
        }
        let changed = selected != key
        selected = key
        nominating = nil
        if changed {
            events.append(.selectedPairChanged(local: key.local, remote: key.remote))
            lastReceived = now
            lastConsent = now
            nextConsentAt = now + consentInterval()
        }
        // Always report connected before completed, as applications wait for the former.
        if state != .completed { setState(.connected) }
        if !hasPendingChecks { setState(.completed) }
    }

    private var hasPendingChecks: Bool {
        !triggered.isEmpty || pairs.values.contains { $0.state == .waiting || $0.state == .inProgress }
    }

    private mutating func consentInterval() -> Duration {
        // RFC 7675 §5.1: randomised to 0.8–1.2 × the interval.
        let factor = 0.8 + 0.4 * Double(rng.next() % 1000) / 1000
        return configuration.consentInterval * factor
    }

    // MARK: timers

    /// Advances retransmissions, pacing, nomination, consent and failure detection to `now`.
    public mutating func handleTimeout(now: Duration) {
        guard state != .closed else { return }
        for id in Array(transactions.keys) {
            guard var o = transactions[id] else { continue }
            switch o.transaction.handleTimeout(now: now) {
            case .retransmit(let bytes)?:
                transactions[id] = o
                transmits.append(Datagram(from: o.from, to: o.to, data: bytes))
                if case .check = o.purpose { statistics.checksSent += 1 }
            case .failed?:
                transactions[id] = nil
                switch o.purpose {
                case .gather:
                    gatheringPending -= 1
                    reportGatheringIfDone()
                case .check(let key, _, _):
                    if pairs[key]?.state == .inProgress { pairs[key]!.state = .failed }
                    if nominating == key { nominating = nil }
                case .consent: break
                }
            case nil:
                break
            }
        }
        if let at = nextCheckAt, now >= at, hasCheckWork {
            sendNextCheck(now: now)
            nextCheckAt = now + configuration.checkInterval
        }
        if selected != nil, let at = nextConsentAt, now >= at, state != .failed {
            sendConsentCheck(now: now)
            nextConsentAt = now + consentInterval()
        }
        evaluate(now: now)
    }

    private mutating func sendNextCheck(now: Duration) {
        var key: PairKey?
        if !triggered.isEmpty {
            key = triggered.removeFirst()
        } else if let best = pairs.values.filter({ $0.state == .waiting }).max(by: { $0.priority < $1.priority }) {
            key = best.key
        } else if let frozen = pairs.values.filter({ $0.state == .frozen }).max(by: { $0.priority < $1.priority }) {
            key = frozen.key
        }
        guard let key, var pair = pairs[key], let remote = remoteCredentials else { return }
        let nominate = role == .controlling && (nominating == key || configuration.aggressiveNomination)
        pair.state = .inProgress
        pairs[key] = pair
        var request = STUNMessage(class: .request, method: STUNMethod.binding, transactionID: .random(using: &rng))
        request.username = "\(remote.ufrag):\(localCredentials.ufrag)"
        let local = locals.first { $0.base == key.local }
        request.priority = ICECandidate.priority(kind: .peerReflexive, localPreference: local?.localPreference ?? 65535)
        if role == .controlling { request.iceControlling = tieBreaker } else { request.iceControlled = tieBreaker }
        request.useCandidate = nominate
        request.software = configuration.software
        let bytes = request.encoded(integrityKey: Array(remote.pwd.utf8), fingerprint: true)
        transactions[request.transactionID] = Outstanding(
            transaction: STUNClientTransaction(
                request: bytes, id: request.transactionID, policy: configuration.checkRetransmission, now: now),
            purpose: .check(key, useCandidate: nominate, controlling: role == .controlling), from: key.local,
            to: key.remote)
        transmits.append(Datagram(from: key.local, to: key.remote, data: bytes))
        statistics.checksSent += 1
    }

    private mutating func sendConsentCheck(now: Duration) {
        guard let key = selected, let remote = remoteCredentials else { return }
        var request = STUNMessage(class: .request, method: STUNMethod.binding, transactionID: .random(using: &rng))
        request.username = "\(remote.ufrag):\(localCredentials.ufrag)"
        request.priority = ICECandidate.priority(kind: .peerReflexive)
        if role == .controlling { request.iceControlling = tieBreaker } else { request.iceControlled = tieBreaker }
        let bytes = request.encoded(integrityKey: Array(remote.pwd.utf8), fingerprint: true)
        transactions[request.transactionID] = Outstanding(
            transaction: STUNClientTransaction(
                request: bytes, id: request.transactionID, policy: configuration.checkRetransmission, now: now),
            purpose: .consent(key), from: key.local, to: key.remote)
        transmits.append(Datagram(from: key.local, to: key.remote, data: bytes))
    }

    /// Nomination, completion, disconnection and failure decisions.
    private mutating func evaluate(now: Duration) {
        guard state != .closed, state != .failed else { return }
        if selected != nil {
            if now - lastConsent >= configuration.consentTimeout {
                // Consent expired (RFC 7675 §5.1): stop using the pair.
                selected = nil
                setState(.failed)
                return
            }
            if now - lastReceived >= configuration.disconnectedTimeout {
                setState(.disconnected)
            } else if state == .connected, !hasPendingChecks {
                setState(.completed)
            }
        }
        // Controlling: nominate the best valid pair once no better pair can still succeed,
        // or after the nomination delay (RFC 8445 §8.1.1, regular nomination).
        if role == .controlling, nominating == nil, remoteCredentials != nil {
            let valid = pairs.values.filter { $0.state == .succeeded }
            if let best = valid.max(by: { $0.priority < $1.priority }),
                selected == nil
                    || (pairs[selected!]?.priority ?? 0) < best.priority && !(pairs[selected!]?.nominated ?? false)
            {
                let betterPending = pairs.values.contains {
                    $0.priority > best.priority
                        && ($0.state == .waiting || $0.state == .inProgress || $0.state == .frozen)
                }
                if !betterPending || now - (firstValidAt ?? now) >= configuration.nominationDelay {
                    nominating = best.key
                    trigger(best.key, first: true, now: now)
                }
            }
        }
        // Failure: nothing selected and nothing left to try.
        if selected == nil, state == .checking, let start = checkingStartedAt {
            let exhausted = allPairsFailed && triggered.isEmpty && nominating == nil
            let noMoreCandidates = remoteEnded || now - lastRemoteCandidateAt >= configuration.remoteCandidateGrace
            if (exhausted && noMoreCandidates) || now - start >= configuration.connectTimeout {
                setState(.failed)
            }
        }
    }
}

/// SplitMix64: the agent's own deterministic random numbers.
struct ICERandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
