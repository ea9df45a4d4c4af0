package mounttoken

import (
	"fmt"
	"strings"
	"syscall"
)

// AlreadyMountedError refuses a mount because another one holds the flag.
// It matches syscall.EBUSY, as s3backer's refusal does.
type AlreadyMountedError struct {
	Where string // "bucket/prefix", for the message
	Flag         // what the flag says (Token 0: it vanished)
	// Shared: the flag is a --sharedDiskMode one and this mount is not.
	Shared bool
	// Race: the flag was not there, or was ours, when checked, but another
	// mount wrote it (or removed it) right after this one did.
	Race bool
}

func (e *AlreadyMountedError) Error() string {
	var b strings.Builder
	switch {
	case e.Race && e.Token == 0:
		fmt.Fprintf(&b, "%s: the mount flag vanished right after this mount set it "+
			"(another s3backer stopping, or --reset-mounted-flag, at the same time); try again", e.Where)
		return b.String()
	case e.Race:
		fmt.Fprintf(&b, "%s was mounted by another s3backer at the same time", e.Where)
	case e.Shared:
		fmt.Fprintf(&b, "%s appears to be mounted in shared disk mode", e.Where)
	default:
		fmt.Fprintf(&b, "%s appears to be already mounted", e.Where)
	}
	fmt.Fprintf(&b, " (mount token 0x%08x", e.Token)
	if e.Host != "" {
		fmt.Fprintf(&b, ", set by %s", e.Host)
		if !e.Time.IsZero() {
			fmt.Fprintf(&b, " at %s", e.Time.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
	}
	b.WriteString(")")
	if e.Shared {
		b.WriteString("; to join it use --sharedDiskMode")
	}
	b.WriteString("; if it is not, run with --reset-mounted-flag")
	return b.String()
}

func (e *AlreadyMountedError) Unwrap() error { return syscall.EBUSY }
