package model

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AnnotationPrefix starts every annotation that kube-nginx-sync reads.
const AnnotationPrefix = "kube-nginx-sync.io/"

// Annotations understood on a Service. An annotation under AnnotationPrefix
// that is not listed here rejects the Service, so that a typo does not pass
// unnoticed.
const (
	// AnnotationHost routes the Service under this virtual host (an RFC 1123
	// host name, optionally with a leading "*." wildcard). Without it the
	// Service is routed on the default server.
	AnnotationHost = AnnotationPrefix + "host"
	// AnnotationPath is the URL path prefix the Service is routed under.
	// Default: /<namespace>/<name>/.
	AnnotationPath = AnnotationPrefix + "path"
	// AnnotationPort picks the one Service port to route, by name or number.
	AnnotationPort = AnnotationPrefix + "port"
	// AnnotationUpstream is "endpoints" (ready endpoints of the Service's
	// EndpointSlices) or "service" (the ClusterIP).
	AnnotationUpstream = AnnotationPrefix + "upstream"
	// AnnotationStripPrefix is "true" (default: the backend sees the path
	// with the route's prefix replaced by "/") or "false" (the backend sees
	// the request's path unchanged).
	AnnotationStripPrefix = AnnotationPrefix + "strip-prefix"
	// AnnotationReadTimeout is how long nginx waits for the backend between
	// two reads of its response, and on a WebSocket for either side to
	// send: a whole number of seconds, minutes or hours ("90s", "5m", "1h"),
	// from 1s to 24h. Default: nginx's, 60s.
	AnnotationReadTimeout = AnnotationPrefix + "read-timeout"
	// AnnotationSendTimeout is how long nginx waits for the backend between
	// two writes of the request; same grammar as AnnotationReadTimeout.
	// Default: nginx's, 60s.
	AnnotationSendTimeout = AnnotationPrefix + "send-timeout"
	// AnnotationMaxBodySize is the largest request body the route accepts
	// (nginx answers 413 above it): a whole number of bytes, optionally
	// followed by k, m or g (KiB, MiB, GiB), at most 1024g; "0" for no
	// limit. Default: nginx's, 1m.
	AnnotationMaxBodySize = AnnotationPrefix + "max-body-size"
	// AnnotationTLSSecret serves the Service's host over HTTPS too, with
	// the certificate and key of this kubernetes.io/tls Secret of the
	// Service's own namespace (a DNS-1123 subdomain name; a Secret of
	// another namespace is refused). Needs AnnotationHost.
	AnnotationTLSSecret = AnnotationPrefix + "tls-secret"
	// AnnotationHTTPSRedirect is "true" (default with AnnotationTLSSecret:
	// plain HTTP requests to the host get a 308 to HTTPS) or "false" (the
	// host is routed over both).
	AnnotationHTTPSRedirect = AnnotationPrefix + "https-redirect"
	// AnnotationHSTS is the Strict-Transport-Security header that the
	// host's HTTPS responses carry: "max-age=<seconds>", optionally followed
	// by "; includeSubDomains" and "; preload". Default: none.
	AnnotationHSTS = AnnotationPrefix + "hsts"
)

var knownAnnotations = map[string]bool{
	AnnotationHost:          true,
	AnnotationPath:          true,
	AnnotationPort:          true,
	AnnotationUpstream:      true,
	AnnotationStripPrefix:   true,
	AnnotationReadTimeout:   true,
	AnnotationSendTimeout:   true,
	AnnotationMaxBodySize:   true,
	AnnotationTLSSecret:     true,
	AnnotationHTTPSRedirect: true,
	AnnotationHSTS:          true,
}

// ReservedPathPrefix is kept for kube-nginx-sync's own endpoints; no route
// may use it.
const ReservedPathPrefix = "/.kube-nginx-sync/"

const (
	maxHostLength = 253
	maxPathLength = 1024
	maxShownValue = 64
)

// AnnotationError says which annotation of a Service has an invalid value.
type AnnotationError struct {
	Key   string
	Value string
	Err   error
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("annotation %s=%s: %v", e.Key, showValue(e.Value), e.Err)
}

func (e *AnnotationError) Unwrap() error { return e.Err }

// showValue quotes an untrusted value for a message, shortened so a huge
// value cannot flood logs or Events.
func showValue(v string) string {
	if len(v) > maxShownValue {
		v = v[:maxShownValue] + "..."
	}
	return strconv.Quote(v)
}

