import Dispatch
import MeetKitTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import Transport

#if canImport(Glibc)
    import Glibc
#endif

/// The SwiftNIO driver on its own, with two tiny machines: one that echoes every datagram
/// and one that sends a burst and keeps what comes back.
@Suite("UDP driver")
struct UDPDriverTests {
    /// A counter shared between a machine on its loop and the test.
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Echoes each datagram to where it came from; counts the driver's pumps (each one
    /// polls until the machine says to wait, exactly once).
    final class Echo: DatagramMachine {
        private var out: [Datagram] = []
        let pumps: Counter
        init(pumps: Counter) { self.pumps = pumps }
        func handleDatagram(
            _ data: inout [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
        ) {
            out.append(Datagram(from: local, to: source, data: data))
        }
        func handleTimeout(now: Duration) {}
        func pollOutput() -> MachineOutput<Never> {
            if !out.isEmpty { return .transmit(out.removeFirst()) }
            pumps.value.add(1, ordering: .relaxed)
            return .wait(until: nil)
        }
    }

    /// Sends what it is given, keeps what it receives.
    final class Client: DatagramMachine {
        var out: [Datagram] = []
        var received: [[UInt8]] = []
        func handleDatagram(
            _ data: inout [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
        ) {
            received.append(data)
        }
        func handleTimeout(now: Duration) {}
        func pollOutput() -> MachineOutput<Never> {
            out.isEmpty ? .wait(until: nil) : .transmit(out.removeFirst())
        }
    }

    /// An echo machine on an event loop of its own (its pumps counted), a client, both on
    /// loopback, and how to close them.
    static func echoAndClient(readInterval: Duration? = nil, loopback: IPAddress = IPAddress("127.0.0.1")!)
        async throws -> (UDPDriver<Echo>, UDPDriver<Client>, Counter, @Sendable () async throws -> Void)
    {
        let echoLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pumps = Counter()
        let echo = try await UDPDriver<Echo>.start(
            localAddresses: [loopback], group: echoLoop, readInterval: readInterval,
            makeMachine: { Echo(pumps: pumps) })
        let client = try await UDPDriver<Client>.start(localAddresses: [loopback], makeMachine: { Client() })
        return (
            echo, client, pumps,
            {
                await client.close()
                await echo.close()
                try await echoLoop.shutdownGracefully()
            }
        )
    }

    /// What `client` received once it has `count` datagrams (or after 10 s, a safety net,
    /// not a timing assertion).
    static func received(_ count: Int, by client: UDPDriver<Client>) async throws -> [[UInt8]] {
        var got: [[UInt8]] = []
        let end = ContinuousClock.now + .seconds(10)
        while got.count < count, ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(20))
            got = try await client.perform { machine, _ in machine.received }
        }
        return got
    }

    /// A received datagram's source is read from the socket address's bytes: the same
    /// address as its text gives, IPv4 and IPv6, and back.
    @Test func socketAddressesConvertBothWays() throws {
        for (text, port) in [
            ("192.0.2.1", 5004), ("127.0.0.1", 1), ("255.255.255.254", 65535), ("2001:db8::1:2", 443),
            ("::1", 9), ("fe80::a:b:c:d", 50000),
        ] {
            let nio = try SocketAddress(ipAddress: text, port: port)
            let address = try #require(TransportAddress(nio: nio))
            #expect(address == TransportAddress(ip: try #require(IPAddress(text)), port: UInt16(port)), "\(text)")
            #expect(try address.nioAddress() == nio, "\(text)")
            // As the driver's own reads get it: in a sockaddr_storage.
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { b in
                switch nio {
                case .v4(let a): withUnsafeBytes(of: a.address) { b.copyMemory(from: $0) }
                case .v6(let a): withUnsafeBytes(of: a.address) { b.copyMemory(from: $0) }
                case .unixDomainSocket: break
                }
            }
            #expect(TransportAddress(storage) == address, "\(text)")
        }
        var unix = sockaddr_storage()
        unix.ss_family = sa_family_t(AF_UNIX)
        #expect(TransportAddress(unix) == nil)
        #expect(TransportAddress(nio: try SocketAddress(unixDomainSocketPath: "/tmp/x")) == nil)
    }

