"""PyTorch + SpikingJelly reference of spikeir's models and H-KD loss.

The SpikerIR student (any configuration, so every preset), the DnCNN teacher, the hint adapters
and the H-KD loss L = L1 + λ·L_FFT + γ·Σ MSE(adapter(F_S), F_T), written the way a PyTorch user
would write them, with SpikingJelly's multi-step LIF neurons and tdBN. Module and parameter
names are those of spikeir's `namedParameters()`, so the safetensors files spikeir writes load
by name. The benchmarks race spikeir against this code, and the parity check proves that it
computes the same step.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

# ε in the FFT loss's modulus √(re² + im² + ε) (spikeir's FFT_LOSS_EPS).
FFT_LOSS_EPS = 1e-12


def make_neuron(opts: dict) -> nn.Module:
    """A multi-step SpikingJelly neuron from spikeir's NeuronOptions (same defaults)."""
    kind = opts.get("kind", "lif")
    sg_kind = opts.get("surrogate", "sigmoid")
    alpha = float(opts.get("alpha", {"sigmoid": 4.0, "atan": 2.0, "triangle": 1.0}[sg_kind]))
    # spikeir's triangle, α − α²·|x| inside |x| ≤ 1/α, is SpikingJelly's PiecewiseQuadratic.
    sg = {"sigmoid": surrogate.Sigmoid, "atan": surrogate.ATan, "triangle": surrogate.PiecewiseQuadratic}[sg_kind](alpha=alpha)
    # An absent (null) vReset is spikeir's soft reset, SpikingJelly's v_reset=None.
    v_reset = opts.get("vReset", 0.0)
    common = dict(
        v_threshold=float(opts.get("vThreshold", 1.0)),
        v_reset=None if v_reset is None else float(v_reset),
        surrogate_function=sg,
        detach_reset=bool(opts.get("detachReset", False)),
        step_mode="m",
    )
    tau = float(opts.get("tau", 2.0))
    decay_input = bool(opts.get("decayInput", True))
    if kind == "lif":
        return neuron.LIFNode(tau=tau, decay_input=decay_input, **common)
    if kind == "plif":
        return neuron.ParametricLIFNode(init_tau=tau, decay_input=decay_input, **common)
    if kind == "if":
        return neuron.IFNode(**common)
    raise ValueError(f"neuron kind '{kind}' is not lif, plif or if")


