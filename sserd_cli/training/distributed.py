"""Data-parallel training through ``torchrun`` (gloo on CPU, NCCL on CUDA).

Every rank holds a full copy of the networks. After each backward pass the gradients are
averaged across ranks (:func:`average_gradients`), so every rank takes the same optimiser
step and the weights stay identical without wrapping modules in DistributedDataParallel
(GAN stages run several forward passes per step over partly frozen networks, which DDP's
bucket hooks handle badly). Each rank reads its own shard of every batch. Only rank 0
writes files; the others wait at barriers.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist

from ..errors import SserdError
from ..runtime import select_device


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def setup(device_name: str) -> DistContext:
    """One process per rank when started by torchrun, else a single-process context."""
    if not launched_by_torchrun():
        return DistContext(device=select_device(device_name))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = select_device(device_name)
    if device.type == "cuda":
        if torch.cuda.device_count() <= local_rank:
            raise SserdError(f"torchrun started rank {local_rank} but only {torch.cuda.device_count()} GPUs are visible")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


def teardown(ctx: DistContext, finished: bool = True) -> None:
    """Close the process group. After a clean finish every rank first meets at a barrier, so no rank tears
    its connections down while a peer still has a message in flight (gloo then aborted the peer now and then:
    "terminate called without an active exception"); after an error the others may never arrive, so no barrier."""
    if ctx.enabled and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def average_gradients(params: Iterable[torch.nn.Parameter], ctx: DistContext) -> None:
    """All-reduce (mean) the gradients of ``params``, flattened into one buffer per call."""
    if not ctx.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ctx.world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def broadcast_module(module: torch.nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's parameters and buffers (after construction)."""
    if not ctx.enabled:
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def broadcast_buffers(module: torch.nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics), as DDP's ``broadcast_buffers`` does:
    each rank normalises its own shard, so the running statistics would otherwise drift apart."""
    if not ctx.enabled:
        return
    for tensor in module.buffers():
        dist.broadcast(tensor.data, src=0)


def all_gather_tensor(tensor: torch.Tensor, ctx: DistContext) -> list[torch.Tensor]:
    """The same-shaped tensor from every rank, in rank order (just ``[tensor]`` without DDP)."""
    if not ctx.enabled:
        return [tensor]
    moved = tensor.to(ctx.device) if ctx.device.type == "cuda" else tensor
    out = [torch.empty_like(moved) for _ in range(ctx.world_size)]
    dist.all_gather(out, moved.contiguous())
    return [t.cpu() if ctx.device.type == "cuda" else t for t in out]


def all_gather_cat(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate a per-rank batch along dim 0 (same batch size on every rank)."""
    if not ctx.enabled:
        return tensor
    out = [torch.empty_like(tensor) for _ in range(ctx.world_size)]
    dist.all_gather(out, tensor.contiguous())
    return torch.cat(out)


def mean_scalars(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average logged losses over ranks (so the log shows the global batch)."""
    if not ctx.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= ctx.world_size
    return dict(zip(keys, t.cpu().tolist()))


def module_checksum(modules: Iterable[torch.nn.Module]) -> str:
    """SHA-256 of every parameter and buffer, to prove ranks hold identical weights."""
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return h.hexdigest()


def checksums_of_all_ranks(checksum: str, ctx: DistContext) -> list[str]:
    digest = torch.tensor(list(bytes.fromhex(checksum)), dtype=torch.uint8)
    if ctx.device.type == "cuda":
        digest = digest.to(ctx.device)
    return [bytes(t.cpu().tolist()).hex() for t in all_gather_tensor(digest, ctx)]
