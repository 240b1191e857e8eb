/// Places the blocks of several media streams on one recording timeline by their media
/// time, not by when they arrived.
///
/// Each stream is anchored once: over its first second (``Configuration/settling``) the
/// smallest gap between a block's arrival and its media time is taken as the stream's
/// offset, so a first packet that came late does not shift the stream. From then on a
/// block goes where its media time says — `offset + media time` — however late it arrives:
/// a network stall that delivers half a second of speech in one burst moves nothing, and
/// a gap in the media time itself (silence, DTX, a muted or paused sender, a run of lost
/// packets too long to conceal) stays a gap.
///
/// Two slow effects are followed without reacting to stalls: the sender's clock drifting
/// against the recorder's, and a path whose delay changes for good. Both show as the
/// *smallest* delay of the last ``Configuration/driftWindow`` moving away from zero (a
/// stall raises only some delays, never the smallest of a few seconds); when it moves by
/// more than ``Configuration/driftTolerance`` the offset follows it, so the error never
/// grows past the tolerance. A media time that jumps by more than
/// ``Configuration/discontinuity`` against arrival (a restarted or replaced sender) starts
/// a new anchor at once.
///
/// Sender reports (RTCP SR) align streams with each other: a report says what the sender's
/// clock read at a media time. Streams whose clocks agree — an SFU's own clock, or senders
/// whose wall clocks are synchronised — show the same offset between their clock and the
/// recorder's arrivals, up to their different path delays; among such streams (offsets
/// within ``Configuration/sharedClockTolerance``), each is placed by its sender's clock
/// against the smallest offset of the group, so a speaker on a slower path is not recorded
/// later than one on a faster path. Streams without reports, or whose clocks agree with no
/// other, keep their own anchor.
///
/// Sans-IO like the rest of MeetKit: the caller says when each block arrived, on the
/// recording's own clock (time since the recording started).
///
/// ```swift
/// var timeline = MediaTimeline()
/// switch timeline.place("alice", start: pcm.timestamp, duration: pcm.duration, arrival: now) {
/// case .settling: pending.append(pcm)          // write it once the stream is anchored
/// case .at(let position): wav.write(pcm, at: position)
/// }
/// ```
public struct MediaTimeline: Sendable {
    /// How streams are anchored and followed.
    public struct Configuration: Sendable, Equatable {
        /// Arrival time over which a new stream's offset is chosen (its smallest delay).
        public var settling: Duration = .seconds(1)
        /// Window over which the smallest delay is tracked for drift. Stalls do not move
        /// it however long they last (no block arrives during a stall, and the burst after
        /// one ends with blocks on time); a sustained change does, after this long.
        public var driftWindow: Duration = .seconds(3)
        /// How far the smallest delay may move before the offset follows it.
        public var driftTolerance: Duration = .milliseconds(20)
        /// A media time this far off its expected arrival is a new stream.
        public var discontinuity: Duration = .seconds(5)
        /// How far two streams' clock offsets may differ and still be taken as one clock
        /// (the difference is their path delays): within it, streams are aligned by their
        /// sender reports.
        public var sharedClockTolerance: Duration = .milliseconds(100)
        /// How long a new stream waits for its first sender report before it is anchored
        /// without one (so that it does not move once the report comes).
        public var senderReportWait: Duration = .milliseconds(2500)

        /// The defaults.
        public init() {}
    }

    /// Where a block goes.
    public enum Placement: Sendable, Equatable {
        /// The stream is not anchored yet: keep the block and place it with
        /// ``MediaTimeline/position(of:at:)`` once a later block is placed `.at`.
        case settling
        /// The block starts at this time of the recording.
        case at(Duration)
    }

    /// Counters.
    public struct Statistics: Sendable, Equatable {
        /// Times an offset followed the smallest delay (drift, a changed path).
        public var driftCorrections = 0
        /// Times a stream was anchored anew after a jump of its media time.
        public var discontinuities = 0

        /// Zero counters.
        public init() {}
    }

