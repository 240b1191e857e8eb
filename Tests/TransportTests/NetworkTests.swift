import MeetKitTestSupport
import Testing

@testable import Transport

@Suite("Demultiplexing and the simulated network")
struct NetworkTests {
    @Test func rfc7983Demultiplexing() {
        #expect(DatagramKind([0x00, 0x01]) == .stun)
        #expect(DatagramKind([22, 254, 253]) == .dtls)  // DTLS handshake record
        #expect(DatagramKind([0x80, 111]) == .rtp)
        #expect(DatagramKind([0x81, 200]) == .rtp)  // RTCP SR
        #expect(DatagramKind([0x40]) == .turnChannel)
        #expect(DatagramKind([UInt8]()) == .unknown)
        #expect(DatagramKind([0xFF]) == .unknown)
    }

    /// Sends `count` numbered datagrams from A to B and returns what B received, in order.
    static func transfer(
        seed: UInt64, link: SimulatedNetwork.LinkConditions, count: Int = 2000, size: Int = 100,
        spacing: Duration = .milliseconds(1)
    ) -> (received: [Int], times: [Duration], net: SimulatedNetwork) {
        let net = SimulatedNetwork(seed: seed)
        let a = TransportAddress("192.0.2.1:1000")!
        let b = TransportAddress("192.0.2.2:2000")!
        net.addHost(a.ip, link: link)
        net.addHost(b.ip)
        var received: [Int] = []
        var times: [Duration] = []
        for i in 0..<count {
            net.advance(to: spacing * i)
            net.send(
                .init(from: a, to: b, data: [UInt8(i >> 8), UInt8(i & 0xFF)] + [UInt8](repeating: 0, count: size - 2)))
            while let (time, d) = net.receive(until: spacing * i) {
                received.append(Int(d.data[0]) << 8 | Int(d.data[1]))
                times.append(time)
            }
        }
        while let (time, d) = net.receive(until: .seconds(3600)) {
            received.append(Int(d.data[0]) << 8 | Int(d.data[1]))
            times.append(time)
        }
        return (received, times, net)
    }

    @Test func sameSeedSameRun() {
        let link = SimulatedNetwork.LinkConditions(
            latency: .milliseconds(20), jitter: .milliseconds(15), loss: 0.1, reorder: 0.05, duplicate: 0.02)
        let one = Self.transfer(seed: 42, link: link)
        let two = Self.transfer(seed: 42, link: link)
        let other = Self.transfer(seed: 43, link: link)
        #expect(one.received == two.received && one.times == two.times)
        #expect(one.received != other.received)
    }

    @Test func lossReorderDuplication() {
        let lossy = Self.transfer(seed: 1, link: .init(loss: 0.3))
        let rate = 1 - Double(lossy.received.count) / 2000
        #expect(abs(rate - 0.3) < 0.04, "loss \(rate)")
        let bursty = Self.transfer(seed: 1, link: .init(burstEnter: 0.02, burstExit: 0.2))
        let lost = Set(0..<2000).subtracting(bursty.received).sorted()
        let runs = zip(lost, lost.dropFirst()).filter { $1 == $0 + 1 }.count
        #expect(lost.count > 100 && runs > lost.count / 2, "burst loss comes in runs")
        let reordered = Self.transfer(seed: 1, link: .init(reorder: 0.1, reorderDelay: .milliseconds(30)))
        let inversions = zip(reordered.received, reordered.received.dropFirst()).filter { $0 > $1 }.count
        #expect(inversions > 100 && reordered.received.count == 2000)
        let duplicated = Self.transfer(seed: 1, link: .init(duplicate: 0.1))
        #expect(duplicated.received.count > 2100 && Set(duplicated.received).count == 2000)
    }

    @Test func latencyJitterAndBandwidth() {
        let slow = Self.transfer(seed: 2, link: .init(latency: .milliseconds(50)), count: 10)
        #expect(slow.times.first == .milliseconds(51), "50 ms sender link + 1 ms receiver link")
        // 1 Mbit/s with 1000-byte datagrams every ms (8 Mbit/s offered): the queue grows to
        // its 1 s limit, then drops; what gets through is close to 1 Mbit/s.
        let capped = Self.transfer(
            seed: 2, link: .init(bandwidth: 1_000_000, queueLimit: .milliseconds(200)), count: 2000, size: 1000)
        let seconds = (capped.times.last! - capped.times.first!).components.seconds
        let throughput = Double(capped.received.count * 1028 * 8) / Double(max(1, seconds))
        #expect(throughput > 800_000 && throughput < 1_200_000, "throughput \(throughput)")
        #expect(capped.net.dropped > 1000)
        // Jitter spreads arrival times within [latency, latency + jitter] per link.
        let jittery = Self.transfer(
            seed: 3, link: .init(latency: .milliseconds(30), jitter: .milliseconds(10)), count: 500)
        let delays = jittery.times.enumerated().map { $0.element - .milliseconds(jittery.received[$0.offset]) }
        #expect(delays.min()! >= .milliseconds(31) && delays.max()! <= .milliseconds(41))
        #expect(delays.max()! - delays.min()! > .milliseconds(5), "jitter spreads delays")
    }
}
