"""The one exception base: its message says what went wrong and what to do next."""


class MmuCiError(Exception):
    """An error shown to the user without a traceback (exit status 2)."""


class CommandError(MmuCiError):
    """A subprocess failed; carries the command, exit status and the tail of stderr."""

    def __init__(self, argv: list[str], returncode: int, stderr: str, hint: str = "") -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        msg = f"command failed (exit {returncode}): {' '.join(argv)}"
        if tail:
            msg += f"\n{tail}"
        if hint:
            msg += f"\n{hint}"
        super().__init__(msg)


class InternalError(Exception):
    """A failure of mmu-ci itself, never of the input: verdict internal-error, exit status 3.
    Not an MmuCiError: it must not be reported as bad input."""


class ModuleLoadError(InternalError):
    """A module mmu-ci built (or took from its cache) does not load in the sandbox child."""
