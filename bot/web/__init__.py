"""The dashboard (`mmubot serve`): server-rendered pages over the service database, each
page with its JSON twin under /api/ built from the same query.

One module per page family: `series` (the list and one series), `diffs` (one check
result explained), `history` (plots), `status` (queue, workers, polls, failures), `runs`
(the manual-run form and POST /api/runs, the only thing that writes). `app` ties them
together; `common` holds the templates, rate limits and small helpers.
"""
