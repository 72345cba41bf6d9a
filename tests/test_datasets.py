"""Tests for pybackprop.datasets: the shipped digits file, splitting, scaling, generators."""
import gzip
import hashlib
from importlib import resources

import numpy as np
import pytest

from pybackprop import datasets
from pybackprop.datasets import (
    StandardScaler,
    load_digits,
    make_moons,
    make_spirals,
    make_xor,
    standardize,
    train_test_split,
)

# Class counts of the 1,797-image UCI digits set, digits 0..9.
DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


# ---------------------------------------------------------------- digits


def test_shipped_digits_file_checksum():
    raw = resources.files("pybackprop.datasets").joinpath("digits.csv.gz").read_bytes()
    assert len(raw) == 57523
    digest = hashlib.sha256(raw).hexdigest()
    assert digest == "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
    assert digest == datasets.DIGITS_SHA256


def test_load_digits_shapes_dtypes_and_values():
    X, y = load_digits(return_X_y=True, verify_checksum=True)
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.flags.c_contiguous and y.flags.c_contiguous
    assert X.min() == 0.0 and X.max() == 16.0
    assert np.array_equal(X, np.round(X))
    assert np.bincount(y).tolist() == DIGITS_CLASS_COUNTS


def test_load_digits_known_rows():
    X, y = load_digits(return_X_y=True)
    # First two rows of the shipped CSV.
    row0 = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11,
            8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12,
            7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
    assert X[0].tolist() == row0 and y[0] == 0
    assert y[1] == 1 and X[1, :8].tolist() == [0, 0, 0, 12, 13, 5, 0, 0]


def test_load_digits_bunch():
    d = load_digits()
    X, y = load_digits(return_X_y=True)
    assert np.array_equal(d.data, X) and np.array_equal(d.target, y)
    assert d.images.shape == (1797, 8, 8)
    assert np.array_equal(d.images[5].ravel(), X[5])
    assert d.target_names.tolist() == list(range(10))
    assert len(d.feature_names) == 64 and d.feature_names[9] == "pixel_1_1"
    assert "https://doi.org/10.24432/C50P49" in d.DESCR
    assert "CC BY 4.0" in d.DESCR
    assert d["data"] is d.data
    with pytest.raises(AttributeError):
        d.no_such_key


def test_load_digits_docstring_credits_source():
    doc = load_digits.__doc__
    assert "Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten" in doc
    assert "https://doi.org/10.24432/C50P49" in doc and "CC BY 4.0" in doc


def test_load_digits_detects_corruption(monkeypatch):
    raw = resources.files("pybackprop.datasets").joinpath("digits.csv.gz").read_bytes()
    flipped = raw[:100] + bytes([raw[100] ^ 1]) + raw[101:]
    monkeypatch.setattr(datasets, "_read_digits_bytes", lambda: flipped)
    with pytest.raises(OSError, match="sha256"):
        load_digits(verify_checksum=True)


def test_load_digits_validates_table(monkeypatch):
    raw = resources.files("pybackprop.datasets").joinpath("digits.csv.gz").read_bytes()
    lines = gzip.decompress(raw).decode().splitlines()
    short = gzip.compress("\n".join(lines[:-1]).encode())
    monkeypatch.setattr(datasets, "_read_digits_bytes", lambda: short)
    with pytest.raises(OSError, match="shape"):
        load_digits()
    bad_pixel = gzip.compress("\n".join(["17" + lines[0][1:]] + lines[1:]).encode())
    monkeypatch.setattr(datasets, "_read_digits_bytes", lambda: bad_pixel)
    with pytest.raises(OSError, match="pixel"):
        load_digits()


# ---------------------------------------------------------------- splitting


def test_split_sizes_and_disjoint_cover():
    X = np.arange(100 * 3, dtype=float).reshape(100, 3)
    y = np.arange(100)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, seed=3)
    assert X_tr.shape == (75, 3) and X_te.shape == (25, 3)
    assert y_tr.shape == (75,) and y_te.shape == (25,)
    # rows stay paired with their labels
    assert np.array_equal(X_tr[:, 0], 3 * y_tr) and np.array_equal(X_te[:, 0], 3 * y_te)
    assert set(y_tr).isdisjoint(y_te)
    assert sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(100))


def test_split_fraction_rounds_up_and_int_size():
    X = np.zeros((101, 2))
    y = np.zeros(101)
    assert train_test_split(X, y, test_size=0.2)[1].shape[0] == 21  # ceil(20.2)
    assert train_test_split(X, y, test_size=7)[1].shape[0] == 7


def test_split_deterministic_by_seed():
    X = np.arange(50.0).reshape(50, 1)
    y = np.arange(50)
    a = train_test_split(X, y, seed=11)
    b = train_test_split(X, y, seed=11)
    c = train_test_split(X, y, seed=12)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[3], c[3])


def test_split_is_shuffled():
    y = np.arange(200)
    _, _, y_tr, y_te = train_test_split(y[:, None], y, seed=0)
    assert not np.array_equal(np.sort(y_tr), y_tr)
    assert not np.array_equal(np.sort(y_te), y_te)


def test_stratified_split_on_digits():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, seed=0, stratify=y)
    assert len(y_te) == 360 and len(y_tr) == 1437  # ceil(0.2 * 1797)
    counts = np.array(DIGITS_CLASS_COUNTS)
    te = np.bincount(y_te, minlength=10)
    assert np.all(np.abs(te - counts * 360 / 1797) < 1)
    assert np.array_equal(te + np.bincount(y_tr, minlength=10), counts)
    # stratify=True means "by y" and gives the same split
    again = train_test_split(X, y, test_size=0.2, seed=0, stratify=True)
    assert np.array_equal(again[3], y_te) and np.array_equal(again[1], X_te)


