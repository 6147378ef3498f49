"""`initcli inspect FILE`: each tensor of a weights file, against a scheme if one is named."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from initcli import limits
from initcli.errors import CheckpointError, SchemeError, TargetError
from initcli.init import assign, schemes, torch_defaults
from initcli.limits import MAX_GUESSED_LAYOUTS
from initcli.measure import distributed, naming
from initcli.measure.counting import Counts, ModuleCount, count_model, formula
from initcli.model import resolve
from initcli.model.resolve import is_hub_target, parse_hub_target
from initcli.report._shared import CountReport, resolve_schemes, resolve_target
from initcli.report.grouping import RowGroup, group_params, param_kind
from initcli.report.measuring import ParamReport, Progress, measure
from initcli.text import first_and_more
from initcli.weights import checkpoint, freshness, hf, hub


@dataclass(frozen=True)
class CheckpointParam(ParamReport):
    """A tensor of a weights file: ParamReport plus how far it is from `--against`'s prediction."""

    var_ratio: float | None  # observed var / expected var: 1 at init, drifts as training moves it
    mean_shift: float | None  # observed mean - expected mean
    # initcli.weights.freshness's state: at init, trained, undecided or uninitialized.
    state: str = freshness.UNDECIDED


@dataclass(frozen=True)
class CheckpointReport:
    """`initcli inspect model.safetensors|model.pt`: the tensors of a weights file."""

    target: str
    format: str  # "safetensors" or "torch"
    against: str | None  # the scheme compared with, described; None without --against
    params: tuple[CheckpointParam, ...]
    counts: CountReport
    # Modules whose every decided tensor still holds a fresh init among trained ones
    # (freshness.judge_loaded).
    fresh_modules: tuple[str, ...] = ()

    @functools.cached_property
    def groups(self) -> tuple[RowGroup, ...]:
        """The tensors of repeated blocks, one group per pattern and state (report.grouping)."""
        fresh = set(self.fresh_modules)

        def kind(p: ParamReport) -> Hashable:
            state = p.state if isinstance(p, CheckpointParam) else None
            return (param_kind(p), state, p.name.rpartition(".")[0] in fresh)

        return group_params(self.params, kind)


@dataclass(frozen=True)
class _Group:
    """The tensors one module held, and the module they fit (on meta), if any type fits."""

    prefix: str
    module: nn.Module
    inferred: bool
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    exact: bool = False  # the module is the model's own (built from config.json), not a guess

    @property
    def type_name(self) -> str:
        if self.exact:
            return type(self.module).__name__
        return checkpoint.type_label(self.module) if self.inferred else "-"

    def full(self, leaf: str) -> str:
        return f"{self.prefix}.{leaf}" if self.prefix else leaf


def _layout(ckpt: checkpoint.Checkpoint, own: hf.HFModel | None = None) -> list[_Group]:
    if own is not None:
        return _own_layout(ckpt, own)
    aliases = {n for names in checkpoint.tied_names(ckpt.tensors).values() for n in names}
    groups = checkpoint.module_groups([n for n in ckpt.tensors if n not in aliases])
    layout = []
    # Stand-ins are read, never changed: groups of the same signature share one (building one
    # per layer would take minutes on a file of 10^5 small tensors).
    built: dict[Hashable, tuple[nn.Module, bool]] = {}
    for prefix, leaves in groups.items():
        tensors = {leaf: ckpt.tensors[f"{prefix}.{leaf}" if prefix else leaf] for leaf in leaves}
        params = {
            leaf: t
            for leaf, t in tensors.items()
            if not checkpoint.is_buffer(f"{prefix}.{leaf}", t)
        }
        buffers = {leaf: t for leaf, t in tensors.items() if leaf not in params}
        key = checkpoint.signature(prefix, tensors)
        if key not in built:
            built[key] = _stand_in(prefix, tensors, params)
        module, inferred = built[key]
        layout.append(_Group(prefix, module, inferred, params, buffers))
    return layout


def _stand_in(
    prefix: str, tensors: dict[str, torch.Tensor], params: dict[str, torch.Tensor]
) -> tuple[nn.Module, bool]:
    module = checkpoint.stand_in(prefix, tensors)
    if module is not None:
        return module, True
    # A bare module holding meta tensors of the same shapes, so counting.formula applies.
    bare = nn.Module()
    for leaf, t in params.items():
        bare.register_parameter(leaf, nn.Parameter(torch.empty(t.shape, device="meta")))
    return bare, False


