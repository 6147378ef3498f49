"""What the report modules share: resolve and build a target, guard specs, lazy layers, schemes."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import torch
from torch import nn

from initcli import limits, memory
from initcli.errors import ProbeError, SchemeError, TargetError, first_line
from initcli.experiments import batches, probe
from initcli.init import assign, auto, policy, schemes, torch_defaults, usercode
from initcli.measure.counting import Counts, count_model, count_spec
from initcli.model import building, resolve
from initcli.model.spec import MAX_LAYERS
from initcli.report.grouping import RowGroup, group_modules
from initcli.weights import checkpoint

if TYPE_CHECKING:
    # At run time spec (and pydantic with it) loads only where a YAML spec is used.
    from initcli.model.spec import MLPSpec


@dataclass(frozen=True)
class CountReport:
    target: str
    counts: Counts
    # How the numbers were obtained: "spec" (arithmetic), "meta" (built on the meta device) or
    # "real" (built in memory); `remarks` are sentences for stderr about that, not results.
    method: str = "real"
    remarks: tuple[str, ...] = ()

    @functools.cached_property
    def groups(self) -> tuple[RowGroup, ...]:
        """The modules of repeated blocks, one group per pattern (report.grouping)."""
        return group_modules(self.counts.modules)


def is_weights(target: str) -> bool:
    """Whether TARGET is a weights file or folder, or a Hub repository (`hf:ORG/NAME`): read,
    never built, rather than a model; the one place count, inspect and check decide it."""
    return resolve.is_hub_target(target) or checkpoint.is_checkpoint(target)


def resolve_target(target: str, args: Mapping[str, object] | None = None) -> resolve.ModelSource:
    """What TARGET names (nothing built yet), with a YAML spec's `init:` checked by the policy
    grammar: every report starts here."""
    return resolve.resolve(target, args, check_init=policy.check_spec_init)


def counts_of(
    source: resolve.ModelSource, model: nn.Module, input_shape: tuple[int, ...] | None = None
) -> Counts:
    """initcli's count and torchinfo's; with `input_shape`, torchinfo runs its forward pass on a
    batch of 2 such samples (token ids for an Embedding first layer), on the model's device."""
    # A spec is counted by arithmetic; the model (meta or real) is only torchinfo's to read.
    inputs = None
    if input_shape is not None:
        device = next(itertools.chain(model.parameters(), model.buffers()), torch.empty(0)).device
        spec = batches.input_spec(model, None, input_shape)
        inputs = batches.make_batch(spec, 2, 0).to(device)
    if source.spec is not None:
        return count_spec(source.spec, model, inputs)
    return count_model(model, inputs)


def check_spec_depth(source: resolve.ModelSource) -> None:
    """Refuse, by arithmetic, a spec whose `repeat:` expands to more layers than can be listed."""
    if source.spec is None:
        return
    layers = sum(layer.repeat for layer in source.spec.layers)
    if layers > MAX_LAYERS:
        raise TargetError(
            f"{source.target} expands to {layers:,} layers; initcli lists every module and "
            f"handles at most {MAX_LAYERS:,}: lower repeat:"
        )


def try_meta(
    source: resolve.ModelSource, quiet: bool = False
) -> tuple[nn.Module | None, str | None]:
    """(meta-built model, None), or (None, why a real build is needed)."""
    try:
        model = building.build_meta(source, quiet)
    except Exception as exc:
        return None, f"its constructor failed there ({first_line(exc)})"
    why = building.needs_values(model)
    return (None, why) if why else (model, None)


def check_spec_fits(source: resolve.ModelSource, copies: int, hint: str) -> None:
    """Refuse to build a spec that cannot fit in memory, before building a single layer."""
    if source.spec is None:
        return
    from initcli.model.spec import parameter_count

    params = parameter_count(source.spec)
    needed = params * 4 * copies  # float32
    available = memory.available_bytes(torch.device("cpu"))
    if available is not None and needed > memory.REFUSE_SHARE * available:
        raise TargetError(
            f"{source.target} has {params:,} parameters: building it needs about "
            f"{needed / 2**30:,.1f} GiB, more than the {available / 2**30:,.1f} GiB free; {hint}"
        )


def has_lazy(model: nn.Module) -> bool:
    return any(building.is_uninitialized(p) for p in model.parameters())


def materialize_lazy(
    source: resolve.ModelSource, model: nn.Module, input_shape: tuple[int, ...] | None
) -> None:
    """One no-grad forward pass on a dummy batch, so lazy layers get their shapes and own init."""
    if input_shape is None or not has_lazy(model):
        return
    device = next((b.device for b in model.buffers()), torch.device("cpu"))
    batch = batches.make_batch(batches.InputSpec(input_shape, None, "--input-shape"), 2, 0)
    try:
        with torch.no_grad():
            model(batch.to(device))
    except Exception as exc:
        shape = ",".join(map(str, input_shape))
        raise ProbeError(
            f"the forward pass that gives {source.target}'s lazy layers their shapes failed "
            f"with --input-shape {shape}: {first_line(exc)}; check --input-shape"
        ) from None


