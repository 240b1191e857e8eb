import CompressNIO
import Foundation
import NIOCore
import SwiftProtobuf

/// The `join_request` parameter of LiveKit's `/rtc/v1`: a `WrappedJoinRequest` (the
/// JoinRequest's bytes, gzip-compressed or not) in URL-safe base64.
package enum JoinRequestCodec {
    /// Why a `join_request` could not be read.
    package enum Failure: Error, Sendable, Equatable {
        /// Not base64 (URL-safe or standard, padded or not).
        case notBase64
        /// The wrapper or the request does not decode.
        case malformed
        /// The compressed request does not inflate, or inflates beyond `maxSize`.
        case badCompression
    }

    /// The largest join request accepted once inflated (an offer with many sections fits).
    package static let maxSize = 256 * 1024

    /// The parameter's value for `request`, gzip-compressed when `compress`.
    package static func encode(_ request: Livekit_JoinRequest, compress: Bool = true) throws -> String {
        var wrapped = Livekit_WrappedJoinRequest()
        let bytes: [UInt8] = try request.serializedBytes()
        if compress {
            var buffer = ByteBuffer(bytes: bytes)
            let compressed = try buffer.compress(with: .gzip())
            wrapped.compression = .gzip
            wrapped.joinRequest = Data(compressed.readableBytesView)
        } else {
            wrapped.joinRequest = Data(bytes)
        }
        let data: Data = try wrapped.serializedData()
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/", with: "_")
    }

    /// The JoinRequest of a parameter's value.
    package static func decode(_ value: String) throws(Failure) -> Livekit_JoinRequest {
        var base64 = value.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 = base64.replacingOccurrences(of: "=", with: "")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64) else { throw .notBase64 }
        let wrapped: Livekit_WrappedJoinRequest
        do {
            wrapped = try Livekit_WrappedJoinRequest(serializedBytes: data)
        } catch {
            throw .malformed
        }
        var bytes = wrapped.joinRequest
        if wrapped.compression == .gzip {
            var buffer = ByteBuffer(bytes: bytes)
            do {
                let inflated = try buffer.decompress(with: .gzip(), maxSize: maxSize)
                bytes = Data(inflated.readableBytesView)
            } catch {
                throw .badCompression
            }
        }
        do {
            return try Livekit_JoinRequest(serializedBytes: bytes)
        } catch {
            throw .malformed
        }
    }
}
