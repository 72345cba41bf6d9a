"""Saving and loading networks: round trips, state dicts, and hostile files."""

import io
import os
import pickle
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from pybackprop import MLP, _validation
from pybackprop import io as pio
from pybackprop.optim import SGD, Adam

OUTPUT_LOSS = list(_validation.VALID_PAIRS)


def make_net(dtype="float64", output="softmax", loss="cross_entropy", seed=0):
    net = MLP([4, 5, 3, 3], activation=["tanh", "relu"], output=output, loss=loss,
              dtype=dtype, seed=seed)
    # Non-zero biases, so that a bias lost in a round trip shows.
    rng = np.random.default_rng(seed + 100)
    for b in net.biases:
        b[...] = rng.standard_normal(b.shape)
    return net


def batch(n=9, n_in=4, seed=1):
    return np.random.default_rng(seed).standard_normal((n, n_in))


def write_npz(path, arrays, allow_pickle=False):
    """An .npz with exactly these members, written the way numpy.savez does."""
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in arrays.items():
            with zf.open(key + ".npy", "w") as member:
                npy_format.write_array(member, np.asanyarray(value), allow_pickle=allow_pickle)


def write_raw_member(path, arrays, key, raw):
    """An .npz with these arrays plus member key holding the raw bytes given."""
    write_npz(path, arrays)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(key + ".npy", raw)


def saved_arrays(tmp_path, net=None):
    """The members of a valid saved network, as a dict to tamper with."""
    path = tmp_path / "valid.npz"
    pio.save(net if net is not None else make_net(), path)
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def npy_header(descr, shape):
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buffer.getvalue()


def assert_same_network(a, b):
    assert a.layer_sizes == b.layer_sizes
    assert a.activations == b.activations
    assert a.output == b.output and a.loss_name == b.loss_name
    assert a.dtype == b.dtype
    assert a.parameters.tobytes() == b.parameters.tobytes()


# -- round trips -------------------------------------------------------------


@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
def test_round_trip_is_bit_identical(tmp_path, dtype, output, loss):
    net = make_net(dtype, output, loss)
    path = tmp_path / "net.npz"
    pio.save(net, path)
    loaded = pio.load(path)
    assert_same_network(loaded, net)
    X = batch()
    assert loaded.predict(X).tobytes() == net.predict(X).tobytes()
    assert loaded.predict(X).dtype == np.dtype(dtype)
    # The loaded network owns its parameters.
    net.weights[0][...] = 0.0
    assert np.any(loaded.weights[0] != 0.0)


def test_round_trip_without_hidden_layers(tmp_path, dtype):
    net = MLP([3, 2], output="sigmoid", loss="binary_cross_entropy", dtype=dtype, seed=3)
    pio.save(net, tmp_path / "net.npz")
    loaded = pio.load(tmp_path / "net.npz")
    assert loaded.activations == ()
    assert_same_network(loaded, net)


def test_round_trip_after_training(tmp_path):
    net = make_net("float64")
    X, y = batch(20), np.random.default_rng(5).integers(0, 3, 20)
    for _ in range(5):
        net.train_step(X, y, 0.1)
    pio.save(net, str(tmp_path / "net.npz"))
    loaded = pio.load(str(tmp_path / "net.npz"))
    assert loaded.loss(X, y) == net.loss(X, y)
    assert loaded.predict(X).tobytes() == net.predict(X).tobytes()


def test_save_writes_exactly_the_name_given_and_a_plain_npz(tmp_path):
    path = tmp_path / "model.weights"
    pio.save(make_net("float32"), path)
    assert sorted(os.listdir(tmp_path)) == ["model.weights"]
    with np.load(path, allow_pickle=False) as npz:
        files = set(npz.files)
        assert files == {"pybackprop_format", "layer_sizes", "activations", "output", "loss",
                         "dtype", "W0", "b0", "W1", "b1", "W2", "b2"}
        for key in files:
            assert npz[key].dtype != object
        assert int(npz["pybackprop_format"]) == 1
        assert npz["layer_sizes"].dtype == np.int64
        assert npz["layer_sizes"].tolist() == [4, 5, 3, 3]
        assert npz["activations"].dtype.kind == "U"
        assert npz["activations"].tolist() == ["tanh", "relu"]
        assert npz["output"].shape == () and npz["output"].item() == "softmax"
        assert npz["loss"].item() == "cross_entropy"
        assert npz["dtype"].item() == "float32"
        assert npz["W1"].shape == (3, 5) and npz["W1"].dtype == np.float32


