package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/daemon"
	"github.com/s3backer-go/s3backer/internal/nbddev"
	"github.com/s3backer-go/s3backer/internal/sdnotify"
)

// With --nbd-flag or --nbd-param, --nbd serves the disk the way s3backer
// does: through nbdkit and our plugin, with the --nbd-flag strings before
// the plugin name and the --nbd-param strings after its parameters. The
// rest stays ours: the target is parsed and checked the same way, we
// daemonize, report readiness and stop on the same signals. nbdkit runs in
// the foreground as our child (--exit-with-parent), on a listening socket
// we open and hand to it (socket activation), so a stale unix socket, port
// 0 and readiness are handled exactly as in the built-in server. For a
// kernel device the socket is private, and the device is attached by
// nbddev, as without nbdkit, each kernel connection relayed to an nbdkit
// connection (s3backer runs nbd-client instead; this keeps our attach,
// detach-on-stop and "someone detached the device" handling, and needs no
// nbd-client).

const (
	pluginFile    = "nbdkit-s3backer-plugin.so"
	pluginLibrary = "libs3backer-nbdkit.so" // the Go half, beside the plugin
	pluginEnv     = "S3BACKER_PLUGIN"       // path of the plugin, overriding the search
)

// useNBDKit reports whether --nbd goes through nbdkit.
func useNBDKit(cfg *config.Config) bool { return len(cfg.NBDFlags) > 0 || len(cfg.NBDParams) > 0 }

// findNBDKit returns the nbdkit executable and our plugin, or a clear
// error naming what is missing.
func findNBDKit() (exe, plugin string, err error) {
	exe, err = exec.LookPath("nbdkit")
	if err != nil {
		return "", "", errors.New("--nbd-flag and --nbd-param serve the disk through nbdkit, which is not installed (Debian: apt-get install nbdkit)")
	}
	if p := os.Getenv(pluginEnv); p != "" {
		plugin, err = checkPlugin(p)
		return exe, plugin, err
	}
	// Beside our executable (bin/ of a build), then nbdkit's plugin
	// directory (make install).
	var dirs []string
	if self, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	if out, err := exec.Command(exe, "--dump-config").Output(); err == nil {
		for line := range strings.SplitSeq(string(out), "\n") {
			if d, ok := strings.CutPrefix(line, "plugindir="); ok {
				dirs = append(dirs, d)
			}
		}
	}
	for _, d := range dirs {
		if p := filepath.Join(d, pluginFile); fileExists(p) {
			plugin, err = checkPlugin(p)
			return exe, plugin, err
		}
	}
	return "", "", fmt.Errorf("s3backer's nbdkit plugin (%s) is not installed: not in %s (make install puts it in nbdkit's plugin directory; or set %s to its path)",
		pluginFile, strings.Join(dirs, " nor "), pluginEnv)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// checkPlugin makes the plugin path absolute (nbdkit would otherwise look
// for a plugin by that name) and checks that its Go library is beside it.
func checkPlugin(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if !fileExists(abs) {
		return "", fmt.Errorf("s3backer's nbdkit plugin %s does not exist", abs)
	}
	if lib := filepath.Join(filepath.Dir(abs), pluginLibrary); !fileExists(lib) {
		return "", fmt.Errorf("s3backer's nbdkit plugin %s is incomplete: %s is missing beside it", abs, pluginLibrary)
	}
	return abs, nil
}

// serveNBDKit serves the disk at target through nbdkit until a signal
// (or until nbdkit ends, or someone detaches the kernel device).
func serveNBDKit(cfg *config.Config, target nbdTarget, stderr io.Writer) error {
	exe, plugin, err := findNBDKit()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("serving %s at %s", cfg.BucketArg, cfg.Target)
	if target.device != "" {
		what = fmt.Sprintf("connecting %s to %s", cfg.BucketArg, target.device)
	}
	log, sigs, release, detached, err := startService(cfg, stderr, what)
	if detached || err != nil {
		return err
	}
	defer release()
	ctx := context.Background()

	if target.device != "" {
		if err := nbddev.Check(ctx, target.device); err != nil {
			return err
		}
	}
	pw, err := diskPassword(cfg)
	if err != nil {
		return err
	}
	ln, cleanup, err := nbdkitListener(target)
	if err != nil {
		return err
	}
	defer cleanup()
	network, addr := ln.Addr().Network(), ln.Addr().String()
	uri := target.uri(ln)

	k, err := startNBDKit(cfg, exe, plugin, ln, pw, log, stderr)
	if err != nil {
		ln.Close()
		return err
	}
	exp, err := k.ready(network, addr, sigs)
	if err != nil {
		_ = k.stop() // its failure, if any, is err
		return err
	}

	var dev *nbddev.Device
	if target.device == "" {
		log.Info("serving", "bucket", cfg.BucketArg, "size", exp.size, "uri", uri, "via", "nbdkit")
	} else {
		if dev, err = attachNBDKit(ctx, cfg, target.device, exp, network, addr, log); err != nil {
			return errors.Join(err, k.stop())
		}
		log.Info("connected", "bucket", cfg.BucketArg, "device", target.device, "size", exp.size,
			"method", dev.Method().String(), "via", "nbdkit")
	}
	daemon.Ready()

	var devDone <-chan struct{}
	if dev != nil {
		devDone = dev.Done()
	}
	select {
	case sig := <-sigs:
		log.Info("stopping", "signal", sig.String())
	case <-k.exited:
		log.Error("nbdkit stopped by itself")
	case <-devDone:
		log.Warn("the device was detached; stopping", "reason", dev.Err())
	}
	_, _ = sdnotify.Notify("STOPPING=1")
	var deverr error
	if dev != nil {
		dctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
		if err := dev.Detach(dctx); err != nil {
			deverr = fmt.Errorf("detach %s: %w", target.device, err)
		}
		cancel()
	}
	// nbdkit closes its connections, then the plugin flushes the disk and
	// clears the 'already mounted' flag; it exits non-zero if that fails.
	return logStop(log, errors.Join(deverr, k.stop()))
}

// nbdkitListener opens the socket nbdkit will serve: the target's (a
// stale unix socket replaced, as without nbdkit), or for a kernel device a
// private one. cleanup removes what is left on disk afterwards: nbdkit
// does not remove a socket it was handed.
func nbdkitListener(target nbdTarget) (net.Listener, func(), error) {
	if target.device == "" {
		ln, err := target.listen()
		if err != nil {
			return nil, nil, err
		}
		return ln, func() {
			if target.network == "unix" {
				_ = os.Remove(target.address)
			}
		}, nil
	}
	dir, err := os.MkdirTemp("", "s3backer-nbdkit-")
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "nbd.sock"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("listen for nbdkit: %w", err)
	}
	return ln, func() { os.RemoveAll(dir) }, nil
}

