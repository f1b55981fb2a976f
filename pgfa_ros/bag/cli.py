"""``pgfa-bag``: convert datasets to rosbag2, inspect, record, play, and evaluate bags.

Every failure is ONE line on stderr (``pgfa-bag <command>: error: ...``) and a non-zero exit
code; ``eval`` writes its report and JSON only after every bag was read and every clip
evaluated, so a broken bag never leaves a report that looks complete.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .convention import LABEL_TOPIC, META_TOPIC, SKELETON_TOPIC, BagError

EXIT_ERROR = 2


def _ints(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _split_classes(split: str | None):
    if split is None:
        return None, None
    from training.splits import get_split  # CLI-level: splits are project data

    s = get_split(split)
    return list(s.unseen), s.dataset


def _catalog_names(dataset: str) -> list[str] | None:
    from training.descriptions import DescriptionError, class_names  # CLI-level: project data

    try:
        return class_names(dataset)
    except (DescriptionError, OSError):
        return None


# ----------------------------------------------------------------------------- commands
def cmd_convert(a) -> int:
    from .convert import ntu_sequences, smartfall_sequences, smie_sequences, utd_sequences, write_bag

    if a.limit is not None and a.limit < 1:  # a negative slice would silently drop the last clips
        raise BagError(f"--limit must be >= 1, got {a.limit}")
    if a.max_bodies < 1:
        raise BagError(f"--max-bodies must be >= 1, got {a.max_bodies}")
    classes, split_ds = _split_classes(a.split)
    if a.classes is not None:
        classes = a.classes
    if a.dataset == "utd_mhad":
        if not a.input:
            raise BagError("--input: the UTD-MHAD folder is required")
        src = utd_sequences(a.input[0], classes, a.subjects, a.limit)
    elif a.dataset == "smartfallmm":
        if not a.input:
            raise BagError("--input: the SmartFallMM skeleton folder is required")
        src = smartfall_sequences(a.input[0], a.participants, a.activities, a.trials, a.limit)
    elif a.dataset in ("ntu60", "ntu120"):
        if not a.input:
            raise BagError("--input: .skeleton files or folders are required")
        src = ntu_sequences(a.input, classes, a.max_bodies, a.limit, a.dataset, _catalog_names(a.dataset))
    else:  # smie
        if not a.data or not a.labels:
            raise BagError("--data and --labels (.npy) are required for --dataset smie")
        ds = split_ds or a.smie_dataset
        src = smie_sequences(a.data, a.labels, classes, a.limit, ds, _catalog_names(ds))
    if a.fps is not None:  # 0 is refused by write_bag, not taken as "the dataset's rate"
        src.fps = float(a.fps)
    if a.frame_id:
        src.frame_id = a.frame_id
    summary = write_bag(src, a.output, a.storage, skeleton_topic=a.skeleton_topic, label_topic=a.label_topic,
                        gap_s=a.gap, overwrite=a.overwrite, version=a.bag_version, progress=not a.quiet)
    print(f"pgfa-bag convert: wrote {summary['clips']} clips, {summary['frames']} frames "
          f"({summary['layout']}, {summary['fps']:g} Hz, {summary['duration_s']:.1f} s) to {summary['bag']} "
          f"[{summary['storage']}]")
    return 0


def cmd_info(a) -> int:
    from .io import list_topics, open_reader, read_messages
    from .convention import BagMeta

    r = open_reader(a.bag)
    try:
        topics = list_topics(r)
        meta = None
        if any(t.name == META_TOPIC for t in topics):
            for _, _, msg in read_messages(r, [META_TOPIC]):
                meta = BagMeta.from_json(msg.data)
                break
        import yaml

        md = yaml.safe_load((Path(r.path) / "metadata.yaml").read_text()).get("rosbag2_bagfile_information", {})
        info = {"bag": str(a.bag), "storage": md.get("storage_identifier"), "version": md.get("version"),
                "duration_s": r.duration / 1e9, "messages": r.message_count,
                "topics": [{"name": t.name, "type": t.msgtype, "count": t.count} for t in topics],
                "meta": json.loads(meta.to_json()) if meta else None}
    finally:
        r.close()
    if a.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"bag: {info['bag']}  storage: {info['storage']}  duration: {info['duration_s']:.3f} s  "
              f"messages: {info['messages']}")
        for t in info["topics"]:
            print(f"  {t['name']:<32} {t['type']:<40} {t['count']}")
        if meta:
            print(f"  layout {meta.layout}, {meta.fps:g} Hz, dataset {meta.dataset or '-'}, {meta.num_clips} clips")
    return 0


def cmd_record(a) -> int:
    from .ros import record

    types = {}
    for spec in a.type or []:
        topic, sep, typ = spec.rpartition(":")
        if not sep or not topic:
            raise BagError(f"--type {spec!r}: expected TOPIC:pkg/msg/Type")
        types[topic] = typ
    res = record(a.output, a.topics, types=types, storage=a.storage, duration=a.duration,
                 max_messages=a.count, count_topic=a.count_topic, discovery_timeout=a.discovery_timeout,
                 overwrite=a.overwrite)
    counts = ", ".join(f"{t}: {n}" for t, n in res.counts.items())
    print(f"pgfa-bag record: stopped ({res.reason or 'end'}) after {res.duration_s:.1f} s; wrote {res.bag} ({counts})")
    return 0


def cmd_play(a) -> int:
    from .ros import play

    remap = {}
    for spec in a.remap or []:
        old, sep, new = spec.partition(":=")
        if not sep:
            raise BagError(f"--remap {spec!r}: expected OLD:=NEW")
        remap[old] = new
    res = play(a.bag, rate=a.rate, loop=a.loop, topics=a.topics, remap=remap,
               wait_subscribers=a.wait_for_subscribers, min_subscribers=a.min_subscribers, start_delay=a.delay)
    counts = ", ".join(f"{t}: {n}" for t, n in res.published.items())
    print(f"pgfa-bag play: {res.reason}; {res.loops} full pass(es); published {counts}")
    return 0


def cmd_eval(a) -> int:
    from pgfa_models.fileio import check_outputs

    from .clips import open_bag_clips
    from .evaluate import parse_label_set, run_eval, write_outputs

    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    if not modes:
        raise BagError(f"--modes {a.modes!r}: no mode given")
    check_outputs(a.json, a.report)  # before any bag is read
    # streams: each bag is read message by message while its clips are preprocessed
    bags = [open_bag_clips(p, skeleton_topic=a.skeleton_topic, label_topic=a.label_topic, layout=a.layout,
                           window=a.window, stride=a.stride, window_seconds=a.window_seconds,
                           body_timeout=a.body_timeout, max_bodies=a.max_bodies, fps=a.fps, progress=not a.quiet)
            for p in a.bags]
    labels = parse_label_set(a.labels) if a.labels is not None else None
    bank = {}
    if a.bank_capacity is not None:
        bank["capacity"] = a.bank_capacity
    if a.bank_min_support is not None:
        bank["min_support"] = a.bank_min_support
    if a.bank_max_entropy is not None:
        bank["max_entropy"] = a.bank_max_entropy
    try:
        alphas = [float(x) for x in a.alphas.split(",") if x.strip()]
    except ValueError:
        raise BagError(f"--alphas: expected comma-separated numbers, got {a.alphas!r}") from None
    from pgfa_models.evaluation import groups_from_pattern, parse_assign_options

    try:
        assign = parse_assign_options(a.assign_options)
        groups = groups_from_pattern(a.group_pattern) if a.group_pattern else None
    except ValueError as exc:
        raise BagError(str(exc)) from None
    if not a.quiet:
        how = "labelled clips" if all(b.labelled for b in bags) else "live-node windows"
        print(f"pgfa-bag eval: {len(bags)} bag(s), {how}; modes {', '.join(modes)}")
    from pgfa_ros.recognizer_params import PARAMS

    seen_margin = PARAMS["seen_margin"].default if a.seen_margin is None else a.seen_margin
    from training import descriptions as catalog  # CLI-level: splits and descriptions are project data
    from training.splits import get_split

    report, es = run_eval(bags, a.checkpoint, modes=modes, alpha=a.alpha, alphas=alphas,
                          split=get_split(a.split) if a.split else None, classes=a.classes,
                          descriptions=a.descriptions, bank_options=bank or None,
                          two_stage_checkpoint=a.two_stage_checkpoint, catalog=catalog, device=a.device,
                          labels=labels, dataset=a.dataset, assign_options=assign or None, groups=groups,
                          seen_margin=seen_margin)
    # every bag read and every clip evaluated: only now are outputs written
    files = write_outputs(report, a.json, a.report)
    for r in report["results"]:
        acc = "n/a (no ground truth)" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f} %"
        print(f"{r['mode']:<13} accuracy {acc}  (n = {r['n']})")
    if es.rejected:
        print(f"rejected clips: {es.rejected}")
    if report.get("clips_outside_classes"):
        print(f"clips of other classes (not evaluated): {report['clips_outside_classes']}")
    for k, f in files.items():
        if k in ("json", "markdown"):
            print(f"{k}: {f}")
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgfa-bag", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert", help="dataset -> rosbag2 (skeleton MarkerArrays + ground-truth labels)")
    c.add_argument("--dataset", required=True, choices=["utd_mhad", "ntu60", "ntu120", "smie", "smartfallmm"])
    c.add_argument("--input", nargs="+", help="UTD-MHAD folder, SmartFallMM skeleton folder, or NTU .skeleton "
                   "files / folders")
    c.add_argument("--data", help="SMIE data .npy (N,3,50,25,M)")
    c.add_argument("--labels", help="SMIE labels .npy (N,)")
    c.add_argument("--smie-dataset", default="ntu60", choices=["ntu60", "ntu120", "pku_mmd"],
                   help="class names of the SMIE arrays")
    c.add_argument("--output", "-o", required=True, help="bag folder to create")
    c.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
    c.add_argument("--split", help="keep the unseen classes of a zero-shot split, e.g. utd_mhad/U1")
    c.add_argument("--classes", type=_ints, help="keep these 0-based classes (overrides --split)")
    c.add_argument("--subjects", type=_ints, help="UTD-MHAD: keep these subjects (1-based)")
    c.add_argument("--participants", type=_ints, help="SmartFallMM: keep these participants (e.g. 37,38,39)")
    c.add_argument("--activities", type=_ints, help="SmartFallMM: keep these activity ids (1-14; falls are 10-14)")
    c.add_argument("--trials", type=_ints, help="SmartFallMM: keep these trial numbers")
    c.add_argument("--limit", type=int, help="at most this many clips")
    c.add_argument("--max-bodies", type=int, default=2, help="NTU: bodies kept per sample")
    c.add_argument("--fps", type=float, help="frame rate (default: the dataset's, 30 Hz)")
    c.add_argument("--gap", type=float, default=1.0, help="seconds between clips")
    c.add_argument("--frame-id", help="header.frame_id of the markers")
    c.add_argument("--skeleton-topic", default=SKELETON_TOPIC)
    c.add_argument("--label-topic", default=LABEL_TOPIC)
    c.add_argument("--bag-version", type=int, default=9, choices=[8, 9], help="rosbag2 metadata version")
    c.add_argument("--overwrite", action="store_true")
    c.add_argument("--quiet", "-q", action="store_true")
    c.set_defaults(func=cmd_convert)

    i = sub.add_parser("info", help="topics, counts and pgfa meta of a bag")
    i.add_argument("bag")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    r = sub.add_parser("record", help="subscribe to topics and write a bag (Ctrl-C stops cleanly)")
    r.add_argument("topics", nargs="+")
    r.add_argument("--output", "-o", required=True)
    r.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
    r.add_argument("--type", action="append", metavar="TOPIC:pkg/msg/Type",
                   help="message type of a topic (else taken from the ROS graph)")
    r.add_argument("--duration", type=float, help="stop after this many seconds")
    r.add_argument("--count", type=int, help="stop after this many messages")
    r.add_argument("--count-topic", help="count only this topic's messages for --count")
    r.add_argument("--discovery-timeout", type=float, default=5.0)
    r.add_argument("--overwrite", action="store_true")
    r.set_defaults(func=cmd_record)

    pl = sub.add_parser("play", help="publish a bag onto its topics, honouring timestamps")
    pl.add_argument("bag")
    pl.add_argument("--rate", type=float, default=1.0, help="speed factor (2 = twice as fast)")
    pl.add_argument("--loop", action="store_true")
    pl.add_argument("--topics", nargs="+", help="only these topics")
    pl.add_argument("--remap", action="append", metavar="OLD:=NEW")
    pl.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
                    help="wait up to this long for a subscriber on every topic before starting")
    pl.add_argument("--min-subscribers", type=int, default=1,
                    help="with --wait-for-subscribers: subscribers every topic needs (e.g. recorder + node)")
    pl.add_argument("--delay", type=float, default=0.0, help="seconds to wait before the first message")
    pl.set_defaults(func=cmd_play)

    e = sub.add_parser("eval", help="zero-shot evaluation of bags: text, transductive and bank modes")
    e.add_argument("bags", nargs="+")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--modes", default="text,transductive,bank")
    e.add_argument("--alpha", type=float, default=0.9, help="transductive tolerance margin (eq. 9)")
    e.add_argument("--alphas", default="", help="optional alpha sweep reported beside, e.g. 0.1,0.5,1.0")
    e.add_argument("--assign-options", default="", help="hub-aware modes (csls, balanced, transductive_csls, "
                   "transductive_balanced, cluster_balanced, bank_csls): e.g. epsilon=0.05,csls_k=10,knn_k=5")
    e.add_argument("--group-pattern", help="regex: a clip's group (subject) from its name (first capture group); "
                   "the nearest-neighbour ceiling then ignores same-group clips")
    e.add_argument("--two-stage-checkpoint", help="checkpoint for mode two_stage (needs --split)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--split", help="evaluate against the unseen classes of this split")
    e.add_argument("--classes", type=_ints, help="0-based candidate classes (default: those labelled in the bag); "
                   "indices need a catalogue: the bag's /pgfa/meta class list, --dataset or --split")
    e.add_argument("--labels", help="bags without ground truth: the label set by name, like the recognizer node: "
                   "comma-separated names (\"walk,sit down\") or a label YAML (config/recognizer.yaml, "
                   "pgfa_ros/assets/demo_labels.yaml, or labels: + descriptions:); only the names given, plus the "
                   "checkpoint's classes when the file says include_checkpoint_labels: true (pgfa-demo "
                   "adds them unless it says false)")
    e.add_argument("--dataset", help="dataset whose catalogue names --classes indices (bags without /pgfa/meta)")
    e.add_argument("--seen-margin", type=float,
                   help="bags without ground truth: cosine margin the checkpoint's trained classes give up to "
                   "new sentence labels in text and bank mode (default: the recognizer node's seen_margin "
                   "default, so a replayed label set ranks as the node ranks it; 0 = none)")
    e.add_argument("--descriptions", help="name | complete | skeleton | name+complete (default: the checkpoint's)")
    e.add_argument("--json", help="write the results as JSON (the pgfa-eval report: results[] with "
                   "mode, accuracy, n, per_class; plus per-clip predictions)")
    e.add_argument("--report", help="Markdown report path (confusion PNGs are written beside it)")
    e.add_argument("--skeleton-topic")
    e.add_argument("--label-topic")
    e.add_argument("--layout", help="skeleton layout for bags without /pgfa/meta")
    e.add_argument("--fps", type=float, help="frame rate for bags without /pgfa/meta")
    e.add_argument("--window", type=int, help="cut the live node's windows of this many frames (default 45; "
                   "ignores labels); bags without labels are always cut so")
    e.add_argument("--stride", type=int, help="frames between two windows of one body (default 10)")
    e.add_argument("--window-seconds", type=float, help="windows of this many seconds instead of --window")
    e.add_argument("--body-timeout", type=float, help="gap (s) after which a body's window restarts (default 1.0)")
    e.add_argument("--max-bodies", type=int, help="bodies tracked at once (default 16, as the node)")
    e.add_argument("--bank-capacity", type=int)
    e.add_argument("--bank-min-support", type=int)
    e.add_argument("--bank-max-entropy", type=float)
    e.add_argument("--quiet", "-q", action="store_true")
    e.set_defaults(func=cmd_eval)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"pgfa-bag {args.command}: interrupted", file=sys.stderr)
        return 130
    except BagError as exc:
        print(f"pgfa-bag {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"pgfa-bag {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