class MultiStep(nn.Module):
    """A stateless layer run on [T, B, ...] as one [T·B, ...] batch (spikeir's MultiStep)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.seq_to_ann_forward(x, self.module)


class TdBN(nn.Module):
    """SpikingJelly's tdBN under the name `module`, as spikeir's ThresholdDependentBatchNorm."""

    def __init__(self, channels: int, v_threshold: float):
        super().__init__()
        self.module = layer.ThresholdDependentBatchNorm2d(alpha=1 / math.sqrt(2), v_th=v_threshold, num_features=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def conv(in_c: int, out_c: int, k: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_c, out_c, k, stride=stride, padding=k // 2, bias=bias)


def spiking_conv(cfg: dict, in_c: int, out_c: int, k: int, stride: int = 1, bn_scale: float = 1.0) -> list[nn.Module]:
    """LIF → conv → tdBN."""
    vth = float(cfg["neuron"].get("vThreshold", 1.0))
    return [make_neuron(cfg["neuron"]), MultiStep(conv(in_c, out_c, k, stride, bias=False)), TdBN(out_c, vth * bn_scale)]


class GateMlp(nn.Module):
    def __init__(self, n: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(n, hidden, bias=False)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, n, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x)))


class MultiDimensionalAttention(nn.Module):
    """Temporal, channel and spatial gates on [T, B, C, H, W], in that order, then ReLU (DESIGN §3)."""

    def __init__(self, t: int, c: int, rt: int, rc: int, k: int = 3):
        super().__init__()
        self.temporal = GateMlp(t, max(1, t // rt))
        self.channel = GateMlp(c, max(1, c // rc))
        self.spatial = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, c, h, w = x.shape
        t_gate = torch.sigmoid(self.temporal(x.mean((2, 3, 4)).t()) + self.temporal(x.amax((2, 3, 4)).t()))
        x1 = x * t_gate.t().reshape(t, b, 1, 1, 1)
        c_gate = torch.sigmoid(self.channel(x1.mean((0, 3, 4))) + self.channel(x1.amax((0, 3, 4))))
        x2 = x1 * c_gate.reshape(1, b, c, 1, 1)
        flat = x2.permute(1, 0, 2, 3, 4).reshape(b, t * c, h, w)
        s_in = torch.cat([flat.mean(1, keepdim=True), flat.amax(1, keepdim=True)], 1)
        s_gate = torch.sigmoid(self.spatial(s_in))
        return self.relu(x2 * s_gate.reshape(1, b, 1, h, w))


class SpikingResidualBlock(nn.Module):
    """x + attn(residual(x) + shortcut(x))."""

    def __init__(self, cfg: dict, c: int):
        super().__init__()
        vth = float(cfg["neuron"].get("vThreshold", 1.0))
        # The second BN of the residual branch starts at 0.2·V_th, as in the ESDNet template.
        self.residual = nn.Sequential(*spiking_conv(cfg, c, c, 3), *spiking_conv(cfg, c, c, 3, 1, 0.2 * math.sqrt(2)))
        self.shortcut = nn.Sequential(MultiStep(conv(c, c, 1, bias=False)), TdBN(c, vth))
        self.attn = MultiDimensionalAttention(cfg["timeSteps"], c, cfg["temporalReduction"], cfg["channelReduction"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(self.residual(x) + self.shortcut(x))


class SpikingUp(nn.Module):
    """×2 bilinear up-sampling of [T, B, C, H, W], then LIF → conv → tdBN."""

    def __init__(self, cfg: dict, in_c: int, out_c: int):
        super().__init__()
        self.body = nn.Sequential(*spiking_conv(cfg, in_c, out_c, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = functional.seq_to_ann_forward(x, lambda v: F.interpolate(v, scale_factor=2, mode="bilinear", align_corners=False))
        return self.body(up)


class RefinementBlock(nn.Module):
    """(1 − t)·a + t·x with a channel gate a and a spatial gate t (an ANN block)."""

    def __init__(self, c: int):
        super().__init__()
        r = max(1, c // 8)
        self.gate1 = conv(c, r, 1)
        self.gate2 = conv(r, c, 1)
        self.conv1 = conv(c, c, 3)
        self.conv2 = conv(c, r, 3)
        self.conv3 = conv(r, c, 3)
        self.gate_relu = nn.ReLU()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.sigmoid(self.gate2(self.gate_relu(self.gate1(F.adaptive_avg_pool2d(x, 1)))))
        t = torch.sigmoid(self.conv3(self.relu(self.conv2(self.conv1(x)))))
        return (1 - t) * a + t * x


TAPS = ("encoder1", "encoder2", "encoder3", "decoder3", "decoder2", "decoder1", "refine")


class SpikerIR(nn.Module):
    """The spiking U-Net student, built from the config spikeir records (`SpikerIRConfig`)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        d = cfg["width"]
        e1, e2, e3, d3, d2, d1 = cfg["blocks"]
        level = lambda c, n: nn.ModuleList(SpikingResidualBlock(cfg, c) for _ in range(n))  # noqa: E731
        self.patch_embed = MultiStep(conv(cfg["imageChannels"], d, 3))
        self.encoder_level1 = level(d, e1)
        self.down1_2 = nn.Sequential(*spiking_conv(cfg, d, 2 * d, 3, 2))
        self.encoder_level2 = level(2 * d, e2)
        self.down2_3 = nn.Sequential(*spiking_conv(cfg, 2 * d, 4 * d, 3, 2))
        self.encoder_level3 = level(4 * d, e3)
        self.decoder_level3 = level(4 * d, d3)
        self.up3_2 = SpikingUp(cfg, 4 * d, 2 * d)
        self.reduce_chan_level2 = nn.Sequential(*spiking_conv(cfg, 4 * d, 2 * d, 1))
        self.decoder_level2 = level(2 * d, d2)
        self.up2_1 = SpikingUp(cfg, 2 * d, d)
        self.decoder_level1 = level(2 * d, d1)
        self.refinement = RefinementBlock(2 * d)
        self.output = conv(2 * d, cfg["imageChannels"], 3)

    @staticmethod
    def _level(blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for b in blocks:
            x = b(x)
        return x

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # SpikingJelly neurons keep their membrane between calls: every forward starts fresh, as spikeir's do.
        functional.reset_net(self)
        feats: dict[str, torch.Tensor] = {}

        def tap(name: str, v: torch.Tensor) -> None:
            if name in taps:
                feats[name] = v.mean(0) if v.dim() == 5 else v

        encoded = x.unsqueeze(0).expand(self.cfg["timeSteps"], *x.shape)
        enc1 = self._level(self.encoder_level1, self.patch_embed(encoded))
        tap("encoder1", enc1)
        enc2 = self._level(self.encoder_level2, self.down1_2(enc1))
        tap("encoder2", enc2)
        enc3 = self._level(self.encoder_level3, self.down2_3(enc2))
        tap("encoder3", enc3)
        dec3 = self._level(self.decoder_level3, enc3)
        tap("decoder3", dec3)
        dec2 = self._level(self.decoder_level2, self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 2)))
        tap("decoder2", dec2)
        dec1 = self._level(self.decoder_level1, torch.cat([self.up2_1(dec2), enc1], 2))
        tap("decoder1", dec1)
        refined = self.refinement(dec1.mean(0))
        tap("refine", refined)
        return x + self.output(refined), feats


