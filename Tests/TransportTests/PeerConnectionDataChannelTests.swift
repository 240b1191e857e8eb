import Codec
import MeetKitTestSupport
import Testing

@testable import Transport

/// Data channels through two PeerConnectionCores on the simulated network: SDP, ICE,
/// DTLS and SCTP all real, in one BUNDLE with audio or alone.
@Suite("PeerConnection data channels over the simulated network")
struct PeerConnectionDataChannelTests {
    final class Side {
        let node: SimulatedMachine<PeerConnectionCore>
        var pc: PeerConnectionCore { node.machine }
        var events: [DataChannelEndpoint.Event] = []
        var audioFrames = 0

        init(_ address: String) throws {
            node = SimulatedMachine(try PeerConnectionCore(), address: TransportAddress(address)!)
            node.onEvent = { [unowned self] e, _ in
                switch e {
                case .dataChannel(let d): events.append(d)
                case .frame: audioFrames += 1
                default: break
                }
            }
        }

        func opened(label: String, remote: Bool) -> Int? {
            for e in events {
                if case .opened(let h, _, label, _, remote) = e { return h }
            }
            return nil
        }

        var messages: [DataChannelMessage] {
            events.compactMap { if case .message(_, let m) = $0 { m } else { nil } }
        }
    }

    static func connect(withAudio: Bool) throws -> (SimulatedNetwork, Side, Side, Int) {
        let net = SimulatedNetwork(seed: 41)
        net.addHost(IPAddress("203.0.113.1")!, link: .init(latency: .milliseconds(15)))
        net.addHost(IPAddress("203.0.113.2")!, link: .init(latency: .milliseconds(15)))
        let a = try Side("203.0.113.1:5000")
        let b = try Side("203.0.113.2:5000")
        a.pc.start(localAddresses: [a.node.address], now: .zero)
        b.pc.start(localAddresses: [b.node.address], now: .zero)
        if withAudio { a.pc.addTransceiver(.audio) }
        let chat = try a.pc.createDataChannel(label: "chat", options: .init(protocol: "text"))
        let offer = try SessionDescription(parsing: a.pc.createOffer().serialized())
        #expect(offer.media.map(\.kind) == (withAudio ? ["audio", "application"] : ["application"]))
        #expect(offer.bundleGroups.first?.count == offer.media.count, "the data section is in the BUNDLE")
        try a.pc.setLocalDescription(offer)
        try b.pc.setRemoteDescription(offer, now: .zero)
        let answer = try SessionDescription(parsing: try b.pc.createAnswer().serialized())
        #expect(answer.media.last?.kind == "application" && answer.media.last?.port == 9)
        try b.pc.setLocalDescription(answer)
        try a.pc.setRemoteDescription(answer, now: .zero)
        return (net, a, b, chat)
    }

    @Test(arguments: [false, true])
    func channelsBothWays(withAudio: Bool) throws {
        let (net, a, b, chat) = try Self.connect(withAudio: withAudio)
        #expect(
            net.run([a.node, b.node], until: .seconds(5)) {
                b.opened(label: "chat", remote: true) != nil && a.opened(label: "chat", remote: false) != nil
            })
        let chatAtB = try #require(b.opened(label: "chat", remote: true))
        try a.pc.sendData(.text("salut"), channel: chat, now: net.now)
        try b.pc.sendData(.binary([9, 8, 7]), channel: chatAtB, now: net.now)
        // The answerer opens one too (odd id: it is the DTLS server here).
        let files = try b.pc.createDataChannel(label: "files", options: .init(ordered: false))
        #expect(net.run([a.node, b.node], until: .seconds(10)) { a.opened(label: "files", remote: true) != nil })
        let big = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try b.pc.sendData(.binary(big), channel: files, now: net.now)
        #expect(net.run([a.node, b.node], until: .seconds(20)) { a.messages.count == 2 && b.messages.count == 1 })
        #expect(b.messages == [.text("salut")])
        #expect(a.messages == [.binary([9, 8, 7]), .binary(big)])
        #expect(throws: PeerConnectionError.dataChannel(.messageTooLarge(size: 262_145, limit: 262_144))) {
            try a.pc.sendData(.binary([UInt8](repeating: 0, count: 262_145)), channel: chat, now: net.now)
        }
        // Closed by a: both sides see it.
        a.pc.closeDataChannel(chat, now: net.now)
        #expect(
            net.run([a.node, b.node], until: .seconds(30)) {
                a.events.contains(.closed(handle: chat)) && b.events.contains(.closed(handle: chatAtB))
            })
        #expect(net.stalledAt == nil, "no endpoint deadline spun")
    }

    /// Through 10 % loss on one side's link, ordered reliable messages arrive complete and
    /// in order.
    @Test func reliableThroughLoss() throws {
        let (net, a, b, chat) = try Self.connect(withAudio: false)
        #expect(net.run([a.node, b.node], until: .seconds(20)) { a.opened(label: "chat", remote: false) != nil })
        net.setLink(IPAddress("203.0.113.1")!, .init(latency: .milliseconds(15), loss: 0.1))
        let sent = (0..<200).map { i in
            DataChannelMessage.text(String(repeating: "\(i % 10)", count: 1 + i * 37 % 3000))
        }
        for m in sent { try a.pc.sendData(m, channel: chat, now: net.now) }
        #expect(net.run([a.node, b.node], until: .seconds(120)) { b.messages.count == sent.count })
        #expect(b.messages == sent)
        #expect((a.pc.dataChannels?.association.statistics.chunksRetransmitted ?? 0) > 0, "losses were repaired")
    }
}
