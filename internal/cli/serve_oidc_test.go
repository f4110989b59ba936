package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/server"
)

func TestServeOIDC(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	issuer := server.OIDCConfig{Issuer: "https://id.example.com", ClientID: "opsbook"}
	cases := []struct {
		name       string
		flags      server.OIDCConfig
		env        map[string]string
		wantSecret string // "" with wantErr "" means OIDC stays off
		wantErr    string
	}{
		{name: "off"},
		{name: "secret from env", flags: issuer, env: map[string]string{"OPSBOOK_OIDC_CLIENT_SECRET": "s3cret"}, wantSecret: "s3cret"},
		{name: "secret from file", flags: issuer, env: map[string]string{"OPSBOOK_OIDC_CLIENT_SECRET_FILE": secretFile}, wantSecret: "from-file"},
		{name: "no secret", flags: issuer, wantErr: "OPSBOOK_OIDC_CLIENT_SECRET"},
		{name: "both secrets", flags: issuer, env: map[string]string{"OPSBOOK_OIDC_CLIENT_SECRET": "a", "OPSBOOK_OIDC_CLIENT_SECRET_FILE": secretFile}, wantErr: "not both"},
		{name: "missing file", flags: issuer, env: map[string]string{"OPSBOOK_OIDC_CLIENT_SECRET_FILE": secretFile + ".gone"}, wantErr: "no such file"},
		{name: "no client id", flags: server.OIDCConfig{Issuer: "https://id.example.com"}, env: map[string]string{"OPSBOOK_OIDC_CLIENT_SECRET": "s"}, wantErr: "--oidc-client-id"},
		{name: "issuer not a URL", flags: server.OIDCConfig{Issuer: "id.example.com", ClientID: "x"}, wantErr: "not an http(s) URL"},
		{name: "client id without issuer", flags: server.OIDCConfig{ClientID: "x"}, wantErr: "need --oidc-issuer"},
		{name: "relative redirect", flags: server.OIDCConfig{Issuer: "https://id.example.com", ClientID: "x", RedirectURL: "/cb"},
			env: map[string]string{"OPSBOOK_OIDC_CLIENT_SECRET": "s"}, wantErr: "not an absolute URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := serveOIDC(c.flags, func(k string) string { return c.env[k] })
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.wantSecret == "" {
				if got != nil {
					t.Fatalf("OIDC on without --oidc-issuer: %+v", got)
				}
				return
			}
			if got == nil || got.ClientSecret != c.wantSecret || got.Issuer != c.flags.Issuer {
				t.Fatalf("got %+v, want secret %q", got, c.wantSecret)
			}
		})
	}
}
