import Foundation
import Logging
import OutpostClient
import OutpostCommandLine
import Synchronization

/// Output helpers: stderr lines, aligned tables, canonical JSON.
enum Terminal {
    /// Writes one line to stderr, prefixed with `outpost: `.
    static func error(_ message: String, prefixed: Bool = true) {
        let line = (prefixed ? "outpost: " : "") + message + (message.hasSuffix("\n") ? "" : "\n")
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Writes a line to stderr without a prefix (progress, notices).
    static func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// Whether stderr is a terminal (progress indicators only draw there).
    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    /// Prints rows as an aligned table (``TablePrinter``) under the columns' titles; prints `empty` when there are
    /// no rows.
    static func table(_ header: [String], _ rows: [[String]], empty: String = "(none)") {
        TablePrinter.print(header.map(columnTitle), rows, empty: empty)
    }

    /// A column's title: a field name in capitals, its words apart (`familyName` reads `FAMILY NAME`).
    static func columnTitle(_ name: String) -> String {
        var title = ""
        for character in name {
            if character.isUppercase && !title.isEmpty { title.append(" ") }
            title.append(character)
        }
        return title.uppercased()
    }

    /// Prints a JSON value (``JSONOutput``: keys sorted, stable output for scripts).
    static func json(_ value: some Encodable) throws {
        try JSONOutput.print(value)
    }

    /// Calls `finish` (ending a line drawn in place) when SIGINT (Ctrl-C) or SIGTERM arrives, then lets the signal end
    /// the process as it would have: a command stopped on a terminal leaves the shell's prompt on a line of its own.
    /// The handlers are installed once per process, at the first call; every call's `finish` runs, in order. A signal
    /// the process was started ignoring (a background job of a non-interactive shell) stays ignored.
    static func onInterrupt(_ finish: @escaping @Sendable () -> Void) {
        let first = interruptCallbacks.withLock { callbacks in
            callbacks.append(finish)
            return callbacks.count == 1
        }
        guard first else { return }
        for signal in [SIGINT, SIGTERM] {
            let previous = Foundation.signal(signal, SIG_IGN)
            if let previous, unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) {
                continue
            }
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler {
                for finish in interruptCallbacks.withLock({ $0 }) { finish() }
                // Raised on this thread, which the dispatch queue runs with signals blocked: unblocked first.
                Foundation.signal(signal, SIG_DFL)
                var signals = sigset_t()
                sigemptyset(&signals)
                sigaddset(&signals, signal)
                pthread_sigmask(SIG_UNBLOCK, &signals, nil)
                raise(signal)
                _exit(128 + signal)
            }
            source.resume()
            interruptSources.append(source)
        }
    }

    /// What ``onInterrupt(_:)`` calls, in the order given.
    private static let interruptCallbacks = Mutex<[@Sendable () -> Void]>([])

    /// The signal sources ``onInterrupt(_:)`` made, kept for the process's life; written only by its first call.
    nonisolated(unsafe) private static var interruptSources: [any DispatchSourceSignal] = []
}

/// An import's progress on stderr: a bar redrawn in place on a terminal for imports of over 10,000 fields, or,
/// with `--progress`, one line per percent anywhere. On a terminal, Ctrl-C ends the bar's line before the import
/// stops (it writes nothing then: its one transaction is not committed).
final class ImportProgress: Sendable {
    /// Whether to print lines (`--progress`) rather than redraw on a terminal.
    let lines: Bool
    private let onTerminal: Bool
    /// What is counted: `fields` (field edits), `resources`.
    let unit: String
    /// The last percent said, whether the bar is drawn and its line not ended, and whether it was ended for good
    /// (``finish()``: nothing is drawn after it); every write is made holding it.
    private let state = Mutex((lastPercent: -1, drawn: false, finished: false))

    init(lines: Bool, unit: String = "fields") {
        self.lines = lines
        self.unit = unit
        onTerminal = Terminal.stderrIsTerminal && !lines
        if onTerminal { Terminal.onInterrupt { [self] in finish() } }
    }

    func report(done: Int, of total: Int) {
        guard lines || (onTerminal && total > 10_000) else { return }
        let percent = total == 0 ? 100 : done * 100 / total
        state.withLock { state in
            guard percent != state.lastPercent, !state.finished else { return }
            state.lastPercent = percent
            let text = "importing: \(percent)% (\(done)/\(total) \(unit))"
            if lines {
                Terminal.note(text)
            } else {
                state.drawn = done != total
                FileHandle.standardError.write(Data(("\r" + text + (done == total ? "\n" : "")).utf8))
            }
        }
    }

