import Foundation
import MeetKitTestSupport
import Testing

@testable import MeetKitSCTP

/// SCTP associations over a simulated link in virtual time (RFC 9260, RFC 3758, RFC 6525).
@Suite("SCTP association")
struct SCTPAssociationTests {
    /// A message of `size` bytes whose content says which it is.
    static func message(_ index: Int, size: Int) -> [UInt8] {
        var random = SplitMix64(seed: UInt64(index) &+ 99)
        return (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) }
    }

    @Test func handshakeAndMessagesBothWays() throws {
        let link = SCTPLink()
        #expect(link.connect())
        #expect(link.events[0].first == .established && link.events[1].first == .established)
        try link.sides[0].send(Array("hello".utf8), stream: 1, protocolIdentifier: 51, now: link.now)
        try link.sides[1].send([1, 2, 3], stream: 2, protocolIdentifier: 53, now: link.now)
        #expect(link.run(for: .seconds(5)) { link.messages(at: 1).count == 1 && link.messages(at: 0).count == 1 })
        #expect(
            link.messages(at: 1).first.map { $0.stream == 1 && $0.ppid == 51 && $0.data == Array("hello".utf8) } == true
        )
        #expect(link.messages(at: 0).first.map { $0.stream == 2 && $0.ppid == 53 && $0.data == [1, 2, 3] } == true)
        // Errors before anything is sent.
        #expect(throws: SCTPSendError.emptyMessage) {
            try link.sides[0].send([], stream: 1, protocolIdentifier: 51, now: link.now)
        }
        let fresh = SCTPAssociation()
        #expect(throws: SCTPSendError.notEstablished) {
            try fresh.send([1], stream: 0, protocolIdentifier: 51, now: .zero)
        }
    }

    /// Both sides send INIT at once (RFC 9260 §5.2.1), as WebRTC stacks do: one association.
    @Test func initCollision() {
        let link = SCTPLink()
        #expect(link.connect(both: true))
        #expect(link.sides[0].peerTag == link.sides[1].localTag && link.sides[1].peerTag == link.sides[0].localTag)
    }

    /// 1 000 ordered reliable messages of 1 B–256 KiB (sizes spread evenly over the powers of
    /// two) through 10 % loss and reordering: all arrive, in order, byte-equal.
    @Test func orderedReliableThroughLossAndReordering() throws {
        let link = SCTPLink(.init(delay: .milliseconds(20), jitter: .milliseconds(15), loss: 0.10), seed: 3)
        #expect(link.connect())
        var random = SplitMix64(seed: 11)
        let sizes = (0..<1000).map { _ in max(1, Int(pow2(Double.random(in: 0...18, using: &random)))) }
        var sent: [[UInt8]] = []
        var next = 0
        // Queued as the sender's buffer drains (no more than 1 MiB waiting), as an
        // application with back-pressure would.
        let done = link.run(for: .seconds(3600)) {
            while next < sizes.count, link.sides[0].bufferedAmount(stream: 0) < 1 << 20 {
                let m = Self.message(next, size: sizes[next])
                try? link.sides[0].send(m, stream: 0, protocolIdentifier: 53, now: link.now)
                sent.append(m)
                next += 1
            }
            return link.messages(at: 1).count == sizes.count
        }
        #expect(done)
        let got = link.messages(at: 1).map(\.data)
        #expect(got.count == sent.count)
        #expect(got == sent, "every message complete, in order, byte-equal")
        let stats = link.sides[0].statistics
        #expect(stats.chunksRetransmitted > 0 && stats.fastRetransmits > 0, "\(stats)")
        #expect(link.lost[0] > 0 && link.lost[1] > 0)
    }

    /// Unordered messages with maxRetransmits 0 on a lossy link: a subset arrives, nothing
    /// is sent twice, and FORWARD TSN keeps the receiver moving (RFC 3758).
    @Test func unorderedWithoutRetransmissions() throws {
        let link = SCTPLink(.init(delay: .milliseconds(10), loss: 0.2), seed: 5)
        #expect(link.connect())
        for i in 0..<300 {
            try link.sides[0].send(
                Self.message(i, size: 200 + i % 3 * 1500), stream: 3, protocolIdentifier: 53, unordered: true,
                reliability: .maxRetransmits(0), now: link.now)
            link.run(for: .milliseconds(5))
        }
        link.run(for: .seconds(300)) { link.sides[0].sender.chunks.count == 0 }
        let got = link.messages(at: 1)
        #expect(got.count > 100 && got.count < 300, "\(got.count) of 300")
        #expect(link.sides[0].statistics.chunksRetransmitted == 0)
        #expect(got.count + link.sides[0].statistics.messagesAbandoned >= 300, "delivered or abandoned, none stuck")
        #expect(link.sides[0].statistics.forwardTSNsSent > 0 && link.sides[1].statistics.forwardTSNsReceived > 0)
        #expect(
            link.run(for: .seconds(300)) { link.sides[0].sender.chunks.count == 0 }, "the sender lets go of everything")
        let expected = Set((0..<300).map { Self.message($0, size: 200 + $0 % 3 * 1500) })
        #expect(got.allSatisfy { expected.contains($0.data) }, "what arrives is whole")
        // A reliable message afterwards still gets through.
        try link.sides[0].send([7], stream: 3, protocolIdentifier: 53, now: link.now)
        #expect(link.run(for: .seconds(30)) { link.messages(at: 1).last?.data == [7] })
    }

    /// maxPacketLifeTime: messages older than their lifetime are abandoned (FORWARD TSN
    /// seen) when the path loses them; ordered delivery resumes past them.
    @Test func lifetimeAbandonsLateMessages() throws {
        let link = SCTPLink(.init(delay: .milliseconds(50), loss: 0.1), seed: 9)
        #expect(link.connect())
        for i in 0..<100 {
            try link.sides[0].send(
                Self.message(i, size: 2000), stream: 4, protocolIdentifier: 53,
                reliability: .lifetime(.milliseconds(250)), now: link.now)
            link.run(for: .milliseconds(30))
        }
        link.run(for: .seconds(300)) { link.sides[0].sender.chunks.count == 0 }
        let got = link.messages(at: 1).map(\.data)
        let all = (0..<100).map { Self.message($0, size: 2000) }
        let abandoned = link.sides[0].statistics.messagesAbandoned
        #expect(got.count < 100 && got.count > 30, "\(got.count) of 100")
        #expect(abandoned > 0 && link.sides[1].statistics.forwardTSNsReceived > 0)
        // A message abandoned while its last fragment was already on the way may arrive too.
        #expect(got.count + abandoned >= 100, "every message delivered or abandoned, none stuck")
        #expect(Set(got).count == got.count, "none twice")
        // In order: each received message comes later in the sent order than the one before.
        let positions = got.compactMap { all.firstIndex(of: $0) }
        #expect(positions.count == got.count && positions == positions.sorted())
    }

    /// Closing a channel resets its stream (RFC 6525): the peer hears of it after the last
    /// message, and the id is used again from sequence number 0.
    @Test func streamResetAndReuse() throws {
        let link = SCTPLink(.init(delay: .milliseconds(5), loss: 0.05), seed: 13)
        #expect(link.connect())
        for i in 0..<20 { try link.sides[0].send([UInt8(i)], stream: 6, protocolIdentifier: 53, now: link.now) }
        link.sides[0].resetStreams([6], now: link.now)
        #expect(throws: SCTPSendError.streamClosing(6)) {
            try link.sides[0].send([1], stream: 6, protocolIdentifier: 53, now: link.now)
        }
        #expect(link.run(for: .seconds(30)) { link.events[0].contains(.outgoingStreamsReset([6])) })
        let atB = link.events[1]
        let resetAt = try #require(atB.firstIndex(of: .incomingStreamsReset([6])))
        let messagesBefore = atB[..<resetAt].filter { if case .message = $0 { true } else { false } }.count
        #expect(messagesBefore == 20, "all 20 messages before the reset")
        try link.sides[0].send([42], stream: 6, protocolIdentifier: 53, now: link.now)
        #expect(link.run(for: .seconds(10)) { link.messages(at: 1).last?.data == [42] })
        #expect(link.run(for: .seconds(10)) { link.sides[0].sender.chunks.count == 0 })
    }

    /// A 2 Mbit/s bottleneck with a 40-packet queue: goodput close to the link rate, the
    /// window backs off on queue drops instead of flooding it.
    @Test func congestionControlFillsTheLink() throws {
        let rate = 250_000  // bytes per second
        let link = SCTPLink(.init(delay: .milliseconds(25), rate: rate, queueLimit: 40), seed: 17)
        #expect(link.connect())
        let start = link.now
        let total = 4 << 20
        var queued = 0
        var received = 0
        let done = link.run(for: .seconds(120)) {
            while queued < total, link.sides[0].bufferedAmount(stream: 0) < 256 << 10 {
                try? link.sides[0].send(
                    Self.message(queued, size: 16 << 10), stream: 0, protocolIdentifier: 53, now: link.now)
                queued += 16 << 10
            }
            received = link.messages(at: 1).reduce(0) { $0 + $1.data.count }
            return received == total
        }
        #expect(done)
        let seconds = Double((link.now - start) / .milliseconds(1)) / 1000
        let goodput = Double(total) / seconds
        #expect(goodput > 0.75 * Double(rate), "goodput \(Int(goodput)) B/s on a \(rate) B/s link")
        #expect(link.queueDrops[0] > 0, "the window grew until the queue overflowed")
        #expect(
            Double(link.queueDrops[0]) < 0.05 * Double(link.sent[0]),
            "\(link.queueDrops[0]) drops of \(link.sent[0]) packets")
    }

    /// A peer that never answers: the association gives up with a typed reason, within
    /// the retransmission limits, with bounded memory.
    @Test func silentPeerTimesOut() throws {
        let link = SCTPLink(seed: 21)
        #expect(link.connect())
        try link.sides[0].send([UInt8](repeating: 1, count: 10_000), stream: 0, protocolIdentifier: 53, now: link.now)
        link.filter = { from, packet in from == 1 ? nil : packet }
        #expect(link.run(for: .seconds(3600)) { link.events[0].contains(.closed(.timedOut)) })
        #expect(link.sides[0].state == .closed)
        // An INIT nobody answers gives up too.
        let lonely = SCTPLink(seed: 22)
        lonely.filter = { _, _ in nil }
        lonely.sides[0].connect(now: .zero)
        #expect(lonely.run(for: .seconds(3600)) { lonely.events[0] == [.closed(.timedOut)] })
    }

    /// Wrong verification tags, bad checksums and garbage are dropped and counted; the
    /// association carries on.
    @Test func hostilePacketsAreDroppedAndCounted() throws {
        let link = SCTPLink(seed: 23)
        #expect(link.connect())
        let b = link.sides[1]
        let before = b.statistics.packetsDropped
        let wrongTag = SCTPPacket(
            sourcePort: 5000, destinationPort: 5000, verificationTag: b.localTag &+ 1,
            chunks: [
                .data(
                    SCTPDataChunk(
                        tsn: 1, streamIdentifier: 0, streamSequenceNumber: 0, payloadProtocolIdentifier: 53,
                        userData: [1][...]))
            ])
        b.handlePacket(wrongTag.serialized(), now: link.now)
        var corrupt = SCTPPacket(
            sourcePort: 5000, destinationPort: 5000, verificationTag: b.localTag, chunks: [.cookieAck]
        ).serialized()
        corrupt[12] ^= 0xFF
        b.handlePacket(corrupt, now: link.now)
        b.handlePacket([1, 2, 3], now: link.now)
        var random = SplitMix64(seed: 5)
        for _ in 0..<1000 {
            b.handlePacket((0..<64).map { _ in UInt8.random(in: 0...255, using: &random) }, now: link.now)
        }
        #expect(b.statistics.packetsDropped == before + 1003)
        #expect(link.messages(at: 1).isEmpty)
        try link.sides[0].send([9], stream: 0, protocolIdentifier: 53, now: link.now)
        #expect(link.run(for: .seconds(5)) { link.messages(at: 1).map(\.data) == [[9]] })
    }

    /// SHUTDOWN after everything is acknowledged; ABORT at once.
    @Test func shutdownAndAbort() throws {
        let link = SCTPLink(.init(loss: 0.1), seed: 29)
        #expect(link.connect())
        for i in 0..<50 {
            try link.sides[0].send(Self.message(i, size: 2000), stream: 0, protocolIdentifier: 53, now: link.now)
        }
        link.sides[0].shutdown(now: link.now)
        #expect(throws: SCTPSendError.notEstablished) {
            try link.sides[0].send([1], stream: 0, protocolIdentifier: 53, now: link.now)
        }
        #expect(
            link.run(for: .seconds(60)) {
                link.events[0].contains(.closed(.shutdown)) && link.events[1].contains(.closed(.shutdown))
            })
        #expect(link.messages(at: 1).count == 50, "everything queued went before the shutdown")
        let other = SCTPLink(seed: 31)
        #expect(other.connect())
        other.sides[1].abort(now: other.now)
        #expect(
            other.run(for: .seconds(5)) {
                other.events[0].contains { if case .closed(.abortedByPeer) = $0 { true } else { false } }
            })
        #expect(other.events[1].last == .closed(.aborted))
    }
}

