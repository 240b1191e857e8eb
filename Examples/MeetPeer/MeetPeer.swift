// meet-peer — a command-line WebRTC peer for interop and network checks, built on the
// public Transport and Codec API only (so it is also the reference example of a P2P call).
//
//   meet-peer [--offer] [--echo] [--audio N] [--video N] [--no-data-channel] [--duration S] [--ip ADDR]
//             [--stats-interval S]
//
// Signalling is one JSON object per line: as answerer (default) it reads
// {"type":"offer","sdp":…} on stdin and prints {"type":"answer","sdp":…} (every local
// candidate already in the SDP); with --offer it prints the offer first and reads the answer.
// The offer carries a data channel ("meet-peer"); on every channel (and those the peer
// opens) meet-peer sends a numbered message every 20 ms, or with --echo sends back what
// arrives. Logs go to stderr, ending with `STATS {json}`. Exit status: 0 when the connection came up
// and media flowed both ways as negotiated, 1 when it did not, 2 for bad input.

import ArgumentParser
import Codec
import Foundation
import Synchronization
import Transport

@main
struct MeetPeer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meet-peer", abstract: "A command-line WebRTC peer (Opus and VP8) for interop and network checks.")

    @Flag(help: "Send the offer (default: wait for one on stdin and answer it).")
    var offer = false

    @Flag(help: "Send every received track back on its own m-line (and every data channel message on its channel).")
    var echo = false

    @Flag(inversion: .prefixedNo, help: "Offer a data channel (with --offer).")
    var dataChannel = true

    @Option(help: "Audio m-lines to offer (with --offer).")
    var audio = 1

    @Option(help: "Video m-lines to offer (with --offer).")
    var video = 1

    @Option(help: "Exit after this many seconds of media.")
    var duration: Double = 10

    @Option(help: "The only local address to gather (loopback allowed); default: every non-loopback interface.")
    var ip: String?

    @Option(help: "Print intermediate statistics every S seconds (0: only the final STATS line).")
    var statsInterval: Double = 0

    func run() async throws {
        Console.ignoreBrokenPipes()
        var code = await Session(options: self).run()
        if Console.isBroken { code = 1 }  // whatever else went wrong, nobody could read it
        throw ExitCode(code)
    }
}

/// stdout and stderr without traps: SIGPIPE is ignored, and a write whose reader has gone
/// away (EPIPE) marks the console broken instead of killing the process — the run then
/// ends early with exit status 1 (the reason goes to stderr if stderr still works).
enum Console {
    private static let broken = Atomic<Bool>(false)

    /// Whether a write to stdout or stderr has failed.
    static var isBroken: Bool { broken.load(ordering: .relaxed) }

    static func ignoreBrokenPipes() { signal(SIGPIPE, SIG_IGN) }

    /// Writes `text`; false (and the console marked broken) when it could not.
    @discardableResult
    static func write(_ text: String, to handle: FileHandle) -> Bool {
        do {
            try handle.write(contentsOf: Data(text.utf8))
            return true
        } catch {
            broken.store(true, ordering: .relaxed)  // the caller says why, where it still can
            return false
        }
    }
}

func log(_ text: String) { Console.write("meet-peer: " + text + "\n", to: .standardError) }

/// Bad input on stdin: one line on stderr, exit status 2.
struct InputError: Error, CustomStringConvertible {
    let description: String
}

/// Reads one line of stdin (nil at end of input) without blocking the async executor.
func readLine(timeout: Duration) async -> String? {
    await withTaskGroup(of: String?.self) { group in
        group.addTask {
            await withCheckedContinuation { c in
                Thread.detachNewThread { c.resume(returning: Swift.readLine(strippingNewline: true)) }
            }
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// Parses `{"type": expected, "sdp": "…"}`.
func description(from line: String?, expected: String) throws(InputError) -> SessionDescription {
    guard let line else { throw InputError(description: "no \(expected) on stdin") }
    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        throw InputError(description: "stdin is not a JSON object: \(line.prefix(80))")
    }
    guard let type = object["type"] as? String, type == expected else {
        throw InputError(description: "expected {\"type\":\"\(expected)\"}, got type \(object["type"] ?? "none")")
    }
    guard let sdp = object["sdp"] as? String else { throw InputError(description: "the \(expected) has no sdp") }
    do {
        return try SessionDescription(parsing: sdp)
    } catch {
        throw InputError(description: "the \(expected)'s SDP does not parse: \(error)")
    }
}

/// Prints `{"type": type, "sdp": …}` on stdout.
/// - Throws: ``OutputError`` when stdout's reader has gone away.
func emit(_ type: String, _ sdp: SessionDescription) throws(OutputError) {
    let object: [String: Any] = ["type": type, "sdp": sdp.serialized()]
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    guard Console.write(String(decoding: data, as: UTF8.self) + "\n", to: .standardOutput) else {
        throw OutputError(description: "stdout is closed: nobody reads the \(type)")
    }
}

/// stdout or stderr went away: exit status 1.
struct OutputError: Error, CustomStringConvertible {
    let description: String
}
