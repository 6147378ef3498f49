"""`hf:ORG/NAME[@REVISION]`: the local HF cache offline, a local Hub online, each error one line."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants as hub_constants
import pytest
import transformers  # noqa: F401  (the test extra installs both; a missing one is an error)

from tests.conftest import run
from tests.hub_fakes import COMMIT, FakeHub, hf_cache, serving


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 saved by save_pretrained: config.json and model.safetensors."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64)
    path = tmp_path_factory.mktemp("tiny")
    GPT2LMHeadModel(config).save_pretrained(path)
    (path / "generation_config.json").unlink(missing_ok=True)
    return path


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Path:
    """The same model in shards of at most 10 kB, with model.safetensors.index.json."""
    import torch
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(folder)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sharded")
    model.save_pretrained(path, max_shard_size="10KB")
    (path / "generation_config.json").unlink(missing_ok=True)
    assert (path / "model.safetensors.index.json").exists()
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def hub_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[object]:
    """Point huggingface_hub (already imported by transformers, so its constants are read) at
    a local endpoint and a temporary cache, as HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE do
    at import; the subprocess test below checks the variables themselves."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # No token `hf auth login` saved on this machine is sent: only HF_TOKEN, where a test sets it.
    monkeypatch.setattr(hub_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(hub_constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)

    def point(url: str, offline: bool = False) -> Path:
        monkeypatch.setattr(hub_constants, "ENDPOINT", url)
        monkeypatch.setattr(
            hub_constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            url + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", offline)
        return tmp_path / "hub"

    yield point


def _json(*args: str) -> dict[str, object]:
    code, out, err = run(*args, "-f", "json")
    assert code == 0, err
    found: dict[str, object] = json.loads(out)
    return found


def _without_target(found: dict[str, object]) -> dict[str, object]:
    """A count's JSON without its target and the meta build's time, which differ run to run."""
    kept = {k: v for k, v in found.items() if k != "target"}
    kept["notes"] = [re.sub(r"\d+\.\d+ s;", "T s;", n) for n in kept.get("notes", [])]  # type: ignore[attr-defined]
    return kept


# --- offline: the local cache ------------------------------------------------------------------


@pytest.mark.parametrize("revision", ["", "@main", f"@{COMMIT}"])
def test_offline_count_reads_the_cache_snapshot_as_its_folder(
    hub_at: object, folder: Path, revision: str
) -> None:
    cache = hub_at("http://127.0.0.1:9", offline=True)  # type: ignore[operator]
    snapshot = hf_cache(cache, "org/tiny", folder)
    assert (snapshot / "model.safetensors").is_symlink()
    code, out, err = run("count", f"hf:org/tiny{revision}", "-f", "json")
    assert code == 0, err
    found = json.loads(out)
    assert found["target"] == f"hf:org/tiny{revision}"
    assert _without_target(found) == _without_target(_json("count", str(folder)))
    assert f"read from the local HF cache: {snapshot}" in err


def test_offline_inspect_of_the_cache_equals_the_folder(hub_at: object, folder: Path) -> None:
    cache = hub_at("http://127.0.0.1:9", offline=True)  # type: ignore[operator]
    hf_cache(cache, "org/tiny", folder)
    cached = _json("inspect", "hf:org/tiny", "--against", "normal:std=0.02")
    local = _json("inspect", str(folder), "--against", "normal:std=0.02")
    assert cached["target"] == "hf:org/tiny"
    assert cached["params"] == local["params"]
    assert len(local["params"]) == 28  # type: ignore[arg-type]  # 2 embeddings, 12 a block, ln_f


def test_offline_and_not_cached_is_one_error(hub_at: object, folder: Path) -> None:
    cache = hub_at("http://127.0.0.1:9", offline=True)  # type: ignore[operator]
    hf_cache(cache, "org/tiny", folder)
    for target in ("hf:org/other", "hf:org/tiny@v2"):
        code, out, err = run("count", target)
        assert code == 2 and out == ""
        assert err.startswith("Error: ") and err.count("\n") == 1
        assert "not in the local HF cache" in err and "HF_HUB_OFFLINE" in err


def test_a_partial_cache_is_not_taken_for_the_repository(hub_at: object, folder: Path) -> None:
    """A snapshot with config.json alone (AutoConfig.from_pretrained leaves one) has no weights:
    the repository is read from the Hub, not counted as an empty folder."""
    hub = FakeHub()
    hub.add("org/tiny", folder)
    with serving(hub):
        cache = hub_at(hub.url)  # type: ignore[operator]
        partial = folder.parent / "config-only"
        partial.mkdir(exist_ok=True)
        (partial / "config.json").write_bytes((folder / "config.json").read_bytes())
        hf_cache(cache, "org/tiny", partial)
        code, _, err = run("count", "hf:org/tiny")
    assert code == 0, err
    assert "read over HTTP" in err


# --- online: a local Hub -----------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["single", "sharded"])
def test_online_count_reads_only_headers_and_config(
    hub_at: object, folder: Path, sharded: Path, layout: str
) -> None:
    source = folder if layout == "single" else sharded
    hub = FakeHub()
    hub.add("org/tiny", source)
    with serving(hub):
        hub_at(hub.url)  # type: ignore[operator]
        code, out, err = run("count", "hf:org/tiny@main", "-f", "json")
    assert code == 0, err
    assert _without_target(json.loads(out)) == _without_target(_json("count", str(source)))
    assert "no weights downloaded" in err
    weights = [f for f in hub.repos["org/tiny"].files if f.endswith(".safetensors")]
    for file in weights:
        data = hub.repos["org/tiny"].files[file]
        header_end = 8 + int.from_bytes(data[:8], "little")
        served = [(start, stop) for name, start, stop in hub.sent if name == file]
        # The 8-byte length, then the header: never a byte of tensor data.
        assert served == [(0, 7), (8, header_end - 1)], served
    whole = {name for name, _, _ in hub.sent if not name.endswith(".safetensors")}
    assert whole <= {"config.json", "model.safetensors.index.json"}
    assert "config.json" in whole


def test_online_inspect_needs_download_then_downloads(hub_at: object, folder: Path) -> None:
    hub = FakeHub()
    hub.add("org/tiny", folder)
    with serving(hub):
        hub_at(hub.url)  # type: ignore[operator]
        code, out, err = run("inspect", "hf:org/tiny")
        assert code == 2 and out == ""
        assert "not in the local HF cache" in err and "--download" in err
        assert hub.sent == []  # said without a request
        code, out, err = run("inspect", "hf:org/tiny", "--download", "-q", "-f", "json")
    assert code == 0, err
    assert err == ""  # -q: no progress bars, no notes
    assert json.loads(out)["params"] == _json("inspect", str(folder))["params"]
    assert hub.bytes_sent("model.safetensors") == len(
        hub.repos["org/tiny"].files["model.safetensors"]
    )


def test_download_applies_to_hub_targets_only(folder: Path) -> None:
    code, _, err = run("inspect", str(folder), "--download")
    assert code == 2 and "--download applies to a Hub target" in err


_ERRORS = [
    ("hf:org/missing", {}, ["not found", "401/404", "HF_TOKEN"]),
    ("hf:org/tiny", {"access": "private"}, ["not found", "private", "HF_TOKEN"]),
    ("hf:org/tiny", {"access": "gated"}, ["gated", "HF_TOKEN"]),
    ("hf:org/tiny", {"access": "forbidden"}, ["403", "HF_TOKEN"]),
    ("hf:org/tiny", {"access": "bad-token"}, ["401", "refused the token", "HF_TOKEN"]),
    ("hf:org/tiny@no-such-branch", {}, ["no revision 'no-such-branch'"]),
]


@pytest.mark.parametrize(("target", "options", "words"), _ERRORS, ids=lambda v: str(v)[:20])
def test_each_hub_error_is_one_line_and_exit_2(
    hub_at: object, folder: Path, target: str, options: dict[str, str], words: list[str]
) -> None:
    hub = FakeHub()
    hub.add("org/tiny", folder, **options)
    with serving(hub):
        hub_at(hub.url)  # type: ignore[operator]
        code, out, err = run("count", target)
    assert code == 2 and out == ""
    assert err.startswith(f"Error: {target}") and err.count("\n") == 1, err
    for word in words:
        assert word in err


def test_a_server_that_ignores_ranges_is_refused_not_read(hub_at: object, folder: Path) -> None:
    hub = FakeHub()
    hub.add("org/tiny", folder, ranges=False)
    with serving(hub):
        hub_at(hub.url)  # type: ignore[operator]
        code, out, err = run("count", "hf:org/tiny")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "did not answer a range request for model.safetensors (HTTP 200)" in err


def test_a_private_repository_is_read_with_hf_token(
    hub_at: object, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = FakeHub()
    hub.add("org/tiny", folder, access="token=hf_secret")
    with serving(hub):
        hub_at(hub.url)  # type: ignore[operator]
        code, _, err = run("count", "hf:org/tiny")
        assert code == 2 and "HF_TOKEN" in err
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        code, _, err = run("count", "hf:org/tiny")
    assert code == 0, err  # the model info, config.json and both header ranges carried it
    assert hub.bytes_sent("model.safetensors") < 4096


def test_a_cache_that_cannot_be_written_is_one_error(
    hub_at: object, folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hub = FakeHub()
    hub.add("org/tiny", folder)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with serving(hub):
        hub_at(hub.url)  # type: ignore[operator]
        monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(blocked))
        code, out, err = run("count", "hf:org/tiny")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"the local HF cache ({blocked}) cannot be used" in err and "HF_HUB_CACHE" in err


def test_no_network_and_not_cached_is_one_error(hub_at: object) -> None:
    hub_at(f"http://127.0.0.1:{_free_port()}")  # type: ignore[operator]
    code, out, err = run("count", "hf:org/tiny")
    assert code == 2 and out == ""
    assert err.startswith("Error: cannot reach http://127.0.0.1:") and err.count("\n") == 1
    assert "not in the local HF cache" in err


def test_the_cache_answers_when_the_hub_is_down(hub_at: object, folder: Path) -> None:
    cache = hub_at(f"http://127.0.0.1:{_free_port()}")  # type: ignore[operator]
    hf_cache(cache, "org/tiny", folder)
    assert _json("count", "hf:org/tiny")["total"] == _json("count", str(folder))["total"]


@pytest.mark.parametrize("target", ["hf:org/a/b", "hf:org/na me", "hf:/name", "hf:org/@main"])
def test_malformed_hub_targets_are_one_error(target: str) -> None:
    code, _, err = run("count", target)
    assert code == 2 and err.count("\n") == 1
    assert "hf:ORG/NAME" in err


def test_hub_targets_are_never_built_as_code() -> None:
    code, _, err = run("probe", "hf:org/tiny", "--init", "kaiming_normal")
    assert code == 2 and "never as code" in err


def test_snapshot_and_check_read_hub_targets(hub_at: object, folder: Path, tmp_path: Path) -> None:
    cache = hub_at("http://127.0.0.1:9", offline=True)  # type: ignore[operator]
    hf_cache(cache, "org/tiny", folder)
    baseline = tmp_path / "base.json"
    code, _, err = run("snapshot", "hf:org/tiny", "-o", str(baseline))
    assert code == 0, err
    recorded = json.loads(baseline.read_text())
    assert recorded["models"][0]["target"] == "hf:org/tiny"
    assert recorded["models"][0]["total"] == _json("count", str(folder))["total"]
    code, _, err = run("check", str(baseline))
    assert code == 0, err


def test_the_commands_of_docs_hub_md_run(
    hub_at: object, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/hub.md's first example block, in order, against a local Hub serving the tiny GPT-2
    under the id the page uses (count online, inspect --download, then the cache)."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "hub.md").read_text(encoding="utf-8")
    block = page.split("```\n", 2)[1]
    commands = [shlex.split(line) for line in block.splitlines() if line.startswith("initcli ")]
    assert len(commands) == 5
    hub = FakeHub()
    hub.add("openai-community/gpt2", folder)
    monkeypatch.chdir(tmp_path)
    with serving(hub):
        hub_at(hub.url)  # type: ignore[operator]
        for command in commands:
            code, _, err = run(*command[1:])
            assert code == 0, (command, err)


# --- the environment variables themselves, in a fresh process ----------------------------------


def _initcli() -> str:
    return str(Path(sys.executable).with_name("initcli"))


@pytest.mark.slow  # two fresh processes importing torch and transformers; the fast tests above
# set the same constants in-process
def test_env_variables_are_honoured_by_the_initcli_script(folder: Path, tmp_path: Path) -> None:
    """HF_ENDPOINT, HF_HUB_CACHE, HF_HOME and HF_HUB_OFFLINE as huggingface_hub reads them at
    import."""
    hub = FakeHub()
    hub.add("org/tiny", folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_TOKEN_PATH": str(tmp_path / "no-token")}
    with serving(hub):
        online = subprocess.run(
            [_initcli(), "count", "hf:org/tiny", "-f", "json", "-q"],
            env={**env, "HF_ENDPOINT": hub.url},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert online.returncode == 0, online.stderr
    assert online.stderr == ""
    assert json.loads(online.stdout)["total"] == _json("count", str(folder))["total"]
    assert hub.bytes_sent("model.safetensors") < 4096
    # HF_HOME/hub is the cache when HF_HUB_CACHE is not set.
    hf_cache(tmp_path / "home" / "hub", "org/tiny", folder)
    del env["HF_HUB_CACHE"]
    offline = subprocess.run(
        [_initcli(), "count", "hf:org/tiny", "-f", "json"],
        env={**env, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert offline.returncode == 0, offline.stderr
    assert f"read from the local HF cache: {tmp_path / 'home' / 'hub'}" in offline.stderr
