package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/atomicfile"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// Pipeline is one pass from cluster objects to the config file.
type Pipeline struct {
	// Model selects and routes the Services.
	Model model.Options
	// Renderer turns the model into the file's bytes.
	Renderer *nginxconf.Renderer
	// Output is the config file's path.
	Output string
	// TableFile, when set, is where the Lua data plane's table file (its
	// routes and endpoints, luaplane) is written, before each write of
	// Output: a route that a new config names is in nginx's table first.
	TableFile string
	// Validate, when set, checks a staged file (its path is passed) before
	// it replaces Output. When it refuses a config with an
	// *nginx.InvalidConfigError, Apply finds the Services responsible and
	// leaves them out.
	Validate func(ctx context.Context, path string) error
	// Now is the time that certificates are checked against (and that
	// times the removal of old certificate files); nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	// refused remembers the Services found responsible for an invalid
	// config, by the version that was, so each rebuild need not bisect
	// again until such a Service changes.
	refused map[model.ServiceRef]refusal
	// unnamedSince holds when each certificate file that no config names
	// was first found so (certfiles.go).
	unnamedSince map[string]time.Time
	// table encodes the table file, and keeps the last one written for
	// ApplyEndpoints; tableOK says it is the file on disk.
	table   luaplane.Encoder
	tableOK bool
	// ingressRouted holds the Services that a route of an Ingress sends
	// to in that table's config (ApplyEndpoints leaves them to Apply).
	ingressRouted map[model.ServiceRef]bool
}

type refusal struct {
	resourceVersion string
	message         string
}

// Outcome is what Apply did.
type Outcome struct {
	Result model.Result
	Data   []byte
	// Version is the version of Data, which its header names.
	Version string
	// Changed says whether the file was written.
	Changed bool
	// TableVersion is the table file's version, and
	// TableChanged says whether it was written (with TableFile).
	TableVersion string
	TableChanged bool
	// CertificatesRemovableAt, when not zero, is when a certificate file
	// that the config no longer names may be removed, by a later Apply.
	CertificatesRemovableAt time.Time
}

// now is the pipeline's time.
func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Generate builds the model and renders it.
func (p *Pipeline) Generate(objs kube.Objects) (model.Result, nginxconf.File, error) {
	opts := p.Model
	opts.Secrets, opts.Now = objs.Secrets, p.now()
	opts.Ingress.Ingresses, opts.Ingress.Classes = objs.Ingresses, objs.IngressClasses
	res := model.Build(objs.Services, objs.EndpointSlices, opts)
	file, err := p.Renderer.RenderFile(res.Config, res.Services)
	if err != nil {
		return res, file, fmt.Errorf("render: %w", err)
	}
	return res, file, nil
}

// Write replaces Output with data unless it already holds exactly data;
// changed says whether it wrote.
func (p *Pipeline) Write(ctx context.Context, data []byte) (changed bool, err error) {
	opts := atomicfile.Options{}
	if p.Validate != nil {
		opts.Check = func(tmp string) error { return p.Validate(ctx, tmp) }
	}
	changed, err = atomicfile.Write(p.Output, data, opts)
	if err != nil {
		return false, fmt.Errorf("write config: %w", err)
	}
	if p.Validate != nil {
		// Only a config that passed validation is kept as the last good
		// one (render --fallback-last-good serves it when the API server
		// is unreachable).
		if _, err := atomicfile.Write(confdir.LastGood(p.Output), data, atomicfile.Options{}); err != nil {
			return changed, fmt.Errorf("keep the last good config: %w", err)
		}
	}
	return changed, nil
}

type tableOutcome struct {
	version string
	changed bool
}

// writeTable writes the table file for cfg, when there is one.
func (p *Pipeline) writeTable(cfg model.Config) (tableOutcome, error) {
	if p.TableFile == "" {
		return tableOutcome{}, nil
	}
	p.tableOK = false
	files, err := p.table.Encode(luaplane.Build(cfg))
	if err != nil {
		return tableOutcome{}, fmt.Errorf("table file: %w", err)
	}
	p.ingressRouted = ingressRouted(cfg)
	changed, err := luaplane.Write(p.TableFile, files)
	if err != nil {
		return tableOutcome{}, fmt.Errorf("write table file: %w", err)
	}
	p.tableOK = true
	return tableOutcome{version: files.Version, changed: changed}, nil
}

// ingressRouted returns the Services that a route of an Ingress of cfg
// sends to.
func ingressRouted(cfg model.Config) map[model.ServiceRef]bool {
	var out map[model.ServiceRef]bool
	for _, s := range cfg.Servers {
		for _, l := range s.Locations {
			if l.Ingress.IsZero() {
				continue
			}
			if out == nil {
				out = make(map[model.ServiceRef]bool)
			}
			out[model.ServiceRef{Namespace: l.Service.Namespace, Name: l.Service.Name}] = true
		}
	}
	return out
}

