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
    /// A value stored before control characters were refused (or by another client) prints as escapes, not as
    /// terminal commands; a table's columns stay aligned.
    @Test func controlCharactersPrintAsEscapes() {
        #expect(TablePrinter.printable("\u{1B}[2J\u{1B}[31mEve") == "\\u{1B}[2J\\u{1B}[31mEve")
        #expect(TablePrinter.printable("Esc\rOver\u{202E}x\u{0}") == "Esc\\u{D}Over\\u{202E}x\\u{0}")
        #expect(TablePrinter.printable("José Núñez — محمد") == "José Núñez — محمد")
        let table = TablePrinter.render(["a", "b"], [["\u{1B}[2J", "x"], ["ok", "y"]])
        #expect(!table.contains("\u{1B}"))
        let lines = table.split(separator: "\n").map(String.init)
        let x = lines[1].distance(from: lines[1].startIndex, to: lines[1].firstIndex(of: "x") ?? lines[1].endIndex)
        let y = lines[2].distance(from: lines[2].startIndex, to: lines[2].firstIndex(of: "y") ?? lines[2].endIndex)
        #expect(x == y && x > 0, "\(table)")
    }

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
