"""destroy_entities: each kind of entity goes to its own destroy call, and one failure does not
keep the rest alive."""

from types import SimpleNamespace

from pgfa_ros.node_entities import destroy_entities


class FakeNode:
    def __init__(self, fail_on=()):
        self.calls = []
        self.fail_on = set(fail_on)

    def _record(self, kind, e):
        self.calls.append((kind, e.name))
        if e.name in self.fail_on:
            raise RuntimeError("already destroyed")

    def destroy_timer(self, e):
        self._record("timer", e)

    def destroy_service(self, e):
        self._record("service", e)

    def destroy_subscription(self, e):
        self._record("subscription", e)

    def destroy_publisher(self, e):
        self._record("publisher", e)


def _entities():
    return [SimpleNamespace(name="t", timer_period_ns=10), SimpleNamespace(name="srv", srv_type=object),
            SimpleNamespace(name="sub", msg_type=object, callback=print), SimpleNamespace(name="pub", msg_type=object)]


def test_each_entity_goes_to_its_destroy_call():
    node = FakeNode()
    destroy_entities(node, _entities())
    assert node.calls == [("timer", "t"), ("service", "srv"), ("subscription", "sub"), ("publisher", "pub")]


def test_a_failing_destroy_does_not_stop_the_others():
    node = FakeNode(fail_on={"t", "sub"})
    destroy_entities(node, _entities())
    assert [c[1] for c in node.calls] == ["t", "srv", "sub", "pub"]
