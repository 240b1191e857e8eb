/// A point or span on a media timeline: `value / timescale` seconds.
///
/// Media clocks differ per stream — Opus counts 48 kHz samples, RTP video counts 90 kHz
/// ticks, WAV counts samples at its own rate — so a time carries its clock. Conversions
/// round to the nearest tick of the target clock.
///
/// ```swift
/// let t = MediaTime(value: 960, timescale: 48_000)   // 20 ms
/// t.converted(to: 90_000).value                      // 1800
/// ```
public struct MediaTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Ticks of the clock.
    public var value: Int64
    /// Ticks per second; always positive.
    public var timescale: Int32

    /// A time of `value` ticks on a clock of `timescale` ticks per second.
    /// A non-positive `timescale` is replaced by 1.
    public init(value: Int64, timescale: Int32) {
        self.value = value
        self.timescale = timescale > 0 ? timescale : 1
    }

    /// Zero on a 1 Hz clock (equal in comparisons to zero on any clock).
    public static let zero = MediaTime(value: 0, timescale: 1)

    /// The time in seconds.
    public var seconds: Double { Double(value) / Double(timescale) }

    /// The time as a `Duration` (exact to the nanosecond).
    public var asDuration: Duration {
        let (seconds, remainder) = value.quotientAndRemainder(dividingBy: Int64(timescale))
        return .seconds(seconds) + .nanoseconds(remainder * 1_000_000_000 / Int64(timescale))
    }

    /// The same time on another clock, rounded to the nearest tick.
    public func converted(to newTimescale: Int32) -> MediaTime {
        let target = newTimescale > 0 ? newTimescale : 1
        if target == timescale { return self }
        if value.magnitude < (1 << 31) {
            // value * target fits comfortably in 64 bits.
            let product = value * Int64(target)
            let divisor = Int64(timescale)
            let (quotient, remainder) = product.quotientAndRemainder(dividingBy: divisor)
            let roundAway = 2 * remainder.magnitude >= divisor.magnitude
            return MediaTime(value: quotient + (roundAway ? product.signum() : 0), timescale: target)
        }
        // Very large values (hostile files, very long sessions): go through Double and clamp.
        let scaled = (Double(value) * Double(target) / Double(timescale)).rounded()
        let clamped = Swift.min(Swift.max(scaled, -9.0e18), 9.0e18)
        return MediaTime(value: Int64(clamped), timescale: target)
    }

    public static func < (lhs: MediaTime, rhs: MediaTime) -> Bool {
        if lhs.timescale == rhs.timescale { return lhs.value < rhs.value }
        let l = lhs.value.multipliedFullWidth(by: Int64(rhs.timescale))
        let r = rhs.value.multipliedFullWidth(by: Int64(lhs.timescale))
        return l.high < r.high || (l.high == r.high && l.low < r.low)
    }

    public static func == (lhs: MediaTime, rhs: MediaTime) -> Bool {
        if lhs.timescale == rhs.timescale { return lhs.value == rhs.value }
        let l = lhs.value.multipliedFullWidth(by: Int64(rhs.timescale))
        let r = rhs.value.multipliedFullWidth(by: Int64(lhs.timescale))
        return l.high == r.high && l.low == r.low
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(seconds)
    }

    /// The sum, on the finer of the two clocks.
    public static func + (lhs: MediaTime, rhs: MediaTime) -> MediaTime {
        let scale = max(lhs.timescale, rhs.timescale)
        return MediaTime(
            value: lhs.converted(to: scale).value + rhs.converted(to: scale).value, timescale: scale)
    }

    /// The difference, on the finer of the two clocks.
    public static func - (lhs: MediaTime, rhs: MediaTime) -> MediaTime {
        let scale = max(lhs.timescale, rhs.timescale)
        return MediaTime(
            value: lhs.converted(to: scale).value - rhs.converted(to: scale).value, timescale: scale)
    }

    public var description: String { "\(value)/\(timescale)s" }
}
