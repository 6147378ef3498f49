"""PyTorch's own default init per module type: what each parameter's constructor drew, and why."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

from torch import nn

from initcli.init.norms import Norm, norm_of
from initcli.init.schemes import (
    KURTOSIS_NORMAL,
    KURTOSIS_UNIFORM,
    UNKNOWN,
    Expectation,
    fans,
)
from initcli.model.building import is_uninitialized


def _uniform(label: str, bound: float) -> Expectation:
    return Expectation(label, 0.0, bound * bound / 3.0, KURTOSIS_UNIFORM)


def _module_defaults(module: nn.Module) -> Iterator[tuple[str, Expectation]]:
    """(direct parameter name, expectation) for the module types whose defaults are known."""
    params = dict(module.named_parameters(recurse=False))
    if isinstance(module, nn.MultiheadAttention):
        for pname, param in params.items():
            if pname in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                fan_in, fan_out = fans(param) or (1, 1)
                yield (
                    pname,
                    Expectation("xavier_uniform", 0.0, 2.0 / (fan_in + fan_out), KURTOSIS_UNIFORM),
                )
            elif pname in ("bias_k", "bias_v"):
                fan_in, fan_out = fans(param) or (1, 1)
                yield (
                    pname,
                    Expectation("xavier_normal", 0.0, 2.0 / (fan_in + fan_out), KURTOSIS_NORMAL),
                )
            elif pname == "in_proj_bias":
                yield pname, Expectation("zeros", 0.0, 0.0)
        return
    if isinstance(module, nn.Linear | nn.Bilinear | nn.modules.conv._ConvNd):
        weight = params.get("weight")
        if weight is None or is_uninitialized(weight) or weight.numel() == 0:
            return
        if isinstance(module, nn.Bilinear):
            fan_in = weight.shape[1]
        else:
            fan_in = nn.init._calculate_fan_in_and_fan_out(weight)[0]
        # kaiming_uniform_(a=√5) has bound gain·√(3/fan_in) with gain² = 2/(1+5): i.e. 1/√fan_in.
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        if isinstance(module, nn.Bilinear):
            weight_name = bias_name = "uniform(±1/√in1_features)"
        else:
            weight_name, bias_name = "kaiming_uniform(a=√5)", "uniform(±1/√fan_in)"
        yield "weight", _uniform(weight_name, bound)
        if "bias" in params:
            yield "bias", _uniform(bias_name, bound)
        return
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        weight = params["weight"]
        rows = weight.shape[0]
        padded = getattr(module, "padding_idx", None) is not None
        # The padding row is zeroed after the N(0, 1) draw, which scales the variance by (n-1)/n.
        var = (rows - 1) / rows if padded and rows > 0 else 1.0
        yield "weight", Expectation("normal(0, 1)", 0.0, var, KURTOSIS_NORMAL)
        return
    if isinstance(module, nn.RNNBase | nn.RNNCellBase):
        bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0
        for pname in params:
            yield pname, _uniform("uniform(±1/√hidden_size)", bound)
        return
    norm = norm_of(module)
    if norm is not None:
        # torch's norm classes and any layer that normalizes like one (HF's LlamaRMSNorm,
        # T5LayerNorm, GemmaRMSNorm) start as the identity: gain 1 (0 where it scales by 1 + w).
        for pname in params:
            yield pname, norm_start(norm, pname)
        return
    if isinstance(module, nn.PReLU):
        yield "weight", Expectation(f"constant({module.init:g})", float(module.init), 0.0)


def norm_start(norm: Norm, pname: str) -> Expectation:
    """What a normalization layer's parameter starts at, as an expectation: `ones` for a gain,
    `zeros` for a bias or for a gain applied as 1 + w (Gemma's RMSNorm)."""
    value = norm.start(pname)
    label = "ones" if value == 1.0 else "zeros"
    if pname == norm.gain and value == 0.0:
        label = "zeros (it scales by 1 + w)"
    return Expectation(label, value, 0.0)


def default_expectations(model: nn.Module) -> dict[str, Expectation]:
    """Per parameter name, what the module constructors' own init implies ('unknown' otherwise)."""
    by_id: dict[int, Expectation] = {}
    for _prefix, module in model.named_modules():
        params = dict(module.named_parameters(recurse=False))
        for pname, exp in _module_defaults(module):
            by_id.setdefault(id(params[pname]), exp)
    for _prefix, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention) and module.out_proj.bias is not None:
            # MultiheadAttention zeroes its output projection's bias after Linear's own init.
            by_id[id(module.out_proj.bias)] = Expectation("zeros", 0.0, 0.0)
        if isinstance(module, nn.Transformer):
            # nn.Transformer re-initializes every matrix below it with xavier_uniform_.
            for param in module.parameters():
                if param.dim() > 1 and not is_uninitialized(param) and param.numel() > 0:
                    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(param)
                    by_id[id(param)] = Expectation(
                        "xavier_uniform", 0.0, 2.0 / (fan_in + fan_out), KURTOSIS_UNIFORM
                    )
    result: dict[str, Expectation] = {}
    for name, param in model.named_parameters():
        if is_uninitialized(param):
            result[name] = Expectation("uninitialized (lazy)")
        else:
            result[name] = by_id.get(id(param), UNKNOWN)
    return result


