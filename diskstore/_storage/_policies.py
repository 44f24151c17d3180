"""Eviction policies, described as data.

A policy names the column that orders victims (indexed, so culling never scans the table)
and what a read must record. Reads under ``least-recently-used`` and
``least-frequently-used`` record their access in memory and write it back in batches (at
least every second and on close), so a read stays a single ``SELECT``; eviction order is
therefore exact up to the last flush.

Custom policies are registered in :data:`EVICTION_POLICY`, either as an
:class:`EvictionPolicy` or in diskcache's form: a mapping of ``init`` (a statement run when
the policy is selected, typically ``CREATE INDEX``), ``get`` (what a read updates) and
``cull`` (a ``SELECT {fields} FROM Cache ... LIMIT ?`` naming victims in order), written
against diskcache's table name ``Cache``; ``{now}`` stands for the current time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .._common._record import Record

ReadEffect = Literal["none", "access_time", "access_count"]

# What a diskcache-style ``get`` statement may say, and the read effect each one means.
_READ_EFFECTS: dict[str, ReadEffect] = {
    "": "none",
    "access_time = {now}": "access_time",
    "access_count = access_count + 1": "access_count",
}


class EvictionPolicy(Record):
    """How one eviction policy orders victims and what a read must record.

    ``cull_sql`` and ``init_sql`` are for custom policies: a ``SELECT`` over the ``Cache``
    table returning ``rowid, ns, filename, size`` of victims in order (with ``{now}`` and a
    ``LIMIT ?``), and a statement run when the policy is selected.
    """

    name: str
    #: Column whose ascending order lists victims first; ``None`` disables size eviction.
    order_column: str | None
    #: What a successful read updates.
    on_read: ReadEffect
    cull_sql: str | None = None
    init_sql: str | None = None

    @property
    def index_name(self) -> str | None:
        if self.order_column is None or self.cull_sql is not None:
            return None
        return f"Cache_{self.order_column}"  # diskcache's names

    @classmethod
    def from_diskcache(cls, name: str, spec: Mapping[str, Any]) -> EvictionPolicy:
        """Translate diskcache's ``{'init': ..., 'get': ..., 'cull': ...}`` form."""
        unknown = set(spec) - {"init", "get", "cull"}
        if unknown:
            raise ValueError(f"eviction policy {name!r} has unknown parts {sorted(unknown)}")
        get = " ".join(str(spec.get("get") or "").split())
        if get not in _READ_EFFECTS:
            allowed = " or ".join(repr(effect) for effect in _READ_EFFECTS if effect)
            raise ValueError(
                f"eviction policy {name!r}: a read can update {allowed}, not {spec.get('get')!r}"
            )
        cull = spec.get("cull")
        init = spec.get("init")
        for part, text in (("cull", cull), ("init", init)):
            if text is not None and not isinstance(text, str):
                raise TypeError(f"eviction policy {name!r}: {part} must be SQL text, not {text!r}")
        return cls(
            name,
            None if cull is None else "custom",
            _READ_EFFECTS[get],
            cull_sql=cull,
            init_sql=init,
        )


class PolicyRegistry(dict[str, EvictionPolicy]):
    """The policies by name; a diskcache-style mapping is translated when registered."""

    def __setitem__(self, name: str, policy: EvictionPolicy | Mapping[str, Any]) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"an eviction policy's name must be a non-empty str, not {name!r}")
        if isinstance(policy, Mapping):
            policy = EvictionPolicy.from_diskcache(name, policy)
        elif not isinstance(policy, EvictionPolicy):
            raise TypeError(
                f"eviction policy {name!r} must be an EvictionPolicy or a mapping of "
                f"init/get/cull SQL, not {type(policy).__name__}"
            )
        super().__setitem__(name, policy)


POLICIES = PolicyRegistry(
    (policy.name, policy)
    for policy in (
        EvictionPolicy("none", None, "none"),
        EvictionPolicy("least-recently-stored", "store_time", "none"),
        EvictionPolicy("least-recently-used", "access_time", "access_time"),
        EvictionPolicy("least-frequently-used", "access_count", "access_count"),
    )
)

EVICTION_POLICY = POLICIES
"""The eviction policies by name (the registry diskcache calls ``EVICTION_POLICY``)."""
