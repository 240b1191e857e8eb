// swift-tools-version:6.1
//
// MeetKit — an embeddable Swift SDK for sovereign video conferencing.
// Layers, bottom to top: C libraries → Codec → Transport → Signaling → RoomClient.
// Documentation/Architecture.md explains who owns what.

import PackageDescription

let package = Package(
    name: "MeetKit",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MeetKit", targets: ["MeetKit"]),
        .library(name: "Codec", targets: ["Codec"]),
        .library(name: "Transport", targets: ["Transport"]),
        .library(name: "Signaling", targets: ["Signaling"]),
        .library(name: "RoomClient", targets: ["RoomClient"]),
        .library(name: "MeetKitTestSupport", targets: ["MeetKitTestSupport"]),
        .executable(name: "codec-demo", targets: ["CodecDemo"]),
        .executable(name: "meetkit-bench", targets: ["MeetKitBench"]),
        .executable(name: "meet-bot", targets: ["MeetBot"]),
        .executable(name: "meet-peer", targets: ["MeetPeer"]),
        .executable(name: "bot-room-bench", targets: ["BotRoomBench"]),
        .executable(name: "meet-server", targets: ["MeetServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.0"),
        // Allocation counters for the benchmarks (the ones behind ordo-one/package-benchmark).
        .package(url: "https://github.com/ordo-one/malloc-interposer", from: "1.6.1"),
        // LiveKit's protocol messages (generated once by Scripts/generate-protos, committed).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // meet-server: HTTP and WebSocket, and LiveKit's access tokens (JWT).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        // gzip and raw deflate (LiveKit's wrapped join requests and compressed data streams).
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // MARK: C libraries, found through pkg-config (Debian packages named in `providers`).
        .systemLibrary(
            name: "CSRTP", path: "Sources/CSRTP", pkgConfig: "libsrtp2",
            providers: [.apt(["libsrtp2-dev"])]),
        .systemLibrary(
            name: "COpus", path: "Sources/COpus", pkgConfig: "opus",
            providers: [.apt(["libopus-dev"])]),
        .systemLibrary(
            name: "CVPX", path: "Sources/CVPX", pkgConfig: "vpx",
            providers: [.apt(["libvpx-dev"])]),
        .systemLibrary(
            name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),
        // The one C target: wrappers for what Swift cannot call (variadic ctl functions,
        // function-like init macros).
        .target(name: "CMeetKitShim", dependencies: ["COpus", "CVPX"]),
        .target(name: "CMeetKitSocket"),
        .target(name: "CMeetKitCrypto", linkerSettings: [.linkedLibrary("crypto")]),

        // MARK: MeetKit layers
        .target(
            name: "Codec",
            dependencies: ["COpus", "CVPX", "CMeetKitShim"]),
        // Transport is several modules, one per concern, each importing only what it uses;
        // `import Transport` re-exports them all.
        .target(name: "MeetKitNet", path: "Sources/Transport/Net"),
        .target(name: "MeetKitSDP", dependencies: ["MeetKitNet"], path: "Sources/Transport/SDP"),
        .target(
            name: "MeetKitICE", dependencies: ["MeetKitNet", "MeetKitSDP", "COpenSSL"], path: "Sources/Transport",
            sources: ["STUN", "ICE"]),
        .target(name: "MeetKitRTP", dependencies: ["MeetKitNet", "Codec"], path: "Sources/Transport/RTP"),
        .target(
            name: "MeetKitDTLS", dependencies: ["MeetKitNet", "MeetKitRTP", "COpenSSL", "CSRTP", "CMeetKitCrypto"],
            path: "Sources/Transport", sources: ["DTLS", "SRTP"]),
        .target(
            name: "MeetKitSCTP",
            dependencies: ["MeetKitNet", .product(name: "DequeModule", package: "swift-collections")],
            path: "Sources/Transport/SCTP"),
        .target(
            name: "Transport",
            dependencies: [
                "MeetKitNet", "MeetKitSDP", "MeetKitICE", "MeetKitRTP", "MeetKitDTLS", "MeetKitSCTP", "Codec",
                "CMeetKitSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/Transport", sources: ["Transport.swift", "Media", "Driver", "PeerConnection"]),
        .target(
            name: "Signaling",
            dependencies: [
                "MeetKitSDP", "LiveKitProtocol",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        // LiveKit's signalling and server-API messages, shared by the LiveKit client and
        // meet-server (package access: they never become MeetKit's public API).
        .target(
            name: "LiveKitProtocol",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["Generated/README.md"]),
        // A LiveKit-compatible room server for development and tests (meet-server).
        .target(
            name: "RoomServer",
            dependencies: [
                "LiveKitProtocol", "Transport", "MeetKitICE", "MeetKitSDP", "MeetKitRTP", "MeetKitSCTP", "Codec",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .target(
            name: "RoomClient",
            dependencies: [
                "Signaling", "Transport", "Codec",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        // The umbrella: every layer in one import.
        .target(name: "MeetKit", dependencies: ["Codec", "Transport", "Signaling", "RoomClient"]),
        .target(
            name: "MeetKitTestSupport",
            dependencies: [
                "Codec", "Transport", "CMeetKitTestShim",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .target(name: "CMeetKitTestShim"),

        // MARK: Examples and benchmarks
        .executableTarget(
            name: "CodecDemo",
            dependencies: [
                "Codec", "MeetKitTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/CodecDemo"),
        .executableTarget(
            name: "MeetBot",
            dependencies: [
                "RoomClient", "Signaling", "Transport", "Codec",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/MeetBot"),
        .executableTarget(
            name: "MeetKitBench",
            dependencies: [
                "Codec", "Transport", "MeetKitTestSupport", "RoomServer", "COpus", "CVPX", "CMeetKitShim", "CSRTP",
                "CMeetKitSocket",
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/MeetKitBench"),

        .executableTarget(
            name: "MeetPeer",
            dependencies: [
                "Transport", "Codec",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/MeetPeer"),
        .executableTarget(
            name: "MeetServer",
            dependencies: [
                "RoomServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/MeetServer"),
        .executableTarget(
            name: "BotRoomBench",
            dependencies: ["RoomClient", "RoomServer", "Signaling", "Transport", "Codec", "MeetKitTestSupport", "COpus"],
            path: "Benchmarks/BotRoomBench"),

        // MARK: Tests
        .testTarget(
            name: "CodecTests",
            dependencies: ["Codec", "MeetKitTestSupport", "COpus", "CMeetKitShim"]),
        .testTarget(
            name: "TransportTests",
            dependencies: [
                "Transport", "MeetKitNet", "MeetKitSDP", "MeetKitICE", "MeetKitRTP", "MeetKitDTLS", "MeetKitSCTP",
                "Codec", "MeetKitTestSupport",
            ],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "SignalingTests",
            dependencies: ["Signaling", "Transport", "MeetKitTestSupport"]),
        .testTarget(
            name: "RoomClientTests",
            dependencies: ["RoomClient", "Signaling", "Transport", "Codec", "MeetKit", "MeetKitTestSupport"]),
        .testTarget(
            name: "RoomServerTests",
            dependencies: [
                "RoomServer", "LiveKitProtocol", "Transport", "Signaling", "RoomClient", "Codec", "MeetKitTestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]),
    ]
)
