"""``pgfa-launch CONFIG.yaml``: start the nodes of a ROS 2 parameter file in ONE process.

For machines without ``ros2 launch`` (no ``launch``/``launch_ros``): the nodes named in a
standard ROS 2 parameters file are constructed in one process on one rclpy executor (the rclpy
form of ROS 2 composition), their parameters applied by rcl from that same file, lifecycle
nodes brought to *active*, and everything shut down cleanly on Ctrl-C / SIGTERM. The same
file works unchanged as ``--params-file`` / ``parameters=[file]`` for ``ros2 run`` and the
``launch/*.launch.py`` files.

File format (a ROS 2 params file)::

    pgfa_launch:                # optional: what to start and how (ignored by ROS tools,
      ros__parameters:          # because no node has that name)
        nodes: ["video_publisher", "pose_estimator", "recognizer"]   # order of start-up
        remappings: ["recognizer:/body_tracking_data:=/pose_estimator/skeleton"]
        autostart: true         # configure + activate lifecycle nodes (default true)
        executor: single        # single | multi (MultiThreadedExecutor)
    video_publisher:
      ros__parameters: {rate: 1.0}
    pose_estimator:
      ros__parameters: {image_topic: /camera/image_raw}
    recognizer:
      ros__parameters: {layout: mediapipe_33, skeleton_topic: /pose_estimator/skeleton}

A node entry is ``name`` or ``/namespace/name`` (or nested ``namespace: {name: ...}``);
``/**`` holds parameters for every node. Without ``pgfa_launch.nodes`` every entry whose node
name is a known type (:data:`NODE_TYPES`) is started in file order. ``nodes`` items are
``name`` or ``name:type`` (``type`` a key of :data:`NODE_TYPES` or ``package.module:Class``), with an
optional ``/namespace/`` prefix. ``remappings`` items are ``from:=to`` (all nodes) or
``node:from:=to``. Parameters in the file that a node does not declare are reported (a typo
would otherwise be silently ignored by rcl); a value of the wrong type stops the launch with
rcl's message.
"""
from __future__ import annotations

import argparse
import importlib
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from pgfa_models.config import read_yaml

__all__ = ["NODE_TYPES", "NodeSpec", "LaunchSpec", "LaunchError", "load_launch_file", "Launcher",
           "spin_nodes", "main"]

NODE_TYPES: dict[str, str] = {
    "recognizer": "pgfa_ros.recognizer_node:RecognizerNode",
    "pose_estimator": "pgfa_ros.pose_node:PoseEstimatorNode",
    "video_publisher": "pgfa_ros.video_publisher:VideoPublisherNode",
}
LAUNCH_KEY = "pgfa_launch"
PARAMS_KEY = "ros__parameters"


class LaunchError(RuntimeError):
    """The launch file is invalid or a node failed to start."""


@dataclass
class NodeSpec:
    name: str
    namespace: str = ""
    type: str = ""  # key of NODE_TYPES or "module:Class"
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: list[str] = field(default_factory=list)

    @property
    def fqn(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.name}" if self.namespace else f"/{self.name}"


@dataclass
class LaunchSpec:
    path: Path
    nodes: list[NodeSpec]
    autostart: bool = True
    executor: str = "single"
    threads: int = 0
    wildcard_parameters: dict[str, Any] = field(default_factory=dict)


def _entries(tree: Any, prefix: str, out: dict[str, dict], path: Path) -> None:
    """Collect ``{"/ns/name": params}`` from a (possibly nested) ROS params mapping."""
    if not isinstance(tree, dict):
        raise LaunchError(f"{path}: expected a mapping under {prefix or 'the top level'}")
    for key, value in tree.items():
        key = str(key)
        if key == PARAMS_KEY:
            if not isinstance(value, dict):
                raise LaunchError(f"{path}: {prefix}/{PARAMS_KEY} must be a mapping")
            out.setdefault(prefix or "/", {}).update(value)
            continue
        full = key if key.startswith("/") else f"{prefix}/{key}"
        if value is None:
            continue
        _entries(value, full.rstrip("/") if full != "/" else "", out, path)


