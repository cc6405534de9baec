"""Targets: NumPy integers are classes, bools and fractions are not."""

import numpy as np
import pytest
import torch

import deepinside
from deepinside.attribution import saliency

from .conftest import _net, _x


@pytest.mark.parametrize(
    "target, same",
    [
        (np.int64(2), 2),
        ([np.int64(2), np.int32(1)], [2, 1]),
        (np.array([2, 1]), [2, 1]),
        (np.array([[1, 2], [3, 4]]), [[1, 2], [3, 4]]),
    ],
)
def test_numpy_integer_targets(target, same):
    net, x = _net(), _x()
    torch.testing.assert_close(saliency(net, x, target), saliency(net, x, same), rtol=0, atol=0)


@pytest.mark.parametrize("target", [True, np.bool_(True), [True, 1], 2.0, np.array([1.5, 2.0])])
def test_bools_and_fractions_are_no_class(target):
    with pytest.raises(deepinside.DeepInsideError, match="a class is an index or a name"):
        saliency(_net(), _x(), target)
