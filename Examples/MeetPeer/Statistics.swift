import Foundation
import Transport

extension Session {
    /// The STATS object: per track, packets and bytes each way, frames decoded, loss,
    /// jitter, RTT; the setup time and the negotiated security.
    func statistics(
        _ pc: PeerConnection, _ transceivers: [(mid: String, kind: MediaKind, direction: MediaDirection)],
        _ state: Observed, _ data: DataCounters
    ) async -> String {
        var tracks: [[String: Any]] = []
        for t in transceivers {
            guard let s = try? await pc.statistics(mid: t.mid) else { continue }
            var track: [String: Any] = [
                "mid": t.mid, "kind": t.kind.rawValue, "direction": "\(t.direction)",
                "packets_sent": s.packetsSent, "bytes_sent": s.bytesSent, "frames_sent": s.framesSent,
                "packets_received": s.packetsReceived, "bytes_received": s.bytesReceived,
                "frames_received": s.framesReceived, "frames_decoded": s.framesDecoded,
                "packets_lost": s.packetsLost, "jitter_ms": (s.jitter * 1000 * 10).rounded() / 10,
                "decode_errors": s.decodeErrors, "keyframe_requests_sent": s.keyframeRequestsSent,
                "keyframe_requests_received": s.keyframeRequestsReceived,
            ]
            if let rtt = s.roundTrip {
                track["rtt_ms"] =
                    Double(rtt.components.attoseconds / 1_000_000_000_000) / 1000
                    + Double(rtt.components.seconds) * 1000
            }
            tracks.append(track)
        }
        var object: [String: Any] = ["tracks": tracks, "state": state.last.rawValue]
        let rejected = (try? await pc.rejectedSections()) ?? []
        if !rejected.isEmpty {
            object["rejected"] = rejected.map { r -> [String: Any] in
                ["index": r.index, "mid": r.mid ?? "", "kind": r.kind, "reason": r.description]
            }
        }
        if let d = state.connectedAfter {
            object["setup_ms"] = d.seconds * 1000
        }
        if let security = try? await pc.securityParameters() {
            object["srtp_profile"] = "\(security.profile)"
            object["dtls_role"] = "\(security.dtlsRole)"
        }
        if let failure = state.failure { object["failure"] = failure }
        let d = data.snapshot
        if d.channels > 0 {
            object["data"] = [
                "channels": d.channels, "messages_sent": d.messagesSent, "bytes_sent": d.bytesSent,
                "messages_received": d.messagesReceived, "bytes_received": d.bytesReceived,
            ]
        }
        let json = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: json, as: UTF8.self)
    }

    /// Nil when the call worked: connected, no audio or video section refused by either
    /// side, and every direction negotiated carried media. (Data channels are counted in
    /// STATS but judged by whoever reads them: a peer may open a channel and stay silent.)
    func judge(
        _ pc: PeerConnection, _ transceivers: [(mid: String, kind: MediaKind, direction: MediaDirection)],
        _ state: Observed
    ) async -> String? {
        if let failure = state.failure { return "DTLS failed: \(failure)" }
        guard state.connectedAfter != nil else {
            return state.last == .failed ? "ICE failed: no candidate pair works" : "never connected (\(state.last))"
        }
        for r in (try? await pc.rejectedSections()) ?? [] where r.kind == "audio" || r.kind == "video" {
            return "\(r): the call lost that \(r.kind)"
        }
        for t in transceivers {
            guard let s = try? await pc.statistics(mid: t.mid) else { continue }
            let sends = t.direction == .sendrecv || t.direction == .sendonly
            let receives = t.direction == .sendrecv || t.direction == .recvonly
            if sends && s.packetsSent == 0 { return "no media sent on \(t.kind.rawValue) m-line \(t.mid)" }
            if receives && s.framesDecoded == 0 { return "no media received on \(t.kind.rawValue) m-line \(t.mid)" }
        }
        return nil
    }
}
