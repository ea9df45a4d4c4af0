package nbddev

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// node is one kernel NBD device.
type node struct {
	path  string // as given, e.g. /dev/nbd0
	name  string // kernel name, e.g. nbd0
	index int    // NBD_ATTR_INDEX
}

var nbdName = regexp.MustCompile(`^nbd([0-9]+)$`)

// sysBlock is where the kernel shows block devices (a variable for tests).
var sysBlock = "/sys/block"

func (n node) sysfs(file string) string { return filepath.Join(sysBlock, n.name, file) }

// moduleWait bounds the wait for the device node after loading the module
// (devtmpfs creates it while the module initialises; udev may rename or
// re-create it shortly after).
const moduleWait = 5 * time.Second

// resolve finds the NBD device at path, loading the nbd module first when
// the node does not exist (as s3backer does).
func resolve(ctx context.Context, path string) (node, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if merr := loadModule(ctx); merr != nil {
			return node{}, fmt.Errorf("%s does not exist and %w", path, merr)
		}
		err = pollUntil(ctx, moduleWait, func() bool {
			st, err = os.Stat(path)
			return err == nil
		})
		if err != nil {
			return node{}, fmt.Errorf("%s still does not exist after loading the nbd module", path)
		}
	}
	if err != nil {
		return node{}, err
	}
	if st.Mode()&fs.ModeDevice == 0 || st.Mode()&fs.ModeCharDevice != 0 {
		return node{}, fmt.Errorf("%s is not a block device", path)
	}
	name := kernelName(path, st)
	m := nbdName.FindStringSubmatch(name)
	if m == nil {
		return node{}, fmt.Errorf("%s is not an NBD device (it is %s; want /dev/nbdN)", path, name)
	}
	idx, err := strconv.Atoi(m[1])
	if err != nil {
		return node{}, fmt.Errorf("%s: device index: %w", path, err)
	}
	return node{path: path, name: name, index: idx}, nil
}

// kernelName is the device's kernel name: from sysfs by device number,
// which sees through udev symlinks and renamed nodes, else the (resolved)
// file name.
func kernelName(path string, st fs.FileInfo) string {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		link := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(sys.Rdev), unix.Minor(sys.Rdev))
		if target, err := os.Readlink(link); err == nil {
			return filepath.Base(target)
		}
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	return filepath.Base(path)
}

// modprobe loads the module (a variable for tests).
var modprobe = []string{"modprobe", "nbd"}

// loadModule runs `modprobe nbd`.
func loadModule(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, modprobe[0], modprobe[1:]...).CombinedOutput()
	if err != nil {
		msg := strings.Join(strings.Fields(string(out)), " ") // one line
		if msg != "" {
			return fmt.Errorf("loading the nbd module failed: modprobe nbd: %w: %s", err, msg)
		}
		return fmt.Errorf("loading the nbd module failed: modprobe nbd: %w", err)
	}
	return nil
}

// attachedPID is the process the kernel records as having attached the
// device (/sys/block/nbdX/pid, present only while it is attached), or 0.
func (n node) attachedPID() (int, error) {
	b, err := os.ReadFile(n.sysfs("pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read attachment state: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read attachment state: %s: %w", n.sysfs("pid"), err)
	}
	return pid, nil
}

// pollInterval is how often a kernel state is re-read while waiting for it
// to change (there is no notification for these sysfs files).
const pollInterval = 10 * time.Millisecond

// errPollTimeout: the condition did not hold in time.
var errPollTimeout = errors.New("timed out")

// pollUntil checks cond until it holds, limit passes or ctx ends.
func pollUntil(ctx context.Context, limit time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			if cond() {
				return nil
			}
			return errPollTimeout
		case <-t.C:
		}
	}
	return nil
}
