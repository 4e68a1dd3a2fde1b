"""Untrusted C is refused before compiling, and a module reaching too far after it."""

from __future__ import annotations

from pathlib import Path

import pytest
import tree_sitter as ts
import tree_sitter_c as tsc
from cffi import FFI

from mmuci import proc
from mmucore.extract import Extraction, Piece
from mmucore.validate import RefusedInput, check_piece, check_symbols, check_translation_unit

MMU_C = "arch/x86/kvm/mmu/mmu.c"


def extraction(pieces: tuple[Piece, ...], tu: str, shimmed: tuple[str, ...] = ()) -> Extraction:
    """A hand-made extraction of these pieces and this TU."""
    return Extraction(tree=Path("."), rev="", version="", features=frozenset(), functions={},
                      entry_points=(), missing={}, shimmed=shimmed, structs={},
                      pieces=pieces, tu=tu, key="")  # fmt: skip


def fn(body: str, name: str = "mmu_helper", line: int = 100) -> Piece:
    return Piece(
        "function", name, MMU_C, line, f"static void {name}(struct kvm *kvm)\n{{\n{body}\n}}"
    )


def tu_of(pieces: tuple[Piece, ...], head: str = '#include "mmu_shim_kernel.h"\n') -> str:
    parts = [head]
    for p in pieces:
        parts.append(f'#line {p.line} "{p.file}"\n{p.text}\n')
    return "".join(parts)


def refused(*pieces: Piece, tu: str | None = None, known: tuple[str, ...] = ()) -> RefusedInput:
    ex = extraction(pieces, tu if tu is not None else tu_of(pieces), shimmed=known)
    with pytest.raises(RefusedInput) as e:
        check_translation_unit(ex)
    return e.value


