"""Tearing down what a lifecycle node created, shared by the nodes' cleanup and shutdown paths."""

from __future__ import annotations

from typing import Iterable


def destroy_entities(node, entities: Iterable) -> None:
    """Destroy timers, services, subscriptions and publishers of ``node``; one that is already gone
    (shutdown racing a transition) must not stop the others from being released."""
    for e in entities:
        try:
            if hasattr(e, "timer_period_ns"):
                node.destroy_timer(e)
            elif hasattr(e, "srv_type"):
                node.destroy_service(e)
            elif hasattr(e, "msg_type") and hasattr(e, "callback"):
                node.destroy_subscription(e)
            else:
                node.destroy_publisher(e)
        except Exception:  # noqa: BLE001
            pass
