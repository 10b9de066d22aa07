"""Event handlers: one module per floor process (pick, conveyor, QC, pack, devices)."""
