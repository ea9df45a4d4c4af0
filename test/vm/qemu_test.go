package vm

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// marker is one "@@KIND step detail" line of the guest's init script.
type marker struct {
	kind   string // STEP, OK, FAIL, RESULT
	step   string
	detail string
	at     time.Duration // since boot
}

// console is what the guest printed on its serial console.
type console struct {
	lines   []string
	markers []marker
	elapsed time.Duration
}

// bootVM boots the guest with initrd and extra qemu arguments under TCG
// (KVM is not usable here), logs its serial console as the test's log,
// and returns once the guest powers off or limit passes.
func bootVM(t *testing.T, img *guestImage, initrd []byte, limit time.Duration, extra ...string) *console {
	t.Helper()
	initrdPath := filepath.Join(t.TempDir(), "initrd.gz")
	if err := os.WriteFile(initrdPath, initrd, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{
		// -cpu max gives the guest RDRAND, and random.trust_cpu=on
		// seeds its random number generator from it at boot: otherwise
		// the generator waits for jitter entropy, which under emulation
		// on a loaded host took minutes, and whatever asks for random
		// bytes first (mke2fs, for its UUID) hung until then.
		"-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "2",
		"-nographic", "-no-reboot",
		"-kernel", img.kernel, "-initrd", initrdPath,
		// panic=-1 with -no-reboot turns a guest panic into an exit.
		"-append", "console=ttyS0 quiet panic=-1 random.trust_cpu=on",
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	c := &console{}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		at := time.Since(start)
		t.Logf("%6.1fs | %s", at.Seconds(), line)
		c.lines = append(c.lines, line)
		if m, ok := parseMarker(line, at); ok {
			c.markers = append(c.markers, m)
		}
	}
	err = cmd.Wait()
	c.elapsed = time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the VM did not finish within %v", limit)
	}
	if err != nil {
		t.Logf("qemu: %v", err)
	}
	return c
}

func parseMarker(line string, at time.Duration) (marker, bool) {
	i := strings.Index(line, "@@")
	if i < 0 {
		return marker{}, false
	}
	f := strings.SplitN(line[i+2:], " ", 3)
	m := marker{kind: f[0], at: at}
	if len(f) > 1 {
		m.step = f[1]
	}
	if len(f) > 2 {
		m.detail = f[2]
	}
	switch m.kind {
	case "STEP", "OK", "FAIL", "RESULT":
		return m, true
	}
	return marker{}, false
}

// checkSteps asserts that the guest ran steps in order, each passing, and
// reported PASS; it logs how long each step took.
func checkSteps(t *testing.T, c *console, steps []string) {
	t.Helper()
	var began time.Duration
	next := 0
	for _, m := range c.markers {
		switch m.kind {
		case "STEP":
			began = m.at
		case "FAIL":
			t.Fatalf("guest step %s failed: %s", m.step, m.detail)
		case "OK":
			if next < len(steps) && m.step == steps[next] {
				t.Logf("step %-12s ok in %5.1fs  %s", m.step, (m.at - began).Seconds(), m.detail)
				next++
			}
		}
	}
	if next < len(steps) {
		t.Fatalf("guest stopped before step %s passed", steps[next])
	}
	last := c.markers[len(c.markers)-1]
	if last.kind != "RESULT" || last.step != "PASS" {
		t.Fatalf("guest result %q %q, want RESULT PASS", last.kind, last.step)
	}
	t.Logf("VM run: %.1fs from boot to power-off", c.elapsed.Seconds())
}

// countLines counts console lines containing all of subs.
func (c *console) countLines(subs ...string) int {
	n := 0
	for _, l := range c.lines {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			n++
		}
	}
	return n
}
