import MeetKitNet
import MeetKitSDP

/// Timers (RFC 8445 §6.1.4, RFC 7675): retransmissions, paced checks, nomination, consent
/// freshness, failure.
extension ICEAgent {
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

    mutating func sendNextCheck(now: Duration) {
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

    mutating func sendConsentCheck(now: Duration) {
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
    mutating func evaluate(now: Duration) {
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
        // or after the nomination delay (RFC 8445 §8.1.1, regular nomination) — also after a
        // restart, when the selected pair is not nominated in the new generation even if its
        // addresses are the best ones again (the peer, maybe failed meanwhile, waits for it).
        if role == .controlling, nominating == nil, remoteCredentials != nil {
            let valid = pairs.values.filter { $0.state == .succeeded }
            let current = selected.flatMap { pairs[$0] }
            if let best = valid.max(by: { $0.priority < $1.priority }),
                current.map({ !$0.nominated && $0.priority <= best.priority }) ?? true
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
