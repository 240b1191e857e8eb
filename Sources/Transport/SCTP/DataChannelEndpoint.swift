import DequeModule

/// A message on a data channel.
public enum DataChannelMessage: Sendable, Equatable {
    /// A string (payload protocol 51, or 56 when empty).
    case text(String)
    /// Bytes (53, or 57 when empty).
    case binary([UInt8])
}

extension DataChannelMessage {
    /// The payload's size in bytes.
    public var byteCount: Int {
        switch self {
        case .text(let s): s.utf8.count
        case .binary(let b): b.count
        }
    }
}

/// Why a data channel operation was refused.
public enum DataChannelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message is larger than the peer's `a=max-message-size`: nothing was sent.
    case messageTooLarge(size: Int, limit: Int)
    /// No open channel has this handle.
    case noSuchChannel(Int)
    /// The id is taken by another channel.
    case idInUse(UInt16)
    /// Every stream id of this side's parity is taken.
    case noFreeStream
    /// The association ended.
    case associationClosed
    /// SCTP refused the message.
    case transport(SCTPSendError)

    public var description: String {
        switch self {
        case .messageTooLarge(let size, let limit):
            "a \(size)-byte message is over the peer's max-message-size of \(limit)"
        case .noSuchChannel(let handle): "data channel \(handle) is not open"
        case .idInUse(let id): "data channel id \(id) is in use"
        case .noFreeStream: "no free stream id for a data channel"
        case .associationClosed: "the SCTP association is closed"
        case .transport(let e): e.description
        }
    }
}

/// WebRTC data channels (RFC 8831, RFC 8832) over one ``SCTPAssociation``, sans-IO: the
/// channels' stream ids by DTLS role, DCEP's open and acknowledgement, string and binary
/// messages by payload protocol, and closing by stream reset. Packets in and out are the
/// DTLS application data.
///
/// Channels are named by a handle this endpoint gives out, stable for its life: a channel
/// created before the DTLS role is known has no stream id yet (as in the W3C API), and a
/// stream id is used again once its channel closed.
public final class DataChannelEndpoint {
    /// What the endpoint reports.
    public enum Event: Sendable, Equatable {
        /// The association is up.
        case connected
        /// A channel is open: one this side opened (acknowledged, or negotiated), or one the
        /// peer announced (`remote`, with a new handle).
        case opened(handle: Int, id: UInt16, label: String, options: DataChannelOptions, remote: Bool)
        /// A message arrived on a channel.
        case message(handle: Int, DataChannelMessage)
        /// A channel's queued bytes fell to its low-water mark.
        case bufferedAmountLow(handle: Int)
        /// A channel closed (both directions reset, or never opened).
        case closed(handle: Int)
        /// The association ended; every channel is closed.
        case failed(SCTPCloseReason)
    }

    /// The next thing to do.
    public typealias Output = SCTPOutput<Event>

    private struct Channel {
        enum State { case connecting, open, closing }
        var id: UInt16?
        var label: String
        var options: DataChannelOptions
        var state: State
        var outgoingReset = false
        var incomingReset = false
    }

    /// The association underneath.
    public let association: SCTPAssociation
    /// Whether this side is the DTLS client (even stream ids, and it starts the
    /// association); nil until the DTLS role is known.
    public var isDTLSClient: Bool?
    /// The peer's `a=max-message-size` (0: no limit).
    public var peerMaxMessageSize: Int
    /// Messages and DCEP messages refused (unknown channel, bad DCEP, an id in use…).
    public private(set) var dropped = 0
    private var channels: [Int: Channel] = [:]
    private var byStream: [UInt16: Int] = [:]
    private var nextHandle = 0
    /// Channels opened before the association was up, in order.
    private var waiting: [Int] = []
    private var events = Deque<Event>()
    private var connected = false
    private var ended = false

    /// An endpoint; `peerMaxMessageSize` from the remote description (RFC 8841 §6.1: 65 536
    /// when absent).
    public init(
        configuration: SCTPConfiguration = .init(), isDTLSClient: Bool? = nil, peerMaxMessageSize: Int = 65_536,
        random: any RandomNumberGenerator = SystemRandomNumberGenerator()
    ) {
        association = SCTPAssociation(configuration: configuration, random: random)
        self.isDTLSClient = isDTLSClient
        self.peerMaxMessageSize = peerMaxMessageSize
    }

    /// Starts once DTLS is up: the DTLS client initiates the association, the server answers.
    public func start(now: Duration) {
        if isDTLSClient == true { association.connect(now: now) }
    }

    /// The stream id of channel `handle`, once it has one.
    public func streamID(of handle: Int) -> UInt16? { channels[handle]?.id }

