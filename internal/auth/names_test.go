package auth

import "testing"

func TestCheckName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"alice.smith@example.com", true},
		{"svc-nightly_2", true},
		{"A1", true},
		{"", false},
		{"-alice", false},
		{"ali ce", false},
		{"alice/../admin", false},
		{"<script>", false},
		{"张三", false},
		{string(make([]byte, 65)), false},
	} {
		if err := CheckName("user", tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestNameFrom(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                        "alice",
		"Alice Smith":                  "Alice-Smith",
		"bob@example.com":              "bob@example.com",
		"张三":                           "",
		"  -weird/name  ":              "weird-name",
		"x" + string(make([]byte, 70)): "x" + "---------------------------------------------------------------",
	} {
		got := NameFrom(in)
		if got != want {
			t.Errorf("NameFrom(%q) = %q, want %q", in, got, want)
		}
		if got != "" && CheckName("user", got) != nil {
			t.Errorf("NameFrom(%q) = %q, which CheckName refuses", in, got)
		}
	}
}
