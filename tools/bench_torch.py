#!/usr/bin/python3
"""PyTorch peer of tools/bench.ts: the same CIFAR models, training step and
inference batch, timed on the CPU with a fixed number of threads.

Models mirror lib/models: CIFAR ResNet v1 with option-A (parameter-free)
shortcuts (akamaster/pytorch_resnet_cifar10) and the CIFAR VGG (kuangliu
variant: 3x3 convs (+BN) + ReLU, five 2x2 max-pools, one linear layer).
Without BN the convs get biases. Training step: forward in train mode,
cross-entropy, backward, SGD momentum 0.9 with weight decay 1e-4.

Run with Debian's interpreter (`/usr/bin/python3`, python3-torch 1.13):
  /usr/bin/python3 tools/bench_torch.py --model resnet20 --bn both --reps 3 --steps 5
  /usr/bin/python3 tools/bench_torch.py --serve     # JSON requests on stdin (used by bench.ts)
Threads: --threads, else NOISELAB_THREADS, else the cores this process may use.
Prints one JSON object per measurement.
"""
import argparse
import contextlib
import json
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the bench prints a notice and skips the PyTorch side
    print(json.dumps({"error": f"torch not importable: {e}"}), flush=True)
    sys.exit(3)

VGG_CFGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def conv_bn(cin, cout, stride, bn):
    conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=not bn)
    return conv, (nn.BatchNorm2d(cout) if bn else nn.Identity())


class Block(nn.Module):
    def __init__(self, cin, cout, stride, bn):
        super().__init__()
        self.c1, self.b1 = conv_bn(cin, cout, stride, bn)
        self.c2, self.b2 = conv_bn(cout, cout, 1, bn)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        s = x
        if self.stride != 1:
            s = s[:, :, ::2, ::2]
        if self.pad:
            s = F.pad(s, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(y + s)


class ResNet(nn.Module):
    def __init__(self, depth, bn, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.c1, self.b1 = conv_bn(3, 16, 1, bn)
        blocks, c = [], 16
        for stage in range(3):
            out = 16 * 2 ** stage
            for b in range(n):
                blocks.append(Block(c, out, 2 if stage > 0 and b == 0 else 1, bn))
                c = out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.b1(self.c1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class VGG(nn.Module):
    def __init__(self, depth, bn, classes=10):
        super().__init__()
        layers, c = [], 3
        for v in VGG_CFGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                conv, norm = conv_bn(c, v, 1, bn)
                layers += [conv, norm, nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def build(name, bn):
    if name.startswith("resnet"):
        return ResNet(int(name[6:]), bn)
    if name.startswith("vgg"):
        return VGG(int(name[3:]), bn)
    raise SystemExit(f"unknown model {name}")


class Runner:
    """Keeps one model + optimizer per (model, bn, layout) so repeated requests skip set-up."""

    def __init__(self, threads, channels_last):
        self.threads = threads
        self.channels_last = channels_last
        self.cache = {}

    def measure(self, model, bn, steps, infer_batches, batch=128, infer_batch=500, layout=None, bf16=False):
        """layout: "nchw" | "channels_last" (default: the --channels-last flag); bf16: forward passes under
        torch.autocast("cpu", dtype=torch.bfloat16) (PyTorch's CPU mixed precision; fp32 weights, SGD in fp32)."""
        channels_last = self.channels_last if layout is None else layout == "channels_last"
        key = (model, bn, channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
        if key not in self.cache:
            torch.manual_seed(0)
            m = build(model, bn).to(memory_format=fmt)
            opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
            x = torch.randn(batch, 3, 32, 32).to(memory_format=fmt)
            y = torch.randint(0, 10, (batch,))
            xi = torch.randn(infer_batch, 3, 32, 32).to(memory_format=fmt)
            self.cache[key] = (m, opt, x, y, xi)
            warm = 2
        else:
            warm = 1
        m, opt, x, y, xi = self.cache[key]

        def step():
            opt.zero_grad(set_to_none=True)
            with cast():
                out = m(x)
                loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            return loss.item()

        m.train()
        for _ in range(warm):
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        train_s = time.perf_counter() - t0
        m.eval()
        with torch.inference_mode(), cast():
            m(xi)
            t0 = time.perf_counter()
            for _ in range(infer_batches):
                m(xi)
            infer_s = time.perf_counter() - t0
        return {
            "model": model,
            "bn": bn,
            "side": "pytorch",
            "train_img_s": steps * batch / train_s,
            "infer_img_s": infer_batches * infer_batch / infer_s,
            "backend": f"pytorch {torch.__version__} cpu, {self.threads} threads, "
            + ("channels_last" if channels_last else "NCHW")
            + (" + bf16 autocast" if bf16 else ""),
            "setting": ("channels_last" if channels_last else "nchw") + ("-bf16" if bf16 else ""),
            "threads": self.threads,
        }


def default_threads():
    env = os.environ.get("NOISELAB_THREADS")
    if env:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet20", help="comma-separated model names")
    ap.add_argument("--bn", default="both", choices=["true", "false", "both"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--infer-batches", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--channels-last", action="store_true", help="use channels_last memory format")
    ap.add_argument("--serve", action="store_true", help="read JSON requests from stdin, one per line")
    a = ap.parse_args()
    threads = a.threads or default_threads()
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    r = Runner(threads, a.channels_last)
    if a.serve:
        print(json.dumps({"ready": True, "torch": torch.__version__, "threads": threads}), flush=True)
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            q = json.loads(line)
            if q.get("quit"):
                break
            res = r.measure(q["model"], bool(q["bn"]), int(q["steps"]), int(q["infer_batches"]),
                            int(q.get("batch", 128)), int(q.get("infer_batch", 500)),
                            q.get("layout"), bool(q.get("bf16", False)))
            print(json.dumps(res), flush=True)
        return
    bns = [True, False] if a.bn == "both" else [a.bn == "true"]
    for model in a.model.split(","):
        for bn in bns:
            for _ in range(a.reps):
                print(json.dumps(r.measure(model, bn, a.steps, a.infer_batches)), flush=True)


if __name__ == "__main__":
    main()
