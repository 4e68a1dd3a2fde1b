"""Untrusted mail: each hostile case ends within a second or two with a series or one line,
and a fuzzer over the intake (mbox bytes -> series or one MmuCiError line, never another
exception, never a hang). The mails are written here; the diff is of a file of our own."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import b4box, intake
from bot.mbox import Limits
from bot.series import Series
from mmuci.errors import MmuCiError
from mmucore.textsafe import for_html, for_terminal, printable

REPO = Path(__file__).resolve().parents[2]
FAST = 2.5  # seconds: every case here ends well within it


def _patch(
    *, msgid: str = "<p1@example.org>", extra_headers: bytes = b"", body_extra: bytes = b"",
    diff_line: bytes = b"+\treturn 2;", charset: bytes = b"utf-8", n: int = 1, of: int = 1,
) -> bytes:  # fmt: skip
    return (
        b"From mmu-ci@z Thu Jan  1 00:00:00 1970\n"
        b"From: Ann Author <ann@example.org>\n"
        b"Date: Thu, 1 Jan 2026 00:00:00 +0000\n"
        b"Subject: [PATCH " + f"{n}/{of}".encode() + b"] demo: return two\n"
        b"Message-Id: " + msgid.encode() + b"\n" + extra_headers + b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=" + charset + b"\n"
        b"Content-Transfer-Encoding: 8bit\n\n"
        b"Return two. No functional change intended.\n\n" + body_extra + b""
        b"Signed-off-by: Ann Author <ann@example.org>\n"
        b"---\n"
        b"diff --git a/demo.c b/demo.c\n"
        b"--- a/demo.c\n+++ b/demo.c\n"
        b"@@ -1,3 +1,3 @@\n int demo(void)\n {\n-\treturn 1;\n" + diff_line + b"\n"
        b"-- \n2.39.5\n\n"
    )


def _load(tmp_path: Path, data: bytes, **limits) -> Series:
    f = tmp_path / "series.mbox"
    f.write_bytes(data)
    return intake.load(str(f), "http://127.0.0.1:9/unused", limits=Limits(**limits))


def _fails(tmp_path: Path, data: bytes, match: str, **limits) -> str:
    t0 = time.monotonic()
    with pytest.raises(MmuCiError, match=match) as e:
        _load(tmp_path, data, **limits)
    assert time.monotonic() - t0 < FAST
    assert "\n" not in str(e.value)
    return str(e.value)


def test_the_plain_patch_is_a_series(tmp_path: Path) -> None:
    s = _load(tmp_path, _patch())
    assert s.patches[0].subject == "demo: return two" and "+\treturn 2;" in s.patches[0].diff
    assert s.patches[0].nfc_claim


def test_a_long_base_commit_value_ends_at_once(tmp_path: Path) -> None:
    data = _patch(diff_line=b"+\treturn 2;\n\nbase-commit: " + b"a" * 3000)
    _fails(tmp_path, data, "trailer with a value of more than 200 characters")


def test_an_unreadable_reply_is_left_out_not_blocking_the_series(tmp_path: Path) -> None:
    reply = (
        b"From mmu-ci@z Thu Jan  1 00:00:00 1970\nFrom: Troll <t@example.org>\n"
        b"Subject: Re: demo\nMessage-Id: <r1@example.org>\nIn-Reply-To: <p1@example.org>\n\n"
        b"Acked-by: " + b"a" * 3000 + b"\n\n"
    )
    t0 = time.monotonic()
    s = _load(tmp_path, _patch() + reply)
    assert time.monotonic() - t0 < FAST
    assert len(s.patches) == 1 and len(s.skipped) == 1 and "message 2" in s.skipped[0]


def test_a_message_over_the_size_cap_ends_at_once(tmp_path: Path) -> None:
    big = b"+\tint filler[] = { " + b"0, " * 2_700_000 + b"};"  # ~8 MB
    _fails(tmp_path, _patch(diff_line=big), "intake.max_message_bytes", max_message_bytes=4 << 20)


def test_the_am_message_is_b4s_in_linear_time(tmp_path: Path) -> None:
    import io

    import b4
    import liblore.utils

    msg = liblore.utils.parse_message(_patch().split(b"\n", 1)[1])
    fh = io.BytesIO()
    b4.save_git_am_mbox([msg], fh)
    assert b4box.am_mbox(msg) == fh.getvalue()
    big = b"".join(b"+\t/* filler %d */\n" % i for i in range(60_000))  # ~1.2 MB
    t0 = time.monotonic()
    s = _load(tmp_path, _patch(diff_line=big), timeout=20.0)
    assert s.patches[0].mbox.count(b"filler") == 60_000
    assert time.monotonic() - t0 < 10  # b4's own writer alone took ~5 s here


def test_a_slow_parse_is_killed_at_the_intake_deadline(tmp_path: Path) -> None:
    # a hundred trailer-shaped lines just under the refusal bound: b4 digests each for a
    # while; with a tiny deadline the worker is killed and the reason says so
    lines = b"".join(b"X-Thing: " + b"#" * 199 + b"\n" for _ in range(100))
    msg = _fails(tmp_path, _patch(body_extra=lines), "intake.timeout", timeout=0.3)
    assert "0.3 s" in msg


def test_bytes_that_are_not_utf8_in_a_diff_are_refused_not_replaced(tmp_path: Path) -> None:
    msg = _fails(tmp_path, _patch(diff_line=b"+\treturn 2; /* \xff\xfe */"), "not valid utf-8")
    assert "line " in msg and "exact patch" in msg


def test_a_folded_message_id_is_read(tmp_path: Path) -> None:
    data = _patch().replace(b"Message-Id: <p1@example.org>", b"Message-Id: <\n p1@example.org>")
    s = _load(tmp_path, data)
    assert s.patches[0].msgid == "p1@example.org"


def test_a_huge_header_is_refused(tmp_path: Path) -> None:
    hdr = b"X-Long: " + b"b " * 20000 + b"\n"
    _fails(tmp_path, _patch(extra_headers=hdr), "intake.max_header_bytes")


def test_too_many_messages_and_patches(tmp_path: Path) -> None:
    many = b"".join(_patch(msgid=f"<r{i}@example.org>") for i in range(12))
    _fails(tmp_path, many, "intake.max_messages", max_messages=10)
    big_series = _patch(n=1, of=150)
    _fails(tmp_path, big_series, "intake.max_patches")


@pytest.mark.parametrize(
    "ref",
    ["https://[::1/kvm/x@example.org/", "https://lore.kernel.org:99999/kvm/x@y/", "x" * 5000,
     "https://lore.kernel.org/kvm/" + "a" * 5000 + "@example.org/"],
    ids=["ipv6", "port", "long-ref", "long-url"],
)  # fmt: skip
def test_bad_references_are_one_line_exit_2(tmp_path: Path, ref: str) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "MMUCI_DATA_DIR": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    p = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check", ref],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("mmubot: "), p.stderr
    assert "Traceback" not in p.stderr


def test_control_characters_are_shown_not_sent() -> None:
    evil = "fix \x1b[2J\x1b]0;owned\x07 roots \u202eevil\x9b31m"
    for out in (printable(evil), for_terminal(evil), for_html(evil)):
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in out)
    assert printable(evil) == "fix \\x1b[2J\\x1b]0;owned\\x07 roots \\u202eevil\\x9b31m"
    assert printable("line\n\tindented") == "line\n\tindented"


def test_the_reports_carry_no_escape_sequence(tmp_path: Path) -> None:
    from bot.render_html import render_html
    from bot.render_text import render_text
    from bot.report import PatchReport, Report

    evil = "demo \x1b[31mred\x1b[0m \x1b]8;;http://x\x07link"
    pr = PatchReport(1, evil, "p1@example.org", "out-of-scope", evil, False)
    rep = Report(
        series={"subject": evil, "author": evil, "revision": 1}, base=None, patches=[pr],
        verdict="out-of-scope", reason=evil, whole=None, timings={}, reproduce=evil,
    )  # fmt: skip
    for text in (render_text(rep), render_html(rep)):
        assert "\x1b" not in text and "\x07" not in text
        assert "\\x1b" in text


_SEED = _patch() + _patch(msgid="<p2@example.org>", n=1, of=1).replace(b"[PATCH", b"[PATCH v2")


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    b = bytearray(data)
    for pos, cut, ins in edits:
        pos %= len(b) + 1
        b[pos : pos + cut] = ins
    return bytes(b)


_TOKENS = [
    b"\n", b"\n ", b"<", b">", b":", b"\xff", b"\x00", b"=?utf-8?b?", b"?=", b"From ",
    b"\nFrom x\n", b"[PATCH 3/2]", b"Message-Id: <\n a@b>\n", b"\nIn-Reply-To: <\n p1@example.org>",
    b"Content-Type: multipart/mixed; boundary=\"", b"Content-Transfer-Encoding: base64\n",
    b"base-commit: ", b"diff --git ", b"@@ -1 +1 @@\n", b"\x1b[2J", b"\r", b"#" * 250,
]  # fmt: skip


@settings(
    max_examples=200, deadline=5000, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_SEED)), st.integers(0, 40),
            st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=12)),
        ),
        min_size=1, max_size=8,
    )
)  # fmt: skip
def test_fuzzed_mail_is_a_series_or_one_line(tmp_path: Path, edits) -> None:
    data = _mutate(_SEED, edits)
    t0 = time.monotonic()
    try:
        s = _load(tmp_path, data, timeout=3.0)
    except MmuCiError as e:
        assert str(e) and "\n" not in str(e).strip(), str(e)
    else:
        assert s.patches
    assert time.monotonic() - t0 < 4.0


def test_b4_gets_no_network_of_its_own() -> None:
    with b4box.isolated("http://127.0.0.1:9/kvm") as b4:
        with pytest.raises(MmuCiError, match="fetches threads itself"):
            b4.get_requests_session().get("http://127.0.0.1:9/kvm/x/t.mbox.gz")
        with pytest.raises(MmuCiError, match="fetches threads itself"):
            b4.LORENODE.get_mbox_by_msgid("x@example.org", nocache=True)


def test_an_internal_failure_is_one_line_exit_3(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from bot import cli, config

    def broken(path=None, environ=None):  # our own code raising: a bug of mmu-ci
        raise KeyError("lore")

    monkeypatch.setattr(config, "load", broken)
    assert cli.main(["config", "show"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mmu-ci internal error" in err and "KeyError" in err
    assert "test_mail_input.py" in err and "please report" in err


def test_b4s_log_level_is_restored_after_use() -> None:
    log = logging.getLogger("b4")
    log.setLevel(logging.INFO)
    with b4box.isolated("http://127.0.0.1:9/kvm"):
        assert log.level > logging.CRITICAL  # b4's own failures become our one line
    assert log.level == logging.INFO
