import Synchronization

/// Replies a client waits for, by key, each with a deadline: a reply that comes before
/// anyone waits for it is kept (a few, the latest) for the next ``wait(for:timeout:what:)``.
final class PendingReplies<Value: Sendable>: Sendable {
    private struct State {
        /// Each waiter with its serial number, so that a deadline fails only its own wait.
        var waiters: [String: (serial: Int, continuation: CheckedContinuation<Value, any Error>)] = [:]
        var nextSerial = 0
        var early: [(key: String, value: Value)] = []
        var failure: LiveKitError?
    }
    private let state = Mutex(State())

    /// The reply for `key`, or ``LiveKitError/timedOut(_:)`` naming `what` after `timeout`.
    func wait(for key: String, timeout: Duration, what: String) async throws(LiveKitError) -> Value {
        do {
            return try await withCheckedThrowingContinuation { (c: CheckedContinuation<Value, any Error>) in
                var serial = 0
                let immediate = state.withLock { s -> Result<Value, LiveKitError>? in
                    if let failure = s.failure { return .failure(failure) }
                    if let i = s.early.firstIndex(where: { $0.key == key }) {
                        return .success(s.early.remove(at: i).value)
                    }
                    s.waiters.removeValue(forKey: key)?.continuation.resume(throwing: LiveKitError.timedOut(what))
                    s.nextSerial += 1
                    serial = s.nextSerial
                    s.waiters[key] = (serial, c)
                    return nil
                }
                switch immediate {
                case .success(let value)?: c.resume(returning: value)
                case .failure(let error)?: c.resume(throwing: error)
                case nil:
                    Task { [serial] in
                        try? await Task.sleep(for: timeout)
                        self.fail(key, .timedOut(what), onlyWaiter: serial)
                    }
                }
            }
        } catch let error as LiveKitError {
            throw error
        } catch {
            throw .timedOut(what)
        }
    }

    /// The reply for `key` arrived.
    func resolve(_ key: String, _ value: Value) {
        let waiter = state.withLock { s -> CheckedContinuation<Value, any Error>? in
            if let w = s.waiters.removeValue(forKey: key) { return w.continuation }
            s.early.removeAll { $0.key == key }
            s.early.append((key, value))
            if s.early.count > 16 { s.early.removeFirst() }
            return nil
        }
        waiter?.resume(returning: value)
    }

    /// The wait for `key` fails with `error` (only if it is still wait `serial`, when given).
    func fail(_ key: String, _ error: LiveKitError, onlyWaiter serial: Int? = nil) {
        let waiter = state.withLock { s -> CheckedContinuation<Value, any Error>? in
            guard let w = s.waiters[key], serial == nil || w.serial == serial else { return nil }
            s.waiters[key] = nil
            return w.continuation
        }
        waiter?.resume(throwing: error)
    }

    /// Every wait now fails with `error`, and replies kept early are dropped; later waits
    /// wait as usual (a new session began: what the old one was asked is not answered).
    func failWaiting(_ error: LiveKitError) {
        let waiters = state.withLock { s in
            defer {
                s.waiters = [:]
                s.early = []
            }
            return s.waiters.values.map(\.continuation)
        }
        for w in waiters { w.resume(throwing: error) }
    }

    /// Every wait, now and later, fails with `error` (the connection ended).
    func failAll(_ error: LiveKitError) {
        let waiters = state.withLock { s in
            s.failure = error
            defer { s.waiters = [:] }
            return s.waiters.values.map(\.continuation)
        }
        for w in waiters { w.resume(throwing: error) }
    }
}
