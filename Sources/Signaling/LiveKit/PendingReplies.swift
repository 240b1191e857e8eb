import Synchronization

/// Replies a client waits for, by key, each with a deadline: a reply that comes before
/// anyone waits for it is kept (a few, the latest) for the next ``wait(for:timeout:what:)``.
final class PendingReplies<Value: Sendable>: Sendable {
    private struct State {
        var waiters: [String: CheckedContinuation<Value, any Error>] = [:]
        var early: [(key: String, value: Value)] = []
        var failure: LiveKitError?
    }
    private let state = Mutex(State())

    /// The reply for `key`, or ``LiveKitError/timedOut(_:)`` naming `what` after `timeout`.
    func wait(for key: String, timeout: Duration, what: String) async throws(LiveKitError) -> Value {
        do {
            return try await withCheckedThrowingContinuation { (c: CheckedContinuation<Value, any Error>) in
                let immediate = state.withLock { s -> Result<Value, LiveKitError>? in
                    if let failure = s.failure { return .failure(failure) }
                    if let i = s.early.firstIndex(where: { $0.key == key }) {
                        return .success(s.early.remove(at: i).value)
                    }
                    s.waiters.removeValue(forKey: key)?.resume(throwing: LiveKitError.timedOut(what))
                    s.waiters[key] = c
                    return nil
                }
                switch immediate {
                case .success(let value)?: c.resume(returning: value)
                case .failure(let error)?: c.resume(throwing: error)
                case nil:
                    Task {
                        try? await Task.sleep(for: timeout)
                        self.fail(key, .timedOut(what))
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
            if let w = s.waiters.removeValue(forKey: key) { return w }
            s.early.removeAll { $0.key == key }
            s.early.append((key, value))
            if s.early.count > 16 { s.early.removeFirst() }
            return nil
        }
        waiter?.resume(returning: value)
    }

    /// The wait for `key` fails with `error`.
    func fail(_ key: String, _ error: LiveKitError) {
        state.withLock { $0.waiters.removeValue(forKey: key) }?.resume(throwing: error)
    }

    /// Every wait, now and later, fails with `error` (the connection ended).
    func failAll(_ error: LiveKitError) {
        let waiters = state.withLock { s in
            s.failure = error
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume(throwing: error) }
    }
}
