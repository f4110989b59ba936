// Package client is a typed client of the opsbook server's REST API, for
// the CLI's --server mode. It speaks JSON over HTTP with an API key and
// reads live events over server-sent events.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/runbook"
)

// Client talks to one server.
type Client struct {
	base string // e.g. https://ops.example.com, without a trailing slash
	key  string
	hc   *http.Client
}

// New returns a client of the server at base, authenticating with key.
func New(base, key string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: give one like https://opsbook.example.com", base)
	}
	return &Client{base: strings.TrimRight(base, "/"), key: key, hc: &http.Client{}}, nil
}

// FromEnv returns a client for server (or $OPSBOOK_SERVER when server is
// empty) with the key in $OPSBOOK_API_KEY; nil, nil when no server is set.
func FromEnv(server string) (*Client, error) {
	if server == "" {
		server = os.Getenv("OPSBOOK_SERVER")
	}
	if server == "" {
		return nil, nil
	}
	key := os.Getenv("OPSBOOK_API_KEY")
	if key == "" {
		return nil, fmt.Errorf("talking to %s needs an API key in OPSBOOK_API_KEY; get one with `opsbook login --server %s`", server, server)
	}
	return New(server, key)
}

// Base is the server's address.
func (c *Client) Base() string { return c.base }

// Error is an error answer of the server.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("server: %s (%d %s)", e.Message, e.Status, e.Code)
}

// IsStatus reports whether err is a server answer with this status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach server %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return decodeError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
		return &Error{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
}

// The request and answer bodies are the server's own types (apitypes),
// named here for the client's callers.
type (
	StartRequest      = apitypes.StartRequest
	RunDetail         = apitypes.RunDetail
	EventPage         = apitypes.EventPage
	AuditVerification = apitypes.AuditVerification
)

// StartRun starts a run.
func (c *Client) StartRun(ctx context.Context, req StartRequest) (runbook.Run, error) {
	var run runbook.Run
	err := c.do(ctx, "POST", "/api/v1/runs", req, &run)
	return run, err
}

// RunFilter selects runs; zero fields do not filter.
type RunFilter struct {
	Runbook, Environment, Task string
	Status                     []runbook.RunStatus
	Limit                      int
	Cursor                     string
}

// ListRuns returns a page of runs, newest first, and the next page's cursor.
func (c *Client) ListRuns(ctx context.Context, f RunFilter) ([]runbook.Run, string, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("runbook", f.Runbook)
	set("environment", f.Environment)
	set("task", f.Task)
	set("cursor", f.Cursor)
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	for _, s := range f.Status {
		q.Add("status", string(s))
	}
	var page apitypes.Page[runbook.Run]
	err := c.do(ctx, "GET", "/api/v1/runs?"+q.Encode(), nil, &page)
	return page.Items, page.NextCursor, err
}

// GetRun returns a run by id (or unambiguous id prefix).
func (c *Client) GetRun(ctx context.Context, id string) (RunDetail, error) {
	var d RunDetail
	err := c.do(ctx, "GET", "/api/v1/runs/"+url.PathEscape(id), nil, &d)
	return d, err
}

// Events returns events of a run after seq.
func (c *Client) Events(ctx context.Context, id string, after int64) (EventPage, error) {
	var p EventPage
	err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/runs/%s/events?after=%d", url.PathEscape(id), after), nil, &p)
	return p, err
}

// AllEvents calls fn with every event of a run, in order.
func (c *Client) AllEvents(ctx context.Context, id string, fn func(runbook.Event) error) error {
	var after int64
	for {
		p, err := c.Events(ctx, id, after)
		if err != nil {
			return err
		}
		for _, ev := range p.Events {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if !p.More {
			return nil
		}
		after = p.Next
	}
}

// Stream calls fn with the run's events after seq as they happen, until
// the run is finished (it returns the final status) or ctx ends. A broken
// connection is reopened from the last event seen.
func (c *Client) Stream(ctx context.Context, id string, after int64, fn func(runbook.Event) error) (runbook.RunStatus, error) {
	for attempt := 0; ; attempt++ {
		status, last, err := c.streamOnce(ctx, id, after, fn)
		if err == nil {
			return status, nil
		}
		after = last
		var apiErr *Error
		if ctx.Err() != nil || errors.As(err, &apiErr) || attempt >= 5 {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 500 * time.Millisecond):
		}
	}
}

func (c *Client) streamOnce(ctx context.Context, id string, after int64, fn func(runbook.Event) error) (runbook.RunStatus, int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/runs/%s/events/stream?after=%d", c.base, url.PathEscape(id), after), nil)
	if err != nil {
		return "", after, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", after, fmt.Errorf("reach server %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "", after, decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // an output event holds up to 64 KiB, JSON-escaped
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		case line == "":
			switch event {
			case "":
			case "end":
				var end struct{ Status runbook.RunStatus }
				json.Unmarshal([]byte(data), &end)
				return end.Status, after, nil
			case "error":
				return "", after, fmt.Errorf("server: %s", data)
			default:
				var ev runbook.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					return "", after, fmt.Errorf("event stream: %w", err)
				}
				if err := fn(ev); err != nil {
					return "", after, err
				}
				after = ev.Seq
			}
			event, data = "", ""
		}
	}
	if err := sc.Err(); err != nil {
		return "", after, fmt.Errorf("event stream: %w", err)
	}
	return "", after, errors.New("event stream ended before the run finished")
}

