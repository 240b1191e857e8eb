import DequeModule

/// A message on a data channel.
public enum DataChannelMessage: Sendable, Equatable {
    /// A string (payload protocol 51, or 56 when empty).
    case text(String)
    /// Bytes (53, or 57 when empty).
    case binary([UInt8])
}

/// Why a data channel operation was refused.
public enum DataChannelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message is larger than the peer's `a=max-message-size`: nothing was sent.
    case messageTooLarge(size: Int, limit: Int)
    /// No open channel has this id.
    case noSuchChannel(UInt16)
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
        case .noSuchChannel(let id): "no open data channel has id \(id)"
        case .idInUse(let id): "data channel id \(id) is in use"
        case .noFreeStream: "no free stream id for a data channel"
        case .associationClosed: "the SCTP association is closed"
        case .transport(let e): e.description
        }
    }
}

/// WebRTC data channels (RFC 8831, RFC 8832) over one ``SCTPAssociation``, sans-IO: the
/// channels' ids by DTLS role, DCEP's open and acknowledgement, string and binary
/// messages by payload protocol, and closing by stream reset. Packets in and out are the
/// DTLS application data.
public final class DataChannelEndpoint {
    /// What the endpoint reports.
    public enum Event: Sendable, Equatable {
        /// The association is up.
        case connected
        /// A channel is open: one this side opened (acknowledged, or negotiated), or one the
        /// peer announced (`remote`).
        case opened(id: UInt16, label: String, options: DataChannelOptions, remote: Bool)
        /// A message arrived on a channel.
        case message(id: UInt16, DataChannelMessage)
        /// A channel's queued bytes fell to its low-water mark.
        case bufferedAmountLow(id: UInt16)
        /// A channel closed (both directions reset); its id may be used again.
        case closed(id: UInt16)
        /// The association ended; every channel is closed.
        case failed(SCTPCloseReason)
    }

    /// The next thing to do.
    public enum Output {
        case transmit([UInt8])
        case event(Event)
        case wait(until: Duration?)
    }

    private struct Channel {
        enum State { case connecting, open, closing }
        var label: String
        var options: DataChannelOptions
        var state: State
        var outgoingReset = false
        var incomingReset = false
    }

    /// The association underneath.
    public let association: SCTPAssociation
    /// Whether this side is the DTLS client (it then uses even stream ids and starts the
    /// association).
    public let isDTLSClient: Bool
    /// The peer's `a=max-message-size` (0: no limit).
    public var peerMaxMessageSize: Int
    /// Messages and DCEP messages refused (unknown channel, bad DCEP, an id in use…).
    public private(set) var dropped = 0
    private var channels: [UInt16: Channel] = [:]
    /// Channels opened before the association was up, in order.
    private var waiting: [UInt16] = []
    private var events = Deque<Event>()
    private var connected = false
    private var ended = false

    /// An endpoint; `peerMaxMessageSize` from the remote description (RFC 8841 §6.1: 65 536
    /// when absent).
    public init(
        configuration: SCTPConfiguration = .init(), isDTLSClient: Bool, peerMaxMessageSize: Int = 65_536,
        random: any RandomNumberGenerator = SystemRandomNumberGenerator()
    ) {
        association = SCTPAssociation(configuration: configuration, random: random)
        self.isDTLSClient = isDTLSClient
        self.peerMaxMessageSize = peerMaxMessageSize
    }

    /// Starts: the DTLS client initiates the association, the server answers.
    public func start(now: Duration) {
        if isDTLSClient { association.connect(now: now) }
    }

    /// Opens a channel; returns its id. It is announced with DATA_CHANNEL_OPEN once the
    /// association is up (or, negotiated, used at once with the id given, which the peer
    /// must open the same way).
    /// - Throws: ``DataChannelError`` when the id is taken or none is free.
    public func openChannel(label: String, options: DataChannelOptions = .init(), now: Duration)
        throws(DataChannelError) -> UInt16
    {
        guard !ended else { throw .associationClosed }
        let id: UInt16
        // An id is the application's to choose only for a negotiated channel (as in the
        // W3C API); announced channels take the next free id of this side's parity.
        if options.negotiated, let chosen = options.id {
            guard channels[chosen] == nil, chosen < 65535 else { throw .idInUse(chosen) }
            id = chosen
        } else {
            guard
                let free = stride(from: isDTLSClient ? 0 : 1, to: 65535, by: 2).lazy.map({ UInt16($0) }).first(where: {
                    channels[$0] == nil
                })
            else { throw .noFreeStream }
            id = free
        }
        var options = options
        options.id = id
        channels[id] = Channel(label: label, options: options, state: .connecting)
        if connected { announce(id, now: now) } else { waiting.append(id) }
        return id
    }

