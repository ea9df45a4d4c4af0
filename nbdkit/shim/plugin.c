/* nbdkit-s3backer-plugin.so: the C half of s3backer's nbdkit plugin.
 *
 * The disk is served by Go code in libs3backer-nbdkit.so (../plugin.go),
 * installed beside this file. That library is loaded only in the process
 * that serves, from .after_fork: a Go runtime loaded before nbdkit forks
 * to daemonize loses its threads in the child and hangs. Parameters are
 * checked before that, in .config_complete, by a short-lived child process
 * that loads the library, so a bad parameter still stops nbdkit at start
 * with s3backer's own message. Everything else is a thin trampoline. */

#define _GNU_SOURCE /* dladdr, asprintf */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include <nbdkit-plugin.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../bridge.h"

#define GO_LIBRARY "libs3backer-nbdkit.so"

#ifndef S3B_VERSION
#define S3B_VERSION "dev"
#endif

/* The Go library's exports (../exports.go). */
static struct {
	char *(*validate)(int, char **, char **, char **, size_t *);
	char *(*start)(int, char **, char **, char *, size_t, char *, s3b_log_fn);
	char *(*stop)(void);
	void (*info)(int64_t *, int *, int *, uint32_t *, uint32_t *, uint32_t *);
	int (*pread)(void *, uint32_t, uint64_t, char **);
	int (*pwrite)(const void *, uint32_t, uint64_t, int, char **);
	int (*zero)(uint32_t, uint64_t, int, char **);
	int (*flush)(char **);
	int (*cache)(uint32_t, uint64_t, char **);
	int (*extents)(uint32_t, uint64_t, int, void *, s3b_extent_fn, char **);
} go;

/* Parameters, in order, as given to nbdkit. */
static char **keys, **values;
static int nparams;
/* From the validation child: the encryption password, if any. */
static char *password;
static size_t password_len;
/* nbdkit's working directory when it read the parameters. */
static char *workdir;
/* The disk, once open. */
static int64_t size;
static int read_only, can_cache;
static uint32_t bs_min, bs_pref, bs_max;

/* The Go library's absolute path: found before nbdkit changes directory,
 * since nbdkit may have loaded this plugin by a relative path. */
static char golib[PATH_MAX];

/* find_go sets golib to the library beside this plugin. */
static int find_go(void) {
	Dl_info info;
	char self[PATH_MAX];

	if (dladdr((void *)&go, &info) == 0 || info.dli_fname == NULL || realpath(info.dli_fname, self) == NULL) {
		nbdkit_error("s3backer: cannot find the plugin's own path");
		return -1;
	}
	*strrchr(self, '/') = '\0';
	if ((size_t)snprintf(golib, sizeof golib, "%s/%s", self, GO_LIBRARY) >= sizeof golib) {
		nbdkit_error("s3backer: path too long: %s", self);
		return -1;
	}
	return 0;
}

/* load_go loads the Go library; on failure it returns a malloc'd
 * message. */
static char *load_go(void) {
	const char *path = golib;
	char *msg;
	void *lib;

	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		if (asprintf(&msg, "cannot load %s (installed beside the plugin): %s", path, dlerror()) < 0) {
			return NULL;
		}
		return msg;
	}
#define SYM(field, name) \
	if ((*(void **)&go.field = dlsym(lib, name)) == NULL) { \
		if (asprintf(&msg, "%s: missing symbol %s", path, name) < 0) return NULL; \
		return msg; \
	}
	SYM(validate, "s3bValidate");
	SYM(start, "s3bStart");
	SYM(stop, "s3bStop");
	SYM(info, "s3bInfo");
	SYM(pread, "s3bPread");
	SYM(pwrite, "s3bPwrite");
	SYM(zero, "s3bZero");
	SYM(flush, "s3bFlush");
	SYM(cache, "s3bCache");
	SYM(extents, "s3bExtents");
#undef SYM
	return NULL;
}

static int s3b_config(const char *key, const char *value) {
	char **k = realloc(keys, (nparams + 1) * sizeof *keys);
	char **v = realloc(values, (nparams + 1) * sizeof *values);
	if (k == NULL || v == NULL) {
		nbdkit_error("realloc: %m");
		free(k != keys ? k : NULL);
		return -1;
	}
	keys = k;
	values = v;
	if ((keys[nparams] = strdup(key)) == NULL || (values[nparams] = strdup(value)) == NULL) {
		nbdkit_error("strdup: %m");
		return -1;
	}
	nparams++;
	return 0;
}

