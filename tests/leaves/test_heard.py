"""Library warnings and log lines become one `Note:` each, hidden by -q, never raw lines."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from initcli import heard
from tests.conftest import run

INITCLI = Path(sys.executable).parent / "initcli"

# A Llama config whose rope_scaling holds a key transformers does not know: it logs a warning
# through its own logger while the config is built (transformers 5: "Unrecognized keys in
# `rope_parameters` ..."). At module level, so the warning comes while the file is imported.
MODEL = """
from transformers import LlamaConfig, LlamaForCausalLM

CONFIG = dict(num_hidden_layers=1, hidden_size=16, intermediate_size=32, num_attention_heads=2,
              vocab_size=50, rope_scaling={"rope_type": "linear", "factor": 2.0, "bogus": 1})
model = LlamaForCausalLM(LlamaConfig(**CONFIG))


def build():
    return LlamaForCausalLM(LlamaConfig(**CONFIG))
"""


def test_warnings_and_log_records_are_collected_once_each_in_order() -> None:
    logger = logging.getLogger("somelib.sub")
    with heard.library_messages() as notes:
        warnings.warn("first thing", UserWarning, stacklevel=1)
        logger.warning("second %s", "thing")
        logger.warning("second thing")
        logger.info("not a warning")
    assert notes == ["somelib: second thing", "UserWarning: first thing"]


def test_an_inner_collection_hears_alone() -> None:
    """A meta build collects its own messages (they become its remarks) inside the command's
    collection: each message is told once, by the innermost."""
    logger = logging.getLogger("somelib")
    with heard.library_messages() as outer:
        logger.warning("before")
        with heard.library_messages() as inner:
            logger.warning("during")
            warnings.warn("warned during", UserWarning, stacklevel=1)
        logger.warning("after")
    assert inner == ["somelib: during", "UserWarning: warned during"]
    assert outer == ["somelib: before", "somelib: after"]


def test_past_the_cap_the_rest_are_counted() -> None:
    logger = logging.getLogger("chatty")
    with heard.library_messages() as notes:
        for i in range(heard.MAX_HEARD + 3):
            logger.warning("message %d\nsecond line dropped", i)
    assert len(notes) == heard.MAX_HEARD + 1
    assert notes[0] == "chatty: message 0"
    assert notes[-1] == "and 3 more messages from libraries."


def test_loggers_handlers_and_import_hooks_are_restored() -> None:
    import transformers  # noqa: F401

    logger = logging.getLogger("transformers")
    before = (list(logger.handlers), logger.propagate, list(logging.getLogger().handlers))
    hooks = list(sys.meta_path)
    with heard.library_messages():
        assert logger.propagate and not logger.handlers
    assert (list(logger.handlers), logger.propagate, list(logging.getLogger().handlers)) == before
    assert sys.meta_path == hooks


@pytest.mark.usefixtures("library_says_again")
def test_a_transformers_warning_is_a_note(tmp_path: Path) -> None:
    (tmp_path / "warns.py").write_text(MODEL)
    code, _, err = run("count", f"{tmp_path}/warns.py:build")
    assert code == 0, err
    assert "Note: transformers: Unrecognized keys in `rope_parameters`" in err
    code, _, err = run("count", f"{tmp_path}/warns.py:build", "-q")
    assert code == 0 and err == ""


def test_quiet_output_of_a_transformers_model_has_no_library_lines(tmp_path: Path) -> None:
    """In a fresh process, where transformers is first imported by the model's file and builds
    its config at import: the case where its own handler would print."""
    (tmp_path / "warns.py").write_text(MODEL)
    quiet = subprocess.run(
        [str(INITCLI), "count", "warns.py:model", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert "transformers" not in quiet.stdout.replace("LlamaForCausalLM", "")