private func pow2(_ x: Double) -> Double { exp2(x) }

/// Receive-side flow control: delivered messages count against the window until released.
@Suite("SCTP receive window held by the reader")
struct SCTPHeldWindowTests {
    @Test func aReaderThatDoesNotReadClosesTheWindow() throws {
        var configuration = SCTPConfiguration()
        configuration.holdsDeliveredUntilReleased = true
        let link = SCTPLink(.init(delay: .milliseconds(10), loss: 0.02), seed: 51, configuration: configuration)
        #expect(link.connect())
        let total = 6 << 20
        for i in 0..<(total >> 16) {
            try link.sides[0].send(
                SCTPAssociationTests.message(i, size: 1 << 16), stream: 0, protocolIdentifier: 53, now: link.now)
        }
        link.run(for: .seconds(30))
        let delivered = link.messages(at: 1).reduce(0) { $0 + $1.data.count }
        #expect(delivered > 0 && delivered <= configuration.receiveBufferSize, "\(delivered) bytes delivered unread")
        #expect(link.sides[1].receiver.window <= 0 + 65_536, "the window is (nearly) closed")
        #expect(link.sides[0].sender.chunks.count > 0, "the sender keeps the rest")
        // Reading: everything arrives, in order, byte-equal.
        var released = 0
        let done = link.run(for: .seconds(600)) {
            let now = link.messages(at: 1).reduce(0) { $0 + $1.data.count }
            if now > released {
                link.sides[1].releaseDelivered(now - released, now: link.now)
                released = now
            }
            return now == total
        }
        #expect(done)
        #expect(
            link.messages(at: 1).map(\.data)
                == (0..<(total >> 16)).map { SCTPAssociationTests.message($0, size: 1 << 16) })
    }
}

