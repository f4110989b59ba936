package notify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/notify"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/pgtest"
	"github.com/opsbook/opsbook/internal/store/storetest"
	"github.com/opsbook/opsbook/internal/workspace"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// Secrets of the test channels; none may appear in a stored error, a log
// or a message.
const (
	slackToken    = "T000/B000/slacktokensecret"
	hookSecret    = "hook-signing-secret-42"
	smtpPassword  = "smtp-password-s3cret"
	paramSecret   = "hunter2-param-secret"
	runbookPath   = "ops/runbooks/db-backup.md"
	otherRunbook  = "ops/runbooks/web-deploy.md"
	maxWaitRounds = 200
)

// receiver is a real HTTP server on loopback that records what it is sent.
// While down is set it answers 503, as a receiver being restarted does.
type receiver struct {
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	failures int // answer 503 to this many more requests
	srv      *http.Server
	addr     string
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveReceiver(t, l, 0)
}

// serveReceiver serves a receiver on l that answers 503 to its first
// failures requests.
func serveReceiver(t *testing.T, l net.Listener, failures int) *receiver {
	r := &receiver{addr: l.Addr().String(), failures: failures}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.failures > 0 {
			r.failures--
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		r.bodies = append(r.bodies, body)
		r.headers = append(r.headers, req.Header.Clone())
	})}
	go r.srv.Serve(l)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *receiver) got() ([][]byte, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]http.Header(nil), r.headers...)
}

// mailServer is a real SMTP server (emersion/go-smtp, used only in tests)
// on loopback that offers STARTTLS with a certificate of a private CA and
// requires AUTH PLAIN over TLS.
type mailServer struct {
	mu     sync.Mutex
	mails  []mail
	addr   string
	caFile string
}

type mail struct {
	from   string
	to     []string
	data   string
	tls    bool
	authed string
}

type mailSession struct {
	srv  *mailServer
	conn *gosmtp.Conn
	cur  mail
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "opsbook" || pass != smtpPassword {
			return errors.New("invalid credentials")
		}
		s.cur.authed = user
		return nil
	}), nil
}
func (s *mailSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.cur.authed == "" {
		return errors.New("authenticate first")
	}
	s.cur.from = from
	_, s.cur.tls = s.conn.TLSConnectionState()
	return nil
}
func (s *mailSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.srv.mu.Lock()
	s.srv.mails = append(s.srv.mails, s.cur)
	s.srv.mu.Unlock()
	s.cur = mail{authed: s.cur.authed}
	return nil
}
func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }

func startMailServer(t *testing.T, offerTLS bool) *mailServer {
	t.Helper()
	ms := &mailServer{}
	caPEM, cert := testCertificate(t)
	ms.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ms.caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &mailSession{srv: ms, conn: c}, nil
	}))
	s.Domain = "127.0.0.1"
	if offerTLS {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	} else {
		s.AllowInsecureAuth = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return ms
}

func (ms *mailServer) got() []mail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]mail(nil), ms.mails...)
}

