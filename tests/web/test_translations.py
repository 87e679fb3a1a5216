"""Every string of the web UI has its English translation, and the compiled .mo is current."""

from __future__ import annotations

import gettext
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import server.web

WEB = Path(server.web.__file__).parent
PO = WEB / "translations" / "en" / "LC_MESSAGES" / "messages.po"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def test_every_ui_string_is_translated_and_compiled():
    found = {message for _f, _l, message, _c, _x in extract_from_dir(
        str(WEB), METHODS, keywords={"_": None, "_l": None, "gettext": None,
                                     "ngettext": (1, 2), "lazy_gettext": None})}
    found = {m if isinstance(m, str) else m[0] for m in found}
    with PO.open("rb") as fh:
        catalog = read_po(fh)
    english = {m.id: m.string for m in catalog if m.id}
    missing = sorted(m for m in found if not english.get(m))
    assert missing == [], "run pybabel extract/update and translate: " + "; ".join(missing)
    with PO.with_suffix(".mo").open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = sorted(m for m in found if compiled.gettext(m) != english[m])
    assert stale == [], "recompile the catalogue (pybabel compile)"
