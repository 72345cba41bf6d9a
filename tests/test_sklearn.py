"""pybackprop.sklearn: scikit-learn's estimator checks, pipelines and grid
searches, labels and targets of every kind, sample weights, partial_fit,
persistence, and step-for-step agreement with scikit-learn's own MLP."""
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import pybackprop  # noqa: E402
from pybackprop.datasets import train_test_split  # noqa: E402
from pybackprop.sklearn import MLPClassifier, MLPRegressor, TrainingDivergedError  # noqa: E402

# -- scikit-learn's own estimator checks ---------------------------------------

# The default configurations (max_iter=100, as scikit-learn's test suite uses
# for its MLPs) plus non-default ones: float32 with the SGD solver and the
# adaptive schedule, and a deeper tanh regressor with SGD, momentum and a
# large alpha.
CHECKED = [
    MLPClassifier(max_iter=100),
    MLPRegressor(max_iter=100),
    MLPClassifier(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05,
                  dtype="float32", max_iter=100),
    MLPRegressor(hidden_layer_sizes=(20, 10), activation="tanh", solver="sgd",
                 learning_rate_init=0.01, alpha=0.01, max_iter=100),
]


def expected_failed_checks(estimator):
    if estimator.dtype == "float32":
        # The check compares a weighted fit with a fit on repeated rows at
        # rtol=1e-7, a float64 tolerance; in float32 the two summation
        # orders differ by ~1e-6 relative.  The float64 instances pass it,
        # and test_sample_weight_equivalence_float32 below checks float32
        # at a float32 tolerance.
        return {"check_sample_weight_equivalence_on_dense_data":
                "float32 rounding (~1e-6) exceeds the check's float64 tolerance rtol=1e-7"}
    return {}


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    # As scikit-learn's own test suite: small max_iter, convergence not awaited.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _run_python(code, env=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_array_api_check_with_numpy_namespace():
    # parametrize_with_checks skips this check unless SCIPY_ARRAY_API is set
    # before SciPy is imported; run it in a fresh interpreter that sets it.
    result = _run_python("""
        import warnings
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.utils.estimator_checks import check_array_api_input
        from pybackprop.sklearn import MLPClassifier, MLPRegressor
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)):
            check_array_api_input(type(est).__name__, est, array_namespace="numpy",
                                  expect_only_array_outputs=False)
        print("checked")
    """, env=dict(os.environ, SCIPY_ARRAY_API="1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "checked"


# -- optional dependency -----------------------------------------------------------


def test_import_pybackprop_does_not_import_sklearn():
    result = _run_python("""
        import sys
        import pybackprop, pybackprop.io, pybackprop.optim, pybackprop.datasets
        print(sorted(m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_without_sklearn_says_how_to_install():
    result = _run_python("""
        import sys
        class NoSklearn:
            def find_spec(self, name, path=None, target=None):
                if name == "sklearn" or name.startswith("sklearn."):
                    raise ImportError("No module named 'sklearn'")
        sys.meta_path.insert(0, NoSklearn())
        import pybackprop
        try:
            import pybackprop.sklearn
        except ImportError as exc:
            print(exc)
    """)
    assert result.returncode == 0, result.stderr
    assert "pip install \"pybackprop[sklearn]\"" in result.stdout


# -- data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_split(digits):
    """The digits data set split into X_train, X_test, y_train, y_test (a quarter held out)."""
    X, y = digits
    return train_test_split(X, y, test_size=0.25, seed=0, stratify=True)


def _blobs(n=120, n_features=4, seed=0):
    """Three well-separated Gaussian blobs (unit noise, centers 11 apart).

    Returns X (n, n_features) and integer labels (n,) in 0..2."""
    rng = np.random.default_rng(seed)
    centers = 8.0 * np.eye(3, n_features)
    y = np.arange(n) % 3
    return centers[y] + rng.normal(size=(n, n_features)), y


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# -- pipelines and grid searches -------------------------------------------------


def test_pipeline_grid_search_on_digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=60, random_state=0))
    grid = {"mlpclassifier__hidden_layer_sizes": [(16,), (64,)],
            "mlpclassifier__learning_rate_init": [1e-3, 1e-2]}
    search = GridSearchCV(pipe, grid, cv=3)
    _quiet(search.fit, X_train, y_train)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_[-1]
    assert isinstance(best.network_, pybackprop.MLP)
    assert best.network_.layer_sizes == (64,) + best.hidden_layer_sizes + (10,)
    # A 64-wide ReLU layer trained with Adam reaches ~97% on held-out digits.
    assert search.score(X_test, y_test) >= 0.95
    assert search.best_score_ >= 0.94


# -- labels ------------------------------------------------------------------------


def test_string_labels_multiclass():
    X, y = _blobs()
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.01,
                               random_state=0).fit, X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 3
    assert clf.network_.output == "softmax" and clf.network_.loss_name == "cross_entropy"
    prediction = clf.predict(X)
    assert prediction.dtype == names.dtype
    assert clf.score(X, names) == 1.0
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], prediction)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-12)


def test_non_contiguous_integer_labels_are_kept():
    X, y = _blobs()
    labels = np.array([-7, 3, 100])[y]
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.01,
                               random_state=0).fit, X, labels)
    np.testing.assert_array_equal(clf.classes_, [-7, 3, 100])
    np.testing.assert_array_equal(clf.predict(X), labels)


def test_binary_uses_one_sigmoid_output():
    X, y = _blobs()
    labels = np.where(y == 0, "no", "yes")
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.01,
                               random_state=0).fit, X, labels)
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    assert clf.network_.layer_sizes[-1] == 1
    assert clf.network_.loss_name == "binary_cross_entropy"
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 1)]
    proba = clf.predict_proba(X)
    p = clf.network_.predict(X)[:, 0]
    np.testing.assert_array_equal(proba, np.column_stack([1 - p, p]))
    np.testing.assert_array_equal(clf.predict(X), np.where(p > 0.5, "yes", "no"))
    assert clf.score(X, labels) == 1.0


def test_multilabel_indicator():
    X, y = _blobs()
    Y = np.column_stack([y == 0, y != 1, np.ones_like(y)]).astype(int)
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, learning_rate_init=0.01,
                               random_state=0).fit, X, Y)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_outputs_ == 3 and clf.out_activation_ == "logistic"
    assert clf.network_.loss_name == "binary_cross_entropy"
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 3)
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))
    np.testing.assert_array_equal(clf.predict(X), Y)


def test_one_class_and_bad_targets_are_refused():
    X, y = _blobs()
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        MLPClassifier().fit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="multiclass-multioutput"):
        MLPClassifier().fit(X, np.column_stack([y, y]))


# -- regression ----------------------------------------------------------------------


def test_multi_output_regression_and_loss_scale():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5], np.sin(X[:, 0]) + X[:, 1]])
    reg = _quiet(MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, learning_rate_init=0.01,
                              random_state=0).fit, X, Y)
    assert reg.n_outputs_ == 2 and reg.out_activation_ == "identity"
    assert reg.predict(X).shape == (200, 2)
    assert reg.score(X, Y) > 0.98
    # loss_: 0.5 * sum over outputs, mean over samples (scikit-learn: mean over outputs).
    residual = reg.network_.predict(X) - Y
    assert reg.network_.loss(X, Y) == pytest.approx(0.5 * np.mean(np.sum(residual**2, axis=1)))


def test_column_y_is_raveled_with_a_warning():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 2))
    y = X[:, :1] * 2.0
    with pytest.warns(DataConversionWarning):
        reg = _quiet(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit, X, y)
    assert reg.n_outputs_ == 1 and reg.predict(X).shape == (50,)


# -- sample weights ------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_zero_weights_equal_dropping_samples(Estimator, solver):
    X, y = _blobs(n=90)
    target = y if Estimator is MLPClassifier else X @ [1.0, 0.5, -1.0, 2.0]
    weights = np.ones(90)
    weights[::4] = 0.0
    keep = weights > 0
    # batch_size="auto" is the whole data (n <= 200) in both fits: the same
    # batches, so only summation order differs; alpha > 0 checks that the L2
    # penalty scales with the batch's weight sum as scikit-learn's does.
    params = dict(hidden_layer_sizes=(6,), solver=solver, alpha=0.01, max_iter=40,
                  learning_rate_init=0.01, random_state=0)
    weighted = _quiet(Estimator(**params).fit, X, target, sample_weight=weights)
    dropped = _quiet(Estimator(**params).fit, X[keep], target[keep])
    np.testing.assert_allclose(weighted.loss_curve_, dropped.loss_curve_, rtol=1e-10)
    for a, b in zip(weighted.coefs_ + weighted.intercepts_, dropped.coefs_ + dropped.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # And the weights matter: uniform weights give another model.
    plain = _quiet(Estimator(**params).fit, X, target)
    assert not np.allclose(plain.coefs_[0], weighted.coefs_[0], rtol=1e-3)


def test_integer_weights_equal_repetition_minibatch_free_and_partial_fit():
    X, y = _blobs(n=60)
    counts = np.arange(60) % 4  # 0..3 copies, every class gets each count
    params = dict(hidden_layer_sizes=(5,), max_iter=30, random_state=0)
    weighted = _quiet(MLPClassifier(**params).fit, X, y, sample_weight=counts)
    repeated = _quiet(MLPClassifier(**params).fit, np.repeat(X, counts, axis=0),
                      np.repeat(y, counts))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-9)
    first = MLPClassifier(**params).partial_fit(X, y, classes=[0, 1, 2], sample_weight=counts)
    second = MLPClassifier(**params).partial_fit(np.repeat(X, counts, axis=0),
                                                 np.repeat(y, counts), classes=[0, 1, 2])
    np.testing.assert_allclose(first.predict_proba(X), second.predict_proba(X), rtol=1e-9)


def test_sample_weight_equivalence_float32():
    X, y = _blobs(n=60)
    counts = np.arange(60) % 4  # 0..3 copies, every class gets each count
    params = dict(hidden_layer_sizes=(5,), max_iter=30, random_state=0, dtype="float32")
    weighted = _quiet(MLPClassifier(**params).fit, X, y, sample_weight=counts)
    repeated = _quiet(MLPClassifier(**params).fit, np.repeat(X, counts, axis=0),
                      np.repeat(y, counts))
    assert weighted.predict_proba(X).dtype == np.float32
    assert weighted.network_.dtype == np.float32
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                               rtol=1e-4, atol=1e-6)


# -- partial_fit ------------------------------------------------------------------------


def test_partial_fit_with_classes():
    X, y = _blobs(n=150)
    labels = np.array(["a", "b", "c"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X[:30], labels[:30])
    first = labels[:30] != "c"
    clf.partial_fit(X[:30][first], labels[:30][first], classes=["c", "a", "b"])
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    assert clf.n_outputs_ == 3 and clf.n_iter_ == 1 and clf.t_ == first.sum()
    for epoch in range(60):
        clf.partial_fit(X, labels)
    assert clf.n_iter_ == 1 and clf.t_ == first.sum() + 60 * 150
    assert len(clf.loss_curve_) == 61
    assert clf.loss_curve_[-1] < 0.1 * clf.loss_curve_[0]
    assert clf.score(X, labels) == 1.0
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X[:5], np.array(["a", "b", "d", "a", "a"]))
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X[:5], labels[:5], classes=["a", "b"])


def test_partial_fit_continues_adam_state_like_fit():
    # One fit epoch over the data equals one partial_fit call (same seed).
    X, y = _blobs()
    params = dict(hidden_layer_sizes=(6,), random_state=3, max_iter=1)
    fitted = _quiet(MLPClassifier(**params).fit, X, y)
    partial = MLPClassifier(**params).partial_fit(X, y, classes=[0, 1, 2])
    np.testing.assert_array_equal(fitted.network_.parameters, partial.network_.parameters)
    assert fitted._optimizer.step_count == partial._optimizer.step_count == 1


def test_partial_fit_refuses_early_stopping():
    X, y = _blobs()
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, y.astype(float))


# -- persistence and cloning ----------------------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_pickle_and_clone(solver, digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(16,), solver=solver, max_iter=5,
                               random_state=0).fit, X_train / 16, y_train)
    restored = pickle.loads(pickle.dumps(clf))
    assert isinstance(restored.network_, pybackprop.MLP)
    assert restored.network_ is not clf.network_
    np.testing.assert_array_equal(restored.predict_proba(X_test / 16),
                                  clf.predict_proba(X_test / 16))
    np.testing.assert_array_equal(restored.predict(X_test / 16), clf.predict(X_test / 16))
    assert restored.loss_curve_ == clf.loss_curve_ and restored.t_ == clf.t_
    # The optimizer state travels too: one more partial_fit step stays identical.
    clf.partial_fit(X_train / 16, y_train)
    restored.partial_fit(X_train / 16, y_train)
    np.testing.assert_array_equal(restored.network_.parameters, clf.network_.parameters)

    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "network_")
    clf2 = _quiet(MLPClassifier(hidden_layer_sizes=(16,), solver=solver, max_iter=5,
                                random_state=0).fit, X_train / 16, y_train)
    _quiet(copy.fit, X_train / 16, y_train)
    np.testing.assert_array_equal(copy.predict_proba(X_test / 16), clf2.predict_proba(X_test / 16))


def test_pickled_regressor_predicts_identically():
    X, y = _blobs()
    reg = _quiet(MLPRegressor(hidden_layer_sizes=(7, 5), max_iter=20, random_state=0,
                              dtype="float32").fit, X, np.column_stack([y, -y]))
    restored = pickle.loads(pickle.dumps(reg))
    assert restored.network_.dtype == np.float32
    np.testing.assert_array_equal(restored.predict(X), reg.predict(X))


# -- attributes ------------------------------------------------------------------------------


def test_coefs_are_live_transposed_views():
    X, y = _blobs()
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit, X, y)
    assert clf.n_layers_ == 3 and clf.n_features_in_ == 4
    assert [c.shape for c in clf.coefs_] == [(4, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(5,), (3,)]
    for coef, W in zip(clf.coefs_, clf.network_.weights):
        assert np.shares_memory(coef, W)
        np.testing.assert_array_equal(coef, W.T)
    before = clf.predict_proba(X)
    clf.coefs_[1][...] = 0.0
    clf.intercepts_[1][...] = [0.0, 0.0, 1.0]
    np.testing.assert_array_equal(clf.network_.weights[1], 0.0)
    assert not np.allclose(clf.predict_proba(X), before)
    assert np.all(clf.predict(X) == 2)
    # Assigning the attribute copies values in (scikit-learn's layout).
    clf.coefs_ = [np.ones((4, 5)), np.zeros((5, 3))]
    np.testing.assert_array_equal(clf.network_.weights[0], np.ones((5, 4)))
    with pytest.raises(ValueError, match="shape"):
        clf.coefs_ = [np.ones((5, 4)), np.zeros((5, 3))]


@pytest.mark.parametrize("attribute", ["coefs_", "intercepts_"])
@pytest.mark.parametrize("bad, error", [(np.nan, ValueError), (1e300, ValueError),
                                        ("text", TypeError)])
def test_a_refused_coefs_or_intercepts_assignment_changes_no_layer(attribute, bad, error):
    """Layer 0 is valid and layer 1 is not: nothing is assigned, not layer 0 first."""
    X, y = _blobs()
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0,
                               dtype="float32").fit, X, y)
    parameters = clf.network_.parameters.copy()
    current = getattr(clf, attribute)
    values = [np.full(current[0].shape, 0.5), np.full(current[1].shape, bad)]
    with pytest.raises(error, match=f"{attribute}.*no layer was changed"):
        setattr(clf, attribute, values)
    np.testing.assert_array_equal(clf.network_.parameters, parameters)
    # The same list with a valid layer 1 is taken whole.
    values[1] = np.full(current[1].shape, 0.25)
    setattr(clf, attribute, values)
    np.testing.assert_array_equal(getattr(clf, attribute)[0], 0.5)
    np.testing.assert_array_equal(getattr(clf, attribute)[1], 0.25)


def test_unfitted_has_no_fitted_attributes():
    clf = MLPClassifier()
    with pytest.raises(AttributeError):
        clf.coefs_
    with pytest.raises(sklearn.exceptions.NotFittedError):
        clf.predict(np.zeros((1, 3)))


def test_feature_names_from_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = _blobs()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit, frame, y)
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


# -- convergence, stopping and schedules: the same bookkeeping as scikit-learn's MLP ----------


def test_convergence_warning_when_max_iter_is_reached():
    X, y = _blobs()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, tol=0.0,
                            random_state=0).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


@pytest.mark.parametrize("settings", [
    dict(solver="adam"),
    dict(solver="sgd", learning_rate="constant"),
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.01),
    dict(solver="adam", early_stopping=True),
])
def test_stopping_epoch_matches_sklearn(settings):
    # With an enormous tol no epoch counts as an improvement, so the epoch at
    # which training stops depends only on the stopping rule (and, for
    # "adaptive", on the learning-rate divisions), not on the numbers.
    X, y = _blobs(n=150)
    params = dict(hidden_layer_sizes=(4,), max_iter=500, tol=1e6, n_iter_no_change=3,
                  random_state=0, **settings)
    ours = MLPClassifier(**params)
    theirs = neural_network.MLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 500
    assert ours.t_ == theirs.t_
    if settings.get("learning_rate") == "adaptive":
        assert ours._optimizer.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)
        assert ours._optimizer.lr <= 1e-6
    if settings.get("early_stopping"):
        assert ours.best_loss_ is None and len(ours.validation_scores_) == ours.n_iter_
        assert ours.best_validation_score_ == max(ours.validation_scores_)


def test_early_stopping_keeps_the_best_epoch():
    X, y = _blobs(n=300, seed=5)
    y = np.where(np.random.default_rng(0).random(300) < 0.3, (y + 1) % 3, y)  # label noise
    clf = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=0.03, max_iter=400,
                        early_stopping=True, validation_fraction=0.2, n_iter_no_change=15,
                        random_state=4).fit(X, y)
    assert clf.n_iter_ < 400 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # Rebuild the split the estimator made (the initial-weights seed is drawn
    # first, then the split uses the same RandomState): the final network
    # scores the best validation accuracy, not the last epoch's.
    rng = check_random_state(4)
    rng.randint(np.iinfo(np.int32).max)
    _, X_val, _, y_val = sklearn.model_selection.train_test_split(
        X, y, random_state=rng, test_size=0.2, stratify=y)
    assert clf.score(X_val, y_val) == clf.best_validation_score_


def test_invscaling_learning_rate():
    X, y = _blobs()
    clf = _quiet(MLPClassifier(solver="sgd", learning_rate="invscaling", power_t=0.25,
                               learning_rate_init=0.1, max_iter=7, tol=0.0,
                               random_state=0).fit, X, y)
    assert clf.t_ == 7 * 120
    assert clf._optimizer.lr == pytest.approx(0.1 / (7 * 120 + 1) ** 0.25, rel=1e-12)


def test_verbose_prints_sklearn_lines(capsys):
    X, y = _blobs()
    _quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, verbose=True, random_state=0).fit,
           X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ") and lines[1].startswith("Iteration 2, loss = ")


def test_divergence_raises_a_clear_error(rng):
    X = rng.normal(size=(64, 3)) * 100
    y = X @ [1e3, -1e3, 5e2]
    reg = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=10.0,
                       momentum=0.0, max_iter=50, random_state=0)
    with pytest.raises(TrainingDivergedError, match="diverged") as info:
        reg.fit(X, y)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, pybackprop.TrainingDiverged)
    assert np.all(np.isfinite(reg.network_.parameters))


@pytest.mark.parametrize("params, message", [
    (dict(solver="lbfgs"), "lbfgs"),
    (dict(activation="sigmoid"), "activation"),
    (dict(dtype="int8"), "dtype"),
    (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes"),
    (dict(batch_size=0), "batch_size"),
    (dict(learning_rate="cosine"), "learning_rate"),
    (dict(momentum=1.0), "momentum"),
    (dict(validation_fraction=1.0), "validation_fraction"),
])
def test_invalid_parameters_raise_in_fit(params, message):
    X, y = _blobs()
    estimator = MLPClassifier(**params)  # constructing never validates
    with pytest.raises(ValueError, match=message):
        estimator.fit(X, y)


def test_sparse_input_is_refused():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, y = _blobs()
    with pytest.raises(TypeError, match="dense"):
        MLPClassifier().fit(scipy_sparse.csr_matrix(X), y)


# -- agreement with scikit-learn's MLP from the same initial weights ---------------------------


def _from_same_start(ours, theirs, X, y, epochs):
    """Fit both for one epoch, give scikit-learn our weights, then warm-start both."""
    _quiet(ours.set_params(max_iter=1).fit, X, y)
    _quiet(theirs.set_params(max_iter=1).fit, X, y)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    ours.set_params(warm_start=True, max_iter=epochs)
    theirs.set_params(warm_start=True, max_iter=epochs)
    _quiet(ours.fit, X, y)
    _quiet(theirs.fit, X, y)


def test_sgd_nesterov_alpha_minibatches_match_sklearn_regressor(rng):
    X = rng.normal(size=(120, 5))
    Y = np.column_stack([np.tanh(X[:, 0] - X[:, 1]), X[:, 2] * X[:, 3]])
    # Equal-size unweighted batches (120 = 3 * 40), no shuffling: the L2 term
    # alpha / batch_size equals scikit-learn's per-batch alpha / len(batch).
    params = dict(hidden_layer_sizes=(16, 8), activation="tanh", solver="sgd", alpha=0.05,
                  batch_size=40, learning_rate_init=0.05, momentum=0.9,
                  nesterovs_momentum=True, shuffle=False, random_state=0)
    ours, theirs = MLPRegressor(**params), neural_network.MLPRegressor(**params)
    _from_same_start(ours, theirs, X, Y, epochs=25)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-12)


def test_loss_curve_scale_matches_sklearn_regressor():
    # alpha=0 and full batches: scikit-learn's loss is ours / n_outputs.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    Y = np.column_stack([X.sum(axis=1), X[:, 0] ** 2, -X[:, 2]])
    params = dict(hidden_layer_sizes=(10,), solver="sgd", alpha=0.0, learning_rate_init=0.02,
                  momentum=0.0, shuffle=False, random_state=0)
    ours, theirs = MLPRegressor(**params), neural_network.MLPRegressor(**params)
    _from_same_start(ours, theirs, X, Y, epochs=10)
    np.testing.assert_allclose(np.array(ours.loss_curve_[1:]) / 3, theirs.loss_curve_[1:],
                               rtol=1e-10)


@pytest.mark.parametrize("labels", [np.array([0, 1, 2]), np.array([0, 1, 1])],
                         ids=["multiclass", "binary"])
def test_adam_matches_sklearn_classifier(labels):
    X, y = _blobs(n=150)
    y = labels[y]
    # epsilon enters scikit-learn's update before the bias correction and ours
    # after it (module docstring); a negligible epsilon removes that difference.
    params = dict(hidden_layer_sizes=(12,), activation="logistic", solver="adam", alpha=1e-3,
                  batch_size=50, learning_rate_init=0.01, epsilon=1e-30, shuffle=False,
                  random_state=0)
    ours, theirs = MLPClassifier(**params), neural_network.MLPClassifier(**params)
    _from_same_start(ours, theirs, X, y, epochs=20)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


# -- the example ---------------------------------------------------------------------------


def test_sklearn_pipeline_example_runs():
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "examples", "sklearn_pipeline.py")
    result = subprocess.run([sys.executable, script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(r"held-out accuracy: 0\.9[5-9]\d*\n", result.stdout), result.stdout
    assert "pickled and restored: identical probabilities = True" in result.stdout


def test_activation_names_are_the_library_names_with_the_logistic_alias():
    from typing import get_args

    from pybackprop import _validation
    from pybackprop import sklearn as psk

    assert set(get_args(psk.Activation)) == set(psk._ACTIVATIONS)
    assert set(psk._ACTIVATIONS.values()) == set(_validation.HIDDEN_ACTIVATIONS)
    assert psk._ACTIVATIONS["logistic"] == "sigmoid" and "sigmoid" not in psk._ACTIVATIONS
    assert psk._OUT_ACTIVATIONS == {"identity": "identity", "sigmoid": "logistic",
                                    "softmax": "softmax"}
