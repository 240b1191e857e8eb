import Foundation

/// Runs `ffprobe` (Debian package `ffmpeg`) on a file and returns what it reports: an
/// independent check that files MeetKit writes are readable by other tools.
public struct FFprobeReport: Sendable {
    /// `format_name` of the container (e.g. "wav", "ogg", "ivf").
    public let formatName: String
    /// `codec_name` of the first stream (e.g. "pcm_s16le", "opus", "vp8").
    public let codecName: String
    /// Channels of the first stream, for audio.
    public let channels: Int?
    /// Sample rate of the first stream, for audio.
    public let sampleRate: Int?
    /// Width and height of the first stream, for video.
    public let width: Int?
    /// Height of the first stream, for video.
    public let height: Int?
    /// Duration of the container, in seconds.
    public let duration: Double?
    /// Frames/packets counted by ffprobe (`nb_read_packets`).
    public let packetCount: Int?

    /// Why ffprobe could not report.
    public struct Failure: Error, CustomStringConvertible {
        /// What happened.
        public let description: String
    }

    /// Probes `path` with `ffprobe -count_packets -show_format -show_streams`.
    public static func probe(_ path: String) throws -> FFprobeReport {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "ffprobe", "-v", "error", "-count_packets", "-show_format", "-show_streams", "-of", "json", path,
        ]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw Failure(description: "cannot run ffprobe (install Debian's ffmpeg: Scripts/bootstrap): \(error)")
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "ffprobe exited \(process.terminationStatus): \(errors)")
        }
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let format = json["format"] as? [String: Any],
            let streams = json["streams"] as? [[String: Any]], let stream = streams.first
        else { throw Failure(description: "ffprobe printed no format or stream: \(errors)") }
        func int(_ any: Any?) -> Int? { (any as? Int) ?? (any as? String).flatMap { Int($0) } }
        return FFprobeReport(
            formatName: format["format_name"] as? String ?? "", codecName: stream["codec_name"] as? String ?? "",
            channels: int(stream["channels"]), sampleRate: int(stream["sample_rate"]), width: int(stream["width"]),
            height: int(stream["height"]), duration: (format["duration"] as? String).flatMap(Double.init),
            packetCount: int(stream["nb_read_packets"]))
    }
}
