"""What a person reads when train.py runs into a log file: the run folder, real step counts, no
library advertisements or deprecation noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_script

pytestmark = pytest.mark.slow


def test_a_run_names_its_folder_counts_real_steps_and_prints_no_tips(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py",
        "logger=wandb",  # offline (run_script sets WANDB_MODE=offline), not silenced
        "trainer.max_steps=3",
        "trainer.limit_test_batches=1",
        "trainer.enable_progress_bar=true",  # stderr is a pipe: the log-file progress bar
        "threads=1",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert f"Run folder: {run_dir.resolve()}" in output
    assert "Epoch 0: 100%" in output and "3/3 [" in output  # not 3/938: max_steps ends the epoch
    assert "/938" not in output
    assert "litlogger" not in output and "Tip:" not in output
    assert "anonymous" not in output
    assert f"Run folder: {run_dir.resolve()}" in (run_dir / "train.log").read_text()
