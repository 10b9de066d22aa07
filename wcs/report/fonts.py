"""Is there a font that draws Chinese? WeasyPrint finds fonts through fontconfig and,
without a CJK font, draws every Chinese character as an empty box, silently. A
Chinese report is refused instead, with one line saying what to install."""

from __future__ import annotations

import shutil
import subprocess

from wcs.children import run

INSTALL_HINT = (
    "install a CJK font (Debian/Ubuntu: apt-get install fonts-noto-cjk or "
    "fonts-wqy-microhei; Fedora: dnf install google-noto-sans-cjk-fonts), or use --lang en"
)
# fontconfig language tag per report language that needs more than Latin glyphs.
FONT_LANG = {"zh-CN": "zh-cn"}


def missing_font(lang: str) -> str | None:
    """None when ``lang`` can be drawn; otherwise the one line to show."""
    tag = FONT_LANG.get(lang)
    if tag is None:
        return None
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return f"cannot check for a Chinese font: fontconfig's fc-list is missing; {INSTALL_HINT}"
    try:
        found = run(
            [fc_list, f":lang={tag}", "family"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot check for a Chinese font ({exc}); {INSTALL_HINT}"
    if found:
        return None
    return f"no Chinese font is installed, the PDF would show boxes; {INSTALL_HINT}"
