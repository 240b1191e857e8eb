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