def resolve_policy(
    init: str | None, bias_init: str | None, spec_init: str | Mapping[str, object] | None
) -> policy.Policy:
    """--init (a scheme, rules, @file, fn:, method:), else the spec's init:, else default."""
    return policy.parse(init or spec_init, bias_init)


def resolve_schemes(
    init: str | None, bias_init: str | None, spec_init: str | None
) -> tuple[schemes.Scheme, schemes.Scheme]:
    """The weight and bias schemes of a plain scheme (where a policy cannot apply: --against)."""
    found = resolve_policy(init, bias_init, spec_init)
    if not found.is_plain:
        raise SchemeError(
            f"{found.describe()} is a policy; here give one scheme (e.g. kaiming_normal)"
        )
    return found.weight, found.bias


# The batch that traces a forward pass for `auto` and `defaults`: only the order of calls matters.
TRACE_BATCH = 4


def spec_followers(spec: MLPSpec) -> dict[str, auto.Follower]:
    """What follows each fc{i} of a spec's MLP, read from the spec (no forward pass needed)."""
    from initcli.model.spec import expand_layers

    found: dict[str, auto.Follower] = {}
    for layer in expand_layers(spec):
        act = layer.activation
        if act is None or act == "identity":
            found[f"fc{layer.index}"] = auto.Follower(None, where="no activation in the spec")
        else:
            # build_mlp uses nn.LeakyReLU(), whose slope is 0.01.
            slope = 0.01 if act == "leaky_relu" else 0.0
            found[f"fc{layer.index}"] = auto.Follower(act, slope, f"act{layer.index} {act} (spec)")
    return found


def followers_of(
    source: resolve.ModelSource, model: nn.Module, input_shape: tuple[int, ...] | None, seed: int
) -> dict[str, auto.Follower]:
    """What follows each weighted module: from the spec, else from a traced forward pass."""
    if source.spec is not None:
        return spec_followers(source.spec)
    spec = batches.input_spec(model, None, input_shape)
    return probe.trace_followers(model, batches.make_batch(spec, TRACE_BATCH, seed))


def auto_choices_for(
    source: resolve.ModelSource, model: nn.Module, input_shape: tuple[int, ...] | None, seed: int
) -> dict[str, tuple[schemes.Scheme, str]]:
    try:
        followers = followers_of(source, model, input_shape, seed)
    except ProbeError:
        if input_shape is not None:
            raise  # the user's own shape did not work: say so
        # No forward pass could be traced (no inferable input, or the inferred one failed): every
        # weight still gets a scheme, and its reason says that nothing was seen and what to do.
        return auto.auto_choices(
            model, {}, missing="activation unknown: no forward could be traced; give --input-shape"
        )
    return auto.auto_choices(model, followers)


def initialized(
    source: resolve.ModelSource,
    chosen: policy.Policy,
    seed: int,
    input_shape: tuple[int, ...] | None,
) -> tuple[nn.Module, dict[str, schemes.Expectation], tuple[str, ...]]:
    """A freshly built model with the policy applied under the seeding contract
    (docs/contract/schemes.md),
    each parameter's expectation, and the remarks the policy's matching made."""
    weight, bias = chosen.weight, chosen.bias
    # The constructors are the init of what the scheme or policy leaves alone (all of it for
    # `default`, the biases with --bias-init default): seed before the build too.
    torch.manual_seed(seed)
    model = source.build()
    if chosen.is_default:
        return model, torch_defaults.default_expectations(model), ()
    if chosen.code is not None:
        done = usercode.run(chosen.code, model, seed, source.target)
        return model, done.expectations, done.remarks
    choices = None
    remarks: tuple[str, ...] = ()
    if chosen.rules:
        matched = policy.assign(chosen, model, source.target)
        choices, remarks = matched.choices, matched.remarks
    elif weight.name == schemes.AUTO:
        # The trace runs before the seed is set, so it cannot shift the values drawn.
        choices = auto_choices_for(source, model, input_shape, seed)
    return model, assign.initialize(model, weight, bias, seed, choices), remarks


def batch_for(
    source: resolve.ModelSource,
    model: nn.Module,
    input_shape: tuple[int, ...] | None,
    batch_size: int,
    seed: int,
    input_fn: str | None = None,
) -> batches.Batch:
    """The probe's seeded batch: from --input's factory, else built from the model's input."""
    if input_fn is not None:
        return batches.factory_batch(input_fn, model, batch_size, seed)
    spec = batches.input_spec(model, source.spec.input if source.spec else None, input_shape)
    limits.check_batch(batch_size, spec.shape)
    return batches.build_batch(model, spec, batch_size, seed)


P = ParamSpec("P")
R = TypeVar("R")


def guarded(phase: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run a report function with the user's code guarded (resolve.user_code): a model's forward
    or init that calls sys.exit() becomes an error naming the target (the first argument), and
    what it prints goes to stderr. Imports and builds are guarded where loading runs them."""

    def wrap(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            target = args[0] if args else kwargs.get("target", "the model")
            with resolve.user_code(str(target), phase):
                return function(*args, **kwargs)

        return run

    return wrap
