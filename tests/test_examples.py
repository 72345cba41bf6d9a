"""Every script in examples/ runs as it stands and prints what it promises."""

import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# script -> a regular expression its output must match (one key line)
KEY_LINES = {
    "own_training_loop.py": r"final test accuracy: (0\.9[0-9]+|1\.0+)\n",
    "fit_early_stopping.py": r"epochs run: \d+ of 500 \(stopped early: True\)\n"
                             r"(?s:.*)test accuracy: 0\.9[5-9][0-9]*\n",
    "numpy_comparison.py": r"gradients agree: largest difference \d\.\de-1[0-9] relative",
    "textbook_221.py": r"dL/dW2  \[\[-0\.0112451094, -0\.0117965398\]\]",
    "computational_graph.py": r"-0\.011245109366",
}


# Not run here: sklearn_pipeline.py (needs scikit-learn; a grid search of ~45 s
# on 2 cores), which belongs with the scikit-learn tests.


def test_listed_examples_exist():
    missing = [name for name in KEY_LINES if not (EXAMPLES / name).is_file()]
    assert not missing


@functools.lru_cache(maxsize=None)
def run_example(script):
    """Run one script (once per test session) from outside the source tree's root."""
    return subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True,
                          text=True, timeout=120, cwd=EXAMPLES.parent.parent)


@pytest.mark.parametrize("script", sorted(KEY_LINES))
def test_example_runs(script):
    result = run_example(script)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(KEY_LINES[script], result.stdout), result.stdout


def test_own_training_loop_loss_decreases():
    result = run_example("own_training_loop.py")
    losses = [float(v) for v in re.findall(r"training loss ([0-9.]+)", result.stdout)]
    assert len(losses) >= 5
    assert losses[-1] < 0.25 * losses[0]
