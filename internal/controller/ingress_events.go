package controller

import (
	"cmp"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/tools/record"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// ingressEventReporter tells an Ingress's owner, with Kubernetes Events and
// a log line, what of the Ingress is not routed, or is ignored, or answers
// 503: one Warning per reason, each distinct problem once (not once per
// rebuild), and a Normal event when all are gone. It logs once why no
// Ingress is routed, when the IngressClass is missing or another
// controller's.
type ingressEventReporter struct {
	recorder record.EventRecorder // nil: log only
	log      *slog.Logger
	// reported holds the message last reported per Ingress and reason.
	reported map[ingressProblem]string
	// classProblem is the one last logged.
	classProblem string
}

type ingressProblem struct {
	ingress model.IngressRef
	reason  model.Reason
}

func newIngressEventReporter(recorder record.EventRecorder, log *slog.Logger) *ingressEventReporter {
	return &ingressEventReporter{recorder: recorder, log: log, reported: make(map[ingressProblem]string)}
}

// report compares the Ingress result of a rebuild with what was reported.
func (r *ingressEventReporter) report(res model.IngressResult, ingresses []*networkingv1.Ingress) {
	if res.ClassProblem != r.classProblem {
		r.classProblem = res.ClassProblem
		if res.ClassProblem != "" {
			r.log.Warn("no Ingress is routed", "detail", res.ClassProblem)
		} else {
			r.log.Info("the IngressClass is routed")
		}
	}
	byRef := make(map[model.IngressRef]*networkingv1.Ingress, len(ingresses))
	for _, ing := range ingresses {
		byRef[model.IngressRef{Namespace: ing.Namespace, Name: ing.Name}] = ing
	}
	messages := make(map[ingressProblem][]string)
	for _, rej := range res.Rejected {
		msg := rej.Message
		if rej.Path != "" {
			msg = rej.Path + ": " + msg
		}
		p := ingressProblem{rej.Ingress, rej.Reason}
		messages[p] = append(messages[p], msg)
	}
	for _, w := range res.Warnings {
		p := ingressProblem{w.Ingress, w.Reason}
		messages[p] = append(messages[p], w.Message)
	}
	rejected := make(map[ingressProblem]bool)
	for _, rej := range res.Rejected {
		rejected[ingressProblem{rej.Ingress, rej.Reason}] = true
	}
	order := slices.SortedFunc(maps.Keys(messages), compareProblems)
	for _, p := range order {
		ing := byRef[p.ingress]
		if ing == nil {
			continue
		}
		msg := strings.Join(messages[p], "; ")
		if rejected[p] {
			msg = "not routed: " + msg
		}
		if len(msg) > maxEventMessage {
			msg = msg[:maxEventMessage-3] + "..."
		}
		if r.reported[p] == msg {
			continue
		}
		r.reported[p] = msg
		r.log.Warn("ingress problem", "ingress", p.ingress.String(), "reason", string(p.reason), "detail", msg)
		if r.recorder != nil {
			r.recorder.Event(ing, corev1.EventTypeWarning, string(p.reason), msg)
		}
	}
	resolved := make(map[model.IngressRef]bool)
	for p := range r.reported {
		if messages[p] == nil {
			delete(r.reported, p)
			resolved[p.ingress] = true
		}
	}
	for p := range r.reported {
		delete(resolved, p.ingress) // some problem remains
	}
	for _, ref := range slices.SortedFunc(maps.Keys(resolved), compareIngressRefs) {
		// An Ingress that is gone, or no longer of the class, is not
		// routed either: only one that is there is told.
		if ing := byRef[ref]; ing != nil && slices.Contains(res.Selected, ref) {
			r.log.Info("ingress problems resolved", "ingress", ref.String())
			if r.recorder != nil {
				r.recorder.Event(ing, corev1.EventTypeNormal, EventReasonRouted, "routed: the problems reported before are resolved")
			}
		}
	}
}

func compareIngressRefs(a, b model.IngressRef) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

func compareProblems(a, b ingressProblem) int {
	return cmp.Or(compareIngressRefs(a.ingress, b.ingress), cmp.Compare(a.reason, b.reason))
}

// ingressMetrics describe the Ingresses of a built model.
type ingressMetrics struct {
	selected *prometheus.GaugeVec
	rejected *prometheus.GaugeVec
	warnings *prometheus.GaugeVec
	// rejectedReasons and warningReasons are the reasons exported: the
	// usual ones from the start, and every one seen since.
	rejectedReasons, warningReasons map[model.Reason]bool
}

func newIngressMetrics(reg prometheus.Registerer) *ingressMetrics {
	const ns = "kube_nginx_sync"
	m := &ingressMetrics{
		selected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "ingresses",
			Help: "Ingresses of the IngressClass (--ingress-class), routed or not; class_ok is 0 when the IngressClass is missing or another controller's."},
			[]string{"class_ok"}),
		rejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "ingress_rejected_routes",
			Help: "Ingresses, or their paths, left out of the config, by reason."}, []string{"reason"}),
		warnings: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "ingress_warnings",
			Help: "Problems of routed Ingresses (annotations ignored, backends that answer 503, tls entries or certificates not served), by reason."},
			[]string{"reason"}),
	}
	m.rejectedReasons = map[model.Reason]bool{model.ReasonInvalidIngress: true, model.ReasonInvalidAnnotation: true,
		model.ReasonUnsupported: true, model.ReasonRouteConflict: true, model.ReasonTLSConflict: true}
	m.warningReasons = map[model.Reason]bool{model.ReasonIgnoredAnnotation: true, model.ReasonBackendNotFound: true,
		model.ReasonTLSNotServed: true, model.ReasonTLSSecretNotFound: true}
	reg.MustRegister(m.selected, m.rejected, m.warnings)
	return m
}

func (m *ingressMetrics) observe(res model.IngressResult) {
	// The series of the class's state that does not hold goes (its
	// absence is the signal, as documented).
	m.selected.Reset()
	classOK := "1"
	if res.ClassProblem != "" {
		classOK = "0"
	}
	m.selected.WithLabelValues(classOK).Set(float64(len(res.Selected)))
	// The series by reason are all set on each rebuild, none deleted: a
	// scrape never finds one missing. A reason once seen reads 0 when it
	// is gone.
	rejected := make(map[model.Reason]int)
	for _, r := range res.Rejected {
		rejected[r.Reason]++
	}
	setByReason(m.rejected, m.rejectedReasons, rejected)
	warnings := make(map[model.Reason]int)
	for _, w := range res.Warnings {
		warnings[w.Reason]++
	}
	setByReason(m.warnings, m.warningReasons, warnings)
}

// setByReason sets the series of each reason in seen (which it adds the
// reasons of counts to) to its count, 0 when counts lacks it.
func setByReason(vec *prometheus.GaugeVec, seen map[model.Reason]bool, counts map[model.Reason]int) {
	for reason := range counts {
		seen[reason] = true
	}
	for reason := range seen {
		vec.WithLabelValues(string(reason)).Set(float64(counts[reason]))
	}
}
