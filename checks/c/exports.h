/* The cffi declarations of a driver module: once per module (checks/driver.py: cdef). */
struct drv_group { uint32_t what; int32_t inside; int32_t benign; uint32_t inv_and;
                   uint64_t count; uint64_t first; };
int drv_ncomp(void);
int drv_nfields(void);
void drv_on_signal(int sig);
int drv_nevents(void);
int drv_event(int i, int64_t *kab, const char **file, int *line, const char **func,
              const char **cond);
int drv_page_used(int pg);
void *drv_recorder_anchor(void);
uint64_t drv_recorder_sizes(void);
void drv_recorder_attach(void *log, void *ledger);