// nbdkitProc is the running nbdkit.
type nbdkitProc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once it has exited; then err is set
	err    error
	mu     sync.Mutex
	errs   []string // its last error lines, for our messages
}

// maxErrLines bounds the nbdkit error lines kept for a message.
const maxErrLines = 5

// startNBDKit runs nbdkit with our plugin on ln, which it takes over
// (closed here). A password read by us (prompt, or handed down to the
// daemon) reaches the plugin through a pipe, never on a command line.
func startNBDKit(cfg *config.Config, exe, plugin string, ln net.Listener, pw []byte, log *slog.Logger, stderr io.Writer) (*nbdkitProc, error) {
	lnFile, err := listenerFile(ln)
	if err != nil {
		return nil, err
	}
	defer lnFile.Close()
	files := []*os.File{lnFile} // fd 3: LISTEN_FDS=1

	args := []string{"--foreground", "--exit-with-parent"}
	if cfg.Debug {
		args = append(args, "--verbose")
	}
	if cfg.ReadOnly {
		args = append(args, "--read-only")
	}
	args = append(args, cfg.NBDFlags...)
	args = append(args, plugin)
	// The command line this process was started with: daemon children
	// are re-executed with the same one.
	args = append(args, config.NBDKitParams(os.Args[1:])...)
	if pw != nil && !cfg.IsSet("password") && !cfg.IsSet("passwordFile") && cfg.Password == "" && cfg.PasswordFile == "" {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		// A password fits in a pipe's buffer: this does not block.
		_, err = w.Write(pw)
		w.Close()
		if err != nil {
			return nil, err
		}
		files = append(files, r) // fd 4
		args = append(args, config.PluginParamPrefix+"passwordFile=/dev/fd/4")
	}
	args = append(args, cfg.NBDParams...)

	// Socket activation wants LISTEN_PID to be nbdkit's own pid, known
	// only once it runs: a shell sets it and execs nbdkit in its place.
	cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, exe}, args...)...)
	cmd.Env = append(withoutListenEnv(os.Environ()), "LISTEN_FDS=1")
	cmd.ExtraFiles = files
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	log.Debug("starting nbdkit", "args", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nbdkit: %w", err)
	}
	// nbdkit holds the socket now: ours must close, so that if nbdkit
	// dies a client is refused rather than left waiting.
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	ln.Close()

	k := &nbdkitProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			k.relay(sc.Text(), log, stderr)
		}
		_, _ = io.Copy(io.Discard, out)
		k.err = cmd.Wait()
		close(k.exited)
	}()
	return k, nil
}

// listenerFile is a copy of the listening socket's descriptor to hand on.
func listenerFile(ln net.Listener) (*os.File, error) {
	switch l := ln.(type) {
	case *net.UnixListener:
		return l.File()
	case *net.TCPListener:
		return l.File()
	}
	return nil, fmt.Errorf("cannot hand a %T to nbdkit", ln)
}

