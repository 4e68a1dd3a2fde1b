/* The cffi declarations of one check's driver, with CHECK its name (checks/driver.py: cdef). */
uint64_t drv_CHECK_nstates(void);
uint64_t drv_CHECK_run_range(uint64_t lo, uint64_t hi, uint64_t *digests, uint8_t *status);
int drv_CHECK_compare(uint64_t lo, uint64_t n, const uint64_t *da, const uint8_t *sa,
                const uint64_t *db, const uint8_t *sb, struct drv_group *groups,
                int ngroups, int max_groups, uint64_t *crash);
int drv_CHECK_run_one(uint64_t idx, uint64_t *before, uint64_t *after);
uint32_t drv_CHECK_invariants(uint64_t idx);
uint64_t drv_CHECK_plain_range(uint64_t lo, uint64_t hi);
uint64_t drv_CHECK_run_pruned(uint64_t lo, uint64_t hi, uint64_t *digests, uint8_t *status,
                uint64_t *probes, uint64_t bit, uint64_t always, uint64_t *ran);