class DnCNN(nn.Module):
    """17 conv layers (batch norm folded in), output = input − predicted noise; taps `layerN` after conv N and its ReLU."""

    def __init__(self, depth: int = 17, channels: int = 64, image_channels: int = 1):
        super().__init__()
        self.layers = nn.ModuleList(
            conv(image_channels if i == 0 else channels, image_channels if i == depth - 1 else channels, 3) for i in range(depth)
        )

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] = (), output: bool = False) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        want = {int(t[len("layer"):]) - 1: t for t in taps}
        # With taps only, stop after the deepest one: the teacher's output is not needed for hints.
        last = max(want) if want and not output else len(self.layers) - 1
        feats: dict[str, torch.Tensor] = {}
        h = x
        for i, c in enumerate(self.layers[: last + 1]):
            h = c(h) if i == len(self.layers) - 1 else F.relu(c(h))
            if i in want:
                feats[want[i]] = h
        return (x - h if last == len(self.layers) - 1 else None), feats


class HintAdapter(nn.Module):
    def __init__(self, student_c: int, teacher_c: int):
        super().__init__()
        self.conv = conv(student_c, teacher_c, 1)

    def adapt(self, f: torch.Tensor, like: torch.Size) -> torch.Tensor:
        f = self.conv(f)
        while f.shape[2] < like[2]:
            f = F.interpolate(f, scale_factor=2, mode="bilinear", align_corners=False)
        while f.shape[2] > like[2]:
            f = F.avg_pool2d(f, 2)
        return f


def tap_channels(cfg: dict, tap: str) -> int:
    d = cfg["width"]
    return {"encoder1": d, "encoder2": 2 * d, "encoder3": 4 * d, "decoder3": 4 * d, "decoder2": 2 * d, "decoder1": 2 * d, "refine": 2 * d}[tap]