// describeByte names a byte of an untrusted value for a message: a quoted
// ASCII character, or the byte's value (never half of a UTF-8 sequence).
func describeByte(c byte) string {
	if c < 0x80 {
		return fmt.Sprintf("character %q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// ParseHost validates a virtual host name: lower-cased RFC 1123 labels
// separated by dots, at most 253 characters, optionally starting with "*."
// for a wildcard. It returns the canonical (lower-case) form.
func ParseHost(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty host")
	}
	if len(s) > maxHostLength {
		return "", fmt.Errorf("longer than %d characters", maxHostLength)
	}
	host := strings.ToLower(s)
	rest := strings.TrimPrefix(host, "*.")
	for _, label := range strings.Split(rest, ".") {
		if err := checkDNSLabel(label); err != nil {
			return "", fmt.Errorf("not a valid host name: %w", err)
		}
	}
	return host, nil
}

// checkDNSLabel checks an RFC 1123 label: 1 to 63 of [a-z0-9-], starting and
// ending with a letter or digit.
func checkDNSLabel(label string) error {
	if label == "" {
		return fmt.Errorf("empty label")
	}
	if len(label) > 63 {
		return fmt.Errorf("label longer than 63 characters")
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i != 0 && i != len(label)-1:
		default:
			return fmt.Errorf("label %s has %s at %d", showValue(label), describeByte(c), i)
		}
	}
	return nil
}

// ParsePath validates a route's URL path prefix and returns its canonical
// form, which always ends with "/" so that a route matches whole path
// segments only (/api matches /api/x, never /apiv2). Allowed characters are
// letters, digits and "-._~/"; empty segments ("//") and the dot segments
// "." and ".." are refused, and so is ReservedPathPrefix.
func ParsePath(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty path")
	}
	if s[0] != '/' {
		return "", fmt.Errorf("must start with /")
	}
	// The limit applies to the canonical form (with its trailing "/"), so
	// that a canonical path always parses to itself.
	if len(s) > maxPathLength || (len(s) == maxPathLength && !strings.HasSuffix(s, "/")) {
		return "", fmt.Errorf("longer than %d characters", maxPathLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '/':
		default:
			return "", fmt.Errorf("%s at %d is not allowed (letters, digits and -._~/ are)", describeByte(c), i)
		}
	}
	path := s
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	if path != "/" {
		for _, seg := range strings.Split(path[1:len(path)-1], "/") {
			switch seg {
			case "":
				return "", fmt.Errorf("empty path segment")
			case ".", "..":
				return "", fmt.Errorf("dot segment %q", seg)
			}
		}
	}
	if strings.HasPrefix(path, ReservedPathPrefix) {
		return "", fmt.Errorf("%s is reserved", ReservedPathPrefix)
	}
	return path, nil
}

// ParseUpstreamMode validates an upstream mode name.
func ParseUpstreamMode(s string) (UpstreamMode, error) {
	switch m := UpstreamMode(s); m {
	case UpstreamEndpoints, UpstreamService:
		return m, nil
	}
	return "", fmt.Errorf("must be %q or %q", UpstreamEndpoints, UpstreamService)
}

// parseBool accepts exactly "true" or "false".
func parseBool(s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("must be \"true\" or \"false\"")
}

// checkPortName checks an IANA service name as Kubernetes uses for port
// names: 1 to 15 of [a-z0-9-], at least one letter, no leading, trailing or
// double hyphen.
func checkPortName(s string) error {
	if s == "" || len(s) > 15 {
		return fmt.Errorf("port name must be 1 to 15 characters")
	}
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			letter = true
		case c >= '0' && c <= '9':
		case c == '-' && i != 0 && i != len(s)-1 && s[i-1] != '-':
		default:
			return fmt.Errorf("port name %s has %s at %d", showValue(s), describeByte(c), i)
		}
	}
	if !letter {
		return fmt.Errorf("port name %s has no letter", showValue(s))
	}
	return nil
}

// ParsePortSelector validates the port annotation: a port number (1-65535)
// or a port name.
func ParsePortSelector(s string) (name string, number int32, err error) {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return "", 0, fmt.Errorf("port number must be 1 to 65535")
		}
		return "", int32(n), nil
	}
	if err := checkPortName(s); err != nil {
		return "", 0, err
	}
	return s, 0, nil
}

// CheckNamespace checks that s is a valid namespace name (an RFC 1123
// label).
func CheckNamespace(s string) error {
	if err := checkDNSLabel(s); err != nil {
		return fmt.Errorf("not a namespace name: %w", err)
	}
	return nil
}

// maxTimeout bounds the timeout annotations: a day is longer than any
// request or idle WebSocket should wait on one read.
const maxTimeout = 24 * time.Hour

// ParseTimeout validates a timeout annotation: 1 to 6 digits without a
// leading zero, then one unit, s, m or h; from 1s to 24h.
func ParseTimeout(s string) (time.Duration, error) {
	digits := strings.TrimRight(s, "smh")
	unit := s[len(digits):]
	var scale time.Duration
	switch unit {
	case "s":
		scale = time.Second
	case "m":
		scale = time.Minute
	case "h":
		scale = time.Hour
	default:
		return 0, fmt.Errorf("must be a whole number of s, m or h, such as \"90s\", \"5m\" or \"1h\"")
	}
	n, err := parseCount(digits, 6)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("must be at least 1s")
	}
	d := time.Duration(n) * scale
	if d > maxTimeout {
		return 0, fmt.Errorf("longer than %s", maxTimeout)
	}
	return d, nil
}

// NoBodyLimit is ProxySettings.MaxBodySize for a route that accepts bodies
// of any size.
const NoBodyLimit int64 = -1

