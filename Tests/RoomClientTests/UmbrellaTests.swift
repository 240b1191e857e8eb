import MeetKit
import Testing

/// `import MeetKit` alone reaches every layer.
@Suite("The MeetKit umbrella")
struct UmbrellaTests {
    @Test func oneImportReachesEveryLayer() throws {
        let time = MediaTime(value: 960, timescale: 48_000)  // Codec
        let sdp = try SessionDescription(parsing: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")  // Transport
        let request: JSONValue = ["janus": "keepalive"]  // Signaling
        let options = RoomOptions()  // RoomClient
        #expect(time.seconds == 0.02 && sdp.media.isEmpty && request["janus"]?.string == "keepalive")
        #expect(options.autoSubscribe)
    }
}
