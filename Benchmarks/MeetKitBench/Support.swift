// Shared measuring helpers of meetkit-bench: rounds, medians, rows, and allocation counts.

import Foundation
import MallocInterposerSwift

#if canImport(Glibc)
    import Glibc
#endif

/// The run's settings.
enum Bench {
    /// `--quick`: fewer frames and rounds.
    static let quick = CommandLine.arguments.contains("--quick")
    /// Rounds per comparison.
    static let rounds = quick ? 5 : 11
}

let clock = ContinuousClock()

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// Seconds of the reference and of MeetKit (medians over rounds), and the median of the
/// rounds' MeetKit/reference ratios: each round runs both back to back, so a ratio
/// compares runs made in the same machine state (a shared machine's speed drifts by more
/// than the differences measured here).
struct Comparison {
    var reference: Double
    var candidate: Double
    var ratio: Double
}

/// Runs `reference` and `candidate` alternately for `rounds` rounds (the run's default).
/// Short rounds in larger numbers make the ratio steadier on a shared machine: a burst of
/// another tenant's work then spoils a few rounds, not the median.
/// `prepare`, untimed, runs before each round (to make the round's fresh state for both).
func compare(
    rounds: Int = Bench.rounds, prepare: () -> Void = {}, _ reference: () throws -> Void,
    _ candidate: () throws -> Void
) rethrows -> Comparison {
    var r: [Double] = []
    var c: [Double] = []
    for _ in 0..<rounds {
        prepare()
        var start = clock.now
        try reference()
        r.append((clock.now - start).seconds)
        start = clock.now
        try candidate()
        c.append((clock.now - start).seconds)
    }
    return Comparison(reference: median(r), candidate: median(c), ratio: median(zip(c, r).map { $0 / $1 }))
}

func row(_ name: String, _ unit: String, frames: Int, _ times: Comparison) {
    let reference = times.reference / Double(frames)
    let meetkit = times.candidate / Double(frames)
    let scale = unit == "ms" ? 1e3 : 1e6
    let padded = name.padding(toLength: 50, withPad: " ", startingAt: 0)
    print(
        "\(padded) C \(fmt(reference * scale)) \(unit)  MeetKit \(fmt(meetkit * scale)) \(unit)  ratio \(fmt(times.ratio, 3))"
    )
}

/// `v` with `digits` decimals; "n/a" for a value not measured (NaN, infinite).
func fmt(_ v: Double, _ digits: Int = 2) -> String {
    guard v.isFinite else { return "n/a" }
    var s = "\(Double(Int((v * pow(10, Double(digits))).rounded())) / pow(10, Double(digits)))"
    while s.split(separator: ".").last!.count < digits { s += "0" }
    return s
}

/// Heap allocations counted by ordo-one's malloc interposer (the counters behind
/// package-benchmark's malloc metrics). It counts only when its library is preloaded:
/// ``preloadInterposer()`` restarts the benchmark with `LD_PRELOAD` set when it is not.
enum Allocations {
    /// Whether counting works in this process.
    static let active: Bool = {
        MallocInterposerSwift.initialize()
        MallocInterposerSwift.hook()
        let probe = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        probe.deallocate()
        MallocInterposerSwift.unhook()
        return MallocInterposerSwift.getStatistics().mallocCount > 0
    }()

    /// Re-executes this program with the interposer preloaded, once, if counting is off
    /// and the library sits beside the executable (it does after `swift build`).
    static func preloadInterposer() {
        guard !active, getenv("MEETKIT_BENCH_PRELOADED") == nil else { return }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let library = executable.deletingLastPathComponent().appendingPathComponent("libMallocInterposerSwift.so").path
        guard FileManager.default.fileExists(atPath: library) else { return }
        setenv("MEETKIT_BENCH_PRELOADED", "1", 1)
        setenv("LD_PRELOAD", library, 1)
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv(executable.path, arguments)
    }

    /// The allocations `body` makes (nil when counting is off).
    static func count(_ body: () throws -> Void) rethrows -> Int? {
        guard active else {
            try body()
            return nil
        }
        MallocInterposerSwift.initialize()
        MallocInterposerSwift.hook()
        defer { MallocInterposerSwift.unhook() }
        try body()
        return MallocInterposerSwift.getStatistics().mallocCount
    }

    /// Allocations per item, as printed.
    static func perItem(_ count: Int?, _ items: Int) -> String {
        guard let count else { return "n/a (interposer not loaded)" }
        return fmt(Double(count) / Double(items), 3)
    }
}

/// A benchmark that cannot go on, and why.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The bytes of a hexadecimal string.
func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var iterator = hex.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c >= 97 ? c - 87 : c >= 65 ? c - 55 : c - 48 }
    while let high = iterator.next(), let low = iterator.next() { out.append(nibble(high) << 4 | nibble(low)) }
    return out
}
