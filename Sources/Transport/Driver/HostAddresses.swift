import NIOCore
import NIOPosix

/// The machine's addresses that ICE gathers host candidates from (RFC 8445 §5.1.1.1).
public enum HostAddresses {
    /// Addresses of the machine's interfaces. Loopback is left out unless
    /// `includeLoopback` (tests on one machine want it); IPv6 link-local addresses are left
    /// out, as RFC 8445 §5.1.1.1 advises.
    public static func discover(includeLoopback: Bool = false, includeIPv6: Bool = true) throws -> [IPAddress] {
        var seen: Set<IPAddress> = []
        var out: [IPAddress] = []
        for device in try System.enumerateDevices() {
            guard let text = device.address?.ipAddress, let ip = IPAddress(text) else { continue }
            if ip.isLoopback && !includeLoopback { continue }
            if ip.isIPv6 && (!includeIPv6 || ip.isLinkLocal) { continue }
            if seen.insert(ip).inserted { out.append(ip) }
        }
        return out
    }
}

extension ICETransport {
    /// Starts on every address of the machine's interfaces (see ``HostAddresses``).
    public static func start(
        configuration: ICEConfiguration = .init(), includeLoopback: Bool = false, includeIPv6: Bool = true,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ICETransport {
        let addresses = try HostAddresses.discover(includeLoopback: includeLoopback, includeIPv6: includeIPv6)
        return try await start(configuration: configuration, localAddresses: addresses, group: group)
    }
}
