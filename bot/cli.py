"""`mmubot`: parses arguments and dispatches; the work is in bot/commands/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bot import config
from mmuci import proc
from mmuci.errors import InternalError, MmuCiError
from mmucore.textsafe import printable

Handler = Callable[[argparse.Namespace, config.Config], int]


def _not_yet(name: str) -> Handler:
    def handler(args: argparse.Namespace, cfg: config.Config) -> int:
        print(
            f"mmubot {name}: not implemented yet; `mmubot check --help` shows what works now",
            file=sys.stderr,
        )
        return 2

    return handler


def _lazy(module: str, func: str) -> Handler:
    """Import the subcommand module only when it runs, so `mmubot --help` stays fast."""

    def handler(args: argparse.Namespace, cfg: config.Config) -> int:
        import importlib

        run: Handler = getattr(importlib.import_module(f"bot.commands.{module}"), func)
        return run(args, cfg)

    return handler


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmubot",
        description="Checks KVM x86 MMU root-management patches for behaviour changes.",
    )
    p.add_argument("--config", help="TOML configuration file (default: XDG config dir)")
    sub = p.add_subparsers(dest="command", required=True)

    k = sub.add_parser("kernel", help="kernel trees").add_subparsers(dest="kcmd", required=True)
    kp = k.add_parser("prepare", help="turn a Debian linux-source tarball into a git tree")
    kp.add_argument("spec", nargs="+", help="6.1, 6.12, a kernel tarball, or a kernel git tree")
    kp.add_argument(
        "--version",
        help="the version (X.Y[.Z]) of a git tree whose HEAD has no top Makefile; without "
        "it, `git describe --tags` or a version tag at HEAD gives it",
    )
    kp.set_defaults(handler=_lazy("kernel", "prepare"))
    k.add_parser("list", help="registered trees").set_defaults(
        handler=_lazy("kernel", "list_trees")
    )

    c = sub.add_parser("config", help="configuration").add_subparsers(dest="ccmd", required=True)
    c.add_parser("show", help="effective configuration").set_defaults(
        handler=_lazy("config_cmd", "show")
    )

    ck = sub.add_parser("check", help="check a series: message-id, lore URL, mbox or .patch")
    ck.add_argument("series")
    ck.add_argument("--json", dest="json_out", help="write the report as JSON")
    ck.add_argument("--html", dest="html_out", help="write the report as an HTML page")
    ck.add_argument("--tree", help="default tree for the base (name or path; see `kernel list`)")
    ck.add_argument("--revision", type=int, help="check this revision (default: the newest)")
    ck.add_argument("--post", action="store_true", help="publish the report per policy")
    ck.set_defaults(handler=_lazy("check", "run"))

    po = sub.add_parser("post", help="publish a saved report (JSON) per policy")
    po.add_argument("report")
    po.set_defaults(handler=_lazy("post", "run"))

    ob = sub.add_parser("outbox", help="mails and patchwork checks to publish")
    obs = ob.add_subparsers(dest="ocmd", required=True)
    obs.add_parser("list", help="every item and its state").set_defaults(
        handler=_lazy("outbox", "run")
    )
    for name, what in (
        ("show", "one item, with the mail"),
        ("release", "send a held item"),
        ("retry", "send a failed item again"),
        ("drop", "never send it"),
    ):
        op = obs.add_parser(name, help=what)
        op.add_argument("id", type=int)
        op.set_defaults(handler=_lazy("outbox", "run"))

    dbp = sub.add_parser("db", help="project database").add_subparsers(dest="dcmd", required=True)
    dbp.add_parser("upgrade", help="migrate to the newest schema").set_defaults(
        handler=_lazy("db", "upgrade")
    )

    ex = sub.add_parser("extract", help="extract and build the modelled functions of a tree")
    ex.add_argument("--tree", required=True, help="kernel git tree (path or registered name)")
    ex.add_argument("--rev", default="HEAD")
    ex.add_argument("--out", help="directory for the translation unit, build log and module")
    ex.set_defaults(handler=_lazy("extract", "run"))

    df = sub.add_parser("diff", help="run every check between two revisions of one tree")
    df.add_argument("--tree", required=True)
    df.add_argument("base_rev")
    df.add_argument("patched_rev")
    df.add_argument("--check", action="append", dest="checks")
    df.add_argument("--json", dest="json_out")
    df.set_defaults(handler=_lazy("diff", "run"))

    sub.add_parser("demo", help="run a sample series through the whole pipeline").set_defaults(
        handler=_lazy("demo", "run")
    )
    wk = sub.add_parser("worker", help="run queued jobs (embedded pool or Celery) until stopped")
    wk.add_argument("--backend", choices=("embedded", "celery"), help="default: jobs.backend")
    wk.add_argument("--workers", type=int, help="jobs at once (default: jobs.workers)")
    wk.set_defaults(handler=_lazy("worker", "run"))
    sv = sub.add_parser("serve", help="the web dashboard (README: Dashboard)")
    sv.add_argument("--host", help="address to listen on (default: web.host, 127.0.0.1)")
    sv.add_argument("--port", type=int, help="TCP port (default: web.port, 8470; 0: any free)")
    sv.set_defaults(handler=_lazy("serve", "run"))
    im = sub.add_parser("import", help="store saved `check --json` reports for the dashboard")
    im.add_argument("reports", nargs="+", metavar="REPORT.json")
    im.add_argument("--list", dest="list_name", default="", help="the list they came from")
    im.set_defaults(handler=_lazy("import_cmd", "run"))
    sub.add_parser("watch", help="watch a list for new series").set_defaults(
        handler=_not_yet("watch")
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    proc.exit_on_sigterm()  # SIGTERM: kill the jails, unwind (temporary files removed)
    try:
        cfg = config.load(args.config)
        handler: Handler = args.handler
        return handler(args, cfg)
    except MmuCiError as e:  # bad input, could not fetch/apply/build: what to do next
        print(f"mmubot: {printable(str(e))}", file=sys.stderr)  # may quote mail text
        return 2
    except KeyboardInterrupt:
        return 130
    except InternalError as e:
        print(f"mmubot: internal-error: {printable(str(e))}", file=sys.stderr)
        return 3
    except Exception as e:  # noqa: BLE001 - our own bug: exit 3 (internal-error), one line
        from checks.verdict import OUR_BUG, internal_error_reason

        why = internal_error_reason(e, f"running the mmubot {args.command} command")
        print(f"mmubot: internal-error: {printable(why)}", file=sys.stderr)
        return OUR_BUG


if __name__ == "__main__":
    sys.exit(main())