// testCertificate makes a CA and a server certificate for 127.0.0.1.
func testCertificate(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "opsbook test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// setup is one store with a workspace whose opsbook.yaml declares the
// channels given as YAML.
type setup struct {
	t     *testing.T
	st    *store.Store
	ws    *workspace.Workspace
	env   map[string]string
	nodes []*notify.Dispatcher
}

func newSetup(t *testing.T, st *store.Store, channels string) *setup {
	t.Helper()
	yaml := `name: acme
projects:
  - name: payments-db
    runbooks: ["ops/runbooks/db-*.md"]
  - name: web
    runbooks: ["ops/runbooks/web-*.md"]
environments:
  - name: staging
  - name: production
    protected: true
notifications:
` + channels
	cfg, err := workspace.ParseConfig("opsbook.yaml", []byte(yaml), t.TempDir())
	if err != nil {
		t.Fatalf("opsbook.yaml: %v", err)
	}
	return &setup{t: t, st: st, ws: &workspace.Workspace{Dir: t.TempDir(), Config: cfg},
		env: map[string]string{"SLACK_URL": "", "HOOK_SECRET": hookSecret, "SMTP_PASSWORD": smtpPassword}}
}

// node starts a dispatcher, as one server node would.
func (s *setup) node(name string) *notify.Dispatcher {
	d := notify.New(notify.Config{Store: s.st, Workspace: func() *workspace.Workspace { return s.ws },
		BaseURL: "https://ops.example.com", Node: name, Getenv: func(k string) string { return s.env[k] },
		Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxAttempts: 50})
	s.nodes = append(s.nodes, d)
	return d
}

// run records a run and the events given, as the engine would.
func (s *setup) run(rb, env string, evs ...runbook.Event) runbook.Run {
	s.t.Helper()
	ctx := context.Background()
	r := runbook.Run{Runbook: rb, Title: "Back up the orders database", Environment: env, Status: runbook.RunRunning, CreatedBy: "alice"}
	if err := s.st.CreateRun(ctx, &r); err != nil {
		s.t.Fatal(err)
	}
	if len(evs) > 0 {
		if _, err := s.st.AppendEvents(ctx, r.ID, evs...); err != nil {
			s.t.Fatal(err)
		}
	}
	return r
}

// settle runs rounds on every node until nothing is pending any more.
func (s *setup) settle(runID string, want int) []store.Delivery {
	s.t.Helper()
	ctx := context.Background()
	for i := 0; i < maxWaitRounds; i++ {
		for _, d := range s.nodes {
			if _, err := d.Round(ctx); err != nil {
				s.t.Fatal(err)
			}
		}
		ds, err := s.st.Deliveries(ctx, runID, "")
		if err != nil {
			s.t.Fatal(err)
		}
		done := len(ds) >= want
		for _, d := range ds {
			done = done && d.Status != store.DeliveryPending
		}
		if done {
			return ds
		}
		time.Sleep(20 * time.Millisecond)
	}
	ds, _ := s.st.Deliveries(ctx, runID, "")
	s.t.Fatalf("deliveries did not settle: %+v", ds)
	return nil
}

func gateWaiting(roles string) runbook.Event {
	return runbook.Event{Type: runbook.EventGateWaiting, Step: "switch-writes", Text: "replica lag < 1 s",
		Data: map[string]string{"approvers": "2", "roles": roles}}
}

func finished(status runbook.RunStatus) runbook.Event {
	return runbook.Event{Type: runbook.EventRunFinished, Data: map[string]string{"status": string(status)}}
}

const allChannels = `  - name: ops-slack
    type: slack
    url_env: SLACK_URL
  - name: audit-hook
    type: webhook
    url_env: HOOK_URL
    secret_env: HOOK_SECRET
  - name: oncall-mail
    type: email
    to: [oncall@example.com]
    from: opsbook@example.com
    smtp: {host: 127.0.0.1, port: PORT, user: opsbook, password_env: SMTP_PASSWORD, ca_file: CAFILE}
`

// TestEveryChannelEndToEnd sends a waiting gate and a failed run through
// a real HTTP receiver (Slack-compatible and signed webhook) and a real
// SMTP server with STARTTLS and AUTH, and checks what arrived.
func TestEveryChannelEndToEnd(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		slack, hook := startReceiver(t), startReceiver(t)
		ms := startMailServer(t, true)
		_, port, _ := net.SplitHostPort(ms.addr)
		s := newSetup(t, st, strings.NewReplacer("PORT", port, "CAFILE", ms.caFile).Replace(allChannels))
		s.env["SLACK_URL"] = "http://" + slack.addr + "/services/" + slackToken
		s.env["HOOK_URL"] = "http://" + hook.addr + "/opsbook"
		s.node("a")
		r := s.run(runbookPath, "production", runbook.Event{Type: runbook.EventRunStarted}, gateWaiting("dba"),
			runbook.Event{Type: runbook.EventStepOutput, Step: "dump", Stream: "stdout", Text: "not notable"},
			finished(runbook.RunFailed))
		ds := s.settle(r.ID, 6)
		if len(ds) != 6 {
			t.Fatalf("want 2 notices × 3 channels, got %d deliveries: %+v", len(ds), ds)
		}
		for _, d := range ds {
			if d.Status != store.DeliverySent || d.Attempts != 1 {
				t.Errorf("delivery %s of %s: %s after %d attempts (%s)", d.Channel, d.Notice.Kind, d.Status, d.Attempts, d.LastError)
			}
		}

		// Slack: one message per notice, with the link, escaped.
		bodies, _ := slack.got()
		if len(bodies) != 2 {
			t.Fatalf("slack got %d messages, want 2", len(bodies))
		}
		var sm map[string]string
		json.Unmarshal(bodies[0], &sm)
		for _, want := range []string{"Go/No-Go needed", "switch-writes", "2 distinct approvers", "dba", "<https://ops.example.com/runs/" + r.ID + "|Open in opsbook>"} {
			if !strings.Contains(sm["text"], want) {
				t.Errorf("slack message lacks %q:\n%s", want, sm["text"])
			}
		}

		// Webhook: signed with the trigger scheme, one ID per notice.
		bodies, headers := hook.got()
		if len(bodies) != 2 {
			t.Fatalf("webhook got %d messages, want 2", len(bodies))
		}
		for i, b := range bodies {
			sig := headers[i].Get(notify.SignatureHeader)
			ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
			var sec int64
			fmt.Sscan(ts, &sec)
			if want := notify.Sign(hookSecret, time.Unix(sec, 0), b); !hmac.Equal([]byte(sig), []byte(want)) {
				t.Errorf("webhook %d: signature %q does not verify", i, sig)
			}
			var m notify.Message
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if m.RunID != r.ID || m.Project != "payments-db" || m.Environment != "production" || headers[i].Get(notify.DeliveryHeader) != m.ID {
				t.Errorf("webhook %d: %+v", i, m)
			}
		}
		var last notify.Message
		json.Unmarshal(bodies[1], &last)
		if last.Kind != workspace.NotifyFailed {
			t.Errorf("second webhook kind %q, want failed", last.Kind)
		}

		// E-mail: over STARTTLS, authenticated, with a readable subject.
		mails := ms.got()
		if len(mails) != 2 {
			t.Fatalf("smtp got %d mails, want 2", len(mails))
		}
		for _, m := range mails {
			if !m.tls || m.authed != "opsbook" || m.from != "opsbook@example.com" || len(m.to) != 1 || m.to[0] != "oncall@example.com" {
				t.Errorf("mail envelope %+v", m)
			}
		}
		if !strings.Contains(mails[1].data, "Subject: Run failed") || !strings.Contains(mails[1].data, "https://ops.example.com/runs/"+r.ID) {
			t.Errorf("mail:\n%s", mails[1].data)
		}

		// The run's log records each delivery, for the postmortem.
		evs, _ := st.Events(context.Background(), r.ID, 0, 0)
		sent := 0
		for _, ev := range evs {
			if ev.Type == runbook.EventNotified {
				sent++
			}
		}
		if sent != 6 {
			t.Errorf("%d notification.sent events on the run, want 6", sent)
		}
	})
}

