"""pybackprop inside scikit-learn: a Pipeline, a grid search, and a pickled model.

Needs scikit-learn (``pip install "pybackprop[sklearn]"``).  Run:

    python examples/sklearn_pipeline.py

The estimator is ``pybackprop.sklearn.MLPClassifier``: scikit-learn's
parameter names and behaviour, with every training epoch running in
pybackprop's compiled core.
"""
import pickle
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import classification_report
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pybackprop.datasets import load_digits, train_test_split
from pybackprop.sklearn import MLPClassifier


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0,
                                                        stratify=True)
    # Scaling is part of the model, so each cross-validation fold fits the
    # scaler on its own training part only.
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MLPClassifier(batch_size=64, max_iter=100, early_stopping=True,
                              n_iter_no_change=10, random_state=0)),
    ])
    grid = {
        "mlp__hidden_layer_sizes": [(32,), (128,)],
        "mlp__learning_rate_init": [1e-3, 1e-2],
    }
    search = GridSearchCV(pipe, grid, cv=3)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    n_fits = len(search.cv_results_["params"]) * search.n_splits_ + 1
    print(f"grid search: {n_fits} fits in {seconds:.1f} s")
    print(f"best parameters: {search.best_params_}  (cross-validated accuracy "
          f"{search.best_score_:.4f})")

    model = search.best_estimator_
    mlp = model.named_steps["mlp"]
    print(f"network: {mlp.network_}; stopped after {mlp.n_iter_} epochs, best validation "
          f"accuracy {mlp.best_validation_score_:.4f}")
    print(f"held-out accuracy: {model.score(X_test, y_test):.4f}\n")
    print(classification_report(y_test, model.predict(X_test), digits=3))

    # The fitted pipeline pickles (the network travels as plain arrays).
    restored = pickle.loads(pickle.dumps(model))
    same = np.array_equal(restored.predict_proba(X_test), model.predict_proba(X_test))
    print(f"pickled and restored: identical probabilities = {same}")


if __name__ == "__main__":
    main()
