"""Contrastive loss of eq. 5-6 and its cache of earlier codes."""

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from sserd_cli.losses.contrastive import CodeCache, contrastive_loss, contrastive_terms, distributed_gather


def _cache_with(codes_by_emotion, n_emotions=3, per_emotion=1):
    cache = CodeCache(n_emotions=n_emotions, per_emotion=per_emotion, dim=2)
    for emotion, code in codes_by_emotion.items():
        cache.push(torch.tensor([code], dtype=torch.float32), torch.tensor([emotion]))
    return cache


def test_equals_hand_computation_on_a_tiny_example():
    cache = _cache_with({0: [1.0, 0.0], 1: [0.0, 1.0], 2: [-1.0, 0.0]})
    codes = torch.tensor([[3.0, 4.0], [0.0, 2.0]])  # unit vectors (0.6, 0.8) and (0, 1)
    labels = torch.tensor([0, 1])
    # cosines: sample 0 -> (0.6, 0.8, -0.6), positive e0; sample 1 -> (0, 1, 0), positive e1; tau = 0.1
    l0 = -math.log(math.exp(6) / (math.exp(6) + math.exp(8) + math.exp(-6)))
    l1 = -math.log(math.exp(10) / (math.exp(10) + math.exp(0) + math.exp(0)))
    loss = contrastive_loss(codes, labels, cache)  # default tau = 0.1, sum over samples (eq. 6)
    assert loss.item() == pytest.approx(l0 + l1, rel=1e-5)
    mean = contrastive_loss(codes, labels, cache, reduction="mean")
    assert mean.item() == pytest.approx((l0 + l1) / 2, rel=1e-5)


def test_codes_are_compared_by_cosine_not_raw_dot_product():
    cache = _cache_with({0: [1.0, 0.0], 1: [0.0, 1.0], 2: [-1.0, 0.0]})
    labels = torch.tensor([0])
    small = contrastive_loss(torch.tensor([[3.0, 4.0]]), labels, cache)
    huge = contrastive_loss(torch.tensor([[3000.0, 4000.0]]), labels, cache)
    assert torch.isfinite(huge)
    assert huge.item() == pytest.approx(small.item(), rel=1e-5)


