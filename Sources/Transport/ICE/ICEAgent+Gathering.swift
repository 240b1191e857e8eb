import MeetKitNet
import MeetKitSDP

/// Gathering (RFC 8445 §5.1): host candidates on the given sockets, server-reflexive ones
/// from STUN servers, and when gathering is complete.
extension ICEAgent {
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

    mutating func reportGatheringIfDone() {
        if gatheringStarted, gatheringPending == 0, !gatheringReported {
            gatheringReported = true
            events.append(.gatheringComplete)
        }
    }

    mutating func foundation(_ type: String, _ ip: IPAddress, _ server: IPAddress?) -> String {
        let key = "\(type)|\(ip)|\(server.map { "\($0)" } ?? "")"
        if let f = foundations[key] { return f }
        let f = String(foundations.count + 1)
        foundations[key] = f
        return f
    }
}
