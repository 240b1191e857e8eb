import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One HTTP exchange through `URLSession.shared`, in a task of its own that the caller's
/// cancellation does not reach: swift-corelibs-foundation can crash the process when an
/// in-flight task is cancelled ("Trying to access a behaviour for a task that in not in
/// the registry", seen when a client left while its reconnection was asking the server
/// why a join failed). The request's own `timeoutInterval` bounds the wait instead.
package func fetchUncancelled(_ request: URLRequest) async throws -> (Data, URLResponse) {
    try await Task { try await URLSession.shared.data(for: request) }.value
}