def test_stratified_split_small_imbalanced():
    y = np.array([0] * 90 + [1] * 10)
    X = np.arange(100.0)[:, None]
    _, _, y_tr, y_te = train_test_split(X, y, test_size=0.3, seed=5, stratify=y)
    assert np.bincount(y_te).tolist() == [27, 3]
    assert np.bincount(y_tr).tolist() == [63, 7]
    # without stratification the minority share varies with the seed
    shares = {
        int(np.sum(train_test_split(X, y, test_size=0.3, seed=s)[3]))
        for s in range(20)
    }
    assert len(shares) > 1


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, 0, 100, -3])
def test_split_rejects_bad_test_size(bad):
    with pytest.raises(ValueError):
        train_test_split(np.zeros((100, 2)), np.zeros(100), test_size=bad)


def test_split_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        train_test_split(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError):
        train_test_split(np.zeros((10, 2)), np.zeros(10), stratify=np.zeros(9))


# ---------------------------------------------------------------- scaling


def test_scaler_fitted_on_train_only():
    rng = np.random.default_rng(0)
    X_tr = rng.normal(5.0, 3.0, size=(200, 4))
    X_te = rng.normal(-2.0, 0.5, size=(50, 4))
    sc = StandardScaler().fit(X_tr)
    np.testing.assert_allclose(sc.mean_, X_tr.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(sc.scale_, X_tr.std(axis=0), rtol=1e-14)
    Z_tr = sc.transform(X_tr)
    np.testing.assert_allclose(Z_tr.mean(axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(Z_tr.std(axis=0), 1.0, rtol=1e-13)
    Z_te = sc.transform(X_te)
    np.testing.assert_allclose(Z_te, (X_te - X_tr.mean(0)) / X_tr.std(0), rtol=1e-13)
    # test data are far from train statistics, so they are NOT centred
    assert np.all(Z_te.mean(axis=0) < -1.0)
    np.testing.assert_allclose(sc.inverse_transform(Z_te), X_te, rtol=1e-13)

    a, b = standardize(X_tr, X_te)
    np.testing.assert_allclose(a, Z_tr, rtol=0, atol=0)
    np.testing.assert_allclose(b, Z_te, rtol=0, atol=0)
    np.testing.assert_allclose(standardize(X_tr), Z_tr, rtol=0, atol=0)


def test_scaler_constant_columns_get_scale_one():
    X = np.column_stack([np.full(7, 0.1), np.arange(7.0), np.zeros(7)])
    sc = StandardScaler().fit(X)
    assert sc.scale_[0] == 1.0 and sc.scale_[2] == 1.0
    assert sc.scale_[1] == pytest.approx(2.0)
    Z = sc.transform(X)
    assert np.all(Z[:, 0] == 0.0) and np.all(Z[:, 2] == 0.0)
    assert np.all(np.isfinite(Z))
    # digits have all-zero pixel columns
    X_d, _ = load_digits(return_X_y=True)
    Z_d = standardize(X_d)
    assert np.all(np.isfinite(Z_d))
    assert np.any(np.all(X_d == 0, axis=0))


def test_scaler_errors():
    with pytest.raises(RuntimeError):
        StandardScaler().transform(np.zeros((2, 2)))
    sc = StandardScaler().fit(np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError):
        sc.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        StandardScaler().fit(np.array([[1.0, np.nan]]))


# ---------------------------------------------------------------- generators


@pytest.mark.parametrize("make", [make_xor, make_spirals, make_moons])
def test_generator_shapes_dtypes_determinism(make):
    X, y = make(101, 0.1, 7)
    assert X.shape == (101, 2) and X.dtype == np.float64
    assert y.shape == (101,) and np.issubdtype(y.dtype, np.integer)
    assert set(np.unique(y).tolist()) == {0, 1}
    X2, y2 = make(101, 0.1, 7)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    X3, _ = make(101, 0.1, 8)
    assert not np.array_equal(X, X3)
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize("make", [make_spirals, make_moons])
def test_two_class_generators_are_balanced_and_shuffled(make):
    _, y = make(101, 0.0, 0)
    assert np.bincount(y).tolist() == [51, 50]
    assert not np.array_equal(np.sort(y), y)


@pytest.mark.parametrize("make", [make_xor, make_spirals, make_moons])
def test_generators_reject_bad_args(make):
    with pytest.raises(ValueError):
        make(1, 0.1, 0)
    with pytest.raises(ValueError):
        make(10, -0.1, 0)
    with pytest.raises(TypeError):
        make(10.0, 0.1, 0)


def test_xor_labels_without_noise():
    X, y = make_xor(500, 0.0, 1)
    assert np.all(np.abs(X) <= 1.0)
    assert np.array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(int))
    assert 200 < y.sum() < 300


def test_moons_geometry_without_noise():
    X, y = make_moons(300, 0.0, 2)
    upper = X[y == 0]
    lower = X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, rtol=1e-12)
    assert np.all(upper[:, 1] >= 0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0,
                               rtol=1e-12)
    assert np.all(lower[:, 1] <= 0.5)


def test_spirals_geometry_without_noise():
    X, y = make_spirals(400, 0.0, 3)
    r = np.hypot(X[:, 0], X[:, 1])
    assert np.all((r >= 0.05 - 1e-12) & (r <= 1.0 + 1e-12))
    # The arms are point reflections of each other: at equal radius the
    # angle differs by pi. Check via the angle unwound along the radius.
    for k in (0, 1):
        rk = r[y == k]
        ang = np.arctan2(X[y == k, 1], X[y == k, 0])
        expected = 2 * np.pi * 1.5 * rk + np.pi * k
        diff = np.angle(np.exp(1j * (ang - expected)))
        np.testing.assert_allclose(diff, 0.0, atol=1e-9)