    private struct Stream {
        var offset: Duration?
        /// The sender's clock minus media time, from its latest report.
        var clockOffset: Duration?
        /// The offset used when the stream is aligned by its sender's clock.
        var aligned: Duration?
        var settleStart: Duration
        var best: Duration
        var sawBlock = true
        var bucketStart: Duration = .zero
        var bucketMin: Duration?
        var minima: [Duration] = []

        /// A stream anchored at `offset` by a block that arrived at `arrival`, its sender's
        /// clock kept.
        static func anchored(at offset: Duration, clockOffset: Duration?, arrival: Duration) -> Stream {
            Stream(offset: offset, clockOffset: clockOffset, settleStart: arrival, best: offset, bucketStart: arrival)
        }
    }

    /// Settings.
    public let configuration: Configuration
    /// Counters.
    public private(set) var statistics = Statistics()
    private var streams: [String: Stream] = [:]
    /// Whether the aligned offsets must be worked out again (a report, an anchor or a
    /// drift correction changed some stream's offsets).
    private var alignmentStale = false

    /// A timeline with `configuration`.
    public init(configuration: Configuration = .init()) { self.configuration = configuration }

    /// Places a block of stream `stream` that starts at media time `start`, lasts
    /// `duration` and arrived (whole) at `arrival` on the recording's clock.
    public mutating func place(_ stream: String, start: MediaTime, duration: MediaTime, arrival: Duration)
        -> Placement
    {
        let media = start.asDuration
        // The offset this block would give if it had come with no delay at all.
        let raw = arrival - media - duration.asDuration
        // One lookup of the stream per block, its state read and changed in place through
        // `inout` (a room of 150 speakers places 7 500 blocks a second; reading a field of
        // a dictionary's value copies the whole value, its array of minima included).
        var found = streams.index(forKey: stream)
        if found.map({ !Self.sawBlock(&streams.values[$0]) }) ?? true {
            // The first block (a report may have come before it): settling starts.
            let clockOffset = found.flatMap { Self.clockOffset(&streams.values[$0]) }
            streams[stream] = Stream(clockOffset: clockOffset, settleStart: arrival, best: raw)
            found = streams.index(forKey: stream)
        }
        let i = found!
        switch Self.step(&streams.values[i], raw: raw, arrival: arrival, configuration: configuration) {
        case .settling: return .settling
        case .anchored: alignmentStale = true
        case .discontinuity:
            statistics.discontinuities += 1
            alignmentStale = true
        case .placed(let corrected):
            if corrected {
                statistics.driftCorrections += 1
                alignmentStale = true
            }
        }
        return .at(media + effectiveOffset(at: i))
    }

    /// What placing a block did to its stream.
    private enum Step {
        /// Still settling: no offset yet.
        case settling
        /// Anchored now, after settling.
        case anchored
        /// Anchored anew after a jump of its media time.
        case discontinuity
        /// Placed by its offset, which followed the smallest delay (`corrected`) or not.
        case placed(corrected: Bool)
    }

    /// Places a block whose zero-delay offset is `raw` on stream `s`.
    private static func step(_ s: inout Stream, raw: Duration, arrival: Duration, configuration: Configuration) -> Step
    {
        guard let offset = s.offset else {
            s.best = min(s.best, raw)
            let waited = arrival - s.settleStart
            guard waited >= configuration.settling,
                s.clockOffset != nil || waited >= configuration.senderReportWait
            else { return .settling }
            s = .anchored(at: s.best, clockOffset: s.clockOffset, arrival: arrival)
            return .anchored
        }
        let delay = raw - offset
        if delay > configuration.discontinuity || delay < .zero - configuration.discontinuity {
            s = .anchored(at: raw, clockOffset: s.clockOffset, arrival: arrival)
            return .discontinuity
        }
        return .placed(corrected: follow(&s, delay: delay, at: arrival, configuration: configuration))
    }