def test_save_replaces_an_existing_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "net.npz"
    pio.save(make_net(seed=1), path)
    second = make_net(seed=2)
    pio.save(second, path)
    assert os.listdir(tmp_path) == ["net.npz"]
    assert_same_network(pio.load(path), second)


def test_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "net.npz"
    first = make_net(seed=1)
    pio.save(first, path)

    class BadOptimizer:
        def state_dict(self):
            return {"lr": 0.1, "callback": print}

    with pytest.raises(TypeError, match="callback"):
        pio.save(make_net(seed=2), path, optimizer=BadOptimizer())
    assert os.listdir(tmp_path) == ["net.npz"]
    assert_same_network(pio.load(path), first)


def test_save_into_a_missing_directory_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        pio.save(make_net(), tmp_path / "no" / "such" / "net.npz")


# -- state dicts -------------------------------------------------------------


def test_state_dict_holds_plain_copies():
    net = make_net("float32")
    state = pio.state_dict(net)
    assert list(state) == ["layer_sizes", "activations", "output", "loss", "dtype",
                           "W0", "b0", "W1", "b1", "W2", "b2"]
    assert state["layer_sizes"].dtype == np.int64 and state["layer_sizes"].tolist() == [4, 5, 3, 3]
    assert state["activations"].dtype.kind == "U"
    assert state["activations"].tolist() == ["tanh", "relu"]
    assert (state["output"], state["loss"], state["dtype"]) == ("softmax", "cross_entropy", "float32")
    for i, (W, b) in enumerate(zip(net.weights, net.biases)):
        assert state[f"W{i}"].dtype == np.float32 and np.array_equal(state[f"W{i}"], W)
        assert np.array_equal(state[f"b{i}"], b)
    before = net.parameters.copy()
    state["W0"][...] = 7.0
    state["b2"][...] = 7.0
    assert np.array_equal(net.parameters, before)


def test_state_dict_round_trip(dtype):
    net = make_net(dtype, seed=1)
    other = make_net(dtype, seed=2)
    assert not np.array_equal(other.parameters, net.parameters)
    pio.load_state_dict(other, pio.state_dict(net))
    assert_same_network(other, net)
    built = pio.network_from_state_dict(pio.state_dict(net))
    assert_same_network(built, net)
    X = batch()
    assert built.predict(X).tobytes() == net.predict(X).tobytes()


