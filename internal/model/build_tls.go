package model

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// tlsRequest is what a Service, or an Ingress's tls section, asks of a
// host's HTTPS.
type tlsRequest struct {
	// namespace and secret name the Secret, which is in the namespace of
	// the Service or Ingress.
	namespace, secret string
	redirect          bool
	hsts              string
	// problem, when not empty, says why no Secret can serve the request
	// (an Ingress's tls entry without a valid secretName): the host's
	// HTTPS is left out, and its plain HTTP still redirects (fail closed).
	problem string
}

func (r tlsRequest) secretRef() SecretRef { return SecretRef{Namespace: r.namespace, Name: r.secret} }

func (r tlsRequest) String() string {
	s := "Secret " + r.secretRef().String()
	if r.problem != "" {
		s = "no usable Secret"
	}
	if !r.redirect {
		s += ", no redirect"
	}
	if r.hsts != "" {
		s += ", HSTS " + r.hsts
	}
	return s
}

// tlsOwner is what asks for a host's HTTPS: a Service, or an Ingress.
type tlsOwner struct {
	service ServiceRef
	ingress IngressRef
}

// tlsOwnerOf returns the owner of a candidate's tls request.
func tlsOwnerOf(c *candidate) tlsOwner {
	if !c.location.Ingress.IsZero() {
		return tlsOwner{ingress: c.location.Ingress}
	}
	return tlsOwner{service: ServiceRef{Namespace: c.location.Service.Namespace, Name: c.location.Service.Name}}
}

// kind is "Ingress" or "Service".
func (o tlsOwner) kind() string {
	if !o.ingress.IsZero() {
		return "Ingress"
	}
	return "Service"
}

func (o tlsOwner) String() string {
	if !o.ingress.IsZero() {
		return "Ingress " + o.ingress.String()
	}
	return "Service " + o.service.String()
}

// tlsClaim is the HTTPS of a host: the settings of the Service or Ingress
// that asked first, and every one on the host that asks for the same.
type tlsClaim struct {
	request tlsRequest
	owners  []tlsOwner
	// has holds the owners, for a lookup: many may share a host.
	has map[tlsOwner]bool
}

// tlsConflicts are the requests that lost to a host's claim: the
// rejections of Services and of Ingresses.
type tlsConflicts struct {
	services  []Rejection
	ingresses []IngressRejection
}

// resolveTLS picks each host's HTTPS settings: those of the oldest Service
// or Ingress that asks for HTTPS there (then the smaller namespace/name,
// then Ingress before Service). Only an owner with a route that wins on
// the host (resolveConflicts, before HTTPS is decided) may ask: one whose
// routes there all lose to older ones cannot turn the host's HTTPS on. It
// returns the candidates without those of the requests that ask for other
// settings, the claims by host, and a rejection for each request left out:
// a Service is left out whole (all its routes are on the host), an Ingress
// only on that host.
func resolveTLS(cands []candidate) ([]candidate, map[string]*tlsClaim, tlsConflicts) {
	type hostOwner struct {
		host  string
		owner tlsOwner
	}
	var asking []*candidate
	for i := range cands {
		if cands[i].tls != nil {
			asking = append(asking, &cands[i])
		}
	}
	if len(asking) == 0 {
		return cands, nil, tlsConflicts{}
	}
	winners, _, _ := resolveConflicts(cands)
	routed := make(map[hostOwner]bool, len(asking))
	for _, w := range winners {
		if w.tls != nil {
			routed[hostOwner{w.host, tlsOwnerOf(w)}] = true
		}
	}
	asking = slices.DeleteFunc(asking, func(c *candidate) bool { return !routed[hostOwner{c.host, tlsOwnerOf(c)}] })
	slices.SortFunc(asking, func(a, b *candidate) int {
		ans, aname, akind, _ := a.owner()
		bns, bname, bkind, _ := b.owner()
		return cmp.Or(
			cmp.Compare(a.host, b.host),
			a.created.Compare(b.created),
			cmp.Compare(ans, bns),
			cmp.Compare(aname, bname),
			cmp.Compare(akind, bkind))
	})
	claims := make(map[string]*tlsClaim)
	losers := make(map[hostOwner]string) // the rejection's message
	for _, c := range asking {
		owner := tlsOwnerOf(c)
		claim := claims[c.host]
		switch {
		case claim == nil:
			claims[c.host] = &tlsClaim{request: *c.tls, owners: []tlsOwner{owner}, has: map[tlsOwner]bool{owner: true}}
		case claim.request == *c.tls:
			if !claim.has[owner] {
				claim.has[owner] = true
				claim.owners = append(claim.owners, owner)
			}
		default:
			losers[hostOwner{c.host, owner}] = fmt.Sprintf("host %s's HTTPS is set by %s (%s), which is older or sorts first; this %s asks for %s",
				c.host, claim.owners[0], claim.request, owner.kind(), *c.tls)
		}
	}
	if len(losers) == 0 {
		return cands, claims, tlsConflicts{}
	}
	kept := make([]candidate, 0, len(cands))
	for _, c := range cands {
		// Only the routes that asked go: an Ingress's route to a Service
		// that lost, or a route of an Ingress on a host its tls section
		// does not list, asks nothing of HTTPS.
		if _, lost := losers[hostOwner{c.host, tlsOwnerOf(&c)}]; !lost || c.tls == nil {
			kept = append(kept, c)
		}
	}
	var out tlsConflicts
	for ho, msg := range losers {
		if !ho.owner.ingress.IsZero() {
			out.ingresses = append(out.ingresses, IngressRejection{Ingress: ho.owner.ingress, Path: "tls of host " + ho.host,
				Reason: ReasonTLSConflict, Message: msg})
			continue
		}
		out.services = append(out.services, Rejection{Service: ho.owner.service, Reason: ReasonTLSConflict, Message: msg})
	}
	return kept, claims, out
}

// applyTLS gives each server that its Services or Ingresses asked HTTPS of
// its certificate, or leaves its HTTPS out, and records the outcome in res
// (the caller sorts res.Ingress).
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
		case claim.request.problem != "":
			hc.Reason, hc.Message = ReasonTLSNotServed, claim.request.problem
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
		what := "Secret " + ref.String() + ": " + hc.Message
		if claim.request.problem != "" {
			what = hc.Message
		}
		msg := fmt.Sprintf("host %s, %s", s.Host, what)
		if !hc.Served {
			msg = fmt.Sprintf("HTTPS of host %s left out: %s", s.Host, what)
			if s.RedirectHTTPS {
				msg += " (plain HTTP still redirects to HTTPS)"
			}
		}
		for _, o := range claim.owners {
			if !o.ingress.IsZero() {
				res.Ingress.Warnings = append(res.Ingress.Warnings, IngressWarning{Ingress: o.ingress, Reason: hc.Reason, Message: msg})
				continue
			}
			res.Warnings = append(res.Warnings, Warning{Service: o.service, Reason: hc.Reason, Message: msg})
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
