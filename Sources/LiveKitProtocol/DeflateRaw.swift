import CompressNIO
import Foundation
import NIOCore

/// Raw DEFLATE (RFC 1951: no zlib or gzip wrapper), the `DEFLATE_RAW` compression of
/// LiveKit's data streams: a whole stream's content is compressed once, then cut into
/// chunks (or carried inline in its header).
package enum DeflateRaw {
    /// Why compressed content could not be read.
    package enum Failure: Error, Sendable, Equatable {
        /// Not a valid raw DEFLATE stream (or a truncated one).
        case corrupt
        /// It inflates beyond the size the receiver accepts.
        case tooLarge
    }

    /// `bytes` compressed.
    package static func compress(_ bytes: some Collection<UInt8>) -> Data {
        var buffer = ByteBuffer(bytes: bytes)
        // Compressing into a growing buffer only fails on allocation failure, which traps anyway.
        guard let compressed = try? buffer.compress(with: .deflate()) else {
            preconditionFailure("raw DEFLATE compression failed")
        }
        return Data(compressed.readableBytesView)
    }

    /// The content of `compressed`, refused beyond `maxSize` bytes.
    package static func inflate(_ compressed: Data, maxSize: Int) throws(Failure) -> Data {
        var buffer = ByteBuffer(bytes: compressed)
        do {
            let inflated = try buffer.decompress(with: .deflate(), maxSize: maxSize)
            return Data(inflated.readableBytesView)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw .tooLarge
        } catch {
            throw .corrupt
        }
    }
}