    // Fields read in place (see `place`).
    private static func sawBlock(_ s: inout Stream) -> Bool { s.sawBlock }
    private static func clockOffset(_ s: inout Stream) -> Duration? { s.clockOffset }
    private static func offset(_ s: inout Stream) -> Duration? { s.offset }
    private static func placedOffset(_ s: inout Stream) -> Duration { s.aligned ?? s.offset ?? .zero }

    /// A sender report for `stream`: the sender's clock read `wallClock` at media time
    /// `mediaTime` (on the same timeline as the blocks given to ``place(_:start:duration:arrival:)``).
    public mutating func senderReport(_ stream: String, mediaTime: MediaTime, wallClock: Duration) {
        let clockOffset = wallClock - mediaTime.asDuration
        if streams[stream] == nil {
            streams[stream] = Stream(settleStart: .zero, best: .zero, sawBlock: false)
        }
        streams[stream]!.clockOffset = clockOffset
        alignmentStale = true
    }

    /// The offset a stream's blocks are placed with: aligned by its sender's clock when
    /// that clock is shared with others, else its own.
    private mutating func effectiveOffset(at i: [String: Stream].Index) -> Duration {
        // Realigning changes values in place: the index stays valid.
        if alignmentStale { realign() }
        return Self.placedOffset(&streams.values[i])
    }

    /// For every anchored stream with a report: d = own offset − clock offset (its path
    /// delay plus its clock's offset); the stream is placed at clock offset + the smallest
    /// d within the tolerance above its own.
    private mutating func realign() {
        alignmentStale = false
        var ds: [Duration] = []
        for (_, s) in streams {
            if let offset = s.offset, let clock = s.clockOffset { ds.append(offset - clock) }
        }
        ds.sort()
        // By index, changing the values in place (iterating the dictionary while assigning
        // to it copied all of it, once per report of a room of 150 speakers).
        var i = streams.startIndex
        while i != streams.endIndex {
            defer { streams.formIndex(after: &i) }
            guard let offset = streams.values[i].offset, let clock = streams.values[i].clockOffset else {
                streams.values[i].aligned = nil
                continue
            }
            let d = offset - clock
            // The smallest d no further than the tolerance below this one.
            var low = 0
            var high = ds.count
            while low < high {
                let mid = (low + high) / 2
                if ds[mid] < d - configuration.sharedClockTolerance { low = mid + 1 } else { high = mid }
            }
            streams.values[i].aligned = clock + min(d, ds[min(low, ds.count - 1)])
        }
    }

    /// Where media time `time` of an anchored stream lies on the recording; nil before it
    /// is anchored.
    public mutating func position(of stream: String, at time: MediaTime) -> Duration? {
        guard let i = streams.index(forKey: stream), Self.offset(&streams.values[i]) != nil else { return nil }
        return time.asDuration + effectiveOffset(at: i)
    }

    /// Forgets a stream (its sender left); a stream of the same name later is anchored anew.
    public mutating func remove(_ stream: String) { streams[stream] = nil }

    /// Tracks the smallest delay per tenth of the drift window; once the window is full,
    /// moves the offset when that smallest delay has drifted past the tolerance. Whether
    /// it moved.
    private static func follow(
        _ s: inout Stream, delay: Duration, at arrival: Duration, configuration: Configuration
    ) -> Bool {
        let bucket = configuration.driftWindow / 10
        s.bucketMin = min(s.bucketMin ?? delay, delay)
        guard arrival - s.bucketStart >= bucket, let bucketMin = s.bucketMin else { return false }
        s.minima.append(bucketMin)
        if s.minima.count > 10 { s.minima.removeFirst() }
        s.bucketStart = arrival
        s.bucketMin = nil
        guard s.minima.count == 10, let smallest = s.minima.min() else { return false }
        guard smallest > configuration.driftTolerance || smallest < .zero - configuration.driftTolerance else {
            return false
        }
        s.offset! += smallest
        s.minima = s.minima.map { $0 - smallest }
        return true
    }
}
