package audit

import (
	"strings"
	"testing"
	"time"
)

func chain(n int) []Entry {
	var out []Entry
	var last *Entry
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 123456789, time.UTC)
	for i := 0; i < n; i++ {
		e := Seal(last, Entry{Time: t0.Add(time.Duration(i) * time.Second), Actor: "alice", Action: "run.start", Target: "run/r-1", Remote: "10.0.0.1:5000", Detail: map[string]string{"env": "prod", "n": string(rune('a' + i))}})
		out = append(out, e)
		last = &out[len(out)-1]
	}
	return out
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name       string
		tamper     func([]Entry) []Entry
		head       func([]Entry) *Entry
		wantSeq    int64
		wantReason string
	}{
		{"intact", func(es []Entry) []Entry { return es }, nil, 0, ""},
		{"edited actor", func(es []Entry) []Entry { es[2].Actor = "mallory"; return es }, nil, 3, "edited"},
		{"edited detail", func(es []Entry) []Entry { es[1].Detail = map[string]string{"env": "dev"}; return es }, nil, 2, "edited"},
		{"edited and rehashed", func(es []Entry) []Entry {
			es[1].Actor = "mallory"
			es[1].Hash = ChainHash(es[1].Prev, es[1])
			return es
		}, nil, 3, "previous hash differs"},
		{"deleted middle", func(es []Entry) []Entry { return append(es[:2], es[3:]...) }, nil, 3, "missing"},
		{"deleted middle and renumbered", func(es []Entry) []Entry {
			es = append(es[:2], es[3:]...)
			for i := range es {
				es[i].Seq = int64(i + 1)
			}
			return es
		}, nil, 3, ""},
		{"reordered", func(es []Entry) []Entry { es[1], es[2] = es[2], es[1]; return es }, nil, 2, "missing"},
		{"deleted newest, head kept", func(es []Entry) []Entry { return es[:4] }, func(es []Entry) *Entry { return &es[4] }, 5, "newest rows were deleted"},
		{"deleted all, head kept", func(es []Entry) []Entry { return nil }, func(es []Entry) *Entry { return &es[4] }, 1, "log is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := chain(5)
			var head *Entry
			if tt.head != nil {
				h := tt.head(orig)
				cp := *h
				head = &cp
			}
			es := tt.tamper(append([]Entry(nil), orig...))
			var v Verifier
			for _, e := range es {
				v.Add(e)
			}
			_, p := v.Finish(head)
			if tt.wantSeq == 0 {
				if p != nil {
					t.Fatalf("intact log reported %v", p)
				}
				return
			}
			if p == nil {
				t.Fatal("tampering not detected")
			}
			if p.Seq != tt.wantSeq || !strings.Contains(p.Reason, tt.wantReason) {
				t.Fatalf("problem = %v, want seq %d with %q", p, tt.wantSeq, tt.wantReason)
			}
		})
	}
}

func TestSealNormalisesTime(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	e := Seal(nil, Entry{Time: time.Date(2026, 1, 1, 8, 0, 0, 999, loc), Action: "x"})
	if e.Time.Location() != time.UTC || e.Time.Nanosecond() != 0 || e.Seq != 1 || e.Prev != Genesis {
		t.Fatalf("%+v", e)
	}
	// What a database returns (microseconds, UTC) hashes the same.
	back := e
	back.Time = time.UnixMicro(e.Time.UnixMicro()).UTC()
	if ChainHash(back.Prev, back) != e.Hash {
		t.Fatal("round trip through microseconds changes the hash")
	}
}
