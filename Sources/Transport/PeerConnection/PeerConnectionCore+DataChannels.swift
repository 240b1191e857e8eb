import MeetKitDTLS
import MeetKitSCTP

// Data channels of a PeerConnectionCore (RFC 8831): one SCTP association over the DTLS
// connection, in the application section of the BUNDLE.
extension PeerConnectionCore {
    /// Creates a data channel; returns its handle, which names it in
    /// ``Event/dataChannel(_:)`` events and the calls below. The first channel adds a data
    /// section to the next offer; the channel opens (``DataChannelEndpoint/Event/opened(handle:id:label:options:remote:)``)
    /// once the association is up and, unless negotiated, the peer acknowledged it.
    public func createDataChannel(label: String, options: DataChannelOptions = .init()) throws(PeerConnectionError)
        -> Int
    {
        if dataSection == nil {
            dataSection = LocalApplicationSection(
                mid: freeMid(), index: transceivers.count, maxMessageSize: configuration.sctp.maxReceivedMessageSize)
        }
        do {
            return try dataChannelEndpoint().openChannel(label: label, options: options, now: now)
        } catch {
            throw .dataChannel(error)
        }
    }

    /// Sends a message on an open data channel.
    /// - Throws: ``PeerConnectionError/dataChannel(_:)``: the message is over the peer's
    ///   `max-message-size` (nothing sent), or the channel is not open.
    public func sendData(_ message: DataChannelMessage, channel: Int, now: Duration) throws(PeerConnectionError) {
        guard let dataChannels else { throw .dataChannel(.noSuchChannel(channel)) }
        self.now = now
        do {
            try dataChannels.send(message, on: channel, now: now)
        } catch {
            throw .dataChannel(error)
        }
    }

    /// Closes a data channel: what is queued still goes, then its stream is reset.
    public func closeDataChannel(_ channel: Int, now: Duration) {
        self.now = now
        dataChannels?.close(channel, now: now)
    }

    /// Bytes queued on a data channel and not yet sent.
    public func bufferedAmount(dataChannel: Int) -> Int { dataChannels?.bufferedAmount(of: dataChannel) ?? 0 }

    /// Asks for a ``DataChannelEndpoint/Event/bufferedAmountLow(handle:)`` event when a
    /// channel's queued bytes fall to `bytes`.
    public func setBufferedAmountLowThreshold(_ bytes: Int?, dataChannel: Int) {
        dataChannels?.setLowWaterMark(bytes, of: dataChannel)
    }

    /// The application took `bytes` of received data channel messages (with
    /// ``SCTPConfiguration/holdsDeliveredUntilReleased``; an empty message counts 1).
    public func releaseDataChannelBytes(_ bytes: Int, now: Duration) {
        self.now = now
        dataChannels?.releaseDelivered(bytes, now: now)
    }

    func dataChannelEndpoint() -> DataChannelEndpoint {
        if let dataChannels { return dataChannels }
        let endpoint = DataChannelEndpoint(configuration: configuration.sctp)
        dataChannels = endpoint
        return endpoint
    }

    /// The peer's description: its data section (if any) and, now known, the DTLS role.
    func applyApplication(_ application: NegotiatedApplication?, role: DTLSConnection.Role) {
        guard let application else { return }
        negotiatedApplication = application
        if dataSection?.mid != application.mid {
            let index = remoteDescriptionIndex(of: application.mid) ?? transceivers.count
            dataSection = LocalApplicationSection(
                mid: application.mid, index: index, maxMessageSize: configuration.sctp.maxReceivedMessageSize)
        }
        let endpoint = dataChannelEndpoint()
        endpoint.isDTLSClient = role == .client
        endpoint.peerMaxMessageSize = application.remoteMaxMessageSize
        endpoint.association.setRemotePort(application.remotePort)
        startDataChannelsIfReady()
    }

    private func remoteDescriptionIndex(of mid: String) -> Int? {
        (remoteOffer ?? remoteDescription)?.media.firstIndex { $0.mid == mid }
    }

    /// Starts the association once DTLS is up and a data section is negotiated.
    func startDataChannelsIfReady() {
        guard secured, negotiatedApplication != nil, let dataChannels, dataChannels.association.state == .closed,
            !dataChannels.association.ended
        else { return }
        dataChannels.start(now: now)
    }

    /// Moves what the data channels produced out: packets into DTLS, events into this
    /// core's queue. Returns whether there was anything.
    func pullDataChannels() -> Bool {
        guard let dataChannels else { return false }
        var pulled = false
        while true {
            switch dataChannels.pollOutput() {
            case .transmit(let packet):
                // Lost if DTLS is gone; SCTP retransmits or gives up on its own.
                try? transport.sendApplicationData(packet)
            case .event(let event): events.append(.dataChannel(event))
            case .wait(let until):
                dataDeadline = until
                return pulled
            }
            pulled = true
        }
    }
}
