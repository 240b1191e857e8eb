import MeetKitNet
import MeetKitSDP

/// Incoming STUN (RFC 8445 §7.2–7.3): answering checks (triggered checks, role conflicts,
/// nomination), reading responses, selecting a pair.
extension ICEAgent {
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

    mutating func handleRequest(
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

    var localKey: [UInt8] { Array(localCredentials.pwd.utf8) }

    mutating func respondError(
        to m: STUNMessage, code: Int, reason: String, from: TransportAddress, to: TransportAddress, key: [UInt8]?
    ) {
        var response = STUNMessage(class: .errorResponse, method: STUNMethod.binding, transactionID: m.transactionID)
        response.errorCode = (code, reason)
        transmits.append(Datagram(from: from, to: to, data: response.encoded(integrityKey: key, fingerprint: true)))
    }

    mutating func handleResponse(
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

    mutating func switchRole(to newRole: ICERole) {
        guard role != newRole else { return }
        role = newRole
        for key in pairs.keys {
            pairs[key]!.priority = pairPriority(local: pairs[key]!.localPriority, remote: pairs[key]!.remotePriority)
        }
        events.append(.roleChanged(newRole))
    }

    mutating func select(_ key: PairKey, now: Duration) {
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

    var hasPendingChecks: Bool {
        !triggered.isEmpty || pairs.values.contains { $0.state == .waiting || $0.state == .inProgress }
    }

    mutating func consentInterval() -> Duration {
        // RFC 7675 §5.1: randomised to 0.8–1.2 × the interval.
        let factor = 0.8 + 0.4 * Double(rng.next() % 1000) / 1000
        return configuration.consentInterval * factor
    }
}
