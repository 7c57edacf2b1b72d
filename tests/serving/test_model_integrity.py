"""Model integrity on every load path: a missing or wrong sha256 is refused, and with a
signing key configured an unsigned or wrongly signed model is refused, all before the
pickle is opened. The malicious pickle here writes a file when it is unpickled."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import shutil
from pathlib import Path

import pytest

from kfp_mlops.model.package import (
    METADATA_FILE,
    MODEL_FILE,
    ModelIntegrityError,
    load_model_folder,
    read_metadata,
)
from kfp_mlops.model.publish import publish_model
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import open_store
from tests.serving.serving_models import write_classifier

KEY = "k" * 40
OTHER_KEY = "o" * 40


class Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


@pytest.fixture
def no_key(monkeypatch):
    monkeypatch.delenv("KFP_MLOPS_SIGNING_KEY", raising=False)
    monkeypatch.delenv("KFP_MLOPS_SIGNING_KEY_FILE", raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def unsigned_dir(tmp_path_factory) -> Path:
    return write_classifier(tmp_path_factory.mktemp("unsigned") / "v1")


def copy(folder: Path, tmp_path: Path, name: str = "m") -> Path:
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def swap_in_payload(folder: Path, marker: Path, *, update_sha256: bool) -> None:
    """What a store writer does: replace the pickle (and maybe the recorded hash)."""
    data = pickle.dumps(Payload(marker))
    (folder / MODEL_FILE).write_bytes(data)
    if update_sha256:
        meta = json.loads((folder / METADATA_FILE).read_text())
        meta["model_sha256"] = hashlib.sha256(data).hexdigest()
        (folder / METADATA_FILE).write_text(json.dumps(meta))


def drop_field(folder: Path, field: str) -> None:
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta.pop(field, None)
    (folder / METADATA_FILE).write_text(json.dumps(meta))


def test_the_payload_really_runs_code_when_nothing_stops_it(no_key, unsigned_dir, tmp_path):
    """Control: without a key, a consistent hash lets the pickle load, and it runs."""
    folder = copy(unsigned_dir, tmp_path)
    marker = tmp_path / "ran"
    swap_in_payload(folder, marker, update_sha256=True)
    load_model_folder(folder)
    assert marker.read_text() == "code ran"


def test_a_swapped_pickle_with_the_old_hash_is_not_unpickled(no_key, unsigned_dir, tmp_path):
    folder = copy(unsigned_dir, tmp_path)
    marker = tmp_path / "ran"
    swap_in_payload(folder, marker, update_sha256=False)
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model_folder(folder)
    assert not marker.exists()


def test_a_folder_without_a_hash_is_refused(no_key, unsigned_dir, tmp_path):
    """The cluster runtime's path (load_model_folder) used to skip the check then."""
    folder = copy(unsigned_dir, tmp_path)
    marker = tmp_path / "ran"
    swap_in_payload(folder, marker, update_sha256=False)
    drop_field(folder, "model_sha256")
    with pytest.raises(ModelIntegrityError, match="records no model_sha256"):
        load_model_folder(folder)
    assert not marker.exists()


def test_with_a_key_a_store_writer_swapping_pickle_and_hash_is_refused(no_key, tmp_path):
    no_key.setenv("KFP_MLOPS_SIGNING_KEY", KEY)
    folder = write_classifier(tmp_path / "signed")
    meta = read_metadata(folder)
    data = (folder / MODEL_FILE).read_bytes()
    assert meta.model_hmac_sha256 == hmac.new(KEY.encode(), data, hashlib.sha256).hexdigest()
    load_model_folder(folder)  # signed by the trainer: loads

    marker = tmp_path / "ran"
    swap_in_payload(folder, marker, update_sha256=True)  # hash consistent, signature stale
    with pytest.raises(ModelIntegrityError, match="does not match its signature"):
        load_model_folder(folder)
    drop_field(folder, "model_hmac_sha256")  # or the signature removed
    with pytest.raises(ModelIntegrityError, match="not signed"):
        load_model_folder(folder)
    assert not marker.exists()


def test_with_a_key_unsigned_or_otherwise_signed_models_are_refused(no_key, unsigned_dir, tmp_path):
    no_key.setenv("KFP_MLOPS_SIGNING_KEY", KEY)
    with pytest.raises(ModelIntegrityError, match="not signed"):
        load_model_folder(unsigned_dir)
    signed = write_classifier(tmp_path / "signed")
    no_key.setenv("KFP_MLOPS_SIGNING_KEY", OTHER_KEY)
    with pytest.raises(ModelIntegrityError, match="does not match its signature"):
        load_model_folder(signed)
    no_key.delenv("KFP_MLOPS_SIGNING_KEY")
    load_model_folder(signed)  # no key configured: the sha256 alone is checked


def test_key_from_a_mounted_file_and_short_keys(no_key, tmp_path):
    key_file = tmp_path / "signing-key"
    key_file.write_text(KEY + "\n")  # a Secret file may end in a newline
    no_key.setenv("KFP_MLOPS_SIGNING_KEY_FILE", str(key_file))
    folder = write_classifier(tmp_path / "signed")
    data = (folder / MODEL_FILE).read_bytes()
    expected = hmac.new(KEY.encode(), data, hashlib.sha256).hexdigest()
    assert read_metadata(folder).model_hmac_sha256 == expected
    key_file.write_text("short")
    with pytest.raises(ModelIntegrityError, match="at least 32"):
        load_model_folder(folder)
    no_key.setenv("KFP_MLOPS_SIGNING_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ModelIntegrityError, match="cannot be read"):
        load_model_folder(folder)


def test_the_server_refuses_an_unsigned_model_when_a_key_is_configured(
    no_key, unsigned_dir, capsys
):
    from kfp_mlops.serving.__main__ import main

    no_key.setenv("KFP_MLOPS_SIGNING_KEY", KEY)
    code = main(["--model_dir", str(unsigned_dir), "--model_name", "penguins",
                 "--http_port", "1", "--host", "127.0.0.1"])
    assert code == 2
    assert "not signed" in capsys.readouterr().err


def test_publish_keeps_the_training_signature_and_refuses_a_changed_file(no_key, tmp_path):
    no_key.setenv("KFP_MLOPS_SIGNING_KEY", KEY)
    trained = write_classifier(tmp_path / "trained")
    store = str(tmp_path / "store")
    published = publish_model(trained, {"accuracy": 0.9}, store, "penguins")
    folder, meta = Registry(open_store(store)).download(published.ref, tmp_path / "dl")
    assert meta.model_hmac_sha256 == read_metadata(trained).model_hmac_sha256
    load_model_folder(folder)

    with open(trained / MODEL_FILE, "ab") as handle:  # changed between train and publish
        handle.write(b"\0")
    with pytest.raises(ModelIntegrityError, match="not published"):
        publish_model(trained, {"accuracy": 0.9}, store, "penguins")


def test_publish_signs_a_model_trained_without_the_key(no_key, unsigned_dir, tmp_path):
    trained = copy(unsigned_dir, tmp_path, "trained")
    no_key.setenv("KFP_MLOPS_SIGNING_KEY", KEY)
    store = str(tmp_path / "store")
    published = publish_model(trained, {"accuracy": 0.9}, store, "penguins")
    folder, meta = Registry(open_store(store)).download(published.ref, tmp_path / "dl")
    data = (folder / MODEL_FILE).read_bytes()
    assert meta.model_hmac_sha256 == hmac.new(KEY.encode(), data, hashlib.sha256).hexdigest()
    load_model_folder(folder)
