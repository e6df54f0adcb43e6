#!/usr/bin/python3
"""Plain PyTorch SimCLR baseline for bench/compare_pytorch.sh.

A SimCLR training loop as a typical PyTorch user writes it: torchvision ResNet-18 (1-channel conv1,
fc -> Identity) + MLP head 512-512-128, NT-Xent (temperature 0.5), SGD, PIL images through torchvision
transforms in DataLoader worker processes. Deliberately not hand-optimised: it is the baseline.

    /usr/bin/python3 bench/simclr_pytorch.py [--size 224] [--batch 32] [--steps 6] [--warmup 1]
        [--precision fp32|bf16] [--channels-last] [--threads N] [--workers 2] [--data DIR]

Measures views/s (2 augmented views per image and step) of
  - model only: the training step on a fixed synthetic batch of the same shapes;
  - end to end: the training loop over the DataLoader (decode + augment + collate + step), as the loop
    experiences it.
The last line is machine-readable:
    RESULT impl=pytorch size=... precision=... channels_last=... e2e_views_per_s=... model_views_per_s=... threads=...
"""
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class ImageFolderSSL(Dataset):
    """All images under `root` (recursive), two augmented views each; unreadable files are skipped."""

    def __init__(self, root, transform):
        self.transform = transform
        self.paths = []
        skipped = 0
        for dirpath, _, files in sorted(os.walk(root)):
            for name in sorted(files):
                if not name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    with Image.open(path) as img:
                        img.load()  # fails on truncated files
                except Exception:
                    skipped += 1
                    continue
                self.paths.append(path)
        print(f"dataset: {len(self.paths)} images under {root} ({skipped} unreadable, skipped)")

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        img = Image.open(self.paths[i]).convert("L")
        return self.transform(img), self.transform(img)


def simclr_transform(size):
    # Blur sigma range / kernel as the C++ tool's default ("xray") augmentation: sigma in [0.1, 1.5],
    # kernel radius ceil(3 * sigma_max).
    blur_kernel = 2 * math.ceil(3 * 1.5) + 1
    return T.Compose([
        T.Resize((size, size)),
        T.RandomResizedCrop(size, scale=(0.35, 1.0)),
        T.RandomRotation(20),
        T.RandomAffine(0, translate=(0.1, 0.1)),
        T.RandomHorizontalFlip(),
        T.ColorJitter(brightness=0.3, contrast=0.3),
        T.RandomApply([T.GaussianBlur(blur_kernel, sigma=(0.1, 1.5))], p=0.3),
        T.ToTensor(),
        T.Normalize(mean=[0.5], std=[0.25]),
    ])


class SimCLR(nn.Module):
    def __init__(self, proj_dim=128):
        super().__init__()
        self.encoder = torchvision.models.resnet18(num_classes=1000)
        self.encoder.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.encoder.fc = nn.Identity()
        self.head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, proj_dim))

    def forward(self, x):
        return self.head(self.encoder(x))


def nt_xent(z1, z2, temperature=0.5):
    n = z1.size(0)
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    sim = z @ z.t() / temperature
    mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(mask, float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--data", default=os.path.normpath(os.path.join(here, "..", "samples", "fracatlas", "images")))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=6, help="timed steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: PyTorch's default)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    args = p.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    bf16 = args.precision == "bf16"
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    print(f"pytorch {torch.__version__}, torchvision {torchvision.__version__}, threads {threads}, "
          f"workers {args.workers}, size {args.size}, batch {args.batch} (x2 views), precision {args.precision}, "
          f"channels_last {int(args.channels_last)}, {args.warmup} warm-up + {args.steps} timed steps")

    torch.manual_seed(0)
    model = SimCLR().to(memory_format=memory_format)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def train_step(v1, v2):
        x = torch.cat([v1, v2], dim=0).to(memory_format=memory_format)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            z = model(x)
        z = z.float()
        loss = nt_xent(z[: v1.size(0)], z[v1.size(0):], 0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    views_per_step = 2 * args.batch

    # Model only: a fixed synthetic batch of the same shapes.
    s1 = torch.randn(args.batch, 1, args.size, args.size)
    s2 = torch.randn(args.batch, 1, args.size, args.size)
    for _ in range(args.warmup):
        train_step(s1, s2)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        train_step(s1, s2)
    model_rate = views_per_step * args.steps / (time.perf_counter() - t0)
    print(f"model only: {model_rate:.1f} views/s")

    # End to end: epochs over the folder until warm-up + timed steps are done.
    dataset = ImageFolderSSL(args.data, simclr_transform(args.size))
    if len(dataset) < args.batch:
        raise SystemExit(f"need at least {args.batch} readable images, found {len(dataset)}")
    loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                        drop_last=True, persistent_workers=args.workers > 0)
    done, t0, loss = 0, None, float("nan")
    total = args.warmup + args.steps
    while done < total:
        for v1, v2 in loader:
            if done == args.warmup:
                t0 = time.perf_counter()
            loss = train_step(v1, v2)
            done += 1
            if done == total:
                break
    e2e_rate = views_per_step * args.steps / (time.perf_counter() - t0) if args.steps > 0 else float("nan")
    print(f"end to end: {e2e_rate:.1f} views/s (last loss {loss:.4f})")

    print(f"RESULT impl=pytorch size={args.size} precision={args.precision} "
          f"channels_last={int(args.channels_last)} e2e_views_per_s={e2e_rate:.2f} "
          f"model_views_per_s={model_rate:.2f} threads={threads} workers={args.workers} batch={args.batch} "
          f"steps={args.steps}")


if __name__ == "__main__":
    main()
