import CMeetKitSocket
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

// The driver's own reads of a UDP socket (with a read interval): recvmmsg(2) straight into
// buffers the driver keeps, each source address read from its bytes — without NIO's
// per-datagram envelope, buffer slice, formatted socket address and pipeline, which cost
// about as much as the rest of receiving a packet outside SRTP and the codec.

extension TransportAddress {
    /// The address of an IPv4 socket address.
    init(_ address: sockaddr_in) {
        self.init(ip: .v4(UInt32(bigEndian: address.sin_addr.s_addr)), port: UInt16(bigEndian: address.sin_port))
    }

    /// The address of an IPv6 socket address.
    init(_ address: sockaddr_in6) {
        var raw = address.sin6_addr
        let (high, low) = withUnsafeBytes(of: &raw) { b in
            (b.loadUnaligned(fromByteOffset: 0, as: UInt64.self), b.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
        self.init(
            ip: .v6(high: UInt64(bigEndian: high), low: UInt64(bigEndian: low)),
            port: UInt16(bigEndian: address.sin6_port))
    }

    /// The address in a socket address of either family; nil for any other family.
    init?(_ storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET: self.init(withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in.self) })
        case AF_INET6: self.init(withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in6.self) })
        default: return nil
        }
    }
}

/// A UDP socket of the driver's own, bound to `ip`:`port` (0: any) with the address
/// reusable, for NIO to take (`DatagramBootstrap.withBoundSocket`) while the driver reads
/// it itself.
func boundUDPSocket(_ ip: IPAddress, port: UInt16) throws(UDPDriverError) -> Int32 {
    let family = if case .v4 = ip { AF_INET } else { AF_INET6 }
    let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw .bindFailed(ip.description) }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    let bound: Int32
    switch ip {
    case .v4(let value):
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = value.bigEndian
        bound = bind(fd, to: a)
    case .v6(let high, let low):
        var a = sockaddr_in6()
        a.sin6_family = sa_family_t(AF_INET6)
        a.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &a.sin6_addr) { b in
            b.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
            b.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
        bound = bind(fd, to: a)
    }
    guard bound == 0 else {
        close(fd)
        throw .bindFailed(ip.description)
    }
    return fd
}

/// bind(2) of `fd` to `address`, a `sockaddr_in` or `sockaddr_in6`.
private func bind<Address>(_ fd: Int32, to address: Address) -> Int32 {
    withUnsafePointer(to: address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<Address>.size))
        }
    }
}

/// Reads datagrams of one socket into a driver with recvmmsg(2), through buffers kept from
/// one read to the next (nothing allocated per datagram).
final class DirectReader {
    private var buffers = [UInt8](repeating: 0, count: datagramsPerSystemCall * datagramCapacity)
    private var lengths = [Int32](repeating: 0, count: datagramsPerSystemCall)
    private var sources = [sockaddr_storage](repeating: sockaddr_storage(), count: datagramsPerSystemCall)

    /// Reads what waits on `fd`, at most `calls` system calls, handing each datagram to
    /// `deliver` (its bytes lent for the call, and its source). Returns how many were read;
    /// a system call that fails (an ICMP error reported on the socket, say) ends the read.
    func read(
        _ fd: Int32, calls: Int, deliver: (UnsafeRawBufferPointer, TransportAddress) -> Void
    ) -> Int {
        var total = 0
        for _ in 0..<calls {
            let n = buffers.withUnsafeMutableBufferPointer { b in
                mk_receive_datagrams(
                    fd, b.baseAddress, Int32(datagramCapacity), Int32(datagramsPerSystemCall), &lengths, &sources)
            }
            guard n > 0 else { break }
            buffers.withUnsafeBytes { b in
                for i in 0..<Int(n) {
                    guard let source = TransportAddress(sources[i]) else { continue }
                    let start = i * datagramCapacity
                    let length = min(Int(lengths[i]), datagramCapacity)
                    deliver(UnsafeRawBufferPointer(rebasing: b[start..<start + length]), source)
                }
            }
            total += Int(n)
            if n < datagramsPerSystemCall { break }
        }
        return total
    }
}
