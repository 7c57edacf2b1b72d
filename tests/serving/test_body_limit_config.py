"""The request body limit's configuration: flag, environment, default, bad values."""

from __future__ import annotations

import pytest

from kfp_mlops.serving.__main__ import parse_args
from kfp_mlops.serving.server import DEFAULT_MAX_BODY_BYTES, max_body_bytes, parse_size


@pytest.mark.parametrize(("text", "size"), [
    ("1048576", 1 << 20), ("16MiB", 16 << 20), ("512KiB", 512 << 10), ("1GiB", 1 << 30),
    ("16M", 16 << 20), ("16mib", 16 << 20), (" 2 MiB ", 2 << 20), (4096, 4096),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "16 TiB", "-1", "0", "1.5MiB"])
def test_bad_sizes_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="size|positive"):
        parse_size(text)


def test_flag_beats_environment_beats_default(monkeypatch):
    monkeypatch.delenv("KFP_MLOPS_MAX_BODY_SIZE", raising=False)
    assert DEFAULT_MAX_BODY_BYTES == 16 << 20
    assert max_body_bytes() == DEFAULT_MAX_BODY_BYTES
    monkeypatch.setenv("KFP_MLOPS_MAX_BODY_SIZE", "1MiB")
    assert max_body_bytes() == 1 << 20
    assert max_body_bytes("2MiB") == 2 << 20
    monkeypatch.setenv("KFP_MLOPS_MAX_BODY_SIZE", "much")
    with pytest.raises(ValueError, match="KFP_MLOPS_MAX_BODY_SIZE"):
        max_body_bytes()


def test_runtime_flag_is_parsed_and_kserve_arguments_ignored():
    args = parse_args(["--model_dir", "/mnt/models", "--max_body_size", "32MiB",
                       "--workers", "1"])
    assert args.max_body_size == "32MiB"
    assert parse_args(["--model_dir", "/mnt/models"]).max_body_size is None
