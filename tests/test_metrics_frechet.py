import numpy as np
import pytest

from sserd_cli.errors import SserdError
from sserd_cli.metrics.frechet import feature_statistics, frechet_distance, gaussian_frechet


def test_identical_sets_have_zero_distance():
    feats = np.random.default_rng(0).normal(size=(200, 8))
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_diagonal_gaussians_match_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.5, 2.0, size=5), rng.uniform(0.5, 2.0, size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert gaussian_frechet(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_full_covariance_against_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert gaussian_frechet(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_sample_sets_approach_population_value():
    rng = np.random.default_rng(3)
    a = rng.normal(0.0, 1.0, size=(20000, 3))
    b = rng.normal(1.0, 2.0, size=(20000, 3))
    expected = 3 * 1.0 + 3 * (1 + 4 - 2 * 2)  # mean term + trace term
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.05)
    mu, sigma = feature_statistics(a)
    assert mu.shape == (3,) and sigma.shape == (3, 3)


def test_bad_inputs():
    with pytest.raises(SserdError, match="at least 2 samples"):
        frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((3, 4)), np.zeros((3, 5)))
