import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel

/// `outpost observe`: record an observation (immutable once written).
struct Observe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observe",
        abstract: "Record an observation for a patient: a LOINC code, a value and its unit.",
        discussion: """
            Codes: 4548-4 HbA1c (%), 8480-6 systolic and 8462-4 diastolic blood
            pressure (mm[Hg]), 39156-5 BMI, 29463-7 weight, 44261-6 PHQ-9 total,
            2089-1 LDL cholesterol. Observations never change once written; to
            correct one, mark it entered-in-error (outpost observation set ID
            status=entered-in-error) and record it again.
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The patient's id.", valueName: "patient-id")) var patient: String
    @Argument(help: ArgumentHelp("LOINC code, for example 4548-4.", valueName: "code")) var code: String
    @Argument(help: ArgumentHelp("The value, for example 7.2.", valueName: "value")) var value: String
    @Option(
        help:
            "UCUM unit: HbA1c in % or mmol/mol, weight in kg, [lb_av] or g, LDL in mg/dL or mmol/L (default: the first)."
    ) var unit: String?
    @Option(help: ArgumentHelp("When it was measured (default: now).", valueName: "YYYY-MM-DDTHH:MM:SSZ")) var at:
        String?
    @Option(help: ArgumentHelp("Where it was measured (default: this replica's site).", valueName: "site-id"))
    var site: String?

    mutating func run() throws {
        let store = try storeOptions.open()
        let owner = try RecordOutput.require(patient, .patient, in: store)
        let codes = CareModel.spec(.observation, "code")?.kind.allowedValues ?? []
        guard codes.contains(code) else {
            throw CLIError.input(
                "observation.code: '\(code)' is not a code Outpost records; use one of: "
                    + codes.joined(separator: ", ")
            )
        }
        guard let unit = unit ?? CareModel.observationUnits[code]?.first else {
            throw CLIError.input("give the unit with --unit for code \(code)")
        }
        var fields: [String: [Value]] = [
            "patient": [.string(owner.id)], "code": [.string(code)], "value": [.string(value)],
            "unit": [.string(unit)], "effectiveAt": [.string(at ?? Format.nowISO8601())], "status": ["final"],
        ]
        if let place = try site ?? store.site() { fields["site"] = [.string(place)] }
        print(try store.create(.observation, fields: fields).id)
    }
}