def test_emotions_without_cached_codes_drop_out():
    cache = CodeCache(n_emotions=7, per_emotion=4, dim=2)
    cache.push(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
    codes = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    terms = contrastive_terms(codes, torch.tensor([0, 1, 4]), cache)
    # samples 0 and 1 have one positive and one negative (cosines 1/sqrt2 both): -log(1/2)
    assert terms.active.tolist() == [True, True, False]
    assert terms.loss[:2].tolist() == pytest.approx([math.log(2)] * 2, rel=1e-5)
    assert terms.loss[2].item() == 0.0  # emotion 4 has no cached positive yet: skipped


def test_empty_cache_gives_zero_loss_that_still_backpropagates():
    cache = CodeCache(per_emotion=4)
    codes = torch.randn(2, 14, 8, requires_grad=True)
    loss = contrastive_loss(codes, torch.tensor([0, 3]), cache)
    assert loss.item() == 0.0
    loss.backward()
    assert codes.grad is not None and torch.count_nonzero(codes.grad) == 0
    # only one emotion cached: positives exist but no negatives -> still zero
    cache.push(codes.detach(), torch.tensor([0, 0]))
    assert contrastive_loss(codes, torch.tensor([0, 0]), cache).item() == 0.0


def test_pulling_same_emotion_codes_together_lowers_the_loss():
    torch.manual_seed(1)
    cache = CodeCache(n_emotions=7, per_emotion=1, dim=64)
    anchors = torch.randn(7, 64)
    cache.push(anchors, torch.arange(7))
    code = torch.randn(1, 64, requires_grad=True)
    label = torch.tensor([2])
    loss = contrastive_loss(code, label, cache)
    loss.backward()
    with torch.no_grad():
        # moving towards the cached code of the same emotion lowers the loss ...
        toward = code + 0.2 * (anchors[2] - code)
        assert contrastive_loss(toward, label, cache) < loss
        # ... and the gradient step points that way: cosine with the positive grows
        stepped = code - 0.5 * code.grad
        cos_before = torch.cosine_similarity(code, anchors[2:3]).item()
        cos_after = torch.cosine_similarity(stepped, anchors[2:3]).item()
        assert cos_after > cos_before
        assert contrastive_loss(stepped, label, cache) < loss


def test_cache_respects_per_emotion_capacity_and_keeps_the_newest():
    cache = CodeCache(n_emotions=7, per_emotion=3, dim=4)
    codes = torch.arange(5, dtype=torch.float32)[:, None].repeat(1, 4)  # code i is all i
    cache.push(codes, torch.full((5,), 2))
    assert cache.size(2) == 3
    assert all(cache.size(e) == 0 for e in range(7) if e != 2)
    assert sorted(cache.codes(2)[:, 0].tolist()) == [2.0, 3.0, 4.0]
    assert cache.sample(0, torch.Generator().manual_seed(0)) is None
    assert cache.sample(2, torch.Generator().manual_seed(0))[0].item() in (2.0, 3.0, 4.0)


def test_cache_flattens_wplus_codes_and_rejects_bad_labels():
    cache = CodeCache(per_emotion=2)
    cache.push(torch.randn(2, 14, 16), torch.tensor([1, 5]))
    assert cache.dim == 14 * 16
    with pytest.raises(ValueError):
        cache.push(torch.randn(1, 14, 16), torch.tensor([7]))
    with pytest.raises(ValueError):
        cache.push(torch.randn(1, 3, 16), torch.tensor([1]))


def test_state_dict_round_trip_gives_identical_samples(tmp_path):
    torch.manual_seed(3)
    cache = CodeCache(per_emotion=5, seed=11)
    for _ in range(4):
        cache.push(torch.randn(3, 6, 8), torch.randint(0, 7, (3,)))
    cache.sample_all(4)  # advance the generator: the saved state must include it
    path = tmp_path / "cache.safetensors"
    save_file(cache.state_dict(), str(path))  # checkpoints are safetensors: tensors only
    restored = CodeCache(per_emotion=5, seed=999)
    restored.load_state_dict(load_file(str(path)))
    codes, labels = torch.randn(4, 6, 8), torch.tensor([0, 1, 2, 6])
    for _ in range(3):
        a, present_a = cache.sample_all(4)
        b, present_b = restored.sample_all(4)
        assert torch.equal(a, b) and torch.equal(present_a, present_b)
        assert torch.equal(contrastive_loss(codes, labels, cache), contrastive_loss(codes, labels, restored))
        cache.push(codes, labels)
        restored.push(codes, labels)
    assert torch.equal(cache.state_dict()["codes"], restored.state_dict()["codes"])


def test_state_dict_of_a_lazy_empty_cache_round_trips():
    empty = CodeCache(per_emotion=2)
    other = CodeCache(per_emotion=2)
    other.load_state_dict(empty.state_dict())
    assert other.dim is None and other.size(0) == 0
    with pytest.raises(ValueError):
        CodeCache(per_emotion=3).load_state_dict(empty.state_dict())


def test_gather_hook_is_applied_on_push():
    seen = []

    def double(codes, labels):
        seen.append(codes.shape[0])
        return torch.cat([codes, codes]), torch.cat([labels, labels])

    cache = CodeCache(per_emotion=8, gather=double)
    cache.push(torch.randn(2, 4), torch.tensor([0, 1]))
    assert seen == [2] and cache.size(0) == 2 and cache.size(1) == 2
    codes, labels = torch.randn(2, 4), torch.tensor([0, 1])
    assert distributed_gather(codes, labels) == (codes, labels)  # no process group: no-op


def _gather_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        cache = CodeCache(n_emotions=7, per_emotion=8, seed=4, gather=distributed_gather)
        batch = 2 + rank  # unequal batch sizes on purpose
        codes = torch.full((batch, 3), float(rank + 1))
        labels = torch.arange(batch) + rank
        cache.push(codes, labels)
        drawn, present = cache.sample_all(3)
        torch.save({"codes": cache.state_dict()["codes"], "drawn": drawn, "present": present},
                   f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes import torch: ~5-15 s on this 2-core machine
def test_distributed_gather_keeps_caches_identical_across_ranks(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_gather_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert torch.equal(r0["codes"], r1["codes"]) and torch.equal(r0["drawn"], r1["drawn"])
    # rank 0 pushed labels 0,1 (value 1); rank 1 pushed labels 1,2,3 (value 2): 5 codes in all
    assert r0["present"].tolist() == [True, True, True, True, False, False, False]
    assert r0["codes"][1, :2, 0].tolist() == [1.0, 2.0]  # rank order
