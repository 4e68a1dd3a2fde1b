"""The memo's JSON form: values to and from tagged JSON, never pickle.

Dataclasses, NamedTuples and Enums are named by ``module:Class`` and rebuilt only when
the module is one of ours (bot, checks, mmucore) and the class is of that kind; a
dataclass's stored field names must be exactly its fields. Anything else is an error.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
from pathlib import Path, PurePath
from typing import Any

MAX_BYTES = 64 << 20  # a memo entry larger than this is not read
_OURS = ("bot.", "checks.", "mmucore.")


class CodecError(ValueError):
    """A memo entry that is not a value this codec writes."""


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _enc(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, enum.Enum):
        return {"t": "enum", "c": _name(type(v)), "v": _enc(v.value)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = {f.name: _enc(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return {"t": "dc", "c": _name(type(v)), "v": fields}
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return {"t": "nt", "c": _name(type(v)), "v": [_enc(x) for x in v]}
    if isinstance(v, list | tuple | set | frozenset):
        items = sorted(v, key=repr) if isinstance(v, set | frozenset) else v
        return {"t": type(v).__name__, "v": [_enc(x) for x in items]}
    if isinstance(v, dict):
        return {"t": "dict", "v": [[_enc(k), _enc(x)] for k, x in v.items()]}
    if isinstance(v, bytes):
        return {"t": "bytes", "v": v.hex()}
    if isinstance(v, PurePath):
        return {"t": "path", "v": str(v)}
    raise CodecError(f"memo: cannot store a {type(v).__name__}")


def _cls(name: Any, kind: str) -> type:
    if not isinstance(name, str) or ":" not in name:
        raise CodecError(f"memo: bad class name {name!r}")
    mod, qual = name.split(":", 1)
    if not mod.startswith(_OURS):
        raise CodecError(f"memo: {name} is not one of ours")
    obj: Any = importlib.import_module(mod)
    for part in qual.split("."):
        obj = getattr(obj, part)
    ok = {
        "dc": isinstance(obj, type) and dataclasses.is_dataclass(obj),
        "nt": isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields"),
        "enum": isinstance(obj, type) and issubclass(obj, enum.Enum),
    }[kind]
    if not ok:
        raise CodecError(f"memo: {name} is not a {kind}")
    cls: type = obj
    return cls


def _dec(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if not isinstance(v, dict) or set(v) - {"t", "c", "v"} or "t" not in v:
        raise CodecError("memo: not a tagged value")
    t, x = v["t"], v.get("v")
    if t in ("list", "tuple", "set", "frozenset") and isinstance(x, list):
        items = [_dec(i) for i in x]
        return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[t](items)
    if t == "dict" and isinstance(x, list):
        if not all(isinstance(p, list) and len(p) == 2 for p in x):
            raise CodecError("memo: bad dict")
        return {_dec(k): _dec(i) for k, i in x}
    if t == "bytes" and isinstance(x, str):
        return bytes.fromhex(x)
    if t == "path" and isinstance(x, str):
        return Path(x)
    if t == "enum":
        return _cls(v.get("c"), "enum")(_dec(x))
    if t == "nt" and isinstance(x, list):
        return _cls(v.get("c"), "nt")(*[_dec(i) for i in x])
    if t == "dc" and isinstance(x, dict):
        cls = _cls(v.get("c"), "dc")
        names = {f.name for f in dataclasses.fields(cls)}
        if set(x) != names:
            raise CodecError(f"memo: fields of {_name(cls)} differ from the stored ones")
        obj: Any = object.__new__(cls)  # as pickle does: no __init__ side effects
        for k, i in x.items():
            object.__setattr__(obj, k, _dec(i))
        return obj
    raise CodecError(f"memo: unknown tag {t!r}")


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON bytes."""
    return json.dumps(_enc(value), separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    """The value ``dumps`` wrote; CodecError for anything else (or too large)."""
    if len(data) > MAX_BYTES:
        raise CodecError(f"memo: entry over {MAX_BYTES} bytes")
    try:
        tree = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise CodecError(f"memo: not JSON ({e})") from e
    return _dec(tree)
