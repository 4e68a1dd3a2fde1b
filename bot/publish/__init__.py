"""Publishing a report: the threaded reply, the patchwork checks, the outbox.

report (JSON form) -> `view` (typed) -> `policy` decides -> `reply` / `patchwork` build the
items -> `outbox` stores each before any attempt and sends it exactly once. `publish.run`
ties them together for `mmubot check --post` and `mmubot post REPORT.json`.
"""
