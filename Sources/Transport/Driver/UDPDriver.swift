import NIOCore
import NIOPosix

/// A sans-IO machine that a ``UDPDriver`` runs over real sockets (and the simulated
/// network runs in tests): inputs with the current time, and one output call.
public protocol DatagramMachine: AnyObject, SendableMetatype {
    /// What the machine reports.
    associatedtype Event
    /// A datagram arrived from `source` on the socket bound to `local`. `data` is the
    /// driver's receive buffer, lent for the call: the machine may decrypt in it in place
    /// (and must copy what it keeps).
    func handleDatagram(_ data: inout [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration)
    /// The machine's deadline passed.
    func handleTimeout(now: Duration)
    /// The machine's next output (see ``MachineOutput``): called after every input until
    /// it returns ``MachineOutput/wait(until:)``.
    func pollOutput() -> MachineOutput<Event>
}

extension DatagramMachine {
    /// Takes the machine's outputs until it says to wait — what every driver does after an
    /// input: datagrams go to `transmit`, events to `event`. Returns the deadline.
    @discardableResult
    public func drainOutputs(transmit: (Datagram) -> Void, event: (Event) -> Void) -> Duration? {
        while true {
            switch pollOutput() {
            case .transmit(let datagram): transmit(datagram)
            case .event(let e): event(e)
            case .wait(let until): return until
            }
        }
    }

    /// Hands the machine a copy of `data` (for callers without a buffer to lend).
    public func handleDatagram(
        _ data: [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) {
        var buffer = data
        handleDatagram(&buffer, from: source, to: local, now: now)
    }
}

/// Runs a ``DatagramMachine`` over UDP sockets on one SwiftNIO event loop: binds the
/// sockets, hands the machine every datagram with the current time, fires its deadline,
/// sends the datagrams it hands out and gives its events to `onEvent`. Everything touching the machine runs on the loop, so the machine
/// needs no locks; ``perform(_:)`` is the async door into it. ``close()`` releases every
/// socket.
///
/// ```swift
/// let driver = try await UDPDriver.start(localAddresses: [ip]) { SecureTransportCore(...) }
/// try await driver.perform { core, now in try core.sendRTP(packet) }
/// ```
public final class UDPDriver<Machine: DatagramMachine>: @unchecked Sendable {
    private final class State {
        let machine: Machine
        var channels: [TransportAddress: Channel] = [:]
        var timer: Scheduled<Void>?
        var timerDeadline: Duration?
        var closed = false
        /// Datagrams were handed to the machine since the last pump.
        var unpumped = false
        /// The buffer each received datagram is copied into and lent to the machine: one
        /// copy out of the socket's buffer, no allocation once it has grown.
        var receiveBuffer: [UInt8] = []
        /// Datagrams read by the driver itself (with a read interval), and by NIO.
        var datagramsReadDirectly = 0
        var datagramsReadByNIO = 0
        init(machine: Machine) { self.machine = machine }
    }

    /// The event loop everything runs on.
    public let eventLoop: any EventLoop
    /// The addresses the sockets are bound to.
    public private(set) var localAddresses: [TransportAddress] = []
    private let state: NIOLoopBound<State>
    private let origin: NIODeadline
    private let onEvent: @Sendable (Machine.Event) -> Void

    private init(machine: Machine, eventLoop: any EventLoop, onEvent: @escaping @Sendable (Machine.Event) -> Void) {
        self.eventLoop = eventLoop
        state = NIOLoopBound(State(machine: machine), eventLoop: eventLoop)
        origin = .now()
        self.onEvent = onEvent
    }

