import Foundation

/// The `RTCIceCandidateInit` JSON that LiveKit's `TrickleRequest.candidateInit` carries
/// (`{"candidate":"candidate:…","sdpMid":"0","sdpMLineIndex":0}`), both ways. An empty
/// `candidate` is the end of candidates.
package enum CandidateInit {
    /// The candidate attribute value (`foundation component transport …`, without
    /// `candidate:`) a trickle carries; nil for the end of candidates and for what does not
    /// parse.
    package static func attributeValue(fromJSON json: String) -> String? {
        guard json.utf8.count <= 4096,
            let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let text = object["candidate"] as? String, !text.isEmpty
        else { return nil }
        let line = text.hasPrefix("a=") ? text.dropFirst(2) : Substring(text)
        return String(line.hasPrefix("candidate:") ? line.dropFirst("candidate:".count) : line)
    }

    /// The JSON for a candidate given as its attribute value (nil: the end of candidates),
    /// in the media section `mid`.
    package static func json(attributeValue: String?, mid: String) -> String {
        let object: [String: Any] = [
            "candidate": attributeValue.map { "candidate:" + $0 } ?? "", "sdpMid": mid, "sdpMLineIndex": 0,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
