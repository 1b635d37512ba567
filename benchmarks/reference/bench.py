"""One case of `npm run bench -- compare` on the PyTorch + SpikingJelly side, in its own process.

    python bench.py --case CASE --dir RUN --iters N --threads N [--device cpu|cuda]

RUN is a folder written by compare (config.json, weights, batch, extra arrays). Cases:
step-tiny, step-tiny-hints, step-small, step-small-hints (one training step as spikeir distill
takes it: H-KD loss and its values read back, backward, clipping by global norm, AdamW, every
layer's firing rate read back), teacher (DnCNN forward of the batch), infer-tiny, infer-small
(the student on one 512×512 image, evaluation mode), lif (one LIF layer forward + backward).
Prints one JSON line: seconds of each timed iteration (after one warm-up), and the process's
peak RSS after its imports (before building anything) and at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path


def max_rss_kib() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", required=True)
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()

    import torch
    from importlib.metadata import version
    from safetensors.torch import load_file
    from spikingjelly.activation_based import functional, neuron, surrogate
    from spikingjelly.activation_based.neuron.base_node import BaseNode

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from spikeir_ref import build

    idle = max_rss_kib()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    hkd, cfg = build(a.dir)
    hkd.to(dev)
    batch = {k: v.to(dev) for k, v in load_file(str(a.dir / "batch.safetensors")).items()}
    extra_file = a.dir / "extra.safetensors"
    extra = {k: v.to(dev) for k, v in load_file(str(extra_file)).items()} if extra_file.exists() else {}
    x, y = batch["input"], batch["target"]
    student = hkd.student

    if a.case.startswith("step-"):
        params = list(student.parameters()) + list(hkd.adapters.parameters())
        opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weightDecay"])
        rates: list[torch.Tensor] = []
        for m in student.modules():
            if isinstance(m, BaseNode):
                m.register_forward_hook(lambda _m, _i, out: rates.append(out.detach().mean()))
        student.train()

        def run() -> None:
            rates.clear()
            opt.zero_grad(set_to_none=True)
            loss, parts = hkd.loss(x, y)
            torch.stack([v.detach() for v in parts.values()]).tolist()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg["clipNorm"])
            opt.step()
            torch.stack(rates).tolist()

    elif a.case == "teacher":
        teacher = hkd.teacher

        def run() -> None:
            with torch.inference_mode():
                teacher(x)
            sync()

    elif a.case.startswith("infer-"):
        student.eval()
        image = extra["image512"]

        def run() -> None:
            with torch.inference_mode():
                student(image)
            sync()

    elif a.case == "lif":
        n = cfg["student"]["neuron"]
        node = neuron.LIFNode(
            tau=float(n["tau"]),
            decay_input=bool(n["decayInput"]),
            v_threshold=float(n["vThreshold"]),
            v_reset=float(n["vReset"]),
            surrogate_function=surrogate.Sigmoid(alpha=float(n["alpha"])),
            detach_reset=bool(n["detachReset"]),
            step_mode="m",
        )
        xs = extra["lifInput"].requires_grad_()
        g = extra["lifGrad"]

        def run() -> None:
            functional.reset_net(node)
            node(xs).backward(g)
            xs.grad = None
            sync()

    else:
        raise SystemExit(f"bench.py: unknown --case '{a.case}'")

    run()
    seconds = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "case": a.case,
                "seconds": seconds,
                "medianSeconds": statistics.median(seconds),
                "maxRssKiB": max_rss_kib(),
                "idleRssKiB": idle,
                "threads": torch.get_num_threads(),
                "version": f"PyTorch {torch.__version__}, SpikingJelly {version('spikingjelly')}",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
