package main

import (
	"fmt"
	"slices"
	"strings"
)

// score is one system's value of a figure; note says why there is none.
type score struct {
	name  string
	value *float64
	note  string
}

// summary is a line per figure that at least two systems have: who is
// ahead, and by how much (the others' value and how many times the
// leader's it is, or the leader's theirs when higher is better).
func summary(res *Results, sizes []int) string {
	var sb strings.Builder
	sb.WriteString("\nWho is ahead:\n")
	names := systemNames(res)
	figure := func(title, unit string, higherBetter bool, value func(*SystemResults) (*float64, string)) {
		var scores []score
		for _, n := range names {
			v, note := value(res.Results[n])
			scores = append(scores, score{name: n, value: v, note: note})
		}
		if l := summaryLine(title, unit, higherBetter, scores); l != "" {
			sb.WriteString(l + "\n")
		}
	}
	for _, n := range sizes {
		k := fmt.Sprint(n)
		figure(fmt.Sprintf("single change at %d routes, p50", n), "ms", false, func(r *SystemResults) (*float64, string) {
			if l := r.SingleChangeMS[k]; l != nil {
				return &l.P50, ""
			}
			return nil, ""
		})
	}
	figure("burst of 1,000: last create → all answering", "ms", false, func(r *SystemResults) (*float64, string) {
		switch b := r.Burst1000; {
		case b == nil:
			return nil, ""
		case b.TimedOut:
			return nil, fmt.Sprintf("not converged (%d of 1000)", b.Answering)
		default:
			return b.ConvergeMS, ""
		}
	})
	for _, n := range sizes {
		k := fmt.Sprint(n)
		figure(fmt.Sprintf("churn at %d routes: failed requests", n), "", false, func(r *SystemResults) (*float64, string) {
			if c := r.Churn[k]; c != nil {
				return f(int(c.FailedRequests)), ""
			}
			return nil, ""
		})
		figure(fmt.Sprintf("churn at %d routes: request time p99", n), "ms", false, func(r *SystemResults) (*float64, string) {
			c := r.Churn[k]
			switch {
			case c == nil || c.RequestMS == nil:
				return nil, ""
			case c.FailedRequests*100 > c.Requests:
				// A failure is often fast: its time says nothing.
				return nil, fmt.Sprintf("(%.0f %% of its requests failed)", 100*float64(c.FailedRequests)/float64(c.Requests))
			}
			return &c.RequestMS.P99, ""
		})
	}
	figure("scale 10,000: memory, PSS of all the system's processes", "MiB", false, func(r *SystemResults) (*float64, string) {
		if s := r.Scale10000; s != nil && s.TotalPSSMiB > 0 {
			return &s.TotalPSSMiB, ""
		}
		return nil, ""
	})
	var dpNames []string
	for _, n := range dpConfigs {
		if res.DataPlane[n] != nil {
			dpNames = append(dpNames, n)
		}
	}
	dp := func(title, unit string, higherBetter bool, value func(*DataPlaneResult) float64) {
		var scores []score
		for _, n := range dpNames {
			v := value(res.DataPlane[n])
			scores = append(scores, score{name: dpLabels([]string{n})[0], value: &v})
		}
		if l := summaryLine(title, unit, higherBetter, scores); l != "" {
			sb.WriteString(l + "\n")
		}
	}
	dp("data plane: requests/s", "/s", true, func(r *DataPlaneResult) float64 { return r.RequestsPerSecond })
	dp("data plane: p99", "ms", false, func(r *DataPlaneResult) float64 { return r.P99MS })
	dp("data plane: failed requests", "", false, func(r *DataPlaneResult) float64 { return float64(r.FailedRequests) })
	return sb.String()
}

// summaryLine says who is ahead on one figure: "title: A 12 ms, ahead of
// B 30 ms (2.5×), C 40 ms (3.3×)"; systems tied with the leader are named
// with it; "" when fewer than two systems have the figure.
func summaryLine(title, unit string, higherBetter bool, scores []score) string {
	var have []score
	var notes []string
	for _, s := range scores {
		switch {
		case s.value != nil:
			have = append(have, s)
		case s.note != "":
			notes = append(notes, s.name+" "+s.note)
		}
	}
	if len(have)+len(notes) < 2 || len(have) == 0 {
		return ""
	}
	better := func(a, b score) int {
		switch {
		case *a.value == *b.value:
			return 0
		case (*a.value < *b.value) != higherBetter:
			return -1
		}
		return 1
	}
	slices.SortStableFunc(have, better)
	val := func(v float64) string {
		s := fmt.Sprintf("%g", v)
		if v >= 1000 {
			s = fmt.Sprintf("%.0f", v)
		}
		if unit == "/s" {
			return s + "/s"
		}
		return strings.TrimSpace(s + " " + unit)
	}
	var lead, rest []string
	for _, s := range have {
		if better(s, have[0]) == 0 {
			lead = append(lead, s.name)
			continue
		}
		// How many times better the leader is.
		by := ""
		switch a, b := *have[0].value, *s.value; {
		case higherBetter && b > 0:
			by = times(a / b)
		case !higherBetter && a > 0:
			by = times(b / a)
		}
		rest = append(rest, fmt.Sprintf("%s %s%s", s.name, val(*s.value), by))
	}
	rest = append(rest, notes...)
	line := fmt.Sprintf("- %s: %s %s", title, strings.Join(lead, " and "), val(*have[0].value))
	if len(rest) == 0 {
		return line + ", all alike"
	}
	return line + ", ahead of " + strings.Join(rest, ", ")
}

// times is a ratio above 1, with two decimals under 2.
func times(r float64) string {
	if r < 2 {
		return fmt.Sprintf(" (%.2f×)", r)
	}
	return fmt.Sprintf(" (%.1f×)", r)
}