def load_launch_file(path: str | Path) -> LaunchSpec:
    """Parse a ROS 2 params file into the nodes to start (see the module docstring)."""
    path = Path(path)
    data = read_yaml(path, LaunchError, "launch file")
    if not isinstance(data, dict) or not data:
        raise LaunchError(f"{path}: expected a ROS 2 parameters file (a mapping of node names)")
    entries: dict[str, dict] = {}
    _entries(data, "", entries, path)
    settings = entries.pop(f"/{LAUNCH_KEY}", {})
    wildcard = entries.pop("/**", {})
    try:
        threads = int(settings.get("threads", 0))
    except (TypeError, ValueError):
        raise LaunchError(f"{path}: {LAUNCH_KEY}.threads must be an integer, got {settings['threads']!r}") from None
    spec = LaunchSpec(path=path, nodes=[], autostart=bool(settings.get("autostart", True)),
                      executor=str(settings.get("executor", "single")),
                      threads=threads, wildcard_parameters=dict(wildcard))
    if spec.executor not in ("single", "multi"):
        raise LaunchError(f"{path}: {LAUNCH_KEY}.executor must be 'single' or 'multi'")

    def split(fqn: str) -> tuple[str, str]:
        ns, _, name = fqn.rpartition("/")
        return ns, name

    names = settings.get("nodes")
    if names is None:
        for fqn, params in entries.items():
            ns, name = split(fqn)
            if name in NODE_TYPES:
                spec.nodes.append(NodeSpec(name, ns, name, dict(params)))
    else:
        if isinstance(names, str) or not isinstance(names, list):
            raise LaunchError(f"{path}: {LAUNCH_KEY}.nodes must be a list of node names")
        for item in names:
            item = str(item)
            fqn, _, typ = item.partition(":")  # ROS names never contain ':'
            fqn = fqn if fqn.startswith("/") else f"/{fqn}"
            ns, name = split(fqn)
            typ = typ or name
            if typ not in NODE_TYPES and ":" not in typ and "." not in typ:
                raise LaunchError(f"{path}: unknown node type {typ!r} for {name!r} (known: {sorted(NODE_TYPES)}; "
                                  "or give package.module:Class)")
            spec.nodes.append(NodeSpec(name, ns, typ, dict(entries.get(fqn, {}))))
    if not spec.nodes:
        raise LaunchError(f"{path}: no node to start (entries: {sorted(entries) or 'none'}; known types: "
                          f"{sorted(NODE_TYPES)})")
    seen = set()
    for n in spec.nodes:
        if n.fqn in seen:
            raise LaunchError(f"{path}: node {n.fqn} listed twice")
        seen.add(n.fqn)
    remaps = settings.get("remappings") or []
    if isinstance(remaps, str):
        remaps = [remaps]
    for r in remaps:
        r = str(r)
        if ":=" not in r:
            raise LaunchError(f"{path}: remapping {r!r} is not 'from:=to' or 'node:from:=to'")
        lhs, rhs = r.split(":=", 1)
        target = None
        if ":" in lhs:
            target, lhs = lhs.split(":", 1)
        for n in spec.nodes:
            if target is None or target in (n.name, n.fqn):
                n.remappings.append(f"{lhs}:={rhs}")
        if target is not None and not any(target in (n.name, n.fqn) for n in spec.nodes):
            raise LaunchError(f"{path}: remapping {r!r} names no started node")
    return spec


def _resolve_type(typ: str):
    target = NODE_TYPES.get(typ, typ)
    mod, _, cls = target.partition(":")
    if not cls:
        mod, _, cls = target.rpartition(".")
    try:
        return getattr(importlib.import_module(mod), cls)
    except (ImportError, AttributeError) as exc:
        raise LaunchError(f"cannot load node type {typ!r} ({target}): {exc}") from exc


