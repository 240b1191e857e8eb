import ArgumentParser
import Foundation
import RoomClient
import Signaling

/// `meet-bot chat | react | hand`: joins a LiveKit room, says one thing as Visio's web
/// client does, and leaves — for announcers and scripts.
struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one chat message to a LiveKit room (Visio's chat), then leave.")

    @OptionGroup var join: RoomOptionsGroup

    @Argument(help: "The message.")
    var message: String

    func run() async throws {
        try await join.once { room in
            let sent = try await room.sendChat(message)
            log("meet-bot: sent chat message \(sent.id)")
        }
    }
}

/// `meet-bot react`: one of Visio's reactions.
struct React: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send one of Visio's reactions to a LiveKit room.")

    @OptionGroup var join: RoomOptionsGroup

    @Argument(help: "The reaction, as Visio names it.")
    var reaction: Reaction

    func run() async throws {
        try await join.once { room in try await room.sendReaction(reaction) }
    }
}

/// `meet-bot hand`: raises (or lowers) the bot's hand — the token must allow updating its
/// own attributes.
struct Hand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Raise (or, with --lower, lower) the bot's hand in a LiveKit room, then leave.")

    @OptionGroup var join: RoomOptionsGroup

    @Flag(help: "Lower the hand instead.")
    var lower = false

    @Option(help: "Stay this many seconds with the hand raised before leaving.")
    var stay: Double = 0

    func run() async throws {
        try await join.once { room in
            try await room.setHandRaised(!lower)
            if stay > 0 { try await Task.sleep(for: .milliseconds(Int(stay * 1000))) }
        }
    }
}

/// Visio's reaction names on the command line (the parser lists and checks them).
extension Reaction: ExpressibleByArgument {}

extension RoomOptionsGroup {
    /// Joins, runs `body`, and leaves (also when `body` fails).
    func once(_ body: (Room) async throws -> Void) async throws {
        guard livekit != nil || visio != nil else {
            throw ValidationError("this command needs a LiveKit room: --livekit and --token, or --visio")
        }
        let room = try await join(options: try roomOptions())
        do {
            try await body(room)
        } catch {
            await room.leave()
            throw error
        }
        await room.leave()
    }
}
