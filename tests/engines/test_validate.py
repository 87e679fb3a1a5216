"""Every form the server serves, as a phone downloads it (formList, then the hash-checked XForm),
passes ODK Validate (JavaRosa's own parser and a walk through the whole form)."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.served import REPO

# The forms `init` publishes; the last test checks that they are exactly the served ones.
PUBLISHED = sorted(p.stem for ext in ("xlsx", "xml") for p in (REPO / "forms").glob(f"*.{ext}"))


@pytest.mark.parametrize("form_id", PUBLISHED)
def test_served_form_passes_odk_validate(form_id, odk_validate, phone):
    form = phone.download(form_id)
    done = subprocess.run(["java", "-Djava.awt.headless=true", "-jar", str(odk_validate),
                           str(form.path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Xform is valid" in done.stdout, done.stdout + done.stderr


def test_every_served_form_is_validated(phone):
    assert sorted(f["formID"] for f in phone.collect.form_list()) == PUBLISHED
