"""The memo stores JSON, never pickle: round trips, refusals, old entries as misses."""

from __future__ import annotations

import hashlib
import hmac
import pickle
from pathlib import Path

import pytest

from bot import memo_codec
from bot.memo import _MAGIC, Memo
from checks.verdict import Verdict


def test_an_extraction_and_a_check_result_round_trip(tree_61, tmp_path: Path) -> None:
    from mmucore.extract import extract

    ex = extract(tree_61.path, tree_61.commit)
    memo = Memo(tmp_path / "memo")
    memo.put(["x", "1"], ex)
    assert Memo(memo.dir).get(["x", "1"]) == ex
    value = {"v": Verdict.SAME if hasattr(Verdict, "SAME") else list(Verdict)[0], "n": (1, 2)}
    memo.put(["x", "2"], value)
    assert Memo(memo.dir).get(["x", "2"]) == value


def test_an_old_pickle_entry_is_a_miss(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "memo")
    memo.put(["k"], "same")
    entry = memo._path(["k"])
    data = pickle.dumps("same")  # the old format, even under a valid HMAC of the key
    mac = hmac.new(memo._secret(), entry.name.encode() + b"\0" + data, hashlib.sha256)
    entry.write_bytes(b"mmu-ci memo 2\n" + mac.digest() + data)
    assert Memo(memo.dir).get(["k"]) is None


@pytest.mark.parametrize(
    "tree",
    [
        {"t": "dc", "c": "os:stat_result", "v": {}},  # not one of ours
        {"t": "dc", "c": "subprocess:CompletedProcess", "v": {}},
        {"t": "nt", "c": "bot.memo_codec:CodecError", "v": []},  # not a NamedTuple
        {"t": "dc", "c": "mmuci.proc:Completed", "v": {"argv": []}},  # fields missing
        {"t": "exec", "v": "import os"},
        {"t": "dict", "v": [[1]]},
    ],
)
def test_the_codec_refuses_what_it_does_not_write(tree) -> None:
    import json

    with pytest.raises(memo_codec.CodecError):
        memo_codec.loads(json.dumps(tree).encode())


def test_an_authentic_but_refused_entry_is_a_miss(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "memo")
    memo.put(["k"], "same")
    entry = memo._path(["k"])
    data = b'{"t":"dc","c":"os:stat_result","v":{}}'
    mac = hmac.new(memo._secret(), entry.name.encode() + b"\0" + data, hashlib.sha256)
    entry.write_bytes(_MAGIC + mac.digest() + data)
    assert Memo(memo.dir).get(["k"]) is None


def test_an_oversized_entry_is_refused() -> None:
    with pytest.raises(memo_codec.CodecError):
        memo_codec.loads(b" " * (memo_codec.MAX_BYTES + 1))