// ServiceLookup finds a Service and its EndpointSlices in the cache;
// found is false when the Service is not there.
type ServiceLookup func(ref model.ServiceRef) (svc *corev1.Service, slices []*discoveryv1.EndpointSlice, found bool)

// ApplyEndpoints takes in new EndpointSlices of the Services refs, when
// nothing else changed since the last Apply: in the lua shape, whose
// config holds no endpoint, it writes the table file alone, with only the
// parts of those Services' ports encoded again, instead of rebuilding
// everything (at 10,000 routes, about 1 ms instead of 40). ok is false,
// and nothing is done, when it cannot: another shape, no table written by
// the last Apply, or a Service that an Ingress routes (its backends are
// the Ingress's, which model.ServiceBackends does not compute: the Service
// may not even be selected); then Apply must run.
func (p *Pipeline) ApplyEndpoints(refs []model.ServiceRef, lookup ServiceLookup) (out Outcome, ok bool, err error) {
	if p.TableFile == "" || p.Renderer.EndpointsInConfig() || !p.tableOK {
		return Outcome{}, false, nil
	}
	for _, ref := range refs {
		if p.ingressRouted[ref] {
			return Outcome{}, false, nil
		}
	}
	var files luaplane.Files
	changed := false
	for _, ref := range refs {
		svc, eps, found := lookup(ref)
		if !found {
			continue // its deletion is a Service change: Apply follows
		}
		// The order does not matter: each port's endpoints are a line of
		// their own.
		for sp, addrs := range model.ServiceBackends(svc, eps, p.Model) {
			f, ok, err := p.table.SetEndpoints(luaplane.Key(sp), addrs)
			if err != nil {
				p.tableOK = false
				return Outcome{}, true, fmt.Errorf("table file: %w", err)
			}
			if ok {
				files, changed = f, true
			}
		}
	}
	if !changed {
		return Outcome{}, true, nil
	}
	p.tableOK = false
	written, err := luaplane.Write(p.TableFile, files)
	if err != nil {
		return Outcome{}, true, fmt.Errorf("write table file: %w", err)
	}
	p.tableOK = true
	return Outcome{TableVersion: files.Version, TableChanged: written}, true, nil
}

// RemoveTemporary removes the temporary files that a writer of the config
// (and of the last good one) killed mid-write left in the folder, and
// returns their names. nginx and the reloader ignore them, but each crash
// would leave one more, as large as the config, in a folder that may be
// small.
func (p *Pipeline) RemoveTemporary() ([]string, error) {
	removed, err := atomicfile.RemoveTemporary(p.Output)
	more, err2 := atomicfile.RemoveTemporary(confdir.LastGood(p.Output))
	removed = append(removed, more...)
	more, err4 := p.removeCertificateTemporaries()
	removed, err2 = append(removed, more...), errors.Join(err2, err4)
	if p.TableFile != "" {
		more, err3 := atomicfile.RemoveTemporary(p.TableFile)
		removed, err2 = append(removed, more...), errors.Join(err2, err3)
	}
	return removed, errors.Join(err, err2)
}

// Apply builds, renders and writes the config. With Validate, a config
// that nginx refuses is not written: the Services that make it fail are
// found by bisection, left out with ReasonRefusedByNginx, and the rest is
// written. One bad Service never blocks the others.
func (p *Pipeline) Apply(ctx context.Context, objs kube.Objects) (Outcome, error) {
	known := p.knownRefusals(objs.Services)
	kept, excluded := partition(objs.Services, known)
	res, file, err := p.Generate(withServices(objs, kept))
	if err != nil {
		return Outcome{Result: res}, err
	}
	if err := p.writeCertificates(res.Config); err != nil {
		return Outcome{Result: res}, err
	}
	var eps tableOutcome
	if eps, err = p.writeTable(res.Config); err != nil {
		return Outcome{Result: res}, err
	}
	changed, err := p.Write(ctx, file.Data)
	var invalid *nginx.InvalidConfigError
	if errors.As(err, &invalid) {
		var culprits []culprit
		culprits, err = p.bisect(ctx, kept, objs)
		if err == nil {
			known = p.remember(culprits)
			kept, excluded = partition(objs.Services, known)
			if res, file, err = p.Generate(withServices(objs, kept)); err == nil {
				changed, err = p.Write(ctx, file.Data)
				// The table file keeps the routes of the Services left
				// out: harmless, nginx refused only what they add to the
				// config, and a refused config is never loaded.
			}
		}
	}
	for _, s := range excluded {
		ref := model.ServiceRef{Namespace: s.Namespace, Name: s.Name}
		res.Rejected = append(res.Rejected, model.Rejection{Service: ref, Reason: model.ReasonRefusedByNginx, Message: known[ref].message})
		res.Services++
	}
	sortRejections(res.Rejected)
	out := Outcome{Result: res, Data: file.Data, Version: file.Version, Changed: changed,
		TableVersion: eps.version, TableChanged: eps.changed}
	if err == nil {
		out.CertificatesRemovableAt = p.removeCertificates(res.Config, p.now())
	}
	return out, err
}

