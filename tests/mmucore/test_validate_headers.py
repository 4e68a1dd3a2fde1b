"""The header probe (gcc -E -dM of the prelude) runs in the jail like every compile."""

from __future__ import annotations

import pytest

from mmucore import jail, validate_headers


def test_the_probe_lists_the_glibc_pasting_macros() -> None:
    if jail.unavailable():
        pytest.skip("no jail on this machine")
    macros = validate_headers._prelude_macros()
    assert "#define __CONCAT(x,y) x ## y" in macros


def test_the_probe_does_not_run_without_the_jail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jail, "unavailable", lambda: "sandbox unavailable: test")
    monkeypatch.delenv(jail.OVERRIDE_ENV, raising=False)
    with pytest.raises(jail.JailUnavailable):
        validate_headers._prelude_macros()
