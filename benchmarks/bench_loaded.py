"""How well `initcli inspect FOLDER` tells a layer that did not load from trained ones (by hand).

    python benchmarks/bench_loaded.py [--seeds 5] [--steps 0,100,300] [--models gpt2,bert,llama]

For each HF architecture (small configs built from their config classes; nothing downloaded)
and seed, one module holding a weight of at least 1,024 values (the seed picks it) is frozen,
the rest trains for N Adam steps (lr 1e-3, batch 8×64 of counting sequences t, t+1, …:
learnable, every token and position seen), and the model is saved
with save_pretrained into a temporary folder that is deleted afterwards. Then
`report.inspect_checkpoint` judges it: `hit` is the share of runs that flag the frozen module,
`false flags` the modules flagged that did train, per run; each run is judged twice, with the
folder's config.json (the model's own init known) and without it (named inits only). With 0
steps (an untrained save) every tensor called `trained` is a false alarm.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from initcli.report import inspect_checkpoint
from initcli.weights import freshness

VOCAB = 1000
SEQ = 64  # every position embedding trains


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
            GPT2Config(n_layer=4, n_embd=128, n_head=4, vocab_size=VOCAB, n_positions=64)
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


Judged = tuple[tuple[str, ...], int]  # modules flagged, tensors called trained


def _judged(folder: str) -> Judged:
    report = inspect_checkpoint(folder)
    trained = sum(p.state == freshness.TRAINED for p in report.params)
    return report.fresh_modules, trained


def _run(build: Callable[[], nn.Module], seed: int, steps: int) -> tuple[str, Judged, Judged]:
    torch.manual_seed(seed)
    model = build()
    candidates = sorted(
        {
            n.rpartition(".")[0]
            for n, p in model.named_parameters()
            if p.dim() >= 2 and p.numel() >= freshness.MIN_DECIDABLE and "embed" not in n
        }
    )
    frozen = candidates[seed % len(candidates)]
    for name, p in model.named_parameters():
        if name.rpartition(".")[0] == frozen:
            p.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = (torch.randint(0, VOCAB, (8, 1), generator=gen) + torch.arange(SEQ)) % VOCAB
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        own = _judged(folder)
        # The same tensors without config.json: judged by named inits, not the model's own.
        (Path(folder) / "config.json").unlink()
        bare = _judged(folder)
    return frozen, own, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", default="0,100,300")
    parser.add_argument("--models", default="gpt2,bert,llama")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small matrices: a second thread only adds contention
    builds = models()
    print(
        f"# bench_loaded · {platform.processor() or platform.machine()} · torch "
        f"{torch.__version__} · {datetime.date.today()}"
    )
    print(
        "| model | steps | runs | config.json | frozen flagged | false flags / run | "
        "tensors called trained / run |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        for steps in (int(s) for s in args.steps.split(",")):
            tally = {"yes": [0, 0, 0], "no": [0, 0, 0]}  # hits, false flags, trained
            for seed in range(args.seeds):
                frozen, own, bare = _run(builds[name], seed, steps)
                for key, (flagged, trained) in (("yes", own), ("no", bare)):
                    tally[key][0] += frozen in flagged
                    tally[key][1] += len(set(flagged) - {frozen})
                    tally[key][2] += trained
            runs = args.seeds
            for key, (hits, false, trained) in tally.items():
                hit = "–" if steps == 0 else f"{hits}/{runs}"
                print(
                    f"| {name} | {steps} | {runs} | {key} | {hit} | {false / runs:.2f} | "
                    f"{trained / runs:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
