import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol

/// `outpost use`: the person and site that sign this replica's edits.
struct Use: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "use",
        abstract: "Set who signs this replica's edits and where they are made.",
        discussion: "Every change carries its author and site. Until a person is set, edits are signed replica:<id>."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: ArgumentHelp("Your person id.", valueName: "person-id")) var person: String?
    @Option(help: ArgumentHelp("The site you work at.", valueName: "site-id")) var site: String?

    mutating func run() throws {
        let store = try storeOptions.open()
        if let person {
            if let issued = try SyncEngine.keptSession(in: store.store)?.person, issued != person {
                throw CLIError.input(
                    "this replica's token is issued to \(issued), whose id signs its edits (the server refuses any "
                        + "other author from it); ask an administrator for a token of \(person)'s"
                )
            }
            _ = try RecordOutput.require(person, .person, in: store)
            try store.store.setSetting(CareStore.SettingKey.person, to: person)
            // Chosen here: a later token issued to no one leaves it.
            try store.store.setSetting(CareStore.SettingKey.tokenPerson, to: nil)
        }
        if let site {
            _ = try RecordOutput.require(site, .site, in: store)
            try store.store.setSetting(CareStore.SettingKey.site, to: site)
        }
        print("author: \(try store.author())")
        print("site: \(try store.site() ?? "(none)")")
    }
}
