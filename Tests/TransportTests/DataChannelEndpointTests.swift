import MeetKitTestSupport
import Testing

@testable import MeetKitSCTP

/// Data channels over an SCTP association (RFC 8831, RFC 8832) on a simulated link.
@Suite("Data channel endpoint")
struct DataChannelEndpointTests {
    @Test func dcepMessagesBothWays() throws {
        let kinds: [DataChannelOptions] = [
            .init(), .init(ordered: false), .init(maxRetransmits: 3), .init(ordered: false, maxRetransmits: 0),
            .init(maxPacketLifeTime: .milliseconds(1500), protocol: "chat"),
            .init(ordered: false, maxPacketLifeTime: .milliseconds(20)),
        ]
        for options in kinds {
            let open = DCEPMessage.open(options, label: "étiquette", priority: 256)
            #expect(try DCEPMessage(parsing: open.serialized()[...]) == open)
        }
        // RFC 8832 §5.1 layout: type, channel type, priority, parameter, lengths, label, protocol.
        let bytes = DCEPMessage.open(.init(ordered: false, maxRetransmits: 5, protocol: "p"), label: "ab", priority: 1)
            .serialized()
        #expect(bytes == [0x03, 0x81, 0, 1, 0, 0, 0, 5, 0, 2, 0, 1, 0x61, 0x62, 0x70])
        #expect(DCEPMessage.ack.serialized() == [0x02])
        #expect(throws: SCTPError.self) { try DCEPMessage(parsing: [0x03, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][...]) }
        #expect(throws: SCTPError.self) { try DCEPMessage(parsing: [0x03, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0][...]) }
        #expect(throws: SCTPError.self) { try DCEPMessage(parsing: [0x07][...]) }
    }

    static func pair(_ settings: PacketLink<DataChannelEndpoint>.Settings = .init(), seed: UInt64 = 1) -> PacketLink<
        DataChannelEndpoint
    > {
        PacketLink(
            settings, seed: seed,
            sides: [
                DataChannelEndpoint(
                    isDTLSClient: true, peerMaxMessageSize: 262_144, random: SplitMix64(seed: seed + 1)),
                DataChannelEndpoint(
                    isDTLSClient: false, peerMaxMessageSize: 262_144, random: SplitMix64(seed: seed + 2)),
            ])
    }

    /// Messages side `i` received, with their channels' stream ids.
    static func messages(_ link: PacketLink<DataChannelEndpoint>, at i: Int) -> [(UInt16, DataChannelMessage)] {
        link.events[i].compactMap {
            if case .message(let handle, let m) = $0 { (link.sides[i].streamID(of: handle) ?? 9999, m) } else { nil }
        }
    }

    /// The handle side `i` gave a channel it opened or the peer announced with stream `id`.
    static func opened(_ link: PacketLink<DataChannelEndpoint>, at i: Int, id: UInt16, label: String, remote: Bool)
        -> Int?
    {
        for e in link.events[i] {
            if case .opened(let h, id, label, _, remote) = e { return h }
        }
        return nil
    }

