"""Forward time per image of the generator G and the encoder E (not a test).

    python benchmarks/nets_speed.py                 # CPU, and CUDA when available
    python benchmarks/nets_speed.py --sizes 256 --batch 4 --threads 2

For each size it times the full-size config (G config-f channels, E IResNet50)
and a small config (G with --small-channels channels, E "small" backbone), in
inference mode, after one warm-up pass; CUDA rows also time fp16 autocast.
"""

from __future__ import annotations

import argparse
import time

import torch

from sserd_cli.nets.encoder import EncoderConfig, LatentEncoder
from sserd_cli.nets.stylegan2 import Generator, GeneratorConfig


def time_per_image(fn, batch: int, device: torch.device, repeats: int) -> tuple[float, float, float]:
    """(best wall, median wall, median process CPU) seconds per image over ``repeats`` passes.

    On a shared, busy machine the wall times swing with other jobs; the CPU time of this
    process (summed over its threads) is the steadier measure of the work itself.
    """
    fn()  # warm-up (allocations, cuDNN autotune)
    wall, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall.append((time.perf_counter() - start) / batch)
        cpu.append((time.process_time() - start_cpu) / batch)
    wall.sort()
    cpu.sort()
    return wall[0], wall[len(wall) // 2], cpu[len(cpu) // 2]


def fmt(times: tuple[float, float, float]) -> str:
    return f"{times[0] * 1e3:.1f} / {times[1] * 1e3:.1f} / {times[2] * 1e3:.1f}"


def build(kind: str, size: int, small: bool, small_channels: int) -> torch.nn.Module:
    n_latent = 2 * (size.bit_length() - 1) - 2
    if kind == "G":
        return Generator(GeneratorConfig(size=size, channel_max=small_channels) if small else GeneratorConfig(size=size))
    backbone = "small" if small else "iresnet50"
    return LatentEncoder(EncoderConfig(size=size, n_latent=n_latent, backbone=backbone))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--small-channels", type=int, default=64, help="channel_max of the small generator")
    ap.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(f"torch {torch.__version__}, {args.threads} CPU threads, batch {args.batch}")
    print("ms/img: best wall / median wall / median CPU time of this process (all threads)")
    print(f"{'device':<28} {'net':<3} {'config':<18} {'size':>5} {'params':>8} {'ms/img':>24} {'fp16 ms/img':>24}")
    for dev_name in devices:
        device = torch.device(dev_name)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for size in args.sizes:
            for kind in ("G", "E"):
                for small in (False, True):
                    torch.manual_seed(0)
                    net = build(kind, size, small, args.small_channels).to(device).eval()
                    params = sum(p.numel() for p in net.parameters()) / 1e6
                    if kind == "G":
                        x = torch.randn(args.batch, net.n_latent, net.style_dim, device=device)
                        fn = lambda: net.synthesis(x, noise_mode="const")  # noqa: E731
                        cfg = f"channel_max={args.small_channels}" if small else "config-f"
                    else:
                        x = torch.rand(args.batch, 3, size, size, device=device) * 2 - 1
                        fn = lambda: net(x)  # noqa: E731
                        cfg = net.config.backbone
                    with torch.inference_mode():
                        fp32 = fmt(time_per_image(fn, args.batch, device, args.repeats))
                        half = ""
                        if device.type == "cuda":
                            with torch.autocast("cuda", dtype=torch.float16):
                                half = fmt(time_per_image(fn, args.batch, device, args.repeats))
                    print(f"{label:<28} {kind:<3} {cfg:<18} {size:>5} {params:>7.1f}M {fp32:>24} {half:>24}", flush=True)
                    del net


if __name__ == "__main__":
    main()