    /// Opens a channel; returns its handle. It is announced with DATA_CHANNEL_OPEN once the
    /// association is up (or, negotiated, used at once with the id given, which the peer
    /// must open the same way).
    /// - Throws: ``DataChannelError/idInUse(_:)`` for a negotiated id already taken.
    public func openChannel(label: String, options: DataChannelOptions = .init(), now: Duration)
        throws(DataChannelError)
        -> Int
    {
        guard !ended else { throw .associationClosed }
        var options = options
        var id: UInt16?
        // An id is the application's to choose only for a negotiated channel (as in the
        // W3C API); announced channels take the next free id of this side's parity.
        if options.negotiated, let chosen = options.id {
            guard byStream[chosen] == nil, chosen < 65535 else { throw .idInUse(chosen) }
            id = chosen
        } else {
            options.negotiated = false
            options.id = nil
        }
        let handle = nextHandle
        nextHandle += 1
        channels[handle] = Channel(id: id, label: label, options: options, state: .connecting)
        if let id { byStream[id] = handle }
        if connected { try announce(handle, now: now) } else { waiting.append(handle) }
        return handle
    }

    /// The lowest free stream id of this side's parity.
    private func freeStream() -> UInt16? {
        stride(from: isDTLSClient == true ? 0 : 1, to: 65535, by: 2).lazy.map { UInt16($0) }
            .first { byStream[$0] == nil }
    }

    private func announce(_ handle: Int, now: Duration) throws(DataChannelError) {
        guard var c = channels[handle] else { return }
        if c.options.negotiated {
            c.state = .open
            channels[handle] = c
            events.append(.opened(handle: handle, id: c.id!, label: c.label, options: c.options, remote: false))
            return
        }
        guard let id = freeStream() else {
            channels[handle] = nil
            events.append(.closed(handle: handle))
            throw .noFreeStream
        }
        c.id = id
        c.options.id = id
        channels[handle] = c
        byStream[id] = handle
        let open = DCEPMessage.open(c.options, label: c.label, priority: 256).serialized()
        do {
            try association.send(open, stream: id, protocolIdentifier: DataChannelPPID.dcep, now: now)
        } catch {
            forget(handle)
            events.append(.closed(handle: handle))
        }
    }

    private func forget(_ handle: Int) {
        if let id = channels[handle]?.id { byStream[id] = nil }
        channels[handle] = nil
    }

    /// Sends a message on a channel with the channel's reliability (ordered until the peer
    /// acknowledged the channel, RFC 8832 §6).
    /// - Throws: ``DataChannelError/messageTooLarge(size:limit:)`` before anything is sent
    ///   when the peer could not take it; ``DataChannelError/noSuchChannel(_:)`` for a
    ///   channel that is not open (or not yet).
    public func send(_ message: DataChannelMessage, on handle: Int, now: Duration) throws(DataChannelError) {
        guard let c = channels[handle], let id = c.id, c.state != .closing, connected else {
            throw ended ? .associationClosed : .noSuchChannel(handle)
        }
        var bytes: [UInt8]
        var ppid: UInt32
        switch message {
        case .text(let s):
            bytes = Array(s.utf8)
            ppid = DataChannelPPID.string
        case .binary(let b):
            bytes = b
            ppid = DataChannelPPID.binary
        }
        if peerMaxMessageSize > 0, bytes.count > peerMaxMessageSize {
            throw .messageTooLarge(size: bytes.count, limit: peerMaxMessageSize)
        }
        if bytes.isEmpty {
            // SCTP cannot carry an empty message: one byte with the "empty" protocol id.
            bytes = [0]
            ppid = ppid == DataChannelPPID.string ? DataChannelPPID.stringEmpty : DataChannelPPID.binaryEmpty
        }
        do {
            try association.send(
                bytes, stream: id, protocolIdentifier: ppid, unordered: c.state == .open && !c.options.ordered,
                reliability: c.options.reliability, now: now)
        } catch {
            throw .transport(error)
        }
    }

    /// Bytes queued on a channel and not yet sent.
    public func bufferedAmount(of handle: Int) -> Int {
        channels[handle]?.id.map { association.bufferedAmount(stream: $0) } ?? 0
    }

    /// Asks for ``Event/bufferedAmountLow(handle:)`` when a channel's queued bytes fall to
    /// `bytes` (nil: no longer).
    public func setLowWaterMark(_ bytes: Int?, of handle: Int) {
        guard let id = channels[handle]?.id else { return }
        association.setLowWaterMark(bytes, stream: id)
    }

    /// Closes a channel (RFC 8831 §6.7): its outgoing stream is reset after what is queued;
    /// the peer resets its own; ``Event/closed(handle:)`` follows.
    public func close(_ handle: Int, now: Duration) {
        guard var c = channels[handle], c.state != .closing else { return }
        c.state = .closing
        channels[handle] = c
        if connected, let id = c.id {
            association.resetStreams([id], now: now)
        } else {
            forget(handle)
            waiting.removeAll { $0 == handle }
            events.append(.closed(handle: handle))
        }
    }

    /// Ends the association at once.
    public func abort(now: Duration) { association.abort(now: now) }

