import MeetKitTestSupport
import NIOCore
import Transport

@testable import RoomClient

extension JanusServer {
    /// Options for a room on this Janus: gather the namespace's address.
    func roomOptions(_ configure: (inout RoomOptions) -> Void = { _ in }) -> RoomOptions {
        var options = RoomOptions()
        options.localAddresses = [address]
        configure(&options)
        return options
    }

    /// Joins `room` (1234, the configured one, by default) as `name`, on `group`'s loops.
    func join(
        _ name: String, room: String = "1234", group: any EventLoopGroup,
        _ configure: (inout RoomOptions) -> Void = { _ in }
    ) async throws -> Room {
        let signaling = try await JanusRoomSignaling.connect(url: url, group: group)
        do {
            return try await Room.join(
                signaling: signaling, room: room, displayName: name, options: roomOptions(configure), group: group)
        } catch {
            await signaling.leave()
            throw error
        }
    }
}
