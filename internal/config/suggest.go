package config

import "strings"

// suggest returns "; did you mean --X?" for an unknown flag name that is
// close to a real one (same letters but for case, or at most two edits),
// else "". s3backer has no such hint; mistyped camelCase is common.
func suggest(name string) string {
	if s := suggestFold(name); s != "" {
		return "; did you mean --" + s + "?"
	}
	best, bestDist := "", 3
	lname := strings.ToLower(name)
	for _, f := range flagTable {
		d := editDistance(lname, strings.ToLower(f.Name))
		if d < bestDist && d*3 <= len(f.Name) {
			best, bestDist = f.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean --" + best + "?"
}

// suggestFold returns the flag whose name equals name but for case.
func suggestFold(name string) string {
	for _, f := range flagTable {
		if f.Name != name && strings.EqualFold(f.Name, name) {
			return f.Name
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
