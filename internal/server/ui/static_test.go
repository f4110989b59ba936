package ui_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Static assets are gzipped for browsers that accept it and carry an
// ETag; asking again with it costs a 304 and no body.
func TestStaticGzipAndETag(t *testing.T) {
	ts := startServer(t)
	get := func(path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", ts.url+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultTransport.RoundTrip(req) // no transparent decompression
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	plain := get("/static/htmx.min.js", nil)
	body, _ := io.ReadAll(plain.Body)
	if plain.StatusCode != 200 || plain.Header.Get("Content-Encoding") != "" || !strings.Contains(plain.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("plain GET: %d %q %q", plain.StatusCode, plain.Header.Get("Content-Encoding"), plain.Header.Get("Content-Type"))
	}
	etag := plain.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	gz := get("/static/htmx.min.js", map[string]string{"Accept-Encoding": "gzip, br"})
	if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("ETag") != etag {
		t.Fatalf("gzip GET: encoding %q etag %q", gz.Header.Get("Content-Encoding"), gz.Header.Get("ETag"))
	}
	compressed, _ := io.ReadAll(gz.Body)
	zr, err := gzip.NewReader(strings.NewReader(string(compressed)))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if string(unzipped) != string(body) {
		t.Error("the gzipped body is not the asset")
	}
	if len(compressed)*2 > len(body) {
		t.Errorf("htmx gzipped to %d of %d bytes", len(compressed), len(body))
	}
	t.Logf("htmx.min.js: %d bytes, %d gzipped", len(body), len(compressed))
	again := get("/static/htmx.min.js", map[string]string{"If-None-Match": etag, "Accept-Encoding": "gzip"})
	if b, _ := io.ReadAll(again.Body); again.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Errorf("revalidation: %d with %d bytes, want 304 and none", again.StatusCode, len(b))
	}
	stale := get("/static/htmx.min.js", map[string]string{"If-None-Match": `"old"`})
	if stale.StatusCode != 200 {
		t.Errorf("a stale ETag got %d, want 200", stale.StatusCode)
	}
	if res := get("/static/nope.js", nil); res.StatusCode != 404 {
		t.Errorf("missing asset: %d", res.StatusCode)
	}
}
