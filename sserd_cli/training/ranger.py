"""Ranger: RAdam + Lookahead (+ optional gradient centralisation), the paper's optimiser.

The paper trains with Ranger (Less Wright 2019, its reference [36]) at lr 1e-4. This is the
algorithm of that reference, written for this project:

1. Gradient centralisation (Yong et al. 2020, on by default as in the reference): for every
   parameter with more than one dimension (``gc_conv_only=True``: more than three, i.e.
   conv kernels only) subtract the gradient's mean over all but the first (output) axis.
2. RAdam (Liu et al. 2020): Adam moments; while the variance of the adaptive learning
   rate is intractable (``rho_t <= 5``), an un-adapted momentum step; after that the
   rectified adaptive step ``r_t * m_hat / (sqrt(v) + eps)``.
3. Lookahead (Zhang et al. 2019): every ``k`` steps the slow weights move ``alpha`` of the
   way towards the fast weights and the fast weights restart from them.

Resume is exact: all state is per-parameter tensors (``step`` as an int64 tensor,
``exp_avg``, ``exp_avg_sq``, ``slow_buffer``) plus the hyper-parameters in the param
groups, so ``state_dict()`` / ``load_state_dict()`` continue bit-for-bit on CPU. The step
size is recomputed from ``step`` each time (the reference's cache of recent step sizes
lives outside ``state_dict`` and is not needed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer


class Ranger(Optimizer):
    """``Ranger(params, lr=1e-4, alpha=0.5, k=6, n_sma_threshold=5, betas=(0.95, 0.999),
    eps=1e-5, weight_decay=0.0, use_gc=True, gc_conv_only=False)``; the reference's defaults
    except ``lr`` (the paper's 1e-4). Parameters should be float32 (AMP keeps masters in
    float32)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-4,
        alpha: float = 0.5,
        k: int = 6,
        n_sma_threshold: float = 5.0,
        betas: tuple[float, float] = (0.95, 0.999),
        eps: float = 1e-5,
        weight_decay: float = 0.0,
        use_gc: bool = True,
        gc_conv_only: bool = False,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"Ranger: lr must be > 0, got {lr}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Ranger: alpha must lie in [0, 1], got {alpha}")
        if not (isinstance(k, int) and k >= 1):
            raise ValueError(f"Ranger: k must be a positive integer, got {k}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Ranger: betas must lie in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"Ranger: eps must be > 0, got {eps}")
        defaults = dict(
            lr=lr,
            alpha=alpha,
            k=k,
            n_sma_threshold=n_sma_threshold,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            use_gc=use_gc,
            gc_conv_only=gc_conv_only,
        )
        super().__init__(params, defaults)

    @staticmethod
    def _rectification(step: int, beta1: float, beta2: float, threshold: float) -> tuple[bool, float]:
        """(adaptive?, step size without lr) of RAdam at ``step`` (1-based)."""
        beta2_t = beta2**step
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2.0 * step * beta2_t / (1.0 - beta2_t)
        bias1 = 1.0 - beta1**step
        if rho_t > threshold:
            r_t = math.sqrt(
                (1.0 - beta2_t) * (rho_t - 4.0) / (rho_inf - 4.0) * (rho_t - 2.0) / rho_t * rho_inf / (rho_inf - 2.0)
            )
            return True, r_t / bias1
        return False, 1.0 / bias1

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            gc_min_dim = 3 if group["gc_conv_only"] else 1
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Ranger does not support sparse gradients")
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.zeros((), dtype=torch.int64)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["slow_buffer"] = p.detach().clone(memory_format=torch.preserve_format)
                if group["use_gc"] and grad.dim() > gc_min_dim:
                    grad = grad - grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                step = int(state["step"])
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                adaptive, step_size = self._rectification(step, beta1, beta2, group["n_sma_threshold"])
                if group["weight_decay"] != 0:
                    p.add_(p, alpha=-group["weight_decay"] * group["lr"])
                if adaptive:
                    denom = exp_avg_sq.sqrt().add_(group["eps"])
                    p.addcdiv_(exp_avg, denom, value=-step_size * group["lr"])
                else:
                    p.add_(exp_avg, alpha=-step_size * group["lr"])
                if step % group["k"] == 0:  # Lookahead: slow += alpha * (fast - slow); fast = slow
                    slow = state["slow_buffer"]
                    slow.add_(p - slow, alpha=group["alpha"])
                    p.copy_(slow)
        return loss