def fft_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over all frequencies of √(|F(ŷ − y)|² + ε), F the 2-D DFT of each H×W plane."""
    spec = torch.view_as_real(torch.fft.fft2(pred - target))
    return spec.square().sum(-1).add(FFT_LOSS_EPS).sqrt().mean()


class HKD(nn.Module):
    """L = L1(ŷ, y) + λ·L_FFT(ŷ, y) + γ·Σ_taps MSE(adapter(F_S), F_T) + β·L1(ŷ, teacher's ŷ); the teacher
    runs without autograd. With `hint_stats` (tap -> (mean, std), each [1, C, 1, 1]) F_T is standardised
    per channel: (F_T − mean) / std."""

    def __init__(
        self,
        student: SpikerIR,
        teacher: DnCNN | None,
        pairs: list[tuple[str, str]],
        lambda_fft: float = 0.1,
        gamma: float = 0.12,
        output_weight: float = 0.0,
        hint_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ):
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.pairs = pairs if teacher is not None else []
        self.lambda_fft = lambda_fft
        self.gamma = gamma if teacher is not None else 0.0
        self.output_weight = output_weight if teacher is not None else 0.0
        # Buffers, so that .to(dtype) and .to(device) carry them along.
        self.standardised = sorted((hint_stats or {}).keys())
        for tap, (mean, std) in (hint_stats or {}).items():
            self.register_buffer(f"stats_{tap}_mean", mean)
            self.register_buffer(f"stats_{tap}_std", std)
        teacher_c = teacher.layers[0].out_channels if teacher is not None else 0
        self.adapters = nn.ModuleList(HintAdapter(tap_channels(student.cfg, s), teacher_c) for s, _ in self.pairs)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        use_hints = self.gamma > 0 and bool(self.pairs)
        out, feats = self.student(x, tuple(s for s, _ in self.pairs) if use_hints else ())
        l1 = (out - y).abs().mean()
        fft = fft_loss(out, y)
        loss = l1 + fft * self.lambda_fft
        parts = {"l1": l1, "fft": fft}
        use_output = self.output_weight > 0
        if use_hints or use_output:
            with torch.no_grad():
                t_out, tf = self.teacher(x, tuple(t for _, t in self.pairs) if use_hints else (), output=use_output)
                if self.standardised:
                    tf = {t: (f - getattr(self, f"stats_{t}_mean")) / getattr(self, f"stats_{t}_std") for t, f in tf.items()}
        if use_hints:
            hint = None
            for (s, t), a in zip(self.pairs, self.adapters):
                fs = a.adapt(feats[s], tf[t].shape)
                mse = (fs - tf[t]).square().mean()
                hint = mse if hint is None else hint + mse
            loss = loss + hint * self.gamma
            parts["hint"] = hint
        if use_output:
            to_teacher = (out - t_out).abs().mean()
            loss = loss + to_teacher * self.output_weight
            parts["output"] = to_teacher
        parts["loss"] = loss
        return loss, parts


def load_named(module: nn.Module, path: Path, prefix: str = "") -> None:
    """Copies every parameter and buffer of `module` from a safetensors file by name; a missing or
    unknown name, or a shape other than the file's, is an error (PLIF's w is [1] in spikeir, [] here)."""
    tensors = load_file(str(path))
    own = dict(module.named_parameters()) | {n: b for n, b in module.named_buffers() if not n.endswith("num_batches_tracked")}
    names = {prefix + n for n in own}
    missing = sorted(names - tensors.keys())
    unknown = sorted(n for n in tensors if n.startswith(prefix) and n not in names)
    bad = [f"{prefix + n}: file {list(tensors[prefix + n].shape)} vs model {list(t.shape)}" for n, t in own.items() if prefix + n in tensors and tensors[prefix + n].numel() != t.numel()]
    if missing or unknown or bad:
        raise ValueError(f"{path}: missing {missing}, unknown {unknown}, wrong shapes {bad}")
    with torch.no_grad():
        for n, t in own.items():
            t.copy_(tensors[prefix + n].reshape(t.shape))


def build(run_dir: Path, dtype: torch.dtype = torch.float32) -> tuple[HKD, dict]:
    """The student, teacher and H-KD loss described by `run_dir/config.json`, with the weights spikeir wrote there."""
    cfg = json.loads((run_dir / "config.json").read_text())
    student = SpikerIR(cfg["student"])
    load_named(student, run_dir / "student.safetensors")
    teacher = None
    if cfg.get("teacher"):
        t = cfg["teacher"]
        teacher = DnCNN(t.get("depth", 17), t.get("channels", 64), t.get("imageChannels", 1))
        load_named(teacher, run_dir / "teacher.safetensors")
        teacher.eval().requires_grad_(False)
    pairs = [tuple(p.split(":")) for p in cfg.get("hints", [])]
    stats = None
    if cfg.get("hintNorm"):
        arrays = load_file(str(run_dir / "hintstats.safetensors"))
        stats = {n.removesuffix(".mean"): (v, arrays[n.removesuffix(".mean") + ".std"]) for n, v in arrays.items() if n.endswith(".mean")}
    hkd = HKD(student, teacher, pairs, cfg.get("lambdaFft", 0.1), cfg.get("gamma", 0.12), cfg.get("outputWeight", 0.0), stats)
    if hkd.pairs:
        load_named(hkd.adapters, run_dir / "adapters.safetensors", "adapters.")
    return hkd.to(dtype), cfg
