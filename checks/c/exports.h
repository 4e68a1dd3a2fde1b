/* The cffi declarations of a driver module: once per module (checks/driver.py: cdef), after
 * exports_types.h; also the prototypes the split module's revision part calls them by. */
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
