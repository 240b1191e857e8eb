#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What went wrong reading or writing a media file.
public enum MediaFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed (`errno` from the C library).
    case io(path: String, operation: String, errno: Int32)
    /// The data ends before `context` is complete: `needed` more bytes at `offset`.
    case truncated(context: String, offset: Int, needed: Int)
    /// A header or structure is not what the format requires.
    case invalidFormat(String)
    /// A valid file using a feature MeetKit does not read (e.g. 24-bit WAV).
    case unsupported(String)
    /// A checksum does not match (Ogg page CRC).
    case checksumMismatch(context: String)
    /// The writer is already finished.
    case finished
    /// A frame does not fit the file (wrong codec, format or channel count).
    case invalidFrame(String)

    public var description: String {
        switch self {
        case .io(let path, let op, let code):
            "\(op) \(path): \(String(cString: strerror(code)))"
        case .truncated(let context, let offset, let needed):
            "truncated file: \(context) needs \(needed) more byte(s) at offset \(offset)"
        case .invalidFormat(let what): "invalid file: \(what)"
        case .unsupported(let what): "unsupported file: \(what)"
        case .checksumMismatch(let context): "checksum mismatch in \(context)"
        case .finished: "the writer is already finished"
        case .invalidFrame(let what): "frame does not fit the file: \(what)"
        }
    }
}

/// A file opened for writing, with positioned rewrites for headers that are finalised
/// at the end (WAV sizes, IVF frame count).
final class FileSink {
    let path: String
    private var fd: Int32
    private(set) var offset = 0

    init(path: String) throws(MediaFileError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
    }

    deinit { if fd >= 0 { _ = closeDescriptor(fd) } }

    /// Appends the memory of `elements` (bytes, or little-endian samples on a
    /// little-endian machine).
    func write<T: BitwiseCopyable>(_ elements: [T]) throws(MediaFileError) {
        try write(elements, at: offset)
        offset += elements.count * MemoryLayout<T>.stride
    }

    func write<T: BitwiseCopyable>(_ elements: [T], at position: Int) throws(MediaFileError) {
        let failure: MediaFileError? = elements.withUnsafeBytes { raw in
            do throws(MediaFileError) {
                try write(raw, at: position)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    private func write(_ bytes: UnsafeRawBufferPointer, at position: Int) throws(MediaFileError) {
        guard fd >= 0 else { throw .finished }
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, base + done, bytes.count - done, off_t(position + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "write", errno: errno)
            }
            done += n
        }
    }

    func close() throws(MediaFileError) {
        guard fd >= 0 else { return }
        let rc = closeDescriptor(fd)
        fd = -1
        guard rc == 0 else { throw .io(path: path, operation: "close", errno: errno) }
    }
}

/// Sequential reading over bytes in memory or a file, with typed truncation errors.
final class ByteSource {
    private var buffer: [UInt8]
    private var index = 0
    private var fd: Int32 = -1
    private var fileOffset = 0
    private let path: String
    /// Bytes consumed so far.
    var position: Int { fileOffset - (buffer.count - index) }

    init(bytes: [UInt8]) {
        buffer = bytes
        fileOffset = bytes.count
        path = "<memory>"
    }

    init(path: String) throws(MediaFileError) {
        self.path = path
        buffer = []
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
    }

    deinit { if fd >= 0 { _ = closeDescriptor(fd) } }

    /// Refills so that at least `count` bytes are buffered, if the file has them. Memory
    /// grows only by what was actually read, in chunks of at most 1 MiB, so a length field
    /// that claims gigabytes in a short file costs nothing before the typed truncation.
    private func fill(_ count: Int) throws(MediaFileError) {
        guard fd >= 0, buffer.count - index < count else { return }
        buffer.removeSubrange(0..<index)
        index = 0
        var scratch = [UInt8](repeating: 0, count: min(max(count - buffer.count, 1 << 16), 1 << 20))
        while buffer.count < count {
            let n = scratch.withUnsafeMutableBytes { readDescriptor(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            buffer.append(contentsOf: scratch[0..<n])
            fileOffset += n
        }
    }

    /// Whether no byte is left.
    func atEnd() throws(MediaFileError) -> Bool {
        try fill(1)
        return index >= buffer.count
    }

    /// Exactly `count` bytes, or ``MediaFileError/truncated(context:offset:needed:)``.
    func read(_ count: Int, _ context: String) throws(MediaFileError) -> ArraySlice<UInt8> {
        guard count >= 0 else { throw .invalidFormat("negative length in \(context)") }
        try fill(count)
        let available = buffer.count - index
        guard available >= count else {
            throw .truncated(context: context, offset: position, needed: count - available)
        }
        defer { index += count }
        return buffer[index..<(index + count)]
    }

    /// Up to `count` bytes: fewer only at the end.
    func readUpTo(_ count: Int) throws(MediaFileError) -> ArraySlice<UInt8> {
        try fill(count)
        let n = min(count, buffer.count - index)
        defer { index += n }
        return buffer[index..<(index + n)]
    }

    func skip(_ count: Int, _ context: String) throws(MediaFileError) {
        var left = count
        while left > 0 {
            let step = min(left, 1 << 20)
            _ = try read(step, context)
            left -= step
        }
    }
}

extension ArraySlice<UInt8> {
    /// Little-endian unsigned integer of `size` bytes at `offset` from the slice start.
    func le(_ offset: Int, _ size: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in (0..<size).reversed() { v = v << 8 | UInt64(self[startIndex + offset + i]) }
        return v
    }
}

extension Array<UInt8> {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }

    mutating func appendASCII(_ s: String) { append(contentsOf: Array(s.utf8)) }
}

private func closeDescriptor(_ fd: Int32) -> Int32 { close(fd) }
private func readDescriptor(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
