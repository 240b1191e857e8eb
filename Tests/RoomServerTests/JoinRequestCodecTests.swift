import CompressNIO
import Foundation
import LiveKitProtocol
import NIOCore
import Testing

@Suite("/rtc/v1 join requests")
struct JoinRequestCodecTests {
    @Test func roundTripsCompressedAndPlain() throws {
        var request = Livekit_JoinRequest()
        request.metadata = "meta"
        request.participantAttributes = ["a": "b"]
        request.connectionSettings.autoSubscribe = true
        request.publisherOffer.type = "offer"
        request.publisherOffer.sdp = String(repeating: "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n", count: 50)
        for compress in [true, false] {
            let encoded = try JoinRequestCodec.encode(request, compress: compress)
            #expect(!encoded.contains("+") && !encoded.contains("/"))
            #expect(try JoinRequestCodec.decode(encoded) == request)
        }
    }

    @Test func refusesWhatIsNotAJoinRequest() throws {
        #expect(throws: JoinRequestCodec.Failure.notBase64) { try JoinRequestCodec.decode("%%%") }
        // A wrapper claiming gzip around bytes that are not.
        var wrapped = Livekit_WrappedJoinRequest()
        wrapped.compression = .gzip
        wrapped.joinRequest = Data("not gzip at all".utf8)
        let notGzip = try wrapped.serializedData().base64EncodedString()
        #expect(throws: JoinRequestCodec.Failure.badCompression) { try JoinRequestCodec.decode(notGzip) }
        // A gzip bomb: 16 MiB of zeros inflates past the limit and is refused, not inflated.
        var zeros = ByteBuffer(bytes: [UInt8](repeating: 0, count: 16 << 20))
        let bomb = try zeros.compress(with: .gzip())
        wrapped.joinRequest = Data(bomb.readableBytesView)
        let encodedBomb = try wrapped.serializedData().base64EncodedString()
        #expect(throws: JoinRequestCodec.Failure.badCompression) { try JoinRequestCodec.decode(encodedBomb) }
        // Bytes that are no protobuf message.
        let garbage = Data([0xFF, 0xFF, 0xFF, 0xFF]).base64EncodedString()
        #expect(throws: JoinRequestCodec.Failure.malformed) { try JoinRequestCodec.decode(garbage) }
    }
}
