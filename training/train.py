"""PGFA training: end-to-end skeleton-text contrastive training (paper §III-B, eq. 5) and the
two-stage baseline of Table V (cross-entropy pre-training, frozen encoder, then psi aligned).

``train(recipe, split_name, seed, out_dir)`` trains on the SEEN classes of the split only
(model selection never sees unseen data: the model after the last of a fixed number of
epochs is saved). Per epoch it appends a line to ``log.jsonl`` and writes a resumable
``state.pt``; at the end it writes ``model.safetensors`` (pgfa_models checkpoint) and
``run.json``. Under ``torchrun`` (WORLD_SIZE > 1) it runs PyTorch DDP (gloo on CPU, NCCL on
CUDA) with a DistributedSampler; only rank 0 writes.

Determinism: the shuffling, the augmentation and the global torch RNG (dropout) are
re-seeded from ``(seed, epoch)`` at the start of every epoch, so a resumed run follows the
same path as an uninterrupted one.
"""
from __future__ import annotations

import io
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pgfa_models.checkpoint import CheckpointMeta, save_checkpoint
from pgfa_models.sysinfo import machine_info
from pgfa_models.config import from_dict, load_yaml, to_dict
from pgfa_models.fileio import atomic_write_bytes
from pgfa_models.loss import TAU_MAX, TAU_MIN, kl_contrastive_loss
from pgfa_models.model import EncoderConfig, SkeletonTextModel
from pgfa_models.preprocess import PreprocessConfig

from .augment import AugmentConfig, augment_batch
from .datasets import SMIE_SOURCE, ClipSet, load_dataset, smie_paths
from .descriptions import KINDS, class_names, load_descriptions

FRAMEWORKS = ("end_to_end", "two_stage")
CATALOG_KINDS = ("paraphrases", "ensemble")  # class-catalogue text kinds (multi-source protocols)


# ----------------------------------------------------------------------------- recipe
@dataclass
class DataConfig:
    root: Optional[str] = None          # dataset path; UTD-MHAD defaults to ../shared/data/utd-mhad
    num_person: int = 1                 # body slots M (1 for single-body data; recorded in the checkpoint)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)


@dataclass
class TextConfig:
    model: str = "all-MiniLM-L6-v2"    # or all-mpnet-base-v2 (paper)
    descriptions: str = "complete"      # name | complete | skeleton | name+complete
    # multi-source only: each training window's target is ONE of its class's texts drawn at random
    # (text-side augmentation: the projection must fit the spread of sentences, not one point per
    # class); prediction and the live label set keep the ensemble mean
    sample: bool = False
    # multi-source only: subtract the training classes' mean text feature from every text feature
    # (stored in the checkpoint as extra["text_center"]; the live label set applies the same)
    center: bool = False
    # multi-source only: weight of an auxiliary loss that also aligns each window with the single
    # sentences of its class's skeleton-focused description ("both hands rise above the head"):
    # statements about body parts that several classes share, so that a new sentence built from
    # them lands where its parts were learnt (0 = off)
    sentence_aux: float = 0.0


@dataclass
class OptimConfig:
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    batch_size: int = 128
    epochs: int = 50
    warmup_epochs: int = 5
    schedule: str = "cosine"            # after warm-up: cosine (to 0) | constant


@dataclass
class TwoStageConfig:
    align_epochs: int = 50              # psi + tau trained on frozen features (cheap)
    align_lr: float = 0.05
    align_batch_size: int = 128


@dataclass
class CorpusConfig:
    """Multi-source training (protocol names as --split; see training/multi.py)."""

    roots: dict = field(default_factory=dict)   # source -> unpacked folder (default: shared data)
    window_frames: int = 45                     # the live node's window geometry
    stride_frames: int = 10
    val_groups: int = 1                         # subjects per training source held out for
                                                # validation and temperature calibration (0 = none)
    val_seed: int = -1                          # which subjects: -1 = the training seed; fixed, runs of
                                                # several seeds share one split (a seed ensemble's validation)


