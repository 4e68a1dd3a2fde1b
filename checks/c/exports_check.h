/* The cffi declarations of one check's driver, with CHECK its name (checks/driver.py: cdef). */
uint64_t drv_CHECK_nstates(void);
uint64_t drv_CHECK_run_range(uint64_t lo, uint64_t hi, uint64_t *whole, uint8_t *status);
uint64_t drv_CHECK_differing(uint64_t lo, uint64_t n, const uint64_t *wa, const uint8_t *sa,
                const uint64_t *wb, const uint8_t *sb, uint64_t *idx, uint64_t *crash);
uint64_t drv_CHECK_rows_at(const uint64_t *idx, uint64_t n, uint64_t *rows, uint64_t *whole,
                uint8_t *status);
int drv_CHECK_compare(const uint64_t *idx, uint64_t n, const uint64_t *da, const uint64_t *db,
                struct drv_group *groups, int ngroups, int max_groups);
int drv_CHECK_run_one(uint64_t idx, uint64_t *before, uint64_t *after);
uint32_t drv_CHECK_invariants(uint64_t idx);
uint64_t drv_CHECK_run_pruned(uint64_t lo, uint64_t hi, uint64_t *whole, uint8_t *status,
                uint64_t *probes, uint64_t bit, uint64_t always, uint64_t *ran);
