"""mmu-ci's test kit: a local public-inbox, the series factory and the code transformations.

Not part of the bot's pipeline: tests, benchmarks and `mmubot demo` use it to make
series from a prepared tree and post them where the bot fetches them.
"""
