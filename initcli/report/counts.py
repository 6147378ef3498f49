"""`initcli count`: exact totals of a model, a spec or a weights file, without allocating them."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from initcli import memory
from initcli.errors import ArgError
from initcli.model import building
from initcli.report._shared import (
    CountReport,
    check_spec_depth,
    counts_of,
    guarded,
    has_lazy,
    is_weights,
    materialize_lazy,
    resolve_target,
    try_meta,
)
from initcli.report.weights import count_file


@guarded("run")
def count(
    target: str,
    args: Mapping[str, object] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> CountReport:
    """`initcli count`: count TARGET's parameters (or a weights file's) without allocating them.

    A spec is counted by arithmetic; anything else is built on the meta device (shapes, no data,
    no draws), and only built for real when its constructor cannot run there.
    """
    if is_weights(target):
        if args:
            raise ArgError(f"--arg does not apply to a weights file ({target})")
        if input_shape is not None:
            raise ArgError("--input-shape does not apply to a weights file: its shapes are stored")
        return count_file(target)
    source = resolve_target(target, args)
    check_spec_depth(source)
    if source.prebuilt:
        built = source.build()
        materialize_lazy(source, built, input_shape)
        return CountReport(source.target, counts_of(source, built, input_shape), "real")
    meta, why = try_meta(source)
    if meta is not None and input_shape is not None and has_lazy(meta):
        # Lazy layers take their shapes from a forward pass: that needs real tensors.
        meta, why = None, "--input-shape materializes its lazy layers"
    if meta is not None:
        method = "spec" if source.spec is not None else "meta"
        counts = counts_of(source, meta, input_shape)
        # torchinfo reads values on some models (a pruning mask it sums), and a forward pass on
        # the --input-shape batch may need them: where the meta build fails it, a real one.
        failed = next((n for n in counts.notes if n.startswith("torchinfo.summary failed")), None)
        if (
            failed is not None
            and source.spec is None
            and memory.fits(building.tensor_bytes(meta), torch.device("cpu"))
        ):
            built = source.build()
            real = counts_of(source, built, input_shape)
            # Also where the input fails there too: the real build's error names the cause.
            if real.torchinfo is not None:
                why = failed.removeprefix("torchinfo.summary failed ").split(", so ")[0]
                if why.startswith("on the "):  # the --input-shape batch
                    why = "with the " + why.removeprefix("on the ")
                remark = building.fallback_note(
                    source.target, f"torchinfo.summary failed on the meta build {why}"
                )
                return CountReport(source.target, real, "real", (remark,))
        return CountReport(source.target, counts, method)
    built = source.build()
    materialize_lazy(source, built, input_shape)
    remark = building.fallback_note(source.target, why or "")
    return CountReport(source.target, counts_of(source, built, input_shape), "real", (remark,))