    private func announce(_ id: UInt16, now: Duration) {
        guard let c = channels[id] else { return }
        if c.options.negotiated {
            channels[id]?.state = .open
            events.append(.opened(id: id, label: c.label, options: c.options, remote: false))
            return
        }
        let open = DCEPMessage.open(c.options, label: c.label, priority: 256).serialized()
        do {
            try association.send(open, stream: id, protocolIdentifier: DataChannelPPID.dcep, now: now)
        } catch {
            channels[id] = nil
            events.append(.closed(id: id))
        }
    }

    /// Sends a message on channel `id` with the channel's reliability (ordered until the
    /// peer acknowledged the channel, RFC 8832 §6).
    /// - Throws: ``DataChannelError/messageTooLarge(size:limit:)`` before anything is sent
    ///   when the peer could not take it; ``DataChannelError/noSuchChannel(_:)`` for a
    ///   closed or unknown channel.
    public func send(_ message: DataChannelMessage, on id: UInt16, now: Duration) throws(DataChannelError) {
        guard let c = channels[id], c.state != .closing, connected else {
            throw ended ? .associationClosed : .noSuchChannel(id)
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

    /// Bytes queued on channel `id` and not yet sent.
    public func bufferedAmount(id: UInt16) -> Int { association.bufferedAmount(stream: id) }

    /// Asks for ``Event/bufferedAmountLow(id:)`` when channel `id`'s queued bytes fall to
    /// `bytes` (nil: no longer).
    public func setLowWaterMark(_ bytes: Int?, id: UInt16) { association.setLowWaterMark(bytes, stream: id) }

    /// Closes channel `id` (RFC 8831 §6.7): its outgoing stream is reset after what is
    /// queued; the peer resets its own; ``Event/closed(id:)`` follows.
    public func close(id: UInt16, now: Duration) {
        guard var c = channels[id], c.state != .closing else { return }
        c.state = .closing
        channels[id] = c
        if connected {
            association.resetStreams([id], now: now)
        } else {
            channels[id] = nil
            waiting.removeAll { $0 == id }
            events.append(.closed(id: id))
        }
    }

    /// Ends the association at once.
    public func abort(now: Duration) { association.abort(now: now) }

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
            let ids = waiting
            waiting = []
            for id in ids { announce(id, now: now) }
        case .message(let stream, let ppid, let data, _):
            received(data, ppid: ppid, stream: stream, now: now)
        case .incomingStreamsReset(let ids):
            for id in ids {
                guard var c = channels[id] else { continue }
                c.incomingReset = true
                if c.state != .closing {
                    // The peer closes: reset this side's stream too (RFC 8831 §6.7).
                    c.state = .closing
                    association.resetStreams([id], now: now)
                }
                channels[id] = c
                closeIfDone(id)
            }
        case .outgoingStreamsReset(let ids):
            for id in ids {
                channels[id]?.outgoingReset = true
                closeIfDone(id)
            }
        case .bufferedAmountLow(let stream):
            events.append(.bufferedAmountLow(id: stream))
        case .closed(let reason):
            ended = true
            connected = false
            for id in channels.keys.sorted() { events.append(.closed(id: id)) }
            channels = [:]
            events.append(.failed(reason))
        }
    }

    private func closeIfDone(_ id: UInt16) {
        guard let c = channels[id], c.outgoingReset, c.incomingReset else { return }
        channels[id] = nil
        events.append(.closed(id: id))
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
                let peerParity: UInt16 = isDTLSClient ? 1 : 0
                guard channels[stream] == nil, stream % 2 == peerParity else {
                    dropped += 1
                    return
                }
                options.id = stream
                channels[stream] = Channel(label: label, options: options, state: .open)
                try? association.send(
                    DCEPMessage.ack.serialized(), stream: stream, protocolIdentifier: DataChannelPPID.dcep, now: now)
                events.append(.opened(id: stream, label: label, options: options, remote: true))
            case .ack:
                guard let c = channels[stream], c.state == .connecting else {
                    dropped += 1
                    return
                }
                channels[stream]?.state = .open
                events.append(.opened(id: stream, label: c.label, options: c.options, remote: false))
            }
            return
        }
        guard let c = channels[stream], !c.incomingReset else {
            dropped += 1
            return
        }
        // Data before the ACK means the peer got the OPEN: the channel is open (RFC 8832 §6).
        if c.state == .connecting {
            channels[stream]?.state = .open
            events.append(.opened(id: stream, label: c.label, options: c.options, remote: false))
        }
        switch ppid {
        case DataChannelPPID.string: events.append(.message(id: stream, .text(String(decoding: data, as: UTF8.self))))
        case DataChannelPPID.binary: events.append(.message(id: stream, .binary(data)))
        case DataChannelPPID.stringEmpty: events.append(.message(id: stream, .text("")))
        case DataChannelPPID.binaryEmpty: events.append(.message(id: stream, .binary([])))
        default: dropped += 1
        }
    }
}
