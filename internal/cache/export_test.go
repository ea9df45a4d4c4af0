package cache

// For the tests of package cache_test, which may import packages that
// import cache (the cache file).
var RunModel = runModel

const (
	ModelBlockSize = modelBlockSize
	ModelBlocks    = modelBlocks
)

// Lower returns the store under the cache.
func (s *Store) Lower() any { return s.lower }
