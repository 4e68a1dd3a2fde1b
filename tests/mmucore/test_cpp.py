"""Conditional compilation as cpp resolves it, on small texts of our own."""

from __future__ import annotations

import pytest

from mmucore import cpp

CONFIG = {"CONFIG_X86_64": "1", "CONFIG_KVM": "1", "CONFIG_KVM_MODULE": "1", "N": "3"}


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("defined(CONFIG_X86_64)", True),
        ("defined CONFIG_X86_32", False),
        ("IS_ENABLED(CONFIG_KVM) && !IS_ENABLED(CONFIG_X86_32)", True),
        ("IS_BUILTIN(CONFIG_KVM)", True),
        ("N * 2 + 1 == 7 && (N << 2) == 12", True),
        ("UNKNOWN_NAME", False),  # an unknown identifier is 0, as in cpp
        ("N > 2 ? 1 : 0", True),
        ("0x10 == 16 /* a comment */", True),
        ("(((", False),  # unreadable: false, never an exception
        ("1 / 0", False),
    ],
)
def test_eval_if(expr: str, want: bool) -> None:
    assert cpp.eval_if(expr, CONFIG) is want


def test_resolve_blanks_inactive_lines_and_keeps_line_numbers() -> None:
    text = "\n".join(
        [
            "#ifdef CONFIG_X86_64",
            "int on64;",
            "#else",
            "int on32;",
            "#endif",
            "#if IS_ENABLED(CONFIG_NOPE)",
            "int never;",
            "#elif N == 3",
            "int three;",
            "#endif",
            "#define LATER 1",
            "#if defined(LATER)",
            "int later;",
            "#endif",
        ]
    )
    macros = dict(CONFIG)
    out = cpp.resolve(text, macros).split("\n")
    assert len(out) == len(text.split("\n"))
    kept = [line for line in out if line.strip()]
    assert kept == ["int on64;", "int three;", "#define LATER 1", "int later;"]
    assert macros.get("LATER") == "1"


def test_undef_and_include_are_seen() -> None:
    seen: list[str] = []
    macros = {"A": "1"}
    text = '#include "linux/kvm_host.h"\n#undef A\n#ifdef A\nint a;\n#endif\nint b;'
    out = cpp.resolve(text, macros, seen.append)
    assert seen == ["linux/kvm_host.h"] and "A" not in macros
    assert "int a;" not in out and "int b;" in out


@pytest.mark.parametrize(
    "text", ["#endif\n#else\nint x;", "#if 1\n" * 40 + "int y;", "#if\n#elif\n#ifdef\n"]
)
def test_unbalanced_or_deep_text_never_raises(text: str) -> None:
    out = cpp.resolve(text, dict(CONFIG))
    assert out.count("\n") == text.count("\n")
