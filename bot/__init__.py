"""The bot: intake, trees, orchestration, reports, publishers, CLI."""
