package markdown

import (
	"regexp"
	"strings"
	"sync"
	"unicode"

	"github.com/opsbook/opsbook/internal/runbook"
)

// leadingNumber matches the numbering people put before headings:
// "1.", "2)", "3.1 ", "一、", "第一步", "（二）", "Step 3:", "步骤 3：".
var leadingNumber = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)^\s*(?:` +
		`\d+(?:\.\d+)*(?:[.)、:：．]\s*|\s+)` +
		`|[一二三四五六七八九十百零]+\s*[、.．:：)）]\s*` +
		`|第\s*[一二三四五六七八九十百零\d]+\s*(?:部分|阶段|步|章|节|项|部)?\s*[、.．:：)）]?\s*` +
		`|[(（]\s*(?:\d+|[一二三四五六七八九十]+)\s*[)）]\s*` +
		`|step\s*\d+\s*[.):：-]?\s*` +
		`|步骤\s*\d+\s*[.):：、]?\s*` +
		`)`)
})

// stripNumbering removes leading numbering and trailing punctuation.
func stripNumbering(s string) string {
	s = strings.TrimSpace(s)
	if loc := leadingNumber().FindStringIndex(s); loc != nil {
		s = s[loc[1]:]
	}
	return strings.TrimRight(s, " \t:：.。")
}

// normalizeTitle makes a heading comparable with the titles of
// runbook.SectionSpecs: no numbering, no inline markup, lower case,
// single spaces.
func normalizeTitle(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '*', '_', '`':
			return -1
		}
		return unicode.ToLower(r)
	}, s)
	s = stripNumbering(s)
	return strings.Join(strings.Fields(s), " ")
}

type titleMatch struct {
	role runbook.SectionRole
	zh   bool
}

// sectionTitles maps every normalized EN and ZH title to its role.
var sectionTitles = sync.OnceValue(func() map[string]titleMatch {
	m := map[string]titleMatch{}
	for _, spec := range runbook.SectionSpecs {
		for _, t := range spec.EN {
			m[normalizeTitle(t)] = titleMatch{role: spec.Role}
		}
		for _, t := range spec.ZH {
			m[normalizeTitle(t)] = titleMatch{role: spec.Role, zh: true}
		}
	}
	return m
})

var (
	bilingualSeparators = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\s+/\s+|\s*[|｜()（）]\s*`) })
	slashSeparator      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\s*/\s*`) })
)

// matchSection recognises an H2 heading. lang is "en" or "zh" when the
// heading names the section in one language only, "" for a bilingual one.
func matchSection(heading string) (role runbook.SectionRole, lang string) {
	if m, ok := sectionTitles()[normalizeTitle(heading)]; ok {
		return m.role, langOf(m.zh)
	}
	for _, sep := range []*regexp.Regexp{bilingualSeparators(), slashSeparator()} {
		var en, zh bool
		for _, piece := range sep.Split(heading, -1) {
			m, ok := sectionTitles()[normalizeTitle(piece)]
			if !ok {
				continue
			}
			if role == "" {
				role = m.role
			}
			if m.zh {
				zh = true
			} else {
				en = true
			}
		}
		if role != "" {
			switch {
			case en && zh:
				return role, ""
			case zh:
				return role, "zh"
			}
			return role, "en"
		}
	}
	return "", ""
}

func langOf(zh bool) string {
	if zh {
		return "zh"
	}
	return "en"
}

// slugify derives a step id from a heading's ASCII words:
// "2. Stop writes (停止写入)" → "stop-writes".
func slugify(heading string) string {
	s := strings.ToLower(stripNumbering(heading))
	var words []string
	start := -1
	for i := 0; i <= len(s); i++ {
		alnum := i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= '0' && s[i] <= '9')
		if alnum && start < 0 {
			start = i
		}
		if !alnum && start >= 0 {
			words = append(words, s[start:i])
			start = -1
		}
	}
	slug := strings.Join(words, "-")
	if len(slug) > 64 {
		slug = strings.TrimRight(slug[:64], "-")
	}
	return slug
}
