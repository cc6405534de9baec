"""The one ``.npz`` writer: what np.load reads, the same bytes for the same arrays."""

import zipfile

import numpy as np
import pytest

from deepinside.io import write_npz


@pytest.mark.parametrize("compress", [False, True])
def test_npz_reads_back_and_repeats_byte_for_byte(tmp_path, compress):
    arrays = {"map": np.random.default_rng(0).random((3, 5, 7), dtype=np.float32), "classes": np.arange(3)}
    first = write_npz(tmp_path / "a.npz", arrays, compress=compress)
    second = write_npz(tmp_path / "b.npz", arrays, compress=compress, durable=True)
    assert first.read_bytes() == second.read_bytes()
    with np.load(first) as npz:
        assert sorted(npz.files) == ["classes", "map"] and np.array_equal(npz["map"], arrays["map"])
    kinds = {info.compress_type for info in zipfile.ZipFile(first).infolist()}
    assert kinds == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}
    assert not list(tmp_path.glob(".*.tmp"))