// withoutListenEnv drops socket activation variables meant for us.
func withoutListenEnv(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "LISTEN_") {
			out = append(out, e)
		}
	}
	return out
}

// relay passes one line of nbdkit's output on: to our stderr in the
// foreground, to our log (syslog) as a daemon; error lines are kept.
func (k *nbdkitProc) relay(line string, log *slog.Logger, stderr io.Writer) {
	isErr := strings.Contains(line, "error:")
	if isErr {
		k.mu.Lock()
		k.errs = append(k.errs, strings.TrimSpace(line))
		if len(k.errs) > maxErrLines {
			k.errs = k.errs[1:]
		}
		k.mu.Unlock()
	}
	switch {
	case !daemon.IsChild():
		fmt.Fprintln(stderr, line)
	case isErr:
		log.Error(line)
	default:
		log.Info(line)
	}
}

// failure describes how nbdkit ended, with what it said.
func (k *nbdkitProc) failure() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	status := "nbdkit exited"
	if k.err != nil {
		status = fmt.Sprintf("nbdkit failed (%v)", k.err)
	}
	if len(k.errs) == 0 {
		return errors.New(status)
	}
	return fmt.Errorf("%s: %s", status, strings.Join(k.errs, "; "))
}

// nbdkitDying bounds the wait for nbdkit's exit once its socket failed us.
const nbdkitDying = 10 * time.Second

// ready waits until nbdkit serves (it answers the NBD handshake only once
// the plugin has opened the disk) and returns the export it announces.
func (k *nbdkitProc) ready(network, addr string, sigs <-chan os.Signal) (nbdExport, error) {
	type result struct {
		exp nbdExport
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := net.Dial(network, addr)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		exp, err := nbdHandshake(c)
		if err == nil {
			_ = nbdDisconnect(c)
		}
		done <- result{exp, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			return r.exp, nil
		}
		// Most likely nbdkit failed to start: its own words are better.
		select {
		case <-k.exited:
			return nbdExport{}, k.failure()
		case <-time.After(nbdkitDying):
			return nbdExport{}, fmt.Errorf("nbdkit does not serve: %w", r.err)
		}
	case <-k.exited:
		return nbdExport{}, k.failure()
	case sig := <-sigs:
		return nbdExport{}, fmt.Errorf("stopped by %v while nbdkit was starting", sig)
	}
}

// stop asks nbdkit to finish (SIGTERM: it closes its connections, then the
// plugin flushes the disk and clears the 'already mounted' flag) and
// waits; a failure of that is in its exit status.
func (k *nbdkitProc) stop() error {
	select {
	case <-k.exited:
	default:
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		<-k.exited
	}
	if k.err != nil {
		return k.failure()
	}
	return nil
}

// attachNBDKit attaches the kernel device to nbdkit: each of the kernel's
// connections is relayed to a connection of its own to nbdkit, set up
// with the handshake the kernel skips.
func attachNBDKit(ctx context.Context, cfg *config.Config, device string, exp nbdExport, network, addr string, log *slog.Logger) (*nbddev.Device, error) {
	kbs, err := kernelBlockSize(exp.size)
	if err != nil {
		return nil, err
	}
	conns := 1
	if exp.flags&(1<<8) != 0 { // NBD_FLAG_CAN_MULTI_CONN
		conns = min(runtime.NumCPU(), maxKernelConnections)
	}
	return nbddev.Attach(ctx, device, func(ctx context.Context, nc net.Conn) error {
		return relayNBD(ctx, nc, network, addr)
	}, nbddev.Options{
		Size:        exp.size,
		BlockSize:   kbs,
		Flags:       exp.flags &^ (nbdFlagSendDF | nbdFlagSendResize),
		Connections: conns,
		Backend:     "s3backer " + cfg.BucketArg + " (nbdkit)",
		Logger:      log,
	})
}

// relayNBD connects to nbdkit, negotiates, then copies bytes both ways
// between it and the kernel's socket nc until either side closes or ctx
// ends. Replies are simple, as the kernel expects: structured replies are
// never negotiated.
func relayNBD(ctx context.Context, nc net.Conn, network, addr string) error {
	defer nc.Close()
	c, err := net.Dial(network, addr)
	if err != nil {
		return fmt.Errorf("connect to nbdkit: %w", err)
	}
	defer c.Close()
	if _, err := nbdHandshake(c); err != nil {
		return fmt.Errorf("nbdkit: %w", err)
	}
	stop := context.AfterFunc(ctx, func() {
		nc.Close()
		c.Close()
	})
	defer stop()
	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(c, nc)
		errc <- err
	}()
	go func() {
		_, err := io.Copy(nc, c)
		errc <- err
	}()
	err = <-errc
	nc.Close()
	c.Close()
	<-errc
	if ctx.Err() != nil || err == nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
