package cachefile

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/testenv/lockedbuf"
)

const (
	bs      = 4096
	nblocks = 1000
)

func pattern(seed int) []byte {
	b := make([]byte, bs)
	for i := range b {
		b[i] = byte(seed*7 + i*13 + 1)
	}
	return b
}

// opener opens one path again and again, as successive runs would.
type opener struct {
	t    *testing.T
	path string
	log  lockedbuf.Buffer
}

func newOpener(t *testing.T) *opener {
	return &opener{t: t, path: filepath.Join(t.TempDir(), "cache")}
}

func (o *opener) options(slots int) Options {
	return Options{Path: o.path, BlockSize: bs, NumBlocks: nblocks, Slots: slots, Logger: slog.New(slog.NewTextHandler(&o.log, nil))}
}

// start opens and starts the file with the policy, failing the test on
// error.
func (o *opener) start(slots int, p Policy, token uint32) *File {
	o.t.Helper()
	f, err := o.try(slots, p, token)
	if err != nil {
		o.t.Fatal(err)
	}
	return f
}

func (o *opener) try(slots int, p Policy, token uint32) (*File, error) {
	f, err := Open(o.options(slots))
	if err != nil {
		return nil, err
	}
	if _, err := f.Plan(p); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Start(token); err != nil {
		f.Close()
		return nil, err
	}
	o.t.Cleanup(func() { f.Close() })
	return f, nil
}

