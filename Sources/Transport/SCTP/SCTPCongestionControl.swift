/// The sender's congestion window and retransmission timeout (RFC 9260 §6.3, §7.2).
struct SCTPCongestionControl {
    /// The largest DATA payload in one packet: the unit windows grow and shrink by.
    let mtu: Int
    /// Congestion window in bytes.
    var cwnd: Int
    /// Slow-start threshold in bytes.
    var ssthresh: Int
    /// Bytes acknowledged toward the next window increase in congestion avoidance.
    var partialBytesAcked = 0
    /// Bytes sent and not yet acknowledged.
    var flightSize = 0
    /// In fast recovery until the cumulative ack reaches this TSN (RFC 9260 §7.2.4).
    var recoveryPoint: UInt32?

    private var smoothedRTT: Duration?
    private var rttVariation: Duration = .zero
    /// The retransmission timeout.
    private(set) var rto: Duration
    private let minRTO: Duration
    private let maxRTO: Duration

    init(mtu: Int, peerWindow: Int, configuration: SCTPConfiguration) {
        self.mtu = mtu
        cwnd = min(4 * mtu, max(2 * mtu, 4380))
        ssthresh = max(peerWindow, 4 * mtu)
        rto = configuration.initialRTO
        minRTO = configuration.minRTO
        maxRTO = configuration.maxRTO
    }

    /// A round-trip measurement (RFC 9260 §6.3.1, C1–C3; α = 1/8, β = 1/4).
    mutating func measured(rtt: Duration) {
        if let srtt = smoothedRTT {
            let error = srtt > rtt ? srtt - rtt : rtt - srtt
            rttVariation = rttVariation * 3 / 4 + error / 4
            smoothedRTT = srtt * 7 / 8 + rtt / 8
        } else {
            smoothedRTT = rtt
            rttVariation = rtt / 2
        }
        rto = min(max((smoothedRTT ?? rtt) + rttVariation * 4, minRTO), maxRTO)
    }

    /// The retransmission timer expired: back off the timeout (RFC 9260 §6.3.3 E2) and
    /// collapse the window to one packet (§7.2.3).
    mutating func timedOut() {
        rto = min(rto * 2, maxRTO)
        ssthresh = max(cwnd / 2, 4 * mtu)
        cwnd = mtu
        partialBytesAcked = 0
        recoveryPoint = nil
    }

    /// Three miss indications: halve the window once per loss event (RFC 9260 §7.2.4).
    mutating func enterFastRecovery(highestOutstanding: UInt32) {
        guard recoveryPoint == nil else { return }
        ssthresh = max(cwnd / 2, 4 * mtu)
        cwnd = ssthresh
        partialBytesAcked = 0
        recoveryPoint = highestOutstanding
    }

    /// A SACK arrived: `acked` bytes newly acknowledged; the window grows only when the
    /// cumulative ack advanced and the window was in use (RFC 9260 §7.2.1, §7.2.2).
    mutating func acknowledged(_ acked: Int, cumulativeAck: UInt32, advanced: Bool, windowWasFull: Bool) {
        if let point = recoveryPoint, point.precedesOrEquals(cumulativeAck) { recoveryPoint = nil }
        guard advanced, acked > 0, recoveryPoint == nil, windowWasFull else { return }
        if cwnd <= ssthresh {
            cwnd += min(acked, mtu)
        } else {
            partialBytesAcked += acked
            if partialBytesAcked >= cwnd {
                partialBytesAcked -= cwnd
                cwnd += mtu
            }
        }
    }

    /// Whether `bytes` more may be sent now (one packet may always be in flight).
    func allows(_ bytes: Int) -> Bool { flightSize == 0 || flightSize + bytes <= cwnd }
}