def test_weights_move_in_from_plain_arrays_and_out(rng):
    # As another library would hand them over: (n_out, n_in) weights, float64 and lists.
    W0, b0 = rng.standard_normal((5, 4)), rng.standard_normal(5)
    W1, b1 = rng.standard_normal((3, 5)), [0.5, -1.0, 2.0]
    W2, b2 = rng.standard_normal((3, 3)), np.array([1, 2, 3])
    net = make_net("float32")
    pio.load_state_dict(net, {"W0": W0, "b0": b0, "W1": W1, "b1": b1, "W2": W2, "b2": b2})
    assert np.array_equal(net.weights[0], W0.astype(np.float32))
    assert np.array_equal(net.biases[1], np.float32([0.5, -1.0, 2.0]))
    assert np.array_equal(net.biases[2], np.float32([1, 2, 3]))

    # The same forward pass written out in NumPy from the exported arrays.
    state = pio.state_dict(net)
    X = batch().astype(np.float32)
    A = np.tanh(X @ state["W0"].T + state["b0"])
    A = np.maximum(A @ state["W1"].T + state["b1"], 0.0)
    Z = A @ state["W2"].T + state["b2"]
    expected = np.exp(Z - Z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(net.predict(X), expected, rtol=1e-5, atol=1e-6)


def test_network_from_a_hand_built_state_dict():
    rng = np.random.default_rng(1)
    state = {"layer_sizes": [2, 3, 1], "activations": ["sigmoid"], "output": "identity",
             "W0": rng.standard_normal((3, 2)), "b0": np.zeros(3),
             "W1": rng.standard_normal((1, 3)), "b1": np.ones(1)}
    net = pio.network_from_state_dict(state)
    assert net.layer_sizes == (2, 3, 1) and net.loss_name == "squared_error"
    assert net.dtype == np.float64
    X = batch(5, 2)
    A = 1.0 / (1.0 + np.exp(-(X @ state["W0"].T)))
    np.testing.assert_allclose(net.predict(X), A @ state["W1"].T + 1.0, rtol=1e-12)


@pytest.mark.parametrize("change,key,words", [
    (lambda s: s.__setitem__("W1", np.zeros((5, 3))), "W1", ["(5, 3)", "(3, 5)"]),
    (lambda s: s.__setitem__("b0", np.zeros((5, 1))), "b0", ["(5, 1)", "(5,)"]),
    (lambda s: s.pop("b2"), "b2", ["missing"]),
    (lambda s: s["W2"].__setitem__((1, 1), np.nan), "W2", ["finite"]),
    (lambda s: s["b1"].__setitem__(0, np.inf), "b1", ["finite"]),
    (lambda s: s.__setitem__("W9", np.zeros(3)), "W9", ["unexpected"]),
    (lambda s: s.__setitem__("layer_sizes", np.array([4, 5, 3, 2])), "layer_sizes", ["[4, 5, 3, 3]"]),
    (lambda s: s.__setitem__("activations", np.array(["relu", "relu"])), "activations", ["tanh"]),
    (lambda s: s.__setitem__("output", "sigmoid"), "output", ["softmax"]),
])
def test_load_state_dict_errors_name_the_key_and_change_nothing(change, key, words):
    net = make_net()
    state = pio.state_dict(make_net(seed=5))
    change(state)
    before = net.parameters.copy()
    with pytest.raises(ValueError) as info:
        pio.load_state_dict(net, state)
    message = str(info.value)
    assert repr(key) in message
    for word in words:
        assert word in message
    assert net.parameters.tobytes() == before.tobytes()


def test_load_state_dict_checks_finiteness_after_conversion():
    net = make_net("float32")
    state = pio.state_dict(make_net("float64", seed=5))
    state["W2"][0, 0] = 1e300  # finite in float64, inf in float32
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="'W2'.*not finite in float32"):
        pio.load_state_dict(net, state)
    assert net.parameters.tobytes() == before.tobytes()


@pytest.mark.parametrize("bad", [np.zeros((5, 4), complex), np.zeros((5, 4), bool),
                                 np.full((5, 4), "x"), np.empty((5, 4), object)])
def test_load_state_dict_refuses_values_that_are_not_real_numbers(bad):
    net = make_net()
    state = pio.state_dict(net)
    state["W0"] = bad
    before = net.parameters.copy()
    with pytest.raises(TypeError, match="'W0'"):
        pio.load_state_dict(net, state)
    assert net.parameters.tobytes() == before.tobytes()


def test_load_state_dict_not_strict_loads_what_is_there():
    net = make_net(seed=1)
    source = make_net(seed=2)
    before = net.parameters.copy()
    pio.load_state_dict(net, {"W1": source.weights[1], "extra": 3}, strict=False)
    assert np.array_equal(net.weights[1], source.weights[1])
    assert np.array_equal(net.weights[0], make_net(seed=1).weights[0])
    assert not np.array_equal(net.parameters, before)
    with pytest.raises(TypeError, match="mapping"):
        pio.load_state_dict(net, [("W0", 1)])


