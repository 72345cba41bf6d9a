"""tests/typecheck/user_script.py runs and computes what it says.

CI type-checks that script with ``mypy --strict`` against the installed
package (.ci/run, lint stage); this test makes sure the script is also a
working program, so the calls the type check accepts are real ones.
"""
import importlib.util
import math
from pathlib import Path

USER_SCRIPT = Path(__file__).resolve().parent / "typecheck" / "user_script.py"


def load_user_script():
    spec = importlib.util.spec_from_file_location("user_script", USER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_user_script_runs(tmp_path):
    summary = load_user_script().main(tmp_path)

    history = summary.fit_history
    assert history.epochs_run == len(history.loss) == len(history.val_accuracy) >= 1
    assert history.loss[-1] < history.loss[0]
    assert summary.test_accuracy > 0.9
    losses = summary.hand_loop_losses
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert summary.saved_outputs_equal
    assert summary.resumed_outputs_equal
    assert summary.gradient_check_error < 1e-4
    assert summary.reference_loss_difference < 1e-12
    # d/dw (sigmoid(w x) - 1)^2 = 2 (s - 1) s (1 - s) x with s = sigmoid(w x)
    s = 1.0 / (1.0 + math.exp(-1.0))
    assert math.isclose(summary.graph_gradient, 2 * (s - 1) * s * (1 - s) * 2.0, rel_tol=1e-12)
    # the float32 twin differs only by float32 rounding
    assert 0 < summary.float32_max_difference < 1e-4
