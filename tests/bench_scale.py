"""The scale curve of ingest: the same realistic load against a store that already holds
10k, 100k and 1M submissions (tests/bench_export.py fills it), so `make bench` shows whether
the cost per submission grows with the size of the store.

Each load is `tests.bench.ingest` with surveys of distinct new households (an entity each, so
household matching runs against everything stored), posted by Collect-like clients to the
real server under gunicorn on the filled database.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from tests.support import instances
from tests.support.collect import Part, multipart_body

REPO = Path(__file__).resolve().parent.parent
SCALE_SUBMISSIONS = int(os.environ.get("BENCH_SCALE_SUBMISSIONS", "400"))
PHOTO = os.urandom(60_000)

_SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
             "Dương", "Lý")
_MIDDLE = ("Văn", "Thị", "Đức", "Ngọc", "Minh", "Thanh", "Hữu", "Quang")
_GIVEN = ("Hùng", "Mai", "An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Hạnh", "Khánh", "Lan",
          "Long", "Nam", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến")


def survey_bodies(xform: bytes, n: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """`n` household surveys of new, distinct households as Collect sends them: an entity
    each, three members, a house photo, a location, spread over the 20 tổ."""
    rng = random.Random(seed)
    bodies = []
    for i in range(n):
        head = f"{rng.choice(_SURNAMES)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
        year = str(rng.randint(1940, 2000))
        tdp = f"tdp{rng.randint(1, 20):02d}"
        house = str(rng.randint(1, 400))
        entity_id = str(uuid.uuid4())
        label = f"{head} – số {house}"
        values = {
            "g_intro/tdp": tdp, "g_intro/hh_mode": "new", "g_intro/contact_result": "met",
            "g_intro/consent": "yes", "g_addr/street": f"st{rng.randint(1, 9):02d}",
            "g_addr/house_no": house, "g_head/head_name": head,
            "g_head/head_birth_year": year,
            "g_head/phone": f"09{rng.randint(0, 99999999):08d}",
            "survey_date": "2026-11-20", "entity_id": entity_id, "hh_label": label,
            "g_end/house_photo": "house.jpg", "g_end/location": "21.8 105.2 30 5"}
        members = [
            {"m_name_eff": head, "m_birth_year_eff": year, "m_basic": "yes"},
            {"m_name": f"{rng.choice(_SURNAMES)} Thị {rng.choice(_GIVEN)}",
             "m_birth_year": str(int(year) + rng.randint(0, 6)), "m_basic": "no"},
            {"m_name": f"{head.split()[0]} Văn {rng.choice(_GIVEN)}",
             "m_birth_year": str(int(year) + rng.randint(20, 30)), "m_basic": "yes"}]
        xml = instances.build(
            xform, values, repeats={"g_members/members": members},
            instance_id=f"uuid:{uuid.uuid4()}",
            entity={"id": entity_id, "create": "1", "update": "0", "baseVersion": "",
                    "label": label})
        bodies.append(multipart_body([
            Part("xml_submission_file", xml, filename=f"Household survey_{i}.xml",
                 content_type="text/xml"),
            Part("house.jpg", PHOTO, filename="house.jpg", content_type="image/jpeg")]))
    return bodies


def ingest_at(data: Path, db_url: str | None, *, seed: int, secret: str = "bench") -> dict:
    """Serve the filled store (data dir and database as `tests.bench_export.prepare` made
    them), run the realistic load as its volunteer vol1, and return the ingest figures.
    `seed`: other households at each size; the same ones again would be duplicates of the
    previous load, and matching them (review pairs) would cost more than new households."""
    from tests.bench import Served, ingest
    from tests.support.served import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVER_")}
    env.update({"SERVER_DATA_DIR": str(data), "SERVER_VALIDATE_FORMS": "0",
                "SERVER_SECRET_KEY": secret, "SERVER_PID_KEY": secret})
    if db_url:
        env["SERVER_DATABASE_URL"] = db_url
    port = free_port()
    url = subprocess.run(
        [sys.executable, "-m", "server", "user", "collect-url", "vol1", "--base-url",
         f"http://127.0.0.1:{port}"], env=env, cwd=REPO, check=True, capture_output=True,
        text=True).stdout.strip()
    server = Served("server.wsgi:app", env, port)
    try:
        form_list = requests.get(f"{url}/formList", timeout=30).text
        survey = next(chunk for chunk in form_list.split("<xform>")[1:]
                      if "<formID>household_survey</formID>" in chunk)
        xform = requests.get(survey.split("<downloadUrl>")[1].split("</downloadUrl>")[0],
                             timeout=30).content
        return ingest(url, survey_bodies(xform, SCALE_SUBMISSIONS, seed=seed),
                      server.proc.pid)
    finally:
        server.stop()
