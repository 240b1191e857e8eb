import Testing

@testable import Transport

@Suite("RTP reception statistics and RTT")
struct RTPStatisticsTests {
    @Test func lossAcrossSequenceWrap() {
        var stats = RTPReceiveStatistics(ssrc: 9, clockRate: 48_000)
        for i in 0..<100 where i % 10 != 3 {
            stats.record(
                sequenceNumber: UInt16(truncatingIfNeeded: 65_500 + i), rtpTimestamp: UInt32(i * 960),
                arrival: .milliseconds(20 * i))
        }
        #expect(stats.packetsExpected == 100 && stats.packetsReceived == 90 && stats.cumulativeLost == 10)
        let block = stats.makeReportBlock(now: .seconds(2))
        #expect(block.cumulativeLost == 10)
        #expect(block.fractionLost == 25, "10 % of 256")
        #expect(block.highestSequence == UInt32(65_500 + 99), "extended across the wrap")
        #expect(block.jitter == 0, "perfectly paced arrivals have no jitter")
        // The next interval without loss reports 0 fraction lost, same cumulative loss.
        for i in 100..<150 {
            stats.record(
                sequenceNumber: UInt16(truncatingIfNeeded: 65_500 + i), rtpTimestamp: UInt32(i * 960),
                arrival: .milliseconds(20 * i))
        }
        let next = stats.makeReportBlock(now: .seconds(3))
        #expect(next.fractionLost == 0 && next.cumulativeLost == 10)
    }

    @Test func jitterConvergesToTheArrivalVariation() {
        var stats = RTPReceiveStatistics(ssrc: 1, clockRate: 48_000)
        for i in 0..<500 {
            // Every other packet arrives 5 ms late: |D| = 5 ms = 240 units each time.
            let late: Duration = i % 2 == 0 ? .zero : .milliseconds(5)
            stats.record(
                sequenceNumber: UInt16(i), rtpTimestamp: UInt32(i * 960), arrival: .milliseconds(20 * i) + late)
        }
        #expect(abs(stats.jitter - 240) < 5, "jitter \(stats.jitter)")
    }

    @Test func duplicatesMakeLossNegative() {
        var stats = RTPReceiveStatistics(ssrc: 1, clockRate: 90_000)
        for seq in [1, 2, 2, 3, 3] as [UInt16] { stats.record(sequenceNumber: seq, rtpTimestamp: 0, arrival: .zero) }
        #expect(stats.cumulativeLost == -2)
        #expect(stats.makeReportBlock(now: .zero).fractionLost == 0)
    }

    /// SR sent at 1.000 s, received at 1.050 s; RR sent at 1.250 s (DLSR 0.2 s), received at
    /// 1.300 s: RTT = 1.300 − 1.000 − 0.200 = 0.1 s.
    @Test func roundTripFromLSRAndDLSR() throws {
        let srNTP = RTCPTime.ntp(.seconds(1))
        var receiver = RTPReceiveStatistics(ssrc: 7, clockRate: 48_000)
        receiver.record(sequenceNumber: 1, rtpTimestamp: 0, arrival: .milliseconds(1040))
        receiver.recordSenderReport(ntpTimestamp: srNTP, arrival: .milliseconds(1050))
        let block = receiver.makeReportBlock(now: .milliseconds(1250))
        #expect(block.lastSenderReport == RTCPTime.middle(srNTP))
        #expect(block.delaySinceLastSenderReport == 13107, "0.2 s in 1/65536 s")
        let rtt = try #require(RTCPTime.roundTrip(block: block, now: .milliseconds(1300)))
        #expect(abs(rtt.seconds - 0.1) < 0.001, "rtt \(rtt)")
        #expect(RTCPTime.roundTrip(block: RTCPReportBlock(ssrc: 7), now: .seconds(5)) == nil)
    }
}

extension RTPStatisticsTests {
    /// NTP timestamps (sender reports' clock) back to durations, fractions included.
    @Test func ntpTimestampsRoundTrip() {
        for d: Duration in [.zero, .milliseconds(1500), .seconds(3600) + .microseconds(123_456), .nanoseconds(999)] {
            let back = RTCPTime.duration(RTCPTime.ntp(d))
            #expect(back - d < .nanoseconds(2) && d - back < .nanoseconds(2), "\(d) came back as \(back)")
        }
    }
}