    /// Creates the machine on the loop, binds a socket on each address (port 0: any), and
    /// calls `started` with the bound addresses. `onEvent` gets each event the machine
    /// hands out, on the loop (e.g. to yield it to an `AsyncStream`).
    ///
    /// With `readInterval`, a socket is read at most once per interval while datagrams keep
    /// coming (they wait in its buffer meanwhile; an idle socket is read as soon as one
    /// arrives): one wakeup for many datagrams instead of one each, for a receiver of many
    /// streams that can take that much more delay. The driver then binds the sockets and
    /// reads them itself (recvmmsg into buffers it keeps, sources from the socket address
    /// bytes); NIO reads only the datagram that wakes an idle socket, and sends.
    public static func start(
        localAddresses: [IPAddress], port: UInt16 = 0,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, readInterval: Duration? = nil,
        onEvent: @escaping @Sendable (Machine.Event) -> Void = { _ in },
        started: @escaping @Sendable (Machine, [TransportAddress], Duration) -> Void = { _, _, _ in },
        makeMachine: @escaping @Sendable () throws -> Machine
    ) async throws -> UDPDriver<Machine> {
        let loop = group.next()
        let driver = try await loop.submit {
            UDPDriver(machine: try makeMachine(), eventLoop: loop, onEvent: onEvent)
        }.get()
        do {
            for ip in localAddresses {
                let host = ip.description
                // Bound from the loop's thread (a loop in a network namespace binds there).
                let channel = try await loop.flatSubmit { () -> EventLoopFuture<Channel> in
                    let bootstrap = DatagramBootstrap(group: loop)
                        .channelOption(.socketOption(.so_reuseaddr), value: 1)
                        // A subscriber connection of a large room receives bursts from
                        // dozens of streams: a roomy socket buffer, several reads per wakeup.
                        .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
                        .channelOption(.maxMessagesPerRead, value: UInt(systemCallsPerRead))
                        // recvmmsg: up to 16 datagrams per system call, each with room for
                        // 4 KiB (NIO divides one receive buffer among the messages).
                        .channelOption(.datagramVectorReadMessageCount, value: datagramsPerSystemCall)
                        .channelOption(
                            .recvAllocator,
                            value: FixedSizeRecvByteBufferAllocator(capacity: datagramsPerSystemCall * datagramCapacity)
                        )
                        .channelOption(.autoRead, value: readInterval == nil)
                    // With a read interval the driver reads the socket itself (NIO only
                    // waits for it when it is idle), so it binds the socket NIO then takes.
                    let descriptor: Int32?
                    do {
                        descriptor = try readInterval.map { _ in try boundUDPSocket(ip, port: port) }
                    } catch {
                        return loop.makeFailedFuture(error)
                    }
                    let configured = bootstrap.channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                DriverHandler(
                                    driver: driver, readInterval: readInterval.map(TimeAmount.init),
                                    descriptor: descriptor))
                        }
                    }
                    return descriptor.map { configured.withBoundSocket($0) }
                        ?? configured.bind(host: host, port: Int(port))
                }.get()
                if readInterval != nil { channel.read() }  // the first read; each read asks for the next
                guard let local = channel.localAddress.flatMap(TransportAddress.init(nio:)) else {
                    try? await channel.close()
                    throw UDPDriverError.bindFailed(host)
                }
                try await loop.submit {
                    driver.state.value.channels[local] = channel
                    driver.localAddresses.append(local)
                }.get()
            }
        } catch {
            await driver.close()
            throw error
        }
        try await loop.submit {
            started(driver.state.value.machine, driver.localAddresses, driver.now())
            driver.pump()
        }.get()
        return driver
    }

    private func now() -> Duration {
        .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds) - Int64(origin.uptimeNanoseconds))
    }

    /// Runs `body` with the machine on its loop, then sends what it produced.
    public func perform<R: Sendable>(_ body: @escaping @Sendable (Machine, Duration) throws -> R) async throws -> R {
        try await eventLoop.submit {
            let state = self.state.value
            guard !state.closed else { throw UDPDriverError.closed }
            defer { self.pump() }
            return try body(state.machine, self.now())
        }.get()
    }

    /// Runs `body` with the machine on the loop, without waiting for it (for what needs no
    /// answer and may happen often, e.g. releasing consumed data channel bytes).
    public func schedule(_ body: @escaping @Sendable (Machine, Duration) -> Void) {
        eventLoop.execute {
            let state = self.state.value
            guard !state.closed else { return }
            body(state.machine, self.now())
            self.pump()
        }
    }

    /// One datagram for the machine. What it produces waits for ``readComplete()``: a busy
    /// socket hands over many datagrams per wakeup, and their transmits, events and the
    /// next deadline are then dealt with once — one wakeup of an event consumer per burst
    /// instead of one per datagram.
    fileprivate func received(
        _ data: UnsafeRawBufferPointer, from source: TransportAddress, on local: TransportAddress, directly: Bool
    ) {
        let state = self.state.value
        guard !state.closed else { return }
        if directly { state.datagramsReadDirectly += 1 } else { state.datagramsReadByNIO += 1 }
        state.receiveBuffer.overwrite(with: data)
        state.machine.handleDatagram(&state.receiveBuffer, from: source, to: local, now: now())
        state.unpumped = true
    }

    /// The datagrams read so far by the driver itself (with a read interval) and by NIO.
    func datagramsRead() async throws -> (directly: Int, byNIO: Int) {
        try await eventLoop.submit {
            let state = self.state.value
            return (state.datagramsReadDirectly, state.datagramsReadByNIO)
        }.get()
    }

    /// A socket has no more datagrams for now.
    fileprivate func readComplete() {
        let state = self.state.value
        guard state.unpumped else { return }
        pump()
    }

    /// Takes the machine's outputs until it says to wait: datagrams written (each socket
    /// flushed once), events handed on, the timer set to the deadline.
    private func pump() {
        let state = self.state.value
        guard !state.closed else { return }
        state.unpumped = false
        var written: [Channel] = []
        let deadline = state.machine.drainOutputs(
            transmit: { t in
                guard let channel = state.channels[t.from], let address = try? t.to.nioAddress() else { return }
                channel.write(
                    AddressedEnvelope(remoteAddress: address, data: channel.allocator.buffer(bytes: t.data)),
                    promise: nil)
                if !written.contains(where: { $0 === channel }) { written.append(channel) }
            }, event: onEvent)
        for channel in written { channel.flush() }
        guard deadline != state.timerDeadline else { return }
        state.timer?.cancel()
        state.timerDeadline = deadline
        state.timer = deadline.map { d in
            let nanos = d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
            return eventLoop.scheduleTask(deadline: origin + .nanoseconds(nanos)) { [self] in
                let state = self.state.value
                state.timerDeadline = nil
                state.machine.handleTimeout(now: self.now())
                self.pump()
            }
        }
    }

    /// Stops the timer and closes every socket. `beforeClose` runs on the loop first (to
    /// send a goodbye, e.g. DTLS close_notify).
    public func close(beforeClose: (@Sendable (Machine, Duration) -> Void)? = nil) async {
        let channels: [Channel] =
            (try? await eventLoop.submit {
                let state = self.state.value
                if let beforeClose, !state.closed {
                    beforeClose(state.machine, self.now())
                    self.pump()
                }
                state.closed = true
                state.timer?.cancel()
                defer { state.channels = [:] }
                return Array(state.channels.values)
            }.get()) ?? []
        for channel in channels { try? await channel.close() }
    }
}

