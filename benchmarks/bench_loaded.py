"""How well `initcli inspect FOLDER` tells a module that did not load from trained ones (by hand).

    python benchmarks/bench_loaded.py [--seeds 5] [--steps 10,100] [--models bert,vit,gpt2,llama,t5]

For each architecture (tiny configs from transformers' config classes, nothing downloaded), seed
and number of steps, the model trains N Adam steps (lr 1e-3, batch 8: counting sequences t, t+1,
… for the language models, random images and labels for ViT) and is saved four ways with
save_pretrained into a temporary folder:

- `nothing`: as trained;
- `head`: its head (HEADS) replaced by a fresh draw of the model's own init (a head that did not
  load);
- `block`: one block's MLP (BLOCKS) replaced the same way (a reset block);
- `missing`: one block's attention (MISSING) dropped from the file (transformers fills it in).

`report.inspect_checkpoint` judges each twice, with the folder's config.json (the model's own init
known) and without it (named inits only). A hit: every reset module is in `fresh_modules` (for
`missing`: the "tensors the file does not hold" note names the module; without config.json nothing
can name it). False flags: flagged modules that trained, per run. Per tensor: the share of weights
(≥ 1,024 values) that moved ≥ 5/10/20% from their init (‖W − W₀‖/‖W₀‖) yet read `at init`, and of
untouched (reset) weights that read `trained`.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from initcli.report import inspect_checkpoint
from initcli.weights import freshness, renames

VOCAB = 1000
SEQ = 64  # every position embedding trains
MOVES = (0.05, 0.10, 0.20)
SCENARIOS = ("nothing", "head", "block", "missing")

# The module each scenario resets or drops, by the model's own (module) names.
HEADS = {
    "gpt2": "lm_head",
    "bert": "cls.predictions.transform.dense",
    "llama": "lm_head",
    "t5": "lm_head",  # tied to `shared` (T5 ties them in transformers 5.24): both reset
    "vit": "classifier",
}
BLOCKS = {
    "gpt2": "transformer.h.1.mlp",
    "bert": "bert.encoder.layer.1.intermediate",
    "llama": "model.layers.1.mlp",
    "t5": "decoder.block.1.layer.2.DenseReluDense",
    "vit": "vit.layers.1.mlp",
}
MISSING = {
    "gpt2": "transformer.h.2.attn",
    "bert": "bert.encoder.layer.2.attention.self",
    "llama": "model.layers.2.self_attn",
    "t5": "encoder.block.1.layer.0.SelfAttention",
    "vit": "vit.layers.2.attention",
}


def models() -> dict[str, Callable[[], nn.Module]]:
    """The benchmark's architectures, tiny (hidden 128 or 64, 2-4 blocks): BERT, ViT, GPT-2,
    Llama and T5 with their LM or classification heads."""
    import transformers

    transformers.logging.set_verbosity_error()
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        T5Config,
        T5ForConditionalGeneration,
        ViTConfig,
        ViTForImageClassification,
    )

    return {
        "gpt2": lambda: GPT2LMHeadModel(
            GPT2Config(
                n_layer=4,
                n_embd=128,
                n_head=4,
                vocab_size=VOCAB,
                n_positions=64,
                tie_word_embeddings=False,
            )
        ),
        "bert": lambda: BertForMaskedLM(
            BertConfig(
                hidden_size=128,
                num_hidden_layers=4,
                num_attention_heads=4,
                intermediate_size=512,
                vocab_size=VOCAB,
                max_position_embeddings=64,
            )
        ),
        "llama": lambda: LlamaForCausalLM(
            LlamaConfig(
                hidden_size=128,
                num_hidden_layers=4,
                num_attention_heads=4,
                num_key_value_heads=4,
                intermediate_size=512,
                vocab_size=VOCAB,
            )
        ),
        "t5": lambda: T5ForConditionalGeneration(
            T5Config(
                d_model=128,
                d_ff=512,
                d_kv=32,
                num_layers=2,
                num_decoder_layers=2,
                num_heads=4,
                vocab_size=VOCAB,
                decoder_start_token_id=0,
                pad_token_id=0,
            )
        ),
        "vit": lambda: ViTForImageClassification(
            ViTConfig(
                hidden_size=128,
                num_hidden_layers=4,
                num_attention_heads=4,
                intermediate_size=512,
                image_size=32,
                patch_size=8,
                num_labels=10,
            )
        ),
    }


def _train(model: nn.Module, kind: str, steps: int, seed: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        if kind == "vit":
            x = torch.randn(8, 3, 32, 32, generator=gen)
            loss = model(pixel_values=x, labels=torch.randint(0, 10, (8,), generator=gen)).loss
        else:
            x = (torch.randint(0, VOCAB, (8, 1), generator=gen) + torch.arange(SEQ)) % VOCAB
            loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()


def _stored(model: nn.Module, folder: Path) -> dict[str, torch.Tensor]:
    model.save_pretrained(folder)
    return load_file(str(folder / "model.safetensors"))


@dataclass
class Tally:
    """One (model, steps, config.json) cell, summed over seeds."""

    runs: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    false: dict[str, int] = field(default_factory=dict)
    moved: dict[float, list[int]] = field(default_factory=lambda: {m: [0, 0] for m in MOVES})
    untouched: list[int] = field(default_factory=lambda: [0, 0])  # called trained, all


def _judge(folder: Path, config: bool) -> tuple[tuple[str, ...], dict[str, str], tuple[str, ...]]:
    if not config:
        (folder / "config.json").unlink(missing_ok=True)
    report = inspect_checkpoint(folder)
    states = {p.name: p.state for p in report.params}
    return report.fresh_modules, states, report.counts.counts.notes


def _dropped(model: nn.Module, module: str, stored: dict[str, torch.Tensor]) -> set[str]:
    """The stored names of `module`'s tensors (ViT stores other names than its modules')."""
    names = renames.loaded_names(model, stored).names
    return {n for n, mapped in names.items() if mapped.startswith(f"{module}.")}


def _run(
    kind: str, build: Callable[[], nn.Module], seed: int, steps: int, tallies: dict[bool, Tally]
) -> None:
    torch.manual_seed(seed)
    model = build()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = _stored(model, root / "init")
        _train(model, kind, steps, seed)
        trained = _stored(model, root / "trained")
        kept = {k: v.clone() for k, v in model.state_dict().items()}
        torch.manual_seed(10_000 + seed)
        fresh = build()  # the model's own init, another draw
        folders: dict[str, tuple[Path, set[str]]] = {"nothing": (root / "trained", set())}
        for scenario, module in (("head", HEADS[kind]), ("block", BLOCKS[kind])):
            with torch.no_grad():
                for name, p in model.get_submodule(module).named_parameters():
                    p.copy_(fresh.get_submodule(module).get_parameter(name))
            changed = _stored(model, root / scenario)
            reset = {n for n in changed if not torch.equal(changed[n], trained[n])}
            folders[scenario] = (root / scenario, reset)
            model.load_state_dict(kept)
        drop = root / "missing"
        model.save_pretrained(drop)
        gone = _dropped(model, MISSING[kind], trained)
        tensors = {n: t for n, t in trained.items() if n not in gone}
        save_file(tensors, str(drop / "model.safetensors"), metadata={"format": "pt"})
        folders["missing"] = (drop, gone)
        for config in (True, False):
            tally = tallies[config]
            tally.runs += 1
            for scenario, (folder, reset) in folders.items():
                _tally(tally, scenario, folder, reset, start, config, MISSING[kind])


def _tally(
    tally: Tally,
    scenario: str,
    folder: Path,
    reset: set[str],
    start: dict[str, torch.Tensor],
    config: bool,
    missing: str,
) -> None:
    flagged, states, notes = _judge(folder, config)
    if scenario == "missing":
        hit = any("the file does not hold" in n and missing in n for n in notes)
        expected: set[str] = set()
    else:
        expected = {n.rpartition(".")[0] for n in reset}
        hit = bool(expected) and expected <= set(flagged)
    tally.hits[scenario] = tally.hits.get(scenario, 0) + hit
    tally.false[scenario] = tally.false.get(scenario, 0) + len(set(flagged) - expected)
    stored = load_file(str(folder / "model.safetensors"))
    for name, state in states.items():
        t, t0 = stored[name], start.get(name)
        if t.dim() < 2 or t.numel() < freshness.MIN_DECIDABLE or t0 is None:
            continue
        if name in reset:
            tally.untouched[0] += state == freshness.TRAINED
            tally.untouched[1] += 1
        elif scenario == "nothing":
            moved = float((t.double() - t0.double()).norm() / t0.double().norm())
            for m in MOVES:
                if moved >= m:
                    tally.moved[m][0] += state == freshness.AT_INIT
                    tally.moved[m][1] += 1


def _share(pair: list[int]) -> str:
    return "–" if not pair[1] else f"{pair[0]}/{pair[1]} ({pair[0] / pair[1]:.0%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", default="10,100")
    parser.add_argument("--models", default="bert,vit,gpt2,llama,t5")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small matrices: a second thread only adds contention
    builds = models()
    print(
        f"# bench_loaded · {platform.processor() or platform.machine()} · torch "
        f"{torch.__version__} · {datetime.date.today()} · {args.seeds} seeds"
    )
    print(
        "| model | steps | config.json | head found | block found | missing named | "
        "false flags / run (nothing, head, block, missing) | moved ≥5% / ≥10% / ≥20% read at "
        "init | untouched read trained |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        for steps in (int(s) for s in args.steps.split(",")):
            tallies = {True: Tally(), False: Tally()}
            for seed in range(args.seeds):
                _run(name, builds[name], seed, steps, tallies)
            for config, t in tallies.items():
                runs = t.runs
                false = ", ".join(f"{t.false.get(s, 0) / runs:.2f}" for s in SCENARIOS)
                found = [f"{t.hits.get(s, 0)}/{runs}" for s in ("head", "block", "missing")]
                if not config:
                    found[2] = "–"
                moved = " / ".join(_share(t.moved[m]) for m in MOVES)
                print(
                    f"| {name} | {steps} | {'yes' if config else 'no'} | {' | '.join(found)} | "
                    f"{false} | {moved} | {_share(t.untouched)} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
