package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/workspace"
)

// sendEmail sends m over SMTP. With tls: starttls (the default) the
// connection must be upgraded before authenticating or sending: a server
// that does not offer STARTTLS is an error, never a fallback to plain text.
func (d *Dispatcher) sendEmail(ctx context.Context, c workspace.Channel, m Message) error {
	s := c.SMTP
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	tlsCfg := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return fmt.Errorf("smtp ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("smtp ca_file %s holds no PEM certificate", s.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	var err error
	if s.TLS == "tls" {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	cl, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer cl.Close()
	if s.TLS == "starttls" {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp %s does not offer STARTTLS; refusing to send in clear (set smtp.tls: none only for a relay on loopback)", addr)
		}
		if err := cl.StartTLS(tlsCfg); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", addr, err)
		}
	}
	if s.User != "" {
		password, err := d.value(s.PasswordEnv, s.PasswordFile, "smtp password")
		if err != nil {
			return err
		}
		// net/smtp's PlainAuth itself refuses to send the password over a
		// connection that is neither TLS nor to localhost.
		if err := cl.Auth(smtp.PlainAuth("", s.User, password, s.Host)); err != nil {
			return fmt.Errorf("smtp %s: authentication as %s: %w", addr, s.User, err)
		}
	}
	if err := cl.Mail(c.From); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM: %w", addr, err)
	}
	for _, to := range c.To {
		if err := cl.Rcpt(to); err != nil {
			return fmt.Errorf("smtp %s: RCPT TO %s: %w", addr, to, err)
		}
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if _, err := w.Write(emailBody(c, m)); err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: message refused: %w", addr, err)
	}
	if err := cl.Quit(); err != nil && !errors.Is(err, net.ErrClosed) {
		d.cfg.Logger.Debug("smtp quit", "err", err)
	}
	return nil
}

// emailBody is the RFC 5322 message: UTF-8 text, quoted-printable, with a
// Message-ID derived from the notice so a retried delivery is recognisably
// the same message.
func emailBody(c workspace.Channel, m Message) []byte {
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", c.From)
	header("To", strings.Join(c.To, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", oneLine(m.Subject)))
	header("Date", m.Time.Format(time.RFC1123Z))
	header("Message-ID", "<"+strings.NewReplacer("/", ".", " ", "").Replace(m.ID)+"."+c.Name+"@opsbook>")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("X-Opsbook-Kind", m.Kind)
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	text := m.Text
	if m.Link != "" {
		text += "\n\n" + m.Link
	}
	qp.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n")))
	qp.Close()
	return b.Bytes()
}

// oneLine keeps a header value on one line: a title with a newline must
// not inject headers.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