def _own_layout(ckpt: checkpoint.Checkpoint, own: hf.HFModel) -> list[_Group]:
    """Groups by the model's own modules: stored names mapped onto the model's."""
    layout: dict[str, _Group] = {}
    for name, t in ckpt.tensors.items():
        if name not in own.names:
            continue
        mapped = own.names[name]
        prefix, _, leaf = name.rpartition(".")
        group = layout.get(prefix)
        if group is None:
            module = own.model.get_submodule(mapped.rpartition(".")[0])
            group = layout[prefix] = _Group(prefix, module, True, {}, {}, exact=True)
        # The model's leaf name: a renamed tensor (experts.0.w1.weight → experts.gate_up_proj)
        # keeps its stored leaf in the row but is a parameter by the model's.
        own_leaf = mapped.rpartition(".")[2]
        is_param = any(n == own_leaf for n, _ in group.module.named_parameters(recurse=False))
        (group.params if is_param else group.buffers)[leaf] = t
    return list(layout.values())


def _own_counts(ckpt: checkpoint.Checkpoint, own: hf.HFModel) -> Counts:
    counted = count_model(own.model)
    stored = sum(t.numel() for n, t in ckpt.tensors.items() if n in own.names)
    notes = [
        f"module types, tied weights and torchinfo's count are those of {own.architecture}, "
        f"built on the meta device from config.json ({own.seconds:.2f} s; nothing downloaded).",
        *ckpt.notes,
    ]
    if own.tied:
        notes.append(f"not in the file, tied to a stored tensor: {', '.join(own.tied)}.")
    if own.missing:
        notes.append(
            f"the model has {len(own.missing)} tensors the file does not hold "
            f"({first_and_more(own.missing, 3)}): they would keep their fresh init when loaded."
        )
    if own.unexpected:
        notes.append(
            f"{len(own.unexpected)} stored tensors have no place in the model "
            f"({first_and_more(own.unexpected, 3)}); not measured."
        )
    if ckpt.files > 1:
        notes.append(f"read from {ckpt.files} shard files.")
    if stored != counted.total:
        notes.append(f"the file holds {stored:,} parameters; the model has {counted.total:,}.")
    return replace(counted, notes=(*counted.notes, *notes))


def _model_of(ckpt: checkpoint.Checkpoint) -> hf.Built:
    """The folder's own model from its config.json, if it has one and transformers is here."""
    folder = Path(ckpt.path)
    if not folder.is_dir():
        return hf.Built(None)
    return hf.meta_model(folder, ckpt.tensors)


def _checkpoint_counts(ckpt: checkpoint.Checkpoint, layout: list[_Group]) -> Counts:
    total = sum(t.numel() for g in layout for t in g.params.values())
    buffers = sum(t.numel() for g in layout for t in g.buffers.values())
    formulas: dict[int, str] = {}  # groups share stand-ins: one formula each
    modules = tuple(
        ModuleCount(
            g.prefix or "(root)",
            g.type_name,
            sum(t.numel() for t in g.params.values()),
            formulas.get(id(g.module)) or formulas.setdefault(id(g.module), formula(g.module)),
        )
        for g in layout
        if g.params
    )
    tied = [
        f"tied weights: {' and '.join([first, *others])} are one tensor of "
        f"{ckpt.tensors[first].numel():,} elements; counted once."
        for first, others in checkpoint.tied_names(ckpt.tensors).items()
    ]
    inferred = any(g.inferred for g in layout)
    notes = _file_notes(ckpt.notes, ckpt.files, ckpt.metadata, tied, inferred)
    return Counts(total, total, 0, buffers, None, False, notes, modules)


def _file_notes(
    notes: Sequence[str],
    files: int,
    metadata: Mapping[str, str],
    tied: Sequence[str],
    inferred: bool,
) -> tuple[str, ...]:
    """A weights file's count notes: what was read, who wrote it, tied tensors, what is guessed."""
    found = list(notes)
    if files > 1:
        found.append(f"read from {files} shard files.")
    made = {key: metadata.get(f"initcli.{key}") for key in ("target", "scheme", "seed")}
    if made["target"]:
        found.append(
            f"written by initcli inspect --save: {made['target']}, {made['scheme']}, "
            f"seed {made['seed']}."
        )
    found.extend(tied)
    found.append(
        "a weights file holds tensors, not a model: torchinfo is not run; requires_grad is not "
        "stored, so every parameter counts as trainable; buffers are told from parameters by "
        "name and dtype (running_mean, running_var, num_batches_tracked, *_mask, integer tensors)."
    )
    if inferred:
        found.append("module types marked ? are inferred from parameter names and shapes.")
    return tuple(found)