/* write_all writes a whole buffer to a pipe. */
static void write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* validate_child runs in the forked child: it answers on fd with 'O' and
 * the password, or 'E' and a message, then exits without running any of
 * nbdkit's exit handlers. */
static void validate_child(int fd) {
	char *msg = load_go(), *pw = NULL;
	size_t pwlen = 0;

	if (msg == NULL) {
		msg = go.validate(nparams, keys, values, &pw, &pwlen);
	}
	if (msg != NULL) {
		write_all(fd, "E", 1);
		write_all(fd, msg, strlen(msg));
	} else {
		write_all(fd, "O", 1);
		write_all(fd, pw, pwlen);
	}
	_exit(0);
}

static int s3b_config_complete(void) {
	int fds[2], status;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	pid_t pid;

	if (find_go() == -1) {
		return -1;
	}
	char *dir = getcwd(NULL, 0);
	workdir = dir ? dir : strdup("");
	if (pipe(fds) == -1) {
		nbdkit_error("pipe: %m");
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		nbdkit_error("fork: %m");
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		validate_child(fds[1]);
	}
	close(fds[1]);
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap = cap ? 2 * cap : 4096);
			if (nb == NULL) {
				nbdkit_error("realloc: %m");
				free(buf);
				close(fds[0]);
				return -1;
			}
			buf = nb;
		}
		ssize_t r = read(fds[0], buf + len, cap - len);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			break;
		}
		len += (size_t)r;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR) {
	}
	if (len == 0) {
		nbdkit_error("checking the parameters failed (child process %s %d)",
			     WIFSIGNALED(status) ? "killed by signal" : "exited with status",
			     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		free(buf);
		return -1;
	}
	if (buf[0] != 'O') {
		nbdkit_error("s3backer: %.*s", (int)(len - 1), buf + 1);
		free(buf);
		return -1;
	}
	if (len > 1) {
		password_len = len - 1;
		if ((password = malloc(password_len)) == NULL) {
			nbdkit_error("malloc: %m");
			free(buf);
			return -1;
		}
		memcpy(password, buf + 1, password_len);
	}
	memset(buf, 0, len);
	free(buf);
	return 0;
}

static void log_line(int level, const char *msg) {
	if (level >= S3B_LOG_WARN) {
		nbdkit_error("%s", msg);
	} else {
		nbdkit_debug("%s", msg);
	}
}

static int s3b_after_fork(void) {
	char *msg = load_go();
	if (msg == NULL) {
		msg = go.start(nparams, keys, values, password, password_len, workdir, log_line);
	}
	if (password != NULL) {
		memset(password, 0, password_len);
		free(password);
		password = NULL;
	}
	if (msg != NULL) {
		nbdkit_error("s3backer: %s", msg);
		free(msg);
		return -1;
	}
	go.info(&size, &read_only, &can_cache, &bs_min, &bs_pref, &bs_max);
	return 0;
}

/* s3b_cleanup runs once nbdkit has closed every connection: the disk is
 * flushed and the 'already mounted' flag cleared. If that fails, data may
 * not be stored: nbdkit exits non-zero rather than 0, as s3backer does. */
static void s3b_cleanup(void) {
	if (go.stop == NULL) {
		return;
	}
	char *msg = go.stop();
	if (msg != NULL) {
		nbdkit_error("%s", msg);
		free(msg);
		exit(EXIT_FAILURE);
	}
}

static void s3b_unload(void) {
	for (int i = 0; i < nparams; i++) {
		free(keys[i]);
		free(values[i]);
	}
	free(keys);
	free(values);
	free(workdir);
	/* The Go library stays loaded: a Go runtime cannot be unloaded. */
}

