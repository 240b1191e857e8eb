/// What a sans-IO machine hands its driver next, from its one output call
/// (`pollOutput()`): a datagram to send, an event, or — when it has nothing more until
/// the next input — the time its timer must fire (nil: no timer).
///
/// Drivers call `pollOutput()` after every input (a datagram, a timeout, an API call)
/// until it returns ``wait(until:)``. A machine pulls the machines inside it itself (the
/// PeerConnection its secure transport, the transport its ICE agent and DTLS endpoint),
/// so nothing between a machine and its driver relays outputs by hand.
///
/// ```swift
/// machine.handleDatagram(bytes, from: source, to: local, now: now)
/// loop: while true {
///     switch machine.pollOutput() {
///     case .transmit(let d): socket(d.from).send(d.data, to: d.to)
///     case .event(let e): handle(e)
///     case .wait(let deadline): timer.schedule(deadline); break loop
///     }
/// }
/// ```
public enum MachineOutput<Event> {
    /// A datagram to send now.
    case transmit(Datagram)
    /// Something the machine reports.
    case event(Event)
    /// Nothing more now: call `handleTimeout(now:)` at this time (nil: only new input
    /// wakes the machine).
    case wait(until: Duration?)
}

extension MachineOutput: Sendable where Event: Sendable {}
extension MachineOutput: Equatable where Event: Equatable {}

/// A first-in first-out queue that keeps its storage: appending and taking allocate
/// nothing once it has grown to its working size (a machine's outputs between two polls).
@usableFromInline
package struct OutputQueue<Element> {
    @usableFromInline var items: [Element] = []
    @usableFromInline var head = 0

    /// An empty queue.
    @inlinable package init() {}

    /// Whether nothing is waiting.
    @inlinable package var isEmpty: Bool { head == items.count }

    /// Queues `element` last.
    @inlinable package mutating func append(_ element: Element) { items.append(element) }

    /// Takes the oldest element, if any.
    @inlinable package mutating func next() -> Element? {
        guard head < items.count else { return nil }
        let element = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        }
        return element
    }
}

extension OutputQueue: Sendable where Element: Sendable {}

/// The earlier of two deadlines (nil: none), without building an array on a hot path.
@inlinable package func earliest(_ a: Duration?, _ b: Duration?) -> Duration? {
    guard let a else { return b }
    guard let b else { return a }
    return min(a, b)
}
