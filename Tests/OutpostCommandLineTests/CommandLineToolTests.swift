import ArgumentParser
import Testing

@testable import OutpostCommandLine

/// A small command tree, named as the executables name theirs: explicitly, and by type name.
private struct Root: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tool", subcommands: [Patient.self, Worklist.self])

    struct Patient: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "patient", subcommands: [List.self])

        struct List: ParsableCommand {
            @Option var team: String?
        }
    }

    /// Named by its type: `worklist`.
    struct Worklist: ParsableCommand {
        @Option var today: String?
    }
}

/// What both executables share: the help path of a usage error, the tables and the `--json` output.
struct CommandLineToolTests {
    @Test func theHelpPathFollowsTheSubcommandsTheArgumentsName() {
        #expect(CommandLineTool.commandPath(Root.self, ["patient", "list", "--frobnicate"]) == "tool patient list")
        #expect(CommandLineTool.commandPath(Root.self, ["patient", "--team"]) == "tool patient")
        #expect(CommandLineTool.commandPath(Root.self, ["worklist", "--today"]) == "tool worklist")
        #expect(CommandLineTool.commandPath(Root.self, ["bogus", "patient"]) == "tool")
        #expect(CommandLineTool.commandPath(Root.self, []) == "tool")
    }

    @Test func tablesPadEveryColumnButTheLast() {
        let text = TablePrinter.render(["ID", "NAME", "NOTE"], [["a", "Ana", "x"], ["bcd", "B", "longer note"]])
        #expect(
            text == """
                ID   NAME  NOTE
                a    Ana   x
                bcd  B     longer note

                """
        )
        #expect(TablePrinter.render(["ID", "NAME"], []) == "ID  NAME\n", "no rows: the header alone")
    }

    @Test func aCellWithAccentsIsPaddedByItsCharactersNotItsBytes() {
        // "José" is four characters in five bytes; "Zoë" written with a combining mark is three characters in
        // four scalars. Both pad as their characters do, like the ASCII cells beside them.
        let text = TablePrinter.render(
            ["NAME", "TEAM", "NOTE"],
            [["José", "Zoe\u{0308}", "x"], ["Ana", "Bo", "y"], ["a longer one", "c", "-"]]
        )
        #expect(
            text == """
                NAME          TEAM  NOTE
                José          Zoe\u{0308}   x
                Ana           Bo    y
                a longer one  c     -

                """
        )
    }

    @Test func jsonOutputSortsKeysAndKeepsSlashes() throws {
        struct Report: Encodable {
            var url = "https://example.org/a"
            var count = 2
            var note: String? = nil
        }
        #expect(try JSONOutput.line(Report()) == #"{"count":2,"url":"https://example.org/a"}"#)
        #expect(try JSONOutput.text(Report()) == "{\n  \"count\" : 2,\n  \"url\" : \"https://example.org/a\"\n}")
    }
}
