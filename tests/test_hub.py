"""Model paths naming a Hugging Face Hub repo, resolved from a cache laid out by the test (the real
layout: models--ORG--NAME/{refs,blobs,snapshots}); nothing touches the network."""

from __future__ import annotations

import sys

import pytest
from helpers_hub import lay_out as _lay_out
from helpers_model import tiny_checkpoint
from typer.testing import CliRunner

from adaptkit.ckpt.hub import HubRef, parse_hub_ref
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.cli import app
from adaptkit.errors import AdaptkitError

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    ckpt = tiny_checkpoint(tmp_path / "src")
    files = {f.name: f.read_bytes() for f in ckpt.iterdir()}
    cache = tmp_path / "hf"
    _lay_out(cache, "dunnolab/Vintix", COMMIT, files, ["main"])
    run = {f"run/0001_epoch/{k}": v for k, v in files.items()}
    _lay_out(cache, "dunnolab/Vintix", OTHER, run, ["v1"])
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return {"cache": cache, "ckpt": ckpt}


def test_parse_references(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_hub_ref("hf://dunnolab/Vintix") == HubRef("dunnolab/Vintix")
    assert parse_hub_ref("hf://org/m@refs%2Fpr%2F1/run/0001_epoch") == HubRef(
        "org/m", "refs/pr/1", "run/0001_epoch"
    )
    assert parse_hub_ref("org/m@v2") == HubRef("org/m", "v2")
    (tmp_path / "models").mkdir()
    assert parse_hub_ref("models/typo") is None  # a local folder's child: a local path
    assert parse_hub_ref("a/b/c") is None and parse_hub_ref("./x/y") is None
    with pytest.raises(AdaptkitError, match="expected hf://ORG/NAME"):
        parse_hub_ref("hf://nope")


def test_loads_from_the_cache_offline(hub):
    want = load_checkpoint(hub["ckpt"])
    refs = ["hf://dunnolab/Vintix", "dunnolab/Vintix", f"dunnolab/Vintix@{COMMIT}"]
    refs += ["hf://dunnolab/Vintix@v1/run/0001_epoch", "hf://dunnolab/Vintix@v1/run"]
    for ref in refs:
        got = load_checkpoint(ref)
        assert got.fingerprint == want.fingerprint, ref
        assert str(hub["cache"]) in str(got.path)
    r = CliRunner().invoke(app, ["groups", "hf://dunnolab/Vintix@v1/run", "--json"])
    assert r.exit_code == 0 and "quadruped_locomotion" in r.output, r.output


def test_not_cached_says_what_to_download(hub, monkeypatch):
    with pytest.raises(AdaptkitError) as err:
        load_checkpoint("hf://dunnolab/Other@v3/sub")
    msg = str(err.value)
    assert "not in the Hugging Face cache" in msg and "HF_HUB_OFFLINE is set" in msg
    assert "hf download dunnolab/Other --revision v3 --include 'sub/*'" in msg
    assert str(hub["cache"]) in msg and "\n" not in msg
    # online allowed, but no network (a closed local port stands for the Hub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(AdaptkitError, match="the Hub was not reached"):
        load_checkpoint("hf://dunnolab/Other")
    r = CliRunner().invoke(app, ["inspect", "dunnolab/Other"])
    assert r.exit_code == 1
    assert r.output.startswith("error: dunnolab/Other: no local path of that name")


def test_without_huggingface_hub(hub, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(AdaptkitError, match=r"pip install 'adaptkit\[hub\]'"):
        load_checkpoint("hf://dunnolab/Vintix")
    assert load_checkpoint(hub["ckpt"]).groups  # local paths never need it
