"""`hf:ORG/NAME` weights via huggingface_hub: the local cache's snapshot, or headers over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initcli.errors import CheckpointError, HubError, first_line
from initcli.model.resolve import HubRepo
from initcli.weights import safetensors_files
from initcli.weights.safetensors_files import Folder, Shard

__all__ = [
    "WEIGHT_FILES",
    "RemoteWeights",
    "cached_folder",
    "download",
    "not_cached",
    "remote_weights",
]

# What initcli reads of a repository: its safetensors weights, their index and the model config.
WEIGHT_FILES = ("*.safetensors", "*.safetensors.index.json", "config.json")
_INDEX = "model.safetensors.index.json"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class RemoteWeights:
    """A repository's weights known from their headers alone, read with range requests."""

    repo: HubRepo
    commit: str  # the revision resolved to a commit: every file is read at this one
    shards: Folder  # headers only (Shard.path: `hf:ORG/NAME@COMMIT/file`, not a local file)
    config_folder: Path | None  # the cache's snapshot folder holding config.json, if it has one
    header_bytes: int  # what the headers took over the network, length prefixes included


def _hub() -> Any:
    """huggingface_hub, imported here: it reads HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE and
    HF_TOKEN when first imported, and stays off the `--help` path."""
    try:
        import huggingface_hub
        import huggingface_hub.errors
        import huggingface_hub.utils
    except ImportError:
        raise HubError(
            "hf:ORG/NAME targets need huggingface_hub 2: pip install 'initcli[hub]'"
        ) from None
    return huggingface_hub


def _cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _timeout() -> float:
    """huggingface_hub's own wait for a server that stops answering (HF_HUB_DOWNLOAD_TIMEOUT,
    10 s): its session waits forever unless a call says otherwise."""
    from huggingface_hub import constants

    return float(constants.HF_HUB_DOWNLOAD_TIMEOUT)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def _has_weights(folder: Path) -> bool:
    """Whether a cached snapshot holds complete safetensors weights (every shard of its index)."""
    index = folder / _INDEX
    indexes = [index] if index.exists() else sorted(folder.glob("*.safetensors.index.json"))
    if not indexes:
        return any(folder.glob("*.safetensors"))
    try:
        data = safetensors_files.read_json(
            indexes[0], safetensors_files.MAX_INDEX_BYTES, "safetensors index"
        )
    except CheckpointError:
        return True  # unreadable: the folder reader says what is wrong with it
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        return True
    return all(isinstance(f, str) and (folder / f).exists() for f in weight_map.values())


def cached_folder(repo: HubRepo) -> Path | None:
    """The local HF cache's snapshot folder of `repo` at its revision, when it holds the
    weights; None otherwise. Nothing goes over the network (huggingface_hub's own lookup:
    `refs/REVISION` to a commit, then `snapshots/COMMIT`, in HF_HUB_CACHE)."""
    hub = _hub()
    with _translated(repo):
        try:
            found = hub.snapshot_download(
                repo.repo_id,
                revision=repo.revision,
                local_files_only=True,
                allow_patterns=list(WEIGHT_FILES),
            )
        except hub.errors.LocalEntryNotFoundError:
            return None
    folder = Path(found)
    return folder if _has_weights(folder) else None


def not_cached(repo: HubRepo, how: str) -> HubError:
    """The error for a repository that is not in the local cache, with what to do instead."""
    if _offline():
        return HubError(
            f"{repo.label} is not in the local HF cache ({_cache_dir()}) and HF_HUB_OFFLINE is "
            "set; unset HF_HUB_OFFLINE to reach the Hub, or point HF_HUB_CACHE at the cache "
            "that holds it"
        )
    return HubError(f"{repo.label} is not in the local HF cache ({_cache_dir()}); {how}")


