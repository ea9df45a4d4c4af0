package s3

import (
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend/retry"
	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
	"github.com/s3backer-go/s3backer/internal/codec"
	"github.com/s3backer-go/s3backer/internal/zero"
)

// The block-store conformance suite over a real S3 server, through the
// layers the program stacks: codec over retry over this backend, with and
// without the zero layer (and its survey) on top.
func TestBlockStoreConformance(t *testing.T) {
	for _, withZero := range []bool{false, true} {
		name := "codec"
		if withZero {
			name = "zero+survey"
		}
		t.Run(name, func(t *testing.T) {
			var opened Options
			open := func(t *testing.T, bs int, n uint64, o Options) blockstore.Store {
				st, err := codec.New(retry.New(mustNew(t, o), retry.Options{}), codec.Options{
					Prefix: "disk/", HashPrefix: true, BlockSize: bs, NumBlocks: n, VerifyETag: true,
				})
				if err != nil {
					t.Fatal(err)
				}
				if withZero {
					return zero.New(st, zero.Options{Survey: true})
				}
				return st
			}
			storetest.Run(t, storetest.Harness{
				New: func(t *testing.T, bs int, n uint64) blockstore.Store {
					opened, _ = gwOptions(t)
					return open(t, bs, n, opened)
				},
				Reopen: func(t *testing.T, s blockstore.Store) blockstore.Store {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					return open(t, s.BlockSize(), s.NumBlocks(), opened)
				},
			})
		})
	}
}
