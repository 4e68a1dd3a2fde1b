"""One module per `mmubot` subcommand; each exposes ``run(args, cfg) -> int``."""
