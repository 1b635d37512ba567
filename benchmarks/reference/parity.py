"""One training step of the PyTorch + SpikingJelly reference against spikeir's.

    python parity.py --dir RUN [--dtype float64|float32] [--label TEXT] [--quiet]

RUN is a folder written by `npm run bench -- parity`: config.json, the student, teacher and
adapter weights and the batch (spikeir wrote them), and spikeir's loss terms, gradients and
decisions (below) for that step. This script loads the same weights by name, takes the same
step (H-KD loss, backward) and compares:
- each loss term to 1e-4 relative, |spikeir − reference| / |reference|;
- each parameter's gradient to 1e-3 relative, max |Δ| / max |g_reference| over that parameter.

Decisions: a spike (H ≥ V_th) and a ReLU's gradient mask (x > 0) are step functions of a
value, and where that value lies within float rounding of the step, spikeir (f32) and the
reference decide it differently. One such flip moves some parameters' gradients by far more
than 1e-3 (through the resets, the layers after it, or one element of a branch's gradient),
so the reference follows spikeir's decision wherever the two differ within a band of the step
(|H − V_th| < SPIKE_BAND; |x| < RELU_BAND·max|x| of that tensor) and counts those places; a
difference outside the band is a real disagreement and fails the check.
The neurons that follow are SpikingJelly's reference recurrence (charge, surrogate spike,
reset, step by step); a separate check shows that they equal SpikingJelly's LIFNode, the one
the benchmarks run, when nothing is forced.
It prints a table, writes RUN/parity_result.json and exits 1 when a tolerance is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from spikingjelly.activation_based import functional, neuron
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spikeir_ref import build  # noqa: E402

TERM_TOL = 1e-4
GRAD_TOL = 1e-3
# A charge in f32 is exact to about 1e-7·|H|; H and V_th are O(0.1–1).
SPIKE_BAND = 1e-4
# A ReLU input is a sum of O(1) terms, exact in f32 to about 1e-7 of the tensor's scale.
RELU_BAND = 1e-5


class Tally:
    """Decisions of one module: how many, how many followed, how many disagreed, the widest followed gap."""

    def __init__(self) -> None:
        self.total = 0
        self.followed = 0
        self.disagreed = 0
        self.widest = 0.0

    def take(self, own: torch.Tensor, theirs: torch.Tensor, gap: torch.Tensor, band: float) -> torch.Tensor:
        """The decisions to use: spikeir's where the two differ within `band`, the reference's elsewhere."""
        self.total += own.numel()
        differ = own != theirs
        if not bool(differ.any()):
            return own
        near = differ & (gap < band)
        self.followed += int(near.sum())
        self.disagreed += int((differ & ~near).sum())
        if bool(near.any()):
            self.widest = max(self.widest, float(gap[near].max()))
        return torch.where(near, theirs, own)


class FollowedLIF(neuron.LIFNode):
    """SpikingJelly's LIF neuron, run step by step as its reference path, taking spikeir's spikes where they differ by rounding."""

    def __init__(self, like: neuron.LIFNode):
        super().__init__(
            tau=like.tau,
            decay_input=like.decay_input,
            v_threshold=like.v_threshold,
            v_reset=like.v_reset,
            surrogate_function=like.surrogate_function,
            detach_reset=like.detach_reset,
            step_mode="m",
        )
        self.forced: list[torch.Tensor] = []
        self.tally = Tally()

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        reset = 0.0 if self.v_reset is None else self.v_reset
        forced = self.forced.pop(0) if self.forced else None
        v = torch.full_like(x_seq[0], reset)
        out = []
        for t, x in enumerate(x_seq):
            h = v + (x - (v - reset)) / self.tau if self.decay_input else v - (v - reset) / self.tau + x
            s = self.surrogate_function(h - self.v_threshold)
            if forced is not None:
                use = self.tally.take(s.detach(), forced[t].to(s.dtype), (h.detach() - self.v_threshold).abs(), SPIKE_BAND)
                # The value of spikeir's decision, the surrogate gradient of this one.
                s = s + (use - s).detach()
            r = s.detach() if self.detach_reset else s
            v = h - r * self.v_threshold if self.v_reset is None else r * reset + (1.0 - r) * h
            out.append(s)
        self.v = v
        return torch.stack(out)


class FollowedReLU(nn.Module):
    """ReLU whose gradient mask takes spikeir's (from its output's sign) where the two differ by rounding."""

    def __init__(self) -> None:
        super().__init__()
        self.forced: list[torch.Tensor] = []
        self.tally = Tally()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.forced:
            return F.relu(x)
        theirs = self.forced.pop(0).reshape(x.shape) > 0
        own = x.detach() > 0
        gap = x.detach().abs() / x.detach().abs().max().clamp_min(1e-30)
        mask = self.tally.take(own, theirs, gap, RELU_BAND)
        return F.relu(x) if mask is own else x * mask.to(x.dtype)


def follow(model: nn.Module) -> dict[str, nn.Module]:
    """Replaces every LIF neuron and ReLU module of `model` by one that follows, in place."""
    out: dict[str, nn.Module] = {}
    for name, m in list(model.named_modules()):
        if type(m) is neuron.LIFNode:
            f: nn.Module = FollowedLIF(m)
        elif type(m) is nn.ReLU:
            f = FollowedReLU()
        else:
            continue
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, f)
        out[name] = f
    return out


def sj_agrees(like: neuron.LIFNode, dtype: torch.dtype) -> float:
    """Max relative |Δ| between SpikingJelly's LIFNode and FollowedLIF on one random input: spikes and input gradients."""
    torch.manual_seed(0)
    x = (torch.randn(4, 2, 8, 16, 16, dtype=dtype) * 0.3).requires_grad_()
    g = torch.randn_like(x)
    sj = neuron.LIFNode(
        tau=like.tau,
        decay_input=like.decay_input,
        v_threshold=like.v_threshold,
        v_reset=like.v_reset,
        surrogate_function=like.surrogate_function,
        detach_reset=like.detach_reset,
        step_mode="m",
    )
    s1 = sj(x)
    (gx1,) = torch.autograd.grad(s1, x, g)
    s2 = FollowedLIF(like)(x)
    (gx2,) = torch.autograd.grad(s2, x, g)
    functional.reset_net(sj)
    return max(float((s1 - s2).detach().abs().max()), float((gx1 - gx2).abs().max() / gx1.abs().max()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--label", default="")
    ap.add_argument("--quiet", action="store_true", help="print the worst 8 parameters, not every one")
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)

    hkd, _ = build(a.dir, dtype)
    batch = load_file(str(a.dir / "batch.safetensors"))
    x, y = batch["input"].to(dtype), batch["target"].to(dtype)
    ours = json.loads((a.dir / "spikeir_result.json").read_text())
    their_grads = load_file(str(a.dir / "spikeir_grads.safetensors"))
    their_decisions = load_file(str(a.dir / "spikeir_decisions.safetensors"))

    followers = follow(hkd.student)
    lifs = {n: m for n, m in followers.items() if isinstance(m, FollowedLIF)}
    relus = {n: m for n, m in followers.items() if isinstance(m, FollowedReLU)}
    unmatched = []
    for name, m in followers.items():
        calls = sorted((k for k in their_decisions if k.rpartition("#")[0] == name), key=lambda k: int(k.rpartition("#")[2]))
        if not calls:
            unmatched.append(name)
        m.forced = [their_decisions[k] for k in calls]
    sj_check = sj_agrees(next(iter(lifs.values())), dtype)

    hkd.student.train()
    loss, parts = hkd.loss(x, y)
    loss.backward()

    terms = {}
    for k, v in parts.items():
        ref = float(v.detach())
        got = ours["terms"][k]
        terms[k] = abs(got - ref) / abs(ref) if ref != 0 else abs(got)

    grads = []
    named = [(n.removeprefix("student."), p) for n, p in hkd.named_parameters() if p.requires_grad]
    missing = [n for n, _ in named if n not in their_grads]
    extra = sorted(set(their_grads) - {n for n, _ in named})
    for n, p in named:
        if n not in their_grads:
            continue
        ref = p.grad if p.grad is not None else torch.zeros_like(p)
        got = their_grads[n].to(dtype).reshape(ref.shape)
        scale = float(ref.abs().max())
        diff = float((got - ref).abs().max())
        grads.append((n, diff / scale if scale > 0 else diff, scale, diff))

    def summary(group: dict[str, nn.Module]) -> dict[str, float]:
        t = [m.tally for m in group.values()]
        return {
            "decisions": sum(v.total for v in t),
            "followed": sum(v.followed for v in t),
            "disagreed": sum(v.disagreed for v in t),
            "widest": max((v.widest for v in t), default=0.0),
        }

    spikes, masks = summary(lifs), summary(relus)
    worst = max(grads, key=lambda g: g[1]) if grads else ("-", float("inf"), 0.0, 0.0)
    ok = (
        spikes["disagreed"] == 0
        and masks["disagreed"] == 0
        and not unmatched
        and sj_check <= 1e-6
        and not missing
        and not extra
        and all(v <= TERM_TOL for v in terms.values())
        and all(g[1] <= GRAD_TOL for g in grads)
    )

    print(f"\n== {a.label} — reference in {a.dtype}, torch {torch.__version__}")
    print(f"loss terms (relative error, tolerance {TERM_TOL:g}):")
    for k, v in terms.items():
        print(f"  {k:<5} reference {float(parts[k].detach()):.8f}  spikeir {ours['terms'][k]:.8f}  rel {v:.2e}")
    print(f"gradients of {len(grads)} parameters (max |Δ| / max |g|, tolerance {GRAD_TOL:g}):")
    for n, rel, scale, diff in sorted(grads, key=lambda g: -g[1])[: 8 if a.quiet else len(grads)]:
        print(f"  {rel:9.2e}  max|g| {scale:9.3e}  max|Δ| {diff:9.3e}  {n}")
    if missing or extra:
        print(f"  names only in the reference: {missing}; only in spikeir: {extra}")
    if unmatched:
        print(f"  no spikeir decisions recorded for {unmatched}")
    for what, s, band in (("spikes", spikes, f"|H − V_th| < {SPIKE_BAND:g}"), ("ReLU masks", masks, f"|x| < {RELU_BAND:g}·max|x|")):
        print(
            f"{what}: {s['decisions']} decisions, {s['followed']} within rounding ({band}, widest {s['widest']:.1e}; the reference follows spikeir),"
            f" {s['disagreed']} real disagreements"
        )
    for n, m in followers.items():
        if m.tally.followed or m.tally.disagreed:
            print(f"  {n}: {m.tally.followed} followed, {m.tally.disagreed} disagreeing, widest gap {m.tally.widest:.1e}")
    print(f"SpikingJelly's LIFNode against the followed neuron, nothing forced: max rel |Δ| {sj_check:.1e} (tolerance 1e-6)")
    print(f"worst: term {max(terms, key=terms.get)} {max(terms.values()):.2e}; gradient {worst[0]} {worst[1]:.2e} -> {'PASS' if ok else 'FAIL'}")

    (a.dir / "parity_result.json").write_text(
        json.dumps(
            {
                "pass": ok,
                "dtype": a.dtype,
                "terms": terms,
                "worstGradient": {"name": worst[0], "rel": worst[1]},
                "gradients": {n: rel for n, rel, _, _ in grads},
                "spikes": spikes,
                "reluMasks": masks,
                "spikingJellyCheck": sj_check,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
