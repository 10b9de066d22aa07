"""Message templates: ``templates/<kind>.j2``, shipped in the package, one per kind
for every language (``wcs.i18n``: the texts are gettext messages).

Each template defines three blocks: ``subject`` (one line), ``sms`` (short, for the
text-message channel) and ``text`` (the e-mail body). The HTML part of an e-mail is
built from the text by one layout (``_layout.html.j2``), so the two never say
different things. A kind without its own template uses ``notice.j2``, which shows
the notice's own message: nothing is left unsaid for want of a template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape

from wcs.i18n.catalogues import offered
from wcs.i18n.jinja import localized

FALLBACK = "notice"
_URL = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    sms: str
    text: str
    html: str


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("wcs.notify", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["paragraphs"] = _paragraphs
    return env


environment = localized(_environment)


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _block(template: Any, name: str, context: Mapping[str, Any]) -> str:
    render = template.blocks[name]
    return "".join(render(template.new_context(dict(context)))).strip()


def _linked(paragraph: str) -> str:
    """Escape a text paragraph for HTML and turn its URLs into links."""
    from markupsafe import escape

    out: list[str] = []
    last = 0
    for match in _URL.finditer(paragraph):
        out.append(str(escape(paragraph[last : match.start()])))
        url = str(escape(match.group(0)))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(str(escape(paragraph[last:])))
    return "".join(out).replace("\n", "<br>\n")


def template_names() -> list[str]:
    """Every kind with its own template."""
    names = []
    for name in environment(offered()[0]).list_templates(extensions=["j2"]):
        if not name.startswith("_") and "/" not in name:
            names.append(name.removesuffix(".j2"))
    return sorted(names)


def render(kind: str, lang: str, context: Mapping[str, Any]) -> Rendered:
    """``kind``'s message in ``lang`` (an offered tag: negotiate first)."""
    if lang not in offered():
        raise ValueError(f"no templates for language {lang!r}; have {', '.join(offered())}")
    env = environment(lang)
    try:
        template = env.get_template(f"{kind}.j2")
    except TemplateNotFound:
        template = env.get_template(f"{FALLBACK}.j2")
    subject = " ".join(_block(template, "subject", context).split())
    text = _block(template, "text", context)
    sms = " ".join(_block(template, "sms", context).split())
    html = env.get_template("_layout.html.j2").render(
        subject=subject,
        paragraphs=[_linked(p) for p in _paragraphs(text)],
        lang=lang,
    )
    return Rendered(subject, sms, text + "\n", html)
