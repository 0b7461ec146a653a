package main

import (
	"fmt"
	"slices"
	"strings"
)

// table is the results as a Markdown table: a column for each system (in
// the order they ran: kube-nginx-sync in each shape, then Traefik, then
// the baseline), and for each of the others (the peers), the ratio peer /
// kube-nginx-sync for each shape (above 1: we are faster or smaller).
func table(res *Results, sizes []int) string {
	names := systemNames(res)
	var ourNames, peers []string
	for _, n := range names {
		if res.Shapes[n] != "" {
			ourNames = append(ourNames, n)
		} else {
			peers = append(peers, n)
		}
	}

	var sb strings.Builder
	sb.WriteString("\n| figure |")
	for _, n := range names {
		fmt.Fprintf(&sb, " %s |", systemLabel(res, n))
	}
	for _, p := range peers {
		for _, n := range ourNames {
			fmt.Fprintf(&sb, " %s / %s |", p, n)
		}
	}
	sb.WriteString("\n|---|" + strings.Repeat("---|", len(names)+len(peers)*len(ourNames)) + "\n")

	// line writes a row: one cell per system, and the ratios of value
	// (nil: no ratio columns filled).
	line := func(figure string, cell func(*SystemResults) string, value func(*SystemResults) *float64) {
		fmt.Fprintf(&sb, "| %s |", figure)
		for _, n := range names {
			fmt.Fprintf(&sb, " %s |", cell(res.Results[n]))
		}
		for _, p := range peers {
			for _, n := range ourNames {
				r := ""
				if value != nil {
					r = ratio(value(res.Results[p]), value(res.Results[n]))
				}
				fmt.Fprintf(&sb, " %s |", r)
			}
		}
		sb.WriteString("\n")
	}
	number := func(figure, unit string, value func(*SystemResults) *float64) {
		line(figure, func(r *SystemResults) string { return num(value(r), unit) }, value)
	}
	lat := func(l *Latency) string {
		if l == nil {
			return "—"
		}
		return fmt.Sprintf("%g / %g / %g ms (%d)", l.P50, l.P95, l.Max, l.Trials)
	}
	p50 := func(l *Latency) *float64 {
		if l == nil {
			return nil
		}
		return &l.P50
	}
	some := func(has func(*SystemResults) bool) bool {
		for _, r := range res.Results {
			if has(r) {
				return true
			}
		}
		return false
	}

	for _, n := range sizes {
		k := fmt.Sprint(n)
		line(fmt.Sprintf("single change at %d routes, p50 / p95 / max (trials)", n),
			func(r *SystemResults) string { return lat(r.SingleChangeMS[k]) },
			func(r *SystemResults) *float64 { return p50(r.SingleChangeMS[k]) })
		if some(func(r *SystemResults) bool { return r.IngressSingleChangeMS[k] != nil }) {
			line(fmt.Sprintf("single change of an Ingress at %d routes, p50 / p95 / max (trials)", n),
				func(r *SystemResults) string { return lat(r.IngressSingleChangeMS[k]) }, nil)
		}
		line(fmt.Sprintf("nginx floor at %d routes, same shape (SIGHUP; lua: the table file replaced; Traefik: no nginx)", n),
			func(r *SystemResults) string { return lat(r.NginxFloorMS[k]) },
			func(r *SystemResults) *float64 { return p50(r.NginxFloorMS[k]) })
		if some(func(r *SystemResults) bool { return r.HTTPSSingleChangeMS[k] != nil }) {
			line(fmt.Sprintf("single change of an HTTPS route (a new host) at %d routes, p50 / p95 / max (trials)", n),
				func(r *SystemResults) string { return lat(r.HTTPSSingleChangeMS[k]) }, nil)
		}
		line(fmt.Sprintf("single change / floor at %d routes (p50)", n),
			func(r *SystemResults) string { return ratio(p50(r.SingleChangeMS[k]), p50(r.NginxFloorMS[k])) }, nil)
	}
	if some(func(r *SystemResults) bool { return r.Burst1000 != nil }) {
		converge := func(r *SystemResults) *float64 {
			if r.Burst1000 == nil {
				return nil
			}
			return r.Burst1000.ConvergeMS
		}
		line("burst of 1,000: last create → all answering", func(r *SystemResults) string {
			switch {
			case r.Burst1000 == nil:
				return "—"
			case r.Burst1000.TimedOut:
				return fmt.Sprintf("not converged: %d of 1000 answering after the limit", r.Burst1000.Answering)
			}
			return num(r.Burst1000.ConvergeMS, "ms")
		}, converge)
		line("burst of 1,000: reloads", func(r *SystemResults) string {
			if r.Burst1000 == nil {
				return "—"
			}
			return reloads(r.Burst1000.Reloads, r.Burst1000.ConfigUpdates)
		}, func(r *SystemResults) *float64 {
			// Traefik's configurations are no reloads: no ratio.
			if r.Burst1000 == nil || r.Burst1000.ConfigUpdates != nil {
				return nil
			}
			return f(r.Burst1000.Reloads)
		})
	}
	for _, n := range sizes {
		k := fmt.Sprint(n)
		if !some(func(r *SystemResults) bool { return r.Churn[k] != nil }) {
			continue
		}
		churn := func(cell func(*ChurnResult) string) func(*SystemResults) string {
			return func(r *SystemResults) string {
				if r.Churn[k] == nil {
					return "—"
				}
				return cell(r.Churn[k])
			}
		}
		var seconds float64
		for _, r := range res.Results {
			if c := r.Churn[k]; c != nil {
				seconds = c.Seconds
			}
		}
		line(fmt.Sprintf("churn %gs at %d routes: failed / requests", seconds, n),
			churn(func(c *ChurnResult) string { return fmt.Sprintf("%d / %d", c.FailedRequests, c.Requests) }), nil)
		line(fmt.Sprintf("churn at %d routes: request time p50 / p99 / p99.9 / max", n),
			churn(func(c *ChurnResult) string {
				if c.RequestMS == nil {
					return "—"
				}
				return fmt.Sprintf("%g / %g / %g / %g ms", c.RequestMS.P50, c.RequestMS.P99, c.RequestMS.P999, c.RequestMS.Max)
			}), nil)
		line(fmt.Sprintf("churn at %d routes: reloads / endpoint changes", n),
			churn(func(c *ChurnResult) string {
				return fmt.Sprintf("%s / %d", reloads(c.Reloads, c.ConfigUpdates), c.Changes)
			}),
			func(r *SystemResults) *float64 {
				if r.Churn[k] == nil || r.Churn[k].ConfigUpdates != nil {
					return nil
				}
				return f(r.Churn[k].Reloads)
			})
		if some(func(r *SystemResults) bool { return r.Churn[k] != nil && r.Churn[k].ChangesInUse != nil }) {
			line(fmt.Sprintf("churn at %d routes: endpoint flip (API call) → in use by every worker, p50 / p99 / max (flips timed, undone before in use, undoing those, never in use)", n),
				churn(func(c *ChurnResult) string {
					u := c.ChangesInUse
					if u == nil {
						return "—"
					}
					return fmt.Sprintf("%s / %s / %s (%d, %d, %d, %d)", num(u.P50MS, "ms"), num(u.P99MS, "ms"), num(u.MaxMS, "ms"),
						u.InUse, u.Superseded, u.Restoring, u.Never)
				}), nil)
		}
		if some(func(r *SystemResults) bool { return r.Churn[k] != nil && r.Churn[k].EndpointUpdates != nil }) {
			line(fmt.Sprintf("churn at %d routes: table file written → in use by every worker, p50 / p99 (from the histogram; confirmed, failed)", n),
				churn(func(c *ChurnResult) string {
					u := c.EndpointUpdates
					if u == nil {
						return "—"
					}
					return fmt.Sprintf("%s / %s (%d, %d)", num(u.P50MS, "ms"), num(u.P99MS, "ms"), u.OK, u.Failed)
				}), nil)
		}
		line(fmt.Sprintf("churn at %d routes: nginx processes (Traefik: its one) / RSS MiB / PSS MiB, before → max during → 35 s after", n),
			churn(func(c *ChurnResult) string {
				return fmt.Sprintf("%d / %g / %g → %d / %g / %g → %d / %g / %g", c.NginxProcsBefore, c.NginxRSSMiBBefore, c.NginxPSSMiBBefore,
					c.NginxProcsDuring, c.NginxRSSMiBDuring, c.NginxPSSMiBDuring, c.NginxProcsAfter, c.NginxRSSMiBAfter, c.NginxPSSMiBAfter)
			}), nil)
	}
	if some(func(r *SystemResults) bool { return r.Scale10000 != nil }) {
		scale := func(v func(*ScaleResult) *float64) func(*SystemResults) *float64 {
			return func(r *SystemResults) *float64 {
				if r.Scale10000 == nil {
					return nil
				}
				return v(r.Scale10000)
			}
		}
		var services int
		for _, r := range res.Results {
			if r.Scale10000 != nil {
				services = r.Scale10000.Services
			}
		}
		number(fmt.Sprintf("scale %d: rebuild + render", services), "ms", scale(func(s *ScaleResult) *float64 { return s.RenderMS }))
		number("scale: config size (lua: and the table file)", "KiB", scale(func(s *ScaleResult) *float64 {
			if s.ConfigBytes == nil {
				return nil
			}
			return f((*s.ConfigBytes + s.TableBytes) / 1024)
		}))
		number("scale: nginx -t", "ms", scale(func(s *ScaleResult) *float64 { return s.NginxTMS }))
		number("scale: generator RSS", "MiB", scale(func(s *ScaleResult) *float64 { return s.GeneratorRSSMiB }))
		number("scale: nginx RSS (all processes; Traefik: its one)", "MiB", scale(func(s *ScaleResult) *float64 { return &s.NginxRSSMiB }))
		number("scale: nginx PSS (all processes; Traefik: its one)", "MiB", scale(func(s *ScaleResult) *float64 { return &s.NginxPSSMiB }))
		number("scale: PSS of all the system's processes (generator and nginx)", "MiB", scale(func(s *ScaleResult) *float64 {
			if s.TotalPSSMiB == 0 {
				return nil // not measured before this figure existed
			}
			return &s.TotalPSSMiB
		}))
	}
	return sb.String()
}

