"""Where gcc and a plain C lexer would disagree, validate refuses: shown against gcc itself.

Each hostile fragment is C of our own (no kernel text). For the ones that hide a
construct from a C-rules reading, a check runs ``gcc -std=gnu11 -E`` on the fragment to
show gcc does read the hidden ``asm`` (so the refusal is about something real).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmuci import proc
from mmucore.build import CFLAGS
from mmucore.extract import Piece
from mmucore.validate import check_translation_unit
from mmucore.validate_lex import tokenize
from tests.mmucore.test_validate import MMU_C, extraction, fn, refused, tu_of

INCBIN = 'asm(".incbin \\"/etc/passwd\\"");'

# fragment (a function body) -> what the refusal names
HIDDEN = {
    "raw string": (f'\tR"z(")z"; {INCBIN} R"z(")z";', "raw string"),
    "raw strings balanced for C rules": (
        '\tR"z(")z"; __asm__(R"y(.incbin "/etc/passwd")y"); R"z(")z";',
        "raw string",
    ),
    "raw string L": (f'\tLR"z(")z"; {INCBIN} LR"z(")z";', "raw string"),
    "raw string u": (f'\tuR"z(")z"; {INCBIN} uR"z(")z";', "raw string"),
    "raw string U": (f'\tUR"z(")z"; {INCBIN} UR"z(")z";', "raw string"),
    "raw string u8": (f'\tu8R"z(")z"; {INCBIN} u8R"z(")z";', "raw string"),
    "raw string split": (f'\tR\\\n"z(")z"; {INCBIN} R"z(")z";', "raw string"),
    "raw string empty delimiter": (f'\tR"(")"; {INCBIN} R"(")";', "raw string"),
    "lone carriage return ends a comment": (f"\t// note\r{INCBIN}", "carriage return"),
    "splice with a form feed": ('\t__as\\\f\nm__("nop");', "inline assembly"),
    "splice with a vertical tab": ('\t__as\\\v\nm__("nop");', "inline assembly"),
}


def _gcc_reads(fragment: str, tmp_path: Path) -> str:
    src = tmp_path / "f.c"
    src.write_bytes(f"void f(void)\n{{\n{fragment}\n}}\n".encode())
    return proc.run(["gcc", CFLAGS[0], "-E", "-P", str(src)]).stdout


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_a_construct_gcc_reads_is_refused(name: str, tmp_path: Path) -> None:
    body, reason = HIDDEN[name]
    out = _gcc_reads(body, tmp_path)
    assert re.search(r"\b(asm|__asm__)\s*\(", out), out  # gcc sees the hidden asm
    e = refused(fn(body, line=300))
    if reason:
        assert reason in e.reason, e.reason
    assert e.file == MMU_C and e.line is not None and 302 <= e.line <= 304
    assert f"{MMU_C}:{e.line}" in str(e)


def test_the_splice_rule_is_gcc_s(tmp_path: Path) -> None:
    # "// note \<blanks><newline>" continues the comment for gcc and for us
    body = "\t// note \\ \t\f\v\n\tint hidden;\n\tint seen;"
    assert "hidden" not in _gcc_reads(body, tmp_path)
    names = {t.text for t in tokenize(body)}
    assert "seen" in names and "hidden" not in names


REFUSED = {
    "NUL byte": ('\tint a;\0asm("nop");', "NUL"),
    "no-break space before asm": ('\tint a; \u00a0asm("nop");', "non-ASCII"),
    "non-ASCII identifier": ("\tint \u00e9t\u00e9 = 0;", "non-ASCII"),
    "Cyrillic a in asm": ('\t\u0430sm("nop");', "non-ASCII"),
    "universal character name": ("\tint \\u00e9 = 0;", "stray"),
    "trigraph directive": ("??=include <stdio.h>", "trigraph"),
    "digraph directive": ("%:include <stdio.h>", "preprocessor"),
    "digraph paste": ("\tint x = a %:%: b;", "preprocessor"),
    "asm goto": ('\tasm goto("jmp %l0" :::: out);', "inline assembly"),
    "__asm volatile": ('\t__asm volatile("nop");', "inline assembly"),
    "register asm": ('\tregister long sp asm("rsp");', "inline assembly"),
    "glibc __CONCAT builds __asm__": ('\t__CONCAT(__as, m__)("nop");', "__CONCAT"),
    "glibc __REDIRECT holds asm": ("\textern int __REDIRECT(x, (void), system);", "__REDIRECT"),
    "glibc attribute macro": ("\tstatic int x __attribute_used__;", "__attribute_used__"),
    "shim paste macro": ('\tMMU_SHIM_CAT(__as, m__)("nop");', "MMU_SHIM_CAT"),
    "_Pragma": ('\t_Pragma("GCC dependency \\"/etc/passwd\\"")', "_Pragma"),
    "section attribute": ('\tstatic int x __attribute__((section(".init_array")));', "section"),
    "constructor": ("\tstatic int x __attribute((__constructor__));", "constructor"),
    "destructor": ("\tstatic int x __attribute__((destructor));", "destructor"),
    "alias": ('\tstatic int x __attribute__((alias("y")));', "alias"),
    "ifunc": ('\tstatic int x __attribute__((ifunc("y")));', "ifunc"),
    "used": ("\tstatic int x __attribute__((unused, used));", "used"),
    "naked": ("\tstatic int x __attribute__((naked));", "naked"),
    "visibility": ('\tint x __attribute__((visibility("default")));', "visibility"),
    "return address": ("\tvoid *p = __builtin_return_address(0);", "__builtin_return_address"),
    "extract return addr": ("\tvoid *p = __builtin_extract_return_addr(0);", "extract_return"),
    "apply args": ("\tvoid *p = __builtin_apply_args();", "__builtin_apply_args"),
    "computed goto": ("\tvoid *p = 0;\n\tgoto *p;", "computed goto"),
    "label address": ("\tvoid *p = &&out;\nout:\n\treturn;", "address of a label"),
    "label address after return": ("\treturn &&out;", "address of a label"),
    "fs segment": ("\tint v = *(int __seg_fs *)0x28;", "address space"),
    "base file": ("\tconst char *p = __BASE_FILE__;", "__BASE_FILE__"),
    "c2x attribute by digraph": ("\t<:<:gnu::constructor:>:> int x;", "[[...]]"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_lexing_is_refused_at_its_line(name: str) -> None:
    body, reason = REFUSED[name]
    e = refused(fn(body, line=400))
    assert reason in e.reason, e.reason
    assert e.file == MMU_C and e.line is not None and 402 <= e.line <= 404, e.line


CODE_ADDRESSES = {
    "libc address arithmetic call": (
        "\tlong off = 0, off2 = 0;\n"
        "\t((long (*)(long, ...))((unsigned long)(void *)abort - off + off2))(57);",
        "computed address",
    ),
    "integer to function pointer": ("\tvoid (*f)(void) = (void (*)(void))0x401000;", "function"),
    "call through arithmetic": ("\tlong a = 0;\n\t(*(void (**)(void))a)();", "function"),
    "call through a cast to a typedef": (
        "\ttypedef void mmu_fn_t(void);\n\tlong a = 0;\n\tvoid *f = (mmu_fn_t *)a;",
        "function-pointer type",
    ),
    "call of a number": ("\t((void (*)(void))0)();", "computed address"),
    "call of a sum": ("\tchar *p = 0;\n\t((void (*)(void))(p + 8))();", "computed address"),
    "call through a typedef cast": ("\ttypedef void t_fn(void);\n\t((t_fn *)8)();", "computed"),
    "call of a sum through a variable": ("\tvoid (*f)(void) = 0;\n\t(f + 1)();", "computed"),
    "address of abort": ("\tunsigned long a = (unsigned long)&abort;", "abort()"),
    "abort as a value": ("\tvoid *a = (void *)abort;", "abort()"),
    "memcpy as a value": ("\tvoid *a = memcpy;", "memcpy()"),
    "longjmp as a value": ("\tvoid *a = (void *)(longjmp);", "longjmp()"),
    "builtin as a value": ("\tvoid *a = __builtin_memcpy;", "__builtin_memcpy"),
    "stderr": ("\tvoid *a = stderr;", "stderr"),
    "errno": ("\tint *a = &errno;", "errno"),
    "typeof of abort": ("\t__typeof__(abort) *f = 0;", "abort()"),
}


@pytest.mark.parametrize("name", sorted(CODE_ADDRESSES))
def test_computed_code_addresses_are_refused(name: str) -> None:
    body, reason = CODE_ADDRESSES[name]
    e = refused(fn(body, line=500))
    assert reason in e.reason, e.reason
    assert e.file == MMU_C and e.line is not None and 502 <= e.line <= 505


SHIM_INTERNALS = {
    "event counter": "\tmmu_shim_nevents = 0;",
    "event log": "\tmmu_shim_events[0].kind = 0;",
    "recorder function": "\tmmu_shim_record(0, 0, 0, 0);",
    "reset": "\tmmu_shim_reset();",
    "driver state": "\tdrv_mmu.root.hpa = 0;",
    "event kind": "\tint k = MMU_EV_WARN;",
    "cffi glue": "\tvoid *p = _cffi_exports;",
    "a WARN site": "\t__mmu_site.key = 0;",
}


@pytest.mark.parametrize("name", sorted(SHIM_INTERNALS))
def test_a_name_of_the_recorder_or_driver_is_refused(name: str) -> None:
    e = refused(fn(SHIM_INTERNALS[name], line=600))
    word = re.search(r"[A-Za-z_]\w*(?= *[.\[(=;])", SHIM_INTERNALS[name]).group()
    assert word in e.reason and "kernel-facing API" in e.reason, e.reason
    assert e.line == 602


MACRO_PIECES = {
    "#define KVM_RESET() (mmu_shim_nevents = 0)": "mmu_shim_nevents",
    "#define KVM_CALL(a) ((void (*)(void))(a))()": "function-pointer type",
    "#define KVM_BASE ((unsigned long)(void *)abort)": "abort()",
    "#define KVM_OUT stderr": "stderr",
    "#define KVM_KEEP __attribute_used__": "__attribute_used__",
}


@pytest.mark.parametrize("text", sorted(MACRO_PIECES))
def test_a_macro_piece_reaching_outside_is_refused(text: str) -> None:
    name = text.split()[1].split("(")[0]
    p = Piece("macro", name, "arch/x86/kvm/mmu/mmu.c", 9, text)
    e = refused(p)
    assert MACRO_PIECES[text] in e.reason and e.line == 9, e.reason


def test_a_macro_piece_calling_the_library_passes() -> None:
    p = Piece("macro", "KVM_COPY", MMU_C, 9, "#define KVM_COPY(a, b) memcpy(a, b, 8)")
    check_translation_unit(extraction((p,), tu_of((p,))))


BENIGN = {
    "logical and": "\tif (kvm && !kvm->x)\n\t\treturn;",
    "and after a call": "\tint r = f(1) && g[2] && (kvm) && 3 && 'a';",
    "return of an and": "\treturn a && b;",
    "call through a pointer": "\tint (*fp)(int) = 0;\n\tfp(1);\n\t(*fp)(2);",
    "member and element calls": "\tkvm->ops->flush(kvm);\n\tops[1](kvm);\n\t(kvm->cb)(kvm);",
    "direct library call": "\tmemcpy(a, b, 8);\n\t(memcpy)(a, b, 1);",
    "conditional callee": "\t(x ? f : g)(1);",
    "shadowing local named like libc": "\tint free = 0, abort = 1;\n\tfree += abort;",
    "non-ASCII in a string and a comment": '\tpr_err("caf\u00e9"); /* na\u00efve */',
    "identifier ending in R before a string": '\tpr_err(FOOR"x");',
    "kernel names like the shim's": "\tstruct kvm_mmu_page *sp = to_shadow_page(root);\n"
    "\t__mmu_unsync_walk(sp, NULL);",
    "plain casts": "\tu64 v = (u64)(unsigned long)kvm;\n\tvoid *p = (void *)v;",
    "offsetof": "\tsize_t o = offsetof(struct kvm, mmu_lock);",
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_plain_kernel_c_still_passes(name: str) -> None:
    p = fn(BENIGN[name])
    check_translation_unit(extraction((p,), tu_of((p,))))
