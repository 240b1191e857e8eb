import MeetKitNet

/// Retransmission settings of a STUN client transaction over UDP (RFC 8489 §6.2.1).
public struct STUNRetransmissionPolicy: Sendable, Equatable {
    /// The first retransmission timeout; doubles after each transmission.
    public var initialRTO: Duration
    /// Transmissions in all, the first included (Rc).
    public var maxTransmissions: Int
    /// After the last transmission, the wait is this many initial RTOs (Rm).
    public var finalWaitMultiplier: Int

    /// A policy with the given values.
    public init(initialRTO: Duration = .milliseconds(500), maxTransmissions: Int = 7, finalWaitMultiplier: Int = 16) {
        self.initialRTO = initialRTO
        self.maxTransmissions = max(1, maxTransmissions)
        self.finalWaitMultiplier = max(1, finalWaitMultiplier)
    }

    /// RFC 8489's defaults: 500 ms, 7 transmissions, final wait 16 × RTO (39.5 s in all).
    public static let rfc8489 = STUNRetransmissionPolicy()
}

/// One outstanding STUN request, sans-IO: it says when to retransmit and when to give up;
/// the caller sends and receives.
///
/// ```swift
/// var transaction = STUNClientTransaction(request: bytes, id: message.transactionID, now: now)
/// send(bytes)
/// // at transaction.nextDeadline:
/// switch transaction.handleTimeout(now: now) {
/// case .retransmit(let again): send(again)
/// case .failed: giveUp()
/// case nil: break
/// }
/// ```
public struct STUNClientTransaction: Sendable {
    /// What a deadline brings.
    public enum TimeoutAction: Sendable, Equatable {
        /// Send these bytes again.
        case retransmit([UInt8])
        /// No response came: the transaction failed.
        case failed
    }

    /// The transaction's ID, to match responses.
    public let id: STUNTransactionID
    /// The encoded request.
    public let request: [UInt8]
    /// The policy in force.
    public let policy: STUNRetransmissionPolicy
    /// Transmissions so far (the first included).
    public private(set) var transmissions = 1
    /// When ``handleTimeout(now:)`` must next be called.
    public private(set) var nextDeadline: Duration
    private var rto: Duration

    /// A transaction whose request the caller sends at `now`.
    public init(
        request: [UInt8], id: STUNTransactionID, policy: STUNRetransmissionPolicy = .rfc8489, now: Duration
    ) {
        self.request = request
        self.id = id
        self.policy = policy
        rto = policy.initialRTO
        nextDeadline = now + (policy.maxTransmissions == 1 ? policy.initialRTO * policy.finalWaitMultiplier : rto)
    }

    /// Advances the transaction to `now`: a retransmission, a failure, or nil if the
    /// deadline has not come.
    public mutating func handleTimeout(now: Duration) -> TimeoutAction? {
        guard now >= nextDeadline else { return nil }
        if transmissions >= policy.maxTransmissions { return .failed }
        transmissions += 1
        rto = rto * 2
        nextDeadline =
            transmissions == policy.maxTransmissions
            ? now + policy.initialRTO * policy.finalWaitMultiplier : now + rto
        return .retransmit(request)
    }
}