// Gate decides the gate a run waits at: decision "go" or "no-go".
func (c *Client) Gate(ctx context.Context, id, decision, reason string) (runbook.Event, error) {
	var ev runbook.Event
	err := c.do(ctx, "POST", "/api/v1/runs/"+url.PathEscape(id)+"/gate", apitypes.GateRequest{Decision: decision, Reason: reason}, &ev)
	return ev, err
}

// Answer confirms a manual step (kind "manual") or answers a guided-failure
// question (kind "ask", choice retry|skip|abort|rollback).
func (c *Client) Answer(ctx context.Context, id, kind, choice, reason string) (runbook.Event, error) {
	var ev runbook.Event
	err := c.do(ctx, "POST", "/api/v1/runs/"+url.PathEscape(id)+"/answer", apitypes.AnswerRequest{Kind: kind, Choice: choice, Reason: reason}, &ev)
	return ev, err
}

// TaskReviews returns the server's verified reviews and ticks of a task and
// its gates in the protected environment.
func (c *Client) TaskReviews(ctx context.Context, task string) (apitypes.TaskReviews, error) {
	var v apitypes.TaskReviews
	err := c.do(ctx, "GET", "/api/v1/tasks/"+url.PathEscape(task)+"/reviews", nil, &v)
	return v, err
}

// ReviewTask records the caller's review of a task's snapshot.
func (c *Client) ReviewTask(ctx context.Context, task string, req apitypes.ReviewRequest) (apitypes.ReviewResult, error) {
	var v apitypes.ReviewResult
	err := c.do(ctx, "POST", "/api/v1/tasks/"+url.PathEscape(task)+"/reviews", req, &v)
	return v, err
}

// TickTask ticks (or unticks) a task's pre-execution checklist item as the caller.
func (c *Client) TickTask(ctx context.Context, task, item string, req apitypes.TickRequest) (apitypes.TaskTick, error) {
	var v apitypes.TaskTick
	err := c.do(ctx, "POST", "/api/v1/tasks/"+url.PathEscape(task)+"/checklist/"+url.PathEscape(item), req, &v)
	return v, err
}

// Cancel cancels a run.
func (c *Client) Cancel(ctx context.Context, id, reason string) error {
	return c.do(ctx, "POST", "/api/v1/runs/"+url.PathEscape(id)+"/cancel", apitypes.ReasonRequest{Reason: reason}, nil)
}

// Resume resumes an interrupted run; retryInterrupted is "", retry, skip or abort.
func (c *Client) Resume(ctx context.Context, id, retryInterrupted string) error {
	return c.do(ctx, "POST", "/api/v1/runs/"+url.PathEscape(id)+"/resume", apitypes.ResumeRequest{RetryInterrupted: retryInterrupted}, nil)
}

// Report registers a run executing in this process with the server,
// which keeps its record (`opsbook run --local`). Registering the same run
// again returns it as stored.
func (c *Client) Report(ctx context.Context, req apitypes.ReportRequest) (runbook.Run, error) {
	var run runbook.Run
	err := c.do(ctx, "POST", "/api/v1/runs/reported", req, &run)
	return run, err
}

// ReportEvents appends a batch of a reported run's events, each with its
// seq in the local log; the server skips those it has already.
func (c *Client) ReportEvents(ctx context.Context, id string, evs []runbook.Event) (apitypes.ReportEventsResponse, error) {
	var res apitypes.ReportEventsResponse
	err := c.do(ctx, "POST", "/api/v1/runs/"+url.PathEscape(id)+"/events", apitypes.ReportEventsRequest{Events: evs}, &res)
	return res, err
}

// VerifyAudit asks the server to check the audit log's chain (Admin).
func (c *Client) VerifyAudit(ctx context.Context) (AuditVerification, error) {
	var v AuditVerification
	err := c.do(ctx, "GET", "/api/v1/audit/verify", nil, &v)
	return v, err
}

// Login signs in with a password and creates an API key named keyName with
// the session; it returns the key (shown once by the server).
func Login(ctx context.Context, base, name, password, keyName string) (string, error) {
	c, err := New(base, "")
	if err != nil {
		return "", err
	}
	var login apitypes.LoginResponse
	req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/api/v1/login", jsonBody(apitypes.LoginRequest{Name: name, Password: password}))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("reach server %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", decodeError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&login); err != nil {
		return "", fmt.Errorf("login answer: %w", err)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "opsbook_session" {
			session = ck
		}
	}
	if session == nil {
		return "", errors.New("the server set no session cookie")
	}
	req, _ = http.NewRequestWithContext(ctx, "POST", c.base+"/api/v1/apikeys", jsonBody(apitypes.CreateAPIKeyRequest{Name: keyName}))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", login.CSRFToken)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(session)
	resp2, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("reach server %s: %w", c.base, err)
	}
	defer resp2.Body.Close()
	if resp2.StatusCode != http.StatusCreated {
		return "", decodeError(resp2)
	}
	var key apitypes.APIKeySecret // the rest of the answer is the key's metadata
	if err := json.NewDecoder(resp2.Body).Decode(&key); err != nil {
		return "", fmt.Errorf("API key answer: %w", err)
	}
	return key.Key, nil
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
