"""The bank of E's pair codes behind the latent-step loss (sserd_cli.training.latent_bank)."""

import torch

from sserd_cli.emotions import EMOTIONS
from sserd_cli.training.latent_bank import LatentBank


class Rows:
    """A FrameSet stand-in: rows with an emotion, and images whose pixels all hold the row's index."""

    def __init__(self, emotions):
        self.rows = [type("Row", (), {"emotion": e})() for e in emotions]

    def load(self, indices):
        return torch.tensor(indices, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()


class IndexEncoder(torch.nn.Module):
    """E stand-in: the code [1, 2] of an image is filled with its pixel value (the row index)."""

    def forward(self, x):
        return x[:, :1, :1, :1].reshape(-1, 1, 1).expand(-1, 1, 2).clone()


def test_bank_draws_the_stored_step_of_a_group_pair_with_a_reference_of_the_target_emotion():
    pairs = Rows(["neutral", "happy", "angry"] * 3)  # three groups of three rows
    groups = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    stored = torch.arange(9, dtype=torch.float32).view(9, 1, 1).expand(9, 1, 2) * 10.0
    real = Rows(["happy"] * 4 + ["angry"] * 4 + ["neutral"] * 4)
    bank = LatentBank(IndexEncoder(), pairs, groups, stored, real, refs_per_emotion=2, max_groups=8, seed=0,
                      device="cpu")
    assert len(bank) == 3 and all(len(codes) == 2 for codes in bank.refs.values())
    w_s, w_r, step = bank.batch(iteration=5, size=32)
    assert w_s.shape == w_r.shape == step.shape == (32, 1, 2)
    source_row = w_s[:, 0, 0].long()  # E's code of a pair image is its row index here
    target_row = source_row + step[:, 0, 0].div(10).round().long()  # stored codes are 10 x the row index
    assert torch.all(source_row // 3 == target_row // 3) and torch.all(source_row != target_row)  # same group
    target_emotion = [pairs.rows[int(t)].emotion for t in target_row]
    reference_emotion = [real.rows[int(r)].emotion for r in w_r[:, 0, 0].long()]
    assert target_emotion == reference_emotion
    again = bank.batch(iteration=5, size=32)
    assert all(torch.equal(a, b) for a, b in zip((w_s, w_r, step), again))  # a draw depends on the iteration only
    assert not torch.equal(bank.batch(iteration=6, size=32)[0], w_s)
    assert EMOTIONS.index("neutral") in bank.refs  # back to neutral is a target too
