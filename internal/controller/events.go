package controller

import (
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// Event reasons.
const (
	// EventReasonRouted: a Service that was left out is routed again.
	EventReasonRouted = "Routed"
	// EventReasonHTTPSResolved: the HTTPS problem reported on a Service
	// (its host's HTTPS left out, a certificate about to expire) is gone.
	EventReasonHTTPSResolved = "HTTPSResolved"
)

// maxEventMessage keeps Event messages within what the API server takes.
const maxEventMessage = 1000

// problemKind sorts a Service's problems: each kind is reported, and
// resolved, on its own.
type problemKind int

const (
	// notRouted: the Service, or a port of it, is left out (Rejections).
	notRouted problemKind = iota
	// httpsProblem: its host's HTTPS is left out, or its certificate needs
	// attention (Warnings).
	httpsProblem
)

type problemKey struct {
	ref  model.ServiceRef
	kind problemKind
}

// eventReporter tells a Service's owner, with Kubernetes Events and a log
// line, why the Service is not routed, or what is wrong with its HTTPS. It
// reports each distinct problem once (not once per rebuild), and a Normal
// event when the problem is gone.
type eventReporter struct {
	recorder record.EventRecorder // nil: log only
	log      *slog.Logger
	// reported holds the message last reported per Service and kind.
	reported map[problemKey]string
}

func newEventReporter(recorder record.EventRecorder, log *slog.Logger) *eventReporter {
	return &eventReporter{recorder: recorder, log: log, reported: make(map[problemKey]string)}
}

func (r *eventReporter) event(svc *corev1.Service, kind problemKind, eventType, reason, msg string) {
	ref := svc.Namespace + "/" + svc.Name
	switch {
	case eventType == corev1.EventTypeWarning && kind == notRouted:
		r.log.Warn("service not routed", "service", ref, "reason", reason, "detail", msg)
	case eventType == corev1.EventTypeWarning:
		r.log.Warn("https problem", "service", ref, "reason", reason, "detail", msg)
	case kind == notRouted:
		r.log.Info("service routed again", "service", ref)
	default:
		r.log.Info("https problem resolved", "service", ref)
	}
	if r.recorder != nil {
		r.recorder.Event(svc, eventType, reason, msg)
	}
}

// report compares the rejections and warnings of a rebuild with what was
// reported.
func (r *eventReporter) report(rejected []model.Rejection, warnings []model.Warning, services []*corev1.Service) {
	byRef := make(map[model.ServiceRef]*corev1.Service, len(services))
	for _, s := range services {
		byRef[model.ServiceRef{Namespace: s.Namespace, Name: s.Name}] = s
	}
	type problem struct {
		reason   model.Reason
		messages []string
	}
	problems := make(map[problemKey]*problem)
	var order []problemKey
	add := func(key problemKey, reason model.Reason, msg string) {
		p := problems[key]
		if p == nil {
			p = &problem{reason: reason}
			problems[key] = p
			order = append(order, key)
		}
		p.messages = append(p.messages, msg)
	}
	for _, rej := range rejected {
		msg := rej.Message
		if rej.Port != "" {
			msg = "port " + rej.Port + ": " + msg
		}
		add(problemKey{rej.Service, notRouted}, rej.Reason, msg)
	}
	for _, w := range warnings {
		add(problemKey{w.Service, httpsProblem}, w.Reason, w.Message)
	}
	for _, key := range order {
		svc := byRef[key.ref]
		if svc == nil {
			continue
		}
		p := problems[key]
		msg := strings.Join(p.messages, "; ")
		if key.kind == notRouted {
			msg = "not routed: " + msg
		}
		if len(msg) > maxEventMessage {
			msg = msg[:maxEventMessage-3] + "..."
		}
		if r.reported[key] == msg {
			continue
		}
		r.reported[key] = msg
		r.event(svc, key.kind, corev1.EventTypeWarning, string(p.reason), msg)
	}
	for key := range r.reported {
		if problems[key] != nil {
			continue
		}
		delete(r.reported, key)
		// A Service that is gone, or no longer selected, is not routed
		// either: only one that is there is told it is routed now.
		svc := byRef[key.ref]
		switch {
		case svc == nil:
		case key.kind == notRouted:
			r.event(svc, key.kind, corev1.EventTypeNormal, EventReasonRouted, "routed: the problem reported before is resolved")
		default:
			r.event(svc, key.kind, corev1.EventTypeNormal, EventReasonHTTPSResolved, "https: the problem reported before is resolved")
		}
	}
}
