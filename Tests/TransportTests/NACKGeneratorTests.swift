import Testing

@testable import Transport

/// Receiver-side NACK decisions: gaps asked for at once, again after the retry interval,
/// forgotten when they arrive or are too old; sequence numbers wrap.
@Suite("NACK generator")
struct NACKGeneratorTests {
    @Test func gapsAreAskedForThenRetriedThenGivenUp() {
        var config = NACKGenerator.Configuration()
        config.retryInterval = .milliseconds(100)
        config.maxRetries = 2
        var nacks = NACKGenerator(configuration: config)
        #expect(nacks.record(sequenceNumber: 65_534, now: .zero).isEmpty)
        #expect(nacks.record(sequenceNumber: 65_535, now: .zero).isEmpty)
        #expect(nacks.record(sequenceNumber: 3, now: .milliseconds(10)) == [0, 1, 2], "across the wrap")
        #expect(nacks.nextDeadline == .milliseconds(110))
        #expect(nacks.poll(now: .milliseconds(50)).isEmpty)
        #expect(nacks.record(sequenceNumber: 1, now: .milliseconds(60)).isEmpty)
        #expect(nacks.recovered == 1)
        #expect(nacks.poll(now: .milliseconds(110)) == [0, 2])
        #expect(nacks.poll(now: .milliseconds(210)) == [0, 2])
        // Two retries done: the next deadline gives them up.
        #expect(nacks.poll(now: .milliseconds(310)).isEmpty)
        #expect(nacks.givenUp == 2 && nacks.missingCount == 0 && nacks.nextDeadline == nil)
        #expect(nacks.requestsSent == 3 + 2 + 2)
        // A late duplicate of an old packet changes nothing.
        #expect(nacks.record(sequenceNumber: 65_000, now: .milliseconds(320)).isEmpty)
    }

    @Test func aHugeGapIsLeftToAKeyframe() {
        var nacks = NACKGenerator()
        _ = nacks.record(sequenceNumber: 100, now: .zero)
        #expect(nacks.record(sequenceNumber: 1_000, now: .zero).isEmpty)
        #expect(nacks.missingCount == 0 && nacks.givenUp == 899)
    }
}