def download(repo: HubRepo, quiet: bool) -> Path:
    """Download `repo`'s safetensors weights, their index and config.json into the HF cache
    (huggingface_hub's snapshot_download: its progress bars, resumed downloads); the folder."""
    if _offline():
        raise not_cached(repo, "")
    hub = _hub()
    kwargs: dict[str, Any] = {}
    if quiet:
        kwargs["tqdm_class"] = _silent_bar(hub)
    with _translated(repo):
        folder = Path(
            hub.snapshot_download(
                repo.repo_id, revision=repo.revision, allow_patterns=list(WEIGHT_FILES), **kwargs
            )
        )
    if not _has_weights(folder):
        raise HubError(
            f"{repo.label} holds no safetensors weights (model.safetensors or "
            "model.safetensors.index.json); initcli reads a repository's safetensors only"
        )
    return folder


def _silent_bar(hub: Any) -> type:
    base = hub.utils.tqdm

    class Silent(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent


def remote_weights(repo: HubRepo) -> RemoteWeights:
    """`repo`'s safetensors headers, read with HTTP range requests (no tensor byte is fetched),
    and its config.json (downloaded into the HF cache, as transformers would)."""
    if _offline():
        raise not_cached(repo, "")
    hub = _hub()
    with _translated(repo):
        info = hub.HfApi().model_info(repo.repo_id, revision=repo.revision, timeout=_timeout())
        if not info.sha:
            raise HubError(f"{repo.label}: {_endpoint()} gave no commit for the revision")
        commit = str(info.sha)
        files = {s.rfilename for s in info.siblings or ()}
        config_folder = None
        if "config.json" in files:
            config = hub.hf_hub_download(repo.repo_id, "config.json", revision=commit)
            config_folder = Path(config).parent
        reader = _HeaderReader(hub, repo, commit)
        shards = _remote_shards(repo, commit, files, reader)
    return RemoteWeights(repo, commit, shards, config_folder, reader.received)


def _remote_shards(repo: HubRepo, commit: str, files: set[str], reader: _HeaderReader) -> Folder:
    """The shards the repository's index names (each checked as a folder's are), else its
    top-level *.safetensors files."""
    top = {f for f in files if "/" not in f}
    indexes = sorted(f for f in top if f.endswith(".safetensors.index.json"))
    if _INDEX in indexes:
        indexes = [_INDEX]
    if len(indexes) > 1:
        raise HubError(f"{repo.label} holds several safetensors indexes ({', '.join(indexes)})")
    if indexes:
        hub = _hub()
        index = Path(hub.hf_hub_download(repo.repo_id, indexes[0], revision=commit))

        def shard(name: str) -> Shard:
            if not safetensors_files.is_plain_name(name) or name not in top:
                raise HubError(
                    f"{repo.label}: {indexes[0]} names shard {name!r}, which the repository "
                    "does not hold"
                )
            return reader.header(name)

        return safetensors_files.indexed_shards(index, shard)
    weights = sorted(f for f in top if f.endswith(".safetensors"))
    if not weights:
        raise HubError(
            f"{repo.label} holds no safetensors weights (model.safetensors or "
            "model.safetensors.index.json); initcli reads a repository's safetensors only"
        )
    return safetensors_files.unindexed_shards([reader.header(f) for f in weights])


class _HeaderReader:
    """Reads safetensors headers with two range requests each (the 8-byte length, then the
    header): huggingface_hub's session, URLs, token and error types. Its own
    parse_safetensors_file_metadata fetches the first 100,000 bytes, which are tensor data in
    any file whose header is shorter; this asks for the header's bytes only."""

    def __init__(self, hub: Any, repo: HubRepo, commit: str) -> None:
        self.hub, self.repo, self.commit = hub, repo, commit
        self.headers = hub.utils.build_hf_headers()
        self.received = 0

    def header(self, file: str) -> Shard:
        label = Path(f"hf:{self.repo.repo_id}@{self.commit}/{file}")
        url = self.hub.hf_hub_url(self.repo.repo_id, file, revision=self.commit)
        head, size = self._range(url, 0, 8)
        length = safetensors_files.header_length(label, head, size)
        raw, _ = self._range(url, 8, length) if length else (b"", size)
        return safetensors_files.parse_header(label, raw, size - 8 - length)

    def _range(self, url: str, start: int, count: int) -> tuple[bytes, int]:
        """`count` bytes from `start`, and the file's size; never more than asked for."""
        headers = {**self.headers, "Range": f"bytes={start}-{start + count - 1}"}
        session = self.hub.utils.get_session()
        with session.stream("GET", url, headers=headers, timeout=_timeout()) as response:
            if response.status_code >= 400:
                response.read()  # small: an error page, which hf_raise_for_status words
                self.hub.utils.hf_raise_for_status(response)
            found = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if response.status_code != 206 or found is None or int(found[1]) != start:
                # A 200 would be the whole file: stop before a byte of it is read.
                raise HubError(
                    f"{self.repo.label}: the server did not answer a range request for "
                    f"{url.rsplit('/', 1)[-1]} (HTTP {response.status_code}); initcli reads "
                    "only safetensors headers here: use inspect --download to fetch the files"
                )
            data = b""
            for chunk in response.iter_bytes():
                data += chunk[: count - len(data)]
                if len(data) >= count:
                    break
            self.received += len(data)
            return data, int(found[3])


@contextmanager
def _translated(repo: HubRepo) -> Iterator[None]:
    """huggingface_hub's and the network's exceptions as one HubError line each."""
    import httpx2

    hub = _hub()
    errors = hub.errors
    try:
        yield
    except errors.HFValidationError as exc:
        raise HubError(
            f"{repo.label} is not a valid Hub repository id ({first_line(exc)}); write "
            "hf:ORG/NAME or hf:ORG/NAME@REVISION"
        ) from None
    except errors.GatedRepoError:
        raise HubError(
            f"{repo.label} is a gated repository: accept its conditions on its Hub page, then "
            "set HF_TOKEN to a token of that account (or run `hf auth login`)"
        ) from None
    except errors.RevisionNotFoundError:
        raise HubError(
            f"{repo.label}: the repository has no revision {repo.revision!r}; name a branch, "
            "tag or commit it has (hf:ORG/NAME@main)"
        ) from None
    except errors.RepositoryNotFoundError:
        raise HubError(
            f"{repo.label} was not found on {_endpoint()} (HTTP 401/404): check ORG/NAME; a "
            "private repository also needs HF_TOKEN set to a token that can read it"
        ) from None
    except errors.RemoteEntryNotFoundError as exc:
        raise HubError(
            f"{repo.label}: a file is missing at that revision ({_status(exc)})"
        ) from None
    except errors.OfflineModeIsEnabled:
        raise not_cached(repo, "") from None
    except errors.LocalEntryNotFoundError as exc:
        # What hf_hub_download raises when the network failed and the cache has no copy.
        raise _unreachable(repo, exc) from None
    except errors.HfHubHTTPError as exc:
        raise HubError(f"{repo.label}: {_refused(exc)}") from None
    except httpx2.TransportError as exc:
        raise _unreachable(repo, exc) from None
    except OSError as exc:  # the cache itself: a folder that cannot be written, a full disk
        raise HubError(
            f"{repo.label}: the local HF cache ({_cache_dir()}) cannot be used "
            f"({first_line(exc)}); set HF_HUB_CACHE to a folder you can write"
        ) from None


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _status(exc: Any) -> str:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return f"HTTP {code}" if code is not None else first_line(exc)


def _refused(exc: Any) -> str:
    code = getattr(getattr(exc, "response", None), "status_code", None)
    if code == 401:
        return (
            f"{_endpoint()} refused the token (HTTP 401); set HF_TOKEN to a valid token, or "
            "unset it for a public repository"
        )
    if code == 403:
        return (
            f"{_endpoint()} refused access (HTTP 403); set HF_TOKEN to a token with read access "
            "to this repository"
        )
    return f"the Hub answered {_status(exc)}; try again later, or check HF_ENDPOINT"


def _unreachable(repo: HubRepo, exc: BaseException) -> HubError:
    return HubError(
        f"cannot reach {_endpoint()} ({first_line(exc)}) and {repo.label} is not in the local "
        f"HF cache ({_cache_dir()}); connect to the network, or set HF_HUB_CACHE to a cache "
        "that holds it"
    )