/// A message over the receiver's limit is dropped as its fragments arrive, with its stream
/// reported; other streams go on and the buffer is freed.
@Suite("SCTP oversized messages")
struct SCTPOversizedMessageTests {
    @Test func droppedAndReported() throws {
        var configuration = SCTPConfiguration()
        configuration.maxReceivedMessageSize = 100_000
        let link = SCTPLink(
            .init(delay: .milliseconds(5), jitter: .milliseconds(5), loss: 0.05), seed: 61, configuration: configuration
        )
        #expect(link.connect())
        try link.sides[0].send(
            SCTPAssociationTests.message(1, size: 300_000), stream: 2, protocolIdentifier: 53, now: link.now)
        try link.sides[0].send([1, 2, 3], stream: 3, protocolIdentifier: 53, now: link.now)
        try link.sides[0].send(
            SCTPAssociationTests.message(2, size: 99_000), stream: 4, protocolIdentifier: 53, now: link.now)
        #expect(
            link.run(for: .seconds(60)) { link.messages(at: 1).count == 2 && link.sides[0].sender.chunks.count == 0 })
        #expect(link.events[1].contains(.oversizedMessage(stream: 2)))
        #expect(link.messages(at: 1).map(\.stream).sorted() == [3, 4])
        #expect(link.messages(at: 1).first { $0.stream == 4 }?.data == SCTPAssociationTests.message(2, size: 99_000))
        #expect(link.sides[1].receiver.bufferedBytes == 0, "nothing of the dropped message is kept")
    }
}