    /// 48 datagrams waiting in a socket are read in batches (recvmmsg, up to 16 per call and
    /// 16 calls per wakeup) and handed to the machine one by one, and their outputs are dealt
    /// with once per wakeup, not once per datagram: a pump or a few (each of which may wake
    /// an event consumer) instead of 48. Every datagram is still answered, in order.
    @Test func aBurstOfDatagramsIsPumpedOncePerRead() async throws {
        let (echo, client, pumps, close) = try await Self.echoAndClient()
        let (from, to) = (client.localAddresses[0], echo.localAddresses[0])

        // Hold the echo side's loop until the whole burst waits in its socket (a loopback
        // send has delivered when it returns, and `perform` returns after sending).
        let gate = DispatchSemaphore(value: 0)
        let held = echo.eventLoop.submit { gate.wait() }
        let before = pumps.value.load(ordering: .relaxed)
        try await client.perform { machine, _ in
            machine.out = (0..<48).map { Datagram(from: from, to: to, data: [UInt8($0)]) }
        }
        gate.signal()
        try await held.get()
        let got = try await Self.received(48, by: client)
        #expect(got == (0..<48).map { [UInt8($0)] }, "every datagram echoed, in order")
        let burstPumps = pumps.value.load(ordering: .relaxed) - before
        #expect(burstPumps >= 1 && burstPumps <= 6, "\(burstPumps) pumps for 48 datagrams")
        try await close()
    }

    /// With a read interval, datagrams that keep coming wait in the socket and are read many
    /// per wakeup: 100 sent one at a time, about 2 ms apart, reach the machine in order in
    /// a few reads (one per 200 ms at most), where without it each is read on its own.
    @Test func aReadIntervalReadsManyDatagramsPerWakeup() async throws {
        let (echo, client, pumps, close) = try await Self.echoAndClient(readInterval: .milliseconds(200))
        let (from, to) = (client.localAddresses[0], echo.localAddresses[0])
        let before = pumps.value.load(ordering: .relaxed)
        for n in 0..<100 {
            try await client.perform { machine, _ in machine.out.append(Datagram(from: from, to: to, data: [UInt8(n)]))
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        let got = try await Self.received(100, by: client)
        #expect(got == (0..<100).map { [UInt8($0)] }, "every datagram echoed, in order")
        // One read per 200 ms: ~2 for the nominal 200 ms of sending; 25 would take 5 s.
        let reads = pumps.value.load(ordering: .relaxed) - before
        #expect(reads >= 1 && reads <= 25, "\(reads) reads for 100 datagrams")
        // The echo side read its socket itself (recvmmsg into its own buffers) while
        // datagrams kept coming; NIO read only what woke an idle socket.
        let (directly, byNIO) = try await echo.datagramsRead()
        #expect(directly + byNIO == 100 && directly > byNIO, "\(directly) read directly, \(byNIO) by NIO")
        let clientReads = try await client.datagramsRead()
        #expect(clientReads.directly == 0 && clientReads.byNIO == 100, "without an interval NIO reads")
        try await close()
    }

    /// A socket that stays empty for a few read intervals is idle: NIO waits for it and reads
    /// the next datagram as it comes, instead of the driver looking every interval.
    @Test func anIdleSocketIsLeftToNIO() async throws {
        let (echo, client, _, close) = try await Self.echoAndClient(readInterval: .milliseconds(20))
        let (from, to) = (client.localAddresses[0], echo.localAddresses[0])
        for n in 0..<3 {
            try await client.perform { machine, _ in machine.out.append(Datagram(from: from, to: to, data: [UInt8(n)]))
            }
            // Far longer than 4 empty reads of 20 ms.
            try await Task.sleep(for: .milliseconds(300))
        }
        let got = try await Self.received(3, by: client)
        #expect(got == [[0], [1], [2]])
        let (directly, byNIO) = try await echo.datagramsRead()
        #expect(directly == 0 && byNIO == 3, "\(directly) read directly, \(byNIO) by NIO")
        try await close()
    }

    /// The driver's own reads over IPv6: every datagram echoed, in order, with the right
    /// source (the echo answers it).
    @Test func aReadIntervalReadsOverIPv6() async throws {
        let (echo, client, _, close) = try await Self.echoAndClient(
            readInterval: .milliseconds(50), loopback: IPAddress("::1")!)
        let (from, to) = (client.localAddresses[0], echo.localAddresses[0])
        for n in 0..<40 {
            try await client.perform { machine, _ in machine.out.append(Datagram(from: from, to: to, data: [UInt8(n)]))
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        let got = try await Self.received(40, by: client)
        #expect(got == (0..<40).map { [UInt8($0)] }, "every datagram echoed, in order")
        let (directly, byNIO) = try await echo.datagramsRead()
        #expect(directly + byNIO == 40 && directly > 0, "\(directly) read directly, \(byNIO) by NIO")
        try await close()
    }
}