HOSTILE = {
    "declares system": ('\tint system(const char *);\n\tsystem("id");', "system()"),
    "parenthesised name": ("\tint (system)(const char *), x;", "system()"),
    "returns a pointer": ("\tchar *getenv(const char *);", "getenv()"),
    "include": ("#include <stdio.h>", "preprocessor"),
    "include after a comment": ("\t/* c */ #include <stdio.h>", "preprocessor"),
    "digraph include": ("%:include <stdio.h>", "preprocessor"),
    "define": ("#define X 1", "preprocessor"),
    "pragma operator": ('\t_Pragma("GCC optimize(0)")', "_Pragma"),
    "asm": ('\tasm volatile("ud2");', "inline assembly"),
    "__asm__ split by a continuation": ('\t__as\\\nm__ volatile("nop");', "inline assembly"),
    "frame address builtin": ("\tvoid *p = __builtin_frame_address(0);", "__builtin_frame_address"),
    "alloca builtin": ("\tchar *p = __builtin_alloca(1 << 30);", "__builtin_alloca"),
    "constructor attribute": ('\tstatic int x __attribute__((used, section(".init")));', "used"),
    "weak attribute": ("\tstatic int x __attribute__((weak));", "weak"),
    "c23 attribute": ("\t[[gnu::constructor]] int x;", "[[...]]"),
    "nested function": ("\tvoid g(void) { }", "nested function"),
    "python api": ('\tPyRun_SimpleString("import os");', "Python C-API"),
    "trigraph": ("\tint x = 1 ??/\n+ 1;", "trigraph"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_piece_is_refused_at_its_line(name: str) -> None:
    body, reason = HOSTILE[name]
    e = refused(fn(body, line=200))
    assert reason in e.reason
    assert e.file == MMU_C and e.line is not None and 202 <= e.line <= 203
    assert e.piece is not None and e.piece.name == "mmu_helper"
    assert f"{MMU_C}:{e.line}" in str(e)
    assert "Review the patch by hand" in str(e)


def test_constructor_attribute_on_the_function_itself() -> None:
    p = Piece("function", "f", MMU_C, 7, "static void __attribute__((constructor)) f(void)\n{\n}")
    e = refused(p)
    assert "constructor" in e.reason and e.line == 7


BENIGN = {
    "known function declared": "\tvoid kvm_flush_remote_tlbs(struct kvm *kvm);",
    "function pointer": "\tint (*fp)(void) = NULL;",
    "asm in a string and a comment": '\tpr_err("asm __asm__ #include"); /* asm #define */',
    "allowed builtin": "\tif (__builtin_expect(!!kvm, 1)) return;",
    "allowed attribute": "\tint x __attribute__((__unused__, aligned(8)));",
    "cleanup of a known function": "\tint x __attribute__((__cleanup__(kvm_flush_remote_tlbs)));",
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_plain_kernel_c_passes(name: str) -> None:
    p = fn(BENIGN[name])
    check_translation_unit(extraction((p,), tu_of((p,)), shimmed=("kvm_flush_remote_tlbs",)))


@pytest.mark.slow
def test_every_function_of_the_real_mmu_c_passes(tree_612) -> None:
    src = (Path(tree_612.path) / MMU_C).read_bytes()
    tree = ts.Parser(ts.Language(tsc.language())).parse(src)
    n = 0
    for node in tree.root_node.children:
        if node.type == "function_definition" and b"#" not in node.text:
            name = node.child_by_field_name("declarator").text.split(b"(")[0].decode()
            check_piece(Piece("function", name, MMU_C, node.start_point[0] + 1,
                              node.text.decode()), set())  # fmt: skip
            n += 1
    assert n > 200


MACROS = {
    "#define INVALID_PAGE (~(hpa_t)0)": None,
    "#define KVM_MMU_ROOT_PREVIOUS(i) \\\n\t(1 << (1 + (i)))": None,
    "#define kvm_x86_call(func) static_call(kvm_x86_##func)": None,
    '#define vcpu_err(v, fmt, ...) kvm_err("%i " fmt, (v)->vcpu_id, ## __VA_ARGS__)': None,
    "#define INVALID_PAGE 0\n#include <stdio.h>": "second directive",
    '#define INVALID_PAGE asm("")': "inline assembly",
    "#define INVALID_PAGE(a, b) a ## b": "macro argument 'a'",
    "#define INVALID_PAGE(b) __as ## b": "pasting onto '__as'",
    "#define OTHER 1": "not '#define",
    "#undef INVALID_PAGE": "not '#define",
}


@pytest.mark.parametrize("text", sorted(MACROS))
def test_macro_pieces(text: str) -> None:
    name = text.split()[1].split("(")[0]
    name = "INVALID_PAGE" if name == "OTHER" else name  # a piece whose text is another macro
    p = Piece("macro", name, "arch/x86/include/asm/kvm_host.h", 40, text)
    ex = extraction((p,), tu_of((p,)))
    if MACROS[text] is None:
        check_translation_unit(ex)
    else:
        with pytest.raises(RefusedInput) as e:
            check_translation_unit(ex)
        assert MACROS[text] in e.value.reason


def test_tu_directives_are_only_those_the_extractor_emits() -> None:
    m = Piece("macro", "INVALID_PAGE", "arch/x86/include/asm/kvm_host.h", 40,
              "#define INVALID_PAGE (~(hpa_t)0)")  # fmt: skip
    f = fn("\tkvm->x = INVALID_PAGE;")
    ok = tu_of((m, f), head='#include "mmu_shim_kernel.h"\n#include <stdint.h>\n')
    check_translation_unit(extraction((m, f), ok))
    for line, why in [
        ("#include <stdio.h>", "did not emit"),
        ('#include "../../../etc/passwd"', "did not emit"),
        ("#pragma GCC optimize(0)", "did not emit"),
        ("#define INVALID_PAGE 0", "did not emit"),
        ("#define system 0", "did not emit"),
        ('__asm__(".text");', "inline assembly"),
        ("int execve(const char *, char *const[], char *const[]);", "execve()"),
    ]:
        e = refused(m, f, tu=ok + line + "\n")
        assert why in e.reason, (line, e.reason)
        assert line.split()[0] in e.source_line


def test_tu_line_is_mapped_back_to_the_piece() -> None:
    good = fn("\tkvm->x = 0;", name="good", line=10)
    tu = tu_of((good,)) + '#line 500 "arch/x86/kvm/mmu/mmu.c"\nstatic int x;\n\nint y asm("z");\n'
    e = refused(good, tu=tu)
    assert (e.file, e.line) == (MMU_C, 502)


def _shared_object(tmp: Path, pieces: tuple[Piece, ...]) -> Path:
    src = tmp / "m.c"
    src.write_text("#include <stdlib.h>\n#include <string.h>\n" + tu_of(pieces, head=""))
    so = tmp / "m.so"
    proc.run(["gcc", "-shared", "-fPIC", "-O1", "-w", "-o", so, src])
    return so


def test_symbol_outside_the_allow_list_names_the_patch_line(tmp_path: Path) -> None:
    ok = Piece("function", "copy", MMU_C, 50, "void copy(char *a, const char *b)\n{\n"
               "\tmemcpy(a, b, 8);\n}")  # fmt: skip
    body = '\tint r;\n\n\tr = system("id");'
    bad = Piece("function", "kvm_mmu_free_roots", MMU_C, 3500,
                f"void kvm_mmu_free_roots(void)\n{{\n{body}\n}}")  # fmt: skip
    so = _shared_object(tmp_path, (ok, bad))
    with pytest.raises(RefusedInput) as e:
        check_symbols(so, extraction((ok, bad), ""))
    assert "system()" in e.value.reason
    assert (e.value.file, e.value.line) == (MMU_C, 3504)
    assert 'r = system("id");' in str(e.value)
    check_symbols(_shared_object(tmp_path, (ok,)), extraction((ok,), ""))


@pytest.mark.parametrize("sym", ["fork", "execve", "open", "socket", "connect", "dlopen", "mmap"])
def test_process_file_and_network_calls_are_refused(tmp_path: Path, sym: str) -> None:
    p = Piece("function", "f", MMU_C, 1, f"long f(void)\n{{\n\treturn (long)&{sym};\n}}")
    src = tmp_path / "m.c"
    src.write_text(f"extern char {sym};\n" + p.text)
    so = tmp_path / "m.so"
    proc.run(["gcc", "-shared", "-fPIC", "-o", so, src])
    with pytest.raises(RefusedInput, match=sym):
        check_symbols(so, extraction((p,), ""))


def test_a_cffi_module_passes_the_symbol_check(tmp_path: Path) -> None:
    ffi = FFI()
    ffi.cdef("struct s { int a; char *p; }; int f(struct s *, int); void *g(long);"
             "extern int counter;")  # fmt: skip
    ffi.set_source("_validate_cffi_probe", "#include <stdlib.h>\n#include <string.h>\n"
                   "struct s { int a; char *p; }; int counter;\n"
                   "int f(struct s *x, int n) { memset(x, 0, sizeof(*x)); return n; }\n"
                   "void *g(long n) { return calloc(1, n); }\n")  # fmt: skip
    so = Path(ffi.compile(tmpdir=str(tmp_path)))
    check_symbols(so, extraction((), ""))


def test_directive_the_extractor_left_out_is_refused() -> None:
    # the piece is what an extractor gives: its text with the directives blanked, its
    # source as the tree has it
    src = "static void helper(void)\n{\n#ifdef CONFIG_X\n\ta = 1;\n#endif\n"
    text = "static void helper(void)\n{\n\n\n\n\n\ta = 2;\n}"
    p = Piece("function", "helper", MMU_C, 3, text, source=src + "#include <stdio.h>\n\ta = 2;\n}")
    with pytest.raises(RefusedInput) as e:
        check_translation_unit(extraction((p,), tu_of((p,))))
    assert "#include directive inside helper" in e.value.reason
    assert (e.value.file, e.value.line) == (MMU_C, 8)
    assert "#include <stdio.h>" in str(e.value)
    # conditionals are what the extractor resolves: they pass
    p = Piece("function", "helper", MMU_C, 3, text, source=src + "\n\ta = 2;\n}")
    check_translation_unit(extraction((p,), tu_of((p,))))
