package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Client asks a running daemon's admin API.
type Client struct {
	path string
	http *http.Client
}

// NotRunningError says no daemon answers on the admin socket.
type NotRunningError struct {
	Socket string
	Err    error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("no docker-cni daemon answers on %s (is it running? --admin-socket names another socket): %v", e.Socket, e.Err)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// defaultTimeout bounds a request unless its context has a deadline.
const defaultTimeout = 10 * time.Second

// NewClient returns a client of the admin socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil && notRunning(err) {
			return nil, &NotRunningError{Socket: path, Err: err}
		}
		return c, err
	}}
	return &Client{path: path, http: &http.Client{Transport: tr}}
}

// notRunning reports whether a dial error means nothing serves the socket
// (rather than, say, no permission to connect).
func notRunning(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// Ping reports whether a daemon answers: nil, a *NotRunningError, or why
// the socket could not be reached.
func (c *Client) Ping(ctx context.Context) error {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		if notRunning(err) || errors.Is(err, context.DeadlineExceeded) {
			return &NotRunningError{Socket: c.path, Err: err}
		}
		return fmt.Errorf("admin socket %s: %w", c.path, err)
	}
	return conn.Close()
}

// Get decodes the JSON answer of GET path into v.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, v)
}

// Post decodes the JSON answer of POST path (no body) into v.
func (c *Client) Post(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodPost, path, v)
}

func (c *Client) do(ctx context.Context, method, path string, v any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://docker-cni"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var nr *NotRunningError
		if errors.As(err, &nr) {
			return nr
		}
		return fmt.Errorf("admin API %s %s on %s: %w", method, path, c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return &StatusError{Code: resp.StatusCode, Msg: e.Error}
		}
		return &StatusError{Code: resp.StatusCode, Msg: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, b)}
	}
	return json.Unmarshal(b, v)
}

// StatusError is an answer other than 200 OK.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }
