"""What every layer of mmu-ci shares and no stage owns: the error type, the one
subprocess wrapper, and the hash over our own code that versions every cache."""
