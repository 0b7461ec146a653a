package testbed

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
)

// Backend is an HTTP server that answers every request with
// "<name> <path>", so a caller can tell which backend served a request and
// what path it saw.
type Backend struct {
	Name string
	Addr netip.AddrPort
	srv  *http.Server
}

// StartBackend listens on addr (port 0 picks one) and serves until Close.
func StartBackend(name string, addr netip.AddrPort) (*Backend, error) {
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	b := &Backend{Name: name, Addr: netip.MustParseAddrPort(l.Addr().String())}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	})}
	go b.srv.Serve(l)
	return b, nil
}

// Close stops the server.
func (b *Backend) Close() error { return b.srv.Close() }
