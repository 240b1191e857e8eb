import MeetKitNet

/// A SACK chunk (RFC 9260 §3.3.4): the cumulative TSN received, the receive window, the
/// blocks received beyond it and the TSNs received twice.
public struct SCTPSackChunk: Sendable, Equatable {
    /// A run of TSNs received after a gap, as offsets from the cumulative TSN.
    public struct GapBlock: Sendable, Equatable {
        /// First TSN of the block, minus the cumulative TSN.
        public var start: UInt16
        /// Last TSN of the block, minus the cumulative TSN.
        public var end: UInt16
        public init(start: UInt16, end: UInt16) {
            self.start = start
            self.end = end
        }
    }

    /// Every TSN up to this one has arrived.
    public var cumulativeTSNAck: UInt32
    /// The sender's free receive buffer in bytes.
    public var advertisedReceiverWindow: UInt32
    /// Blocks received beyond the cumulative TSN, in order.
    public var gapBlocks: [GapBlock]
    /// TSNs received more than once since the last SACK.
    public var duplicateTSNs: [UInt32]

    /// A SACK from its fields.
    public init(
        cumulativeTSNAck: UInt32, advertisedReceiverWindow: UInt32, gapBlocks: [GapBlock] = [],
        duplicateTSNs: [UInt32] = []
    ) {
        self.cumulativeTSNAck = cumulativeTSNAck
        self.advertisedReceiverWindow = advertisedReceiverWindow
        self.gapBlocks = gapBlocks
        self.duplicateTSNs = duplicateTSNs
    }

    init(value: ArraySlice<UInt8>) throws(SCTPError) {
        guard value.count >= 12 else { throw .truncated(needed: 12, available: value.count) }
        let gaps = Int(value.be16(at: 8))
        let duplicates = Int(value.be16(at: 10))
        let needed = 12 + 4 * gaps + 4 * duplicates
        guard value.count >= needed else { throw .truncated(needed: needed, available: value.count) }
        var blocks: [GapBlock] = []
        blocks.reserveCapacity(gaps)
        for i in 0..<gaps {
            let block = GapBlock(start: value.be16(at: 12 + 4 * i), end: value.be16(at: 14 + 4 * i))
            guard block.start >= 1, block.start <= block.end else {
                throw .malformed("gap block \(block.start)–\(block.end)")
            }
            blocks.append(block)
        }
        self.init(
            cumulativeTSNAck: value.be32(at: 0), advertisedReceiverWindow: value.be32(at: 4), gapBlocks: blocks,
            duplicateTSNs: (0..<duplicates).map { value.be32(at: 12 + 4 * gaps + 4 * $0) })
    }

    func serializeValue(into out: inout [UInt8]) {
        putBE32(&out, cumulativeTSNAck)
        putBE32(&out, advertisedReceiverWindow)
        putBE16(&out, UInt16(gapBlocks.count))
        putBE16(&out, UInt16(duplicateTSNs.count))
        for b in gapBlocks {
            putBE16(&out, b.start)
            putBE16(&out, b.end)
        }
        for d in duplicateTSNs { putBE32(&out, d) }
    }
}