def test_network_from_state_dict_checks_sizes_before_allocating():
    start = time.perf_counter()
    with pytest.raises(ValueError, match="more than the limit"):
        pio.network_from_state_dict({"layer_sizes": [10**9, 10**9, 10**9], "output": "identity",
                                     "activations": ["relu"], "W0": np.zeros((1, 1))})
    assert time.perf_counter() - start < 1.0
    with pytest.raises(ValueError, match="'W1'"):
        pio.network_from_state_dict({"layer_sizes": [2, 2, 1], "activations": "relu",
                                     "output": "identity", "W0": np.zeros((2, 2)),
                                     "b0": np.zeros(2), "W1": np.zeros((2, 1)),
                                     "b1": np.zeros(1)})


# -- optimizer state ---------------------------------------------------------


class FakeOptimizer:
    def __init__(self):
        self.velocity = np.arange(12, dtype=np.float64).reshape(3, 4) / 7

    def state_dict(self):
        return {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "step": 3, "nesterov": True,
                "velocity": self.velocity}


def test_optimizer_state_round_trip(tmp_path):
    net = make_net()
    optimizer = FakeOptimizer()
    path = tmp_path / "net.npz"
    pio.save(net, path, optimizer=optimizer)
    loaded, state = pio.load(path, with_optimizer_state=True)
    assert_same_network(loaded, net)
    assert set(state) == {"kind", "lr", "momentum", "step", "nesterov", "velocity"}
    assert state["kind"] == "sgd" and type(state["kind"]) is str
    assert state["lr"] == 0.1 and type(state["lr"]) is float
    assert state["momentum"] == 0.9
    assert state["step"] == 3 and type(state["step"]) is int
    assert state["nesterov"] is True
    assert state["velocity"].dtype == np.float64
    assert state["velocity"].tobytes() == optimizer.velocity.tobytes()
    # Without asking, only the network comes back.
    assert_same_network(pio.load(path), net)


def test_optimizer_state_is_none_when_not_saved(tmp_path):
    pio.save(make_net(), tmp_path / "net.npz")
    net, state = pio.load(tmp_path / "net.npz", with_optimizer_state=True)
    assert state is None and isinstance(net, MLP)


# -- files that are not what they claim --------------------------------------


def assert_bad_file(path, *words, **kwargs):
    with pytest.raises(ValueError) as info:
        pio.load(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    return info.value


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        pio.load(tmp_path / "nothing.npz")


def test_directory_raises_is_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError):
        pio.load(tmp_path)


@pytest.mark.parametrize("content,words", [
    (b"", ["empty"]),
    (b"layer_sizes = [2, 2, 1]\nweights = ...\n", ["not an .npz"]),
    (np.random.default_rng(0).bytes(4096), ["not an .npz"]),
    (pickle.dumps({"W0": [1.0]}), ["not an .npz"]),
    (b"PK\x03\x04" + bytes(60), ["truncated or corrupted"]),
])
def test_files_that_are_not_archives(tmp_path, content, words):
    path = tmp_path / "net.npz"
    path.write_bytes(content)
    assert_bad_file(path, *words)


def test_a_single_npy_file(tmp_path):
    path = tmp_path / "net.npy"
    np.save(path, np.zeros(3))
    assert_bad_file(path, "single .npy")


def test_truncated_files(tmp_path):
    good = tmp_path / "good.npz"
    pio.save(make_net(), good, optimizer=FakeOptimizer())
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    for length in [1, 2, 4, 30, 200, len(data) // 3, len(data) // 2, len(data) - 22,
                   len(data) - 1]:
        bad.write_bytes(data[:length])
        error = assert_bad_file(bad)
        assert isinstance(error.__cause__, (zipfile.BadZipFile, type(None)))


