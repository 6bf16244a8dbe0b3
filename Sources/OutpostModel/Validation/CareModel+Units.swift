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

    /// What a reading of each code can be, by unit: a value outside is a slip (a unit mistaken, a digit too many,
    /// a sign), refused rather than counted. Wide on purpose: a newborn's weight, a hypertensive crisis, an HbA1c
    /// of 20 % are all inside.
    public static let plausibleReadings: [String: [String: ClosedRange<Double>]] = [
        // 15 mmol/mol is 3.5 %: a value in % recorded as mmol/mol by mistake (9.5) is below it.
        "4548-4": ["%": 2...25, "mmol/mol": 15...250],
        "8480-6": ["mm[Hg]": 40...300],
        "8462-4": ["mm[Hg]": 20...200],
        "39156-5": ["kg/m2": 5...150],
        "29463-7": ["kg": 0.2...700, "[lb_av]": 0.5...1500, "g": 200...700_000],
        "44261-6": ["{score}": 0...27],
        "2089-1": ["mg/dL": 0...1000, "mmol/L": 0...26],
    ]

    /// Checks a reading: its unit is one its code is recorded in (``checkUnit(_:code:)``), and its value, when given,
    /// is one the code can have in that unit (``plausibleReadings``).
    ///
    /// - Throws: ``ModelError`` on `observation.unit` or `observation.value`; the value is never quoted (a
    ///   measurement is patient data).
    public static func checkReading(code: String, unit: String, value: String?) throws(ModelError) {
        try checkUnit(unit, code: code)
        guard let value, let number = Double(value), let range = plausibleReadings[code]?[unit],
            !range.contains(number)
        else { return }
        let name = observationNames[code] ?? code
        let bounds = "\(Self.shown(range.lowerBound)) to \(Self.shown(range.upperBound)) \(unit)"
        throw ModelError(
            code: .outOfRange,
            field: "observation.value",
            rule: "a \(name) (\(code)) in \(unit) is from \(bounds)",
            message: "the value is outside what a \(name) in \(unit) can be (\(bounds)); check the value and its unit"
        )
    }

    private static func shown(_ bound: Double) -> String {
        bound == bound.rounded() ? String(Int(bound)) : String(bound)
    }

    /// An HbA1c value in %: as it is when in %, converted from mmol/mol (IFCC) by the IFCC–NGSP master equation
    /// (% = 0.09148 × mmol/mol + 2.152); `nil` for any other unit, or none (a reading whose unit was refused).
    public static func percentHbA1c(_ value: Double, unit: String?) -> Double? {
        switch unit {
        case "%": value
        case "mmol/mol": value * 0.09148 + 2.152
        default: nil
        }
    }
}
