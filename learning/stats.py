"""Small statistics in pure Python (the data sets are hundreds to a few thousand rows).

`logistic_fit`: L2-regularised logistic regression by Newton's method (IRLS). The intercept is
not penalised. With a handful of features Newton converges in a few iterations, and the L2 term
keeps the coefficients finite when a feature separates the classes perfectly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogisticFit:
    intercept: float
    coefficients: tuple[float, ...]
    iterations: int
    converged: bool
    # Standard errors of the coefficients (from the penalised Hessian at the optimum).
    std_errors: tuple[float, ...] = ()

    def predict(self, x: Sequence[float]) -> float:
        return sigmoid(self.intercept + sum(b * v for b, v in zip(self.coefficients, x, strict=True)))


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve `matrix @ x = vector` (Gaussian elimination with partial pivoting)."""
    n = len(vector)
    a = [[*row, vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            raise ArithmeticError("singular system")
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            if factor:
                for c in range(col, n + 1):
                    a[r][c] -= factor * a[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def logistic_fit(
    rows: Sequence[Sequence[float]],
    labels: Sequence[bool],
    *,
    weights: Sequence[float] | None = None,
    l2: float = 1.0,
    max_iter: int = 50,
    tol: float = 1e-7,
) -> LogisticFit:
    """Fit P(label) = sigmoid(b0 + sum(b_i * x_i)); `weights` are per-row sample weights."""
    if len(rows) != len(labels) or not rows:
        raise ValueError("rows and labels must be non-empty and of equal length")
    d = len(rows[0])
    w = list(weights) if weights is not None else [1.0] * len(rows)
    beta = [0.0] * (d + 1)  # beta[0] is the intercept
    positives = sum(wi for wi, y in zip(w, labels, strict=True) if y)
    total = sum(w)
    if 0 < positives < total:
        beta[0] = math.log(positives / (total - positives))
    converged = False
    iteration = 0
    hess: list[list[float]] = []
    for iteration in range(1, max_iter + 1):  # noqa: B007 - reported in the fit
        grad = [0.0] * (d + 1)
        hess = [[0.0] * (d + 1) for _ in range(d + 1)]
        for x, y, wi in zip(rows, labels, w, strict=True):
            xs = (1.0, *x)
            p = sigmoid(sum(b * v for b, v in zip(beta, xs, strict=True)))
            residual = wi * ((1.0 if y else 0.0) - p)
            curvature = wi * p * (1.0 - p)
            for i in range(d + 1):
                grad[i] += residual * xs[i]
                ci = curvature * xs[i]
                row = hess[i]
                for j in range(i, d + 1):
                    row[j] += ci * xs[j]
        for i in range(d + 1):
            for j in range(i):
                hess[i][j] = hess[j][i]
        hess[0][0] += 1e-9
        for i in range(1, d + 1):
            grad[i] -= l2 * beta[i]
            hess[i][i] += l2
        step = _solve(hess, grad)
        beta = [b + s for b, s in zip(beta, step, strict=True)]
        if max(abs(s) for s in step) < tol:
            converged = True
            break
    errors = []
    for i in range(1, d + 1):
        unit = [1.0 if j == i else 0.0 for j in range(d + 1)]
        try:
            errors.append(math.sqrt(max(0.0, _solve(hess, unit)[i])))
        except ArithmeticError:
            errors.append(math.inf)
    return LogisticFit(beta[0], tuple(beta[1:]), iteration, converged, tuple(errors))
