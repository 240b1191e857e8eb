import Codec
import Foundation

/// Measurements tests use to judge media quality: SNR after alignment, PSNR, dominant
/// frequency, energy. Plain loops, no dependencies.
public enum SignalAnalysis {
    /// The lag (in samples, `0...maxLag`) at which `output` best matches `reference`:
    /// `output[i + lag] ≈ reference[i]`. Codecs delay their output (Opus by its lookahead).
    public static func bestLag(reference: [Float], output: [Float], maxLag: Int) -> Int {
        var best = 0
        var bestScore = -Double.infinity
        let window = min(reference.count, output.count - maxLag)
        guard window > 0 else { return 0 }
        for lag in 0...maxLag {
            var dot = 0.0
            for i in 0..<window { dot += Double(reference[i]) * Double(output[i + lag]) }
            if dot > bestScore {
                bestScore = dot
                best = lag
            }
        }
        return best
    }

    /// Signal-to-noise ratio in dB of `output` against `reference`, after shifting
    /// `output` by the best lag up to `maxLag` and skipping `skip` leading samples (codec
    /// start-up). Noise is everything that differs from the reference.
    public static func snr(reference: [Float], output: [Float], maxLag: Int = 2000, skip: Int = 0) -> Double {
        let lag = bestLag(reference: reference, output: output, maxLag: maxLag)
        var signal = 0.0
        var noise = 0.0
        let count = min(reference.count, output.count - lag)
        guard count > skip else { return -.infinity }
        for i in skip..<count {
            let s = Double(reference[i])
            let d = Double(output[i + lag]) - s
            signal += s * s
            noise += d * d
        }
        return noise == 0 ? .infinity : 10 * log10(signal / noise)
    }

    /// Root-mean-square level of `samples`.
    public static func rms(_ samples: ArraySlice<Float>) -> Double {
        guard !samples.isEmpty else { return 0 }
        var sum = 0.0
        for s in samples { sum += Double(s) * Double(s) }
        return sqrt(sum / Double(samples.count))
    }

    /// Power of `samples` at `frequency` Hz (Goertzel algorithm), normalised by length.
    public static func power(of frequency: Double, in samples: ArraySlice<Float>, sampleRate: Int) -> Double {
        let omega = 2 * Double.pi * frequency / Double(sampleRate)
        let coefficient = 2 * cos(omega)
        var s1 = 0.0
        var s2 = 0.0
        for x in samples {
            let s0 = Double(x) + coefficient * s1 - s2
            s2 = s1
            s1 = s0
        }
        let p = s1 * s1 + s2 * s2 - coefficient * s1 * s2
        return p / Double(max(1, samples.count * samples.count))
    }

    /// The frequency with the most power among `candidates` Hz, scanning `range` in
    /// `step` Hz when no candidates are given.
    public static func dominantFrequency(
        in samples: [Float], sampleRate: Int, range: ClosedRange<Double> = 50...4000, step: Double = 10
    ) -> Double {
        var best = range.lowerBound
        var bestPower = -1.0
        var f = range.lowerBound
        while f <= range.upperBound {
            let p = power(of: f, in: samples[...], sampleRate: sampleRate)
            if p > bestPower {
                bestPower = p
                best = f
            }
            f += step
        }
        return best
    }

    /// Peak signal-to-noise ratio in dB between two pictures of the same size, over all
    /// three planes (∞ when identical). Chroma counts, so swapped or shifted chroma planes
    /// show up as well as luma errors.
    public static func psnr(_ a: VideoFrame, _ b: VideoFrame) -> Double {
        precondition(a.width == b.width && a.height == b.height, "PSNR needs pictures of one size")
        var sum = 0.0
        var count = 0
        a.withPlanes { ay, au, av in
            b.withPlanes { by, bu, bv in
                func add(
                    _ p: UnsafeBufferPointer<UInt8>, _ sp: Int, _ q: UnsafeBufferPointer<UInt8>, _ sq: Int, _ w: Int,
                    _ h: Int
                ) {
                    for row in 0..<h {
                        for col in 0..<w {
                            let d = Double(p[row * sp + col]) - Double(q[row * sq + col])
                            sum += d * d
                        }
                    }
                    count += w * h
                }
                add(ay, a.strides.y, by, b.strides.y, a.width, a.height)
                add(au, a.strides.u, bu, b.strides.u, a.chromaWidth, a.chromaHeight)
                add(av, a.strides.v, bv, b.strides.v, a.chromaWidth, a.chromaHeight)
            }
        }
        let mse = sum / Double(count)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }
}

extension SignalAnalysis {
    /// Where `reference` best matches inside `output`, looking at offsets in `offsets`
    /// (`output[offset + i] ≈ reference[i]`, offsets may be negative or run past the end:
    /// missing samples count as zeros), and the normalised correlation there (1: the same
    /// shape). Coarse steps first, then every sample around the best coarse one.
    public static func locate(_ reference: [Float], in output: [Float], offsets: ClosedRange<Int>)
        -> (offset: Int, correlation: Double)
    {
        let energy = reference.reduce(0.0) { $0 + Double($1) * Double($1) }
        func score(_ offset: Int) -> Double {
            var dot = 0.0
            var outEnergy = 0.0
            let lower = max(0, -offset)
            let upper = min(reference.count, output.count - offset)
            guard lower < upper else { return 0 }
            for i in lower..<upper {
                let o = Double(output[i + offset])
                dot += Double(reference[i]) * o
                outEnergy += o * o
            }
            let norm = (energy * outEnergy).squareRoot()
            return norm > 0 ? dot / norm : 0
        }
        var best = (offset: offsets.lowerBound, correlation: -Double.infinity)
        for offset in stride(from: offsets.lowerBound, through: offsets.upperBound, by: 2) {
            let s = score(offset)
            if s > best.correlation { best = (offset, s) }
        }
        let coarse = best.offset
        for offset in max(offsets.lowerBound, coarse - 2)...min(offsets.upperBound, coarse + 2) {
            let s = score(offset)
            if s > best.correlation { best = (offset, s) }
        }
        return best
    }

    /// The longest run of exact zeros (digital silence, as a recorder writes for a gap).
    public static func longestZeroRun(_ samples: ArraySlice<Float>) -> Int {
        var longest = 0
        var run = 0
        for s in samples {
            run = s == 0 ? run + 1 : 0
            longest = max(longest, run)
        }
        return longest
    }
}
