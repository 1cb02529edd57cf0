"""The shared dataset index round-trips and rejects bad rows with a clear message."""

import pytest

from sserd_cli.data.index import IndexRow, read_index, write_index
from sserd_cli.errors import SserdError


def test_index_round_trip(tmp_path):
    rows = [IndexRow("crops/a_0.png", "M003", "happy", 1.0, "a", 0, "train", "real"),
            IndexRow("crops/b_3.png", "W015", "neutral", 0.5, "b", 3, "test", "synthetic")]
    write_index(tmp_path, rows, {"size": 256, "source": "test"})
    assert read_index(tmp_path) == rows


def test_index_rejects_unknown_emotion(tmp_path):
    write_index(tmp_path, [IndexRow("x.png", "s", "furious", 1.0, "c", 0, "train")], {"size": 64})
    with pytest.raises(SserdError, match="emotion"):
        read_index(tmp_path)


def test_not_a_dataset(tmp_path):
    with pytest.raises(SserdError, match="not an sserd dataset"):
        read_index(tmp_path)