    @Test func channelsOpenedByEitherSideCarryEveryKindOfMessage() throws {
        let link = Self.pair()
        let (client, server) = (link.sides[0], link.sides[1])
        // Opened before the association is up: announced once it is.
        let chat = try client.openChannel(label: "chat", options: .init(protocol: "json"), now: link.now)
        #expect(client.streamID(of: chat) == nil, "no stream id before the association is up")
        client.start(now: link.now)
        server.start(now: link.now)
        #expect(link.run(for: .seconds(5)) { Self.opened(link, at: 1, id: 0, label: "chat", remote: true) != nil })
        #expect(link.run(for: .seconds(5)) { Self.opened(link, at: 0, id: 0, label: "chat", remote: false) == chat })
        #expect(client.streamID(of: chat) == 0, "the DTLS client's channels are even")
        let chatAtServer = try #require(Self.opened(link, at: 1, id: 0, label: "chat", remote: true))
        let files = try server.openChannel(label: "files", options: .init(ordered: false), now: link.now)
        #expect(link.run(for: .seconds(5)) { Self.opened(link, at: 0, id: 1, label: "files", remote: true) != nil })
        #expect(server.streamID(of: files) == 1, "the DTLS server's channels are odd")
        try client.send(.text("bonjour"), on: chat, now: link.now)
        try client.send(.text(""), on: chat, now: link.now)
        try client.send(.binary([]), on: chat, now: link.now)
        try server.send(.binary([1, 2, 3]), on: files, now: link.now)
        try server.send(.text("ça va"), on: chatAtServer, now: link.now)
        let big = (0..<262_144).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try client.send(.binary(big), on: chat, now: link.now)
        #expect(throws: DataChannelError.messageTooLarge(size: 262_145, limit: 262_144)) {
            try client.send(.binary(big + [0]), on: chat, now: link.now)
        }
        #expect(
            link.run(for: .seconds(10)) {
                Self.messages(link, at: 1).count == 4 && Self.messages(link, at: 0).count == 2
            })
        #expect(Self.messages(link, at: 1).map(\.1) == [.text("bonjour"), .text(""), .binary([]), .binary(big)])
        #expect(Self.messages(link, at: 0).map(\.0) == [1, 0])
        #expect(Self.messages(link, at: 0).map(\.1) == [.binary([1, 2, 3]), .text("ça va")])
    }

    @Test func negotiatedChannelsAndClosing() throws {
        let link = Self.pair(.init(loss: 0.05), seed: 3)
        let (client, server) = (link.sides[0], link.sides[1])
        client.start(now: link.now)
        server.start(now: link.now)
        #expect(link.run(for: .seconds(10)) { link.events.allSatisfy { $0.contains(.connected) } })
        // Negotiated: both sides open id 7 themselves, no DCEP.
        let a = try client.openChannel(label: "n", options: .init(negotiated: true, id: 7), now: link.now)
        let b = try server.openChannel(label: "n", options: .init(negotiated: true, id: 7), now: link.now)
        #expect(client.streamID(of: a) == 7 && server.streamID(of: b) == 7)
        #expect(throws: DataChannelError.idInUse(7)) {
            try client.openChannel(label: "x", options: .init(negotiated: true, id: 7), now: link.now)
        }
        try client.send(.text("hi"), on: a, now: link.now)
        #expect(link.run(for: .seconds(10)) { Self.messages(link, at: 1).map(\.1) == [.text("hi")] })
        // Closed by the server: both sides see it closed, after what was sent.
        for i in 0..<10 { try server.send(.text("\(i)"), on: b, now: link.now) }
        server.close(b, now: link.now)
        #expect(throws: DataChannelError.noSuchChannel(b)) { try server.send(.text("late"), on: b, now: link.now) }
        #expect(
            link.run(for: .seconds(30)) {
                link.events[0].contains(.closed(handle: a)) && link.events[1].contains(.closed(handle: b))
            })
        #expect(Self.messages(link, at: 0).map(\.1) == (0..<10).map { .text("\($0)") })
        #expect(throws: DataChannelError.noSuchChannel(a)) { try client.send(.text("x"), on: a, now: link.now) }
        // The id is free again, and its sequence numbers start afresh.
        let a2 = try client.openChannel(label: "again", options: .init(negotiated: true, id: 7), now: link.now)
        _ = try server.openChannel(label: "again", options: .init(negotiated: true, id: 7), now: link.now)
        try client.send(.text("after"), on: a2, now: link.now)
        #expect(link.run(for: .seconds(10)) { Self.messages(link, at: 1).last?.1 == .text("after") })
        // An announced channel closed by its opener: the same id is announced again.
        let announced = try client.openChannel(label: "a", options: .init(id: 9), now: link.now)
        #expect(client.streamID(of: announced) == 0, "an announced channel's id follows the DTLS role, not the option")
        #expect(link.run(for: .seconds(10)) { Self.opened(link, at: 1, id: 0, label: "a", remote: true) != nil })
        client.close(announced, now: link.now)
        #expect(link.run(for: .seconds(30)) { link.events[0].contains(.closed(handle: announced)) })
        let b2 = try client.openChannel(label: "b", now: link.now)
        #expect(client.streamID(of: b2) == 0)
        #expect(link.run(for: .seconds(10)) { Self.opened(link, at: 1, id: 0, label: "b", remote: true) != nil })
        try client.send(.text("b"), on: b2, now: link.now)
        #expect(link.run(for: .seconds(10)) { Self.messages(link, at: 1).last! == (0, .text("b")) })
    }

    @Test func hostileDCEPIsDroppedAndCounted() throws {
        let link = Self.pair(seed: 5)
        let (client, server) = (link.sides[0], link.sides[1])
        client.start(now: link.now)
        server.start(now: link.now)
        let handle = try client.openChannel(label: "c", now: link.now)
        #expect(link.run(for: .seconds(5)) { link.events[0].contains { if case .opened = $0 { true } else { false } } })
        let id = try #require(client.streamID(of: handle))
        // A second OPEN for the stream in use, an OPEN with the wrong parity, garbage DCEP, and
        // data on a stream nobody opened.
        let open = DCEPMessage.open(.init(), label: "again", priority: 0).serialized()
        try client.association.send(open, stream: id, protocolIdentifier: 50, now: link.now)
        try client.association.send(open, stream: 5, protocolIdentifier: 50, now: link.now)
        try client.association.send([0x09, 1, 2], stream: id, protocolIdentifier: 50, now: link.now)
        try client.association.send([1], stream: 12, protocolIdentifier: 51, now: link.now)
        try client.send(.text("still fine"), on: handle, now: link.now)
        #expect(link.run(for: .seconds(5)) { Self.messages(link, at: 1).count == 1 })
        #expect(server.dropped == 4)
        #expect(link.events[1].filter { if case .opened = $0 { true } else { false } }.count == 1)
    }
}

extension DataChannelEndpointTests {
    /// A peer that ignores our max-message-size: the message is dropped and the channel
    /// closed on both sides.
    @Test func aMessageOverOurLimitClosesTheChannel() throws {
        let link = Self.pair(seed: 7)
        let (client, server) = (link.sides[0], link.sides[1])
        client.peerMaxMessageSize = 0  // the sender believes there is no limit
        client.start(now: link.now)
        server.start(now: link.now)
        let handle = try client.openChannel(label: "big", now: link.now)
        #expect(link.run(for: .seconds(5)) { Self.opened(link, at: 0, id: 0, label: "big", remote: false) != nil })
        try client.send(.binary([UInt8](repeating: 1, count: 300_000)), on: handle, now: link.now)
        #expect(link.run(for: .seconds(30)) { link.events[0].contains(.closed(handle: handle)) })
        #expect(Self.messages(link, at: 1).isEmpty)
        #expect(server.dropped == 1)
    }
}