// systemNames are the systems of res in the order they ran:
// kube-nginx-sync's shapes in the order of -shape, then Traefik, then the
// baseline.
func systemNames(res *Results) []string {
	shapes := strings.Split(res.Shape, ",")
	order := func(name string) int {
		if i := slices.Index(shapes, res.Shapes[name]); i >= 0 && res.Shapes[name] != "" {
			return i
		}
		if name == traefikName {
			return len(shapes)
		}
		return len(shapes) + 1
	}
	var names []string
	for name := range res.Results {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return order(a) - order(b) })
	return names
}

// systemLabel names a system in a table's head.
func systemLabel(res *Results, name string) string {
	switch {
	case name == baseline:
		return "baseline (seed design)"
	case name == traefikName:
		v := res.Versions[traefikName]
		return strings.TrimSpace("Traefik " + v + " (Ingress provider)")
	}
	return fmt.Sprintf("%s (`--shape %s`)", name, res.Shapes[name])
}

// reloads is nginx's reloads, and the configurations Traefik applied.
func reloads(n int, updates *int) string {
	if updates != nil {
		return fmt.Sprintf("%d (%d configurations applied in place)", n, *updates)
	}
	return fmt.Sprint(n)
}

func f(n int) *float64 {
	v := float64(n)
	return &v
}

func num(v *float64, unit string) string {
	if v == nil {
		return "—"
	}
	if unit == "" {
		return fmt.Sprintf("%g", *v)
	}
	return fmt.Sprintf("%g %s", *v, unit)
}

// ratio is b / o, "—" when either is missing or o is 0.
func ratio(b, o *float64) string {
	if b == nil || o == nil || *o == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f×", *b / *o)
}
