"""The pure domain: no I/O, no clocks read implicitly, no database, no network."""
