"""What the coverage-guided fuzz targets share: running one under atheris.

Each target module (``fuzz_load.py``, ``fuzz_state_dict.py``,
``fuzz_tables.py``) defines ``check(data: bytes) -> None``, which feeds the
bytes to one entry point of the library and raises ``Finding`` (or lets an
undocumented exception escape) when the library breaks its promise: an
exception other than the documented ones, a network changed by a refused
call, or a result that disagrees with its input.  ``check`` needs no fuzzer,
so tests/fuzz/test_corpus.py replays the corpus kept in
tests/fuzz/corpus/<target>/ in every test run.

Run a target with atheris (``pip install ".[fuzz]"``)::

    python tests/fuzz/fuzz_load.py -max_total_time=60

With no directory argument the target reads its corpus directory and
writes what it discovers to a temporary directory, never into the
repository; any other libFuzzer option (``-runs=``, ``-max_len=``, a
crash file to replay) is passed through.  A finding stops the run, prints
the traceback and the input's bytes, and leaves the input in the working
directory as ``crash-<sha1>``.
"""

import os
import sys
import tempfile

CORPUS_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


class Finding(AssertionError):
    """The library broke a documented promise on this input."""


def scratch_directory() -> str:
    """A directory for the files a target writes, removed at exit."""
    directory = tempfile.TemporaryDirectory(prefix="pybackprop-fuzz-")
    # Kept alive for the process's lifetime; cleaned up at interpreter exit.
    _keep.append(directory)
    return directory.name


_keep: list = []


def write_file(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def corpus_directory(target: str) -> str:
    return os.path.join(CORPUS_ROOT, target)


# Python code whose branches guide the fuzzer: the library, and the parsers
# of the formats it reads (zip archives, .npy headers, CSV).  Instrumenting
# everything loaded (atheris.instrument_all, NumPy included) takes minutes.
INSTRUMENTED_MODULES = ("pybackprop", "zipfile", "numpy.lib.format", "numpy.lib._format_impl",
                        "csv")


def _instrument(atheris, prefixes) -> None:
    """Instrument every loaded Python function of the modules named by prefixes."""
    import gc
    import types

    count = 0
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and isinstance(obj.__code__, types.CodeType):
            module = getattr(obj, "__module__", None) or ""
            if module.startswith(prefixes) and module in sys.modules:
                atheris.instrument_func(obj)
                count += 1
    print(f"INFO: instrumented {count} functions of {', '.join(prefixes)}", file=sys.stderr)


def fuzz(target: str, check) -> None:
    """Run check under atheris with the target's corpus; the script's main."""
    import atheris

    def one_input(data: bytes) -> None:
        try:
            check(data)
        except BaseException:
            print(f"\n=== {target}: finding on input of {len(data)} bytes: {data!r}", file=sys.stderr)
            raise

    args = list(sys.argv)
    options = [a for a in args[1:] if a.startswith("-")]
    inputs = [a for a in args[1:] if not a.startswith("-")]
    if not inputs:
        # New inputs go to the first directory: a temporary one, so that the
        # repository's corpus changes only when someone adds to it on purpose.
        discovered = tempfile.mkdtemp(prefix=f"pybackprop-fuzz-{target}-")
        inputs = [discovered, corpus_directory(target)]
    _instrument(atheris, INSTRUMENTED_MODULES)
    atheris.Setup([args[0], *options, *inputs], one_input)
    atheris.Fuzz()
