package markdown

import "strings"

// Suggest returns the candidate closest to word by edit distance when it is
// close enough to be a likely typo, else "". Used for "did you mean" hints.
func Suggest(word string, candidates []string) string {
	best, bestDist := "", 0
	limit := 2
	if len(word) <= 3 {
		limit = 1
	}
	for _, c := range candidates {
		d := levenshtein(word, c)
		if d <= limit && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	if best == "" && len(word) >= 3 {
		// An abbreviation: "prod" for "production", when only one fits.
		for _, c := range candidates {
			if strings.HasPrefix(c, word) {
				if best != "" {
					return ""
				}
				best = c
			}
		}
	}
	return best
}

// DidYouMean formats Suggest's answer as a message suffix.
func DidYouMean(word string, candidates []string) string {
	if s := Suggest(word, candidates); s != "" {
		return "; did you mean " + s + "?"
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