@dataclass
class Recipe:
    framework: str = "end_to_end"
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    two_stage: TwoStageConfig = field(default_factory=TwoStageConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    init_tau: float = 0.07
    num_threads: int = 0                # torch CPU threads (0 = torch default)

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {FRAMEWORKS}, got {self.framework!r}")
        if self.text.descriptions not in KINDS + CATALOG_KINDS:
            raise ValueError(f"text.descriptions must be one of {KINDS}, got {self.text.descriptions!r}")
        if self.encoder.num_person != self.data.num_person:
            self.encoder = EncoderConfig(**{**to_dict(self.encoder), "num_person": self.data.num_person})


def load_recipe(path: str | Path | None, overrides: dict[str, Any] | None = None) -> Recipe:
    """Recipe from YAML (or defaults when ``path`` is None), then dotted overrides
    (``{"optim.epochs": 15}``)."""
    data: dict[str, Any] = {}
    if path is not None:
        data = to_dict(load_yaml(Recipe, path))
    for key, value in (overrides or {}).items():
        d = data
        parts = key.split(".")
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = value
    return from_dict(Recipe, data, str(path or "recipe"))


# ----------------------------------------------------------------------------- splits
def resolve_split(name: str):
    """A split by name; ``<dataset>/all`` means every class seen (no unseen classes), used for
    the deployable default checkpoint."""
    from .splits import Split, get_split, load_splits

    if name.endswith("/all"):
        ds = name[: -len("/all")]
        for s in load_splits().values():
            if s.dataset == ds:
                return Split(name, ds, s.num_classes, ())
        get_split(name)  # raises the clear "unknown split" error
    return get_split(name)


# ----------------------------------------------------------------------------- helpers
def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int, salt: int = 0) -> int:
    return (seed * 100_003 + epoch * 101 + salt) % (2**31 - 1)


def lr_at(step: int, steps_per_epoch: int, o: OptimConfig) -> float:
    """Linear warm-up over ``warmup_epochs`` then cosine decay to 0 (or constant)."""
    warm = o.warmup_epochs * steps_per_epoch
    total = max(1, o.epochs * steps_per_epoch)
    if warm > 0 and step < warm:
        return o.lr * (step + 1) / warm
    if o.schedule == "constant":
        return o.lr
    if o.schedule != "cosine":
        raise ValueError(f"unknown schedule {o.schedule!r}")
    progress = (step - warm) / max(1, total - warm)
    return 0.5 * o.lr * (1 + math.cos(math.pi * min(1.0, progress)))