def _header_counts(file: Path) -> Counts:
    """A single safetensors file's counts from its header alone (what `_checkpoint_counts`
    gives, in time and memory linear in the number of tensors and small per tensor)."""
    found = checkpoint.header_layout(file)
    notes = _file_notes((), 1, found.metadata, (), found.inferred)
    if found.unguessed:
        notes += (
            f"module types are guessed for {MAX_GUESSED_LAYOUTS:,} distinct layouts (tensor names "
            f"and shapes) only: the {found.unguessed:,} modules of other layouts show type -; "
            "their counts, read from the header, are exact.",
        )
    return Counts(found.params, found.params, 0, found.buffers, None, False, notes, found.modules)


def count_file(path: str | os.PathLike[str]) -> CountReport:
    """`initcli count FILE`: a weights file's totals, per inferred module (per the model's own
    modules for a HF folder with a config.json, when transformers is installed). `hf:ORG/NAME`
    counts the local HF cache's folder, else reads the headers from the Hub."""
    if is_hub_target(str(path)):
        repo = parse_hub_target(str(path))
        folder = hub.cached_folder(repo)
        if folder is None:
            return _count_remote(hub.remote_weights(repo))
        found = count_file(folder)
        return replace(found, target=repo.label, remarks=(*found.remarks, _from_cache(folder)))
    file = Path(path)
    if file.suffix.lower() == ".safetensors" and file.is_file():
        try:
            return CountReport(str(path), _header_counts(file))
        except CheckpointError:
            pass  # an irregular header: `load` reads it, or says what is wrong in its own words
    ckpt = checkpoint.open_weights(path)
    built = _model_of(ckpt)
    counts = _counts(ckpt, built.model, list(built.notes))
    return CountReport(str(path), counts, remarks=built.heard)


def _from_cache(folder: Path) -> str:
    return f"read from the local HF cache: {folder}"


def _count_remote(remote: hub.RemoteWeights) -> CountReport:
    """A Hub repository's counts from its headers and config.json: what counting the folder
    the files make gives, without its weights."""
    label = remote.repo.label
    ckpt = checkpoint.from_shards(label, remote.shards, readable=False)
    folder = remote.config_folder
    built = hf.meta_model(folder, ckpt.tensors) if folder is not None else hf.Built(None)
    counts = _counts(ckpt, built.model, list(built.notes))
    files = len(remote.shards.shards)
    read = (
        f"read over HTTP from {label} at commit {remote.commit[:12]}: "
        f"{'config.json and ' if folder is not None else ''}{files} safetensors "
        f"header{'s' if files != 1 else ''} ({remote.header_bytes:,} bytes); no weights "
        "downloaded"
    )
    return CountReport(label, counts, remarks=(*built.heard, read))


def local_weights(target: str, download: bool = False, quiet: bool = False) -> str:
    """The file or folder a weights TARGET reads: itself, or for `hf:ORG/NAME` the local HF
    cache's snapshot folder (downloaded there first with `download`)."""
    if not is_hub_target(target):
        return target
    repo = parse_hub_target(target)
    folder = hub.cached_folder(repo)
    if folder is None and download:
        folder = hub.download(repo, quiet)
    if folder is None:
        raise hub.not_cached(
            repo,
            f"pass --download to download its safetensors weights and config.json into it "
            f"(`initcli count {repo.label}` reads only their headers)",
        )
    return str(folder)


def _counts(
    ckpt: checkpoint.Checkpoint,
    own: hf.HFModel | None,
    extra: list[str],
    layout: list[_Group] | None = None,
) -> Counts:
    """The checkpoint's counts (`layout`: its file layout, when the caller has it already)."""
    if own:
        counted = _own_counts(ckpt, own)
    else:
        counted = _checkpoint_counts(ckpt, _layout(ckpt) if layout is None else layout)
    return replace(counted, notes=(*counted.notes, *extra))


