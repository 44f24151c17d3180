"""Seeded keys and values, identical for every engine in a run.

Small values and sized blobs are random bytes, so compression cannot flatter anyone;
the JSON-like objects are lists of records with repetitive field names and small
vocabularies, as API payloads and parsed documents are, so compression has something
to find.
"""

from __future__ import annotations

import pickle
import random
from typing import Any

KB = 1024
MB = 1024 * KB

_TAGS = ("alpha", "beta", "gamma", "delta", "news", "sport", "tech", "food", "travel", "music")
_CITIES = ("Lisbon", "Oslo", "Lyon", "Austin", "Osaka", "Pune", "Cork", "Quito", "Perth")
_STATUSES = ("active", "pending", "disabled")


def key(index: int) -> str:
    """Return the key for ``index``; fixed width so every key has the same length."""
    return f"key-{index:08d}"


def small_value(rng: random.Random) -> bytes:
    """Return a small random byte string (16 to 64 bytes)."""
    return rng.randbytes(rng.randint(16, 64))


def blob(rng: random.Random, size: int) -> bytes:
    """Return ``size`` incompressible random bytes."""
    return rng.randbytes(size)


def record(rng: random.Random, ident: int) -> dict[str, Any]:
    """Return one JSON-like record: nested dicts, lists, numbers and short strings."""
    user = rng.randrange(100_000)
    return {
        "id": ident,
        "user": f"user{user}",
        "email": f"user{user}@example.com",
        "status": rng.choice(_STATUSES),
        "score": round(rng.random() * 100, 2),
        "tags": rng.sample(_TAGS, 3),
        "address": {"city": rng.choice(_CITIES), "zip": f"{rng.randrange(100_000):05d}"},
        "history": [rng.randrange(1000) for _ in range(4)],
    }


def _record_size(rng: random.Random) -> float:
    sample = [record(rng, i) for i in range(64)]
    return len(pickle.dumps(sample, protocol=pickle.HIGHEST_PROTOCOL)) / len(sample)


def json_like(rng: random.Random, approx_bytes: int, *, first_id: int = 0) -> dict[str, Any]:
    """Return a JSON-like document whose pickle is roughly ``approx_bytes`` long."""
    if approx_bytes <= 0:
        raise ValueError(f"approx_bytes must be positive, got {approx_bytes!r}")
    count = max(1, round(approx_bytes / _record_size(random.Random(0))))
    return {
        "page": first_id,
        "total": count,
        "items": [record(rng, first_id + i) for i in range(count)],
    }