/// recvmmsg calls per read of a socket, datagrams per call, and the room for each.
private let systemCallsPerRead = 16
let datagramsPerSystemCall = 16
let datagramCapacity = 4096
/// Empty reads in a row (one per read interval) after which a socket the driver reads
/// itself counts as idle: 4 intervals of 5 ms cover the 20 ms between two audio frames.
private let emptyReadsBeforeIdle = 4

/// Reads datagrams from one socket into the driver.
private final class DriverHandler<Machine: DatagramMachine>: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let driver: UDPDriver<Machine>
    var local: TransportAddress?
    /// Reads are asked for by this handler, at most one per interval (nil: NIO reads
    /// whenever the socket is readable).
    let readInterval: TimeAmount?
    /// The socket, when the handler reads it itself (with a read interval): NIO then reads
    /// only to wait for an idle socket.
    let descriptor: Int32?
    /// Its buffers (64 KiB), only for a socket it reads itself.
    let reader: DirectReader?
    /// Reads of its own in a row that found nothing.
    var emptyReads = 0
    /// Datagrams of the current read.
    var datagramsThisRead = 0

    init(driver: UDPDriver<Machine>, readInterval: TimeAmount?, descriptor: Int32?) {
        self.driver = driver
        self.readInterval = readInterval
        self.descriptor = descriptor
        reader = descriptor.map { _ in DirectReader() }
    }

    private func localAddress(_ context: ChannelHandlerContext) -> TransportAddress? {
        if local == nil { local = context.channel.localAddress.flatMap(TransportAddress.init(nio:)) }
        return local
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        datagramsThisRead += 1
        let envelope = unwrapInboundIn(data)
        guard let local = localAddress(context), let source = TransportAddress(nio: envelope.remoteAddress) else {
            return
        }
        envelope.data.withUnsafeReadableBytes { driver.received($0, from: source, on: local, directly: false) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        driver.readComplete()
        guard readInterval != nil else { return }
        let count = datagramsThisRead
        datagramsThisRead = 0
        readAgain(context: context, after: count)
    }

    /// After a read of `count` datagrams: one that took all it may (16 system calls of 16
    /// datagrams) may have left more behind, so the next read comes at once; otherwise after
    /// the interval.
    private func readAgain(context: ChannelHandlerContext, after count: Int) {
        let loop = context.eventLoop.assumeIsolated()
        if count >= systemCallsPerRead * datagramsPerSystemCall {
            loop.execute { self.read(context: context) }
        } else if let readInterval {
            loop.scheduleTask(in: readInterval) { self.read(context: context) }
        }
    }

    /// Reads the socket itself when it has it and datagrams wait; otherwise asks NIO to
    /// read, which waits for the next datagram and hands it through ``channelRead``.
    private func read(context: ChannelHandlerContext) {
        guard let descriptor, let reader, context.channel.isActive, let local = localAddress(context) else {
            context.read()
            return
        }
        let count = reader.read(descriptor, calls: systemCallsPerRead) { data, source in
            driver.received(data, from: source, on: local, directly: true)
        }
        guard count > 0 else {
            // Streams come in bursts (a frame's packets from every track at once): a read
            // between two finds nothing. Only after a few such reads in a row is the socket
            // idle and left to NIO, which wakes with its next datagram.
            emptyReads += 1
            if emptyReads < emptyReadsBeforeIdle {
                readAgain(context: context, after: 0)
            } else {
                emptyReads = 0
                context.read()
            }
            return
        }
        emptyReads = 0
        driver.readComplete()
        readAgain(context: context, after: count)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP errors on UDP sockets: the protocol machines time out on their own.
    }
}

extension SecureTransportCore: DatagramMachine {}

/// Why a ``UDPDriver`` could not do what it was asked.
public enum UDPDriverError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A local address could not be bound (the address, as given).
    case bindFailed(String)
    /// The driver is closed: its sockets are released and its machine gets nothing more.
    case closed

    public var description: String {
        switch self {
        case .bindFailed(let address): "cannot bind a UDP socket on \(address)"
        case .closed: "the connection is closed"
        }
    }
}
