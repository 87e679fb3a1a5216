"""Both blob stores keep bytes addressed by content; the database one needs no shared disk."""

from __future__ import annotations

import hashlib

import pytest

from server.db.models import Blob, BlobContent
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