def test_corrupted_weight_bytes_fail_the_checksum(tmp_path):
    path = tmp_path / "net.npz"
    pio.save(make_net(), path)
    data = bytearray(path.read_bytes())
    # The last data byte of W1: the top byte of its last float, so a real change.
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("W1.npy")
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), "<u2")
    data_start = info.header_offset + 30 + int(name_len) + int(extra_len)
    data[data_start + info.compress_size - 1] ^= 0x40
    path.write_bytes(bytes(data))
    error = assert_bad_file(path, "'W1'", "CRC")
    assert isinstance(error.__cause__, zipfile.BadZipFile)


def test_random_corruption_only_ever_raises_value_error(tmp_path, rng):
    good = tmp_path / "good.npz"
    net = make_net()
    pio.save(net, good, optimizer=FakeOptimizer())
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    failures = 0
    for position in rng.integers(0, len(data), 400):
        corrupted = bytearray(data)
        corrupted[position] ^= int(rng.integers(1, 256))
        bad.write_bytes(bytes(corrupted))
        try:
            loaded, _ = pio.load(bad, with_optimizer_state=True)
        except ValueError:
            failures += 1
        else:
            # Bytes zipfile does not read (local header fields) may change freely.
            assert_same_network(loaded, net)
    assert failures > 300


def test_zip_holding_garbage_members(tmp_path):
    path = tmp_path / "net.npz"
    arrays = saved_arrays(tmp_path)
    del arrays["W0"]
    write_raw_member(path, arrays, "W0", b"these are not the weights you are looking for")
    assert_bad_file(path, "'W0'", "not a valid .npy")

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert_bad_file(path, "readme.txt")


def test_zip_made_by_another_program(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3), y=np.ones(2))
    assert_bad_file(path, "no 'pybackprop_format'", "x, y")


def pickle_bomb(marker):
    """An object array whose unpickling creates the file marker."""

    class CreatesMarker:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    array = np.empty(2, dtype=object)
    array[0] = CreatesMarker()
    array[1] = 1.0
    return array


@pytest.mark.parametrize("key", ["W0", "layer_sizes", "output", "optimizer/velocity"])
def test_pickled_object_arrays_are_refused_and_never_executed(tmp_path, key):
    arrays = saved_arrays(tmp_path)
    # First prove that the payload works when numpy is allowed to unpickle it.
    sanity_marker, sanity_path = tmp_path / "sanity-marker", tmp_path / "sanity.npz"
    write_npz(sanity_path, {key: pickle_bomb(sanity_marker)}, allow_pickle=True)
    with np.load(sanity_path, allow_pickle=True) as npz:
        npz[key]
    assert sanity_marker.exists()

    marker, path = tmp_path / "marker", tmp_path / "evil.npz"
    arrays[key] = pickle_bomb(marker)
    write_npz(path, arrays, allow_pickle=True)
    assert_bad_file(path, repr(key), "pickled", with_optimizer_state=True)
    assert not marker.exists()