@dataclass(frozen=True)
class DefaultRule:
    """What a module type's own reset_parameters does to one of its parameters, as text."""

    param: str
    init: str  # the torch.nn.init call
    values: str  # the distribution drawn from
    variance: str  # its variance, as a formula


_FAN_IN_RULES = (
    DefaultRule("weight", "kaiming_uniform_(a=√5)", "U(±1/√fan_in)", "1/(3·fan_in)"),
    DefaultRule("bias", "uniform_(-1/√fan_in, 1/√fan_in)", "U(±1/√fan_in)", "1/(3·fan_in)"),
)


def default_rules(module: nn.Module) -> tuple[DefaultRule, ...]:
    """The rules behind _module_defaults, for the parameters this module holds directly.

    The figures themselves come from default_expectations; these are the formulas they follow.
    """
    params = dict(module.named_parameters(recurse=False))
    if isinstance(module, nn.MultiheadAttention):
        rules = {
            "in_proj_weight": DefaultRule(
                "in_proj_weight", "xavier_uniform_", "U(±√(6/(fan_in+fan_out)))",
                "2/(fan_in+fan_out)"),
            "in_proj_bias": DefaultRule("in_proj_bias", "constant_(0)", "0", "0"),
            "bias_k": DefaultRule("bias_k", "xavier_normal_", "N(0, 2/(fan_in+fan_out))",
                                  "2/(fan_in+fan_out)"),
        }  # fmt: skip
        for qkv in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
            rules[qkv] = replace(rules["in_proj_weight"], param=qkv)
        rules["bias_v"] = replace(rules["bias_k"], param="bias_v")
        return tuple(rules[p] for p in params if p in rules)
    if isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear):
        # MultiheadAttention's out_proj: Linear's own init, then its owner zeroes the bias.
        zeroed = DefaultRule("bias", "constant_(0), by its MultiheadAttention", "0", "0")
        return tuple(_FAN_IN_RULES[0] if p == "weight" else zeroed for p in params)
    if isinstance(module, nn.Bilinear):
        # Bilinear.reset_parameters draws weight and bias from one uniform_(±1/√in1_features).
        bilinear = DefaultRule(
            "", "uniform_(-1/√in1_features, 1/√in1_features)", "U(±1/√in1_features)",
            "1/(3·in1_features)",
        )  # fmt: skip
        return tuple(replace(bilinear, param=p) for p in ("weight", "bias") if p in params)
    if isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
        return tuple(r for r in _FAN_IN_RULES if r.param in params)
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        padded = getattr(module, "padding_idx", None) is not None
        var = "(n−1)/n: the padding_idx row is zeroed" if padded else "1"
        return (DefaultRule("weight", "normal_(0, 1)", "N(0, 1)", var),)
    if isinstance(module, nn.RNNBase | nn.RNNCellBase):
        return tuple(
            DefaultRule(p, "uniform_(-1/√hidden_size, 1/√hidden_size)", "U(±1/√hidden_size)",
                        "1/(3·hidden_size)")
            for p in params
        )  # fmt: skip
    norm = norm_of(module)
    if norm is not None:
        starts = [(p, norm.start(p)) for p in params]
        return tuple(
            DefaultRule(p, "ones_" if value == 1.0 else "zeros_", f"{value:g}", "0")
            for p, value in starts
        )
    if isinstance(module, nn.PReLU):
        return (DefaultRule("weight", f"constant_({module.init:g})", f"{module.init:g}", "0"),)
    return ()
