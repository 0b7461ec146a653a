package model

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// tlsRequest is what a Service asks of its host's HTTPS.
type tlsRequest struct {
	// namespace and secret name the Secret, which is in the Service's
	// namespace.
	namespace, secret string
	redirect          bool
	hsts              string
}

func (r tlsRequest) secretRef() SecretRef { return SecretRef{Namespace: r.namespace, Name: r.secret} }

func (r tlsRequest) String() string {
	s := "Secret " + r.secretRef().String()
	if !r.redirect {
		s += ", no redirect"
	}
	if r.hsts != "" {
		s += ", HSTS " + r.hsts
	}
	return s
}

// tlsClaim is the HTTPS of a host: the settings of the Service that asked
// first, and every Service on the host that asks for the same.
type tlsClaim struct {
	request  tlsRequest
	services []ServiceRef
}

// resolveTLS picks each host's HTTPS settings: those of the oldest Service
// that asks for HTTPS (then the smaller namespace/name). It returns the
// candidates of the other Services, the claims by host, and a Rejection
// for each Service that asks for other settings.
func resolveTLS(cands []candidate) ([]candidate, map[string]*tlsClaim, []Rejection) {
	var asking []*candidate
	for i := range cands {
		if cands[i].tls != nil {
			asking = append(asking, &cands[i])
		}
	}
	if len(asking) == 0 {
		return cands, nil, nil
	}
	slices.SortFunc(asking, func(a, b *candidate) int {
		return cmp.Or(
			cmp.Compare(a.host, b.host),
			a.created.Compare(b.created),
			cmp.Compare(a.location.Service.Namespace, b.location.Service.Namespace),
			cmp.Compare(a.location.Service.Name, b.location.Service.Name))
	})
	claims := make(map[string]*tlsClaim)
	winners := make(map[string]ServiceRef)
	losers := make(map[ServiceRef]Rejection)
	for _, c := range asking {
		ref := ServiceRef{Namespace: c.location.Service.Namespace, Name: c.location.Service.Name}
		claim := claims[c.host]
		switch {
		case claim == nil:
			claims[c.host] = &tlsClaim{request: *c.tls, services: []ServiceRef{ref}}
			winners[c.host] = ref
		case claim.request == *c.tls:
			if !slices.Contains(claim.services, ref) {
				claim.services = append(claim.services, ref)
			}
		default:
			losers[ref] = Rejection{Service: ref, Reason: ReasonTLSConflict,
				Message: fmt.Sprintf("host %s's HTTPS is set by %s (%s), which is older or sorts first; this Service asks for %s",
					c.host, winners[c.host], claim.request, *c.tls)}
		}
	}
	if len(losers) == 0 {
		return cands, claims, nil
	}
	kept := make([]candidate, 0, len(cands))
	for _, c := range cands {
		// Only the Service's own routes go: an Ingress's route to it
		// asks nothing of HTTPS.
		if _, lost := losers[ServiceRef{Namespace: c.location.Service.Namespace, Name: c.location.Service.Name}]; !lost || !c.location.Ingress.IsZero() {
			kept = append(kept, c)
		}
	}
	rejected := make([]Rejection, 0, len(losers))
	for _, r := range losers {
		rejected = append(rejected, r)
	}
	return kept, claims, rejected
}

// applyTLS gives each server that its Services asked HTTPS of its
// certificate, or leaves its HTTPS out, and records the outcome in res.
func applyTLS(res *Result, claims map[string]*tlsClaim, opts Options) {
	if len(claims) == 0 {
		return
	}
	secrets := make(map[SecretRef]*corev1.Secret, len(opts.Secrets))
	for _, s := range opts.Secrets {
		secrets[SecretRef{Namespace: s.Namespace, Name: s.Name}] = s
	}
	for i := range res.Config.Servers {
		s := &res.Config.Servers[i]
		claim := claims[s.Host]
		if claim == nil {
			continue
		}
		ref := claim.request.secretRef()
		s.RedirectHTTPS = claim.request.redirect
		hc := HostCertificate{Host: s.Host, Secret: ref}
		secret := secrets[ref]
		switch {
		case opts.DisableHTTPS:
			// Nowhere to redirect to: the operator chose plain HTTP.
			s.RedirectHTTPS = false
			hc.Reason, hc.Message = ReasonHTTPSDisabled, "this kube-nginx-sync serves no HTTPS, so the host is served over plain HTTP only"
		case secret == nil:
			hc.Reason, hc.Message = ReasonTLSSecretNotFound, fmt.Sprintf("not found (or not of type %s)", corev1.SecretTypeTLS)
		default:
			if leaf, ok := LeafInfo(secret); ok {
				hc.Leaf = &leaf
			}
			tls, warning, err := checkCertificate(secret, s.Host, opts.Now)
			if err != nil {
				hc.Reason, hc.Message = err.reason, err.message
				break
			}
			tls.Secret, tls.HSTS = ref, claim.request.hsts
			s.TLS, hc.Served = tls, true
			if warning != nil {
				hc.Reason, hc.Message = warning.reason, warning.message
			}
		}
		res.Certificates = append(res.Certificates, hc)
		if hc.Leaf != nil {
			res.Recheck = earliestAfter(opts.Now, res.Recheck,
				hc.Leaf.NotBefore, hc.Leaf.NotAfter.Add(-CertificateExpiryWarning), hc.Leaf.NotAfter.Add(time.Second))
		}
		if hc.Reason == "" {
			continue
		}
		msg := fmt.Sprintf("host %s, Secret %s: %s", s.Host, ref, hc.Message)
		if !hc.Served {
			msg = fmt.Sprintf("HTTPS of host %s left out: Secret %s: %s", s.Host, ref, hc.Message)
			if s.RedirectHTTPS {
				msg += " (plain HTTP still redirects to HTTPS)"
			}
		}
		for _, svc := range claim.services {
			res.Warnings = append(res.Warnings, Warning{Service: svc, Reason: hc.Reason, Message: msg})
		}
	}
	slices.SortFunc(res.Warnings, func(a, b Warning) int {
		return cmp.Or(
			cmp.Compare(a.Service.Namespace, b.Service.Namespace),
			cmp.Compare(a.Service.Name, b.Service.Name),
			cmp.Compare(a.Reason, b.Reason))
	})
}

// earliestAfter returns the earliest of cur (zero: none) and the times
// that are after now; zero when now is zero.
func earliestAfter(now, cur time.Time, times ...time.Time) time.Time {
	if now.IsZero() {
		return time.Time{}
	}
	for _, t := range times {
		if t.After(now) && (cur.IsZero() || t.Before(cur)) {
			cur = t
		}
	}
	return cur
}
