// Package sdnotify sends systemd service notifications (sd_notify(3)) to
// $NOTIFY_SOCKET, so that a unit with Type=notify learns when the service
// is ready and when it is stopping. Without $NOTIFY_SOCKET it does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// Notify sends state ("READY=1", "STOPPING=1", "MAINPID=123", one per
// line). It reports whether a notification socket was there to send to.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	// A leading '@' names an abstract socket; Go's net package maps it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return true, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return true, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}
