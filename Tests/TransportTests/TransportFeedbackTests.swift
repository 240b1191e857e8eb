import Testing

@testable import MeetKitRTP

/// Transport-wide congestion feedback as the server sends it: every arrival reported once,
/// in 250 µs steps from the reference time, losses in the middle reported as such, trailing
/// ones held back, and the packet read back by the RTCP parser.
@Suite("Transport-wide feedback")
struct TransportFeedbackTests {
    @Test func reportsArrivalsAndGapsAndReadsBack() throws {
        var generator = TransportFeedbackGenerator()
        let start = Duration.milliseconds(1000)
        // Sequence numbers wrap; 0 never arrives (a loss in the middle).
        let arrivals: [(UInt16, Duration)] = [
            (65533, start), (65534, start + .microseconds(500)), (65535, start + .milliseconds(5)),
            (1, start + .milliseconds(20)), (2, start + .milliseconds(21)),
        ]
        for (sequence, at) in arrivals { generator.record(sequence: sequence, arrival: at) }
        #expect(generator.nextDeadline == start + .milliseconds(100))
        let first = generator.feedback(senderSSRC: 7, mediaSSRC: 0, now: start + .milliseconds(100))
        let feedback = try #require(first)
        #expect(feedback.baseSequence == 65533)
        #expect(feedback.referenceTime == 1000 / 64)
        // 1000 ms is 15 × 64 ms + 40 ms: the first delta is 40 ms = 160 ticks of 250 µs.
        #expect(feedback.deltas == [160, 2, 18, nil, 60, 4])
        let bytes = RTCPPacket.serializeCompound([.transportCC(feedback)])
        #expect(bytes.count % 4 == 0)
        #expect(try RTCPPacket.parseCompound(bytes) == [.transportCC(feedback)])
        // Nothing new: no feedback; new packets continue after the last one reported.
        let none = generator.feedback(senderSSRC: 7, mediaSSRC: 0, now: start + .milliseconds(200))
        #expect(none == nil)
        generator.record(sequence: 4, arrival: start + .milliseconds(250))
        let second = generator.feedback(senderSSRC: 7, mediaSSRC: 0, now: start + .milliseconds(300))
        let next = try #require(second)
        #expect(next.baseSequence == 3)
        #expect(next.deltas.count == 2 && next.deltas[0] == nil)
        #expect(next.feedbackCount == feedback.feedbackCount &+ 1)
    }
}
