import Foundation
import Testing

@testable import RoomServer

@Suite("LiveKit access tokens")
struct AccessTokenTests {
    let keys = AccessTokenKeys(["devkey": "secret", "other": "a-much-longer-secret-of-more-than-32-bytes"])

    @Test func signedTokensVerifyWithTheirClaims() async throws {
        var grant = VideoGrant.join("demo")
        grant.canPublish = false
        grant.canUpdateOwnMetadata = true
        let claims = AccessTokenClaims(
            identity: "alice", name: "Alice", metadata: "{\"m\":1}", attributes: ["color": "hsl(1,2%,3%)"],
            grant: grant)
        for key in ["devkey", "other"] {
            let token = try await keys.sign(claims, key: key)
            let verified = try await keys.verify(token)
            #expect(verified.issuer == key)
            #expect(verified.identity == "alice")
            #expect(verified.name == "Alice")
            #expect(verified.metadata == "{\"m\":1}")
            #expect(verified.attributes == ["color": "hsl(1,2%,3%)"])
            #expect(verified.video == grant)
        }
    }

    /// A token minted by LiveKit's own Python API (livekit-api 1.2.2, `AccessToken("devkey",
    /// "secret")` with a 70-year lifetime): the claim names and the short development secret
    /// interoperate.
    @Test func verifiesATokenMintedByLiveKitsPythonAPI() async throws {
        let token =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYW1lIjoiUHkiLCJ2aWRlbyI6eyJyb29tSm9pbiI6dHJ1ZSwicm9vbSI6ImRlbW8iLCJjYW5QdWJsaXNoIjpmYWxzZSwiY2FuU3Vic2NyaWJlIjp0cnVlLCJjYW5QdWJsaXNoRGF0YSI6dHJ1ZX0sImF0dHJpYnV0ZXMiOnsiayI6InYifSwic3ViIjoicHkiLCJpc3MiOiJkZXZrZXkiLCJuYmYiOjE3OTYyMjI0NDgsImV4cCI6NDAwMzc0MjQ0OH0.QS4KKCcBQacEUAe48pF1JbLR5sUabtctNjRV9i259vw"
        let claims = try await keys.verify(token)
        #expect(claims.identity == "py")
        #expect(claims.name == "Py")
        #expect(claims.attributes == ["k": "v"])
        #expect(claims.video?.roomJoin == true)
        #expect(claims.video?.room == "demo")
        #expect(claims.video?.canPublish == false)
        #expect(claims.video?.canSubscribe == true)
    }

    @Test func refusesBadTokensWithTheReason() async throws {
        let claims = AccessTokenClaims(identity: "bob", grant: .join("demo"))
        let good = try await keys.sign(claims, key: "devkey")
        let wrongSecret = try await AccessTokenKeys(["devkey": "not-the-secret"]).sign(claims, key: "devkey")
        let unknownKey = try await AccessTokenKeys(["stranger": "secret"]).sign(claims, key: "stranger")
        let expired = try await keys.sign(
            AccessTokenClaims(
                identity: "bob", grant: .join("demo"), validFor: .seconds(10), now: Date(timeIntervalSinceNow: -3600)),
            key: "devkey")
        let early = try await keys.sign(
            AccessTokenClaims(identity: "bob", grant: .join("demo"), now: Date(timeIntervalSinceNow: 3600)),
            key: "devkey")
        // alg "none": the header and payload of a good token, no signature.
        let parts = good.split(separator: ".")
        let noneHeader = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString()
            .replacingOccurrences(of: "=", with: "")
        let unsigned = "\(noneHeader).\(parts[1])."
        let tampered = "\(parts[0]).\(parts[1])x.\(parts[2])"

        await expectRefusal(wrongSecret, .badSignature)
        await expectRefusal(unknownKey, .unknownKey("stranger"))
        await expectRefusal(expired, .expired)
        await expectRefusal(early, .notYetValid)
        await expectRefusal(unsigned, .badSignature)
        for garbage in ["", "abc", "a.b.c", tampered] {
            do {
                _ = try await keys.verify(garbage)
                Issue.record("accepted \(garbage)")
            } catch {
                // Any typed refusal: malformed, or a signature that no longer matches.
            }
        }
    }

    private func expectRefusal(_ token: String, _ expected: AccessTokenError) async {
        do {
            _ = try await keys.verify(token)
            Issue.record("accepted a token that should fail with \(expected)")
        } catch {
            #expect(error == expected)
        }
    }
}
