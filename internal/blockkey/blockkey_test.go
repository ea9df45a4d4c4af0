package blockkey

import "testing"

// Vectors from s3backer-format-detail.md §1.3, checked against the C binary.
func TestHashVectors(t *testing.T) {
	for n, want := range map[uint32]uint32{
		0: 0xc448b72c, 1: 0xd211cad9, 2: 0x7183baa1, 3: 0x531c6cd5, 5: 0x6a03ab82,
		0x10: 0x5150b901, 0xff: 0x6ad31a26, 0x1000: 0x925db8e2,
		0xfffffffe: 0xb5822738, 0xffffffff: 0x0f447858,
	} {
		if got := Hash(n); got != want {
			t.Errorf("Hash(%#x) = %08x, want %08x", n, got, want)
		}
	}
}

func TestNameAndParse(t *testing.T) {
	plain := Namer{Prefix: "disk1/", NumBlocks: 100}
	hashed := Namer{Prefix: "disk1/", HashPrefix: true, NumBlocks: 1 << 32}
	cases := []struct {
		k    Namer
		n    uint64
		name string
	}{
		{plain, 0, "disk1/00000000"},
		{plain, 26, "disk1/0000001a"},
		{hashed, 0, "disk1/c448b72c-00000000"},
		{hashed, 0xfffffffe, "disk1/b5822738-fffffffe"},
		{Namer{NumBlocks: 1}, 0, "00000000"},
	}
	for _, c := range cases {
		if got := c.k.Name(c.n); got != c.name {
			t.Errorf("Name(%d) = %q, want %q", c.n, got, c.name)
		}
		if n, ok := c.k.Parse(c.name); !ok || n != c.n {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.name, n, ok, c.n)
		}
	}
	for _, bad := range []string{
		"disk1/s3backer-mounted", "disk1/0000001A", "disk1/00000064", /* = 100, past end */
		"disk1/0000001", "disk1/000000001", "disk2/00000001", "disk1/00000001.XyZ123",
	} {
		if n, ok := plain.Parse(bad); ok {
			t.Errorf("Parse(%q) = %d, want no match", bad, n)
		}
	}
	for _, bad := range []string{
		"disk1/c448b72d-00000000", // wrong hash
		"disk1/00000000",          // hash missing
		"disk1/c448b72c_00000000",
	} {
		if n, ok := hashed.Parse(bad); ok {
			t.Errorf("hashed Parse(%q) = %d, want no match", bad, n)
		}
	}
}
