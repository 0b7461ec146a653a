package model

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// IngressNginxPrefix starts the annotations of ingress-nginx. A handful of
// them mean what one of kube-nginx-sync's settings means, and set it
// (IngressNginxMapped); every other one is ignored, with a warning, and
// snippets above all: a snippet is nginx config that anyone who may edit
// an Ingress writes into the config of every host (ingress-nginx's worst
// vulnerabilities came from them).
const IngressNginxPrefix = "nginx.ingress.kubernetes.io/"

// Annotations of ingress-nginx that kube-nginx-sync reads on an Ingress.
const (
	// IngressNginxProxyBodySize is AnnotationMaxBodySize, in nginx's size
	// syntax ("8m", "1G", "0" for no limit).
	IngressNginxProxyBodySize = IngressNginxPrefix + "proxy-body-size"
	// IngressNginxProxyReadTimeout is AnnotationReadTimeout, in seconds
	// ("3600"), or with a unit as AnnotationReadTimeout takes it.
	IngressNginxProxyReadTimeout = IngressNginxPrefix + "proxy-read-timeout"
	// IngressNginxProxySendTimeout is AnnotationSendTimeout, likewise.
	IngressNginxProxySendTimeout = IngressNginxPrefix + "proxy-send-timeout"
	// IngressNginxSSLRedirect ("true" or "false") is
	// AnnotationHTTPSRedirect: whether the plain HTTP requests of the hosts
	// of the Ingress's tls section are redirected to HTTPS (they are
	// without it).
	IngressNginxSSLRedirect = IngressNginxPrefix + "ssl-redirect"
)

// IngressNginxMapped maps each ingress-nginx annotation that
// kube-nginx-sync reads to the annotation of its own that means the same.
var IngressNginxMapped = map[string]string{
	IngressNginxProxyBodySize:    AnnotationMaxBodySize,
	IngressNginxProxyReadTimeout: AnnotationReadTimeout,
	IngressNginxProxySendTimeout: AnnotationSendTimeout,
	IngressNginxSSLRedirect:      AnnotationHTTPSRedirect,
}

// ingressOwnAnnotations are kube-nginx-sync's own annotations that an
// Ingress may carry: the proxy settings of all its routes, and the HTTPS
// settings of the hosts of its tls section. (Host, path, port and Secret
// are the Ingress's own fields; the upstream mode is read from the
// backend's Service.)
var ingressOwnAnnotations = map[string]bool{
	AnnotationReadTimeout:   true,
	AnnotationSendTimeout:   true,
	AnnotationMaxBodySize:   true,
	AnnotationHTTPSRedirect: true,
	AnnotationHSTS:          true,
}

// ingressAnnotations holds an Ingress's validated annotations.
type ingressAnnotations struct {
	proxy ProxySettings
	// redirect is whether the hosts of the tls section redirect plain
	// HTTP to HTTPS (AnnotationHTTPSRedirect, IngressNginxSSLRedirect);
	// nil without either.
	redirect *bool
	// hsts is AnnotationHSTS's canonical form, or "".
	hsts string
	// ignored describes each ignored annotation, in key order.
	ignored []string
}

// IgnoredIngressAnnotations returns the description ("KEY (why)") of each
// annotation of an Ingress that is ignored, sorted by key: the
// ingress-nginx annotations that have no equivalent here, and those whose
// setting kube-nginx-sync's own annotation sets too.
func IgnoredIngressAnnotations(raw map[string]string) []string {
	a, err := parseIngressAnnotations(raw)
	if err != nil {
		return nil
	}
	return a.ignored
}

// parseIngressAnnotations validates the annotations of an Ingress: its own
// (ingressOwnAnnotations, under AnnotationPrefix: any other one is an
// error, as on a Service) and ingress-nginx's (IngressNginxPrefix). The
// error names the first invalid one in key order.
func parseIngressAnnotations(raw map[string]string) (ingressAnnotations, error) {
	var a ingressAnnotations
	keys := make([]string, 0, len(raw))
	for k := range raw {
		if strings.HasPrefix(k, AnnotationPrefix) || strings.HasPrefix(k, IngressNginxPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		value := raw[key]
		var err error
		switch {
		case ingressOwnAnnotations[key]:
			err = a.set(key, value)
		case strings.HasPrefix(key, AnnotationPrefix) && knownAnnotations[key]:
			err = fmt.Errorf("not read on an Ingress (on an Ingress: %s)", strings.Join(slices.Sorted(maps.Keys(ingressOwnAnnotations)), ", "))
		case strings.HasPrefix(key, AnnotationPrefix):
			err = fmt.Errorf("unknown annotation (on an Ingress: %s)", strings.Join(slices.Sorted(maps.Keys(ingressOwnAnnotations)), ", "))
		}
		if err != nil {
			return ingressAnnotations{}, &AnnotationError{Key: key, Value: value, Err: err}
		}
	}
	for _, key := range keys {
		if !strings.HasPrefix(key, IngressNginxPrefix) {
			continue
		}
		value := raw[key]
		own, mapped := IngressNginxMapped[key]
		switch {
		case !mapped:
			a.ignored = append(a.ignored, key+" ("+ignoredBecause(key)+")")
			continue
		case own != "" && raw[own] != "":
			a.ignored = append(a.ignored, key+" ("+own+" is set)")
			continue
		}
		v := value
		switch key {
		case IngressNginxProxyReadTimeout, IngressNginxProxySendTimeout:
			if v != "" && strings.Trim(v, "0123456789") == "" {
				v += "s" // ingress-nginx's seconds
			}
		case IngressNginxProxyBodySize:
			v = strings.ToLower(v)
		}
		err := a.set(own, v)
		if err != nil {
			return ingressAnnotations{}, &AnnotationError{Key: key, Value: value, Err: err}
		}
	}
	return a, nil
}

// set sets what one of kube-nginx-sync's own annotations sets.
func (a *ingressAnnotations) set(key, value string) error {
	var err error
	switch key {
	case AnnotationReadTimeout, AnnotationSendTimeout, AnnotationMaxBodySize:
		err = a.proxy.set(key, value)
	case AnnotationHTTPSRedirect:
		var b bool
		b, err = parseBool(value)
		a.redirect = &b
	case AnnotationHSTS:
		a.hsts, err = ParseHSTS(value)
	}
	return err
}

// ignoredBecause says why an ingress-nginx annotation is ignored.
func ignoredBecause(key string) string {
	if strings.HasSuffix(key, "-snippet") {
		return "snippets are never applied"
	}
	return "no equivalent in kube-nginx-sync"
}