def test_pickled_npy_is_refused_and_never_executed(tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "evil.npy"
    np.save(path, pickle_bomb(marker), allow_pickle=True)
    assert_bad_file(path, "single .npy")
    assert not marker.exists()


@pytest.mark.parametrize("sizes", [[10**9, 10**9, 10**9], [2**31 - 1, 2**31 - 1],
                                   [46341, 46341]])
def test_absurd_layer_sizes_fail_fast(tmp_path, sizes):
    arrays = saved_arrays(tmp_path)
    arrays["layer_sizes"] = np.array(sizes, dtype=np.int64)
    arrays["activations"] = np.array(["relu"] * (len(sizes) - 2), dtype=str)
    path = tmp_path / "huge.npz"
    write_npz(path, arrays)
    start = time.perf_counter()
    assert_bad_file(path, "'layer_sizes'", "more than the limit")
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("sizes,words", [
    ([4, 0, 3], ["between 1 and"]),
    ([4, -5, 3], ["between 1 and"]),
    ([4], ["between 2 and"]),
    (np.array([4.0, 5.0, 3.0, 3.0]), ["integers"]),
    (np.array([[4, 5], [3, 3]]), ["1-D"]),
])
def test_invalid_layer_sizes(tmp_path, sizes, words):
    arrays = saved_arrays(tmp_path)
    arrays["layer_sizes"] = np.asarray(sizes)
    path = tmp_path / "bad.npz"
    write_npz(path, arrays)
    assert_bad_file(path, "'layer_sizes'", *words)


def test_header_claiming_a_huge_array_is_not_allocated(tmp_path):
    arrays = saved_arrays(tmp_path)
    path = tmp_path / "bad.npz"
    huge = npy_header("<f8", (10**9, 10**9)) + bytes(16)
    for key in ["W0", "optimizer/velocity"]:
        case = {k: v for k, v in arrays.items() if k != key}
        write_raw_member(path, case, key, huge)
        start = time.perf_counter()
        assert_bad_file(path, repr(key), with_optimizer_state=True)
        assert time.perf_counter() - start < 1.0
    # The right shape with too few bytes behind it.
    case = {k: v for k, v in arrays.items() if k != "W0"}
    write_raw_member(path, case, "W0", npy_header("<f8", (5, 4)) + bytes(40))
    assert_bad_file(path, "'W0'", "truncated")


@pytest.mark.parametrize("key,value,words", [
    ("pybackprop_format", np.array(2), ["format 1"]),
    ("pybackprop_format", np.array("1"), ["'pybackprop_format'", "dtype"]),
    ("W1", np.zeros((5, 3)), ["'W1'", "(5, 3)", "(3, 5)"]),
    ("b2", np.zeros(4), ["'b2'", "(4,)", "(3,)"]),
    ("W0", np.full((5, 4), np.nan), ["'W0'", "finite"]),
    ("b0", np.array([0.0, np.inf, 0.0, 0.0, 0.0]), ["'b0'", "finite"]),
    ("W0", np.zeros((5, 4), complex), ["'W0'", "complex128", "real numbers"]),
    ("W0", np.zeros((5, 4), bool), ["'W0'", "bool"]),
    ("W0", np.full((5, 4), "1.0"), ["'W0'", "<U3"]),
    ("activations", np.array(["tanh", "swish"]), ["unknown activation 'swish'"]),
    ("activations", np.array(["tanh"]), ["'activations'", "(1,)", "(2,)"]),
    ("output", np.array("softplus"), ["unknown output activation 'softplus'"]),
    ("loss", np.array("hinge"), ["unknown loss 'hinge'"]),
    ("loss", np.array("squared_error"), ["cannot be used with"]),
    ("dtype", np.array("float16"), ["float32"]),
    ("output", np.array(["softmax"]), ["'output'", "(1,)"]),
    ("W7", np.zeros(3), ["unexpected", "'W7'"]),
])
def test_edited_files(tmp_path, key, value, words):
    arrays = saved_arrays(tmp_path)
    arrays[key] = value
    path = tmp_path / "edited.npz"
    write_npz(path, arrays)
    assert_bad_file(path, *words)


@pytest.mark.parametrize("key", ["pybackprop_format", "layer_sizes", "activations", "output",
                                 "loss", "dtype", "W2", "b0"])
def test_missing_entries(tmp_path, key):
    arrays = saved_arrays(tmp_path)
    del arrays[key]
    path = tmp_path / "partial.npz"
    write_npz(path, arrays)
    assert_bad_file(path, repr(key))


def test_compatible_files_from_other_programs_load(tmp_path):
    # Big-endian, Fortran-ordered and compressed: unusual but valid.
    net = make_net("float64")
    arrays = saved_arrays(tmp_path, net)
    arrays["W0"] = np.asfortranarray(arrays["W0"].astype(">f8"))
    arrays["b1"] = arrays["b1"].astype(">f8")
    path = tmp_path / "other.npz"
    np.savez_compressed(path, **arrays)
    loaded = pio.load(path)
    assert_same_network(loaded, net)


@pytest.mark.parametrize("name,optimizer", [("sgd_momentum", SGD), ("adam", Adam)])
def test_files_written_by_0_1_0_load_with_their_optimizer_state(name, optimizer):
    """tests/data/v0_1_0_*.npz were written by pybackprop 0.1.0 (state vectors
    saved as "optimizer/state1" and "optimizer/state2"): a [3, 4, 2] tanh
    network and its optimizer after three steps on X, y; the expected file
    holds the optimizer's state_dict(), the parameters, and the parameters
    after one more step."""
    data = Path(__file__).parent / "data"
    expected = np.load(data / "v0_1_0_expected.npz")
    X, y = expected["X"], expected["y"]
    net, state = pio.load(data / f"v0_1_0_{name}.npz", with_optimizer_state=True)
    np.testing.assert_array_equal(net.parameters, expected[f"{name}/parameters"])
    old_keys = {key.split("/", 2)[2] for key in expected if key.startswith(f"{name}/optimizer/")}
    assert set(state) == old_keys
    opt = optimizer(net)
    opt.load_state_dict(state)
    renamed = {"sgd_momentum": {"momentum_buffer": "state1"},
               "adam": {"exp_avg": "state1", "exp_avg_sq": "state2"}}[name]
    for key, value in opt.state_dict().items():
        want = expected[f"{name}/optimizer/{renamed.get(key, key)}"]
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, want)
        else:
            assert value == want.item(), key
    net.loss_and_grad(X, y)
    opt.step()
    np.testing.assert_array_equal(net.parameters, expected[f"{name}/parameters_after_next_step"])


