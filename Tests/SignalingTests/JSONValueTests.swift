import Foundation
import MeetKitTestSupport
import Testing

@testable import Signaling

/// The JSON reader Janus's messages go through: exact values, round trips, `Codable`, and
/// hostile text (malformed, too deep, too long) as a typed error — never a trap or a hang.
@Suite("JSON values")
struct JSONValueTests {
    @Test func parsesWhatJanusSends() throws {
        let text = """
            {"janus": "event", "sender": 4503599627370495, "plugindata": {"plugin": "janus.plugin.videoroom",
             "data": {"videoroom": "joined", "id": 9007199254740993, "publishers": [], "ratio": 0.5,
             "display": "Zo\\u00e9 \\ud83c\\udfa4", "ok": true, "none": null}}}
            """
        let m = try JSONValue(parsing: text)
        #expect(m["janus"]?.string == "event")
        #expect(m["sender"]?.int64 == 4_503_599_627_370_495)
        let data = try #require(m["plugindata"]?["data"])
        #expect(data["id"]?.int64 == 9_007_199_254_740_993, "64-bit ids survive (beyond a double's 53 bits)")
        #expect(data["publishers"]?.array?.isEmpty == true)
        #expect(data["ratio"]?.double == 0.5 && data["ok"]?.bool == true && data["none"] == .null)
        #expect(data["display"]?.string == "Zoé 🎤")
        #expect(try JSONValue(parsing: m.serialized) == m, "serialized text parses back to the same value")
        let coded = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(m))
        #expect(coded == m, "and through Codable")
        let built: JSONValue = ["request": "join", "room": 1234, "streams": [["feed": 1, "mid": "0"]]]
        #expect(built.serialized == #"{"request":"join","room":1234,"streams":[{"feed":1,"mid":"0"}]}"#)
    }

    @Test func hostileTextIsATypedError() throws {
        let hostile: [String] = [
            "", "{", "}", "[1,]", #"{"a" 1}"#, #"{"a":}"#, "tru", "nul", #""unterminated"#, #""bad \x escape""#,
            #""\u12""#, "01x", "-", "1e", "[1] 2", String(repeating: "[", count: 100_000),
            String(repeating: #"{"a":"#, count: 1000) + "1" + String(repeating: "}", count: 1000),
            "\"control \u{01} char\"",
        ]
        for text in hostile {
            #expect(throws: JSONValue.ParseError.self, "\(text.prefix(40))") { try JSONValue(parsing: text) }
        }
        // Past the size limit, refused before decoding.
        let huge = "[" + String(repeating: "1,", count: JSONValue.maxTextBytes / 2) + "1]"
        #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: huge) }
        var rng = SplitMix64(seed: 5)
        for _ in 0..<2000 {
            let bytes = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? JSONValue(parsing: String(decoding: bytes, as: UTF8.self))  // must return, not trap
        }
    }
}