def pick_device(device: str | None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_dist(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


class _WithTau(nn.Module):
    """forward -> (features, tau), so DDP sees the temperature inside forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model(x), self.model.tau


class _CEModel(nn.Module):
    def __init__(self, encoder: nn.Module, out_dim: int, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(out_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def _atomic_torch_save(obj: Any, path: Path) -> None:
    """A resumable training state (trusted: written and read only by this workshop)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def preprocess_record(recipe: Recipe) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the checkpoint records about preprocessing: ``(preprocess, extra)``. Clips that went
    through preprocess_clip record its options; SMIE arrays (preprocessed by SMIE's pipeline,
    never by preprocess_clip) record none, and say so, instead of options they never had."""
    if smie_paths(recipe.data.root) is not None:
        return {}, {"preprocess_applied": False, "preprocess_source": SMIE_SOURCE}
    return to_dict(recipe.data.preprocess), {"preprocess_applied": True, "preprocess_source": "preprocess_clip"}


def encode_texts(model_name: str, texts: list[str]) -> np.ndarray:
    from pgfa_models.text import TextEncoder

    return TextEncoder(model_name).encode(texts)


# ----------------------------------------------------------------------------- core loop
def _run_epochs(module: nn.Module, params: list, loss_fn, x_all: torch.Tensor, y_all: torch.Tensor,
                o: OptimConfig, aug: AugmentConfig, seed: int, device: torch.device, dist_: Dist,
                out: Path | None, tag: str, log_extra, progress: bool,
                epoch_subset=None) -> list[dict]:
    """Generic SGD loop with warm-up/cosine LR, per-epoch log line and resumable state.

    ``epoch_subset(epoch) -> indices`` draws the samples of each epoch (e.g. one random window
    per trial); it must return the same number of indices every epoch.
    """
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    opt = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                          nesterov=o.nesterov)
    ds = TensorDataset(x_all, y_all)
    if epoch_subset is not None:  # the size only: each epoch draws its own samples below
        n0 = len(epoch_subset(0))
        ds = TensorDataset(x_all[:n0], y_all[:n0])
    n = len(ds)
    per_rank = math.ceil(n / dist_.world)
    bs = min(o.batch_size, per_rank)
    drop_last = per_rank % bs == 1  # a batch of one breaks BatchNorm and the contrastive loss
    steps = per_rank // bs if drop_last else math.ceil(per_rank / bs)
    state_path = out / f"state_{tag}.pt" if out is not None else None
    log_path = out / "log.jsonl" if out is not None else None
    start = 0
    history: list[dict] = []
    if state_path is not None and state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        (module.module if hasattr(module, "module") else module).load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        start = int(st["epoch"])
        history = json.loads(st.get("history", "[]"))
        if dist_.main and progress:
            print(f"[{tag}] resumed from {state_path} after epoch {start}", file=sys.stderr)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    for epoch in range(start, o.epochs):
        torch.manual_seed(_epoch_seed(seed, epoch, 1))
        gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch, 2))
        if epoch_subset is not None:
            idx = torch.as_tensor(epoch_subset(epoch), dtype=torch.long)
            ds = TensorDataset(x_all[idx], y_all[idx])
        if dist_.world > 1:
            sampler = DistributedSampler(ds, num_replicas=dist_.world, rank=dist_.rank, shuffle=True,
                                         seed=seed, drop_last=False)
            sampler.set_epoch(epoch)
            loader = DataLoader(ds, batch_size=bs, sampler=sampler, drop_last=drop_last)
        else:
            loader = DataLoader(ds, batch_size=bs, shuffle=True, generator=gen, drop_last=drop_last)
        module.train()
        t0 = time.time()
        tot_loss, tot_n, correct = 0.0, 0, 0
        it = loader
        if progress and dist_.main and tqdm is not None:
            it = tqdm(loader, desc=f"[{tag}] epoch {epoch + 1}/{o.epochs}", leave=False, file=sys.stderr)
        for i, (xb, yb) in enumerate(it):
            step = epoch * steps + i
            lr = lr_at(step, steps, o)
            for g in opt.param_groups:
                g["lr"] = lr
            xb = augment_batch(xb, aug, gen).to(device, non_blocking=True)
            yb = yb.to(device, non_blocking=True)
            loss, n_correct = loss_fn(module, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += float(loss.detach()) * len(yb)
            tot_n += len(yb)
            correct += int(n_correct)
        rec = {"stage": tag, "epoch": epoch + 1, "loss": tot_loss / max(1, tot_n),
               "train_acc_seen": correct / max(1, tot_n), "lr": lr, "seconds": round(time.time() - t0, 2),
               "samples": tot_n * dist_.world}
        rec.update(log_extra())
        history.append(rec)
        if dist_.main:
            if progress:
                print(json.dumps(rec), file=sys.stderr)
            if log_path is not None:
                with open(log_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
            if state_path is not None:
                base = module.module if hasattr(module, "module") else module
                _atomic_torch_save({"model": base.state_dict(), "optimizer": opt.state_dict(),
                                    "epoch": epoch + 1, "history": json.dumps(history)}, state_path)
    return history


def sentence_aux_loss(sentences: torch.Tensor, targets: torch.Tensor, weight: float):
    """``(v, labels, tau) -> weight * CE``: each window against every training sentence
    (``sentences`` (S, D) normalised), the target spread evenly over its class's sentences
    (``targets`` (C, S), rows summing to 1)."""
    def fn(v, yb, tau):
        logits = F.normalize(v, dim=-1) @ sentences.t() / tau.clamp(TAU_MIN, TAU_MAX)
        return weight * -(targets[yb] * F.log_softmax(logits, dim=1)).sum(1).mean()
    return fn


def _contrastive_step(text_feats: torch.Tensor, aux=None):
    def fn(module, xb, yb):
        v, tau = module(xb)
        loss = kl_contrastive_loss(v, text_feats[yb], yb, tau)
        if aux is not None:
            loss = loss + aux(v, yb, tau)
        with torch.no_grad():
            pred = (F.normalize(v, dim=-1) @ text_feats.t()).argmax(1)
        return loss, (pred == yb).sum()
    return fn


def _sampled_text_step(text_sets: list[np.ndarray], text_mean: torch.Tensor, aux=None):
    """Eq. (5) with the text feature of each window drawn from its class's texts (see
    ``TextConfig.sample``); the accuracy shown is against the class means."""
    counts = torch.tensor([len(t) for t in text_sets])
    offsets = torch.cumsum(counts, 0) - counts
    bank = torch.from_numpy(np.concatenate(text_sets)).to(text_mean)

    def fn(module, xb, yb):
        v, tau = module(xb)
        y = yb.cpu()
        pick = offsets[y] + (torch.rand(len(y)) * counts[y]).long().clamp_max(counts[y] - 1)
        loss = kl_contrastive_loss(v, bank[pick.to(bank.device)], yb, tau)
        if aux is not None:
            loss = loss + aux(v, yb, tau)
        with torch.no_grad():
            pred = (F.normalize(v, dim=-1) @ text_mean.t()).argmax(1)
        return loss, (pred == yb).sum()
    return fn


def _ce_step(module, xb, yb):
    logits = module(xb)
    loss = F.cross_entropy(logits, yb)
    return loss, (logits.argmax(1) == yb).sum()


# ----------------------------------------------------------------------------- public
def train(recipe: Recipe, split_name: str, seed: int, out_dir: str | Path | None,
          device: str | None = None, clips: ClipSet | None = None, progress: bool = True,
          command: str | None = None) -> dict[str, Any]:
    """Train on the seen classes of ``split_name``; return a summary dict (and write files to
    ``out_dir`` on rank 0). ``clips`` may pass pre-loaded data (tests). A multi-source
    protocol name (``config/protocols.yaml``) trains with :func:`training.multi.train_multi`."""
    from .protocols import is_protocol

    if is_protocol(split_name):
        from .multi import train_multi

        return train_multi(recipe, split_name, seed, out_dir, device=device, progress=progress, command=command)
    if recipe.text.sample or recipe.text.center or recipe.text.sentence_aux:
        raise ValueError("text.sample, text.center and text.sentence_aux are implemented for the multi-source protocols "
                         "(config/protocols.yaml)")
    t_start = time.time()
    if recipe.num_threads > 0:
        torch.set_num_threads(recipe.num_threads)
    dev = pick_device(device)
    dist_ = init_dist(dev)
    if dev.type == "cuda" and dist_.world > 1:
        dev = torch.device("cuda", dist_.local_rank)
        torch.cuda.set_device(dev)
    set_seed(seed)
    split = resolve_split(split_name)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and dist_.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.json").write_text(json.dumps(to_dict(recipe), indent=2))

    if clips is None:
        clips = load_dataset(split.dataset, recipe.data.root, recipe.data.preprocess, recipe.data.num_person)
    if clips.x.shape[-1] != recipe.data.num_person:
        raise ValueError(f"clips have M={clips.x.shape[-1]} body slots, recipe wants {recipe.data.num_person}")
    seen = list(split.seen)
    train_set = clips.subset(seen)
    if len(train_set) == 0:
        raise ValueError(f"{split_name}: no training clips for the seen classes")
    remap = {c: i for i, c in enumerate(seen)}
    y_local = torch.as_tensor([remap[int(c)] for c in train_set.y], dtype=torch.long)
    x_all = torch.from_numpy(np.ascontiguousarray(train_set.x))

    names_all = class_names(split.dataset, split.num_classes)
    texts = load_descriptions(split.dataset, recipe.text.descriptions, seen, split.num_classes)
    text_np = encode_texts(recipe.text.model, texts)
    text_feats = torch.from_numpy(text_np).to(dev)
    text_dim = int(text_np.shape[1])

    model = SkeletonTextModel(recipe.encoder, text_dim, init_tau=recipe.init_tau).to(dev)

    def wrap(m: nn.Module) -> nn.Module:
        if dist_.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            return DDP(m, device_ids=[dev.index] if dev.type == "cuda" else None)
        return m

    if recipe.framework == "end_to_end":
        module = wrap(_WithTau(model))
        history = _run_epochs(module, list(model.parameters()), _contrastive_step(text_feats), x_all, y_local,
                              recipe.optim, recipe.augment, seed, dev, dist_, out, "e2e",
                              lambda: {"tau": float(model.tau.detach())}, progress)
    else:
        # Stage 1: encoder + linear classifier with cross-entropy on the seen classes.
        ce = _CEModel(model.encoder, recipe.encoder.out_dim, len(seen)).to(dev)
        history = _run_epochs(wrap(ce), list(ce.parameters()), _ce_step, x_all, y_local, recipe.optim,
                              recipe.augment, seed, dev, dist_, out, "ce", lambda: {}, progress)
        # Stage 2: freeze the encoder (eval mode), pre-extract features, train psi + tau with eq. (5).
        model.encoder.eval()
        for p in model.encoder.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            feats = torch.cat([model.encoder(x_all[i:i + 256].to(dev)).cpu() for i in range(0, len(x_all), 256)])
        head = _WithTau(_Head(model))
        o2 = OptimConfig(lr=recipe.two_stage.align_lr, momentum=recipe.optim.momentum,
                         weight_decay=recipe.optim.weight_decay, batch_size=recipe.two_stage.align_batch_size,
                         epochs=recipe.two_stage.align_epochs, warmup_epochs=min(recipe.optim.warmup_epochs,
                                                                                 recipe.two_stage.align_epochs),
                         schedule=recipe.optim.schedule)
        params = list(model.psi.parameters()) + [model.log_tau]
        history += _run_epochs(wrap(head), params, _contrastive_step(text_feats), feats, y_local, o2,
                               AugmentConfig(), seed, dev, dist_, out, "align",
                               lambda: {"tau": float(model.tau.detach())}, progress)
        for p in model.encoder.parameters():
            p.requires_grad_(True)

    summary = {"split": split_name, "seed": seed, "framework": recipe.framework,
               "train_clips": len(train_set), "seen_classes": seen,
               "final_loss": history[-1]["loss"] if history else None,
               "first_loss": history[0]["loss"] if history else None,
               "wall_s": round(time.time() - t_start, 1),
               "epoch_seconds_total": round(sum(h["seconds"] for h in history), 1), "device": str(dev), "world_size": dist_.world,
               "machine": machine_info(), "command": command, "history": history}
    if out is not None and dist_.main:
        labels = [names_all[c] for c in seen]
        preprocess_done, preprocess_note = preprocess_record(recipe)
        meta = CheckpointMeta(
            text_model=recipe.text.model, text_dim=text_dim, labels=labels, encoder=recipe.encoder,
            preprocess=preprocess_done, descriptions=dict(zip(labels, texts)),
            num_person=recipe.data.num_person,
            extra={"dataset": split.dataset, "split": split_name, "seed": seed, **preprocess_note,
                   "description_kind": recipe.text.descriptions, "framework": recipe.framework,
                   "epochs": recipe.optim.epochs, "command": command, "class_ids": seen,
                   "recipe": to_dict(recipe)})
        save_checkpoint(out / "model.safetensors", model.cpu(), meta)
        model.to(dev)
        (out / "run.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    if dist_.world > 1:
        import torch.distributed as dist

        dist.barrier()
    summary["model"] = model
    return summary


class _Head(nn.Module):
    """psi applied to pre-extracted encoder features, with tau (two-stage, stage 2)."""

    def __init__(self, model: SkeletonTextModel):
        super().__init__()
        self.psi = model.psi
        self.log_tau = model.log_tau

    @property
    def tau(self) -> torch.Tensor:
        return self.log_tau.exp()

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.psi(f)
