"""Both blob stores keep bytes addressed by content; the database one needs no shared disk."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from server.db.models import Attachment, Blob, BlobContent
from server.storage import DatabaseBlobStore, FileBlobStore, make_blob_store
from tests.openrosa.conftest import rows


@pytest.mark.parametrize("kind", ["files", "database"])
def test_put_get_and_dedupe(make_app, kind):
    app = make_app(BLOB_STORE=kind)
    store = app.extensions["blobs"]
    assert isinstance(store, FileBlobStore if kind == "files" else DatabaseBlobStore)
    data = "ảnh nhà".encode() * 1000
    session = app.extensions["db"].session(write=True)
    first = store.put(session, data)
    again = store.put(session, data)
    session.commit()
    assert first == again
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.md5 == hashlib.md5(data).hexdigest() and first.size == len(data)
    assert store.get(session, first.sha256) == data
    session.close()
    assert len(rows(app, Blob)) == 1
    assert len(rows(app, BlobContent)) == (1 if kind == "database" else 0)


def test_file_store_refuses_paths_that_are_not_digests(tmp_path):
    store = FileBlobStore(tmp_path)
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_file_store_leaves_no_temp_files(app):
    store = app.extensions["blobs"]
    session = app.extensions["db"].session(write=True)
    blob = store.put(session, b"x" * 100)
    session.commit()
    session.close()
    folder = store.path(blob.sha256).parent
    assert [p.name for p in folder.iterdir()] == [blob.sha256]


def test_unknown_store_kind_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="SERVER_BLOB_STORE"):
        make_blob_store("s3", str(tmp_path))


def test_submissions_with_database_store(make_app):
    from tests.openrosa.conftest import PHOTO_FORM_MD, publish, xform_from_md
    from tests.support import instances
    from tests.support.collect import Collect, FlaskTransport
    from tests.support.factories import make_ward

    app = make_app(BLOB_STORE="database")
    ward = make_ward(app, forms=False)
    xml = xform_from_md(PHOTO_FORM_MD)
    publish(app, xml, {"logo.png": b"logo"})
    collect = Collect(f"http://localhost/v1/key/{ward.token}/projects/1", FlaskTransport(app))
    entry = collect.form_list()[0]
    assert collect.download_media(collect.manifest(entry)[0]).body == b"logo"
    sub = instances.build(xml, {"photo": "p.jpg"})
    assert collect.submit(sub, {"p.jpg": b"photo"})[0].status == 201
    assert {b.data for b in rows(app, BlobContent)} == {b"logo", b"photo"}


def test_healthz(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def _age(path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_sweep_deletes_old_orphans_and_keeps_rows_and_young_files(tmp_path):
    store = FileBlobStore(tmp_path)
    kept, orphan, young = (store.write(f"blob {i}".encode()) for i in range(3))
    for blob in (kept, orphan):
        _age(store.path(blob.sha256), 48)
    killed_writer = store.path(kept.sha256).parent / ".tmp-abc123"
    killed_writer.write_bytes(b"half a phot")
    _age(killed_writer, 48)
    asked = []

    def referenced(names):
        asked.extend(names)
        return {n for n in names if n == kept.sha256}

    dry = store.sweep(referenced, older_than_s=24 * 3600, dry_run=True)
    assert (dry.orphans, dry.temp, dry.young) == (1, 1, 1)
    assert store.path(orphan.sha256).exists() and killed_writer.exists()

    done = store.sweep(referenced, older_than_s=24 * 3600)
    assert (done.orphans, done.temp, done.young, done.files) == (1, 1, 1, 4)
    assert not store.path(orphan.sha256).exists() and not killed_writer.exists()
    assert store.path(kept.sha256).read_bytes() == b"blob 0"
    assert store.path(young.sha256).read_bytes() == b"blob 2"
    assert young.sha256 not in asked  # young files are not even looked up
    assert not list(tmp_path.rglob(".sweep-*"))


def test_a_reused_old_file_is_young_again_and_a_swept_one_is_written_again(tmp_path):
    store = FileBlobStore(tmp_path)
    blob = store.write(b"the same photo, sent again")
    _age(store.path(blob.sha256), 48)
    store.write(b"the same photo, sent again")  # an upload about to commit its row
    assert store.sweep(lambda names: set(), older_than_s=24 * 3600).orphans == 0
    assert store.path(blob.sha256).exists()

    _age(store.path(blob.sha256), 48)
    assert store.sweep(lambda names: set(), older_than_s=24 * 3600).orphans == 1
    store.write(b"the same photo, sent again")
    assert store.path(blob.sha256).read_bytes() == b"the same photo, sent again"


def test_a_row_committed_while_sweeping_keeps_its_file(tmp_path):
    store = FileBlobStore(tmp_path)
    blob = store.write(b"committed meanwhile")
    _age(store.path(blob.sha256), 48)
    answers = iter([set(), {blob.sha256}])  # unknown at first, committed at the re-check
    done = store.sweep(lambda names: next(answers), older_than_s=3600)
    assert (done.orphans, done.bytes) == (0, 0)
    assert store.path(blob.sha256).read_bytes() == b"committed meanwhile"


def test_a_sweep_killed_half_way_is_finished_by_the_next(tmp_path):
    store = FileBlobStore(tmp_path)
    wanted, unwanted = store.write(b"wanted"), store.write(b"unwanted")
    for blob in (wanted, unwanted):
        path = store.path(blob.sha256)
        path.rename(path.with_name(f".sweep-{blob.sha256}"))
    store.sweep(lambda names: {n for n in names if n == wanted.sha256}, older_than_s=0)
    assert store.path(wanted.sha256).read_bytes() == b"wanted"
    assert not store.path(unwanted.sha256).exists()
    assert not list(tmp_path.rglob(".sweep-*"))


def test_blobs_sweep_command_removes_what_a_refused_upload_left(app, ward, collect, cli):
    from tests.openrosa.conftest import PHOTO_FORM_MD, publish, xform_from_md
    from tests.openrosa.test_submission import PHOTO, photo_instance

    xml = xform_from_md(PHOTO_FORM_MD)
    publish(app, xml)
    iid = "uuid:6a1c2f0e-5b7d-4c3e-9f10-2b8d7e6a5c41"
    assert collect.submit(photo_instance(xml, instance_id=iid), {"photo.jpg": PHOTO})[0].status \
        == 201
    refused = photo_instance(xml, name="Trần Thị Lan", instance_id=iid)
    assert collect.submit(refused, {"photo.jpg": b"written, then refused"})[0].status == 409
    store = app.extensions["blobs"]
    left = store.path(hashlib.sha256(b"written, then refused").hexdigest())
    assert left.exists()  # its bytes were fsynced before the refusal

    result = cli("blobs", "sweep")
    assert result.exit_code == 0 and "deleted 0 without a row" in result.output
    for path in store.root.rglob("*"):
        if path.is_file():
            _age(path, 30)
    result = cli("blobs", "sweep", "--dry-run")
    assert "would delete 1 without a row" in result.output and left.exists()
    result = cli("blobs", "sweep")
    assert "deleted 1 without a row" in result.output, result.output
    assert not left.exists()
    session = app.extensions["db"].session()
    try:
        for att in rows(app, Attachment):
            if att.blob_sha256:
                assert store.get(session, att.blob_sha256)  # everything stored is still there
    finally:
        session.close()
