/* What the Go library and the C plugin (shim/plugin.c) agree on: the
 * callbacks the plugin hands to Go. The exported Go functions themselves
 * are declared in shim/plugin.c, which finds them with dlsym. */
#ifndef S3BACKER_NBDKIT_BRIDGE_H
#define S3BACKER_NBDKIT_BRIDGE_H

#include <stdint.h>

/* Log levels passed to s3b_log_fn. */
#define S3B_LOG_DEBUG 0
#define S3B_LOG_INFO 1
#define S3B_LOG_WARN 2
#define S3B_LOG_ERROR 3

/* Receives one log line (nbdkit_debug or nbdkit_error in the plugin). */
typedef void (*s3b_log_fn)(int level, const char *msg);

/* Adds one extent (nbdkit_add_extent); returns -1 on error. */
typedef int (*s3b_extent_fn)(void *extents, uint64_t offset, uint64_t length, uint32_t type);

/* Go cannot call C function pointers: these call them for it. */
void s3b_call_log(s3b_log_fn fn, int level, const char *msg);
int s3b_call_extent(s3b_extent_fn fn, void *extents, uint64_t offset, uint64_t length, uint32_t type);

#endif