// TestReceiverDownIsRetriedAndDeliveredOnce: a receiver that refuses
// connections, then answers 503, then recovers gets the message exactly
// once, and the stored errors never show the secret URL.
func TestReceiverDownIsRetriedAndDeliveredOnce(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		// Reserve a port, and keep nothing listening on it for now.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		s := newSetup(t, st, `  - name: ops-slack
    type: slack
    url_env: SLACK_URL
`)
		s.env["SLACK_URL"] = "http://" + addr + "/services/" + slackToken
		d := s.node("a")
		r := s.run(runbookPath, "staging", finished(runbook.RunRolledBack))
		ctx := context.Background()
		for i := 0; i < 3; i++ {
			d.Round(ctx)
			time.Sleep(120 * time.Millisecond)
		}
		ds, _ := st.Deliveries(ctx, r.ID, "")
		if len(ds) != 1 || ds[0].Status != store.DeliveryPending || ds[0].Attempts < 2 {
			t.Fatalf("while the receiver is down: %+v", ds)
		}
		if strings.Contains(ds[0].LastError, slackToken) || !strings.Contains(ds[0].LastError, "***") {
			t.Errorf("stored error must mask the webhook URL: %q", ds[0].LastError)
		}

		// Up again, but answering 503 twice first.
		l, err = net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("port %s taken by someone else meanwhile: %v", addr, err)
		}
		rc := serveReceiver(t, l, 2)
		ds = s.settle(r.ID, 1)
		if ds[0].Status != store.DeliverySent {
			t.Fatalf("after recovery: %+v", ds[0])
		}
		// Extra rounds send nothing more.
		for i := 0; i < 5; i++ {
			d.Round(ctx)
		}
		if bodies, _ := rc.got(); len(bodies) != 1 {
			t.Errorf("receiver got %d messages, want exactly 1", len(bodies))
		}
	})
}

// TestNodesDeliverEachNoticeOnce: three dispatchers (three server nodes)
// on one store, working at once, send each notice to each channel once.
func TestNodesDeliverEachNoticeOnce(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		hook := startReceiver(t)
		s := newSetup(t, st, `  - name: audit-hook
    type: webhook
    url_env: HOOK_URL
    secret_env: HOOK_SECRET
`)
		s.env["HOOK_URL"] = "http://" + hook.addr + "/"
		nodes := []*notify.Dispatcher{s.node("a"), s.node("b"), s.node("c")}
		const runs = 15
		for i := 0; i < runs; i++ {
			s.run(runbookPath, "staging", gateWaiting(""), finished(runbook.RunSucceeded))
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		for _, d := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					if _, err := d.Round(ctx); err != nil && !errors.Is(err, store.ErrLocked) {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		for _, d := range nodes {
			d.Round(ctx)
		}
		bodies, _ := hook.got()
		seen := map[string]int{}
		for _, b := range bodies {
			var m notify.Message
			json.Unmarshal(b, &m)
			seen[m.ID]++
		}
		if len(bodies) != 2*runs || len(seen) != 2*runs {
			t.Errorf("got %d messages for %d distinct notices, want %d of each", len(bodies), len(seen), 2*runs)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("notice %s delivered %d times", id, n)
			}
		}
	})
}

// TestNoticeSurvivesRestart: the notice is written with its event, so a
// dispatcher started later (a restarted server) still sends it.
func TestNoticeSurvivesRestart(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		hook := startReceiver(t)
		s := newSetup(t, st, `  - name: audit-hook
    type: webhook
    url_env: HOOK_URL
    secret_env: HOOK_SECRET
`)
		s.env["HOOK_URL"] = "http://" + hook.addr + "/"
		// Recorded while no server ran (a CLI run on the same store).
		r := s.run(runbookPath, "staging", runbook.Event{Type: runbook.EventRunInterrupted, Text: "process 4242 died"})
		s.node("after-restart")
		ds := s.settle(r.ID, 1)
		if ds[0].Status != store.DeliverySent || ds[0].Notice.Kind != string(runbook.EventRunInterrupted) {
			t.Fatalf("%+v", ds)
		}
	})
}

// TestFiltersAndMute: per-channel project, environment, kind and team
// filters, and a muted channel that gets nothing.
func TestFiltersAndMute(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		hook := startReceiver(t)
		s := newSetup(t, st, `  - name: prod-db-waits
    type: webhook
    url_env: HOOK_URL
    secret_env: HOOK_SECRET
    projects: [payments-db]
    environments: [production]
    events: [waiting]
    teams: [dba]
  - name: muted
    type: webhook
    url_env: HOOK_URL
    secret_env: HOOK_SECRET
    muted: true
`)
		s.env["HOOK_URL"] = "http://" + hook.addr + "/"
		s.node("a")
		wanted := s.run(runbookPath, "production", gateWaiting("dba,sre"))
		notMyTeam := s.run(runbookPath, "production", gateWaiting("network"))
		wrongEnv := s.run(runbookPath, "staging", gateWaiting("dba"))
		wrongProject := s.run(otherRunbook, "production", gateWaiting("dba"))
		wrongKind := s.run(runbookPath, "production", finished(runbook.RunFailed))
		s.settle(wanted.ID, 1)
		for _, r := range []runbook.Run{notMyTeam, wrongEnv, wrongProject, wrongKind} {
			if ds, _ := st.Deliveries(context.Background(), r.ID, ""); len(ds) != 0 {
				t.Errorf("run in %s of %s: %d deliveries, want none", r.Environment, r.Runbook, len(ds))
			}
		}
		if bodies, _ := hook.got(); len(bodies) != 1 {
			t.Errorf("receiver got %d messages, want 1", len(bodies))
		}
	})
}

// TestEmailRefusesCleartext: an SMTP server that offers no STARTTLS gets
// nothing: not the password, not the message.
func TestEmailRefusesCleartext(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ms := startMailServer(t, false)
		host, port, _ := net.SplitHostPort(ms.addr)
		s := newSetup(t, st, fmt.Sprintf(`  - name: oncall-mail
    type: email
    to: [oncall@example.com]
    from: opsbook@example.com
    smtp: {host: %s, port: %s, user: opsbook, password_env: SMTP_PASSWORD}
`, host, port))
		d := s.node("a")
		r := s.run(runbookPath, "staging", finished(runbook.RunFailed))
		d.Round(context.Background())
		ds, _ := st.Deliveries(context.Background(), r.ID, "")
		if len(ds) != 1 || ds[0].Status == store.DeliverySent || !strings.Contains(ds[0].LastError, "STARTTLS") {
			t.Fatalf("%+v", ds)
		}
		if len(ms.got()) != 0 {
			t.Error("the mail went out in clear text")
		}
	})
}

// TestMessagesCarryNoSecrets: the engine records output masked; a message
// built from a run's events carries the mask, and a hostile title cannot
// inject mail headers or Slack links.
func TestMessagesCarryNoSecrets(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		slack := startReceiver(t)
		ms := startMailServer(t, true)
		_, port, _ := net.SplitHostPort(ms.addr)
		s := newSetup(t, st, strings.NewReplacer("PORT", port, "CAFILE", ms.caFile).Replace(allChannels))
		s.env["SLACK_URL"] = "http://" + slack.addr + "/services/" + slackToken
		hook := startReceiver(t)
		s.env["HOOK_URL"] = "http://" + hook.addr + "/hook"
		s.node("a")
		ctx := context.Background()
		r := runbook.Run{Runbook: runbookPath, Title: "Evil\r\nBcc: victim@example.com <!channel>", Environment: "staging",
			Status: runbook.RunRunning, CreatedBy: "alice"}
		if err := st.CreateRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		// As the engine records a failure whose error printed the secret.
		if _, err := st.AppendEvents(ctx, r.ID, runbook.Event{Type: runbook.EventRunFinished, Text: "step restore: password *** rejected",
			Data: map[string]string{"status": "failed"}}); err != nil {
			t.Fatal(err)
		}
		s.settle(r.ID, 3)
		bodies, _ := slack.got()
		all := ""
		for _, b := range bodies {
			all += string(b)
			var sm map[string]string
			if json.Unmarshal(b, &sm) == nil && strings.Contains(sm["text"], "<!channel>") {
				t.Error("a title reached Slack as a mention")
			}
		}
		hooked, _ := hook.got()
		for _, b := range hooked {
			all += string(b)
		}
		for _, m := range ms.got() {
			all += m.data
			if strings.Contains(m.data, "\r\nBcc:") {
				t.Errorf("title injected a header:\n%s", m.data)
			}
			if strings.Contains(m.data, "Subject:") {
				subj := m.data[strings.Index(m.data, "Subject:"):]
				subj = subj[:strings.Index(subj, "\r\n")]
				if dec, err := new(mime.WordDecoder).DecodeHeader(strings.TrimPrefix(subj, "Subject: ")); err != nil || !strings.Contains(dec, `"Evil Bcc: victim@example.com <!channel>"`) {
					t.Errorf("subject %q (%v)", dec, err)
				}
			}
		}
		for _, secret := range []string{paramSecret, slackToken, hookSecret, smtpPassword} {
			if strings.Contains(all, secret) {
				t.Errorf("a message holds the secret %q", secret)
			}
		}
	})
}

// TestTaskNoticesOnce: task news added by several nodes under one dedupe
// key is one notice and one delivery.
func TestTaskNoticesOnce(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		hook := startReceiver(t)
		s := newSetup(t, st, `  - name: audit-hook
    type: webhook
    url_env: HOOK_URL
    secret_env: HOOK_SECRET
    events: [review_requested, overdue]
`)
		s.env["HOOK_URL"] = "http://" + hook.addr + "/"
		ctx := context.Background()
		const task = "2026-03-10-postgres-upgrade-v12-to-v15"
		for i := 0; i < 3; i++ { // three nodes notice the same thing
			added, err := st.AddNotice(ctx, store.Notice{Dedupe: "task/" + task + "/review/abc123", Kind: notify.TaskReviewRequested,
				Task: task, Detail: map[string]string{"snapshot": "abc123", "needed": "2"}})
			if err != nil || added != (i == 0) {
				t.Fatalf("add %d: added=%v err=%v", i, added, err)
			}
		}
		st.AddNotice(ctx, store.Notice{Dedupe: "task/" + task + "/complete/abc123", Kind: notify.TaskReviewComplete, Task: task})
		s.node("a")
		ds := func() []store.Delivery {
			for i := 0; i < maxWaitRounds; i++ {
				s.nodes[0].Round(ctx)
				if ds, _ := st.Deliveries(ctx, "", task); len(ds) == 1 && ds[0].Status == store.DeliverySent {
					return ds
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Fatal("task notice not delivered")
			return nil
		}()
		if ds[0].Notice.Kind != notify.TaskReviewRequested {
			t.Errorf("%+v", ds)
		}
		bodies, _ := hook.got()
		if len(bodies) != 1 || !strings.Contains(string(bodies[0]), "needs 2 review") {
			t.Errorf("got %q", bodies)
		}
	})
}

// TestScanTasksAsksForReviewsOnce: the sample workspace's tasks lack
// reviews; scanning twice (two nodes, or two minutes) adds one notice per
// task and snapshot, and editing a runbook (a new snapshot) asks again.
func TestScanTasksAsksForReviewsOnce(t *testing.T) {
	st := storetest.Open(t, store.DialectSQLite)
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../examples/workspace")); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Date(2026, 3, 11, 9, 0, 0, 0, time.UTC)
	first, err := notify.ScanTasks(ctx, st, ws, now)
	if err != nil || first == 0 {
		t.Fatalf("first scan: %d notices, %v", first, err)
	}
	if again, err := notify.ScanTasks(ctx, st, ws, now); err != nil || again != 0 {
		t.Fatalf("second scan added %d notices (%v), want 0", again, err)
	}
	tasks, _ := ws.Tasks(false, now)
	rb := filepath.Join(dir, tasks[0].Dir, tasks[0].Name+"-runbook.md")
	src, err := os.ReadFile(rb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rb, append(src, []byte("\nEdited after review.\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := notify.ScanTasks(ctx, st, ws, now); err != nil || again != 1 {
		t.Fatalf("after an edit: %d new notices (%v), want 1 for the new snapshot", again, err)
	}
}

// TestDeliveredReviewNoticeTicksChecklist: a channel with ticks:
// teams-notified ticks that item of the task once its review notice is
// delivered, and not while the receiver is down.
func TestDeliveredReviewNoticeTicksChecklist(t *testing.T) {
	st := storetest.Open(t, store.DialectSQLite)
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../examples/workspace")); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "opsbook.yaml"))
	cfg = append(cfg, []byte(`notifications:
  - name: teams
    type: webhook
    url_env: HOOK_URL
    secret_env: HOOK_SECRET
    events: [review_requested]
    ticks: teams-notified
`)...)
	if err := os.WriteFile(filepath.Join(dir, "opsbook.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	hook := startReceiver(t)
	hook.failures = 3 // down for a while
	env := map[string]string{"HOOK_URL": "http://" + hook.addr + "/", "HOOK_SECRET": hookSecret}
	d := notify.New(notify.Config{Store: st, Workspace: func() *workspace.Workspace { return ws }, Node: "a",
		Getenv: func(k string) string { return env[k] }, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxAttempts: 50})
	ctx := context.Background()
	if _, err := notify.ScanTasks(ctx, st, ws, time.Date(2026, 3, 11, 9, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	ticked := func(task string) int {
		tk, err := gates.Load(ws, task)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range tk.Records {
			if r.Type == lifecycle.Check && r.Item == "teams-notified" && r.Actor == "opsbook" {
				n++
			}
		}
		return n
	}
	tasks, _ := ws.Tasks(false, time.Now())
	task := tasks[0].Name
	d.Round(ctx)
	if ticked(task) != 0 {
		t.Fatal("ticked while the receiver refused the notification")
	}
	for i := 0; i < 50 && ticked(task) == 0; i++ {
		time.Sleep(20 * time.Millisecond)
		d.Round(ctx)
	}
	for i := 0; i < 5; i++ {
		d.Round(ctx)
	}
	if n := ticked(task); n != 1 {
		t.Fatalf("teams-notified ticked %d times, want once after delivery", n)
	}
	// The server ticked it: the store has it as the server's own tick,
	// which a protected environment's checklist gate counts.
	ticks, err := st.ListTaskTicks(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 1 || ticks[0].Item != "teams-notified" || !ticks[0].Ticked || ticks[0].Actor != "opsbook" || ticks[0].UserID != 0 {
		t.Errorf("the store's ticks: %+v, want teams-notified by opsbook", ticks)
	}
}
