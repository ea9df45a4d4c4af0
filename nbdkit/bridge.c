#include "bridge.h"

void s3b_call_log(s3b_log_fn fn, int level, const char *msg) { fn(level, msg); }

int s3b_call_extent(s3b_extent_fn fn, void *extents, uint64_t offset, uint64_t length, uint32_t type) {
	return fn(extents, offset, length, type);
}
