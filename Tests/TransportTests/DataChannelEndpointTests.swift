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

    static func messages(_ link: PacketLink<DataChannelEndpoint>, at i: Int) -> [(UInt16, DataChannelMessage)] {
        link.events[i].compactMap { if case .message(let id, let m) = $0 { (id, m) } else { nil } }
    }

    @Test func channelsOpenedByEitherSideCarryEveryKindOfMessage() throws {
        let link = Self.pair()
        let (client, server) = (link.sides[0], link.sides[1])
        // Opened before the association is up: announced once it is.
        let chat = try client.openChannel(label: "chat", options: .init(protocol: "json"), now: link.now)
        #expect(chat == 0, "the DTLS client's channels are even")
        client.start(now: link.now)
        server.start(now: link.now)
        #expect(
            link.run(for: .seconds(5)) {
                link.events[1].contains { if case .opened(0, "chat", _, true) = $0 { true } else { false } }
            })
        #expect(
            link.run(for: .seconds(5)) {
                link.events[0].contains { if case .opened(0, "chat", _, false) = $0 { true } else { false } }
            })
        let files = try server.openChannel(label: "files", options: .init(ordered: false), now: link.now)
        #expect(files == 1, "the DTLS server's channels are odd")
        #expect(
            link.run(for: .seconds(5)) {
                link.events[0].contains { if case .opened(1, "files", let o, true) = $0 { !o.ordered } else { false } }
            })
        try client.send(.text("bonjour"), on: chat, now: link.now)
        try client.send(.text(""), on: chat, now: link.now)
        try client.send(.binary([]), on: chat, now: link.now)
        try server.send(.binary([1, 2, 3]), on: files, now: link.now)
        try server.send(.text("ça va"), on: chat, now: link.now)
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
        #expect(a == 7 && b == 7)
        #expect(throws: DataChannelError.idInUse(7)) {
            try client.openChannel(label: "x", options: .init(negotiated: true, id: 7), now: link.now)
        }
        try client.send(.text("hi"), on: 7, now: link.now)
        #expect(link.run(for: .seconds(10)) { Self.messages(link, at: 1).map(\.1) == [.text("hi")] })
        // Closed by the server: both sides see it closed, after what was sent.
        for i in 0..<10 { try server.send(.text("\(i)"), on: 7, now: link.now) }
        server.close(id: 7, now: link.now)
        #expect(throws: DataChannelError.noSuchChannel(7)) { try server.send(.text("late"), on: 7, now: link.now) }
        #expect(link.run(for: .seconds(30)) { link.events.allSatisfy { $0.contains(.closed(id: 7)) } })
        #expect(Self.messages(link, at: 0).map(\.1) == (0..<10).map { .text("\($0)") })
        #expect(throws: DataChannelError.noSuchChannel(7)) { try client.send(.text("x"), on: 7, now: link.now) }
        // The id is free again, and its sequence numbers start afresh.
        _ = try client.openChannel(label: "again", options: .init(negotiated: true, id: 7), now: link.now)
        _ = try server.openChannel(label: "again", options: .init(negotiated: true, id: 7), now: link.now)
        try client.send(.text("after"), on: 7, now: link.now)
        #expect(link.run(for: .seconds(10)) { Self.messages(link, at: 1).last?.1 == .text("after") })
        // An announced channel closed by its opener: the same id is announced again.
        let announced = try client.openChannel(label: "a", options: .init(id: 9), now: link.now)
        #expect(announced == 0, "an announced channel's id follows the DTLS role, not the option")
        #expect(
            link.run(for: .seconds(10)) {
                link.events[1].contains { if case .opened(0, "a", _, true) = $0 { true } else { false } }
            })
        client.close(id: 0, now: link.now)
        #expect(link.run(for: .seconds(30)) { link.events.allSatisfy { $0.contains(.closed(id: 0)) } })
        #expect(try client.openChannel(label: "b", now: link.now) == 0)
        #expect(
            link.run(for: .seconds(10)) {
                link.events[1].contains { if case .opened(0, "b", _, true) = $0 { true } else { false } }
            })
        try client.send(.text("b"), on: 0, now: link.now)
        #expect(link.run(for: .seconds(10)) { Self.messages(link, at: 1).last! == (0, .text("b")) })
    }

    @Test func hostileDCEPIsDroppedAndCounted() throws {
        let link = Self.pair(seed: 5)
        let (client, server) = (link.sides[0], link.sides[1])
        client.start(now: link.now)
        server.start(now: link.now)
        let id = try client.openChannel(label: "c", now: link.now)
        #expect(link.run(for: .seconds(5)) { link.events[0].contains { if case .opened = $0 { true } else { false } } })
        // A second OPEN for the stream in use, an OPEN with the wrong parity, garbage DCEP, and
        // data on a stream nobody opened.
        let open = DCEPMessage.open(.init(), label: "again", priority: 0).serialized()
        try client.association.send(open, stream: id, protocolIdentifier: 50, now: link.now)
        try client.association.send(open, stream: 5, protocolIdentifier: 50, now: link.now)
        try client.association.send([0x09, 1, 2], stream: id, protocolIdentifier: 50, now: link.now)
        try client.association.send([1], stream: 12, protocolIdentifier: 51, now: link.now)
        try client.send(.text("still fine"), on: id, now: link.now)
        #expect(link.run(for: .seconds(5)) { Self.messages(link, at: 1).count == 1 })
        #expect(server.dropped == 4)
        #expect(link.events[1].filter { if case .opened = $0 { true } else { false } }.count == 1)
    }
}
