import Foundation

/// Keeps README examples honest: each is compiled in a test file between
/// `// README-EXAMPLE-BEGIN` and `// README-EXAMPLE-END`, and this check says whether the
/// README shows exactly that code after `import MODULE` and a blank line.
public enum ReadmeExample {
    /// Whether README.md (at the package root) contains the marked example of `testFile`.
    public static func isShown(testFile: String, module: String) throws -> Bool {
        let here = URL(fileURLWithPath: testFile)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: here, encoding: .utf8)
        guard let begin = source.range(of: "// README-EXAMPLE-BEGIN\n"),
            let end = source.range(of: "// README-EXAMPLE-END")
        else { return false }
        return readme.contains("import \(module)\n\n" + source[begin.upperBound..<end.lowerBound])
    }
}
