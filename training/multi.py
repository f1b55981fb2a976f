"""Multi-source training and evaluation on the protocols of ``config/protocols.yaml`` (issue 10).

``train_multi(recipe, protocol, seed, out)``:

1. windows of every training source, cut and preprocessed as the live node does
   (:mod:`training.corpus`), restricted to the classes the protocol allows (concept rule of
   :mod:`training.protocols`);
2. ``recipe.corpus.val_groups`` subjects of each training source held out (chosen by the seed)
   for validation: seen-class accuracy and the calibrated temperature, the only data any choice
   looks at;
3. one training class per distinct concept set; its text feature is the normalised mean of the
   normalised embeddings of all its member classes' texts of the recipe's kind (a prompt
   ensemble when the kind is ``ensemble``);
4. the eq. (5) loop of :mod:`training.train`, each epoch one random live-length window of
   every trial;
5. the checkpoint, then every evaluation task of the protocol (window and whole-trial accuracy
   per prediction mode, an upper-body-only variant, hub statistics, the nearest-neighbour
   ceiling), written to ``eval.json``.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from pgfa_models import assignment
from pgfa_models.alignment import l2_normalise
from pgfa_models.calibration import fit_temperature
from pgfa_models.checkpoint import CheckpointMeta, save_checkpoint
from pgfa_models.config import to_dict
from pgfa_models.evaluation import extract_features, hub_stats, predict_mode
from pgfa_models.model import SkeletonTextModel
from pgfa_models.recognition import center_text, ensemble_features
from pgfa_models.sysinfo import machine_info

from .augment import replace_lower_body
from .corpus import WindowSet, concat, load_windows, one_window_per_trial, trial_features
from .protocols import Resolved, Task, check_filter_fields, get_protocol, matches, resolve, training_classes

EVAL_MODES = ("text", "transductive", "balanced", "transductive_balanced", "bank")


def kind_texts(cls, kind: str) -> list[str]:
    """A catalogue class's non-blank texts of one kind (``name``, ``complete``, ``skeleton``, ``ensemble``...)."""
    return [t for t in cls.texts(kind) if t.strip()]


def _select(ws: WindowSet, source: str, labels: Sequence[int], flt: dict) -> WindowSet:
    keep_trial = np.array([matches(m, flt) for m in ws.trial_meta], dtype=bool)
    mask = (ws.source == source) & np.isin(ws.label, np.asarray(labels, np.int64)) & keep_trial[ws.trial]
    return ws.where(mask)


def validation_seed(corpus, seed: int) -> int:
    """The seed that picks the validation subjects: the corpus's ``val_seed``, else the training seed."""
    return int(seed) if corpus.val_seed < 0 else int(corpus.val_seed)


