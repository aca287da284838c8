"""The in-process runtime: Ray's actor API over one single-thread executor per actor.

The supervisor and the role launcher talk to a runtime (``put``, ``remote``, ``get``,
``wait``, ``kill`` and the ``exceptions`` of a failed actor); :mod:`ray` is one, and
:class:`LocalRuntime` is the other: every actor is a plain object living on its own
thread, so its calls run one at a time in the order they were made, as a Ray actor's do.
``train --runner sync`` runs the same supervisor on it (debugging, and tests of the
loop's logic: crashes, stops, checkpoints and resume, in seconds instead of a cluster
start). A call's ``ObjectRef`` is a :class:`concurrent.futures.Future`; futures passed as
arguments are resolved first, as Ray resolves top-level ``ObjectRef`` arguments.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


class RayActorError(RuntimeError):
    """The actor died (killed, or failed); its calls raise this."""


class RayTaskError(RuntimeError):
    """A call raised; the original exception is the cause."""


class _Exceptions:
    RayActorError = RayActorError
    RayTaskError = RayTaskError


def _resolve(value: Any) -> Any:
    return value.result() if isinstance(value, cf.Future) else value


class _SerialWorker:
    """One daemon thread running submitted calls in order.

    A daemon, so a dead actor's blocked call (say, a Reverb insert its rate limiter holds)
    never keeps the process from exiting.
    """

    def __init__(self, name: str) -> None:
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def submit(self, fn: Callable, *args: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        self.calls.put((future, fn, args))
        return future

    def _loop(self) -> None:
        while (item := self.calls.get()) is not None:
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # the caller's get raises it
                    future.set_exception(exc)

    def stop(self) -> None:
        """End the thread after the calls already queued."""
        self.calls.put(None)


class _Actor:
    """One actor: its object, built and called on its own thread."""

    def __init__(self, cls: type, args: tuple, kwargs: dict, runtime: LocalRuntime) -> None:
        self.name = cls.__name__
        self.runtime = runtime
        self.dead = False
        self.executor = _SerialWorker(self.name)
        self.instance: Any = None
        self.built = self.executor.submit(self._build, cls, args, kwargs)

    def _build(self, cls: type, args: tuple, kwargs: dict) -> None:
        args = tuple(_resolve(a) for a in args)
        self.instance = cls(*args, **{k: _resolve(v) for k, v in kwargs.items()})

    def _call(self, method: str, args: tuple, kwargs: dict) -> Any:
        if self.dead or self.built.exception() is not None:
            raise RayActorError(f"{self.name} is dead")
        if self.runtime.fault is not None and self.runtime.fault(self.name, method):
            self.dead = True
            raise RayActorError(f"{self.name}.{method}: injected failure")
        try:
            args = tuple(_resolve(a) for a in args)
            return getattr(self.instance, method)(*args, **kwargs)
        except RayActorError:
            raise
        except Exception as exc:
            raise RayTaskError(f"{self.name}.{method}: {type(exc).__name__}: {exc}") from exc

    def submit(self, method: str, args: tuple, kwargs: dict) -> cf.Future:
        if self.dead:
            failed: cf.Future = cf.Future()
            failed.set_exception(RayActorError(f"{self.name} is dead"))
            return failed
        return self.executor.submit(self._call, method, args, kwargs)


class _Method:
    def __init__(self, actor: _Actor, name: str) -> None:
        self._actor, self._name = actor, name

    def remote(self, *args: Any, **kwargs: Any) -> cf.Future:
        """Queue the call on the actor's thread; its future."""
        return self._actor.submit(self._name, args, kwargs)


class ActorHandle:
    """What ``ActorClass.remote`` returns: ``handle.method.remote(...)`` queues a call."""

    def __init__(self, actor: _Actor) -> None:
        self._actor = actor

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self._actor, name)


class ActorClass:
    """What ``runtime.remote(cls)`` returns; ``options`` (resources) are accepted, unused."""

    def __init__(self, cls: type, runtime: LocalRuntime) -> None:
        self._cls, self._runtime = cls, runtime

    def options(self, **options: Any) -> ActorClass:
        """Ray's placement options mean nothing in one process."""
        return self

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        """Build an actor on its own thread."""
        actor = _Actor(self._cls, args, kwargs, self._runtime)
        self._runtime.actors.append(actor)
        return ActorHandle(actor)


class _Context:
    def get_node_id(self) -> str:
        return LocalRuntime.NODE


class LocalRuntime:
    """Ray's actor API in this process (see the module's docstring).

    ``fault(class_name, method)`` is asked before every call; when it answers True the
    actor dies with that call, as a crashed Ray actor does (tests inject failures so).
    """

    NODE = "00" * 28  # a valid Ray node id, so placement options built for Ray still parse
    exceptions = _Exceptions

    def __init__(self, fault: Callable[[str, str], bool] | None = None) -> None:
        self.fault = fault
        self.actors: list[_Actor] = []

    def remote(self, cls: type) -> ActorClass:
        """An actor class of ``cls``."""
        return ActorClass(cls, self)

    def put(self, value: Any) -> cf.Future:
        """A finished future holding ``value``."""
        future: cf.Future = cf.Future()
        future.set_result(value)
        return future

    def get(self, refs: cf.Future | Sequence[cf.Future], timeout: float | None = None) -> Any:
        """The result of a future (or of each in a list), raising what the call raised."""
        if isinstance(refs, cf.Future):
            return refs.result(timeout)
        return [ref.result(timeout) for ref in refs]

    def wait(
        self, refs: Sequence[cf.Future], num_returns: int = 1, timeout: float | None = None
    ) -> tuple[list[cf.Future], list[cf.Future]]:
        """(finished, pending) once one is finished or ``timeout`` passed."""
        done, pending = cf.wait(refs, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        order = {id(ref): i for i, ref in enumerate(refs)}
        return sorted(done, key=lambda r: order[id(r)]), sorted(pending, key=lambda r: order[id(r)])

    def kill(self, handle: ActorHandle, no_restart: bool = True) -> None:
        """Mark the actor dead: its queued calls fail; the call running now finishes.

        A thread cannot be killed: an actor with an ``interrupt()`` method has it called,
        here, so a call blocked in a write returns.
        """
        _stop(handle._actor)

    def get_runtime_context(self) -> _Context:
        """The node id of this process's one node."""
        return _Context()

    def nodes(self) -> list[dict[str, Any]]:
        """One node, the process itself, on loopback."""
        return [{"NodeID": self.NODE, "NodeManagerAddress": "127.0.0.1", "Alive": True}]

    def cluster_resources(self) -> dict[str, float]:
        """The machine's CPUs (roles share them; nothing is reserved)."""
        return {"CPU": float(os.cpu_count() or 1)}

    def shutdown(self, timeout: float = 60.0) -> None:
        """Every actor dead; wait up to ``timeout`` s for the calls in progress to return."""
        for actor in self.actors:
            _stop(actor)
        deadline = time.monotonic() + timeout
        for actor in self.actors:
            actor.executor.thread.join(max(0.0, deadline - time.monotonic()))


def _stop(actor: _Actor) -> None:
    actor.dead = True
    interrupt = getattr(actor.instance, "interrupt", None)
    if interrupt is not None:
        interrupt()
    actor.executor.stop()