static void *s3b_open(int readonly) {
	(void)readonly;
	return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t s3b_get_size(void *h) {
	(void)h;
	return size;
}

static int s3b_can_write(void *h) {
	(void)h;
	return !read_only;
}

static int s3b_yes(void *h) {
	(void)h;
	return 1;
}

static int s3b_can_fua(void *h) {
	(void)h;
	return NBDKIT_FUA_NATIVE;
}

static int s3b_can_cache(void *h) {
	(void)h;
	return can_cache ? NBDKIT_CACHE_NATIVE : NBDKIT_CACHE_NONE;
}

static int s3b_block_size(void *h, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum) {
	(void)h;
	*minimum = bs_min;
	*preferred = bs_pref;
	*maximum = bs_max;
	return 0;
}

/* failed logs msg, sets the errno nbdkit sends and returns -1. */
static int failed(int err, char *msg) {
	nbdkit_error("%s", msg ? msg : "request failed");
	free(msg);
	nbdkit_set_error(err);
	return -1;
}

static int s3b_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags) {
	char *msg = NULL;
	int err = go.pread(buf, count, offset, &msg);
	(void)h;
	(void)flags;
	return err ? failed(err, msg) : 0;
}

static int s3b_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags) {
	char *msg = NULL;
	int err = go.pwrite(buf, count, offset, (flags & NBDKIT_FLAG_FUA) != 0, &msg);
	(void)h;
	return err ? failed(err, msg) : 0;
}

/* Zero and trim are one operation: whole blocks are deleted (s3backer
 * never stores a zero block), which is also never slower than writing, so
 * NBDKIT_FLAG_MAY_TRIM and NBDKIT_FLAG_FAST_ZERO need nothing more. */
static int s3b_zero(void *h, uint32_t count, uint64_t offset, uint32_t flags) {
	char *msg = NULL;
	int err = go.zero(count, offset, (flags & NBDKIT_FLAG_FUA) != 0, &msg);
	(void)h;
	return err ? failed(err, msg) : 0;
}

static int s3b_flush(void *h, uint32_t flags) {
	char *msg = NULL;
	int err = go.flush(&msg);
	(void)h;
	(void)flags;
	return err ? failed(err, msg) : 0;
}

static int s3b_cache(void *h, uint32_t count, uint64_t offset, uint32_t flags) {
	char *msg = NULL;
	int err = go.cache(count, offset, &msg);
	(void)h;
	(void)flags;
	return err ? failed(err, msg) : 0;
}

static int add_extent(void *extents, uint64_t offset, uint64_t length, uint32_t type) {
	return nbdkit_add_extent(extents, offset, length, type);
}

static int s3b_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *extents) {
	char *msg = NULL;
	int err = go.extents(count, offset, (flags & NBDKIT_FLAG_REQ_ONE) != 0, extents, add_extent, &msg);
	(void)h;
	return err ? failed(err, msg) : 0;
}

#define HELP \
	"bucket=BUCKET[/SUBDIR]  The bucket (and prefix) of the disk, or the directory with test=true\n" \
	"                        (\"bucket=\" may be left out: nbdkit s3backer BUCKET)\n" \
	"FLAG=VALUE              Any s3backer flag --FLAG=VALUE, e.g. size=1t blockSize=1m\n" \
	"FLAG=true|false         A boolean s3backer flag --FLAG, e.g. readOnly=true\n" \
	"s3b_FLAG=...            The same, kept apart from nbdkit's own parameters;\n" \
	"                        an unknown s3b_ name is an error, an unknown bare one is ignored\n" \
	"See s3backer --help for the flags. nbdkit -v shows s3backer's log."

static struct nbdkit_plugin plugin = {
	.name = "s3backer",
	.longname = "s3backer-go",
	.version = S3B_VERSION,
	.description = "A disk whose blocks are objects in an S3 bucket",
	.magic_config_key = "bucket",
	.config_help = HELP,
	.config = s3b_config,
	.config_complete = s3b_config_complete,
	.after_fork = s3b_after_fork,
	.cleanup = s3b_cleanup,
	.unload = s3b_unload,
	.open = s3b_open,
	.get_size = s3b_get_size,
	.block_size = s3b_block_size,
	.can_write = s3b_can_write,
	.can_flush = s3b_yes,
	.can_trim = s3b_yes,
	.can_zero = s3b_yes,
	.can_fast_zero = s3b_yes,
	.can_fua = s3b_can_fua,
	.can_multi_conn = s3b_yes,
	.can_extents = s3b_yes,
	.can_cache = s3b_can_cache,
	.pread = s3b_pread,
	.pwrite = s3b_pwrite,
	.flush = s3b_flush,
	.trim = s3b_zero,
	.zero = s3b_zero,
	.extents = s3b_extents,
	.cache = s3b_cache,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
