// The care model lives here; see RecordType.swift and the field table.
