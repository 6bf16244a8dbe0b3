/// Seeds of the property tests. Each failure names its seed; rerun one with
/// `swift test --filter "OutpostCRDTTests.<Suite>/<test>"` and the same seed reproduces it exactly.
let propertySeeds: Range<UInt64> = 0..<300
