/* The benchmarks' plain loop of one check (checks/c/plain_check.c), with CHECK its name. */
uint64_t drv_CHECK_plain_range(uint64_t lo, uint64_t hi);