/// Mutated real packets with a right checksum and tag, fed to a live association: it never
/// traps, holds no more than its buffer, and either carries on or ends with a reason.
@Suite("SCTP association under mutated packets")
struct SCTPMutationTests {
    @Test func mutatedPacketsNeverTrap() throws {
        let link = SCTPLink(.init(delay: .milliseconds(5)), seed: 71)
        #expect(link.connect())
        var captured: [[UInt8]] = []
        link.filter = { from, packet in
            if from == 0, captured.count < 200 { captured.append(packet) }
            return packet
        }
        for i in 0..<40 {
            try link.sides[0].send(
                SCTPAssociationTests.message(i, size: 100 + i * 300), stream: UInt16(i % 4), protocolIdentifier: 53,
                unordered: i % 3 == 0, now: link.now)
        }
        link.run(for: .seconds(5))
        link.filter = nil
        #expect(captured.count > 20)
        var random = SplitMix64(seed: 9)
        let receiver = link.sides[1]
        for round in 0..<4000 {
            var bytes = captured[Int.random(in: 0..<captured.count, using: &random)]
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                bytes[Int.random(in: 12..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            SCTPPacket.stampChecksum(&bytes)
            receiver.handlePacket(bytes, now: link.now)
            if round % 100 == 0 { link.run(for: .milliseconds(20)) }
            #expect(receiver.receiver.bufferedBytes <= 1 << 20 + 1172)
        }
        // Either it still carries messages, or it ended with a reason (a mutation may be an
        // ABORT, a SHUTDOWN, a FORWARD TSN far ahead…): never stuck without one.
        let before = link.messages(at: 1).count
        if receiver.state == .established, link.sides[0].state == .established {
            try link.sides[0].send([42], stream: 9, protocolIdentifier: 53, now: link.now)
        }
        let settled = link.run(for: .seconds(600)) {
            link.messages(at: 1).count > before
                || link.events.contains { $0.contains { if case .closed = $0 { true } else { false } } }
        }
        #expect(settled, "neither delivered nor closed")
    }
}

/// HEARTBEAT (RFC 9260 §8.3): an idle association checks its peer, and gives up on one
/// that stopped answering.
@Suite("SCTP heartbeats")
struct SCTPHeartbeatTests {
    @Test func idleAssociationsHeartbeatAndNoticeASilentPeer() throws {
        var configuration = SCTPConfiguration()
        configuration.heartbeatInterval = .seconds(5)
        let link = SCTPLink(.init(delay: .milliseconds(30)), seed: 81, configuration: configuration)
        #expect(link.connect())
        var heartbeats = 0
        var acks = 0
        link.filter = { from, bytes in
            if let p = try? SCTPPacket(parsing: bytes) {
                for c in p.chunks {
                    if case .heartbeat = c, from == 0 { heartbeats += 1 }
                    if case .heartbeatAck = c, from == 1 { acks += 1 }
                }
            }
            return bytes
        }
        link.run(for: .seconds(60))
        #expect(heartbeats >= 5 && acks == heartbeats, "\(heartbeats) heartbeats, \(acks) answered")
        #expect(link.sides.allSatisfy { $0.state == .established })
        // The peer goes silent: unanswered heartbeats end the association.
        link.filter = { from, bytes in from == 1 ? nil : bytes }
        #expect(link.run(for: .seconds(600)) { link.events[0].contains(.closed(.timedOut)) })
    }
}
