"""One module state per worker for functions that travel by value (``__main__``, notebooks).

cloudpickle gives every pickle of a ``__main__`` function a globals dict of its own. The
initializer and the tasks are pickled apart, so an initializer that set ``conn`` for the
tasks set it in a dict no task reads (#15). ``adopt`` carries a worker's module state from
each function it loaded to the next: a global the parent sent unchanged (the same pickle as
last time) keeps the worker's value, rebound or mutated by the initializer or a task; a
global the parent changed takes the parent's new value, and functions and classes always
come as just sent. That is the state a real module in the worker would have, plus the
parent's later edits. The cost: one pickle of each global a loaded function uses, once per
function per worker.

Imported inside workers: stdlib and ``transport`` only.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import types
from typing import Any

from ...transport import dumps

__all__ = ["adopt"]

#: By module name: the globals of the function loaded last, and a digest of each value the
#: parent sent (to tell "sent again unchanged" from "changed", mutated in the worker or not).
_modules: dict[str, tuple[dict[str, Any], dict[str, bytes | None]]] = {}
_lock = threading.Lock()  # a Dask worker loads functions on several threads


def adopt(fn: Any) -> Any:
    """``fn`` with the worker's state of its module carried into its globals (in place);
    a function pickled by reference, or anything else, is left as it is."""
    if not isinstance(fn, types.FunctionType):
        return fn
    own = fn.__globals__
    module = sys.modules.get(fn.__module__)
    if module is not None and own is vars(module):
        return fn
    with _lock:
        sent = {name: _digest(value) for name, value in own.items()}
        known = _modules.get(fn.__module__)
        if known is not None and known[0] is not own:
            current, before = known
            for name, value in current.items():
                if name not in own:
                    own[name] = value
                elif isinstance(own[name], (types.FunctionType, type)):
                    continue  # the definitions just sent: their globals are these
                elif sent[name] is not None and sent[name] == before.get(name):
                    own[name] = value  # the parent sent it unchanged: the worker's value
            sent = {**before, **sent}
        _modules[fn.__module__] = (own, sent)
    return fn


def _digest(value: Any) -> bytes | None:
    """A digest of ``value`` as pickled; None when it cannot be pickled (never "same")."""
    if isinstance(value, types.ModuleType):
        return value.__name__.encode()
    try:
        return hashlib.blake2b(dumps(value), digest_size=16).digest()
    except Exception:  # noqa: BLE001 - a lock, a generator: compared as changed
        return None
