package kube

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func objects() []runtime.Object {
	svc := func(ns, name string, exposed bool) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if exposed {
			s.Labels = map[string]string{"expose": "true"}
		}
		return s
	}
	slice := func(ns, name, svcName string) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if svcName != "" {
			s.Labels = map[string]string{discoveryv1.LabelServiceName: svcName}
		}
		return s
	}
	return []runtime.Object{
		svc("a", "web", true), svc("a", "hidden", false), svc("b", "api", true),
		slice("a", "web-1", "web"), slice("a", "hidden-1", "hidden"), slice("b", "api-1", "api"),
		slice("b", "orphan", ""), slice("c", "web-1", "web"),
	}
}

func names[T metav1.Object](objs []T) string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetNamespace()+"/"+o.GetName())
	}
	return strings.Join(out, " ")
}

func TestList(t *testing.T) {
	t.Parallel()
	sel := labels.SelectorFromSet(labels.Set{"expose": "true"})
	tests := []struct {
		name          string
		sel           Selection
		services, eps string
	}{
		{"all namespaces", Selection{Selector: sel}, "a/web b/api", "a/web-1 b/api-1"},
		{"one namespace", Selection{Selector: sel, Namespaces: []string{"b"}}, "b/api", "b/api-1"},
		{"no selector", Selection{Namespaces: []string{"a"}}, "a/hidden a/web", "a/hidden-1 a/web-1"},
		{"nothing selected", Selection{Selector: sel, Namespaces: []string{"c"}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := List(context.Background(), fake.NewClientset(objects()...), tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			if s := names(got.Services); s != tt.services {
				t.Errorf("services %q, want %q", s, tt.services)
			}
			if s := names(got.EndpointSlices); s != tt.eps {
				t.Errorf("endpoint slices %q, want %q", s, tt.eps)
			}
		})
	}
}

func TestListWithRetry(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Run("retries until the API server answers", func(t *testing.T) {
		t.Parallel()
		client := fake.NewClientset(objects()...)
		var calls atomic.Int32
		client.PrependReactor("list", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
			if calls.Add(1) <= 2 {
				return true, nil, errors.New("connection refused")
			}
			return false, nil, nil
		})
		got, err := ListWithRetry(context.Background(), client, Selection{Namespaces: []string{"b"}}, time.Minute, log)
		if err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 3 || names(got.Services) != "b/api" {
			t.Errorf("calls=%d services=%q", calls.Load(), names(got.Services))
		}
	})

	t.Run("gives up after the timeout with the last error", func(t *testing.T) {
		t.Parallel()
		client := fake.NewClientset()
		client.PrependReactor("list", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("connection refused")
		})
		_, err := ListWithRetry(context.Background(), client, Selection{}, 300*time.Millisecond, log)
		if err == nil || !strings.Contains(err.Error(), "did not answer within 300ms") || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("err = %v", err)
		}
	})
}
