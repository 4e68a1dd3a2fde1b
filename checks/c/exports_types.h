/* The types the driver's entry points exchange with Python: in the cffi declarations and
 * in the C of both parts of a split module (checks/driver.py). */
struct drv_group {
	uint32_t what;
	int32_t inside;
	int32_t benign;
	uint32_t inv_and;
	uint64_t count;
	uint64_t first;
};
