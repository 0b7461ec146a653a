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
	testclock "k8s.io/utils/clock/testing"
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
	refuseFirst := func(client *fake.Clientset, n int32) *atomic.Int32 {
		var calls atomic.Int32
		client.PrependReactor("list", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
			if calls.Add(1) <= n {
				return true, nil, errors.New("connection refused")
			}
			return false, nil, nil
		})
		return &calls
	}
	type result struct {
		objs Objects
		err  error
	}

	t.Run("retries until the API server answers", func(t *testing.T) {
		t.Parallel()
		clk := testclock.NewFakeClock(t0)
		client := fake.NewClientset(objects()...)
		calls := refuseFirst(client, 2)
		done := make(chan result, 1)
		go func() {
			objs, err := listWithRetry(context.Background(), clk, client, Selection{Namespaces: []string{"b"}}, time.Minute, log)
			done <- result{objs, err}
		}()
		for i, d := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond} {
			waitForWaiters(t, clk, 2) // the timeout and the backoff
			clk.Step(d - time.Nanosecond)
			if got := calls.Load(); got != int32(i+1) {
				t.Fatalf("%d tries %s after try %d, want %d", got, d-time.Nanosecond, i+1, i+1)
			}
			clk.Step(time.Nanosecond)
		}
		got := <-done
		if got.err != nil {
			t.Fatal(got.err)
		}
		if calls.Load() != 3 || names(got.objs.Services) != "b/api" {
			t.Errorf("calls=%d services=%q", calls.Load(), names(got.objs.Services))
		}
		if clk.HasWaiters() {
			t.Error("the timeout is still set after the list succeeded")
		}
	})

	t.Run("gives up after the timeout with the last error", func(t *testing.T) {
		t.Parallel()
		clk := testclock.NewFakeClock(t0)
		client := fake.NewClientset()
		refuseFirst(client, 1000)
		done := make(chan result, 1)
		go func() {
			objs, err := listWithRetry(context.Background(), clk, client, Selection{}, 300*time.Millisecond, log)
			done <- result{objs, err}
		}()
		waitForWaiters(t, clk, 2)
		clk.Step(200 * time.Millisecond)
		waitForWaiters(t, clk, 2)
		clk.Step(100 * time.Millisecond)
		err := (<-done).err
		if err == nil || !strings.Contains(err.Error(), "did not answer within 300ms (2 attempts)") || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("stops when ctx ends", func(t *testing.T) {
		t.Parallel()
		clk := testclock.NewFakeClock(t0)
		client := fake.NewClientset()
		refuseFirst(client, 1000)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() {
			objs, err := listWithRetry(ctx, clk, client, Selection{}, time.Minute, log)
			done <- result{objs, err}
		}()
		waitForWaiters(t, clk, 2)
		cancel()
		err := (<-done).err
		if err == nil || strings.Contains(err.Error(), "did not answer") || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("err = %v, want the last failure", err)
		}
	})
}