    /// The application took `bytes` of delivered messages (see
    /// ``SCTPConfiguration/holdsDeliveredUntilReleased``; an empty message counts 1).
    public func releaseDelivered(_ bytes: Int, now: Duration) { association.releaseDelivered(bytes, now: now) }

    /// An SCTP packet from the peer (DTLS application data).
    public func handlePacket(_ bytes: [UInt8], now: Duration) { association.handlePacket(bytes, now: now) }

    /// Time passed.
    public func handleTimeout(now: Duration) { association.handleTimeout(now: now) }

    /// The next output. The association's events are handled here, at the time of the
    /// latest input (DCEP acknowledgements and the answering stream resets are queued
    /// then and go out in the next packets).
    public func pollOutput() -> Output {
        while true {
            if let e = events.popFirst() { return .event(e) }
            switch association.pollOutput() {
            case .transmit(let p): return .transmit(p)
            case .event(let e): handle(e, now: association.now)
            case .wait(let deadline):
                if let e = events.popFirst() { return .event(e) }
                return .wait(until: deadline)
            }
        }
    }

    private func handle(_ event: SCTPAssociation.Event, now: Duration) {
        switch event {
        case .established:
            connected = true
            events.append(.connected)
            let handles = waiting
            waiting = []
            for h in handles { try? announce(h, now: now) }
        case .message(let stream, let ppid, let data, _):
            received(data, ppid: ppid, stream: stream, now: now)
        case .incomingStreamsReset(let ids):
            for id in ids {
                guard let handle = byStream[id], var c = channels[handle] else { continue }
                c.incomingReset = true
                if c.state != .closing {
                    // The peer closes: reset this side's stream too (RFC 8831 §6.7).
                    c.state = .closing
                    association.resetStreams([id], now: now)
                }
                channels[handle] = c
                closeIfDone(handle)
            }
        case .outgoingStreamsReset(let ids):
            for id in ids {
                guard let handle = byStream[id] else { continue }
                channels[handle]?.outgoingReset = true
                closeIfDone(handle)
            }
        case .bufferedAmountLow(let stream):
            if let handle = byStream[stream] { events.append(.bufferedAmountLow(handle: handle)) }
        case .oversizedMessage(let stream):
            // A message over the announced max-message-size: the channel is closed
            // (RFC 8831 §6.6 leaves the reaction to the receiver; a channel that lost a
            // message cannot go on as if it had not).
            dropped += 1
            if let handle = byStream[stream] { close(handle, now: now) }
        case .closed(let reason):
            ended = true
            connected = false
            for handle in channels.keys.sorted() { events.append(.closed(handle: handle)) }
            channels = [:]
            byStream = [:]
            events.append(.failed(reason))
        }
    }

    private func closeIfDone(_ handle: Int) {
        guard let c = channels[handle], c.outgoingReset, c.incomingReset else { return }
        forget(handle)
        events.append(.closed(handle: handle))
    }

    private func received(_ data: [UInt8], ppid: UInt32, stream: UInt16, now: Duration) {
        if ppid == DataChannelPPID.dcep {
            guard let message = try? DCEPMessage(parsing: data[...]) else {
                dropped += 1
                return
            }
            switch message {
            case .open(var options, let label, _):
                // The peer's channels have the peer's parity; an id in use is refused.
                let peerParity: UInt16 = isDTLSClient == true ? 1 : 0
                guard byStream[stream] == nil, stream % 2 == peerParity else {
                    dropped += 1
                    return
                }
                options.id = stream
                let handle = nextHandle
                nextHandle += 1
                channels[handle] = Channel(id: stream, label: label, options: options, state: .open)
                byStream[stream] = handle
                try? association.send(
                    DCEPMessage.ack.serialized(), stream: stream, protocolIdentifier: DataChannelPPID.dcep, now: now)
                events.append(.opened(handle: handle, id: stream, label: label, options: options, remote: true))
            case .ack:
                guard let handle = byStream[stream], let c = channels[handle], c.state == .connecting else {
                    dropped += 1
                    return
                }
                channels[handle]?.state = .open
                events.append(.opened(handle: handle, id: stream, label: c.label, options: c.options, remote: false))
            }
            return
        }
        guard let handle = byStream[stream], let c = channels[handle], !c.incomingReset else {
            dropped += 1
            return
        }
        // Data before the ACK means the peer got the OPEN: the channel is open (RFC 8832 §6).
        if c.state == .connecting {
            channels[handle]?.state = .open
            events.append(.opened(handle: handle, id: stream, label: c.label, options: c.options, remote: false))
        }
        switch ppid {
        case DataChannelPPID.string:
            events.append(.message(handle: handle, .text(String(decoding: data, as: UTF8.self))))
        case DataChannelPPID.binary: events.append(.message(handle: handle, .binary(data)))
        case DataChannelPPID.stringEmpty: events.append(.message(handle: handle, .text("")))
        case DataChannelPPID.binaryEmpty: events.append(.message(handle: handle, .binary([])))
        default: dropped += 1
        }
    }
}
