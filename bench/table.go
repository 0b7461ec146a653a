package main

import (
	"fmt"
	"strings"
)

// table is the results as a Markdown table: each figure for both systems
// and the ratio baseline / kube-nginx-sync (above 1: we are faster or
// smaller).
func table(res *Results, sizes []int) string {
	o, b := res.Results[ours], res.Results[baseline]
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| figure | kube-nginx-sync | baseline (seed design) | baseline / ours |\n|---|---|---|---|\n")
	row := func(name string, ov, bv *float64, unit string) {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", name, num(ov, unit), num(bv, unit), ratio(bv, ov))
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
	for _, n := range sizes {
		k := fmt.Sprint(n)
		fmt.Fprintf(&sb, "| single change at %d routes, p50 / p95 / max (trials) | %s | %s | %s |\n", n,
			lat(o.SingleChangeMS[k]), lat(b.SingleChangeMS[k]), ratio(p50(b.SingleChangeMS[k]), p50(o.SingleChangeMS[k])))
		fmt.Fprintf(&sb, "| nginx floor (SIGHUP) at %d routes, same shape | %s | %s | %s |\n", n,
			lat(o.NginxFloorMS[k]), lat(b.NginxFloorMS[k]), ratio(p50(b.NginxFloorMS[k]), p50(o.NginxFloorMS[k])))
		fmt.Fprintf(&sb, "| single change / floor at %d routes (p50) | %s | %s | |\n", n,
			ratio(p50(o.SingleChangeMS[k]), p50(o.NginxFloorMS[k])), ratio(p50(b.SingleChangeMS[k]), p50(b.NginxFloorMS[k])))
	}
	if o.Burst1000 != nil && b.Burst1000 != nil {
		cell := func(r *BurstResult) string {
			if r.TimedOut {
				return fmt.Sprintf("not converged: %d of 1000 answering after the limit", r.Answering)
			}
			return num(r.ConvergeMS, "ms")
		}
		fmt.Fprintf(&sb, "| burst of 1,000: last create → all answering | %s | %s | %s |\n", cell(o.Burst1000), cell(b.Burst1000),
			ratio(b.Burst1000.ConvergeMS, o.Burst1000.ConvergeMS))
		row("burst of 1,000: reloads", f(o.Burst1000.Reloads), f(b.Burst1000.Reloads), "")
	}
	if o.Churn != nil && b.Churn != nil {
		fmt.Fprintf(&sb, "| churn %gs: failed / requests | %d / %d | %d / %d | |\n", o.Churn.Seconds,
			o.Churn.FailedRequests, o.Churn.Requests, b.Churn.FailedRequests, b.Churn.Requests)
		row(fmt.Sprintf("churn: reloads (%d changes)", o.Churn.Changes), f(o.Churn.Reloads), f(b.Churn.Reloads), "")
		usage := func(c *ChurnResult) string {
			return fmt.Sprintf("%d / %g / %g → %d / %g / %g → %d / %g / %g", c.NginxProcsBefore, c.NginxRSSMiBBefore, c.NginxPSSMiBBefore,
				c.NginxProcsDuring, c.NginxRSSMiBDuring, c.NginxPSSMiBDuring, c.NginxProcsAfter, c.NginxRSSMiBAfter, c.NginxPSSMiBAfter)
		}
		fmt.Fprintf(&sb, "| churn: nginx processes / RSS MiB / PSS MiB, before → max during → 35 s after | %s | %s | |\n", usage(o.Churn), usage(b.Churn))
	}
	if o.Scale10000 != nil && b.Scale10000 != nil {
		os, bs := o.Scale10000, b.Scale10000
		row(fmt.Sprintf("scale %d: rebuild + render", os.Services), os.RenderMS, bs.RenderMS, "ms")
		row("scale: config size", f(os.ConfigBytes/1024), f(bs.ConfigBytes/1024), "KiB")
		row("scale: nginx -t", &os.NginxTMS, &bs.NginxTMS, "ms")
		row("scale: generator RSS", &os.GeneratorRSSMiB, &bs.GeneratorRSSMiB, "MiB")
		row("scale: nginx RSS (all processes)", &os.NginxRSSMiB, &bs.NginxRSSMiB, "MiB")
		row("scale: nginx PSS (all processes)", &os.NginxPSSMiB, &bs.NginxPSSMiB, "MiB")
	}
	return sb.String()
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
