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
)

// maxEventMessage keeps Event messages within what the API server takes.
const maxEventMessage = 1000

// eventReporter tells a Service's owner, with Kubernetes Events and a log
// line, why the Service is not routed. It reports each distinct problem once (not once
// per rebuild), and a Normal event when the problem is gone.
type eventReporter struct {
	recorder record.EventRecorder // nil: log only
	log      *slog.Logger
	// reported holds the message last reported per Service.
	reported map[model.ServiceRef]string
}

func newEventReporter(recorder record.EventRecorder, log *slog.Logger) *eventReporter {
	return &eventReporter{recorder: recorder, log: log, reported: make(map[model.ServiceRef]string)}
}

func (r *eventReporter) event(svc *corev1.Service, eventType, reason, msg string) {
	ref := svc.Namespace + "/" + svc.Name
	if eventType == corev1.EventTypeWarning {
		r.log.Warn("service not routed", "service", ref, "reason", reason, "detail", msg)
	} else {
		r.log.Info("service routed again", "service", ref)
	}
	if r.recorder != nil {
		r.recorder.Event(svc, eventType, reason, msg)
	}
}

// report compares the rejections of a rebuild with what was reported.
func (r *eventReporter) report(rejected []model.Rejection, services []*corev1.Service) {
	byRef := make(map[model.ServiceRef]*corev1.Service, len(services))
	for _, s := range services {
		byRef[model.ServiceRef{Namespace: s.Namespace, Name: s.Name}] = s
	}
	type problem struct {
		reason   model.Reason
		messages []string
	}
	problems := make(map[model.ServiceRef]*problem)
	var order []model.ServiceRef
	for _, rej := range rejected {
		p := problems[rej.Service]
		if p == nil {
			p = &problem{reason: rej.Reason}
			problems[rej.Service] = p
			order = append(order, rej.Service)
		}
		msg := rej.Message
		if rej.Port != "" {
			msg = "port " + rej.Port + ": " + msg
		}
		p.messages = append(p.messages, msg)
	}
	for _, ref := range order {
		svc := byRef[ref]
		if svc == nil {
			continue
		}
		p := problems[ref]
		msg := "not routed: " + strings.Join(p.messages, "; ")
		if len(msg) > maxEventMessage {
			msg = msg[:maxEventMessage-3] + "..."
		}
		if r.reported[ref] == msg {
			continue
		}
		r.reported[ref] = msg
		r.event(svc, corev1.EventTypeWarning, string(p.reason), msg)
	}
	for ref := range r.reported {
		if problems[ref] != nil {
			continue
		}
		delete(r.reported, ref)
		// A Service that is gone, or no longer selected, is not routed
		// either: only one that is there is told it is routed now.
		if svc := byRef[ref]; svc != nil {
			r.event(svc, corev1.EventTypeNormal, EventReasonRouted, "routed: the problem reported before is resolved")
		}
	}
}
