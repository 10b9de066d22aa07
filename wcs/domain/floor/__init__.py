"""The floor as pure state machines: pick station, batch, pick task, tote, QC bench,
pack station and conveyor point.

Each station kind has a state (a frozen value the owning controller keeps in
memory) and ``decide(state, event) -> (state, effects)``: no I/O, no clock, no ids
drawn here. The controller's edge turns device events into these events (reading
the few facts a decision needs, such as who holds a scanned tote), applies the
effects to the database in the batch's transaction, and sends the commands after
commit. Every floor rule (mispick, short pick, tote binding, count-down, next stop,
QC count, weight check, lane choice) is written once, here.
"""