func mustPut(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func slotData(t *testing.T, f *File, slot int) []byte {
	t.Helper()
	b := make([]byte, bs)
	mustPut(t, f.Read(slot, 0, b))
	return b
}

// recovered maps block -> Recovered.
func recovered(f *File) map[uint64]cache.Recovered {
	m := map[uint64]cache.Recovered{}
	for _, r := range f.Recovered() {
		m[r.Block] = r
	}
	return m
}

var testRun = Policy{Test: true, RecoverDirty: true}

// Blocks written, filled and cleaned come back after a reopen with their
// state, tag and data.
func TestRoundTrip(t *testing.T) {
	o := newOpener(t)
	f := o.start(8, testRun, 0)
	if f.NumSlots() != 8 || len(f.Recovered()) != 0 {
		t.Fatalf("new file: %d slots, %d recovered", f.NumSlots(), len(f.Recovered()))
	}
	mustPut(t, f.Write(0, 10, pattern(10)))                         // dirty
	mustPut(t, f.Fill(1, 11, pattern(11), "etag-11"))               // clean
	mustPut(t, f.Write(2, 12, pattern(12)))                         // dirty, then clean
	mustPut(t, f.Clean(2, 12, "etag-12"))                           // .
	mustPut(t, f.Write(3, 13, nil))                                 // dirty zero
	mustPut(t, f.Fill(4, 14, nil, ""))                              // clean zero
	mustPut(t, f.Write(5, 15, pattern(15)))                         // rewritten
	mustPut(t, f.Write(5, 15, pattern(16)))                         // .
	mustPut(t, f.Fill(6, 16, pattern(17), strings.Repeat("x", 40))) // tag too long to keep
	part := make([]byte, 100)
	mustPut(t, f.Read(1, 50, part))
	if !bytes.Equal(part, pattern(11)[50:150]) {
		t.Fatal("partial read")
	}
	mustPut(t, f.Close())

	f = o.start(8, testRun, 0)
	rec := recovered(f)
	want := map[uint64]cache.Recovered{
		10: {Slot: 0, Block: 10, Dirty: true},
		11: {Slot: 1, Block: 11, Tag: "etag-11"},
		12: {Slot: 2, Block: 12, Tag: "etag-12"},
		13: {Slot: 3, Block: 13, Dirty: true, Zero: true},
		14: {Slot: 4, Block: 14, Zero: true},
		15: {Slot: 5, Block: 15, Dirty: true},
		16: {Slot: 6, Block: 16},
	}
	if len(rec) != len(want) {
		t.Fatalf("recovered %+v", rec)
	}
	for n, w := range want {
		if rec[n] != w {
			t.Errorf("block %d: recovered %+v, want %+v", n, rec[n], w)
		}
	}
	for slot, seed := range map[int]int{0: 10, 1: 11, 2: 12, 5: 16, 6: 17} {
		if !bytes.Equal(slotData(t, f, slot), pattern(seed)) {
			t.Errorf("slot %d: wrong data after reopen", slot)
		}
	}
	if !bytes.Equal(slotData(t, f, 3), make([]byte, bs)) {
		t.Error("zero slot not zero")
	}
}

// A crash (nothing closed) loses nothing written: the cache file needs no
// clean shutdown.
func TestNoCloseNeeded(t *testing.T) {
	o := newOpener(t)
	f := o.start(4, testRun, 0)
	mustPut(t, f.Write(0, 1, pattern(1)))
	mustPut(t, f.Fill(1, 2, pattern(2), "t2"))
	// Simulate the crash: drop the lock without any closing work.
	f.f.Close()
	f = o.start(4, testRun, 0)
	if r := recovered(f); len(r) != 2 || !r[1].Dirty || r[2].Tag != "t2" {
		t.Fatalf("recovered %+v", r)
	}
}

// The dirty blocks of a run that crashed: kept with RecoverDirty when the
// flag still holds the file's token; dropped with a warning (giving the
// count) without it; refused when the flag holds another token, unless
// --force; refused with --readOnly.
func TestDirtyPolicy(t *testing.T) {
	const tok = 0x2d3806ab
	o := newOpener(t)
	f := o.start(4, Policy{}, tok)
	mustPut(t, f.Write(0, 1, pattern(1)))
	mustPut(t, f.Write(1, 2, pattern(2)))
	mustPut(t, f.Fill(2, 3, pattern(3), "t3"))
	f.f.Close() // crash

	reopen := func() *File {
		f, err := Open(o.options(4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	f = reopen()
	if f.Token() != tok || f.Dirty() != 2 || f.Found() != 3 {
		t.Fatalf("token %#x dirty %d found %d", f.Token(), f.Dirty(), f.Found())
	}
	own := Policy{Flag: tok, FlagSet: true, RecoverDirty: true}
	if p, err := f.Plan(own); err != nil || !p.KeepDirty || p.Accept != tok || p.Token != tok {
		t.Fatalf("own crash: %+v %v", p, err)
	}
	other := Policy{Flag: 0x1111, FlagSet: true, RecoverDirty: true}
	if _, err := f.Plan(other); err == nil || !strings.Contains(err.Error(), "2 dirty blocks") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("foreign dirty blocks: %v", err)
	}
	if _, err := f.Plan(Policy{RecoverDirty: true}); err == nil {
		t.Fatal("flag cleared since: dirty blocks recovered")
	}
	if p, err := f.Plan(Policy{Flag: 0x1111, FlagSet: true, RecoverDirty: true, Force: true}); err != nil || !p.KeepDirty || p.Accept != 0 {
		t.Fatalf("forced: %+v %v", p, err)
	}
	if _, err := f.Plan(Policy{Flag: tok, FlagSet: true, RecoverDirty: true, ReadOnly: true}); err == nil {
		t.Fatal("read-only run kept dirty blocks")
	}
	if p, err := f.Plan(Policy{Flag: tok, FlagSet: true}); err != nil || p.KeepDirty || p.Accept != tok {
		t.Fatalf("no recovery: %+v %v", p, err)
	}
	mustPut(t, f.Start(tok))
	if r := recovered(f); len(r) != 1 || r[3].Tag != "t3" {
		t.Fatalf("after dropping the dirty blocks: %+v", r)
	}
	if !strings.Contains(o.log.String(), "dropping dirty blocks") || !strings.Contains(o.log.String(), "blocks=2") {
		t.Fatalf("no warning with the count: %s", o.log.String())
	}
	f.Close()
	// Dropped for good.
	f = reopen()
	if f.Dirty() != 0 || f.Found() != 1 {
		t.Fatalf("after a start that dropped them: dirty %d found %d", f.Dirty(), f.Found())
	}
}

// Recovery keeps the dirty blocks, stamped with the new run's token, and
// gives them to the cache as dirty.
func TestDirtyRecovered(t *testing.T) {
	const tok = 0x1234
	o := newOpener(t)
	f := o.start(4, Policy{}, tok)
	mustPut(t, f.Write(2, 7, pattern(7)))
	f.f.Close()
	f = o.start(4, Policy{Flag: tok, FlagSet: true, RecoverDirty: true}, tok)
	if r := recovered(f); !r[7].Dirty || r[7].Slot != 2 || !bytes.Equal(slotData(t, f, 2), pattern(7)) {
		t.Fatalf("recovered %+v", r)
	}
}

func entryBytes(t *testing.T, path string, slot int) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[dirStart+slot*entryLen : dirStart+(slot+1)*entryLen]
}

func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A data write cut short (the process killed between pages) or a torn
// entry is never taken for valid data; and an older entry of the same
// block is not brought back in its place.
func TestTornWrites(t *testing.T) {
	o := newOpener(t)
	f := o.start(4, testRun, 0)
	mustPut(t, f.Write(0, 1, pattern(1)))
	mustPut(t, f.Clean(0, 1, "t1"))
	f.Free(0) // evicted; its entry stays
	stale := bytes.Clone(entryBytes(t, o.path, 0))
	mustPut(t, f.Write(1, 1, pattern(2))) // block 1 again, elsewhere
	mustPut(t, f.Fill(2, 5, pattern(5), "t5"))
	mustPut(t, f.Write(3, 6, pattern(6)))
	base := f.dataOff
	f.f.Close()

	// As if killed before slot 0's old entry of block 1 was erased, and
	// with slot 1's new data half written; slot 2's entry torn; slot 3
	// intact.
	patchFile(t, o.path, dirStart, stale)
	patchFile(t, o.path, base+1*bs+bs/2, pattern(99)[:bs/2])
	e := entryBytes(t, o.path, 2)
	e[9] ^= 1
	patchFile(t, o.path, dirStart+2*entryLen, e)

	f = o.start(4, testRun, 0)
	r := recovered(f)
	if len(r) != 1 || !r[6].Dirty {
		t.Fatalf("recovered %+v; want only block 6", r)
	}
	if !strings.Contains(o.log.String(), "was being written") {
		t.Errorf("no warning for the torn dirty block: %s", o.log.String())
	}
}

// An entry left in a freed slot is erased when its block gets an entry
// elsewhere, so that reusing that slot later cannot leave only the old
// one; Invalidate erases one on demand.
func TestStaleEntries(t *testing.T) {
	o := newOpener(t)
	f := o.start(4, testRun, 0)
	mustPut(t, f.Fill(0, 1, pattern(1), "old"))
	f.Free(0)
	mustPut(t, f.Write(1, 1, pattern(2)))
	if !bytes.Equal(entryBytes(t, o.path, 0), make([]byte, entryLen)) {
		t.Fatal("the old entry of block 1 survived its new one")
	}
	mustPut(t, f.Clean(1, 1, "new"))
	f.Free(1)
	mustPut(t, f.Fill(1, 2, pattern(3), "t2")) // slot 1 reused
	mustPut(t, f.Fill(3, 4, pattern(4), "t4"))
	f.Free(3)
	mustPut(t, f.Invalidate(3))
	f.f.Close()
	f = o.start(4, testRun, 0)
	if r := recovered(f); len(r) != 1 || r[2].Tag != "t2" {
		t.Fatalf("recovered %+v; want only block 2", r)
	}
}

// A cache file of the C s3backer (built by hand from the format notes):
// rebuilt when it holds no dirty block, refused with the way to flush
// them when it does. Files that are not cache files are never touched.
func TestCFile(t *testing.T) {
	build := func(dirty bool) []byte {
		le := binary.LittleEndian
		b := make([]byte, 4096+8*4096)
		for i, v := range []uint32{cMagic, 64, 4, 4, 4096, 4096, 1, 8, 0x2a884500} {
			le.PutUint32(b[i*4:], v)
		}
		etag, _ := hex.DecodeString("ddf2716b44801eb4e36a201029c73174")
		copy(b[64+4:], etag) // entry 0: block 0, clean
		if dirty {
			e := b[64+24:]
			le.PutUint32(e, 3)
			le.PutUint32(e[20:], 1) // block 3, dirty
		}
		return b
	}
	o := newOpener(t)
	if err := os.WriteFile(o.path, build(true), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(o.options(8))
	if err == nil || !strings.Contains(err.Error(), "C s3backer") || !strings.Contains(err.Error(), "1 dirty block") ||
		!strings.Contains(err.Error(), "--blockCacheRecoverDirtyBlocks") {
		t.Fatalf("C file with a dirty block: %v", err)
	}
	if b, _ := os.ReadFile(o.path); !bytes.Equal(b, build(true)) {
		t.Fatal("refused C file modified")
	}

	if err := os.WriteFile(o.path, build(false), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(o.options(8))
	if err != nil {
		t.Fatal(err)
	}
	if f.Token() != 0x2a884500 {
		t.Errorf("C token %#x", f.Token())
	}
	if _, err := f.Plan(testRun); err != nil {
		t.Fatal(err)
	}
	mustPut(t, f.Start(0))
	f.Close()
	if !strings.Contains(o.log.String(), "rebuilding") {
		t.Error("no warning of the rebuild")
	}
	if b, _ := os.ReadFile(o.path); !bytes.HasPrefix(b, []byte(magic)) {
		t.Fatal("not rebuilt in our format")
	}

	if err := os.WriteFile(o.path, []byte("precious data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(o.options(8)); err == nil || !strings.Contains(err.Error(), "not a cache file") {
		t.Fatalf("foreign file: %v", err)
	}
	if b, _ := os.ReadFile(o.path); string(b) != "precious data\n" {
		t.Fatal("foreign file modified")
	}
}

// A second process cannot open a cache file in use.
func TestLocked(t *testing.T) {
	o := newOpener(t)
	o.start(4, testRun, 0)
	if _, err := Open(o.options(4)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
}

// Resizing keeps the blocks (dirty ones first when shrinking), and
// refuses to shrink below the number of dirty blocks.
func TestResize(t *testing.T) {
	o := newOpener(t)
	f := o.start(4, testRun, 0)
	mustPut(t, f.Fill(0, 1, pattern(1), "t1"))
	mustPut(t, f.Write(1, 2, pattern(2)))
	mustPut(t, f.Fill(2, 3, pattern(3), "t3"))
	mustPut(t, f.Write(3, 4, nil))
	f.Close()

	f = o.start(16, testRun, 0) // grow
	if f.NumSlots() != 16 || len(f.Recovered()) != 4 {
		t.Fatalf("grown: %d slots, %d blocks", f.NumSlots(), len(f.Recovered()))
	}
	check := func(f *File, n uint64, seed int) {
		t.Helper()
		r, ok := recovered(f)[n]
		if !ok {
			t.Fatalf("block %d lost", n)
		}
		want := make([]byte, bs)
		if seed > 0 {
			want = pattern(seed)
		}
		if !bytes.Equal(slotData(t, f, r.Slot), want) {
			t.Fatalf("block %d: wrong data after resize", n)
		}
	}
	check(f, 1, 1)
	check(f, 2, 2)
	mustPut(t, f.Write(10, 20, pattern(20)))
	f.Close()

	if _, err := o.try(2, testRun, 0); err == nil || !strings.Contains(err.Error(), "3 dirty blocks") {
		t.Fatalf("shrinking below the dirty blocks: %v", err)
	}
	f = o.start(3, testRun, 0)
	r := recovered(f)
	if len(r) != 3 || !r[2].Dirty || !r[4].Dirty || !r[20].Dirty {
		t.Fatalf("shrunk: %+v; want the 3 dirty blocks", r)
	}
	check(f, 2, 2)
	check(f, 20, 20)
	check(f, 4, 0)
	if st, _ := os.Stat(o.path); st.Size() != dataStart(3)+3*bs {
		t.Fatalf("file of %d bytes", st.Size())
	}
}

// Another block size: rebuilt if nothing is dirty, else refused.
func TestBlockSizeMismatch(t *testing.T) {
	o := newOpener(t)
	f := o.start(4, testRun, 0)
	mustPut(t, f.Fill(0, 1, pattern(1), "t1"))
	f.Close()
	other := o.options(4)
	other.BlockSize = 2 * bs
	f2, err := Open(other)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f2.Plan(testRun)
	mustPut(t, f2.Start(0))
	if len(f2.Recovered()) != 0 || !strings.Contains(o.log.String(), "block size") {
		t.Fatalf("clean file of another block size: %d recovered; log %s", len(f2.Recovered()), o.log.String())
	}
	f2.Close()

	f = o.start(4, testRun, 0) // rebuilt again for bs
	mustPut(t, f.Write(0, 1, pattern(1)))
	f.Close()
	if _, err := Open(other); err == nil || !strings.Contains(err.Error(), "--blockSize=4096") {
		t.Fatalf("dirty file of another block size: %v", err)
	}
}

// Blocks beyond a disk that shrank are dropped.
func TestBeyondDisk(t *testing.T) {
	o := newOpener(t)
	f := o.start(4, testRun, 0)
	mustPut(t, f.Fill(0, 999, pattern(1), "t"))
	mustPut(t, f.Fill(1, 5, pattern(2), "t"))
	f.Close()
	opt := o.options(4)
	opt.NumBlocks = 100
	f, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _ = f.Plan(testRun)
	mustPut(t, f.Start(0))
	if r := recovered(f); len(r) != 1 || r[5].Slot != 1 {
		t.Fatalf("recovered %+v", r)
	}
}
