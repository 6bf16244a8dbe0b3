import OutpostCommandLine

/// Runs the CLI and maps every failure to one line on stderr and a documented exit code:
/// 0 ok, 1 runtime error (storage, network), 2 bad usage or input (``CommandLineTool``).
@main
enum OutpostMain {
    static func main() async {
        await CommandLineTool.main(OutpostCommand.self, failure: CLIError.reporting)
    }
}
