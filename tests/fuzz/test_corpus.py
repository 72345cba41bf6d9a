"""Replay the fuzz targets' corpus (tests/fuzz/corpus/<target>/) in every test run.

The corpus holds the seeds tests/fuzz/make_corpus.py writes and any input
the fuzzer found that once broke a promise, so each stays fixed in every
build (release, debug, sanitizer) without atheris.  A target's ``check``
raises on a broken promise; see tests/fuzz/fuzz_common.py.

tests/fuzz/findings/<target>/ holds the inputs that break a promise today,
replayed as strict expected failures: the fix that makes one pass turns
its test red (XPASS), and the input then moves to the corpus.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_common  # noqa: E402
import fuzz_load  # noqa: E402
import fuzz_state_dict  # noqa: E402
import fuzz_tables  # noqa: E402

TARGETS = {module.TARGET: module.check for module in (fuzz_load, fuzz_state_dict, fuzz_tables)}


FINDINGS_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "findings")


def _inputs(root, marks=()):
    for target in TARGETS:
        directory = os.path.join(root, target)
        names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
        for name in names:
            yield pytest.param(target, os.path.join(directory, name), id=f"{target}/{name}",
                               marks=marks)


def _replay(target, path):
    with open(path, "rb") as f:
        TARGETS[target](f.read())


@pytest.mark.parametrize("target, path", list(_inputs(fuzz_common.CORPUS_ROOT)))
def test_corpus_input_keeps_every_promise(target, path):
    _replay(target, path)


_open_finding = pytest.mark.xfail(strict=True, reason="a fuzzer finding not fixed yet: once fixed, "
                                  "move the input from tests/fuzz/findings/ to tests/fuzz/corpus/")


_OPEN_FINDINGS = list(_inputs(FINDINGS_ROOT, _open_finding))

if _OPEN_FINDINGS:  # none open: no test, rather than one that only skips
    @pytest.mark.parametrize("target, path", _OPEN_FINDINGS)
    def test_open_finding_still_breaks_a_promise(target, path):
        _replay(target, path)


def test_every_target_has_seeds():
    for target in TARGETS:
        assert len(os.listdir(fuzz_common.corpus_directory(target))) >= 3, target


def test_the_seeds_are_accepted():
    """The seeds exercise the success path: each loads, builds or reads."""
    import pybackprop
    from pybackprop import tables

    for name in os.listdir(fuzz_common.corpus_directory("load")):
        if name.startswith("mlp-"):
            pybackprop.load(os.path.join(fuzz_common.corpus_directory("load"), name))
    for name in os.listdir(fuzz_common.corpus_directory("state_dict")):
        if name.startswith("network"):
            with open(os.path.join(fuzz_common.corpus_directory("state_dict"), name), "rb") as f:
                index, strict, from_state, state = fuzz_state_dict.decode(f.read())
            if from_state:
                fuzz_state_dict.pio.network_from_state_dict(state)
            else:
                fuzz_state_dict._network(index).load_state_dict(state, strict=strict)
    directory = fuzz_common.corpus_directory("tables")
    for name in ("classes.csv", "integer-labels.csv", "regression-quoted.csv", "array.npy",
                 "x-and-y.npz"):
        table = tables.read_data(os.path.join(directory, name))
        assert table.X.shape[0] >= 3, name
