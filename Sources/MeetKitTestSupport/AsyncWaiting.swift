/// The first element of `stream` that `predicate` accepts, or nil when the stream ends or
/// `timeout` passes first — a safety net against hangs in tests, not a timing assertion.
public func firstElement<Element: Sendable>(
    of stream: AsyncStream<Element>, timeout: Duration, where predicate: @escaping @Sendable (Element) -> Bool
) async -> Element? {
    await withTaskGroup(of: Element?.self) { group in
        group.addTask {
            for await element in stream where predicate(element) { return element }
            return nil
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it
/// held — for states reached asynchronously (a subscription, a leave seen by others),
/// with the timeout only as a safety net.
public func eventually(_ timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return condition()
}

/// ``eventually(_:_:)`` for a condition that has to await (an actor's state, a
/// connection's).
public func eventuallyAsync(_ timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return await condition()
}
