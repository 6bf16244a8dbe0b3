import OutpostCRDT

extension CareModel {
    /// The UCUM units an observation of each code is recorded in, the usual one first (`outpost observe`'s
    /// default). A unit outside this table is refused, so that no reading is read in a unit it was not measured
    /// in: the scorecard reads HbA1c in % (a value in mmol/mol converted, ``percentHbA1c(_:unit:)``) and blood
    /// pressures in mm[Hg].
    public static let observationUnits: [String: [String]] = [
        "4548-4": ["%", "mmol/mol"],
        "8480-6": ["mm[Hg]"],
        "8462-4": ["mm[Hg]"],
        "39156-5": ["kg/m2"],
        "29463-7": ["kg", "[lb_av]", "g"],
        "44261-6": ["{score}"],
        "2089-1": ["mg/dL", "mmol/L"],
    ]

    /// What each observation code measures, for messages.
    static let observationNames: [String: String] = [
        "4548-4": "HbA1c", "8480-6": "systolic blood pressure", "8462-4": "diastolic blood pressure",
        "39156-5": "BMI", "29463-7": "body weight", "44261-6": "PHQ-9 total", "2089-1": "LDL cholesterol",
    ]

    /// Checks that an observation of `code` may be recorded in `unit` (``observationUnits``); a code the table
    /// does not hold is the code field's own error, not this one's.
    ///
    /// - Throws: ``ModelError`` `invalidEnum` on `observation.unit`, naming the units the code takes.
    public static func checkUnit(_ unit: String, code: String) throws(ModelError) {
        guard let units = observationUnits[code], !units.contains(unit) else { return }
        let name = observationNames[code].map { "\($0) (\(code))" } ?? code
        throw ModelError(
            code: .invalidEnum,
            field: "observation.unit",
            rule: "the UCUM unit of the observation's code: " + units.joined(separator: ", "),
            message: "'\(unit)' is not a unit Outpost records \(name) in; record it in "
                + units.joined(separator: " or ") + ", converting the value if needed"
        )
    }

    /// An HbA1c value in %: as it is when in % (or in no unit, as written before units were checked), converted
    /// from mmol/mol (IFCC) by the IFCC–NGSP master equation (% = 0.09148 × mmol/mol + 2.152); `nil` for any
    /// other unit.
    public static func percentHbA1c(_ value: Double, unit: String?) -> Double? {
        switch unit {
        case nil, "%": value
        case "mmol/mol": value * 0.09148 + 2.152
        default: nil
        }
    }
}
