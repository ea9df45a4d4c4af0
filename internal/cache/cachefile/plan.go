package cachefile

import (
	"fmt"

	"github.com/s3backer-go/s3backer/internal/mounttoken"
)

// Policy is what a start knows that bears on the blocks a cache file
// holds.
type Policy struct {
	// Flag is the 'already mounted' flag's token found at start, FlagSet
	// whether there was one. Unused with Test.
	Flag    uint32
	FlagSet bool
	// Test: --test, which has no mount flag: the file's dirty blocks are
	// taken as this disk's.
	Test bool
	// RecoverDirty: --blockCacheRecoverDirtyBlocks.
	RecoverDirty bool
	// Force: --force; also writes back dirty blocks of another mount.
	Force    bool
	ReadOnly bool
}

// Plan is the decision: the flag token to accept and the token to write,
// and whether the dirty blocks are kept (and written back) or dropped.
type Plan struct {
	// Accept: the flag holds this file's token (its mount crashed); the
	// flag is taken over without --force. 0: nothing to accept.
	Accept uint32
	// Token to write in the flag and the file: the accepted one, so that
	// the flag never changes, or 0 for a new random one.
	Token uint32
	// KeepDirty: the dirty blocks found are written back at start.
	KeepDirty bool
}

// Plan decides what becomes of the blocks found, before the mount flag is
// taken, so that a refusal leaves everything as it was. Dirty blocks are
// kept only with RecoverDirty, and only if they are this disk's: the flag
// still holds the token they were written under (the mount that wrote them
// crashed and nobody mounted the disk since), or --test. Dirty blocks of
// another token are refused (another mount may have written newer data
// since) unless Force; without RecoverDirty they are dropped, with a
// warning, at Start.
func (f *File) Plan(p Policy) (Plan, error) {
	own := p.Test || (p.FlagSet && f.hdr.token != 0 && p.Flag == f.hdr.token && p.Flag != mounttoken.Shared)
	var plan Plan
	if own && !p.Test {
		plan.Accept, plan.Token = f.hdr.token, f.hdr.token
	}
	d := f.dirty()
	switch {
	case d == 0 || !p.RecoverDirty:
	case !own && !p.Force:
		flag := "is not set"
		if p.FlagSet {
			flag = fmt.Sprintf("holds token 0x%08x", p.Flag)
		}
		return Plan{}, fmt.Errorf("cache file %s holds %d dirty blocks written under mount token 0x%08x, but the disk's "+
			"'already mounted' flag %s: another mount may have written the disk since, and writing them back could "+
			"overwrite newer data; start without --blockCacheRecoverDirtyBlocks to drop them, or add --force to write them back anyway",
			f.opt.Path, d, f.hdr.token, flag)
	case p.ReadOnly:
		return Plan{}, fmt.Errorf("cache file %s holds %d dirty blocks, which --readOnly cannot write back: "+
			"start read-write with --blockCacheRecoverDirtyBlocks first, or without it to drop them", f.opt.Path, d)
	default:
		if !own {
			f.log.Warn("writing back dirty blocks of another mount (--force)", "file", f.opt.Path, "blocks", d,
				"token", fmt.Sprintf("0x%08x", f.hdr.token))
		}
		plan.KeepDirty = true
	}
	if plan.KeepDirty {
		for _, fo := range f.found {
			if fo.e.state == stDirty && fo.e.block >= f.opt.NumBlocks {
				return Plan{}, fmt.Errorf("cache file %s: dirty block %d is beyond the disk's %d blocks: "+
					"start with the size it was written with to write it back", f.opt.Path, fo.e.block, f.opt.NumBlocks)
			}
		}
		if d > f.opt.Slots {
			return Plan{}, fmt.Errorf("cache file %s holds %d dirty blocks, more than --blockCacheSize=%d: start once with "+
				"--blockCacheSize=%d (and --blockCacheRecoverDirtyBlocks) to write them back first", f.opt.Path, d, f.opt.Slots, d)
		}
	}
	f.plan = plan
	return plan, nil
}
