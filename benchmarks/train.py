"""Benchmark: training images/s, achieved TFLOP/s and peak memory per model; the loader alone.

Importable with torch alone (no rasterio, zarr or snakemake), so it runs on a bare GPU machine.
Every model runs full training steps (forward, loss, backward, optimiser; both networks of a GAN
step) at the given size and batch, in two settings measured in the same run:

- ``fp32 eager``: float32, TF32 convolutions allowed on CUDA, contiguous memory;
- ``fastest``: on CUDA bf16 autocast + channels_last (+ torch.compile with --compile);
  on the CPU the same as fp32 eager (bf16 is slower there).

FLOPs: the forward pass counted by torch.utils.flop_counter.FlopCounterMode, and a training step
taken as 3 x forward (a convolution's backward is twice its forward: FlopCounterMode's own
backward count ignores ``groups`` of depthwise convolutions and overcounts SARDINet by ~1.7x).
For GANs the step's FLOPs are those of every network pass in the step (counted on a real step's
forward passes, times 3). The loader line draws batches from an in-memory split exactly as training
does (random crops gathered by index on the device).

    python benchmarks/train.py                        # batch 24, 256 x 256, on CUDA if present
    python benchmarks/train.py --size 128 --batch 4 --steps 3 --models sardinet_late   # a CPU taste
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.training.data import SplitTensors, epoch_plan, gather
from pipeline.training.trainers import Hyper, make_trainer

MODELS = ("sardinet", "sardinet_late", "sardinet_early", "sardinet_intermediate", "pix2pix", "cyclegan")


def synthetic_split(n: int, size: int, device: torch.device) -> SplitTensors:
    g = torch.Generator().manual_seed(0)
    inputs = torch.rand(n, 3, size, size, generator=g)
    optical = (torch.rand(n, 3, size, size, generator=g) * 255).to(torch.uint8)
    valid = torch.rand(n, 1, size, size, generator=g) > 0.1
    flags = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    split = SplitTensors(inputs, optical, valid, flags, torch.arange(n).numpy())
    return split.to(device, torch.float16 if device.type == "cuda" else torch.float32)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_flops(trainer, x, y, v) -> float:
    """3 x the forward FLOPs of one training step's network passes."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        torch.set_grad_enabled(True)
        trainer_forward_only(trainer, x, y, v)
    return 3.0 * counter.get_total_flops()


def trainer_forward_only(trainer, x, y, v) -> None:
    """The network passes of one step, without backward (for counting)."""
    name = trainer.model_name
    with torch.no_grad():
        if name == "pix2pix":
            fake = trainer.g(trainer.prepare(x))
            yy = trainer.to_model_range(y)
            xx = trainer.prepare(x)
            trainer.d(torch.cat([xx, fake], 1))
            trainer.d(torch.cat([xx, yy], 1))
            trainer.d(torch.cat([xx, fake], 1))
        elif name == "cyclegan":
            a, b = trainer.to_model_range(trainer.prepare(x)), trainer.to_model_range(y)
            fb = trainer.g_ab(a)
            trainer.g_ba(fb)
            fa = trainer.g_ba(b)
            trainer.g_ab(fa)
            trainer.g_ab(b)
            trainer.g_ba(a)
            for d, t in ((trainer.d_b, fb), (trainer.d_a, fa), (trainer.d_b, b), (trainer.d_b, fb), (trainer.d_a, a),
                         (trainer.d_a, fa)):
                d(t)
        else:
            trainer.forward(trainer.prepare(x))


def bench_model(name: str, device: torch.device, size: int, batch: int, steps: int, warmup: int, fast: bool,
                compile_model: bool) -> dict:
    torch.manual_seed(0)
    amp = fast and device.type == "cuda"
    trainer = make_trainer(name, Hyper(lr=1e-4, epochs=2, seed=0), device, amp=amp,
                           compile_model=fast and compile_model)
    if not fast:
        trainer.channels_last = False
        trainer.model = trainer.model.to(memory_format=torch.contiguous_format)
    g = torch.Generator(device="cpu").manual_seed(1)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    y = torch.rand(batch, 3, size, size, generator=g).to(device)
    v = (torch.rand(batch, 1, size, size, generator=g) > 0.1).to(device)
    flops = step_flops(trainer, x, y, v)
    for _ in range(warmup):
        trainer.train_step(x, y, v)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(x, y, v)
    sync(device)
    dt = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"img_s": batch / dt, "tflops": flops / dt / 1e12, "gflop_img": flops / 3 / batch / 1e9, "peak_gib": peak}


def bench_loader(device: torch.device, size: int, batch: int, crop: int, n: int = 256, batches: int = 50) -> float:
    split = synthetic_split(n, size, device)
    plan = epoch_plan(n, size, crop, batch * batches, batch, seed=0, epoch=0)
    sync(device)
    t0 = time.perf_counter()
    for idx, rows, cols in plan.batches():
        x, y, v = gather(split, idx, rows, cols, crop, device)
    sync(device)
    return batch * batches / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="torch.compile in the fastest setting (CUDA)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        card = torch.cuda.get_device_name(device)
    else:
        card = f"CPU, {torch.get_num_threads()} threads"
    print(f"# device: {card}; torch {torch.__version__}; {args.size} x {args.size}, batch {args.batch}, "
          f"{args.steps} timed steps after {args.warmup}")
    fastest = "bf16 autocast + channels_last" + (" + compile" if args.compile else "") if device.type == "cuda" \
        else "fp32 eager (CPU)"
    print(f"| model | GFLOP/img fwd | fp32 eager img/s | TFLOP/s | peak GiB | fastest ({fastest}) img/s | "
          f"TFLOP/s | peak GiB | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        size = max(args.size, 256) if name == "pix2pix" else args.size
        if device.type == "cuda":
            torch.cuda.empty_cache()
        a = bench_model(name, device, size, args.batch, args.steps, args.warmup, False, False)
        b = bench_model(name, device, size, args.batch, args.steps, args.warmup, True, args.compile) \
            if device.type == "cuda" else a
        print(f"| {name}{' (256 px)' if size != args.size else ''} | {a['gflop_img']:.1f} | {a['img_s']:.1f} | "
              f"{a['tflops']:.2f} | {a['peak_gib']:.2f} | {b['img_s']:.1f} | {b['tflops']:.2f} | "
              f"{b['peak_gib']:.2f} | x{b['img_s'] / a['img_s']:.2f} |")
    for crop in sorted({args.size, min(64, args.size)}):
        rate = bench_loader(device, args.size, args.batch, crop)
        print(f"| loader (in memory on {device.type}, crops of {crop} px) | | {rate:.0f} patches/s | | | | | | |")


if __name__ == "__main__":
    main()
