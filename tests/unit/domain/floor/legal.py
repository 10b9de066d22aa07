"""What the devices accept and what the floor's tables allow, checked on effects.

Shared by the floor domain's tests: every Command a decision emits must be a payload
its device takes (``COMMAND_MODELS``, with a cmd_id as the edge adds one) and go to a
device of the right kind that belongs to the station; every tote move an effect asks
for must be one the tote table allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from wcs.contract.payloads import COMMAND_MODELS
from wcs.contract.payloads import Command as CommandPayload
from wcs.domain.floor.effects import Command, Effect, MoveTotes
from wcs.domain.floor.machines import TOTE_MOVES, ToteState

E = TypeVar("E")


def of(kind: type[E], effects: Iterable[object]) -> list[E]:
    """The effects of one kind, in order."""
    return [e for e in effects if isinstance(e, kind)]


def payload(command: Command) -> CommandPayload:
    """The MQTT payload the edge would send for ``command``; raises if a device would
    refuse it. Unknown field names fail too (the models ignore extras silently)."""
    model = COMMAND_MODELS[command.name]
    unknown = set(command.fields) - set(model.model_fields)
    assert not unknown, f"{command.name} has no field(s) {sorted(unknown)}"
    return model.model_validate({"cmd_id": "c-1", **command.fields})


def check_ptl(commands: Sequence[Command], slots: Mapping[str, tuple[int, ...]]) -> None:
    """Lights and clears only, to the station's own panels and slots, each valid."""
    for command in commands:
        payload(command)
        assert command.name in ("light", "clear"), command
        assert command.device in slots, f"{command.device} is not a panel of the station"
        assert command.fields.get("slot") in slots[command.device], command


def check_pack(commands: Sequence[Command], scale: str | None, printers: Sequence[str]) -> None:
    """Weigh only to the station's scale, print only to its printers, each valid."""
    for command in commands:
        payload(command)
        if command.name == "weigh":
            assert scale is not None and command.device == scale, command
        else:
            assert command.name == "print", command
            assert command.device in printers, command


def check_tote_moves(effects: Iterable[Effect]) -> None:
    """Every MoveTotes asks only for moves the tote table allows from each source."""
    for move in of(MoveTotes, effects):
        for src in move.src:
            assert ToteState(move.dst) in TOTE_MOVES[ToteState(src)], (
                f"{move}: a tote in {src} may not move to {move.dst}"
            )
