package testbed

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"
)

// Backend is an HTTP server that answers every request with
// "<name> <path>", so a caller can tell which backend served a request and
// what path it saw. It reads a request's body before it answers, echoes
// WebSocket messages (see websocket.go), and counts the connections it
// accepted and the requests it answered.
type Backend struct {
	Name     string
	Addr     netip.AddrPort
	srv      *http.Server
	accepted atomic.Int64
	requests atomic.Int64
}

// BackendOptions change how a Backend behaves.
type BackendOptions struct {
	// IdleTimeout closes a keep-alive connection after it has been idle
	// this long (zero: never), as Node.js does after 5 s by default.
	IdleTimeout time.Duration
}

// StartBackend listens on addr (port 0 picks one) and serves until Close.
func StartBackend(name string, addr netip.AddrPort) (*Backend, error) {
	return StartBackendWith(name, addr, BackendOptions{})
}

// StartBackendWith is StartBackend with options.
func StartBackendWith(name string, addr netip.AddrPort, opts BackendOptions) (*Backend, error) {
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	b := &Backend{Name: name, Addr: netip.MustParseAddrPort(l.Addr().String())}
	b.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       opts.IdleTimeout,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isWebSocketUpgrade(r) {
				serveWebSocketEcho(w, r)
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			b.requests.Add(1)
			fmt.Fprintf(w, "%s %s", name, r.URL.Path)
		}),
	}
	go b.srv.Serve(countingListener{Listener: l, n: &b.accepted})
	return b, nil
}

// Accepted counts the connections the backend accepted.
func (b *Backend) Accepted() int64 { return b.accepted.Load() }

// Requests counts the requests the backend answered (WebSockets aside).
func (b *Backend) Requests() int64 { return b.requests.Load() }

// Close stops the server at once: its listener and every connection, as
// when its process dies.
func (b *Backend) Close() error { return b.srv.Close() }

// Shutdown stops the server as a Go program does on SIGTERM without a
// delay: it closes its listener and its idle connections before it
// returns; the requests in progress finish, and their connections are
// closed after the response. It does not wait for them.
func (b *Backend) Shutdown() {
	// With a context already done, http.Server.Shutdown closes the
	// listener and the idle connections once, and returns.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = b.srv.Shutdown(ctx)
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}
