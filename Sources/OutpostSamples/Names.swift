/// Invented names and codes for the practice generator. No real person is described.
enum Names {
    static let given = [
        "Ana", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Iris", "Jonas", "Kai", "Lena", "Mateo",
        "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tala", "Uma", "Victor", "Wren", "Ximena", "Yusuf",
        "Zoe", "Aiden", "Beatriz", "Cyrus", "Dana", "Emeka", "Fatima", "Gus", "Hana", "Ivan", "June",
    ]
    static let family = [
        "Alder", "Birch", "Castillo", "Dorn", "Eastwood", "Fenn", "Garza", "Holt", "Ibarra", "Jensen", "Kowal",
        "Lund", "Marsh", "Nakamura", "Oakes", "Price", "Quade", "Reyes", "Stone", "Tran", "Underhill", "Vance",
        "Whitaker", "Xu", "Yates", "Zeller", "Abbott", "Brandt", "Cole", "Duarte", "Ellis", "Flores",
    ]
    static let towns = ["Bitterroot", "Clearwater", "Red Lodge", "Pinecrest", "Stillwater", "Two Rivers"]
    static let streets = ["Main St", "Oak Ave", "River Rd", "Pine St", "Cedar Ln", "Hill Dr", "Mill Rd"]
    /// At-risk patients: prediabetes, obesity, hyperlipidemia, tobacco use.
    static let riskConditions = ["R73.03", "E66.9", "E78.5", "F17.210"]
    /// Chronic and complex patients.
    static let chronicConditions = [
        "E11.9", "I10", "E78.5", "J44.9", "I50.9", "N18.3", "F32.9", "J45.909", "F41.1", "E66.9", "M17.9",
    ]
    static let careGaps = [
        "a1c-overdue", "bp-uncontrolled", "colorectal-screening", "breast-screening", "cervical-screening",
        "flu-vaccine", "depression-screening", "eye-exam", "statin-therapy",
    ]
    static let allergies = ["penicillin", "sulfonamides", "peanuts", "latex", "iodinated contrast"]
    static let patientNotes = [
        "Prefers morning calls.", "Daughter helps with appointments.", "Needs transport to clinic visits.",
        "Works night shifts; message first.", "Interpreter needed for visits.",
    ]
    static let taskNotes = [
        "Left a voicemail.", "Spoke with patient; will call back.", "Scheduled for next week.",
        "Sent a reminder message.", "Patient asked to reschedule.", "Reviewed with the team lead.",
    ]
    static let specialties = [
        "Cardiology", "Endocrinology", "Ophthalmology", "Nephrology", "Podiatry", "Behavioral health",
        "Pulmonology",
    ]
    /// Task kinds by subgroup (healthy, at risk, chronic, complex), repeated to weight them.
    static let taskKinds: [[String]] = [
        [
            "outreach", "outreach", "screening", "screening", "gap-closure", "behavioral-screening", "school-visit",
            "referral",
        ],
        [
            "outreach", "screening", "gap-closure", "gap-closure", "medication-review", "behavioral-screening",
            "group-visit", "referral", "social-needs",
        ],
        [
            "outreach", "gap-closure", "medication-review", "medication-review", "referral", "remote-monitoring",
            "remote-monitoring", "ed-follow-up", "group-visit", "behavioral-screening",
        ],
        [
            "outreach", "medication-review", "referral", "ed-follow-up", "discharge-follow-up", "remote-monitoring",
            "social-needs", "home-visit", "home-visit", "behavioral-screening",
        ],
    ]

    static func taskTitle(_ kind: String) -> String {
        switch kind {
        case "outreach": "Call to schedule the annual visit"
        case "screening": "Complete the due screening"
        case "gap-closure": "Close the open care gap"
        case "medication-review": "Review medications with the pharmacist"
        case "referral": "Track the referral until the result is back"
        case "ed-follow-up": "Follow up within 48 hours of the ED visit"
        case "discharge-follow-up": "Follow up within 7 days of discharge"
        case "remote-monitoring": "Review the remote-monitoring alert"
        case "behavioral-screening": "Administer the PHQ-9"
        case "social-needs": "Connect with food and housing resources"
        case "home-visit": "Home visit: check medications and safety"
        case "school-visit": "School clinic visit"
        case "group-visit": "Invite to the group visit"
        default: "Care task"
        }
    }
}
