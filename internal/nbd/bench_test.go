package nbd

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
)

// benchIO measures pipelined requests of one size over loopback TCP, with
// `depth` requests in flight, as a kernel client would issue them.
func benchIO(b *testing.B, typ uint16, size, depth int) {
	dev := newMemDevice(64 << 20)
	s, addr, _ := tcpServer(b, dev, Options{})
	defer func() { _ = s.Shutdown(context.Background()) }()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	c := newRawClient(b, nc)
	c.negotiate(true, false)

	var payload []byte
	if typ == cmdWrite {
		payload = make([]byte, size)
	}
	slots := int(dev.Size()) / size
	done := make(chan error, 1)
	go func() { // replies are consumed beside the sender
		br := bufio.NewReaderSize(nc, 256<<10)
		hdr := make([]byte, structuredHeaderLen)
		for range b.N {
			if _, err := io.ReadFull(br, hdr[:4]); err != nil {
				done <- err
				return
			}
			n := simpleReplyLen
			if be.Uint32(hdr) == structuredReplyMagic {
				n = structuredHeaderLen
			}
			if _, err := io.ReadFull(br, hdr[4:n]); err != nil {
				done <- err
				return
			}
			if n == structuredHeaderLen {
				if _, err := br.Discard(int(be.Uint32(hdr[16:]))); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	b.SetBytes(int64(size))
	b.ResetTimer()
	bw := bufio.NewWriterSize(nc, 256<<10)
	for i := range b.N {
		_, _ = bw.Write(reqBytes(0, typ, uint64(i), uint64((i%slots)*size), uint32(size), payload))
		if i%depth == depth-1 {
			_ = bw.Flush()
		}
	}
	_ = bw.Flush()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRead4K(b *testing.B)  { benchIO(b, cmdRead, 4096, 32) }
func BenchmarkWrite4K(b *testing.B) { benchIO(b, cmdWrite, 4096, 32) }
func BenchmarkRead1M(b *testing.B)  { benchIO(b, cmdRead, 1<<20, 8) }
func BenchmarkWrite1M(b *testing.B) { benchIO(b, cmdWrite, 1<<20, 8) }