def split_validation(ws: WindowSet, per_source: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Mask of validation windows: ``per_source`` subjects of each source (needs >= 3 subjects)."""
    rng = np.random.default_rng(seed + 7919)
    val_groups: list[str] = []
    for s in dict.fromkeys(ws.source.tolist()):
        groups = sorted(set(ws.group[ws.source == s].tolist()))
        if per_source > 0 and len(groups) >= 3:
            val_groups += [groups[i] for i in rng.permutation(len(groups))[:per_source]]
    return np.isin(ws.group, val_groups), val_groups


def _texts_of(catalog, kind: str, members: Sequence[tuple[str, int]]) -> list[str]:
    texts: list[str] = []
    for s, label in members:
        cls = {c.label: c for c in catalog.classes(s)}[label]
        texts += kind_texts(cls, kind)
    return list(dict.fromkeys(texts))


def class_sentences(catalog, members: Sequence[Sequence[tuple[str, int]]]) -> tuple[list[str], np.ndarray]:
    """The single sentences of every training class's skeleton-focused descriptions, each once,
    and per class a target distribution spread evenly over its own sentences ``(C, S)``; a
    sentence two classes share belongs to both."""
    per_class = [[t.strip() for d in _texts_of(catalog, "skeleton", m) for t in re.split(r"(?<=[.!?])\s+", d)
                  if t.strip()] for m in members]
    sentences = list(dict.fromkeys(t for ts in per_class for t in ts))
    index = {t: i for i, t in enumerate(sentences)}
    targets = np.zeros((len(members), len(sentences)), np.float32)
    for c, ts in enumerate(per_class):
        if not ts:
            raise ValueError(f"training class {c} has no skeleton description to take sentences from")
        for t in set(ts):
            targets[c, index[t]] = 1.0
    return sentences, targets / targets.sum(1, keepdims=True)


def _class_name(catalog, concepts: Sequence[str]) -> str:
    return " / ".join(catalog.concept(c).name for c in concepts)


def class_text_features(catalog, kind: str, members: Sequence[Sequence[tuple[str, int]]], encode,
                        center=None) -> np.ndarray:
    """Text feature of each training class (its members' texts of ``kind``), as the checkpoint holds it."""
    return center_text(ensemble_features(encode, [_texts_of(catalog, kind, m) for m in members]), center)


def run_training_set(run: Path, recipe, meta, resolved: Resolved, catalog, cache: bool = True):
    """``(windows, labels, names, members, val_mask, val_groups)`` of the finished run ``run``, split
    as its training split them; refuses a catalogue whose classes no longer match the checkpoint's."""
    ws, y, names, members = build_training_set(recipe, resolved, catalog, cache)
    if names != list(meta.labels):
        raise ValueError(f"{run}: the catalogue's training classes no longer match the checkpoint's labels")
    val_mask, val_groups = split_validation(ws, recipe.corpus.val_groups,
                                            validation_seed(recipe.corpus, int(meta.extra["seed"])))
    return ws, y, names, members, val_mask, val_groups


def build_training_set(recipe, resolved: Resolved, catalog, cache: bool = True, progress: bool = False):
    """(windows, class index per window, class names, member lists) of the training sources."""
    p = resolved.protocol
    c = recipe.corpus
    classes = training_classes(resolved, catalog)
    index = {m: k for k, (_, members) in enumerate(classes) for m in members}
    parts = []
    for s in p.train:
        ws = load_windows(s, c.roots.get(s), recipe.data.preprocess, c.window_frames, c.stride_frames,
                          cache=cache, progress=progress)
        parts.append(_select(ws, s, resolved.train_labels[s], p.train_filter))
    ws = concat(parts)
    check_filter_fields(ws.trial_meta, p.train_filter, f"{p.name} train_filter")
    y = np.array([index[(s, int(l))] for s, l in zip(ws.source.tolist(), ws.label.tolist())], dtype=np.int64)
    names = [_class_name(catalog, concepts) for concepts, _ in classes]
    return ws, y, names, [members for _, members in classes]


def train_multi(recipe, protocol_name: str, seed: int, out_dir: str | Path | None, device: str | None = None,
                progress: bool = True, command: str | None = None, catalog=None,
                evaluate_after: bool = True, cache: bool = True) -> dict[str, Any]:
    """Train one model on a protocol's training sources; evaluate its tasks; return a summary."""
    from .train import _contrastive_step, _run_epochs, _sampled_text_step, _WithTau, _epoch_seed, encode_texts, \
        init_dist, pick_device, sentence_aux_loss, set_seed

    if recipe.framework != "end_to_end":
        raise ValueError("multi-source protocols train end to end (framework: end_to_end)")
    if recipe.data.num_person != 1:
        raise ValueError("multi-source protocols are single-body (data.num_person: 1)")
    if not recipe.text.sentence_aux >= 0:
        raise ValueError(f"text.sentence_aux must be >= 0, got {recipe.text.sentence_aux}")
    t0 = time.time()
    if recipe.num_threads > 0:
        torch.set_num_threads(recipe.num_threads)
    dev = pick_device(device)
    dist_ = init_dist(dev)
    set_seed(seed)
    if catalog is None:
        from .catalog import load_catalog

        catalog = load_catalog()
    protocol = get_protocol(protocol_name)
    resolved = resolve(protocol, catalog)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and dist_.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.json").write_text(json.dumps(to_dict(recipe), indent=2))

    ws, y, names, members = build_training_set(recipe, resolved, catalog, cache, progress)
    val_mask, val_groups = split_validation(ws, recipe.corpus.val_groups, validation_seed(recipe.corpus, seed))
    train_idx = np.flatnonzero(~val_mask)
    train_ws = ws.take(train_idx)
    if len(train_ws) < 2:
        raise ValueError(f"{protocol_name}: {len(train_ws)} training windows after the concept rule and validation")
    kind = recipe.text.descriptions
    texts = [_texts_of(catalog, kind, m) for m in members]
    encode = lambda t: encode_texts(recipe.text.model, t)  # noqa: E731
    # every training text embedded once: the class means and the sampled targets share them
    uniq = list(dict.fromkeys(t for ts in texts for t in ts))
    emb = dict(zip(uniq, l2_normalise(np.asarray(encode(uniq), np.float32))))
    text_np = ensemble_features(lambda ts: np.stack([emb[t] for t in ts]), texts)
    center = text_np.astype(np.float64).mean(0) if recipe.text.center else None
    text_np = center_text(text_np, center)
    text_feats = torch.from_numpy(text_np).to(dev)
    model = SkeletonTextModel(recipe.encoder, int(text_np.shape[1]), init_tau=recipe.init_tau).to(dev)
    module = _WithTau(model)
    if dist_.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        module = DDP(module)
    x_all = torch.from_numpy(np.ascontiguousarray(train_ws.x))
    y_all = torch.from_numpy(y[train_idx])

    def epoch_subset(epoch: int) -> np.ndarray:
        return one_window_per_trial(train_ws, np.random.default_rng(_epoch_seed(seed, epoch, 3)))

    if progress and dist_.main:
        print(f"[multi] {protocol_name}: {len(train_ws)} windows of {len(np.unique(train_ws.trial))} trials, "
              f"{len(names)} classes; validation {int(val_mask.sum())} windows of {val_groups}", file=sys.stderr)
    aux = None
    if recipe.text.sentence_aux > 0:
        sent, targets = class_sentences(catalog, members)
        if progress and dist_.main:
            print(f"[multi] sentence_aux {recipe.text.sentence_aux:g}: {len(sent)} sentences", file=sys.stderr)
        sent_np = center_text(l2_normalise(np.asarray(encode(sent), np.float32)), center)
        aux = sentence_aux_loss(torch.from_numpy(sent_np).to(text_feats), torch.from_numpy(targets).to(text_feats),
                                float(recipe.text.sentence_aux))
    if recipe.text.sample:
        step = _sampled_text_step([center_text(np.stack([emb[t] for t in dict.fromkeys(ts)]), center) for ts in texts],
                                  text_feats, aux)
    else:
        step = _contrastive_step(text_feats, aux)
    history = _run_epochs(module, list(model.parameters()), step, x_all, y_all,
                          recipe.optim, recipe.augment, seed, dev, dist_, out, "e2e",
                          lambda: {"tau": float(model.tau.detach())}, progress, epoch_subset=epoch_subset)
    model = model.cpu().eval()
    calibration, seen = validate(model, ws.where(val_mask), y[val_mask], val_groups, text_np, names, resolved, seed)
    summary = {"protocol": protocol_name, "seed": seed, "train_windows": int(len(train_ws)),
               "train_trials": int(len(np.unique(train_ws.trial))),
               "train_groups": sorted(set(train_ws.group.tolist())), "classes": names,
               "excluded_concepts": list(resolved.excluded_concepts), "validation": calibration,
               "final_tau": float(model.tau.detach()), "first_loss": history[0]["loss"] if history else None,
               "final_loss": history[-1]["loss"] if history else None,
               "epoch_seconds": [h["seconds"] for h in history],
               "wall_train_s": round(time.time() - t0, 1), "device": str(dev), "machine": machine_info(),
               "command": command}
    if out is not None and dist_.main:
        meta = CheckpointMeta(
            text_model=recipe.text.model, text_dim=int(text_np.shape[1]), labels=names, encoder=recipe.encoder,
            preprocess=to_dict(recipe.data.preprocess), descriptions={n: t[0] for n, t in zip(names, texts)},
            num_person=1,
            extra={"dataset": "+".join(protocol.train), "split": protocol_name, "seed": seed,
                   "description_kind": kind, "framework": recipe.framework, "epochs": recipe.optim.epochs,
                   "command": command, "class_members": [[list(m) for m in ms] for ms in members],
                   "class_texts": texts, "calibration": calibration, "recipe": to_dict(recipe),
                   **({"text_center": [float(v) for v in center]} if center is not None else {}),
                   "window": {"frames": recipe.corpus.window_frames, "stride": recipe.corpus.stride_frames}})
        save_checkpoint(out / "model.safetensors", model, meta)
    if evaluate_after and resolved.tasks:
        summary["tasks"] = evaluate_tasks(model, recipe, resolved, catalog, encode, cache=cache, center=center,
                                          seen=seen)
    if out is not None and dist_.main:
        (out / "eval.json").write_text(json.dumps(summary, indent=2))
    summary["model"] = model
    return summary


def _mode_scores(mode: str, feats: np.ndarray, text: np.ndarray, names: list[str], labels: np.ndarray,
                 trial: np.ndarray) -> dict[str, Any]:
    pred = predict_mode(mode, feats, text, names).pred
    counts_pred = np.bincount(pred, minlength=len(names))
    counts_true = np.bincount(labels, minlength=len(names))
    res = {"window_acc": float((pred == labels).mean()), "n_windows": int(len(labels)),
           "hubs": hub_stats(counts_pred, counts_true, names),
           "predicted": counts_pred.tolist(), "true": counts_true.tolist()}
    uniq, tf = trial_features(feats, trial)
    _, first = np.unique(trial, return_index=True)
    tpred = predict_mode(mode, tf, text, names).pred
    res["trial_acc"] = float((tpred == labels[first]).mean())
    res["n_trials"] = int(len(uniq))
    return res


def validate(model: nn.Module, val: WindowSet, y_val: np.ndarray, val_groups: list[str], text_np: np.ndarray,
             names: Sequence[str], resolved: Resolved, seed: int):
    """Calibrated temperature, seen-class accuracy and every mode on the held-out subjects of the
    training sources. Returns (calibration dict or None, (features, labels, text) of those windows
    for the generalised evaluation, or None)."""
    if len(val) == 0:
        return None, None
    vf = extract_features(model, val.x)
    cal = fit_temperature(vf @ text_np.T, y_val)
    _, tf = trial_features(vf, val.trial)
    _, first = np.unique(val.trial, return_index=True)
    calibration = {**cal.to_dict(), "groups": val_groups,
                   "trial_accuracy": float(((tf @ text_np.T).argmax(1) == y_val[first]).mean())}
    if resolved.tasks:
        calibration["modes"] = validation_modes(vf, y_val, val.trial, text_np, names,
                                                [len(t.labels) for t in resolved.tasks], seed=seed)
    return calibration, (vf, y_val, text_np)


MARGINS = tuple(round(0.02 * i, 2) for i in range(26))  # 0 .. 0.5 in cosine units


def generalized_curve(seen_feats: np.ndarray, seen_labels: np.ndarray, seen_text: np.ndarray,
                      test_feats: np.ndarray, test_labels: np.ndarray, test_text: np.ndarray,
                      margins: Sequence[float] = MARGINS) -> dict[str, Any]:
    """Generalised zero-shot, as the live node meets it: the label set is the trained classes plus
    the task's classes, the windows are held-out subjects of the trained classes plus the task's
    test windows. For each margin subtracted from the trained classes' cosines (calibrated
    stacking), window accuracy on each side and their harmonic mean."""
    k = len(seen_text)
    text = np.concatenate([seen_text, test_text])
    s_seen = seen_feats @ text.T
    s_test = test_feats @ text.T
    out = {"margins": list(margins), "seen_acc": [], "unseen_acc": [], "harmonic": [], "unseen_share_of_seen": []}
    for g in margins:
        shift = np.r_[np.full(k, g), np.zeros(len(test_text))]
        ps, pt = (s_seen - shift).argmax(1), (s_test - shift).argmax(1)
        a_s, a_u = float((ps == seen_labels).mean()), float((pt == k + test_labels).mean())
        out["seen_acc"].append(a_s)
        out["unseen_acc"].append(a_u)
        out["harmonic"].append(0.0 if a_s + a_u == 0 else 2 * a_s * a_u / (a_s + a_u))
        out["unseen_share_of_seen"].append(float((ps >= k).mean()))  # trained windows lost to the new labels
    return out


def validation_modes(feats: np.ndarray, labels: np.ndarray, trial: np.ndarray, text: np.ndarray,
                     names: Sequence[str], ways: Sequence[int], draws: int = 10, seed: int = 0,
                     modes: Sequence[str] = EVAL_MODES) -> dict[str, Any]:
    """Every mode on the held-out subjects' windows of the TRAINING classes, in random subsets of
    each task's size: the data a mode may be chosen on (the test classes are never looked at)."""
    rng = np.random.default_rng(seed)
    present = np.unique(labels)
    out: dict[str, Any] = {}
    for way in sorted({min(int(w), len(present)) for w in ways}):
        if way < 2:
            continue
        acc = {m: ([], []) for m in modes}
        for _ in range(draws):
            cls = np.sort(rng.choice(present, way, replace=False))
            idx = np.flatnonzero(np.isin(labels, cls))
            lab = np.searchsorted(cls, labels[idx])
            for m in modes:
                r = _mode_scores(m, feats[idx], text[cls], [names[k] for k in cls], lab, trial[idx])
                acc[m][0].append(r["window_acc"])
                acc[m][1].append(r["trial_acc"])
        out[str(way)] = {m: {"window_acc": float(np.mean(w)), "trial_acc": float(np.mean(t)), "draws": draws}
                         for m, (w, t) in acc.items()}
    return out


def task_windows(recipe, resolved: Resolved, tasks: Sequence[Task], cache: bool = True) -> WindowSet:
    """The test source's windows of the given tasks' classes, as the protocol's test filter keeps them."""
    p = resolved.protocol
    c = recipe.corpus
    ws = load_windows(p.test, c.roots.get(p.test), recipe.data.preprocess, c.window_frames, c.stride_frames,
                      cache=cache)
    check_filter_fields(ws.trial_meta, p.test_filter, f"{p.name} test_filter")
    return _select(ws, p.test, sorted({k for t in tasks for k in t.labels}), p.test_filter)


def evaluate_tasks(model: nn.Module, recipe, resolved: Resolved, catalog, encode,
                   modes: Sequence[str] = EVAL_MODES, cache: bool = True,
                   center: np.ndarray | None = None, seen=None) -> list[dict[str, Any]]:
    """Every task of the protocol: accuracy per mode (windows and whole trials), upper body only,
    and with ``seen`` (from :func:`validate`) the generalised curve of the zero-shot tasks."""
    p = resolved.protocol
    ws_all = task_windows(recipe, resolved, resolved.tasks, cache)
    # features once for every test window (and once more with the legs replaced), shared by the tasks
    feats_all = extract_features(model, ws_all.x)
    upper = replace_lower_body(torch.from_numpy(ws_all.x), torch.ones(len(ws_all), dtype=torch.bool)).numpy()
    upper_all = extract_features(model, upper)
    by_label = {cl.label: cl for cl in catalog.classes(p.test)}
    results = []
    for task in resolved.tasks:
        # a class without test windows (SmartFallMM's young set has no "stepping up") is left out
        task = Task(task.name, task.source, tuple(k for k in task.labels if (ws_all.label == k).any()))
        if len(task.labels) < 2:
            results.append({"task": task.name, "error": f"{len(task.labels)} classes with test windows"})
            continue
        idx = np.flatnonzero(np.isin(ws_all.label, task.labels))
        ws, feats, uf = ws_all.take(idx), feats_all[idx], upper_all[idx]
        names = [by_label[k].name for k in task.labels]
        text = center_text(ensemble_features(encode, [kind_texts(by_label[k], recipe.text.descriptions)
                                                      for k in task.labels]), center)
        pos = {k: i for i, k in enumerate(task.labels)}
        labels = np.array([pos[int(l)] for l in ws.label], dtype=np.int64)
        r: dict[str, Any] = {"task": task.name, "source": p.test, "classes": names, "class_ids": list(task.labels),
                             "chance": 1.0 / len(names), "modes": {}}
        for mode in modes:
            try:
                r["modes"][mode] = _mode_scores(mode, feats, text, names, labels, ws.trial)
            except ValueError as exc:  # a mode this build does not have
                r["modes"][mode] = {"error": str(exc)}
        nn = assignment.nearest_neighbour_agreement(feats, labels, list(ws.group))
        r["nn_ceiling"] = {"accuracy": nn.accuracy, "scored": nn.scored}
        r["upper_body"] = {m: _mode_scores(m, uf, text, names, labels, ws.trial) for m in ("text", "transductive")}
        if seen is not None and task.name != "seen_concept":
            r["generalized"] = generalized_curve(*seen, feats, labels, text)
        results.append(r)
    return results


def load_run(run_dir: str | Path):
    """``(recipe, model, meta)`` of a finished run folder (``recipe.json`` + ``model.safetensors``)."""
    from pgfa_models.checkpoint import load_model
    from pgfa_models.config import from_dict

    from .train import Recipe

    run = Path(run_dir)
    recipe = from_dict(Recipe, json.loads((run / "recipe.json").read_text()), str(run / "recipe.json"))
    model, meta = load_model(run / "model.safetensors")
    return recipe, model, meta


def evaluate_run(run: Path, recipe, model: nn.Module, meta, catalog, cache: bool = True,
                 validation: bool = True) -> tuple[dict | None, list | None]:
    """``(validation, tasks)`` of ``model`` on the protocol its checkpoint names, with the training
    sources split as that run split them; ``validation=False`` skips the held-out subjects (a seed
    ensemble whose members held out different subjects has none that no member trained on)."""
    from pgfa_models.recognition import checkpoint_text_center

    from .train import encode_texts

    seed = int(meta.extra["seed"])
    resolved = resolve(get_protocol(str(meta.extra["split"])), catalog)
    ws, y, names, members, val_mask, val_groups = run_training_set(run, recipe, meta, resolved, catalog, cache)
    encode = lambda t: encode_texts(recipe.text.model, t)  # noqa: E731
    center = checkpoint_text_center(meta)
    text_np = class_text_features(catalog, recipe.text.descriptions, members, encode, center)
    calibration, seen = (validate(model, ws.where(val_mask), y[val_mask], val_groups, text_np, names, resolved, seed)
                         if validation else (None, None))
    tasks = (evaluate_tasks(model, recipe, resolved, catalog, encode, cache=cache, center=center, seen=seen)
             if resolved.tasks else None)
    return calibration, tasks


def reevaluate(run_dir: str | Path, cache: bool = True, catalog=None) -> dict[str, Any]:
    """Validation and every task again for a finished run folder (model.safetensors, recipe.json,
    eval.json) with this build's evaluation, e.g. after a new measurement was added; what the
    training recorded (loss, time, tau) is kept. Rewrites and returns eval.json."""
    import datetime as _dt

    run = Path(run_dir)
    recipe, model, meta = load_run(run)
    summary = json.loads((run / "eval.json").read_text())
    if catalog is None:
        from .catalog import load_catalog

        catalog = load_catalog()
    shared = (meta.extra.get("ensemble") or {}).get("shared_validation", True)
    summary["validation"], tasks = evaluate_run(run, recipe, model, meta, catalog, cache, validation=shared)
    if tasks is not None:
        summary["tasks"] = tasks
    summary["reevaluated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    (run / "eval.json").write_text(json.dumps(summary, indent=2))
    return summary


__all__ = ["EVAL_MODES", "MARGINS", "build_training_set", "class_text_features", "evaluate_run", "evaluate_tasks",
           "generalized_curve", "kind_texts", "load_run", "reevaluate", "run_training_set", "split_validation",
           "task_windows", "train_multi", "validate", "validation_modes", "validation_seed"]
