package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check returns nil when all is well, or why not.
type Check func() error

// Options configure a Server.
type Options struct {
	// Addr is the listen address, such as ":9090".
	Addr     string
	Gatherer prometheus.Gatherer
	// Healthy and Ready back /healthz and /readyz; each must pass.
	Healthy []Check
	Ready   []Check
}

// Server serves the endpoints until its context ends.
type Server struct {
	listener net.Listener
	srv      *http.Server
	checks   atomic.Pointer[checks]
}

type checks struct{ healthy, ready []Check }

// Listen binds the address, so a port conflict shows at start.
func Listen(opts Options) (*Server, error) {
	l, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	s := &Server{listener: l}
	s.checks.Store(&checks{healthy: opts.Healthy, ready: opts.Ready})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", s.checkHandler(func(c *checks) []Check { return c.healthy }))
	mux.Handle("GET /readyz", s.checkHandler(func(c *checks) []Check {
		if c.ready == nil {
			return []Check{func() error { return errors.New("starting") }}
		}
		return c.ready
	}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// SetChecks replaces the checks behind /healthz and /readyz, for a
// process that listens before its parts exist. Until /readyz has checks,
// it answers 503 "starting".
func (s *Server) SetChecks(healthy, ready []Check) {
	s.checks.Store(&checks{healthy: healthy, ready: ready})
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Serve serves until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.listener) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http server shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

func (s *Server) checkHandler(pick func(*checks) []Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		for _, check := range pick(s.checks.Load()) {
			if err := check(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
}
