"""Extraction and catalogue upkeep: ``python -m wcs.i18n.messages [update|check]``.

``update`` (``make messages``) extracts every marked text from the source tree as
``babel.cfg`` says, merges it into each catalogue (new texts come in untranslated,
texts gone from the source are dropped) and lists what still needs a translation.
``check`` only lists the problems and exits 1 when there are any. The catalogue
test runs the same check, so a text added without its translations fails the tests.

Catalogues are written sorted by message, with file names but no line numbers, and
the header dates are left alone: two people adding texts in different places of
the code touch different lines of a ``.po`` file.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import write_po

from wcs.i18n.catalogues import DOMAIN, catalogue_dirs, po_file, read_catalogue

KEYWORDS: Mapping[str, Any] = {**DEFAULT_KEYWORDS, "N_": None, "NP_": ((1, "c"), 2)}
COMMENT_TAGS = ("Translators:",)


def source_root() -> Path:
    """The source tree (the directory of ``babel.cfg``): extraction needs it."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "babel.cfg").is_file():
        raise FileNotFoundError(f"no babel.cfg in {root}: extraction runs in a source checkout")
    return root


def extract(root: Path | None = None) -> Catalog:
    """Every marked text of the source as a template catalogue."""
    base = root or source_root()
    with (base / "babel.cfg").open(encoding="utf-8") as fp:
        method_map, options_map = parse_mapping_cfg(fp, "babel.cfg")  # type: ignore[no-untyped-call]
    template = Catalog(domain=DOMAIN, project="wcs", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(base),
        method_map,
        options_map,
        keywords=KEYWORDS,
        comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
        directory_filter=lambda d: Path(d).name not in {".venv", "tests", "build"},
    ):
        template.add(
            message,
            None,
            [(filename, lineno)],
            auto_comments=comments,
            context=context,
        )
    return template


def problems(template: Catalog, catalogue: Catalog) -> list[str]:
    """What keeps ``catalogue`` from translating every text of ``template``."""
    found: list[str] = []
    for message in template:
        if not message.id:
            continue
        have = catalogue.get(message.id, message.context)
        where = ", ".join(sorted({f for f, _ in message.locations}))
        label = f"{message.id!r}" + (f" (context {message.context!r})" if message.context else "")
        if have is None:
            found.append(f"missing: {label} from {where}")
        elif have.fuzzy:
            found.append(f"fuzzy: {label} from {where}")
        elif not _translated(have.string):
            found.append(f"untranslated: {label} from {where}")
    for message, errors in catalogue.check():
        found.extend(f"wrong placeholders in {message.id!r}: {e}" for e in errors)
    return found


def _translated(string: object) -> bool:
    if isinstance(string, tuple | list):
        return all(bool(s) for s in string)
    return bool(string)


def update(root: Path | None = None) -> dict[str, list[str]]:
    """Merge the source's texts into every catalogue; the problems left per catalogue."""
    base = root or source_root()
    template = extract(base)
    left: dict[str, list[str]] = {}
    for directory in catalogue_dirs():
        catalogue = read_catalogue(directory)
        catalogue.update(template, no_fuzzy_matching=True, update_creation_date=False)
        catalogue.obsolete.clear()
        buffer = io.BytesIO()
        write_po(buffer, catalogue, width=100, sort_output=True, include_lineno=False)
        target = base / "wcs" / "i18n" / "locales" / directory / "LC_MESSAGES" / f"{DOMAIN}.po"
        target.write_bytes(buffer.getvalue())
        left[directory] = problems(template, catalogue)
    return left


def check(root: Path | None = None) -> dict[str, list[str]]:
    template = extract(root)
    return {d: problems(template, read_catalogue(d)) for d in catalogue_dirs()}


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "update"
    if command not in {"update", "check"}:
        print("usage: python -m wcs.i18n.messages [update|check]", file=sys.stderr)
        return 2
    result = update() if command == "update" else check()
    total = 0
    for directory, issues in result.items():
        print(f"{po_file(directory)}: {len(issues) or 'complete'}")
        for issue in issues:
            print(f"  {issue}")
        total += len(issues)
    return 1 if total and command == "check" else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
