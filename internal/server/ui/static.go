package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/opsbook/opsbook/internal/web"
)

// staticFile is one embedded asset, ready to serve: its ETag (a hash of
// its content) and, for text, its gzip form, both made once at start-up.
type staticFile struct {
	body, gz []byte
	etag     string
	ctype    string
}

// loadStatic reads every embedded asset.
func loadStatic() (map[string]*staticFile, error) {
	files := map[string]*staticFile{}
	err := fs.WalkDir(web.Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.Static(), p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		f := &staticFile{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: mime.TypeByExtension(path.Ext(p))}
		if f.ctype == "" {
			f.ctype = "application/octet-stream"
		}
		if strings.HasPrefix(f.ctype, "text/") || strings.Contains(f.ctype, "javascript") {
			var z bytes.Buffer
			w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
			w.Write(b)
			w.Close()
			if z.Len() < len(b) {
				f.gz = z.Bytes()
			}
		}
		files[p] = f
		return nil
	})
	return files, err
}

// serveStatic answers an asset with its ETag (a matching If-None-Match
// gets 304 Not Modified) and gzipped when the browser accepts it.
func serveStatic(w http.ResponseWriter, r *http.Request, f *staticFile) {
	h := w.Header()
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	if match := r.Header.Get("If-None-Match"); match != "" {
		for _, tag := range strings.Split(match, ",") {
			if t := strings.TrimSpace(tag); t == f.etag || t == "W/"+f.etag || t == "*" {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	h.Set("Content-Type", f.ctype)
	body := f.body
	if f.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
