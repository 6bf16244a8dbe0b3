import OutpostCommandLine

/// Runs `outpost-server` and maps every failure to one line on stderr and a documented exit code:
/// 0 ok, 1 runtime error (the store cannot be opened, the port is taken), 2 bad usage or input
/// (``CommandLineTool``).
@main
enum OutpostServerMain {
    static func main() async {
        await CommandLineTool.main(OutpostServerCommand.self, failure: ServerCommandError.reporting)
    }
}
