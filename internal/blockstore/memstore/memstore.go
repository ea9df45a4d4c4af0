// Package memstore is an in-memory blockstore.Store for unit tests of layers.
// Real runs use the dir or s3 backends.
package memstore

import (
	"bytes"
	"context"
	"sync"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Store keeps non-zero blocks in a map.
type Store struct {
	blockSize int
	numBlocks uint64

	mu     sync.RWMutex
	blocks map[uint64][]byte
}

// New returns an empty store.
func New(blockSize int, numBlocks uint64) *Store {
	return &Store{blockSize: blockSize, numBlocks: numBlocks, blocks: make(map[uint64][]byte)}
}

func (s *Store) BlockSize() int    { return s.blockSize }
func (s *Store) NumBlocks() uint64 { return s.numBlocks }

func (s *Store) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if b, ok := s.blocks[n]; ok {
		copy(buf, b)
	} else {
		clear(buf)
	}
	return nil
}

func (s *Store) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	if err := blockstore.CheckBlock(s, n, data); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if data == nil || blockstore.IsZero(data) {
		delete(s.blocks, n)
	} else {
		s.blocks[n] = bytes.Clone(data)
	}
	return nil
}

func (s *Store) Presence(ctx context.Context, n uint64) (blockstore.Presence, error) {
	if err := blockstore.CheckBlock(s, n, nil); err != nil {
		return blockstore.Unknown, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.blocks[n]; ok {
		return blockstore.Present, nil
	}
	return blockstore.Absent, nil
}

// Stored returns how many blocks are stored (non-zero).
func (s *Store) Stored() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.blocks)
}

func (s *Store) Flush(ctx context.Context) error { return nil }
func (s *Store) Close() error                    { return nil }