def _is_lifecycle(node) -> bool:
    return hasattr(node, "trigger_configure") and hasattr(node, "trigger_activate")


class Launcher:
    """Builds the nodes of a :class:`LaunchSpec` on a private rclpy context and spins them.

    ``with Launcher(spec) as l: l.spin()``; :meth:`add_node` adds extra nodes (the demo's
    monitor) to the same context and executor; :meth:`request_stop` ends :meth:`spin` from any
    thread or a signal handler.
    """

    def __init__(self, spec: LaunchSpec | str | Path, args: Iterable[str] | None = None, logger=None):
        import rclpy
        from rclpy.context import Context

        self.spec = spec if isinstance(spec, LaunchSpec) else load_launch_file(spec)
        self.context = Context()
        try:
            from rclpy.signals import SignalHandlerOptions

            rclpy.init(args=list(args or []), context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        except ImportError:  # older rclpy
            rclpy.init(args=list(args or []), context=self.context)
        self.nodes: dict[str, Any] = {}
        self._order: list[Any] = []
        self._stop = threading.Event()
        self._log = logger or (lambda msg: print(f"[pgfa-launch] {msg}", file=sys.stderr, flush=True))
        if self.spec.executor == "multi":
            from rclpy.executors import MultiThreadedExecutor

            self.executor = MultiThreadedExecutor(num_threads=self.spec.threads or None, context=self.context)
        else:
            from rclpy.executors import SingleThreadedExecutor

            self.executor = SingleThreadedExecutor(context=self.context)
        self._closed = False

    # ------------------------------------------------------------------ start-up
    def start(self) -> "Launcher":
        """Create every node (in spec order) and bring lifecycle nodes to *active*."""
        try:
            for ns in self.spec.nodes:
                self._start_node(ns)
        except BaseException:
            self.shutdown()
            raise
        return self

    def _start_node(self, ns: NodeSpec) -> None:
        cls = _resolve_type(ns.type)
        cli = ["--ros-args", "--params-file", str(self.spec.path)]
        for r in ns.remappings:
            cli += ["-r", r]
        kwargs: dict[str, Any] = {"context": self.context, "cli_args": cli}
        if ns.namespace:
            kwargs["namespace"] = ns.namespace
        t0 = time.monotonic()
        try:
            node = cls(ns.name, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- report which node and why, then stop the launch
            raise LaunchError(f"node {ns.fqn} ({ns.type}) failed to start: {type(exc).__name__}: {exc}") from exc
        self.nodes[ns.fqn] = node
        self._order.append(node)
        self.executor.add_node(node)
        unknown = sorted(k for k in {**self.spec.wildcard_parameters, **ns.parameters}
                         if not node.has_parameter(k))
        unknown = [k for k in unknown if k in ns.parameters]  # '/**' entries may target other nodes
        if unknown:
            node.get_logger().warn(f"parameters in {self.spec.path.name} that this node does not declare "
                                   f"(ignored): {unknown}")
        if self.spec.autostart and _is_lifecycle(node):
            self._activate(node, ns)
        self._log(f"started {ns.fqn} ({ns.type}) in {time.monotonic() - t0:.1f} s")

    def _activate(self, node, ns: NodeSpec) -> None:
        from rclpy.lifecycle import TransitionCallbackReturn

        for step in ("configure", "activate"):
            ret = getattr(node, f"trigger_{step}")()
            if ret != TransitionCallbackReturn.SUCCESS:
                raise LaunchError(f"lifecycle node {ns.fqn}: {step} failed ({ret}); see its log above")

    def add_node(self, node) -> None:
        """Add a node created on :attr:`context` to the executor (it is destroyed at shutdown)."""
        self._order.append(node)
        self.nodes[node.get_fully_qualified_name()] = node
        self.executor.add_node(node)

    def node(self, name: str):
        """The node named ``name`` (or fully qualified ``/ns/name``)."""
        if name in self.nodes:
            return self.nodes[name]
        for fqn, n in self.nodes.items():
            if fqn.rsplit("/", 1)[-1] == name:
                return n
        raise KeyError(name)

    # ------------------------------------------------------------------ running
    def request_stop(self) -> None:
        self._stop.set()

    def spin(self, until: Callable[[], bool] | None = None, timeout: float | None = None,
             period: float = 0.05) -> bool:
        """Spin until :meth:`request_stop`, ``until()`` is true or ``timeout`` s; returns whether stopped early."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=period)
            if until is not None and until():
                return True
            if end is not None and time.monotonic() >= end:
                return False
        return True

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Lifecycle nodes to *finalized*, all nodes destroyed (reverse order), context shut down."""
        if self._closed:
            return
        self._closed = True
        import rclpy

        for node in reversed(self._order):
            if _is_lifecycle(node) and self.context.ok():
                try:
                    node.trigger_shutdown()
                except Exception:  # noqa: BLE001 -- already finalized / never configured
                    pass
        try:
            self.executor.shutdown(timeout_sec=2.0)
        except Exception:  # noqa: BLE001
            pass
        for node in reversed(self._order):
            try:
                node.destroy_node()
            except Exception:  # noqa: BLE001
                pass
        self._order.clear()
        self.nodes.clear()
        try:
            rclpy.try_shutdown(context=self.context)
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "Launcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()


class _Signals:
    """SIGINT/SIGTERM -> ``callback`` (restores the previous handlers on exit)."""

    def __init__(self, callback: Callable[[], None]):
        self.callback = callback
        self.count = 0
        self._old = {}

    def _handler(self, signum, frame):
        self.count += 1
        if self.count > 1:  # second Ctrl-C: give up on a clean shutdown
            raise KeyboardInterrupt
        self.callback()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def spin_nodes(nodes: list, executor=None) -> int:
    """Spin nodes on the default context until Ctrl-C, then destroy them (for single-node mains)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    executor = executor or SingleThreadedExecutor()
    for n in nodes:
        executor.add_node(n)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        for n in reversed(nodes):
            n.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i:]
    parser = argparse.ArgumentParser(
        prog="pgfa-launch",
        description="Start the nodes of a ROS 2 parameters file in one process (composition without "
                    "ros2 launch). Ctrl-C stops them cleanly. Extra '--ros-args ...' apply to all nodes.")
    parser.add_argument("config", help="ROS 2 parameters YAML (see config/*.yaml)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--list", action="store_true", help="print the nodes the file would start and exit")
    args = parser.parse_args(argv)
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        # nan never ends the spin loop and a negative one stops before the nodes did anything
        print(f"pgfa-launch: --duration must be a finite number > 0, got {args.duration}", file=sys.stderr)
        return 2
    try:
        spec = load_launch_file(args.config)
    except LaunchError as exc:
        print(f"pgfa-launch: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for n in spec.nodes:
            print(f"{n.fqn}\t{n.type}\t{len(n.parameters)} parameters" +
                  (f"\tremap {' '.join(n.remappings)}" if n.remappings else ""))
        return 0
    launcher = Launcher(spec, args=ros_args)
    with _Signals(launcher.request_stop):
        try:
            launcher.start()
        except LaunchError as exc:
            print(f"pgfa-launch: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            launcher.shutdown()
            return 130
        print(f"[pgfa-launch] running {len(spec.nodes)} node(s) from {spec.path} (Ctrl-C to stop)",
              file=sys.stderr, flush=True)
        try:
            launcher.spin(timeout=args.duration)
        except KeyboardInterrupt:
            pass
        finally:
            print("[pgfa-launch] shutting down", file=sys.stderr, flush=True)
            launcher.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
