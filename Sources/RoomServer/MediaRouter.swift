import Foundation
import LiveKitProtocol
import MeetKitICE
import MeetKitNet
import MeetKitSCTP
import SwiftProtobuf
import Transport

/// A participant's WebRTC connection at the server, as the signalling layer names it.
public struct MediaConnectionID: Hashable, Sendable, CustomStringConvertible {
    let value: Int
    public var description: String { "pc\(value)" }
}

/// The media plane of meet-server, sans-IO: every participant's PeerConnections on one UDP
/// socket, and the relaying between them. A datagram finds its connection by the ICE
/// username of its STUN checks (`server-ufrag:client-ufrag`), then by the address those
/// checks came from; data packets are relayed between participants here, synchronously,
/// with the sender's identity stamped by the server. The signalling side drives each
/// connection's JSEP through ``withConnection(_:_:)`` and hears of candidates, states and
/// tracks through the router's events.
package final class MediaRouter: DatagramMachine {
    /// What the signalling side hears of.
    package enum Event: Sendable {
        /// A local candidate to trickle to the participant.
        case localCandidate(MediaConnectionID, ICECandidate)
        /// The connection's aggregate state changed.
        case connectionState(MediaConnectionID, PeerConnectionState)
        /// A remote description announced media the participant sends on `mid`.
        case remoteTrack(MediaConnectionID, mid: String, kind: MediaKind, streamID: String?, trackID: String?)
    }

    /// Which of a participant's connections this is (LiveKit's signal target).
    package enum Role: Sendable {
        /// The participant offers it and sends on it (`/rtc`).
        case publisher
        /// The server offers it and sends on it (`/rtc`).
        case subscriber
        /// The only connection, both ways (`/rtc/v1`).
        case single

        /// Whether the server sends media and data to the participant on it.
        var isDownlink: Bool { self != .publisher }
    }

    /// Counters for what was dropped.
    package struct Statistics: Sendable, Equatable {
        /// Datagrams from an address no STUN check introduced.
        var unroutedDatagrams = 0
        /// Data packets that did not decode, or from a participant without the right.
        var droppedDataPackets = 0
        /// Data packets relayed (one per recipient).
        var relayedDataPackets = 0
        /// RTP packets relayed (one per subscriber).
        package var relayedPackets = 0
        /// Packets received per simulcast layer (RID).
        var layerPackets: [String: Int] = [:]
    }

    /// One transceiver of one connection.
    package struct TrackEnd: Hashable, Sendable {
        package var connection: MediaConnectionID
        package var mid: String

        package init(connection: MediaConnectionID, mid: String) {
            self.connection = connection
            self.mid = mid
        }
    }

    final class Connection {
        let id: MediaConnectionID
        let core: PeerConnectionCore
        let participant: String
        let role: Role
        /// Data channels by label (`_reliable`, `_lossy`), whoever opened them.
        var channels: [String: Int] = [:]
        var labels: [Int: String] = [:]
        /// Reliable data for the participant sent before its `_reliable` channel opened
        /// (it joined a moment ago): delivered when it opens (at most 64 packets).
        var waitingReliable: [[UInt8]] = []
        var deadline: Duration?

        init(id: MediaConnectionID, core: PeerConnectionCore, participant: String, role: Role) {
            self.id = id
            self.core = core
            self.participant = participant
            self.role = role
        }
    }

    /// What the router knows of a participant: enough to relay and stamp its data.
    struct Member {
        var identity: String
        var room: String
        var canPublishData: Bool
        var connections: [MediaConnectionID] = []
        /// The sequence of the last reliable data packet it sent (for a resume).
        var lastReliableSequence: UInt32 = 0
    }

    /// The address the socket is bound to.
    private(set) var boundAddress: TransportAddress
    /// The address written in candidates (the bound one unless configured).
    private(set) var advertisedAddress: TransportAddress
    package private(set) var statistics = Statistics()
    private var connections: [MediaConnectionID: Connection] = [:]
    private var members: [String: Member] = [:]
    private var byUfrag: [String: MediaConnectionID] = [:]
    private var byAddress: [TransportAddress: MediaConnectionID] = [:]
    /// What a subscriber receives of a simulcast track: the layer it wants, the one it
    /// gets (it switches on a keyframe of the wanted one), or nothing while paused.
    struct Selection {
        var wanted: String?
        var current: String?
        var paused = false
        /// When the wanted layer's keyframe was last asked for.
        var askedAt: Duration?
    }

    /// How long a switch of layers waits for the keyframe it asked for before asking again
    /// (libwebrtc ignores a request that comes within 300 ms of its last keyframe).
    static let keyframeRetry = Duration.milliseconds(500)

    /// Where each published track's packets go, and where each subscribed one comes from.
    private var subscribers: [TrackEnd: [TrackEnd]] = [:]
    private var sources: [TrackEnd: TrackEnd] = [:]
    private var selections: [TrackEnd: Selection] = [:]
    /// When each simulcast layer of a published track last sent a packet.
    private var layerSeen: [TrackEnd: [String: Duration]] = [:]

    /// Whether layer `rid` of `track` sent nothing for a second (true for no layer).
    private func isSilent(_ rid: String?, of track: TrackEnd) -> Bool {
        guard let rid, let seen = layerSeen[track]?[rid] else { return true }
        return now - seen > .seconds(1)
    }
    /// Audio levels heard since the last ``takeAudioActivity()``, per participant.
    private var audioActivity: [String: (sum: Double, packets: Int)] = [:]
    /// Connections that may have output.
    private var pending: Set<MediaConnectionID> = []
    private var events = OutputQueue<Event>()
    private var nextID = 1
    private var now: Duration = .zero

    package init(boundAddress: TransportAddress, advertisedAddress: TransportAddress? = nil) {
        self.boundAddress = boundAddress
        self.advertisedAddress = advertisedAddress ?? boundAddress
    }

    /// The socket's address once bound, and the one to put in candidates (nil: the same).
    func setAddresses(bound: TransportAddress, advertised: TransportAddress?) {
        boundAddress = bound
        advertisedAddress = advertised ?? bound
    }

    // MARK: membership and connections

    /// Adds or updates a participant.
    package func setMember(sid: String, identity: String, room: String, canPublishData: Bool) {
        var member = members[sid] ?? Member(identity: identity, room: room, canPublishData: canPublishData)
        member.identity = identity
        member.room = room
        member.canPublishData = canPublishData
        members[sid] = member
    }

    /// Removes a participant and closes its connections.
    func removeMember(sid: String, now: Duration) {
        guard let member = members.removeValue(forKey: sid) else { return }
        for id in member.connections { closeConnection(id, now: now) }
    }

    /// A new connection for participant `sid`, gathering on the router's socket.
    package func openConnection(participant sid: String, role: Role, now: Duration) throws -> MediaConnectionID {
        let id = MediaConnectionID(value: nextID)
        nextID += 1
        var configuration = PeerConnectionConfiguration()
        // Publishers estimate their bandwidth from receiver reports: with transport-cc
        // negotiated, libwebrtc's estimate collapsed here and its upper simulcast layers
        // stopped (even with the feedback TransportFeedbackGenerator makes).
        configuration.negotiatesTransportCC = false
        let core = try PeerConnectionCore(configuration: configuration)
        core.start(localAddresses: [advertisedAddress], now: now)
        let connection = Connection(id: id, core: core, participant: sid, role: role)
        connections[id] = connection
        members[sid]?.connections.append(id)
        register(connection)
        pending.insert(id)
        return id
    }

    /// Closes a connection (DTLS close_notify is sent) and forgets it.
    func closeConnection(_ id: MediaConnectionID, now: Duration) {
        guard let connection = connections[id] else { return }
        connection.core.close(now: now)
        // What close produced goes out before the connection is forgotten.
        _ = connection.core.drainOutputs(transmit: { _ in }, event: { _ in })
        connections[id] = nil
        receptionSeen = receptionSeen.filter { $0.key.connection != id }
        pending.remove(id)
        for (end, _) in sources where end.connection == id { unsubscribe(end) }
        for (published, ends) in subscribers where published.connection == id {
            for end in ends { sources[end] = nil }
            subscribers[published] = nil
        }
        layerSeen = layerSeen.filter { $0.key.connection != id }
        byUfrag = byUfrag.filter { $0.value != id }
        byAddress = byAddress.filter { $0.value != id }
        if let sid = members.keys.first(where: { members[$0]?.connections.contains(id) == true }) {
            members[sid]?.connections.removeAll { $0 == id }
        }
    }

    /// Runs `body` with connection `id`'s core (JSEP, channels): its outputs follow.
    package func withConnection<R>(
        _ id: MediaConnectionID, _ body: (PeerConnectionCore) throws -> R
    ) throws -> R {
        guard let connection = connections[id] else { throw RoomServerError.unknownConnection(id) }
        defer {
            pending.insert(id)
            register(connection)
        }
        return try body(connection.core)
    }

    /// The sequence of the last reliable data packet participant `sid` sent.
    func lastReliableSequence(of sid: String) -> UInt32 { members[sid]?.lastReliableSequence ?? 0 }

    /// Data channel handles of the downlink of `sid` by label, for tests and the server API.
    func downlinkChannels(of sid: String) -> [String: Int] {
        guard let id = members[sid]?.connections.first(where: { connections[$0]?.role.isDownlink == true }) else {
            return [:]
        }
        return connections[id]?.channels ?? [:]
    }

    /// The connection's ICE ufrag, so STUN checks naming it find it (again after a restart).
    private func register(_ connection: Connection) {
        let ufrag = connection.core.transport.ice.localCredentials.ufrag
        if byUfrag[ufrag] == nil { byUfrag[ufrag] = connection.id }
    }

    // MARK: DatagramMachine

    package func handleDatagram(
        _ data: inout [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) {
        self.now = now
        var id = byAddress[source]
        if DatagramKind(data) == .stun, let message = try? STUNMessage(parsing: data), let username = message.username,
            let ufrag = username.split(separator: ":").first, let named = byUfrag[String(ufrag)]
        {
            // A check naming a connection: its source now belongs to that connection.
            if id != named {
                byAddress[source] = named
                id = named
            }
        }
        guard let id, let connection = connections[id] else {
            statistics.unroutedDatagrams += 1
            return
        }
        if !outages.isEmpty, let until = outages[connection.participant] {
            if now < until { return }
            outages[connection.participant] = nil
        }
        connection.core.handleDatagram(&data, from: source, to: advertisedAddress, now: now)
        pending.insert(id)
        if let forwarded = connection.core.takeForwardedPacket() {
            relay(forwarded, from: TrackEnd(connection: id, mid: forwarded.mid))
        }
    }

    /// Participants whose datagrams are dropped until a time (a simulated network outage).
    private var outages: [String: Duration] = [:]

    /// Drops everything participant `sid` sends until `until`, as a network outage would
    /// (its connection's consent then expires on its side): for tests of media recovery.
    package func simulateOutage(of sid: String, until: Duration) { outages[sid] = until }

    // MARK: media

    /// Sends a publisher's packet on to every subscriber of its track, while the datagram
    /// it lies in is still at hand.
    private func relay(_ forwarded: ForwardedPacket, from track: TrackEnd) {
        if let level = forwarded.audioLevel, let sid = connections[track.connection]?.participant {
            // RFC 6464: -level dBov; kept as a linear amplitude, averaged per participant.
            var activity = audioActivity[sid] ?? (0, 0)
            activity.sum += pow(10, -Double(level.level) / 20)
            activity.packets += 1
            audioActivity[sid] = activity
        }
        if let rid = forwarded.rid {
            statistics.layerPackets[rid, default: 0] += 1
            layerSeen[track, default: [:]][rid] = now
        }
        guard let ends = subscribers[track] else { return }
        for end in ends {
            guard let c = connections[end.connection] else { continue }
            if let s = selections[end] {
                if s.paused { continue }
                if forwarded.rid != s.current {
                    // Another layer: taken at a keyframe of the wanted one — or of any
                    // layer when the current one went silent (a sender drops its higher
                    // layers when its bandwidth or CPU runs short).
                    guard forwarded.startsKeyframe, forwarded.rid == s.wanted || isSilent(s.current, of: track)
                    else {
                        if forwarded.rid == s.wanted, s.wanted != s.current, let asked = s.askedAt,
                            now - asked >= Self.keyframeRetry
                        {
                            selections[end]?.askedAt = now
                            requestKeyframe(of: track, rid: s.wanted, now: now)
                        }
                        continue
                    }
                    selections[end]?.current = forwarded.rid
                }
            }
            if (try? c.core.forward(forwarded, mid: end.mid, now: now)) != nil { statistics.relayedPackets += 1 }
            pending.insert(end.connection)
        }
    }

    /// Relays the track `published` to the transceiver `subscribed`, and asks the publisher
    /// for a keyframe so the new subscriber can start decoding.
    package func subscribe(_ subscribed: TrackEnd, to published: TrackEnd, now: Duration) {
        unsubscribe(subscribed)
        subscribers[published, default: []].append(subscribed)
        sources[subscribed] = published
        let layers = rankedLayers(of: published)
        if !layers.isEmpty { selections[subscribed] = Selection(wanted: layers.last) }
        requestKeyframe(of: published, now: now)
    }

    /// The simulcast layers of a published track, lowest quality first (LiveKit's names
    /// q, h, f; other names in the order the publisher gave them, highest first).
    private func rankedLayers(of published: TrackEnd) -> [String] {
        guard let c = connections[published.connection] else { return [] }
        let rids = c.core.remoteLayers(mid: published.mid)
        let known = ["q", "h", "f"]
        if rids.allSatisfy(known.contains) { return known.filter(rids.contains) }
        return rids.reversed()
    }

    /// What `subscribed` gets of a simulcast track: `quality` 0 (low) to 2 (high), or
    /// nothing while `paused`. The switch happens at the next keyframe of the new layer,
    /// which is asked for.
    func select(_ subscribed: TrackEnd, quality: Int, paused: Bool, now: Duration) {
        guard let published = sources[subscribed] else { return }
        let layers = rankedLayers(of: published)
        var s = selections[subscribed] ?? Selection()
        s.paused = paused
        if !layers.isEmpty {
            let index = quality >= 2 ? layers.count - 1 : (quality <= 0 ? 0 : layers.count / 2)
            s.wanted = layers[index]
        }
        selections[subscribed] = s
        if !paused, s.wanted != s.current || layers.isEmpty {
            selections[subscribed]?.askedAt = now
            requestKeyframe(of: published, rid: s.wanted, now: now)
        }
    }

    /// Stops relaying to `subscribed`.
    func unsubscribe(_ subscribed: TrackEnd) {
        selections[subscribed] = nil
        guard let published = sources.removeValue(forKey: subscribed) else { return }
        subscribers[published]?.removeAll { $0 == subscribed }
        if subscribers[published]?.isEmpty == true { subscribers[published] = nil }
    }

    /// The media packets each participant's connections received and lost (by sequence
    /// gaps) since the last call, by participant sid: what its connection quality is
    /// judged on.
    func takeReception() -> [String: (received: Int, lost: Int)] {
        var out: [String: (received: Int, lost: Int)] = [:]
        for c in connections.values {
            for t in c.core.transceiverList {
                guard let stats = c.core.statistics(mid: t.mid) else { continue }
                let key = ReceptionKey(connection: c.id, mid: t.mid)
                let before = receptionSeen[key] ?? (0, 0)
                receptionSeen[key] = (stats.packetsReceived, stats.packetsLost)
                var sum = out[c.participant] ?? (0, 0)
                sum.received += max(0, stats.packetsReceived - before.received)
                sum.lost += max(0, stats.packetsLost - before.lost)
                out[c.participant] = sum
            }
        }
        return out
    }

    /// A transceiver of a connection, for the reception counts last seen.
    private struct ReceptionKey: Hashable {
        let connection: MediaConnectionID
        let mid: String
    }
    private var receptionSeen: [ReceptionKey: (received: Int, lost: Int)] = [:]

    /// The mean audio level (linear, 0…1) each participant sent since the last call.
    func takeAudioActivity() -> [String: Double] {
        defer { audioActivity.removeAll(keepingCapacity: true) }
        return audioActivity.mapValues { $0.sum / Double(max(1, $0.packets)) }
    }

    /// The transceivers `published` is relayed to.
    package func subscribers(of published: TrackEnd) -> [TrackEnd] { subscribers[published] ?? [] }

    /// Asks the publisher of what `subscribed` receives for a keyframe.
    func requestKeyframe(for subscribed: TrackEnd, now: Duration) {
        if let published = sources[subscribed] {
            // The layer it gets, or every layer when that one went silent.
            let s = selections[subscribed]
            let rid = isSilent(s?.current, of: published) ? nil : s?.current
            requestKeyframe(of: published, rid: rid, now: now)
        }
    }

    private func requestKeyframe(of published: TrackEnd, rid: String? = nil, now: Duration) {
        guard let c = connections[published.connection] else { return }
        try? c.core.requestKeyframe(mid: published.mid, rid: rid, now: now)
        pending.insert(published.connection)
    }

    package func handleTimeout(now: Duration) {
        self.now = now
        for connection in connections.values {
            guard let d = connection.deadline, d <= now else { continue }
            connection.deadline = nil
            connection.core.handleTimeout(now: now)
            pending.insert(connection.id)
        }
    }

    package func pollOutput() -> MachineOutput<Event> {
        while let id = pending.first {
            guard let connection = connections[id] else {
                pending.remove(id)
                continue
            }
            switch connection.core.pollOutput() {
            case .transmit(let datagram):
                return .transmit(Datagram(from: boundAddress, to: datagram.to, data: datagram.data))
            case .event(let event):
                handle(event, on: connection)
            case .wait(let until):
                connection.deadline = until
                pending.remove(id)
            }
        }
        if let event = events.next() { return .event(event) }
        var deadline: Duration?
        for connection in connections.values { deadline = earliest(deadline, connection.deadline) }
        return .wait(until: deadline)
    }

    // MARK: connection events

    private func handle(_ event: PeerConnectionCore.Event, on connection: Connection) {
        switch event {
        case .transport(.ice(.localCandidate(let candidate))):
            events.append(.localCandidate(connection.id, candidate))
        case .connectionState(let state):
            events.append(.connectionState(connection.id, state))
        case .remoteTrack(let mid, let kind, let streamID, let trackID):
            // The server relays what it receives; it never decodes.
            try? connection.core.setReceiveOutput(.forwarded, mid: mid)
            events.append(.remoteTrack(connection.id, mid: mid, kind: kind, streamID: streamID, trackID: trackID))
        case .keyframeRequested(let mid):
            // A subscriber lost a picture: its publisher is asked (the core paces PLIs).
            requestKeyframe(for: TrackEnd(connection: connection.id, mid: mid), now: now)
        case .dataChannel(.opened(let handle, _, let label, _, _)):
            connection.channels[label] = handle
            connection.labels[handle] = label
            if label == "_reliable" {
                for bytes in connection.waitingReliable { deliver(bytes, on: connection, channel: handle) }
                connection.waitingReliable = []
            }
        case .dataChannel(.closed(let handle)):
            if let label = connection.labels.removeValue(forKey: handle) { connection.channels[label] = nil }
        case .dataChannel(.message(let handle, let message)):
            guard let label = connection.labels[handle], case .binary(let bytes) = message else {
                statistics.droppedDataPackets += 1
                return
            }
            relay(bytes, label: label, from: connection)
        default:
            break
        }
    }

    // MARK: data

    /// Relays a data packet a participant sent: decoded, stamped with the sender's identity
    /// and sid (nobody speaks for someone else), and sent on the channel of the same label
    /// to each recipient — the named destination identities, or everyone else in the room.
    private func relay(_ bytes: [UInt8], label: String, from connection: Connection) {
        guard let sender = members[connection.participant], sender.canPublishData,
            var packet = try? Livekit_DataPacket(serializedBytes: bytes)
        else {
            statistics.droppedDataPackets += 1
            return
        }
        packet.participantIdentity = sender.identity
        packet.participantSid = connection.participant
        if label == "_reliable", packet.sequence > 0 {
            members[connection.participant]?.lastReliableSequence = packet.sequence
        }
        var destinations = packet.destinationIdentities
        if case .user(var user)? = packet.value {
            if destinations.isEmpty { destinations = user.destinationIdentities }
            user.participantIdentity = sender.identity
            user.participantSid = connection.participant
            packet.value = .user(user)
        }
        send(packet, label: label, room: sender.room, to: destinations, except: connection.participant)
    }

    /// Sends a data packet on one of `connection`'s channels, counted, its output polled.
    private func deliver(_ bytes: [UInt8], on connection: Connection, channel handle: Int) {
        if (try? connection.core.sendData(.binary(bytes), channel: handle, now: now)) != nil {
            statistics.relayedDataPackets += 1
        }
        pending.insert(connection.id)
    }

    /// Sends a data packet to the participants of `room` named in `identities` (all of
    /// them when empty), except `excluded`, on their downlink channel `label`.
    func send(
        _ packet: Livekit_DataPacket, label: String, room: String, to identities: [String], except excluded: String?
    ) {
        guard let bytes: [UInt8] = try? packet.serializedBytes() else { return }
        for (sid, member) in members where member.room == room && sid != excluded {
            guard identities.isEmpty || identities.contains(member.identity) else { continue }
            for id in member.connections {
                guard let c = connections[id], c.role.isDownlink else { continue }
                if let handle = c.channels[label] {
                    deliver(bytes, on: c, channel: handle)
                } else if label == "_reliable", c.waitingReliable.count < 64 {
                    c.waitingReliable.append(bytes)
                }
            }
        }
    }
}

/// Errors of the server's own making (the signalling side turns them into LiveKit's).
public enum RoomServerError: Error, Sendable, Equatable {
    /// A connection that no longer exists.
    case unknownConnection(MediaConnectionID)
}