    /// Ends the bar's line, if drawn and not ended; the bar is not drawn again.
    func finish() {
        state.withLock { state in
            if state.drawn { FileHandle.standardError.write(Data("\n".utf8)) }
            state.drawn = false
            state.finished = true
        }
    }
}

/// A sync's progress on stderr (``SyncProgress``): on a terminal, one line redrawn in place once the sync's push
/// holds, or the sync has moved, over 10,000 changes and records (a first push, a new laptop's bootstrap, a backlog
/// after days offline), or, with `--progress`, a line each time a push is answered or a page written, anywhere.
/// Also says each retry of a request the server did not answer in time (``SyncRetry``), anywhere: a server that
/// accepts the connection and never answers would otherwise leave the sync silent for minutes.
final class SyncProgressLine: Sendable {
    private let lines: Bool
    private let onTerminal: Bool
    /// Whether a line is drawn on the terminal and not ended (then ``finish()`` ends it, and a retry's note clears it), and
    /// the last retry said; every write to stderr is made holding it, so that a note and a redraw never mix.
    private let state = Mutex((drawn: false, retry: 0))

    init(lines: Bool) {
        self.lines = lines
        onTerminal = Terminal.stderrIsTerminal && !lines
    }

    func report(_ progress: SyncProgress) {
        let text = "syncing: " + progress.summary
        if lines {
            state.withLock { _ in Terminal.note(text) }
        } else if onTerminal, max(progress.toPush, progress.pushed + progress.records + progress.pulled) > 10_000 {
            state.withLock { state in
                state.drawn = true
                // Cleared to the line's end: the line before may have been longer.
                FileHandle.standardError.write(Data(("\r" + text + "\u{1B}[K").utf8))
            }
        }
    }

    /// Says a retry after the server did not answer in time; a quick failure (a refused connection while offline,
    /// a `503`) is retried without a word, and its last one is the sync's error. Requests made side by side (a
    /// session read beside a push) retry together against a server that never answers: each retry is said once.
    func retrying(_ retry: SyncRetry) {
        guard retry.timedOut else { return }
        let text = "waiting for the server: \(retry.reason); trying again (\(retry.attempt) of \(retry.retries))"
        state.withLock { state in
            guard state.retry != retry.attempt else { return }
            state.retry = retry.attempt
            Self.write(text, &state)
        }
    }

    /// Writes `text` on stderr on a line of its own, over the drawn line if any (the next report draws it again): a
    /// warning of the sync engine's log (``SyncLogHandler``) never glues onto the progress line.
    func note(_ text: String) {
        state.withLock { state in Self.write(text, &state) }
    }

    /// Ends the drawn line when Ctrl-C or SIGTERM ends the process (``Terminal/onInterrupt(_:)``). What the sync
    /// wrote is committed page by page, and the next sync resumes.
    func endLineOnInterrupt() {
        Terminal.onInterrupt { [self] in finish() }
    }

    /// Writes `text` on a line of its own: over the drawn line, which the next report draws again.
    private static func write(_ text: String, _ state: inout (drawn: Bool, retry: Int)) {
        FileHandle.standardError.write(Data(((state.drawn ? "\r\u{1B}[K" : "") + text + "\n").utf8))
        state.drawn = false
    }

    /// Ends the line drawn on the terminal, if any, so what follows starts on a line of its own.
    func finish() {
        state.withLock { state in
            if state.drawn { FileHandle.standardError.write(Data("\n".utf8)) }
            state.drawn = false
        }
    }
}

/// The sync engine's log for a person at a terminal: its warnings (a checkpoint the server no longer serves, a
/// restored server) as one `outpost: warning: …` line each on stderr, with their details, written through the
/// progress line (``SyncProgressLine/note(_:)``) so that none glues onto the line it draws.
struct SyncLogHandler: LogHandler {
    let line: SyncProgressLine
    var logLevel: Logger.Level = .warning
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let details = metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }
        let suffix =
            details.isEmpty ? "" : " (" + details.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")"
        line.note("outpost: \(event.level >= .error ? "error" : "warning"): \(event.message)\(suffix)")
    }
}
