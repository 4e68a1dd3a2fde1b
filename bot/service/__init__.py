"""The service layer: what runs unattended on top of the CLI's library (watcher, jobs,
commands) and what it stores. Nothing below `bot/service` imports it."""
