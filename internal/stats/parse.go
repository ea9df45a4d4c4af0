package stats

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ParseText reads a stats text (Text's output, s3backer's stats file or
// its mirror) into name -> value, the unit ("sec", "blocks") dropped.
func ParseText(text []byte) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("stats line %d: want \"name value [unit]\": %q", n, sc.Text())
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("stats line %d: %w", n, err)
		}
		if _, dup := m[f[0]]; dup {
			return nil, fmt.Errorf("stats line %d: %s twice", n, f[0])
		}
		m[f[0]] = v
	}
	return m, sc.Err()
}