def inspect_checkpoint(
    path: str | os.PathLike[str],
    against: str | None = None,
    bias_against: str | None = None,
    progress: Progress | None = None,
    download: bool = False,
    quiet: bool = False,
) -> CheckpointReport:
    """`initcli inspect FILE`: statistics of each tensor in a .safetensors file or a state dict.

    Nothing in the file is executed: torch files are read with `torch.load(weights_only=True)`.
    With `against`, each tensor is compared with what that scheme would have drawn for its shape
    (`bias_against` for 1-D tensors, default zeros): `var_ratio` and `mean_shift` say how far
    training moved it, `status` whether it still looks like that init. `hf:ORG/NAME` reads the
    local HF cache's folder; with `download`, huggingface_hub downloads it there first.
    """
    if against is None and bias_against is not None:
        raise SchemeError("--bias-init needs --against SCHEME to compare a weights file with")
    chosen = resolve_schemes(against, bias_against, None) if against else None
    if chosen and chosen[0].name == schemes.AUTO:
        raise SchemeError(
            "--against auto: auto picks each weight's scheme from the activation after it, which "
            "a weights file does not record; name a scheme, e.g. --against kaiming_normal"
        )
    local = local_weights(str(path), download, quiet)
    ckpt = checkpoint.open_weights(local)
    built = _model_of(ckpt)
    if local != str(path):
        built = replace(built, heard=(*built.heard, _from_cache(Path(local))))
    return _judged_report(str(path), ckpt, built, chosen, progress)


