"""Rank statistics: tied ranks and Spearman correlation, by hand and against SciPy."""

import math

import pytest
import torch

from deepinside.evaluation._stats import _ranks, spearman


def test_ranks_average_ties():
    ranks = _ranks(torch.tensor([[3.0, 1, 1, 2, 3, 3], [0, 0, 0, 0, 0, 0]]))
    torch.testing.assert_close(
        ranks, torch.tensor([[4.0, 0.5, 0.5, 2, 4, 4], [2.5] * 6], dtype=torch.float64)
    )


def test_spearman_with_ties_by_hand():
    # Ranks (0-based) [0, 1.5, 1.5, 3] and [0.5, 0.5, 2.5, 2.5]; centred
    # [-1.5, 0, 0, 1.5] . [-1, -1, 1, 1] = 3, norms sqrt(4.5) and 2: rho = 1/sqrt(2).
    a = torch.tensor([[[1.0, 2.0], [2.0, 3.0]]])
    b = torch.tensor([[[1.0, 1.0], [2.0, 2.0]]])
    assert float(spearman(a, b)[0]) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    # One salient pixel each, in opposite corners: two indicator vectors, rho = -1/(n - 1).
    one, other = torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)
    one[0, 0, 0], other[0, -1, -1] = 1.0, 1.0
    assert float(spearman(one, other)[0]) == pytest.approx(-1 / 15, abs=1e-12)
    assert float(spearman(one, one)[0]) == pytest.approx(1.0)


def test_spearman_of_a_constant_map_is_zero():
    noise = torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(0))
    zeros = torch.zeros(3, 5, 5)
    assert spearman(noise, zeros).tolist() == [0.0, 0.0, 0.0]
    assert spearman(zeros, noise).tolist() == [0.0, 0.0, 0.0]
    assert spearman(zeros, zeros).tolist() == [0.0, 0.0, 0.0]


def test_spearman_with_ties_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(3)
    a = torch.randint(0, 4, (4, 6, 7), generator=g).float()  # long runs of equal values
    b = torch.randint(0, 3, (4, 6, 7), generator=g).float() * (a > 1)
    ours = spearman(a, b)
    for i in range(4):
        assert float(ours[i]) == pytest.approx(stats.spearmanr(a[i].flatten(), b[i].flatten())[0], abs=1e-12)
