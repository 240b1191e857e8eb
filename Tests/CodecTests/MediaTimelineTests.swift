import Testing

@testable import Codec

/// The recording timeline's placement rules on synthetic arrivals: 20 ms blocks whose
/// media time and arrival are chosen by the test.
@Suite("Media timeline")
struct MediaTimelineTests {
    static func block(_ n: Int) -> (start: MediaTime, duration: MediaTime) {
        (MediaTime(value: Int64(n) * 960, timescale: 48_000), MediaTime(value: 960, timescale: 48_000))
    }

    /// Places blocks 0..<count arriving at `arrival(n)`; returns each block's position
    /// (settling blocks placed once the stream is anchored).
    static func run(_ count: Int, timeline: inout MediaTimeline, arrival: (Int) -> Duration) -> [Duration] {
        var positions: [Duration?] = Array(repeating: nil, count: count)
        var pending: [Int] = []
        for n in 0..<count {
            let b = block(n)
            switch timeline.place("s", start: b.start, duration: b.duration, arrival: arrival(n)) {
            case .settling: pending.append(n)
            case .at(let p):
                for m in pending { positions[m] = timeline.position(of: "s", at: block(m).start) }
                pending = []
                positions[n] = p
            }
        }
        return positions.map { $0 ?? .zero }
    }

    /// A first packet 200 ms late does not shift the stream; a 0.6 s stall then a burst
    /// moves nothing: every block lies at its media time plus the path's 30 ms.
    @Test func lateFirstPacketAndStallMoveNothing() {
        var timeline = MediaTimeline()
        let positions = Self.run(500, timeline: &timeline) { n in
            let sent = Duration.milliseconds(1000 + 20 * (n + 1))
            if n == 0 { return sent + .milliseconds(230) }
            if sent >= .seconds(5), sent < .milliseconds(5600) { return .milliseconds(5630) }  // held, then a burst
            return sent + .milliseconds(30)
        }
        for (n, p) in positions.enumerated() {
            #expect(p == .milliseconds(1030 + 20 * n), "block \(n) at \(p)")
        }
        #expect(timeline.statistics == .init())
    }

    /// A sender clock 0.2 % slow, then 0.2 % fast (0.6 s over five minutes), with 0–40 ms of
    /// jitter: the offset follows the smallest delay, so a block never lies more than the
    /// tolerance (20 ms, plus what drifts within the 3 s window) from where it belongs, however long the call.
    @Test(arguments: [0.998, 1.002])
    func driftIsAbsorbed(rate: Double) {
        var timeline = MediaTimeline()
        var rng = SystemRandomNumberGenerator()
        let jitter = (0..<15_000).map { _ in Int.random(in: 0...40, using: &rng) }
        var arrivals: [Duration] = []
        let positions = Self.run(15_000, timeline: &timeline) { n in  // five minutes
            let spoken = Double(n + 1) * 0.02 / rate
            let a = Duration.milliseconds(Int64(spoken * 1000) + 30 + Int64(jitter[n]))
            arrivals.append(a)
            return a
        }
        var worst = Duration.zero
        for n in 1_000..<15_000 {
            // Where it arrived without its jitter, less its length: the 30 ms path is in every
            // arrival, and no recorder can tell it from the sender's clock.
            let expected = arrivals[n] - .milliseconds(20 + jitter[n])
            let error = positions[n] - expected
            worst = max(worst, error < .zero ? .zero - error : error)
        }
        #expect(worst <= .milliseconds(30), "worst error \(worst) over five minutes at rate \(rate)")
        #expect(timeline.statistics.driftCorrections >= 20, "0.6 s of drift in 20 ms steps")
    }

    /// A media time that jumps (a replaced sender restarting at zero) starts a new anchor.
    @Test func aJumpOfMediaTimeReanchors() {
        var timeline = MediaTimeline()
        _ = Self.run(150, timeline: &timeline) { n in .milliseconds(20 * (n + 1)) }
        #expect(timeline.position(of: "s", at: .zero) == .zero)
        // Media time restarts at zero ten seconds later.
        let b = Self.block(0)
        #expect(
            timeline.place("s", start: b.start, duration: b.duration, arrival: .seconds(10)) == .at(.milliseconds(9980))
        )
        #expect(timeline.statistics.discontinuities == 1)
        timeline.remove("s")
        #expect(timeline.position(of: "s", at: .zero) == nil)
    }
}

extension MediaTimelineTests {
    /// Two senders sharing one clock, over paths of 10 and 50 ms: by their own anchors the
    /// second lies 40 ms later; with their sender reports both lie on the faster path's
    /// timing. A third sender whose clock is an hour off keeps its own anchor.
    @Test func senderReportsAlignStreamsSharingAClock() {
        var timeline = MediaTimeline()
        let paths: [String: Int64] = ["near": 10, "far": 50, "odd": 30]
        var positions: [String: Duration] = [:]
        for n in 0..<300 {
            let spoken = Duration.milliseconds(1000 + 20 * Int64(n + 1))  // block end, on the shared clock
            for name in ["near", "far", "odd"] {
                if n % 50 == 10 {
                    // A report at the block's end: the clock (an hour off for "odd") at its media time.
                    let clock = spoken + (name == "odd" ? .seconds(3600) : .zero)
                    timeline.senderReport(name, mediaTime: Self.block(n + 1).start, wallClock: clock)
                }
                let b = Self.block(n)
                if case .at(let p) = timeline.place(
                    name, start: b.start, duration: b.duration, arrival: spoken + .milliseconds(paths[name]!))
                {
                    positions[name] = p - .milliseconds(20 * Int64(n))  // where media time zero lies
                }
            }
        }
        #expect(positions["near"] == .milliseconds(1010))
        #expect(positions["far"] == .milliseconds(1010), "aligned with the near one by the shared clock")
        #expect(positions["odd"] == .milliseconds(1030), "its own anchor: its clock agrees with no other")
    }
}