// withServices is objs with services in place of its Services: the other
// objects (the EndpointSlices, the Secrets, the Ingresses) stay.
func withServices(objs kube.Objects, services []*corev1.Service) kube.Objects {
	objs.Services = services
	return objs
}

func sortRejections(r []model.Rejection) {
	slices.SortFunc(r, func(a, b model.Rejection) int {
		return cmp.Or(cmp.Compare(a.Service.Namespace, b.Service.Namespace), cmp.Compare(a.Service.Name, b.Service.Name), cmp.Compare(a.Port, b.Port))
	})
}

// knownRefusals returns the remembered refusals of Services that have not
// changed since, and forgets the others.
func (p *Pipeline) knownRefusals(services []*corev1.Service) map[model.ServiceRef]refusal {
	p.mu.Lock()
	defer p.mu.Unlock()
	known := make(map[model.ServiceRef]refusal)
	for _, s := range services {
		ref := model.ServiceRef{Namespace: s.Namespace, Name: s.Name}
		if r, ok := p.refused[ref]; ok && r.resourceVersion == s.ResourceVersion {
			known[ref] = r
		}
	}
	p.refused = known
	return known
}

// remember adds culprits to the refusals and returns them all.
func (p *Pipeline) remember(culprits []culprit) map[model.ServiceRef]refusal {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refused == nil {
		p.refused = make(map[model.ServiceRef]refusal)
	}
	for _, c := range culprits {
		p.refused[model.ServiceRef{Namespace: c.svc.Namespace, Name: c.svc.Name}] = refusal{resourceVersion: c.svc.ResourceVersion, message: c.message}
	}
	return maps.Clone(p.refused)
}

// partition splits services into those to render and those refused.
func partition(services []*corev1.Service, refused map[model.ServiceRef]refusal) (kept, excluded []*corev1.Service) {
	for _, s := range services {
		if _, bad := refused[model.ServiceRef{Namespace: s.Namespace, Name: s.Name}]; bad {
			excluded = append(excluded, s)
		} else {
			kept = append(kept, s)
		}
	}
	return kept, excluded
}

// maxCulprits bounds a bisection: past that many Services refused at once,
// the template itself is more likely wrong.
const maxCulprits = 16

// culprit is a Service without which nginx accepts the config.
type culprit struct {
	svc     *corev1.Service
	message string
}

// bisect finds the Services without which the config passes Validate.
// While the config of the remaining Services fails, a binary search finds
// the shortest failing prefix of them (in namespace/name order); its last
// Service is a culprit and is taken out. Each culprit costs about
// log2(Services) validations; innocent Services cost none of their own.
func (p *Pipeline) bisect(ctx context.Context, services []*corev1.Service, objs kube.Objects) ([]culprit, error) {
	dir, err := os.MkdirTemp("", "kube-nginx-sync-bisect-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	remaining := slices.Clone(services)
	slices.SortFunc(remaining, func(a, b *corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	// fails validates the config of the first n remaining Services and
	// returns nginx's refusal, nil when it passes.
	fails := func(n int) (*nginx.InvalidConfigError, error) {
		err := p.validateSet(ctx, dir, remaining[:n], objs)
		var invalid *nginx.InvalidConfigError
		if errors.As(err, &invalid) {
			return invalid, nil
		}
		return nil, err
	}
	if refusal, err := fails(0); err != nil || refusal != nil {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("the config is refused even without any Service, so no Service is to blame: %w", refusal)
	}
	var found []culprit
	for {
		refusal, err := fails(len(remaining))
		if err != nil {
			return nil, err
		}
		if refusal == nil {
			return found, nil
		}
		if len(found) == maxCulprits {
			return nil, fmt.Errorf("more than %d Services make the config fail; not leaving them all out: %w", maxCulprits, refusal)
		}
		// remaining[:hi] fails and remaining[:lo] passes.
		lo, hi := 0, len(remaining)
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			r, err := fails(mid)
			if err != nil {
				return nil, err
			}
			if r != nil {
				hi, refusal = mid, r
			} else {
				lo = mid
			}
		}
		found = append(found, culprit{svc: remaining[hi-1], message: refusal.Message})
		remaining = slices.Delete(remaining, hi-1, hi)
	}
}

// validateSet renders the config of services and validates it in a
// temporary folder: nil when nginx accepts it.
func (p *Pipeline) validateSet(ctx context.Context, dir string, services []*corev1.Service, objs kube.Objects) error {
	_, file, err := p.Generate(withServices(objs, services))
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "candidate.conf")
	if err := os.WriteFile(path, file.Data, 0o600); err != nil {
		return err
	}
	return p.Validate(ctx, path)
}