def test_saved_optimizer_state_uses_the_new_names(tmp_path):
    net = make_net()
    opt = Adam(net, lr=0.01)
    net.loss_and_grad(batch(), [0, 1, 2, 0, 1, 2, 0, 1, 2])
    opt.step()
    net.save(tmp_path / "net.npz", optimizer=opt)
    with np.load(tmp_path / "net.npz", allow_pickle=False) as archive:
        assert {"optimizer/exp_avg", "optimizer/exp_avg_sq"} <= set(archive.files)
        assert not any(key.startswith("optimizer/state") for key in archive.files)
    loaded, state = pio.load(tmp_path / "net.npz", with_optimizer_state=True)
    np.testing.assert_array_equal(state["exp_avg"], opt._m)
    np.testing.assert_array_equal(state["exp_avg_sq"], opt._v)


# ---------------------------------------------------------------------------
# dtype names, out-of-range values, and how save replaces a file


@pytest.mark.parametrize("name", ["flaot32", "float", "d", "f8", "<f8", "double", "single",
                                  "Float64", "float64 ", ""])
def test_a_dtype_entry_must_be_float32_or_float64_by_name(tmp_path, name):
    """numpy reads "d", "float", "<f8" as float64; a state holds the name, nothing else."""
    net = MLP([4, 5, 3], seed=0)
    state = pio.state_dict(net)
    state["dtype"] = name
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="'dtype' must be one of 'float32', 'float64'"):
        pio.network_from_state_dict(state)
    state["W0"] = np.ones((5, 4))
    with pytest.raises(ValueError, match="'dtype'"):
        pio.load_state_dict(net, state)
    np.testing.assert_array_equal(net.parameters, before)
    arrays = saved_arrays(tmp_path)
    arrays["dtype"] = np.array(name)
    write_npz(tmp_path / "edited.npz", arrays)
    assert_bad_file(tmp_path / "edited.npz", "'dtype'", "'float32'")


class _GivenState:
    """An optimizer stand-in whose state_dict is whatever the test gives."""

    def __init__(self, state):
        self.state = state

    def state_dict(self):
        return self.state


def _adam_state(net, **changes):
    state = Adam(net).state_dict()
    state.update(changes)
    return state


