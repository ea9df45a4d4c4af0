package nbddev

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	const flags = flagHasFlags | flagCanMultiConn
	cases := []struct {
		opt  Options
		want string // "" = valid
	}{
		{Options{Size: 1 << 20, Flags: flags}, ""},
		{Options{Size: 1 << 20, BlockSize: 512, Flags: flagHasFlags}, ""},
		{Options{Size: 1 << 20, BlockSize: 8192, Flags: flags}, "block size"},
		{Options{Size: 1 << 20, BlockSize: 1000, Flags: flags}, "block size"},
		{Options{Size: 1 << 20, BlockSize: 256, Flags: flags}, "block size"},
		{Options{Size: 0, Flags: flags}, "size"},
		{Options{Size: 4096 + 512, Flags: flags}, "multiple"},
		{Options{Size: 1 << 20, Connections: 4, Flags: flagHasFlags}, "MULTI_CONN"},
		{Options{Size: 1 << 20, Connections: 4, Flags: flags}, ""},
		{Options{Size: 1 << 20}, "HAS_FLAGS"},
	}
	for _, c := range cases {
		err := c.opt.withDefaults().validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.opt, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error mentioning %q", c.opt, err, c.want)
		}
	}
}

func TestTimeoutSeconds(t *testing.T) {
	cases := []struct {
		timeout time.Duration
		conns   int
		want    uint64
	}{
		// One connection without a timeout: the kernel only warns about
		// slow requests, so nothing is configured.
		{0, 1, 0},
		// Several: the kernel's 30 s default would declare connections
		// dead under a slow request, so "never" is spelled as a day.
		{0, 4, 86400},
		{90 * time.Second, 1, 90},
		{1500 * time.Millisecond, 2, 2},
		{time.Millisecond, 1, 1},
	}
	for _, c := range cases {
		o := Options{Timeout: c.timeout, Connections: c.conns}
		if got := o.timeoutSeconds(); got != c.want {
			t.Errorf("Timeout %v with %d connections: %d s, want %d", c.timeout, c.conns, got, c.want)
		}
	}
}

func TestMethodString(t *testing.T) {
	for m, want := range map[Method]string{Auto: "auto", Netlink: "netlink", Ioctl: "ioctl"} {
		if m.String() != want {
			t.Errorf("%d: %q, want %q", m, m.String(), want)
		}
	}
}