def inspect_loaded(
    target: str,
    args: Mapping[str, object] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> CheckpointReport:
    """`initcli inspect TARGET --loaded`: the model TARGET's own code returns (a factory that
    calls from_pretrained on a local folder, say), judged as a weights folder is: each tensor's
    state and the modules still fresh among trained ones. A transformers model's own init is its
    class's, built again on meta from its config (hf.rebuilt); any other module is judged by the
    named inits its values match, as a bare weights file is."""
    limits.check_seed(seed)
    source = resolve_target(target, args)
    torch.manual_seed(seed)  # what the loading code draws (a layer the folder lacks) repeats
    with resolve.user_code(target, "built"):
        model = source.build()
    if not isinstance(model, nn.Module):
        raise TargetError(
            f"{target} returned an object of type {type(model).__name__}, not an nn.Module; "
            "return the loaded model"
        )
    tensors = {n: t.detach() for n, t in model.state_dict().items()}
    if any(t.is_meta for t in tensors.values()):
        raise TargetError(
            f"{target} returned a model with tensors on the meta device: nothing was loaded into "
            "them; return the model after its weights are loaded"
        )
    ckpt = checkpoint.Checkpoint(target, "model", tensors)
    return _judged_report(target, ckpt, hf.rebuilt(model), None, progress)


def _judged_report(
    target: str,
    ckpt: checkpoint.Checkpoint,
    built: hf.Built,
    chosen: tuple[schemes.Scheme, schemes.Scheme] | None,
    progress: Progress | None,
) -> CheckpointReport:
    """Each tensor of `ckpt` measured (against `chosen` if given) and judged at init or trained."""
    own, extra = built.model, list(built.notes)
    layout = _layout(ckpt, own)
    # The model's own init per stored tensor (a HF folder with its config.json), else {}.
    own_init = _own_init(layout, ckpt, own) if own else {}
    defaults = (
        (own_init or _defaults(layout))
        if chosen and (chosen[0].is_default or chosen[1].is_default)
        else {}
    )
    owners = {group.full(leaf): (group, leaf) for group in layout for leaf in group.params}
    depth = naming.depth_hint(own.model) if own else checkpoint.depth_from_names(ckpt.tensors)
    if progress is not None and not distributed.is_primary():
        progress = None  # under torchrun, rank 0's bar alone

    def work(mine: list[str]) -> Iterator[tuple[str, tuple[CheckpointParam, freshness.Tensor]]]:
        """Read and measure `mine`, one tensor at a time, each file once, in whatever order
        that takes."""
        if progress is not None:
            progress.start(len(mine), sum(ckpt.tensors[n].numel() for n in mine))
        try:
            for name, t in ckpt.values(mine):
                try:
                    row = _measure_stored(name, t, owners[name], chosen, defaults, depth)
                    # The structure tests need the values, read here once.
                    judged = freshness.with_structure(_judged(row, own_init.get(name)), t)
                except Exception as exc:
                    raise distributed.ItemError(name) from exc
                del t
                if progress is not None:
                    progress.advance(name, ckpt.tensors[name].numel())
                yield name, (row, judged)
        finally:
            if progress is not None:
                progress.finish()

    sizes = [ckpt.tensors[n].numel() * ckpt.tensors[n].element_size() for n in owners]
    # One intra-op thread while measuring: float32 sums then add in the same order whatever the
    # machine's cores and load, so every digit is the same in one process or split by torchrun
    # (docs/speed.md: parallelism comes from processes, and threads never spin on a busy core).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = distributed.shared(list(owners), sizes, work)
    finally:
        torch.set_num_threads(threads)
    measured = {name: row for name, (row, _) in results.items()}
    verdict = freshness.judge_loaded([results[name][1] for name in owners])
    rows = [replace(measured[name], state=verdict.states[name]) for name in owners]
    notes = [*extra, *verdict.notes, *_unproduced(rows)]
    counts = CountReport(target, _counts(ckpt, own, notes, layout), remarks=built.heard)
    described = chosen[0].describe() if chosen else None
    return CheckpointReport(
        target, ckpt.format, described, tuple(rows), counts, verdict.fresh_modules
    )


def _measure_stored(
    name: str,
    t: torch.Tensor,
    owner: tuple[_Group, str],
    chosen: tuple[schemes.Scheme, schemes.Scheme] | None,
    defaults: Mapping[str, schemes.Expectation],
    depth: int | None,
) -> CheckpointParam:
    """One stored tensor, measured against `chosen` (its default where that is torch's)."""
    group, leaf = owner
    exp = schemes.Expectation("-")
    default = False
    if chosen is not None:
        scheme = assign.choose(*chosen, group.module, leaf, t)
        default = scheme.is_default
        exp = (
            defaults.get(name, schemes.UNKNOWN)
            if scheme.is_default
            else schemes.expectation(scheme, t)
        )
    return _moved(
        measure(name, group.type_name, t, exp, True, default=default, depth=depth, trained=True)
    )


def _judged(r: CheckpointParam, init: schemes.Expectation | None) -> freshness.Tensor:
    return freshness.Tensor(r.name, r.numel or 0, r.mean, r.var, r.fit, init, len(r.shape or ()))


# Past this magnitude a float tensor holds values no init draws and no training reaches: the
# signature of memory that was never written (torch.empty) or of a run that blew up.
_GARBAGE = 1e30


def _unproduced(rows: list[CheckpointParam]) -> list[str]:
    """Notes on tensors that neither an init nor training produces (NaN/Inf, garbage values)."""
    found = []
    nonfinite = [r.name for r in rows if r.mean is not None and not math.isfinite(r.mean)]
    if nonfinite:
        found.append(
            f"{len(nonfinite)} tensors hold NaN or Inf ({', '.join(nonfinite[:3])}"
            f"{' ...' if len(nonfinite) > 3 else ''}): no init and no training produces them."
        )
    huge = [
        r.name
        for r in rows
        if r.name not in nonfinite
        and max(abs(r.min or 0.0), abs(r.max or 0.0)) > _GARBAGE
        and r.dtype.startswith(("float", "bfloat"))
    ]
    if huge:
        found.append(
            f"{len(huge)} tensors hold values beyond ±1e30 ({', '.join(huge[:3])}"
            f"{' ...' if len(huge) > 3 else ''}): uninitialized memory, never a trained weight."
        )
    return found


def _own_init(
    layout: list[_Group], ckpt: checkpoint.Checkpoint, own: hf.HFModel
) -> dict[str, schemes.Expectation]:
    """What a HF folder's model draws for each stored tensor: its constructors, then its
    `_init_weights` through post_init (recorded on meta, see hf.HFModel.init_of)."""
    return {n: own.init_of(n, ckpt.tensors[n]) for g in layout for n in map(g.full, g.params)}


def _defaults(layout: list[_Group]) -> dict[str, schemes.Expectation]:
    """What PyTorch's own init implies for each tensor whose module type could be inferred.

    A module's defaults also cover its children's tensors where it re-initializes them (as
    MultiheadAttention zeroes out_proj.bias), so outer modules are applied last and win.
    """
    found: dict[str, schemes.Expectation] = {}
    for group in sorted(layout, key=lambda g: -(g.prefix.count(".") + 1) if g.prefix else 0):
        if group.inferred:
            for name, exp in torch_defaults.default_expectations(group.module).items():
                found[group.full(name)] = exp
    return found


def _moved(row: ParamReport) -> CheckpointParam:
    ratio = shift = None
    if row.var is not None and row.expected_var:
        ratio = row.var / row.expected_var
    if row.mean is not None and row.expected_mean is not None:
        shift = row.mean - row.expected_mean
    values: dict[str, Any] = {f.name: getattr(row, f.name) for f in fields(ParamReport)}
    return CheckpointParam(**values, var_ratio=ratio, mean_shift=shift)