@pytest.mark.parametrize("changes, words", [
    ({"step": np.array(2**64 - 1, dtype=np.uint64)}, ["'optimizer/step'", "18446744073709551615"]),
    ({"step": -1}, ["'optimizer/step'", "-1"]),
    ({"exp_avg_sq": np.full(38, 1e300)}, ["'optimizer/exp_avg_sq'", "1e+300", "float32"]),
    ({"exp_avg": np.full(38, -np.inf)}, ["'optimizer/exp_avg'", "-inf"]),
    ({"beta1": float("nan")}, ["'optimizer/beta1'", "nan"]),
])
def test_an_optimizer_state_out_of_range_is_refused_when_read(tmp_path, changes, words):
    """What loads can be used: a step the core cannot count, or state vectors that
    are infinite in the network's dtype, fail in load, not at the next step."""
    net = MLP([4, 5, 3], dtype="float32", seed=0)
    path = tmp_path / "net.npz"
    pio.save(net, path, optimizer=_GivenState(_adam_state(net, **changes)))
    assert_bad_file(path, *words, with_optimizer_state=True)
    # Without the optimizer state the network itself loads.
    assert pio.load(path).layer_sizes == (4, 5, 3)


def test_an_optimizer_state_in_range_loads(tmp_path):
    net = MLP([4, 5, 3], dtype="float32", seed=0)
    big = np.finfo(np.float32).max
    state = _adam_state(net, step=2**63 - 1, exp_avg_sq=np.full(38, big, dtype=np.float64))
    pio.save(net, tmp_path / "net.npz", optimizer=_GivenState(state))
    _, loaded = pio.load(tmp_path / "net.npz", with_optimizer_state=True)
    assert loaded["step"] == 2**63 - 1
    np.testing.assert_array_equal(loaded["exp_avg_sq"], big)


def test_save_writes_through_a_symlink_and_keeps_permissions(tmp_path):
    net = MLP([4, 5, 3], seed=0)
    target = tmp_path / "models" / "net.npz"
    target.parent.mkdir()
    MLP([4, 5, 3], seed=1).save(target)
    os.chmod(target, 0o640)
    link = tmp_path / "current.npz"
    link.symlink_to(target)
    net.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert os.stat(target).st_mode & 0o7777 == 0o640
    np.testing.assert_array_equal(pio.load(target).parameters, net.parameters)
    # No temporary file is left next to the link or the target.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current.npz", "models"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["net.npz"]


def test_save_gives_a_new_file_the_umask_default(tmp_path):
    old = os.umask(0o027)
    try:
        MLP([2, 1]).save(tmp_path / "new.npz")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "new.npz").st_mode & 0o7777 == 0o640


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "net.npz"
    MLP([4, 5, 3], seed=1).save(path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        pio.save(MLP([4, 5, 3]), path, optimizer=_GivenState({"bad": object()}))

    with pytest.raises(OSError):
        with pio.atomic_write(path) as f:
            f.write(b"half")
            raise OSError("disk full")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]


@pytest.mark.parametrize("key", ["W0", "b1"])
def test_parameters_beyond_float32_are_refused_and_change_nothing(tmp_path, key):
    """1e300 is finite in float64 and infinite in float32: the check is after converting."""
    net = MLP([4, 5, 3], dtype="float32", seed=0)
    before = net.parameters.copy()
    state = pio.state_dict(net)
    state["W1"] = np.full((3, 5), 0.5)  # a valid entry before or after the bad one
    state[key] = np.full(state[key].shape, 1e300)
    with pytest.raises(ValueError, match=f"'{key}'.*not finite in float32"):
        pio.load_state_dict(net, state)
    np.testing.assert_array_equal(net.parameters, before)
    with pytest.raises(ValueError, match=f"'{key}'.*not finite in float32"):
        pio.network_from_state_dict(state)
    arrays = saved_arrays(tmp_path)
    arrays["dtype"] = np.array("float32")
    arrays[key] = np.full(arrays[key].shape, 1e300)
    write_npz(tmp_path / "edited.npz", arrays)
    assert_bad_file(tmp_path / "edited.npz", repr(key), "float32")