// maxBodySize bounds the body size annotation (1024g).
const maxBodySize = 1 << 40

// ParseBodySize validates a body size annotation: 1 to 13 digits without a
// leading zero, optionally followed by k, m or g (powers of 1024), at most
// 1024g; or "0", for no limit, which it returns as NoBodyLimit.
func ParseBodySize(s string) (int64, error) {
	if s == "0" {
		return NoBodyLimit, nil
	}
	digits, scale := s, int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k':
			digits, scale = s[:n-1], 1<<10
		case 'm':
			digits, scale = s[:n-1], 1<<20
		case 'g':
			digits, scale = s[:n-1], 1<<30
		}
	}
	n, err := parseCount(digits, 13)
	if err != nil {
		return 0, fmt.Errorf("%w (a number of bytes, optionally followed by k, m or g; 0 for no limit)", err)
	}
	if n == 0 {
		return 0, fmt.Errorf("0 takes no unit: \"0\" alone means no limit")
	}
	if n > maxBodySize/scale {
		return 0, fmt.Errorf("larger than 1024g")
	}
	return n * scale, nil
}

// parseCount parses 1 to maxDigits ASCII digits without a leading zero
// (but "0" itself).
func parseCount(s string, maxDigits int) (int64, error) {
	if s == "" || len(s) > maxDigits {
		return 0, fmt.Errorf("must start with 1 to %d digits", maxDigits)
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("leading zero")
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s at %d is not a digit", describeByte(c), i)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// maxSecretName is the longest Secret name (a DNS-1123 subdomain).
const maxSecretName = 253

// ParseSecretName validates the name of a Secret of the Service's own
// namespace: a DNS-1123 subdomain (lower-case RFC 1123 labels separated by
// dots, at most 253 characters). A "namespace/name" is refused with its
// own message: a Service may not use another namespace's certificate.
func ParseSecretName(s string) (string, error) {
	if ns, name, found := strings.Cut(s, "/"); found {
		return "", fmt.Errorf("names a Secret of namespace %s (%s): only Secrets of its own namespace can be used", showValue(ns), showValue(name))
	}
	if s == "" {
		return "", fmt.Errorf("empty Secret name")
	}
	if len(s) > maxSecretName {
		return "", fmt.Errorf("longer than %d characters", maxSecretName)
	}
	for _, label := range strings.Split(s, ".") {
		if err := checkDNSLabel(label); err != nil {
			return "", fmt.Errorf("not a Secret name: %w", err)
		}
	}
	return s, nil
}

// TLSSecretName returns the name of the Secret that a Service's
// annotations name for HTTPS, if they name a valid one.
func TLSSecretName(annotations map[string]string) (string, bool) {
	v, ok := annotations[AnnotationTLSSecret]
	if !ok {
		return "", false
	}
	name, err := ParseSecretName(v)
	return name, err == nil
}

// maxHSTSAge bounds the HSTS max-age: two years, what the HSTS preload
// list asks for at most.
const maxHSTSAge = 2 * 365 * 24 * 60 * 60

// ParseHSTS validates the HSTS annotation and returns its canonical form:
// "max-age=<seconds>" (0 to two years, no leading zero) first, then
// optionally "includeSubDomains" and "preload" (any case), separated by
// ";" and optional spaces, each at most once.
func ParseHSTS(s string) (string, error) {
	parts := strings.Split(s, ";")
	age, found := strings.CutPrefix(strings.ToLower(strings.TrimSpace(parts[0])), "max-age=")
	if !found {
		return "", fmt.Errorf("must start with max-age=<seconds>, such as \"max-age=31536000; includeSubDomains\"")
	}
	n, err := parseCount(age, 8)
	if err != nil {
		return "", fmt.Errorf("max-age: %w", err)
	}
	if n > maxHSTSAge {
		return "", fmt.Errorf("max-age is longer than two years (%d seconds)", maxHSTSAge)
	}
	out := "max-age=" + strconv.FormatInt(n, 10)
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		var token string
		switch strings.ToLower(strings.TrimSpace(p)) {
		case "includesubdomains":
			token = "includeSubDomains"
		case "preload":
			token = "preload"
		default:
			return "", fmt.Errorf("%s is not includeSubDomains or preload", showValue(strings.TrimSpace(p)))
		}
		if seen[token] {
			return "", fmt.Errorf("%s twice", token)
		}
		seen[token] = true
		out += "; " + token
	}
	return out, nil
}

// set sets the proxy setting of annotation key (AnnotationReadTimeout,
// AnnotationSendTimeout or AnnotationMaxBodySize).
func (p *ProxySettings) set(key, value string) error {
	var err error
	switch key {
	case AnnotationReadTimeout:
		p.ReadTimeout, err = ParseTimeout(value)
	case AnnotationSendTimeout:
		p.SendTimeout, err = ParseTimeout(value)
	case AnnotationMaxBodySize:
		p.MaxBodySize, err = ParseBodySize(value)
	}
	return err
}
