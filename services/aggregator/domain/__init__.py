"""Pure aggregation logic: no I/O imports here."""
