package runbook

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"90s", 90 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"1d", 24 * time.Hour, ""},
		{"2d12h", 60 * time.Hour, ""},
		{" 5m ", 5 * time.Minute, ""},
		{"0", 0, ""},
		{"30", 0, "has no unit; write 30s or 30m"},
		{"", 0, "empty duration"},
		{"-5m", 0, "negative"},
		{"5 minutes", 0, "not valid"},
		{"xd", 0, "day count"},
		{"1.5d", 0, "day count"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseDuration(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}
