"""Each operation that names its roles ("Roles: ...") admits exactly those roles: a
token of any other role is refused with 403, one of a named role is not (it may still
find nothing: these requests name things that do not exist)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import openapi_document
from api.deps import STAFF
from tests.integration.api.conftest import Served
from wcs.services.auth import ROLES, issue_token
from wcs.settings import Settings

SUBJECTS = {"customer": "cust-roles", "courier": "courier-roles"}


def named_roles(description: str) -> frozenset[str] | None:
    clause = re.match(r"Roles?: ([^.]*)\.", description)
    if clause is None:
        return None
    text = clause.group(1)
    if "any authenticated user" in text:
        return frozenset(ROLES)
    found = {role for role in ROLES if re.search(rf"\b{role}\b", text)}
    if re.search(r"\bstaff\b", text):
        found |= STAFF
    return frozenset(found)


def operations() -> list[tuple[str, str, frozenset[str]]]:
    doc = openapi_document(Settings())
    found = []
    for path, items in doc["paths"].items():
        for method, operation in items.items():
            roles = named_roles(operation.get("description", ""))
            if roles is not None:
                url = re.sub(r"\{[a-z_]+_id\}", "1", path)
                found.append((method.upper(), re.sub(r"\{[a-z_]+\}", "x", url), roles))
    return found


async def test_named_roles_are_the_admitted_roles(api: Served, engine: AsyncEngine) -> None:
    tokens = {
        role: await issue_token(engine, f"only-{role}", [role], SUBJECTS.get(role))
        for role in ROLES
    }
    checked = operations()
    assert len(checked) >= 35
    wrong: list[str] = []
    for method, url, admitted in checked:
        for role, token in tokens.items():
            async with api.client(token=token) as client:
                kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT") else {}
                if url.endswith("/pod") and method == "POST":  # an upload: multipart
                    kwargs = {"files": {"photo": ("p.jpg", b"x", "image/jpeg")}}
                r = await client.request(method, url, **kwargs)
            refused = r.status_code == 403
            if refused == (role in admitted):
                wrong.append(f"{method} {url} as {role}: {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
